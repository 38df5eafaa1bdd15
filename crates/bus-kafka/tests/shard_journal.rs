//! A shard of the split engine journals its inputs (client commands, fill reports, market
//! updates) in a partition of its own, in Kafka transactions, and recovers by reading them
//! back (against a real broker, `KAFKA_BROKERS`, from `scripts/servers/with-servers kafka
//! -- …`; SKIPPED without it unless `QT_REQUIRE_SERVERS=1`).

mod common;

use common::{brokers, config};
use qt_bus_kafka::{ensure_topics, topic, BusError, BusProducer, KafkaJournal};
use qt_engine::shard::{Cluster, Journaled, RiskInput, RiskOutput, RiskShard, Sequenced};
use qt_engine::{CommandEnvelope, EngineConfig};
use qt_testkit::workload::{Workload, WorkloadSpec};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_risk_shards_inputs_journal_in_transactions_and_replay_to_the_same_state() {
    let Some(b) = brokers("a_risk_shards_inputs_journal_in_transactions_and_replay_to_the_same_state") else {
        return;
    };
    let cfg = config(b);
    ensure_topics(&cfg).await.unwrap();

    // What risk shard 0 of 2 applies for a small workload (its commands, the fill reports
    // and market updates of the matching shard).
    let w = Workload::generate(&WorkloadSpec { symbols: 2, users: 20, orders_per_book: 30, ops: 400, seed: 5 });
    let mut cluster = Cluster::new(EngineConfig::default(), 2, 1).recording();
    for c in w.setup.iter().chain(&w.ops) {
        cluster.submit(c);
        cluster.drain();
    }
    let inputs: Vec<Sequenced<RiskInput>> = cluster
        .journal
        .take()
        .unwrap()
        .into_iter()
        .filter_map(|j| match j {
            Journaled::Risk(0, input) => Some(input),
            _ => None,
        })
        .collect();
    assert!(inputs.iter().any(|i| matches!(i.input, RiskInput::Report(_))), "fills reported");
    assert!(inputs.iter().any(|i| matches!(i.input, RiskInput::Market(_))), "prices reported");

    // Journaled in transactions of 50, as a shard writes its batches.
    let t = cfg.topic(topic::COMMANDS_MATCHING);
    let p = Arc::new(BusProducer::transactional(&cfg, "risk-0", &cfg.topic("risk-0")).unwrap());
    p.init_transactions().await.unwrap();
    let journal: Arc<KafkaJournal<Sequenced<RiskInput>>> = Arc::new(KafkaJournal::new(&cfg, p.clone(), &t, 0).unwrap());
    for batch in inputs.chunks(50) {
        journal.append_with(batch, &[]).await.unwrap();
    }
    journal.wait_visible(journal.committed_end()).await.unwrap();
    assert_eq!(journal.last_seq_async().await.unwrap(), inputs.last().unwrap().seq);

    // Read back whole, and replayed into a fresh shard: the live shard's state.
    let mut read = Vec::new();
    loop {
        let next = read.last().map_or(1, |i: &Sequenced<RiskInput>| i.seq + 1);
        let batch = journal.read_from_async(next, 97).await.unwrap();
        if batch.is_empty() {
            break;
        }
        read.extend(batch);
    }
    assert_eq!(read, inputs);
    let mut replayed = RiskShard::new(EngineConfig::default());
    let mut out = RiskOutput::default();
    for input in &read {
        replayed.apply(input, &mut out);
        out.clear();
    }
    let live = &cluster.risk[0];
    assert_eq!(replayed.last_input_seq(), live.last_input_seq());
    let mut users: Vec<_> = live.users().collect();
    users.sort_unstable();
    for u in users {
        assert_eq!(replayed.ledger().balances(u), live.ledger().balances(u), "{u:?}");
        assert_eq!(replayed.user(u).map(|s| &s.positions), live.user(u).map(|s| &s.positions), "{u:?}");
    }
    assert_eq!(replayed.ledger().clearing(), live.ledger().clearing());
    replayed.check_invariants().unwrap();

    // Another log's records are refused, not misread.
    let commands: Arc<KafkaJournal<CommandEnvelope>> = Arc::new(KafkaJournal::new(&cfg, p, &t, 0).unwrap());
    match commands.read_from_async(1, 1).await {
        Err(BusError::BadRecord { what, .. }) => assert!(what.contains("not a journal record"), "{what}"),
        other => panic!("read a risk shard's input as a command: {other:?}"),
    }
}
