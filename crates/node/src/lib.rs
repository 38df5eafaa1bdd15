//! QuantTrader's distributed mode: `quanttrader serve ingestion|risk|matching|market-data|all`
//! over Apache Kafka, PostgreSQL and Redis (DESIGN.md section 1).
//!
//! # Pipeline
//!
//! ```text
//! client ─► ingestion (qt-api router) ─► Kafka `orders` (key: user) ─► matching shard:
//!              ▲   ▲                         sequence → apply (Exchange) → one Kafka
//!              │   └ Redis: idempotency        transaction: journal (`commands.matching`
//!              │     claims                    p0) + events (`events`, `executions`,
//!              │                               `prices`, `risk-events`) → project
//!              │                               (PostgreSQL) → reply (`replies`)
//!              ├── reads: PostgreSQL read model      │
//!              └── engine queries, WebSocket: replica of the shard (tails its journal)
//! risk: `executions` (group risk-engine-group) → Redis `position:{user}:{symbol}`
//! market-data: the same router and replica as ingestion, refusing commands
//! ```
//!
//! # Contract
//! - The HTTP API is qt-api's router, unchanged: the same paths, answers and OpenAPI. Its
//!   engine is a [`remote::KafkaEngine`] and its read model PostgreSQL
//!   ([`pg_read::PgReadModel`]).
//! - An intake process answers a command only with the outcome the shard replied after
//!   the command was journaled (its transaction committed on all in-sync replicas),
//!   applied and projected; never acknowledges what Kafka did not persist.
//! - A batch's journal records and its events are written in one Kafka transaction:
//!   every reader is `read_committed`, so events are published exactly once per journaled
//!   command, never for a batch that did not commit (a crash or retry in between changes
//!   nothing visible).
//! - One matching shard owns every symbol (`node.partition` 0 of `commands.matching`):
//!   more shards need symbols routed to partitions, which this version does not do. A
//!   second process for the same shard (a zombie after a network partition, two pods in
//!   a rollout) is fenced: the newer one's `transactional.id` claim aborts the older
//!   one's open transaction, and the older one stops (exit code non-zero) at its next
//!   transaction or ownership probe, without replying, projecting or snapshotting
//!   anything more ([`matching`]). The newer one recovers from the journal after its
//!   claim, so the journal holds one history. An orchestrator should still run one
//!   process per shard: each claim makes the other one stop.
//! - Every role serves `/health`, `/ready` (503 while a dependency is down or the role has
//!   not recovered) and `/metrics`, and logs JSON lines; the request id travels with each
//!   command (`meta.request_id`) into the journal.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub mod keys;
pub mod matching;
pub mod pg_read;
pub mod remote;
pub mod replica;
pub mod risk;
pub mod wire;

use crate::config::NodeConfig;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use qt_api::http::{AppState, Markets};
use qt_api::read_model::Reader;
use qt_api::runtime::{Answer, EngineHandle, EngineStatus, Query};
use qt_bus_kafka::{ensure_topics, BusProducer};
use qt_cache_redis::RedisCache;
use qt_engine::EngineConfig;
use qt_store_postgres::PgStore;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] config::NodeConfigError),
    #[error("kafka: {0}")]
    Bus(#[from] qt_bus_kafka::BusError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("postgres: {0}")]
    Pg(#[from] qt_store_postgres::StoreError),
    #[error("redis: {0}")]
    Cache(#[from] qt_cache_redis::CacheError),
    #[error("snapshot: {0}")]
    Snapshot(#[from] qt_engine::SnapshotError),
    #[error(transparent)]
    App(#[from] qt_api::AppError),
    #[error("{0}")]
    Setup(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("server: {0}")]
    Serve(std::io::Error),
    /// The matching shard's transactional producer was fenced (another process owns the
    /// shard now) or failed fatally: the process stops.
    #[error("matching shard lost: {0}")]
    Lost(String),
}

/// What one process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Ingestion,
    Risk,
    Matching,
    MarketData,
    /// Every role in one process (over the same servers).
    All,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "ingestion" => Ok(Role::Ingestion),
            "risk" => Ok(Role::Risk),
            "matching" => Ok(Role::Matching),
            "market-data" => Ok(Role::MarketData),
            "all" => Ok(Role::All),
            other => Err(format!("unknown role '{other}': ingestion, risk, matching, market-data or all")),
        }
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingestion => "ingestion",
            Role::Risk => "risk",
            Role::Matching => "matching",
            Role::MarketData => "market-data",
            Role::All => "all",
        }
    }
}

