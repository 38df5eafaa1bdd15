//! Criterion benchmarks beside the hot code: one command through `Exchange::apply` for
//! each kind of the exchange-core style mix, with risk off and on. The figure that matters
//! across machines is the ratio between the two, measured in the same run.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use qt_core::{OrderId, Price, Qty, Side, SymbolId, UserId};
use qt_engine::{Command, CommandEnvelope, EngineConfig, Exchange};
use qt_testkit::workload::{Workload, WorkloadSpec, MID};
use std::time::{Duration, Instant};

/// An exchange with the workload's users and books (1,000 resting orders), risk as given.
fn ready_exchange(w: &Workload, risk: bool) -> Exchange {
    let mut ex = Exchange::new(EngineConfig { risk_enabled: risk, ..EngineConfig::default() });
    let mut out = Vec::new();
    for cmd in &w.setup {
        ex.apply(cmd, &mut out);
        out.clear();
    }
    ex
}

fn place_cmd(seq: u64, id: u64, user: u64, side: Side, price: i64) -> CommandEnvelope {
    let mut o = qt_testkit::Harness::empty(EngineConfig::default()).order(UserId(user), side, price, 10);
    o.order_id = OrderId(id);
    o.symbol = SymbolId(0);
    CommandEnvelope::new(seq, seq as i64, Command::Place(o))
}

/// Times `iters` commands of one kind on a fresh exchange; `prepare` issues untimed
/// commands first (the orders a cancel or amend needs).
fn time_kind(
    w: &Workload,
    risk: bool,
    iters: u64,
    prepare: impl Fn(u64, u64) -> Vec<CommandEnvelope>,
    measured: impl Fn(u64, u64) -> CommandEnvelope,
) -> Duration {
    let mut ex = ready_exchange(w, risk);
    let mut out = Vec::new();
    let base_seq = ex.last_cmd_seq() + 1;
    let prep = prepare(base_seq, iters);
    for c in &prep {
        ex.apply(c, &mut out);
        out.clear();
    }
    let first = base_seq + prep.len() as u64;
    let cmds: Vec<CommandEnvelope> = (0..iters).map(|i| measured(first + i, i)).collect();
    let start = Instant::now();
    for c in &cmds {
        ex.apply(c, &mut out);
        out.clear();
    }
    start.elapsed()
}

/// Place (resting, non-crossing), cancel and amend (price move) on a book of 1,000
/// resting orders, one command per iteration.
fn bench_kinds(c: &mut Criterion) {
    let spec = WorkloadSpec { symbols: 1, users: 1_000, orders_per_book: 1_000, ops: 0, seed: 7 };
    let w = Workload::generate(&spec);
    const FIRST_ID: u64 = 10_000_000;
    let mut group = c.benchmark_group("command");
    group.throughput(Throughput::Elements(1));
    for risk in [false, true] {
        let suffix = if risk { "risk_on" } else { "risk_off" };
        group.bench_function(format!("place_{suffix}"), |b| {
            b.iter_custom(|iters| {
                time_kind(
                    &w,
                    risk,
                    iters,
                    |_, _| Vec::new(),
                    |seq, i| {
                        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
                        let offset = 60 + (i % 100) as i64;
                        let price = if side == Side::Buy { MID - offset } else { MID + offset };
                        place_cmd(seq, FIRST_ID + i, 1 + i % 1_000, side, price)
                    },
                )
            })
        });
        group.bench_function(format!("cancel_{suffix}"), |b| {
            b.iter_custom(|iters| {
                time_kind(
                    &w,
                    risk,
                    iters,
                    |seq, n| {
                        (0..n)
                            .map(|i| {
                                place_cmd(seq + i, FIRST_ID + i, 1 + i % 1_000, Side::Buy, MID - 60 - (i % 100) as i64)
                            })
                            .collect()
                    },
                    |seq, i| {
                        CommandEnvelope::new(
                            seq,
                            seq as i64,
                            Command::Cancel { user: UserId(1 + i % 1_000), order_id: OrderId(FIRST_ID + i) },
                        )
                    },
                )
            })
        });
        group.bench_function(format!("amend_{suffix}"), |b| {
            b.iter_custom(|iters| {
                const RESTING: u64 = 1_000;
                time_kind(
                    &w,
                    risk,
                    iters,
                    |seq, _| {
                        (0..RESTING)
                            .map(|i| place_cmd(seq + i, FIRST_ID + i, 1 + i, Side::Buy, MID - 60 - (i % 100) as i64))
                            .collect()
                    },
                    |seq, i| {
                        let k = i % RESTING;
                        // Each pass over the orders moves them one tick further down.
                        let price = MID - 60 - (k % 100) as i64 - 1 - (i / RESTING) as i64 % 50;
                        CommandEnvelope::new(
                            seq,
                            seq as i64,
                            Command::Amend {
                                user: UserId(1 + k),
                                order_id: OrderId(FIRST_ID + k),
                                price: Some(Price(price)),
                                qty: Some(Qty(10)),
                            },
                        )
                    },
                )
            })
        });
    }
    group.finish();
}

fn bench_apply(c: &mut Criterion) {
    let spec = WorkloadSpec { symbols: 1, users: 1_000, orders_per_book: 1_000, ops: 20_000, seed: 7 };
    let w = Workload::generate(&spec);
    let mut group = c.benchmark_group("apply");
    group.throughput(Throughput::Elements(w.ops.len() as u64));
    group.sample_size(10);
    for risk in [false, true] {
        let name = if risk { "stream_risk_on" } else { "stream_risk_off" };
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let mut ex = Exchange::new(EngineConfig { risk_enabled: risk, ..EngineConfig::default() });
                    let mut out = Vec::new();
                    for cmd in &w.setup {
                        ex.apply(cmd, &mut out);
                        out.clear();
                    }
                    (ex, Vec::with_capacity(64))
                },
                |(mut ex, mut out)| {
                    for cmd in &w.ops {
                        ex.apply(cmd, &mut out);
                        out.clear();
                    }
                    ex
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_kinds, bench_apply);
criterion_main!(benches);
