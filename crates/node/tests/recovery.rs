//! Recovery of a matching shard against real servers (`KAFKA_BROKERS` and `DATABASE_URL`,
//! as exported by `scripts/servers/with-servers kafka postgres -- …`). Without them the
//! tests print SKIPPED and pass, unless `QT_REQUIRE_SERVERS=1`. Each test has a topic
//! prefix and a PostgreSQL schema of its own.

mod common;

use common::{servers, unique};
use qt_api::runtime::EngineStatus;
use qt_bus_kafka::{ensure_topics, topic, BusProducer, KafkaConfig, KafkaJournal};
use qt_core::UserId;
use qt_engine::{Command, CommandEnvelope, CommandMeta, EngineConfig, Exchange};
use qt_node::config::{NodeConfig, NodeSettings};
use qt_node::matching::Matching;
use qt_store_postgres::{Ingress, PgConfig, PgStore, Projected};
use std::sync::Arc;

fn with_ingress(seq: u64, cmd: Command, ingress: Option<&str>) -> CommandEnvelope {
    let mut env = CommandEnvelope::new(seq, 1_700_000_000_000_000_000 + seq as i64, cmd);
    env.meta = Some(Box::new(CommandMeta { ingress: ingress.map(str::to_string), ..CommandMeta::default() }));
    env
}

/// A snapshot taken after a replaced `orders` consumer's first batch covers requests
/// whose offsets were never committed; the journal after it holds nothing of their
/// stream. Recovery must still recognise them when they are redelivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_recognises_requests_a_snapshot_covers_beyond_the_journal_after_it() {
    let Some((brokers, url)) = servers("recovery_recognises_requests_a_snapshot_covers_beyond_the_journal_after_it")
    else {
        return;
    };
    let name = unique("t");
    let kafka = KafkaConfig { topic_prefix: format!("{name}."), ..KafkaConfig::single_broker(brokers) };
    ensure_topics(&kafka).await.unwrap();
    let pg = PgStore::connect(&PgConfig { schema: Some(name), max_connections: 4, ..PgConfig::with_url(url) }).unwrap();
    pg.migrate().await.unwrap();
    let cfg = Arc::new(NodeConfig {
        run: qt_api::RunConfig::default(),
        kafka: kafka.clone(),
        database: pg.config().clone(),
        redis: qt_cache_redis::RedisConfig::default(),
        node: NodeSettings::default(),
    });
    let shard = cfg.node.shard.clone();

    // Requests s#1, s#2 of one stream and t#1 of another; the snapshot after s#2.
    let (s, t) = ("orders/0@orders/0", "orders/1@orders/1");
    let envs = vec![
        with_ingress(1, Command::AddAsset { code: "USD".into(), scale: 2 }, None),
        with_ingress(2, Command::CreateUser { user: UserId(1), limits: None }, Some(&format!("{s}#1"))),
        with_ingress(3, Command::CreateUser { user: UserId(2), limits: None }, Some(&format!("{s}#2"))),
        with_ingress(4, Command::CreateUser { user: UserId(3), limits: None }, Some(&format!("{t}#1"))),
    ];
    let producer = Arc::new(BusProducer::new(&kafka, "test").unwrap());
    let journal =
        Arc::new(KafkaJournal::new(&kafka, producer.clone(), kafka.topic(topic::COMMANDS_MATCHING), 0).unwrap());
    journal.append_async(&envs).await.unwrap();
    let mut ex = Exchange::new(EngineConfig::default());
    let mut applied = Vec::new();
    for env in &envs {
        let mut events = Vec::new();
        ex.apply(env, &mut events);
        applied.push((env.clone(), events));
        if env.seq == 3 {
            let ingress: Ingress = [(s.to_string(), 2)].into();
            pg.snapshots(shard.clone()).save_with_ingress(&ex.snapshot(), Some(&ingress)).await.unwrap();
        }
    }
    let items: Vec<Projected<'_>> = applied.iter().map(|(c, e)| Projected::of(c, e)).collect();
    pg.projector().project(&shard, &items).await.unwrap();

    let owner = qt_node::matching::claim(&cfg).await.unwrap();
    let (_m, dedup) = Matching::recover(cfg, &pg, owner, producer, Arc::new(EngineStatus::default())).await.unwrap();
    assert!(dedup.is_duplicate(s, 1) && dedup.is_duplicate(s, 2), "covered by the snapshot only: {dedup:?}");
    assert!(!dedup.is_duplicate(s, 3));
    assert!(dedup.is_duplicate(t, 1) && !dedup.is_duplicate(t, 2), "the journal after the snapshot: {dedup:?}");
}