/// Retries `op` with exponential backoff (100 ms doubling up to 5 s) for up to `limit`.
async fn with_backoff<T, E: std::fmt::Display, Fut: Future<Output = Result<T, E>>>(
    what: &str,
    limit: Duration,
    mut op: impl FnMut() -> Fut,
) -> Result<T, E> {
    let deadline = Instant::now() + limit;
    let mut delay = Duration::from_millis(100);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() + delay < deadline => {
                tracing::warn!(what, error = %e, "not available yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Connections to the three servers, probed for readiness.
#[derive(Clone, Debug)]
struct Deps {
    producer: Arc<BusProducer>,
    pg: PgStore,
    cache: RedisCache,
}

impl Deps {
    /// Probes every `probe_ms`; `healthy` is true while all three answer, `kafka_up` while
    /// the broker does.
    fn probe(&self, every: Duration, healthy: Arc<AtomicBool>, kafka_up: Arc<AtomicBool>) {
        let deps = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut was = true;
            loop {
                ticks.tick().await;
                let producer = deps.producer.clone();
                let kafka = tokio::task::spawn_blocking(move || producer.ping(Duration::from_secs(2)))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                let pg = tokio::time::timeout(Duration::from_secs(2), deps.pg.ping()).await;
                let redis = tokio::time::timeout(Duration::from_secs(2), deps.cache.ping()).await;
                let problems: Vec<String> = [
                    kafka.err().map(|e| format!("kafka: {e}")),
                    match pg {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(format!("postgres: {e}")),
                        Err(_) => Some("postgres: timeout".into()),
                    },
                    match redis {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(format!("redis: {e}")),
                        Err(_) => Some("redis: timeout".into()),
                    },
                ]
                .into_iter()
                .flatten()
                .collect();
                let ok = problems.is_empty();
                for (name, up) in [
                    ("kafka", kafka_ok(&problems)),
                    ("postgres", !has(&problems, "postgres")),
                    ("redis", !has(&problems, "redis")),
                ] {
                    metrics::gauge!("qt_dependency_up", "dependency" => name).set(if up { 1.0 } else { 0.0 });
                }
                if ok != was {
                    if ok {
                        tracing::info!("every dependency answers again");
                    } else {
                        tracing::warn!(?problems, "a dependency is down: not ready");
                    }
                    was = ok;
                }
                kafka_up.store(kafka_ok(&problems), Ordering::Release);
                healthy.store(ok, Ordering::Release);
            }
        });
    }
}

fn has(problems: &[String], name: &str) -> bool {
    problems.iter().any(|p| p.starts_with(name))
}

fn kafka_ok(problems: &[String]) -> bool {
    !has(problems, "kafka")
}

/// Readiness of a role: its own state, its dependencies, and those of the roles it hosts.
#[derive(Clone, Debug)]
struct Health {
    parts: Vec<(&'static str, Arc<EngineStatus>)>,
    deps: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
}

impl Health {
    fn ready(&self) -> (bool, serde_json::Value) {
        let mut ready = self.deps.load(Ordering::Acquire) && !self.draining.load(Ordering::Acquire);
        let mut parts = serde_json::Map::new();
        for (name, s) in &self.parts {
            let recovered = s.recovered.load(Ordering::Acquire);
            let degraded = s.degraded.load(Ordering::Acquire);
            let stopped = s.stopped.load(Ordering::Acquire);
            ready &= recovered && !degraded && !stopped;
            parts.insert(
                (*name).to_string(),
                serde_json::json!({"recovered": recovered, "degraded": degraded, "stopped": stopped,
                    "last_seq": s.last_seq.load(Ordering::Relaxed)}),
            );
        }
        let body = serde_json::json!({
            "ready": ready,
            "dependencies_up": self.deps.load(Ordering::Acquire),
            "draining": self.draining.load(Ordering::Acquire),
            "roles": parts,
        });
        (ready, body)
    }

    /// Folds the hosted roles and the dependencies into the status the qt-api router's
    /// `/ready` reads (its `degraded` flag), every 200 ms.
    fn feed(&self, into: Arc<EngineStatus>, own: &'static str) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let others_ok = me
                    .parts
                    .iter()
                    .filter(|(n, _)| *n != own)
                    .all(|(_, s)| s.recovered.load(Ordering::Acquire) && !s.degraded.load(Ordering::Acquire));
                into.degraded.store(!(others_ok && me.deps.load(Ordering::Acquire)), Ordering::Release);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn ready(State(h): State<Health>) -> Response {
    let (ready, body) = h.ready();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

async fn metrics_text() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], qt_api::http::prometheus().render()).into_response()
}

/// `/health`, `/ready`, `/metrics` of the roles without the public API.
fn ops_router(h: Health) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .with_state(h)
}

/// Ok once every partition of every topic has a leader (fresh topics take a moment).
async fn wait_for_leaders(cfg: &qt_bus_kafka::KafkaConfig) -> Result<(), NodeError> {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers);
    for (k, v) in &cfg.extra {
        c.set(k, v);
    }
    let client: rdkafka::consumer::BaseConsumer = c.create()?;
    let names: Vec<String> = qt_bus_kafka::topic::ALL.iter().map(|t| cfg.topic(t)).collect();
    let timeout = cfg.request_timeout();
    tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::Consumer;
        for name in &names {
            let md = client.fetch_metadata(Some(name), timeout)?;
            for t in md.topics() {
                if t.error().is_some() || t.partitions().is_empty() {
                    return Err(NodeError::Setup(format!("topic {name} is not ready")));
                }
                if let Some(p) = t.partitions().iter().find(|p| p.leader() < 0 || p.error().is_some()) {
                    return Err(NodeError::Setup(format!("topic {name} partition {} has no leader yet", p.id())));
                }
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| NodeError::Setup(e.to_string()))?
}

fn instance_id(role: Role) -> String {
    let suffix = qt_api::app::random_token("").unwrap_or_default();
    format!("{}-{}-{}", role.as_str(), std::process::id(), &suffix[..suffix.len().min(8)])
}

/// `quanttrader migrate`: applies the PostgreSQL migrations (waiting up to 120 s for the
/// server), so that replicas starting together never race on the schema.
pub async fn migrate(cfg: &NodeConfig) -> Result<Vec<i64>, NodeError> {
    let pg = PgStore::connect(&cfg.database)?;
    Ok(with_backoff("postgres migrations", Duration::from_secs(120), || pg.migrate()).await?)
}

/// Runs `role` until `shutdown` resolves.
pub async fn serve(
    role: Role,
    cfg: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let cfg = Arc::new(cfg);
    let _ = qt_api::http::prometheus();
    let instance = instance_id(role);
    tracing::info!(role = role.as_str(), %instance, brokers = %cfg.kafka.brokers, "starting");

    let pg = PgStore::connect(&cfg.database)?;
    let applied = with_backoff("postgres migrations", Duration::from_secs(120), || pg.migrate()).await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "postgres migrations applied");
    }
    let topics = with_backoff("kafka topics", Duration::from_secs(120), || ensure_topics(&cfg.kafka)).await?;
    tracing::debug!(?topics, "kafka topics");
    with_backoff("kafka partition leaders", Duration::from_secs(60), || wait_for_leaders(&cfg.kafka)).await?;
    let producer = Arc::new(BusProducer::new(&cfg.kafka, &instance)?);
    let cache = RedisCache::new(&cfg.redis)?;
    let deps = Deps { producer: producer.clone(), pg: pg.clone(), cache: cache.clone() };
    let deps_up = Arc::new(AtomicBool::new(true));
    let kafka_up = Arc::new(AtomicBool::new(true));
    deps.probe(Duration::from_millis(cfg.node.probe_ms), deps_up.clone(), kafka_up.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut parts: Vec<(&'static str, Arc<EngineStatus>)> = Vec::new();
    // A role that must take the whole process down (the matching shard lost to another
    // process): its error, and the signal that ends serving.
    let failure: Arc<std::sync::Mutex<Option<NodeError>>> = Arc::default();
    let failed = Arc::new(tokio::sync::Notify::new());

    if matches!(role, Role::Matching | Role::All) {
        let status = Arc::new(EngineStatus::default());
        parts.push(("matching", status.clone()));
        // Before recovery reads the journal: see `matching::claim`.
        let owner = with_backoff("matching shard claim", Duration::from_secs(60), || matching::claim(&cfg)).await?;
        let (mut m, dedup) = with_backoff("matching recovery", Duration::from_secs(60), || {
            matching::Matching::recover(cfg.clone(), &pg, owner.clone(), producer.clone(), status.clone())
        })
        .await?;
        m.list_markets(&stop_rx).await?;
        // Keys older than 24 h are free again (crate::keys); their rows only take space.
        let every = Duration::from_secs(cfg.node.idempotency_purge_every_s);
        tasks.push(tokio::spawn(keys::purge_expired(
            pg.projector(),
            every,
            cfg.node.idempotency_purge_batch,
            stop_rx.clone(),
        )));
        let stop = stop_rx.clone();
        let (failure, failed) = (failure.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = m.run(dedup, stop).await {
                tracing::error!(error = %e, "matching failed");
                status.stopped.store(true, Ordering::Release);
                if matches!(e, NodeError::Lost(_)) {
                    *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    failed.notify_one();
                }
            }
        }));
    }
    if matches!(role, Role::Risk | Role::All) {
        let status = Arc::new(EngineStatus::default());
        parts.push(("risk", status.clone()));
        let (cfg, cache, stop, reader) = (cfg.clone(), cache.clone(), stop_rx.clone(), pg.reader());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = risk::run(cfg, cache, reader, status.clone(), stop).await {
                tracing::error!(error = %e, "risk failed");
                status.stopped.store(true, Ordering::Release);
            }
        }));
    }
    let draining = Arc::new(AtomicBool::new(false));
    let shutdown = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = failed.notified() => tracing::error!("a role failed for good: stopping the process"),
        }
    };
    let result = if matches!(role, Role::Ingestion | Role::MarketData | Role::All) {
        let ups = (deps_up, kafka_up);
        serve_api(role, &cfg, &pg, producer.clone(), cache, instance, parts, ups, draining, shutdown).await
    } else {
        let h = Health { parts, deps: deps_up, draining: draining.clone() };
        let listener = tokio::net::TcpListener::bind(&cfg.run.listen)
            .await
            .map_err(|source| NodeError::Bind { addr: cfg.run.listen.clone(), source })?;
        tracing::info!(addr = %cfg.run.listen, role = role.as_str(), "serving /health, /ready, /metrics");
        axum::serve(listener, ops_router(h))
            .with_graceful_shutdown(async move {
                shutdown.await;
                draining.store(true, Ordering::Release);
            })
            .await
            .map_err(NodeError::Serve)
    };
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
    }
    let p = producer.clone();
    let _ = tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(5))).await;
    tracing::info!("stopped");
    let lost = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
    match lost {
        Some(e) => Err(e),
        None => result,
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_api(
    role: Role,
    cfg: &Arc<NodeConfig>,
    pg: &PgStore,
    producer: Arc<BusProducer>,
    cache: RedisCache,
    instance: String,
    mut parts: Vec<(&'static str, Arc<EngineStatus>)>,
    (deps_up, kafka_up): (Arc<AtomicBool>, Arc<AtomicBool>),
    draining: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let admin_token = cfg.run.admin_token.clone().ok_or_else(|| {
        NodeError::Setup("set QT_ADMIN_TOKEN (or --admin-token): every intake process shares it".into())
    })?;
    let status = Arc::new(EngineStatus::default());
    let own = if role == Role::MarketData { "market-data" } else { "ingestion" };
    parts.push((own, status.clone()));
    let snapshot = pg.snapshots(cfg.node.shard.clone()).latest_async().await?;
    let engine_config = EngineConfig { risk_enabled: cfg.run.engine.risk_enabled, ..EngineConfig::default() };
    let replica = replica::Replica::start(
        &cfg.kafka,
        cfg.node.partition,
        snapshot,
        engine_config,
        status.clone(),
        (pg.reader(), cfg.node.shard.clone()),
    )?;

    // The markets come from the shard's journal: wait until it has listed them.
    let wanted = cfg.run.markets.len();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (assets, symbols) = loop {
        match replica.query(Query::Reference { user: None }).await {
            Ok(Answer::Reference { assets, symbols, .. }) if symbols.len() >= wanted && !symbols.is_empty() => {
                break (assets, symbols)
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "waiting for the shard's journal"),
        }
        if Instant::now() > deadline {
            return Err(NodeError::Setup("the matching shard did not list the markets within 120 s".into()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let markets = Arc::new(Markets::new(assets, symbols));

    let remote: Arc<dyn qt_api::runtime::RemoteEngine> = if role == Role::MarketData {
        Arc::new(remote::ReadOnlyEngine { replica: replica.clone() })
    } else {
        let mut claims_cfg = cfg.redis.clone();
        claims_cfg.idempotency_ttl_s = cfg.node.claim_ttl_s;
        // Same connection settings, own breaker: claims failing must not hide positions.
        let claims = RedisCache::new(&claims_cfg)?;
        Arc::new(
            with_backoff("replies consumer", Duration::from_secs(60), || {
                remote::KafkaEngine::start(
                    &cfg.kafka,
                    producer.clone(),
                    instance.clone(),
                    replica.clone(),
                    Some(claims.clone()),
                    Duration::from_millis(cfg.node.reply_timeout_ms),
                    kafka_up.clone(),
                )
            })
            .await?,
        )
    };
    let engine = EngineHandle::remote(remote, replica.events(), status.clone());
    let reader = Reader::Remote(Arc::new(pg_read::PgReadModel::new(pg.reader(), tokio::runtime::Handle::current())));
    let shared_rate = Arc::new(remote::RedisRateLimit::new(
        cache.clone(),
        cfg.run.http.rate_limit_per_second,
        cfg.run.http.rate_limit_burst,
    ));
    let state = AppState::new(engine, reader, markets, &admin_token, &cfg.run, Some(shared_rate))?;
    let h = Health { parts, deps: deps_up, draining: state.draining.clone() };
    h.feed(status, own);
    let router = qt_api::http::router(state.clone(), &cfg.run);
    let listener = tokio::net::TcpListener::bind(&cfg.run.listen)
        .await
        .map_err(|source| NodeError::Bind { addr: cfg.run.listen.clone(), source })?;
    tracing::info!(addr = %cfg.run.listen, role = role.as_str(), "serving the API");
    let state_draining = state.draining.clone();
    let _ = draining;
    let grace = Duration::from_millis(cfg.run.http.shutdown_grace_ms);
    let (stop_tx, stop_rx) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        state_draining.store(true, Ordering::Release);
        let _ = stop_tx.send(true);
    };
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(signal);
    let mut stop_rx = stop_rx;
    tokio::select! {
        r = server => r.map_err(NodeError::Serve),
        // WebSocket clients would hold a graceful stop open forever.
        _ = async move {
            let _ = stop_rx.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => Ok(()),
    }
}
