//! Criterion benchmarks beside the hot code: one command through `Exchange::apply` for
//! each kind of the exchange-core style mix, with risk off and on. The figure that matters
//! across machines is the ratio between the two, measured in the same run.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use qt_engine::{EngineConfig, Exchange};
use qt_testkit::workload::{Workload, WorkloadSpec};

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

criterion_group!(benches, bench_apply);
criterion_main!(benches);
