//! The transactional journal against a real Kafka broker (`KAFKA_BROKERS`, as exported by
//! `scripts/servers/with-servers kafka -- …`): fencing of an older writer with the same
//! transactional id, aborted transactions invisible to readers, and reads that stay
//! correct although commit and abort markers take offsets. Without a broker the tests
//! print SKIPPED and pass, unless `QT_REQUIRE_SERVERS=1`.

mod common;

use common::{brokers, cancel, config};
use qt_bus_kafka::{
    ensure_topics, header, topic, BusError, BusProducer, Dedup, EffectConsumer, KafkaConfig, KafkaJournal, OutRecord,
    TxnError,
};
use qt_engine::CommandEnvelope;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A record of the `events` topic sent with the batch ending at `seq`, tagged with who
/// wrote it.
fn event(cfg: &KafkaConfig, seq: u64, writer: &str) -> OutRecord {
    OutRecord {
        topic: cfg.topic(topic::EVENTS),
        partition: None,
        key: "shard".into(),
        payload: format!("{writer}:{seq}").into_bytes(),
        headers: vec![(header::SOURCE, "shard".into()), (header::SEQ, seq.to_string())],
    }
}

/// Appends in one transaction and waits until `read_committed` readers see it (a commit
/// returns before its markers are written).
async fn append(j: &Arc<KafkaJournal>, batch: &[CommandEnvelope], with: &[OutRecord]) -> Result<(), BusError> {
    j.append_with(batch, with).await?;
    j.wait_visible(j.committed_end()).await
}

async fn seqs(j: &Arc<KafkaJournal>, from: u64, max: usize) -> Vec<u64> {
    j.read_from_async(from, max).await.unwrap().iter().map(|c| c.seq).collect()
}

