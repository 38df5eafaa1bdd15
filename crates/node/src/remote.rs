//! The engine as the HTTP layer of an intake process sees it ([`RemoteEngine`]): commands
//! go to Kafka `orders` and their outcomes come back on `replies`; queries are answered
//! by the local [`Replica`].
//!
//! Contract:
//! - `submit` returns only with the outcome the matching shard replied after journaling,
//!   applying and projecting the command; a command Kafka certainly did not write (not
//!   queued, rejected by the broker: [`qt_bus_kafka::SendFailure::NotWritten`]) is
//!   answered `Unavailable` (nothing was done); a send that timed out or whose delivery
//!   state is unknown, and no reply within `node.reply_timeout_ms`, are `Timeout` (the
//!   outcome is unknown: the client retries with its idempotency key, whose claim is kept).
//! - A place with an idempotency key first claims `{user}:{key}` in Redis (`SET NX`, short
//!   TTL), so two intake processes never both publish the same request at once: the second
//!   waits for the first's answer (then publishes it anyway, and the matching shard answers
//!   it with the stored answer, replayed), or gets 409 when the body differs. The claim is
//!   a shortcut, not the guarantee: with Redis down it is skipped (logged, counted), and
//!   the per-process in-flight set and the matching shard's key check before journaling
//!   (read model and unprojected batches, [`crate::keys`]) still apply one place per key.
//! - While the readiness probe finds Kafka down (`kafka_up` false), a command is refused at
//!   once with `Unavailable` (503, nothing was done) instead of waiting for the producer's
//!   delivery timeout: a circuit breaker around the broker.
//! - Replies are read from every partition of `replies` from the high watermark at start
//!   (assigned, no consumer group) and matched by correlation id.

use crate::replica::Replica;
use crate::wire::{command_key, OrderRequest, Reply, REPLY_TO};
use crate::NodeError;
use futures_util::future::BoxFuture;
use qt_api::runtime::{Answer, EngineError, Outcome, Query, RemoteEngine};
use qt_bus_kafka::{topic, BusProducer, KafkaConfig, OutRecord, SendFailure};
use qt_cache_redis::{Claim, RedisCache};
use qt_engine::{Command, CommandMeta};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Reply>>>>;

#[derive(Debug)]
struct Inner {
    producer: Arc<BusProducer>,
    orders: String,
    instance: String,
    waiters: Waiters,
    replica: Replica,
    claims: Option<RedisCache>,
    timeout: Duration,
    next: AtomicU64,
    kafka_up: Arc<AtomicBool>,
}

/// [`RemoteEngine`] of an ingestion process.
#[derive(Clone, Debug)]
pub struct KafkaEngine {
    inner: Arc<Inner>,
}

fn lock(w: &Waiters) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Reply>>> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

impl KafkaEngine {
    /// Starts listening for replies addressed to `instance`, then returns the engine.
    pub async fn start(
        cfg: &KafkaConfig,
        producer: Arc<BusProducer>,
        instance: String,
        replica: Replica,
        claims: Option<RedisCache>,
        timeout: Duration,
        kafka_up: Arc<AtomicBool>,
    ) -> Result<KafkaEngine, NodeError> {
        let waiters: Waiters = Arc::default();
        let consumer = replies_consumer(cfg, &instance).await?;
        let listener_waiters = waiters.clone();
        let me = instance.clone();
        tokio::spawn(async move {
            loop {
                let msg = match consumer.recv().await {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "replies: receive failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let to_me = msg
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == REPLY_TO).and_then(|h| h.value))
                    .is_some_and(|v| v == me.as_bytes());
                if !to_me {
                    continue;
                }
                match serde_json::from_slice::<Reply>(msg.payload().unwrap_or_default()) {
                    Ok(reply) => {
                        if let Some(tx) = lock(&listener_waiters).remove(&reply.corr) {
                            let _ = tx.send(reply);
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "replies: undecodable record"),
                }
            }
        });
        let inner = Inner {
            producer,
            orders: cfg.topic(topic::ORDERS),
            instance,
            waiters,
            replica,
            claims,
            timeout,
            next: AtomicU64::new(1),
            kafka_up,
        };
        Ok(KafkaEngine { inner: Arc::new(inner) })
    }
}

