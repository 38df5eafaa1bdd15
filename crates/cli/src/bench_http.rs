//! `quanttrader bench http`: a load generator for a running server. Over keep-alive
//! connections it first measures `GET /health` (the baseline: what the HTTP stack alone
//! does on this machine, in this run), then places limit orders that rest (and cancels
//! them again so the book stays the same size), and prints the figures as JSON.
//!
//! Latency is measured from when a request was due, not when it was sent: with `--rate`,
//! a server that falls behind shows its queueing in the percentiles (no coordinated
//! omission). Without `--rate` every connection sends as fast as it is answered
//! (saturation).
//!
//! The server must let the key through: run it with high per-key rate limits and no
//! per-user velocity limit (see `config/bench.toml`).

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct HttpBenchArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub url: String,
    /// API key of a funded user (quote asset for the buy orders).
    #[arg(long)]
    pub api_key: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Seconds of order load (the baseline runs for a quarter of it, at least 1 s).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Orders per second over all connections; saturation when absent.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Symbol to trade.
    #[arg(long, default_value = "BTC-USD")]
    pub symbol: String,
    /// Quantity of each order (on the symbol's lot grid, above its minimum notional).
    #[arg(long, default_value = "0.01")]
    pub quantity: String,
    /// Resting orders each connection keeps before it cancels its oldest.
    #[arg(long, default_value_t = 4)]
    pub keep_open: usize,
    /// Print one JSON object (the default prints it too, after a summary line).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    orders: u64,
    orders_per_sec: f64,
    cancels: u64,
    cancels_per_sec: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    errors: u64,
    /// Error responses by status and code.
    error_codes: BTreeMap<String, u64>,
    baseline_req_per_sec: f64,
    baseline_p99_ms: f64,
    ratio_to_baseline: f64,
    connections: usize,
    duration_s: f64,
    target_rate: Option<u64>,
}

struct Shared {
    errors: AtomicU64,
    codes: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut c) = self.codes.lock() {
            *c.entry(what).or_default() += 1;
        }
    }
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// The price orders rest at: far enough under the best bid (or the last price) not to
/// trade, inside the price band.
async fn resting_price(client: &reqwest::Client, url: &str, symbol: &str) -> Result<(String, u32)> {
    let symbols: Value = client.get(format!("{url}/api/symbols")).send().await?.json().await?;
    let spec = symbols["symbols"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["symbol"] == symbol))
        .with_context(|| format!("symbol {symbol} is not listed"))?
        .clone();
    let decimals = spec["price_decimals"].as_u64().unwrap_or(2) as u32;
    let price: Value = client.get(format!("{url}/api/market-data/prices/{symbol}")).send().await?.json().await?;
    let reference = ["best_bid", "last"]
        .iter()
        .find_map(|k| price[*k].as_str().and_then(|p| p.parse::<f64>().ok()))
        .unwrap_or(1000.0);
    // 5 % below: rests, stays within a 10 % band. Formatting a float to the tick grid is
    // only for building the request text; the server parses it exactly.
    let p = reference * 0.95;
    Ok((format!("{p:.prec$}", prec = decimals as usize), decimals))
}

async fn baseline(client: &reqwest::Client, url: &str, connections: usize, seconds: f64) -> (f64, f64) {
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url) = (client.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable!());
            let mut n = 0u64;
            while Instant::now() < end {
                let t = Instant::now();
                if client.get(format!("{url}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
                    n += 1;
                    let _ = h.record(t.elapsed().as_micros() as u64);
                }
            }
            (n, h)
        }));
    }
    let mut total = 0;
    let mut h = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable!());
    for t in tasks {
        if let Ok((n, th)) = t.await {
            total += n;
            let _ = h.add(th);
        }
    }
    (total as f64 / seconds, ms(&h, 0.99))
}

