//! Criterion benchmark of the split exchange: the same command stream through the whole
//! exchange and through risk and matching shards joined by in-memory queues ([`Cluster`]),
//! in lock step (1 risk x 1 matching, every message delivered before the next command) and
//! with 4 x 4 shards drained every 64 commands. The figure that matters is the ratio to
//! the whole exchange in the same run: what the split costs in CPU before any transport.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use qt_engine::shard::Cluster;
use qt_engine::{EngineConfig, Exchange};
use qt_testkit::workload::{Workload, WorkloadSpec};

fn bench_split(c: &mut Criterion) {
    let spec = WorkloadSpec { symbols: 4, users: 1_000, orders_per_book: 1_000, ops: 20_000, seed: 7 };
    let w = Workload::generate(&spec);
    let mut group = c.benchmark_group("split");
    group.throughput(Throughput::Elements(w.ops.len() as u64));
    group.sample_size(10);
    group.bench_function("whole_exchange", |b| {
        b.iter_batched(
            || {
                let mut ex = Exchange::new(EngineConfig::default());
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
    for (name, risk, matching, every) in [("lock_step_1x1", 1, 1, 1), ("pipelined_4x4_by_64", 4, 4, 64)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let mut cluster = Cluster::new(EngineConfig::default(), risk, matching);
                    for cmd in &w.setup {
                        cluster.submit(cmd);
                    }
                    cluster.drain();
                    cluster.events.clear();
                    cluster
                },
                |mut cluster| {
                    for chunk in w.ops.chunks(every) {
                        for cmd in chunk {
                            cluster.submit(cmd);
                        }
                        cluster.drain();
                        cluster.events.clear();
                    }
                    cluster
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_split);
criterion_main!(benches);
