//! `quanttrader bench engine`: the engine's throughput and latency on the exchange-core
//! style workload, single thread, with risk off (pure matching) and on (reservations,
//! limits and settlement), each run on a fresh exchange from the same command stream.
//!
//! Figures: throughput is measured on a pass without per-command timers; latency on a
//! second pass that times each command (so it includes the timer's own cost, ~20 ns).
//! Risk-on is reported as a ratio to risk-off measured in the same process, which is what
//! survives a noisy shared machine.

use anyhow::{ensure, Result};
use hdrhistogram::Histogram;
use qt_engine::{CommandEnvelope, EngineConfig, EventEnvelope, Exchange};
use qt_testkit::workload::{OpKind, Workload, WorkloadSpec};
use serde::Serialize;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RiskMode {
    On,
    Off,
    Both,
}

#[derive(Debug, clap::Args)]
pub struct EngineBenchArgs {
    /// Number of order books (symbols).
    #[arg(long, default_value_t = 1)]
    pub symbols: u16,
    /// Commands in the measured stream.
    #[arg(long, default_value_t = 2_000_000)]
    pub ops: usize,
    /// Users placing orders.
    #[arg(long, default_value_t = 2_000)]
    pub users: u64,
    /// Resting orders per book before measuring.
    #[arg(long, default_value_t = 3_000)]
    pub depth: usize,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pre-trade risk and settlement; `both` runs off then on and reports the ratio.
    #[arg(long, value_enum, default_value = "off")]
    pub risk: RiskMode,
    /// Repetitions per mode; the median throughput is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One mode's figures; with `--json` and one mode this is the whole output.
#[derive(Debug, Serialize)]
struct ModeResult {
    risk: bool,
    ops: usize,
    /// Median over the runs.
    ops_per_sec: f64,
    ops_per_sec_runs: Vec<f64>,
    p50_ns: u64,
    p90_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    max_ns: u64,
    events_per_op: f64,
    state_hash: String,
    workload: WorkloadInfo,
}

#[derive(Debug, Serialize)]
struct BothReport {
    off: ModeResult,
    on: ModeResult,
    /// Risk-on throughput divided by risk-off throughput, measured in the same process.
    risk_on_vs_off: f64,
}

#[derive(Clone, Debug, Serialize)]
struct WorkloadInfo {
    symbols: u16,
    users: u64,
    depth: usize,
    ops: usize,
    seed: u64,
    mix: Mix,
}

#[derive(Clone, Debug, Serialize)]
struct Mix {
    gtc: usize,
    ioc: usize,
    cancel: usize,
    amend: usize,
}

fn fresh(risk: bool, setup: &[CommandEnvelope]) -> Exchange {
    let mut ex = Exchange::new(EngineConfig { risk_enabled: risk, ..EngineConfig::default() });
    let mut out = Vec::new();
    for c in setup {
        ex.apply(c, &mut out);
        out.clear();
    }
    ex
}

/// One pass without timers: returns (elapsed seconds, events emitted, final state hash).
fn throughput_pass(risk: bool, w: &Workload) -> (f64, u64, Exchange) {
    let mut ex = fresh(risk, &w.setup);
    let mut out: Vec<EventEnvelope> = Vec::with_capacity(1024);
    let mut events = 0u64;
    let start = Instant::now();
    for c in &w.ops {
        ex.apply(c, &mut out);
        events += out.len() as u64;
        out.clear();
    }
    (start.elapsed().as_secs_f64(), events, ex)
}

fn latency_pass(risk: bool, w: &Workload, hist: &mut Histogram<u64>) {
    let mut ex = fresh(risk, &w.setup);
    let mut out: Vec<EventEnvelope> = Vec::with_capacity(1024);
    for c in &w.ops {
        let t = Instant::now();
        ex.apply(c, &mut out);
        let ns = t.elapsed().as_nanos() as u64;
        out.clear();
        hist.saturating_record(ns.max(1));
    }
}

fn run_mode(risk: bool, args: &EngineBenchArgs, w: &Workload, info: &WorkloadInfo) -> Result<ModeResult> {
    // Warm-up: caches, branch predictors and the allocator's free lists; not measured.
    throughput_pass(risk, w);
    let mut runs = Vec::new();
    let mut hash: Option<String> = None;
    let mut events = 0;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    for _ in 0..args.runs.max(1) {
        let (secs, ev, ex) = throughput_pass(risk, w);
        runs.push(w.ops.len() as f64 / secs);
        events = ev;
        let h = ex.state_hash();
        // Every run must end in the same state: the engine is deterministic.
        if let Some(prev) = &hash {
            ensure!(prev == &h, "non-deterministic run: state hash {h} differs from {prev}");
        }
        hash = Some(h);
        latency_pass(risk, w, &mut hist);
    }
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(ModeResult {
        risk,
        ops: w.ops.len(),
        ops_per_sec: sorted[sorted.len() / 2],
        ops_per_sec_runs: runs,
        p50_ns: hist.value_at_quantile(0.5),
        p90_ns: hist.value_at_quantile(0.9),
        p99_ns: hist.value_at_quantile(0.99),
        p999_ns: hist.value_at_quantile(0.999),
        max_ns: hist.max(),
        events_per_op: events as f64 / w.ops.len() as f64,
        state_hash: hash.unwrap_or_default(),
        workload: info.clone(),
    })
}

pub fn engine(args: &EngineBenchArgs) -> Result<()> {
    ensure!(args.symbols > 0, "--symbols must be at least 1");
    ensure!(args.users > 0, "--users must be at least 1");
    ensure!(args.ops > 0, "--ops must be at least 1");
    let spec = WorkloadSpec {
        symbols: args.symbols,
        users: args.users,
        orders_per_book: args.depth,
        ops: args.ops,
        seed: args.seed,
    };
    let t = Instant::now();
    let w = Workload::generate(&spec);
    if !args.json {
        eprintln!(
            "generated {} setup + {} measured commands in {:.1}s",
            w.setup.len(),
            w.ops.len(),
            t.elapsed().as_secs_f64()
        );
    }
    let count = |k| w.kinds.iter().filter(|x| **x == k).count();
    let mix = Mix {
        gtc: count(OpKind::Gtc),
        ioc: count(OpKind::Ioc),
        cancel: count(OpKind::Cancel),
        amend: count(OpKind::Amend),
    };
    let info = WorkloadInfo {
        symbols: args.symbols,
        users: args.users,
        depth: args.depth,
        ops: args.ops,
        seed: args.seed,
        mix,
    };
    let results = match args.risk {
        RiskMode::Off => vec![run_mode(false, args, &w, &info)?],
        RiskMode::On => vec![run_mode(true, args, &w, &info)?],
        RiskMode::Both => vec![run_mode(false, args, &w, &info)?, run_mode(true, args, &w, &info)?],
    };
    if args.json {
        let mut results = results.into_iter();
        match (results.next(), results.next()) {
            (Some(off), Some(on)) => {
                let risk_on_vs_off = on.ops_per_sec / off.ops_per_sec;
                println!("{}", serde_json::to_string_pretty(&BothReport { off, on, risk_on_vs_off })?);
            }
            (Some(one), None) => println!("{}", serde_json::to_string_pretty(&one)?),
            _ => {}
        }
        return Ok(());
    }
    let m = &info.mix;
    println!(
        "workload: {} symbols, {} users, {} resting/book, {} ops (gtc {} ioc {} cancel {} amend {}), seed {}",
        args.symbols, args.users, args.depth, args.ops, m.gtc, m.ioc, m.cancel, m.amend, args.seed
    );
    println!(
        "{:<6} {:>14} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
        "risk", "ops/s", "p50 ns", "p90 ns", "p99 ns", "p99.9", "max ns", "events/op"
    );
    for r in &results {
        println!(
            "{:<6} {:>14.0} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10.2}",
            if r.risk { "on" } else { "off" },
            r.ops_per_sec,
            r.p50_ns,
            r.p90_ns,
            r.p99_ns,
            r.p999_ns,
            r.max_ns,
            r.events_per_op
        );
    }
    if let [off, on] = &results[..] {
        println!("risk on / risk off throughput: {:.2}", on.ops_per_sec / off.ops_per_sec);
    }
    Ok(())
}