/// A consumer assigned to every partition of `replies` at its current end.
async fn replies_consumer(cfg: &KafkaConfig, instance: &str) -> Result<StreamConsumer, NodeError> {
    let topic = cfg.topic(topic::REPLIES);
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("client.id", format!("{}-replies-{instance}", cfg.client_id))
        .set("group.id", format!("qt-replies-{instance}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "latest")
        // Replies are sent outside transactions, but the partitions may hold an ownership
        // probe of the matching shard (never committed when the shard was fenced).
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", qt_bus_kafka::LONG_POLL_WAIT_MS)
        .set("fetch.min.bytes", "1")
        .set("socket.nagle.disable", "true");
    for (k, v) in &cfg.extra {
        c.set(k, v);
    }
    let consumer: StreamConsumer = c.create()?;
    let timeout = cfg.request_timeout();
    let (consumer, tpl) = tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
        let md = consumer.fetch_metadata(Some(&topic), timeout)?;
        let partitions: Vec<i32> =
            md.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect::<Vec<_>>();
        if partitions.is_empty() {
            return Err(NodeError::Setup(format!("topic {topic} has no partitions")));
        }
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            // Exact offsets, not "end": a reply written right after start must not be
            // skipped by a lazily resolved end offset.
            let (_, high) = consumer.fetch_watermarks(&topic, p, timeout)?;
            tpl.add_partition_offset(&topic, p, Offset::Offset(high))?;
        }
        Ok((consumer, tpl))
    })
    .await
    .map_err(|e| NodeError::Setup(e.to_string()))??;
    consumer.assign(&tpl)?;
    Ok(consumer)
}

impl Inner {
    async fn submit(&self, cmd: Command, meta: Option<CommandMeta>) -> Result<Outcome, EngineError> {
        if !self.kafka_up.load(Ordering::Acquire) {
            metrics::counter!("qt_commands_refused_broker_down_total").increment(1);
            return Err(EngineError::Unavailable("kafka is down (readiness probe)".into()));
        }
        let claim = match (&cmd, &meta, &self.claims) {
            (Command::Place(o), Some(m), Some(cache)) => m
                .idempotency_key
                .as_ref()
                .map(|k| (cache, format!("{}:{}", o.user.0, k), m.request_hash.clone().unwrap_or_default())),
            _ => None,
        };
        let mut claimed = None;
        if let Some((cache, key, hash)) = claim {
            let timer = Instant::now();
            let claimed_now = self.claim(cache, &key, &hash).await;
            metrics::histogram!("qt_idempotency_claim_seconds").record(timer.elapsed().as_secs_f64());
            match claimed_now? {
                Claimed::Mine => claimed = Some((cache, key, hash)),
                // The other request's answer is in the read model: the matching shard, which
                // checks keys before journaling, answers this one with it (replayed).
                Claimed::AnsweredElsewhere => {}
                Claimed::Skipped => {}
            }
        }
        let result = self.publish_and_wait(cmd, meta).await;
        if let Some((cache, key, hash)) = claimed {
            match &result {
                // Nothing reached Kafka: free the key for the client's retry.
                Err(EngineError::Unavailable(_)) => {
                    let _ = cache.release_idempotency(&key).await;
                }
                Ok(o) => {
                    // Not awaited: the answer is in the read model already (projected before
                    // the reply), where a retry with the key finds it; this only spares
                    // another intake waiting on the claim its polling.
                    let done = qt_cache_redis::StoredResponse { status: 200, body: format!("{{\"seq\":{}}}", o.seq) };
                    let cache = cache.clone();
                    tokio::spawn(async move {
                        let _ = cache.complete_idempotency(&key, &hash, done).await;
                    });
                }
                // Outcome unknown: the claim expires by itself.
                Err(_) => {}
            }
        }
        result
    }