/// Every `events` payload a `read_committed` consumer sees, once `want` arrived (or 20 s).
async fn committed_events(cfg: &KafkaConfig, want: usize) -> Vec<String> {
    let t = cfg.topic(topic::EVENTS);
    let mut c = EffectConsumer::new(cfg, &format!("{}check", cfg.topic_prefix), &[&t], Dedup::new()).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for r in c.next_batch(100, Duration::from_millis(200)).await.unwrap() {
            out.push(String::from_utf8(r.payload).unwrap());
        }
        if out.len() >= want {
            // Whatever else would be visible has arrived by now too.
            for r in c.next_batch(100, Duration::from_millis(500)).await.unwrap() {
                out.push(String::from_utf8(r.payload).unwrap());
            }
            break;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_stay_correct_across_commit_markers_and_aborted_transactions() {
    let Some(b) = brokers("reads_stay_correct_across_commit_markers_and_aborted_transactions") else { return };
    let cfg = config(b);
    ensure_topics(&cfg).await.unwrap();
    let t = cfg.topic(topic::COMMANDS_MATCHING);
    let p = Arc::new(BusProducer::transactional(&cfg, "txn-reads", &cfg.topic("matching-reads")).unwrap());
    p.init_transactions().await.unwrap();
    let j = Arc::new(KafkaJournal::new(&cfg, Arc::clone(&p), &t, 0).unwrap());
    assert_eq!(j.last_seq_async().await.unwrap(), 0);

    // One transaction per command: a marker after every record (offsets 0, 2, 4, …).
    for s in 1..=9u64 {
        append(&j, &[cancel(s)], &[event(&cfg, s, "owner")]).await.unwrap();
    }
    // The offset below the end is a commit marker: last_seq must find the record before it.
    assert_eq!(j.last_seq_async().await.unwrap(), 9);
    for from in 1..=9u64 {
        assert_eq!(seqs(&j, from, 100).await, (from..=9).collect::<Vec<_>>(), "from {from}");
    }
    assert_eq!(seqs(&j, 4, 2).await, vec![4, 5]);
    assert!(seqs(&j, 10, 10).await.is_empty());

    // An aborted transaction (commands 10, 11, an event) leaves nothing visible.
    let aborted: Vec<OutRecord> = [10u64, 11]
        .iter()
        .map(|&s| {
            let mut r = OutRecord::sequenced(t.clone(), s.to_string(), serde_json::to_vec(&cancel(s)).unwrap(), &t, s);
            r.partition = Some(0);
            r
        })
        .chain([event(&cfg, 10, "aborted")])
        .collect();
    p.begin_transaction().await.unwrap();
    p.send_all(&aborted).await.unwrap();
    p.abort_transaction().await.unwrap();
    assert_eq!(j.last_seq_async().await.unwrap(), 9, "an aborted batch is not the tail");
    assert_eq!(seqs(&j, 8, 100).await, vec![8, 9]);
    assert!(seqs(&j, 10, 10).await.is_empty());

    // The same sequence numbers again, committed this time; then a batch of several.
    append(&j, &[cancel(10), cancel(11)], &[event(&cfg, 10, "owner")]).await.unwrap();
    append(&j, &[cancel(12), cancel(13), cancel(14)], &[]).await.unwrap();
    assert_eq!(j.last_seq_async().await.unwrap(), 14);
    assert_eq!(seqs(&j, 9, 100).await, (9..=14).collect::<Vec<_>>(), "each command once, the aborted ones never");
    assert_eq!(seqs(&j, 11, 2).await, vec![11, 12]);
    let events = committed_events(&cfg, 10).await;
    assert_eq!(events.len(), 10, "{events:?}");
    assert!(events.iter().all(|e| e.starts_with("owner:")), "{events:?}");

    // A new reader (another process) agrees.
    let again = Arc::new(KafkaJournal::new(&cfg, p, &t, 0).unwrap());
    assert_eq!(again.last_seq_async().await.unwrap(), 14);
    assert_eq!(seqs(&again, 1, 100).await, (1..=14).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_with_the_same_transactional_id_fences_the_first() {
    let Some(b) = brokers("a_second_writer_with_the_same_transactional_id_fences_the_first") else { return };
    let cfg = config(b);
    ensure_topics(&cfg).await.unwrap();
    let t = cfg.topic(topic::COMMANDS_MATCHING);
    let id = cfg.topic("matching-fence");
    let old = Arc::new(BusProducer::transactional(&cfg, "txn-old", &id).unwrap());
    old.init_transactions().await.unwrap();
    let zombie = Arc::new(KafkaJournal::new(&cfg, Arc::clone(&old), &t, 0).unwrap());
    append(&zombie, &[cancel(1), cancel(2)], &[event(&cfg, 1, "old")]).await.unwrap();

    // The old writer is in the middle of a batch when the new one initialises.
    let mut open = OutRecord::sequenced(t.clone(), "3".into(), serde_json::to_vec(&cancel(3)).unwrap(), &t, 3);
    open.partition = Some(0);
    old.begin_transaction().await.unwrap();
    old.send_all(&[open, event(&cfg, 3, "zombie")]).await.unwrap();

    let new = Arc::new(BusProducer::transactional(&cfg, "txn-new", &id).unwrap());
    new.init_transactions().await.unwrap();
    let e = old.commit_transaction().await.unwrap_err();
    assert_eq!(e.txn(), TxnError::Fenced, "{e}");

    // Every later append of the old writer fails as fenced, for good.
    for _ in 0..2 {
        let e = append(&zombie, &[cancel(3)], &[event(&cfg, 3, "zombie")]).await.unwrap_err();
        assert!(matches!(e, BusError::Fenced(_)), "{e:?}");
        assert!(e.is_fatal());
    }

    let owner = Arc::new(KafkaJournal::new(&cfg, new, &t, 0).unwrap());
    assert_eq!(owner.last_seq_async().await.unwrap(), 2, "the zombie's open batch was aborted");
    append(&owner, &[cancel(3), cancel(4)], &[event(&cfg, 3, "new")]).await.unwrap();
    assert_eq!(seqs(&owner, 1, 100).await, vec![1, 2, 3, 4], "one history");
    assert_eq!(owner.read_from_async(3, 1).await.unwrap()[0], cancel(3));
    assert_eq!(seqs(&zombie, 1, 100).await, vec![1, 2, 3, 4], "what any reader sees");
    let events = committed_events(&cfg, 2).await;
    assert_eq!(events, vec!["old:1".to_string(), "new:3".to_string()]);
}
