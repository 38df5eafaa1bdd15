//! Integration tests against a real Kafka broker (`KAFKA_BROKERS`, as exported by
//! `scripts/servers/with-servers kafka -- …`). Without it they print SKIPPED and pass,
//! unless `QT_REQUIRE_SERVERS=1`. Every test uses its own topic prefix, so they run in
//! parallel and never see each other's records.

mod common;

use common::{brokers, cancel, config};
use hdrhistogram::Histogram;
use qt_bus_kafka::{
    ensure_topics, group, join_commands, topic, BusError, BusProducer, Dedup, EffectConsumer, KafkaEventSink,
    KafkaJournal, OutRecord, SyncJournal,
};
use qt_core::{OrderId, UserId};
use qt_engine::ports::{EventSink as _, Journal as _};
use qt_engine::{CommandEnvelope, Event, EventEnvelope};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_with_their_settings_and_creation_is_idempotent() {
    let Some(b) = brokers("topics_are_created_with_their_settings_and_creation_is_idempotent") else { return };
    let mut cfg = config(b);
    cfg.partitions.insert(topic::COMMANDS_MATCHING.into(), 4);
    let first = ensure_topics(&cfg).await.unwrap();
    assert_eq!(first.len(), topic::ALL.len());
    assert!(first.iter().all(|t| t.created), "{first:?}");
    let again = ensure_topics(&cfg).await.unwrap();
    assert!(again.iter().all(|t| !t.created && t.drift.is_empty()), "{again:?}");
    let matching = again.iter().find(|t| t.topic == cfg.topic(topic::COMMANDS_MATCHING)).unwrap();
    assert_eq!(matching.partitions, 4);
    // Asking for more partitions than exist is refused, never applied silently.
    cfg.partitions.insert(topic::ORDERS.into(), 9);
    assert!(matches!(ensure_topics(&cfg).await, Err(BusError::PartitionMismatch { wanted: 9, actual: 3, .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_round_trip_in_order_with_latency_figures() {
    let Some(b) = brokers("idempotent_producer_round_trip_in_order_with_latency_figures") else { return };
    let cfg = config(b);
    ensure_topics(&cfg).await.unwrap();
    let producer = BusProducer::new(&cfg, "test-producer").unwrap();
    let orders = cfg.topic(topic::ORDERS);
    let (batches, per_batch) = (40u64, 100u64);
    let mut hist = Histogram::<u64>::new(3).unwrap();
    for b in 0..batches {
        let records: Vec<OutRecord> = (0..per_batch)
            .map(|i| {
                let seq = b * per_batch + i + 1;
                OutRecord::sequenced(
                    orders.clone(),
                    (seq % 5).to_string(),
                    serde_json::to_vec(&cancel(seq)).unwrap(),
                    "ingestion-a",
                    seq,
                )
            })
            .collect();
        let t = Instant::now();
        let acks = producer.send_all(&records).await.unwrap();
        // The first batch pays for connections and metadata: not a steady-state figure.
        if b > 0 {
            hist.record(t.elapsed().as_micros() as u64).unwrap();
        }
        assert_eq!(acks.len(), records.len());
        assert!(acks.iter().all(|d| d.offset >= 0));
    }
    println!(
        "FIGURE kafka produce->ack, batch of {per_batch} (acks=all, idempotent, lz4): p50 {} us, p99 {} us, max {} us over {batches} batches",
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.max()
    );

    let mut consumer = EffectConsumer::new(&cfg, &format!("{}g", cfg.topic_prefix), &[&orders], Dedup::new()).unwrap();
    let total = (batches * per_batch) as usize;
    let mut got: Vec<(String, u64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < total && Instant::now() < deadline {
        let batch = consumer.next_batch(500, Duration::from_secs(2)).await.unwrap();
        for r in &batch {
            assert!(!r.duplicate);
            let env: CommandEnvelope = r.decode().unwrap();
            assert_eq!(env.seq, r.seq);
            got.push((String::from_utf8(r.key.clone().unwrap()).unwrap(), r.seq));
        }
        consumer.commit(&batch).await.unwrap();
    }
    assert_eq!(got.len(), total, "every acknowledged record is consumed exactly once");
    // Per key (one partition each), order is the production order.
    let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (k, s) in got {
        by_key.entry(k).or_default().push(s);
    }
    for (k, seqs) in &by_key {
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "key {k} out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_appends_reads_from_a_sequence_and_survives_a_new_client() {
    let Some(b) = brokers("journal_appends_reads_from_a_sequence_and_survives_a_new_client") else { return };
    let cfg = config(b);
    ensure_topics(&cfg).await.unwrap();
    let t = cfg.topic(topic::COMMANDS_MATCHING);
    let producer = Arc::new(BusProducer::new(&cfg, "matching-1").unwrap());
    let journal = Arc::new(KafkaJournal::new(&cfg, Arc::clone(&producer), &t, 1).unwrap());
    assert_eq!(journal.last_seq_async().await.unwrap(), 0);
    assert!(journal.read_from_async(1, 10).await.unwrap().is_empty());
    for chunk in (1..=60u64).collect::<Vec<_>>().chunks(20) {
        let batch: Vec<_> = chunk.iter().map(|&s| cancel(s)).collect();
        journal.append_async(&batch).await.unwrap();
    }
    assert_eq!(journal.last_seq_async().await.unwrap(), 60);
    let got: Vec<u64> = journal.read_from_async(25, 10).await.unwrap().iter().map(|c| c.seq).collect();
    assert_eq!(got, (25..35).collect::<Vec<_>>());
    assert_eq!(journal.read_from_async(1, 1).await.unwrap()[0], cancel(1), "envelopes round-trip exactly");
    assert!(matches!(journal.append_async(&[cancel(60)]).await, Err(BusError::OutOfOrder { last: 60, got: 60 })));

    // A new process: another producer and journal on the same partition.
    drop(journal);
    let producer2 = Arc::new(BusProducer::new(&cfg, "matching-1b").unwrap());
    let journal2 = Arc::new(KafkaJournal::new(&cfg, producer2, &t, 1).unwrap());
    assert_eq!(journal2.last_seq_async().await.unwrap(), 60);
    journal2.append_async(&[cancel(61), cancel(62)]).await.unwrap();
    let tail: Vec<u64> = journal2.read_from_async(58, 100).await.unwrap().iter().map(|c| c.seq).collect();
    assert_eq!(tail, vec![58, 59, 60, 61, 62]);
    assert!(journal2.read_from_async(63, 10).await.unwrap().is_empty());

    // Group commit figure: the journal of a shard appending batches of 100 commands.
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let started = Instant::now();
    let mut next = 63u64;
    for _ in 0..30 {
        let batch: Vec<_> = (next..next + 100).map(cancel).collect();
        next += 100;
        let t = Instant::now();
        journal2.append_async(&batch).await.unwrap();
        hist.record(t.elapsed().as_micros() as u64).unwrap();
    }
    println!(
        "FIGURE kafka journal append, batch of 100 commands: p50 {} us, p99 {} us; {:.0} commands/s sequential",
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        3000.0 / started.elapsed().as_secs_f64()
    );
    assert_eq!(journal2.last_seq_async().await.unwrap(), next - 1);

    // Sparse sequence numbers (another partition): the search must not assume density.
    let sparse = Arc::new(KafkaJournal::new(&cfg, Arc::clone(&producer), &t, 2).unwrap());
    let seqs: Vec<u64> = (1..=40).map(|i| i * 5).collect();
    sparse.append_async(&seqs.iter().map(|&s| cancel(s)).collect::<Vec<_>>()).await.unwrap();
    let got: Vec<u64> = sparse.read_from_async(97, 3).await.unwrap().iter().map(|c| c.seq).collect();
    assert_eq!(got, vec![100, 105, 110]);
    let got: Vec<u64> = sparse.read_from_async(3, 2).await.unwrap().iter().map(|c| c.seq).collect();
    assert_eq!(got, vec![5, 10]);
    assert_eq!(sparse.last_seq_async().await.unwrap(), 200);
}

#[test]
fn sync_journal_and_sink_serve_the_engine_thread() {
    let Some(b) = brokers("sync_journal_and_sink_serve_the_engine_thread") else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let cfg = config(b);
    rt.block_on(ensure_topics(&cfg)).unwrap();
    let producer = Arc::new(BusProducer::new(&cfg, "matching-0").unwrap());
    let journal =
        Arc::new(KafkaJournal::new(&cfg, Arc::clone(&producer), cfg.topic(topic::COMMANDS_MATCHING), 0).unwrap());
    // The engine thread is a plain thread: the sync ports block_on the runtime's handle.
    let handle = rt.handle().clone();
    let sink_cfg = cfg.clone();
    std::thread::spawn(move || {
        let mut j = SyncJournal::new(journal, handle.clone());
        j.append(&[cancel(1), cancel(2), cancel(3)]).unwrap();
        assert_eq!(j.last_seq().unwrap(), 3);
        assert_eq!(j.read_from(2, 10).unwrap().len(), 2);
        let mut sink =
            qt_bus_kafka::SyncEventSink::new(KafkaEventSink::new(&sink_cfg, producer, "matching-0", 0), handle);
        let ev = |seq| EventEnvelope { seq, cmd_seq: seq, ts: 0, event: Event::UserCreated { user: UserId(seq) } };
        sink.publish(&[ev(1), ev(2)]).unwrap();
        sink.publish(&[ev(2), ev(3)]).unwrap();
        assert_eq!(sink.inner().last_seq(), 3);
    })
    .join()
    .unwrap();
}

/// What a consumer's durable store holds: effects applied, and the last seq per source,
/// written together (as the projector does in one transaction).
#[derive(Default)]
struct Durable {
    applied: BTreeMap<u64, u32>,
    last: BTreeMap<String, u64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_crashes_before_committing_sees_the_batch_again_and_effects_happen_once() {
    let Some(b) = brokers("a_consumer_that_crashes_before_committing_sees_the_batch_again_and_effects_happen_once")
    else {
        return;
    };
    let cfg = config(b);
    ensure_topics(&cfg).await.unwrap();
    let producer = Arc::new(BusProducer::new(&cfg, "matching-0").unwrap());
    let mut sink = KafkaEventSink::new(&cfg, producer, "matching-0", 0);
    let events: Vec<EventEnvelope> = (1..=10)
        .map(|seq| EventEnvelope { seq, cmd_seq: seq, ts: 0, event: Event::UserCreated { user: UserId(seq) } })
        .collect();
    sink.publish_async(&events).await.unwrap();
    // The engine hands the same events again after a restart: the sink skips them, and
    // a second sink that does not know (seeded at 0) re-publishes them as duplicates.
    sink.publish_async(&events[..5]).await.unwrap();
    let mut replay =
        KafkaEventSink::new(&cfg, Arc::new(BusProducer::new(&cfg, "matching-0-bis").unwrap()), "matching-0", 0);
    replay.publish_async(&events[..3]).await.unwrap();

    let events_topic = cfg.topic(topic::EVENTS);
    let group_id = format!("{}{}", cfg.topic_prefix, group::PROJECTOR);
    let mut store = Durable::default();
    let apply = |store: &mut Durable, batch: &[qt_bus_kafka::Received]| {
        for r in batch.iter().filter(|r| !r.duplicate) {
            let e: EventEnvelope = r.decode().unwrap();
            *store.applied.entry(e.seq).or_default() += 1;
            store.last.insert(r.stream.clone(), r.seq);
        }
    };
    // Member A applies the first 6 records durably, then dies before committing.
    {
        let mut a = EffectConsumer::new(&cfg, &group_id, &[&events_topic], Dedup::new()).unwrap();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.len() < 6 && Instant::now() < deadline {
            seen.extend(a.next_batch(6 - seen.len(), Duration::from_secs(2)).await.unwrap());
        }
        assert_eq!(seen.len(), 6);
        apply(&mut store, &seen);
    }
    assert_eq!(store.applied.len(), 6);

    // Member B starts from what the store says and gets everything again (no commit).
    let mut dedup = Dedup::new();
    for (s, q) in &store.last {
        dedup.seed(s.clone(), *q);
    }
    let mut b = EffectConsumer::new(&cfg, &group_id, &[&events_topic], dedup).unwrap();
    let mut all = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while all.len() < 13 && Instant::now() < deadline {
        all.extend(b.next_batch(100, Duration::from_secs(2)).await.unwrap());
    }
    assert_eq!(all.len(), 13, "10 events + 3 re-published duplicates, all redelivered");
    assert_eq!(all.iter().filter(|r| r.duplicate).count(), 9, "6 applied before the crash + 3 re-published");
    apply(&mut store, &all);
    b.commit(&all).await.unwrap();
    assert_eq!(store.applied.len(), 10);
    assert!(store.applied.values().all(|&n| n == 1), "every effect exactly once: {:?}", store.applied);
    drop(b);

    // After the commit, a new member has nothing left to do.
    let mut c = EffectConsumer::new(&cfg, &group_id, &[&events_topic], Dedup::new()).unwrap();
    let rest = c.next_batch(100, Duration::from_secs(8)).await.unwrap();
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_routes_trades_to_prices_by_symbol_and_to_both_users_executions() {
    let Some(b) = brokers("the_sink_routes_trades_to_prices_by_symbol_and_to_both_users_executions") else { return };
    let cfg = config(b);
    ensure_topics(&cfg).await.unwrap();
    let producer = Arc::new(BusProducer::new(&cfg, "matching-0").unwrap());
    let mut sink = KafkaEventSink::new(&cfg, producer, "matching-0", 0);
    let trade = Event::Trade {
        trade_id: qt_core::TradeId(1),
        symbol: qt_core::SymbolId(3),
        price: qt_core::Price(100),
        qty: qt_core::Qty(2),
        taker_side: qt_core::Side::Buy,
        maker_order: OrderId(10),
        maker_user: UserId(7),
        taker_order: OrderId(11),
        taker_user: UserId(8),
        maker_fee: qt_core::Amount(0),
        taker_fee: qt_core::Amount(1),
    };
    sink.publish_async(&[EventEnvelope { seq: 1, cmd_seq: 1, ts: 5, event: trade.clone() }]).await.unwrap();
    let topics = [cfg.topic(topic::PRICES), cfg.topic(topic::EXECUTIONS), cfg.topic(topic::EVENTS)];
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let mut c =
        EffectConsumer::new(&cfg, &format!("{}{}", cfg.topic_prefix, group::MARKET_DATA), &refs, Dedup::new()).unwrap();
    let mut got: Vec<(String, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < 4 && Instant::now() < deadline {
        for r in c.next_batch(10, Duration::from_secs(2)).await.unwrap() {
            let e: EventEnvelope = r.decode().unwrap();
            assert_eq!(e.event, trade);
            assert_eq!((r.source.as_str(), r.seq), ("matching-0", 1));
            let short = r.topic.strip_prefix(&cfg.topic_prefix).unwrap().to_string();
            got.push((short, String::from_utf8(r.key.unwrap()).unwrap()));
        }
    }
    got.sort();
    let want: Vec<(String, String)> =
        [("events", "matching-0"), ("executions", "7"), ("executions", "8"), ("prices", "3")]
            .iter()
            .map(|(t, k)| (t.to_string(), k.to_string()))
            .collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_read_back_are_paired_with_their_commands_from_the_journal() {
    let Some(b) = brokers("events_read_back_are_paired_with_their_commands_from_the_journal") else { return };
    let cfg = config(b);
    ensure_topics(&cfg).await.unwrap();
    let producer = Arc::new(BusProducer::new(&cfg, "matching-1").unwrap());
    let journal =
        Arc::new(KafkaJournal::new(&cfg, Arc::clone(&producer), cfg.topic(topic::COMMANDS_MATCHING), 1).unwrap());
    journal.append_async(&(1..=6).map(cancel).collect::<Vec<_>>()).await.unwrap();
    // Commands 2 and 5 caused no events; 3 caused two.
    let ev = |seq, cmd_seq| EventEnvelope { seq, cmd_seq, ts: 0, event: Event::UserCreated { user: UserId(seq) } };
    let events = vec![ev(1, 1), ev(2, 3), ev(3, 3), ev(4, 4), ev(5, 6)];
    let mut sink = KafkaEventSink::new(&cfg, producer, "matching-1", 0);
    sink.publish_async(&events).await.unwrap();

    let t = cfg.topic(topic::EVENTS);
    let mut c =
        EffectConsumer::new(&cfg, &format!("{}{}", cfg.topic_prefix, group::PROJECTOR), &[&t], Dedup::new()).unwrap();
    let mut got: Vec<EventEnvelope> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < events.len() && Instant::now() < deadline {
        got.extend(c.next_batch(100, Duration::from_secs(2)).await.unwrap().iter().map(|r| r.decode().unwrap()));
    }
    let pairs = join_commands(&journal, &got).await.unwrap();
    let shape: Vec<(u64, Vec<u64>)> = pairs.iter().map(|(c, e)| (c.seq, e.iter().map(|e| e.seq).collect())).collect();
    assert_eq!(shape, vec![(1, vec![1]), (3, vec![2, 3]), (4, vec![4]), (6, vec![5])]);
    assert!(pairs.iter().all(|(c, _)| *c == cancel(c.seq)));
    // An event whose command is not in this journal is an error, never a silent skip.
    assert!(join_commands(&journal, &[ev(9, 99)]).await.is_err());
}