    async fn claim(&self, cache: &RedisCache, key: &str, hash: &str) -> Result<Claimed, EngineError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match cache.claim_idempotency(key, hash).await {
                Ok(Claim::Claimed) => return Ok(Claimed::Mine),
                // Answered: the shard answers with the stored answer, whose body hash the
                // handler compares (409 IDEMPOTENCY_CONFLICT when it differs).
                Ok(Claim::Exists(rec)) if rec.response.is_some() => return Ok(Claimed::AnsweredElsewhere),
                Ok(Claim::Exists(rec)) if rec.request_hash != hash && !rec.request_hash.is_empty() => {
                    return Err(EngineError::Conflict(
                        "this Idempotency-Key is being processed with a different request body".into(),
                    ))
                }
                Ok(Claim::Exists(_)) => {
                    if Instant::now() >= deadline {
                        return Err(EngineError::Conflict(
                            "a request with this Idempotency-Key is being processed".into(),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => {
                    metrics::counter!("qt_idempotency_claims_skipped_total").increment(1);
                    tracing::warn!(error = %e, "redis unavailable: idempotency claim skipped");
                    return Ok(Claimed::Skipped);
                }
            }
        }
    }

    async fn publish_and_wait(&self, cmd: Command, meta: Option<CommandMeta>) -> Result<Outcome, EngineError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let corr = format!("{}-{n}", self.instance);
        let key = command_key(&cmd);
        let request = OrderRequest { corr: corr.clone(), reply_to: self.instance.clone(), cmd, meta };
        let payload = serde_json::to_vec(&request).map_err(|e| EngineError::Unavailable(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).insert(corr.clone(), tx);
        let record = OutRecord {
            topic: self.orders.clone(),
            partition: None,
            key,
            payload,
            headers: vec![(REPLY_TO, self.instance.clone())],
        };
        let started = Instant::now();
        if let Err(e) = self.producer.send_all(std::slice::from_ref(&record)).await {
            lock(&self.waiters).remove(&corr);
            return Err(send_error(&e, &corr));
        }
        metrics::histogram!("qt_command_publish_seconds").record(started.elapsed().as_secs_f64());
        let result = tokio::time::timeout(self.timeout, rx).await;
        metrics::histogram!("qt_command_roundtrip_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(Ok(reply)) => Ok(reply.outcome.into()),
            _ => {
                lock(&self.waiters).remove(&corr);
                tracing::warn!(%corr, "no outcome in time");
                Err(EngineError::Timeout)
            }
        }
    }
}

/// The answer to a command whose send failed: `Unavailable` (nothing was done, the
/// idempotency claim is released) only when the record was certainly not written;
/// otherwise `Timeout` (outcome unknown: the claim stays, the client retries with its key).
fn send_error(e: &qt_bus_kafka::BusError, corr: &str) -> EngineError {
    match e.send_failure() {
        SendFailure::NotWritten => EngineError::Unavailable(e.to_string()),
        SendFailure::Unknown => {
            metrics::counter!("qt_commands_send_outcome_unknown_total").increment(1);
            tracing::warn!(%corr, error = %e, "send failed after the record may have been written: outcome unknown");
            EngineError::Timeout
        }
    }
}

enum Claimed {
    Mine,
    AnsweredElsewhere,
    Skipped,
}

async fn replica_query(replica: &Replica, query: Query) -> Result<Answer, EngineError> {
    replica.query(query).await.map_err(|e| EngineError::Unavailable(e.to_string()))
}

impl RemoteEngine for KafkaEngine {
    fn submit(&self, cmd: Command, meta: Option<CommandMeta>) -> BoxFuture<'static, Result<Outcome, EngineError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.submit(cmd, meta).await })
    }

    /// The matching shard looks the keys of places up in the read model before journaling
    /// them (one query per batch) and answers a used one with its stored answer.
    fn checks_idempotency_keys(&self) -> bool {
        true
    }

    fn query(&self, query: Query) -> BoxFuture<'static, Result<Answer, EngineError>> {
        let inner = self.inner.clone();
        Box::pin(async move { replica_query(&inner.replica, query).await })
    }
}

/// [`RemoteEngine`] of the market-data role: queries only; commands are refused (they
/// belong to the ingestion role).
#[derive(Clone, Debug)]
pub struct ReadOnlyEngine {
    pub replica: Replica,
}

impl RemoteEngine for ReadOnlyEngine {
    fn submit(&self, _: Command, _: Option<CommandMeta>) -> BoxFuture<'static, Result<Outcome, EngineError>> {
        Box::pin(async { Err(EngineError::Unavailable("the market-data role takes no commands".into())) })
    }

    fn query(&self, query: Query) -> BoxFuture<'static, Result<Answer, EngineError>> {
        let replica = self.replica.clone();
        Box::pin(async move { replica_query(&replica, query).await })
    }
}

/// The per-user request budget of `http.rate_limit_*`, kept in Redis
/// (`ratelimit:user:{id}`, GCRA) so that every intake process spends the same one.
#[derive(Clone, Debug)]
pub struct RedisRateLimit {
    pub cache: RedisCache,
    /// Requests allowed at once (the burst).
    pub burst: u32,
    /// Time for the whole burst to refill: `burst / per_second`.
    pub window: Duration,
}

impl RedisRateLimit {
    pub fn new(cache: RedisCache, per_second: u32, burst: u32) -> Self {
        let per_second = per_second.max(1);
        let burst = burst.max(1);
        let window = Duration::from_micros(u64::from(burst) * 1_000_000 / u64::from(per_second));
        RedisRateLimit { cache, burst, window }
    }
}

impl qt_api::http::SharedRateLimit for RedisRateLimit {
    fn check(&self, user: qt_core::UserId) -> BoxFuture<'static, Result<Option<Duration>, String>> {
        let me = self.clone();
        Box::pin(async move {
            let d = me
                .cache
                .rate_limit(&format!("user:{}", user.0), me.burst, me.window)
                .await
                .map_err(|e| e.to_string())?;
            Ok((!d.allowed).then_some(d.retry_after))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};

    #[test]
    fn a_send_that_may_have_written_is_outcome_unknown() {
        let delivered = |c| qt_bus_kafka::BusError::Kafka(KafkaError::MessageProduction(c));
        assert!(matches!(send_error(&delivered(RDKafkaErrorCode::MessageTimedOut), "c-1"), EngineError::Timeout));
        assert!(matches!(send_error(&qt_bus_kafka::BusError::Cancelled, "c-1"), EngineError::Timeout));
        assert!(matches!(
            send_error(&delivered(RDKafkaErrorCode::MessageSizeTooLarge), "c-1"),
            EngineError::Unavailable(_)
        ));
        let queue_full = qt_bus_kafka::BusError::NotQueued(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull));
        assert!(matches!(send_error(&queue_full, "c-1"), EngineError::Unavailable(_)));
    }
}
