//! Commands per second and latency of the all-in-one engine runtime alone (journal,
//! apply, projection, replies), without HTTP: `TASKS` tasks each place a keyed resting
//! order and cancel it, through `EngineHandle::submit`, for `SECONDS` on a fresh data
//! directory. Separates the runtime's own capacity from the HTTP server's CPU.
//!
//! `cargo run --release -p qt-api --example runtime_bench -- DIR [TASKS] [SECONDS]`

use qt_api::runtime::{self, RuntimeSettings};
use qt_core::{Amount, NewOrder, OrderId, OrderType, Price, Qty, Side, StpMode, TimeInForce, UserId};
use qt_engine::ports::Journal;
use qt_engine::{Command, CommandEnvelope, CommandMeta, EngineConfig};
use qt_store_sqlite::Store;
use qt_testkit::fixtures::{reference_data, BTC_USD, UNIT, USD};
use std::time::{Duration, Instant};

const USER: UserId = UserId(1);

fn buy(dollars: i64) -> NewOrder {
    NewOrder {
        order_id: OrderId(0),
        user: USER,
        symbol: BTC_USD,
        side: Side::Buy,
        order_type: OrderType::Limit,
        tif: TimeInForce::Gtc,
        price: Some(Price(dollars * 100)),
        stop_price: None,
        qty: Qty(100),
        post_only: false,
        stp: StpMode::CancelNewest,
        client_order_id: None,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).cloned().unwrap_or_else(|| "/tmp/qt-runtime-bench".into()));
    let tasks: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let seconds: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(8);
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir)?;
    let mut setup = reference_data();
    setup.push(Command::CreateUser { user: USER, limits: None });
    setup.push(Command::Deposit { user: USER, asset: USD, amount: Amount(1_000_000_000 * UNIT) });
    let setup: Vec<CommandEnvelope> =
        setup.into_iter().enumerate().map(|(i, cmd)| CommandEnvelope::new(i as u64 + 1, 1, cmd)).collect();
    store.journal()?.append(&setup)?;
    let settings = RuntimeSettings {
        batch_max: 512,
        queue_capacity: 8192,
        snapshot_every: 20_000,
        engine: EngineConfig { risk_enabled: true, ..EngineConfig::default() },
    };
    let (engine, _, thread) = runtime::start(&store, settings)?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let engine = engine.clone();
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut busy = 0u64;
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let meta = CommandMeta { idempotency_key: Some(format!("{t}-{i}")), ..CommandMeta::default() };
                let at = Instant::now();
                let placed = match engine.submit(Command::Place(buy(20_000 + (i % 100) as i64)), Some(meta)).await {
                    Ok(o) => o,
                    Err(_) => {
                        busy += 1;
                        tokio::task::yield_now().await;
                        continue;
                    }
                };
                latencies.push(at.elapsed().as_micros() as u32);
                let Some(order_id) = placed.order_id else { continue };
                let at = Instant::now();
                if engine.submit(Command::Cancel { user: USER, order_id }, None).await.is_ok() {
                    latencies.push(at.elapsed().as_micros() as u32);
                } else {
                    busy += 1;
                }
            }
            (latencies, busy)
        }));
    }
    let mut all = Vec::new();
    let mut busy = 0;
    for h in handles {
        let (l, b) = h.await?;
        all.extend(l);
        busy += b;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct =
        |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    println!(
        "{{\"commands_per_sec\":{:.0},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"busy\":{}}}",
        all.len() as f64 / secs,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        busy
    );
    engine.shutdown().await;
    let _ = thread.join();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
