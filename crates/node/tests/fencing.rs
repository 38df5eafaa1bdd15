//! Two matching processes for the same shard against real servers (`KAFKA_BROKERS` and
//! `DATABASE_URL`, as exported by `scripts/servers/with-servers kafka postgres -- …`):
//! the second one's claim fences the first, which stops with an error, and the journal
//! holds one history that recovery turns into the live shard's state. Without the servers
//! the test prints SKIPPED and passes, unless `QT_REQUIRE_SERVERS=1`.

mod common;

use common::{servers, unique};
use qt_api::runtime::EngineStatus;
use qt_bus_kafka::{ensure_topics, topic, BusProducer, KafkaConfig, KafkaJournal, OutRecord};
use qt_core::UserId;
use qt_engine::{Command, CommandEnvelope};
use qt_node::config::{NodeConfig, NodeSettings};
use qt_node::matching::{claim, Matching};
use qt_node::wire::OrderRequest;
use qt_node::NodeError;
use qt_store_postgres::{PgConfig, PgStore};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

async fn store(url: &str, schema: String) -> PgStore {
    let pg =
        PgStore::connect(&PgConfig { schema: Some(schema), max_connections: 4, ..PgConfig::with_url(url) }).unwrap();
    pg.migrate().await.unwrap();
    pg
}

fn config(kafka: &KafkaConfig, pg: &PgStore) -> Arc<NodeConfig> {
    Arc::new(NodeConfig {
        run: qt_api::RunConfig::default(),
        kafka: kafka.clone(),
        database: pg.config().clone(),
        redis: qt_cache_redis::RedisConfig::default(),
        node: NodeSettings::default(),
    })
}

/// Requests creating users `users`, as an intake process sends them to `orders`.
async fn request_users(producer: &BusProducer, kafka: &KafkaConfig, users: std::ops::Range<u64>) {
    let records: Vec<OutRecord> = users
        .map(|u| {
            let req = OrderRequest {
                corr: format!("c{u}"),
                reply_to: "nobody".into(),
                cmd: Command::CreateUser { user: UserId(u), limits: None },
                meta: None,
            };
            OutRecord {
                topic: kafka.topic(topic::ORDERS),
                partition: None,
                key: u.to_string(),
                payload: serde_json::to_vec(&req).unwrap(),
                headers: vec![],
            }
        })
        .collect();
    producer.send_all(&records).await.unwrap();
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running shard: its task gives the shard back with how `run` ended.
type Running = tokio::task::JoinHandle<(Matching, Result<(), NodeError>)>;

async fn start(
    cfg: &Arc<NodeConfig>,
    pg: &PgStore,
    producer: &Arc<BusProducer>,
) -> (Running, Arc<EngineStatus>, watch::Sender<bool>) {
    let status = Arc::new(EngineStatus::default());
    let owner = claim(cfg).await.unwrap();
    let (mut m, dedup) = Matching::recover(cfg.clone(), pg, owner, producer.clone(), status.clone()).await.unwrap();
    let (stop_tx, stop) = watch::channel(false);
    m.list_markets(&stop).await.unwrap();
    let task = tokio::spawn(async move {
        let r = m.run(dedup, stop).await;
        (m, r)
    });
    (task, status, stop_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_matching_process_fences_the_first_and_the_journal_keeps_one_history() {
    let Some((brokers, url)) = servers("a_second_matching_process_fences_the_first_and_the_journal_keeps_one_history")
    else {
        return;
    };
    let name = unique("f");
    let kafka = KafkaConfig { topic_prefix: format!("{name}."), ..KafkaConfig::single_broker(brokers) };
    ensure_topics(&kafka).await.unwrap();
    let pg = store(&url, name.clone()).await;
    let cfg = config(&kafka, &pg);
    let intake = Arc::new(BusProducer::new(&kafka, "intake").unwrap());

    // The first process serves requests.
    let (first, first_status, _first_stop) = start(&cfg, &pg, &intake).await;
    request_users(&intake, &kafka, 1..21).await;
    wait_for("the first shard to apply 20 requests", || first_status.last_seq.load(Ordering::Relaxed) >= 20).await;

    // A second process for the same shard (a rollout, or the first one partitioned away).
    let (second, second_status, second_stop) = start(&cfg, &pg, &intake).await;
    let (zombie, ended) =
        tokio::time::timeout(Duration::from_secs(60), first).await.expect("the first shard stops").unwrap();
    assert!(matches!(ended, Err(NodeError::Lost(_))), "the first shard stops with a fenced error: {ended:?}");
    assert!(first_status.stopped.load(Ordering::Acquire));

    // The second one goes on with the same history.
    request_users(&intake, &kafka, 21..41).await;
    wait_for("the second shard to apply every request", || {
        second_status.last_seq.load(Ordering::Relaxed) >= zombie.last_seq() + 20
    })
    .await;
    second_stop.send(true).unwrap();
    let (live, ended) = second.await.unwrap();
    ended.unwrap();

    // One history: dense sequence numbers, each request journaled once.
    let reader = Arc::new(
        KafkaJournal::<CommandEnvelope>::new(&kafka, intake.clone(), kafka.topic(topic::COMMANDS_MATCHING), 0).unwrap(),
    );
    let journal = reader.read_from_async(1, 100_000).await.unwrap();
    let seqs: Vec<u64> = journal.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (1..=live.last_seq()).collect::<Vec<_>>());
    let mut users = HashSet::new();
    for c in &journal {
        if let Command::CreateUser { user, .. } = &c.cmd {
            assert!(users.insert(user.0), "user {} journaled twice", user.0);
        }
    }
    assert_eq!(users, (1..41).collect::<HashSet<u64>>());

    // Recovery from the journal alone (a read model of its own, so no snapshot) reproduces
    // the live shard's state.
    let fresh = store(&url, format!("{name}_r")).await;
    let cfg = config(&kafka, &fresh);
    let owner = claim(&cfg).await.unwrap();
    let (recovered, _) =
        Matching::recover(cfg, &fresh, owner, intake, Arc::new(EngineStatus::default())).await.unwrap();
    assert_eq!(recovered.last_seq(), live.last_seq());
    assert_eq!(recovered.state_hash(), live.state_hash());
}
