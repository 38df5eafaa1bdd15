//! Throughput of the store on this machine: read-model projection of a simulator-like
//! command stream, and durable journal appends at several batch sizes.
//!
//! ```text
//! cargo run --release -p qt-store-sqlite --example store_bench -- [--ops N] [--batch N]
//!     [--risk on|off] [--dir DIR] [--journal-seconds S]
//! ```
//!
//! The stream is qt_testkit's exchange-core-like workload (9% GTC, 3% IOC, 6% cancel, 82%
//! amend over 1000 users and 3 pre-filled books), applied by a real `Exchange`; only the
//! `project` calls are timed. Journal appends are fsync-bound: the figures say how fast
//! the disk under `--dir` (default: the system temp dir) makes a WAL commit durable.
//! Prints one JSON object per measurement.

use qt_engine::ports::Journal;
use qt_engine::{CommandEnvelope, EngineConfig, EventEnvelope, Exchange};
use qt_store_sqlite::{Projected, Store};
use qt_testkit::workload::{Workload, WorkloadSpec};
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Args {
    ops: usize,
    batch: usize,
    risk: bool,
    dir: Option<PathBuf>,
    journal_seconds: f64,
}

fn usage() -> ! {
    eprintln!(
        "usage: store_bench [--ops N (100000)] [--batch N (64)] [--risk on|off (on)] [--dir DIR] \
         [--journal-seconds S (3)]"
    );
    std::process::exit(2)
}

fn parse() -> Args {
    let mut a = Args { ops: 100_000, batch: 64, risk: true, dir: None, journal_seconds: 3.0 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--ops" => a.ops = value().parse().unwrap_or_else(|_| usage()),
            "--batch" => a.batch = value().parse::<usize>().unwrap_or_else(|_| usage()).max(1),
            "--risk" => a.risk = value() == "on",
            "--dir" => a.dir = Some(PathBuf::from(value())),
            "--journal-seconds" => a.journal_seconds = value().parse().unwrap_or_else(|_| usage()),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    a
}

/// CPU seconds (user + system) this thread has used, from /proc: on a shared machine the
/// wall clock also counts time spent waiting for a core.
fn thread_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // USER_HZ is 100 on every Linux platform we run on.
    (ticks(11) + ticks(12)) / 100.0
}