pub async fn http(args: &HttpBenchArgs) -> Result<()> {
    if args.connections == 0 || args.duration == 0 {
        bail!("--connections and --duration must be positive");
    }
    let url = args.url.trim_end_matches('/').to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let health = client.get(format!("{url}/ready")).send().await.context("server not reachable")?;
    if !health.status().is_success() {
        bail!("{url}/ready answers {}", health.status());
    }
    let (price, _) = resting_price(&client, &url, &args.symbol).await?;
    let base_secs = (args.duration as f64 / 4.0).max(1.0);
    let (baseline_rps, baseline_p99) = baseline(&client, &url, args.connections, base_secs).await;

    let shared = Arc::new(Shared { errors: AtomicU64::new(0), codes: Default::default() });
    let started = Instant::now();
    let end = started + Duration::from_secs(args.duration);
    // Open loop: each connection has its own schedule, offset so they do not send in step.
    let interval = args.rate.map(|r| Duration::from_secs_f64(args.connections as f64 / r.max(1) as f64));
    let run_id = format!("{:x}", started.elapsed().as_nanos() ^ u128::from(std::process::id()));
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let (client, url, key, shared) = (client.clone(), url.clone(), args.api_key.clone(), shared.clone());
        let body =
            json!({"symbol": args.symbol, "side": "BUY", "type": "LIMIT", "price": price, "quantity": args.quantity});
        let (keep_open, run_id) = (args.keep_open, run_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable!());
            let (mut orders, mut cancels) = (0u64, 0u64);
            let mut open = VecDeque::new();
            let mut due = Instant::now() + interval.map_or(Duration::ZERO, |i| i.mul_f64(c as f64 / 64.0));
            let mut i = 0u64;
            while Instant::now() < end {
                if interval.is_some() {
                    tokio::time::sleep_until(due.into()).await;
                } else {
                    due = Instant::now();
                }
                i += 1;
                let sent = client
                    .post(format!("{url}/api/orders"))
                    .bearer_auth(&key)
                    .header("Idempotency-Key", format!("bench-{run_id}-{c}-{i}"))
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 201 => {
                        let _ = h.record(due.elapsed().as_micros() as u64);
                        orders += 1;
                        if let Ok(v) = r.json::<Value>().await {
                            if let Some(id) = v["order_id"].as_str() {
                                open.push_back(id.to_string());
                            }
                        }
                    }
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let code =
                            r.json::<Value>().await.ok().and_then(|v| v["error"]["code"].as_str().map(String::from));
                        shared.error(format!("{status} {}", code.unwrap_or_default()));
                    }
                    Err(e) => shared.error(format!("transport {}", if e.is_timeout() { "timeout" } else { "error" })),
                }
                if open.len() > keep_open {
                    if let Some(id) = open.pop_front() {
                        match client.delete(format!("{url}/api/orders/{id}")).bearer_auth(&key).send().await {
                            Ok(r) if r.status().is_success() => cancels += 1,
                            Ok(r) => shared.error(format!("cancel {}", r.status().as_u16())),
                            Err(_) => shared.error("cancel transport".into()),
                        }
                    }
                }
                if let Some(iv) = interval {
                    due += iv;
                }
            }
            // Leave the book as it was.
            for id in open {
                let _ = client.delete(format!("{url}/api/orders/{id}")).bearer_auth(&key).send().await;
            }
            (orders, cancels, h)
        }));
    }
    let mut h = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable!());
    let (mut orders, mut cancels) = (0, 0);
    for t in tasks {
        let (o, c, th) = t.await?;
        orders += o;
        cancels += c;
        let _ = h.add(th);
    }
    let secs = args.duration as f64;
    let orders_per_sec = orders as f64 / secs;
    let report = Report {
        orders,
        orders_per_sec,
        cancels,
        cancels_per_sec: cancels as f64 / secs,
        p50_ms: ms(&h, 0.5),
        p90_ms: ms(&h, 0.9),
        p99_ms: ms(&h, 0.99),
        p999_ms: ms(&h, 0.999),
        max_ms: h.max() as f64 / 1000.0,
        errors: shared.errors.load(Ordering::Relaxed),
        error_codes: shared.codes.lock().map(|c| c.clone()).unwrap_or_default(),
        baseline_req_per_sec: baseline_rps,
        baseline_p99_ms: baseline_p99,
        ratio_to_baseline: if baseline_rps > 0.0 { orders_per_sec / baseline_rps } else { 0.0 },
        connections: args.connections,
        duration_s: secs,
        target_rate: args.rate,
    };
    if !args.json {
        eprintln!(
            "{:.0} orders/s (+{:.0} cancels/s), p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, {} errors; /health baseline {:.0} req/s (ratio {:.2})",
            report.orders_per_sec,
            report.cancels_per_sec,
            report.p50_ms,
            report.p99_ms,
            report.p999_ms,
            report.errors,
            report.baseline_req_per_sec,
            report.ratio_to_baseline
        );
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