/// A fresh directory for one measurement; removed at the end.
fn scratch_dir(base: &Option<PathBuf>, tag: &str) -> PathBuf {
    let root = base.clone().unwrap_or_else(std::env::temp_dir);
    let dir = root.join(format!("qt-store-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn project_bench(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let spec = WorkloadSpec { symbols: 3, users: 1_000, orders_per_book: 1_000, ops: a.ops, seed: 7 };
    let w = Workload::generate(&spec);
    let mut ex = Exchange::new(EngineConfig { risk_enabled: a.risk, ..EngineConfig::default() });
    let dir = scratch_dir(&a.dir, "project");
    let store = Store::open(&dir)?;
    let mut proj = store.projector()?;
    let mut events: Vec<EventEnvelope> = Vec::new();
    let mut ranges = Vec::new();
    let mut project = |cmds: &[CommandEnvelope],
                       timed: &mut Duration,
                       cpu: &mut f64,
                       n_events: &mut usize|
     -> Result<(), Box<dyn std::error::Error>> {
        for chunk in cmds.chunks(a.batch) {
            events.clear();
            ranges.clear();
            for c in chunk {
                let start = events.len();
                ex.apply(c, &mut events);
                ranges.push(start..events.len());
            }
            *n_events += events.len();
            let items: Vec<Projected<'_>> =
                chunk.iter().zip(&ranges).map(|(c, r)| Projected { command: c, events: &events[r.clone()] }).collect();
            let t = Instant::now();
            let c = thread_cpu_seconds();
            proj.project(&items)?;
            *timed += t.elapsed();
            *cpu += thread_cpu_seconds() - c;
        }
        Ok(())
    };
    let (mut setup_time, mut setup_cpu, mut setup_events) = (Duration::ZERO, 0.0f64, 0);
    project(&w.setup, &mut setup_time, &mut setup_cpu, &mut setup_events)?;
    let (mut time, mut cpu, mut n_events) = (Duration::ZERO, 0.0f64, 0);
    project(&w.ops, &mut time, &mut cpu, &mut n_events)?;
    let secs = time.as_secs_f64();
    println!(
        "{{\"bench\":\"project\",\"risk\":{},\"batch\":{},\"commands\":{},\"events\":{},\"seconds\":{:.3},\
         \"commands_per_sec\":{:.0},\"events_per_sec\":{:.0},\"cpu_seconds\":{:.3},\"commands_per_cpu_sec\":{:.0},\"setup_commands\":{},\"setup_commands_per_sec\":{:.0}}}",
        a.risk,
        a.batch,
        w.ops.len(),
        n_events,
        secs,
        w.ops.len() as f64 / secs,
        n_events as f64 / secs,
        cpu,
        w.ops.len() as f64 / cpu.max(1e-9),
        w.setup.len(),
        w.setup.len() as f64 / setup_time.as_secs_f64(),
    );
    // What the API sees: a list of a user's orders and fills while the model is large.
    let reader = store.reader()?;
    let t = Instant::now();
    let mut rows = 0;
    let queries = 2_000u64;
    for u in 0..queries {
        let user = qt_core::UserId(1 + u % spec.users);
        rows += reader.orders(user, &qt_store_sqlite::OrderFilter { limit: 50, ..Default::default() })?.0.len();
        rows += reader.executions(user, None, 50, None)?.0.len();
    }
    let per = t.elapsed().as_secs_f64() / (2 * queries) as f64;
    println!("{{\"bench\":\"read_lists\",\"queries\":{},\"rows\":{rows},\"mean_us\":{:.1}}}", 2 * queries, per * 1e6);
    // What every place request costs the read side besides the engine: the API key lookup
    // and the idempotency lookups (a miss before submitting, a hit after).
    let point = 20_000u64;
    let t = Instant::now();
    for u in 0..point {
        let user = qt_core::UserId(1 + u % spec.users);
        let _ = reader.user_by_key_hash("no-such-key")?;
        let _ = reader.idempotency_at(user, "no-such-key", 0)?;
    }
    let per = t.elapsed().as_secs_f64() / (2 * point) as f64;
    println!("{{\"bench\":\"read_point\",\"queries\":{},\"mean_us\":{:.1}}}", 2 * point, per * 1e6);
    drop((proj, reader, store));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn journal_bench(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let w = Workload::generate(&WorkloadSpec { symbols: 1, users: 100, orders_per_book: 100, ops: 20_000, seed: 3 });
    let template: Vec<CommandEnvelope> = w.setup.iter().chain(&w.ops).cloned().collect();
    for batch in [1usize, 64, 512] {
        let dir = scratch_dir(&a.dir, &format!("journal-{batch}"));
        let store = Store::open(&dir)?;
        let mut j = store.journal()?;
        let mut seq = 0u64;
        let mut batches = 0u64;
        let mut lat = Vec::new();
        let start = Instant::now();
        let mut buf: Vec<CommandEnvelope> = Vec::with_capacity(batch);
        while start.elapsed().as_secs_f64() < a.journal_seconds {
            buf.clear();
            for _ in 0..batch {
                let mut c = template[seq as usize % template.len()].clone();
                seq += 1;
                c.seq = seq;
                buf.push(c);
            }
            let t = Instant::now();
            j.append(&buf)?;
            lat.push(t.elapsed());
            batches += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        lat.sort_unstable();
        let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
        println!(
            "{{\"bench\":\"journal\",\"batch\":{batch},\"batches\":{batches},\"batches_per_sec\":{:.0},\
             \"commands_per_sec\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
            batches as f64 / secs,
            (batches * batch as u64) as f64 / secs,
            p(0.5),
            p(0.99)
        );
        drop((j, store));
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = parse();
    project_bench(&a)?;
    journal_bench(&a)?;
    Ok(())
}
