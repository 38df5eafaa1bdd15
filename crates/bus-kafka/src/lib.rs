//! Apache Kafka adapters of the distributed QuantTrader (`quanttrader serve …`).
//!
//! # Topology
//!
//! | topic | written by | key | record | read by (consumer group) |
//! |---|---|---|---|---|
//! | `orders` | ingestion | user id | an unsequenced command with its correlation id (qt-node `OrderRequest`) | the matching shard, its sequencer (`order-processor-group`) |
//! | `commands.matching` | matching (its sequencer) | seq; partition = the shard | `CommandEnvelope`: the **durable command log** of a shard ([`KafkaJournal`]) | the shard at recovery; replicas of the shard in ingestion and market-data (assigned, no group) |
//! | `executions` | matching | user id (a trade goes to both users) | `EventEnvelope`: order lifecycle, fills, balances, positions | risk/settlement (`risk-engine-group`), ingestion replies |
//! | `prices` | matching | symbol id | `EventEnvelope`: trades and book deltas | market-data (`market-data-group`) |
//! | `risk-events` | matching, risk | user id (`global` for the global kill switch) | `EventEnvelope`: rejections, limit and kill-switch changes | risk (`risk-engine-group`), market-data private stream |
//! | `events` | matching | source (shard) name | every `EventEnvelope` of a shard, in order | projector to PostgreSQL (`projector-group`), paired with their commands by [`join_commands`] |
//! | `replies` | matching | intake process id | the outcome of one `orders` request (correlation id) | the ingestion process that sent it (assigned, no group) |
//!
//! Topic and group names are those of seed 004 plus `commands.matching`, `events` and
//! `projector-group`, which the pipeline needs. Partition counts, replication factor and
//! `min.insync.replicas` come from [`KafkaConfig`]; every topic keeps 7 days
//! (`retention.ms`) and is lz4-compressed. Matching shards by symbol (one partition owns a
//! symbol so price-time priority holds), risk by user.
//!
//! # Contract
//! - Records are `serde_json` of the engine's [`qt_engine::CommandEnvelope`] /
//!   [`qt_engine::EventEnvelope`]: stable (serde names of the engine types), readable with
//!   `kafka-console-consumer`, and the same bytes the all-in-one journal stores.
//! - Every record carries headers `qt-source` (who sequenced it) and `qt-seq` (its
//!   sequence number at that source, decimal ASCII); events also `qt-cmd-seq` and
//!   `qt-type`. Consumers de-duplicate by `(source, seq)` within a partition (a source's
//!   sequence only increases per partition; see [`EffectConsumer`]).
//! - Producers are idempotent (`enable.idempotence`, `acks=all`) and every send returns
//!   only after the delivery report: nothing is acknowledged that Kafka has not persisted
//!   on all in-sync replicas. A failed batch may be partly written; retrying it is safe
//!   because consumers and the journal skip sequence numbers already seen.
//! - A matching shard writes its journal and its events through a transactional producer
//!   ([`BusProducer::transactional`], [`KafkaJournal::append_with`]): one transaction per
//!   batch, so a failed batch leaves nothing visible, and a newer producer with the same
//!   `transactional.id` fences the older one ([`BusError::Fenced`]). Every consumer reads
//!   with `isolation.level=read_committed`; commit markers take offsets, so no reader
//!   assumes contiguous offsets.
//! - [`KafkaJournal`] and [`KafkaEventSink`] are async inside; [`SyncJournal`] and
//!   [`SyncEventSink`] implement the engine's synchronous ports by `block_on` on a tokio
//!   runtime handle and must be used from a thread that is not a runtime worker (the
//!   engine thread).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod consumer;
mod journal;
mod lag;
mod producer;
mod sink;
mod topics;

pub use consumer::{Dedup, EffectConsumer, Received};
pub use journal::{join_commands, KafkaJournal, SyncJournal};
pub use lag::{enable_lag_stats, LagContext, LAG_STATS_INTERVAL_MS};
pub use producer::{BusProducer, OutRecord};
pub use sink::{route, KafkaEventSink, Route, SyncEventSink};
pub use topics::{ensure_topics, TopicReport};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// `fetch.wait.max.ms` of the consumers that wait on the pipeline (orders, replies,
/// journal tails). A fetch is answered as soon as one record arrives (`fetch.min.bytes`
/// 1), so this bounds only how long the broker holds an EMPTY fetch: a short wait does not
/// lower latency, it multiplies empty fetches. At 5 ms, eight idle consumers kept a local
/// broker at ~40% of a core and each role at 3-5%; at 100 ms ~30% and under 2%, with the
/// same orders/s and latency under load.
pub const LONG_POLL_WAIT_MS: &str = "100";

/// Topic names (seed 004 plus what the pipeline needs).
pub mod topic {
    pub const ORDERS: &str = "orders";
    pub const EXECUTIONS: &str = "executions";
    pub const PRICES: &str = "prices";
    pub const RISK_EVENTS: &str = "risk-events";
    pub const COMMANDS_MATCHING: &str = "commands.matching";
    pub const EVENTS: &str = "events";
    /// Outcomes of `orders` requests for the intake process that is waiting for them
    /// (keyed by that process's id).
    pub const REPLIES: &str = "replies";
    pub const ALL: [&str; 7] = [ORDERS, EXECUTIONS, PRICES, RISK_EVENTS, COMMANDS_MATCHING, EVENTS, REPLIES];
}

/// Consumer group names (seed 004 plus the projector).
pub mod group {
    pub const ORDER_PROCESSOR: &str = "order-processor-group";
    pub const RISK_ENGINE: &str = "risk-engine-group";
    pub const MARKET_DATA: &str = "market-data-group";
    pub const PROJECTOR: &str = "projector-group";
}

/// Header names carried by every record.
pub mod header {
    pub const SOURCE: &str = "qt-source";
    pub const SEQ: &str = "qt-seq";
    pub const CMD_SEQ: &str = "qt-cmd-seq";
    pub const TYPE: &str = "qt-type";
}

/// Kafka settings, loaded from `QT_KAFKA__…` by the binary (figment). `Debug` shows the
/// values of secret `extra` properties (passwords, secrets) as `<redacted>`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// Prefix of the client ids (the role name, e.g. `matching-0`).
    pub client_id: String,
    /// Prepended to every topic name (`""` in production; unique per test run).
    pub topic_prefix: String,
    /// Partition count of each topic; topics not listed get `default_partitions`.
    pub partitions: BTreeMap<String, i32>,
    pub default_partitions: i32,
    pub replication_factor: i32,
    pub min_insync_replicas: i32,
    pub retention_ms: i64,
    /// `lz4` or `zstd` (producer and topic).
    pub compression: String,
    /// Producer batching window; small, the engine already batches.
    pub linger_ms: u32,
    /// How long a send may take before it fails (librdkafka `message.timeout.ms`).
    pub delivery_timeout_ms: u32,
    /// Timeout of admin and metadata calls, and of journal reads.
    pub request_timeout_ms: u32,
    /// Extra librdkafka properties (e.g. `security.protocol`), applied last.
    pub extra: BTreeMap<String, String>,
}

/// Whether a librdkafka property holds a secret (`sasl.password`, `ssl.key.password`,
/// `sasl.oauthbearer.client.secret`, …): never printed.
pub fn is_secret_property(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("password") || n.contains("secret") || n == "ssl.key.pem" || n == "sasl.oauthbearer.config"
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let extra: BTreeMap<&str, &str> = self
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), if is_secret_property(k) { "<redacted>" } else { v.as_str() }))
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("client_id", &self.client_id)
            .field("topic_prefix", &self.topic_prefix)
            .field("partitions", &self.partitions)
            .field("default_partitions", &self.default_partitions)
            .field("replication_factor", &self.replication_factor)
            .field("min_insync_replicas", &self.min_insync_replicas)
            .field("retention_ms", &self.retention_ms)
            .field("compression", &self.compression)
            .field("linger_ms", &self.linger_ms)
            .field("delivery_timeout_ms", &self.delivery_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("extra", &extra)
            .finish()
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            client_id: "quanttrader".into(),
            topic_prefix: String::new(),
            partitions: BTreeMap::new(),
            default_partitions: 3,
            replication_factor: 3,
            min_insync_replicas: 2,
            retention_ms: 7 * 24 * 3600 * 1000,
            compression: "lz4".into(),
            linger_ms: 1,
            delivery_timeout_ms: 30_000,
            request_timeout_ms: 10_000,
            extra: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// A single-broker configuration (replication 1), as the local test servers need.
    pub fn single_broker(brokers: impl Into<String>) -> Self {
        KafkaConfig { brokers: brokers.into(), replication_factor: 1, min_insync_replicas: 1, ..Self::default() }
    }

    /// The full name of a topic of [`topic`].
    pub fn topic(&self, name: &str) -> String {
        format!("{}{}", self.topic_prefix, name)
    }

    pub fn partitions_of(&self, name: &str) -> i32 {
        self.partitions.get(name).copied().unwrap_or(self.default_partitions)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.request_timeout_ms))
    }

    /// Properties every client shares.
    pub(crate) fn client_config(&self, role: &str) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", format!("{}-{role}", self.client_id))
            .set("socket.keepalive.enable", "true")
            // Small records, waited for: no Nagle delay on the client's writes.
            .set("socket.nagle.disable", "true")
            // Below the 30 s default so a dead broker surfaces quickly in readiness.
            .set("socket.connection.setup.timeout.ms", "10000");
        c
    }

    pub(crate) fn apply_extra(&self, c: &mut rdkafka::ClientConfig) {
        for (k, v) in &self.extra {
            c.set(k, v);
        }
    }

    /// Checks what librdkafka would only report later, or never.
    pub fn validate(&self) -> Result<(), BusError> {
        let bad = |msg: String| Err(BusError::Config(msg));
        if self.brokers.trim().is_empty() {
            return bad("brokers is empty".into());
        }
        if self.replication_factor < 1 || self.default_partitions < 1 {
            return bad("replication_factor and default_partitions must be at least 1".into());
        }
        if self.min_insync_replicas < 1 || self.min_insync_replicas > self.replication_factor {
            return bad(format!(
                "min_insync_replicas {} must be within 1..={} (the replication factor)",
                self.min_insync_replicas, self.replication_factor
            ));
        }
        if let Some((t, p)) = self.partitions.iter().find(|(_, p)| **p < 1) {
            return bad(format!("topic {t}: {p} partitions"));
        }
        if !matches!(self.compression.as_str(), "lz4" | "zstd" | "snappy" | "gzip" | "none") {
            return bad(format!("compression {:?} is not one of lz4, zstd, snappy, gzip, none", self.compression));
        }
        Ok(())
    }
}

/// Errors of the Kafka adapters.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A record librdkafka refused to queue ([`BusProducer::send_all`]): it was never sent.
    #[error("kafka: record not queued, nothing sent: {0}")]
    NotQueued(KafkaError),
    #[error("kafka configuration: {0}")]
    Config(String),
    #[error("topic {topic}: {code}")]
    Topic { topic: String, code: RDKafkaErrorCode },
    #[error("topic {topic} has {actual} partitions but the configuration wants {wanted}; partitions are never removed, and adding them would move symbols between shards: fix the configuration or migrate")]
    PartitionMismatch { topic: String, actual: i32, wanted: i32 },
    #[error("record encoding: {0}")]
    Json(#[from] serde_json::Error),
    #[error("record {topic}/{partition}@{offset}: {what}")]
    BadRecord { topic: String, partition: i32, offset: i64, what: String },
    #[error("journal sequence {got} does not follow {last}")]
    OutOfOrder { last: u64, got: u64 },
    #[error("delivery report lost (producer shut down)")]
    Cancelled,
    #[error("timed out after {0:?} while {1}")]
    Timeout(Duration, &'static str),
    #[error("background task failed: {0}")]
    Task(String),
    /// Another producer with the same `transactional.id` initialised after this one:
    /// another process owns what this one wrote. Never recovers.
    #[error("kafka: fenced by a newer producer with the same transactional id: {0}")]
    Fenced(String),
    /// The producer raised a fatal error other than fencing: it can never send again.
    #[error("kafka: fatal producer error: {0}")]
    ProducerFatal(String),
}

/// What a failed transaction step (or a send inside a transaction) asks the caller to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnError {
    /// Another producer owns the `transactional.id`: stop, never re-initialise.
    Fenced,
    /// The producer can never be used again.
    Fatal,
    /// The outcome of a commit is open (timeout, coordinator moving): call the same step
    /// again.
    Retriable,
    /// The transaction cannot commit: abort it and redo its records in a new one.
    Abortable,
}

/// Error codes saying that a newer producer took the `transactional.id` over.
pub(crate) fn is_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(code, RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch)
}

/// What a failed [`BusProducer::send_all`] says about the record it failed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendFailure {
    /// The record was certainly not written: it was never queued (local queue full until
    /// the delivery timeout, a local check, no such topic or partition), could not be
    /// encoded, or the broker rejected it with a non-retriable error about the record
    /// itself (too large, invalid, not authorized, policy).
    NotWritten,
    /// The record may be in the topic: the delivery timed out (`MessageTimedOut`), the
    /// request to the broker was in flight when it failed or was purged, the producer hit
    /// a fatal idempotence error, or the delivery report was lost. A client must be told
    /// that the outcome is unknown.
    Unknown,
}

impl BusError {
    /// Classifies an error of [`BusProducer::send_all`] (see [`SendFailure`]): anything
    /// not known to prove that nothing was written is [`SendFailure::Unknown`]. For a
    /// batch this speaks of the failing record only; earlier records may be written.
    pub fn send_failure(&self) -> SendFailure {
        match self {
            BusError::NotQueued(_) | BusError::Json(_) | BusError::Config(_) => SendFailure::NotWritten,
            BusError::Kafka(e) => match e.rdkafka_error_code() {
                Some(
                    RDKafkaErrorCode::InvalidMessage
                    | RDKafkaErrorCode::InvalidMessageSize
                    | RDKafkaErrorCode::MessageSizeTooLarge
                    | RDKafkaErrorCode::MessageBatchTooLarge
                    | RDKafkaErrorCode::InvalidRecord
                    | RDKafkaErrorCode::InvalidTimestamp
                    | RDKafkaErrorCode::InvalidTopic
                    | RDKafkaErrorCode::InvalidRequiredAcks
                    | RDKafkaErrorCode::UnsupportedForMessageFormat
                    | RDKafkaErrorCode::PolicyViolation
                    | RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::UnknownPartition
                    | RDKafkaErrorCode::PurgeQueue,
                ) => SendFailure::NotWritten,
                _ => SendFailure::Unknown,
            },
            _ => SendFailure::Unknown,
        }
    }

    /// What a transactional writer does after this error ([`TxnError`]). Send failures
    /// (delivery reports) inside a transaction are abortable unless they carry a fencing
    /// code; librdkafka's own verdict decides for its transaction calls.
    pub fn txn(&self) -> TxnError {
        match self {
            BusError::Fenced(_) => TxnError::Fenced,
            BusError::ProducerFatal(_) => TxnError::Fatal,
            BusError::Kafka(KafkaError::Transaction(e)) if is_fencing(e.code()) => TxnError::Fenced,
            BusError::Kafka(KafkaError::Transaction(e)) if e.is_fatal() => TxnError::Fatal,
            BusError::Kafka(KafkaError::Transaction(e)) if e.txn_requires_abort() => TxnError::Abortable,
            BusError::Kafka(KafkaError::Transaction(e)) if e.is_retriable() => TxnError::Retriable,
            BusError::Kafka(e) | BusError::NotQueued(e) if e.rdkafka_error_code().is_some_and(is_fencing) => {
                TxnError::Fenced
            }
            _ => TxnError::Abortable,
        }
    }

    /// Whether this process must stop writing as this producer (fenced or fatal).
    pub fn is_fatal(&self) -> bool {
        matches!(self.txn(), TxnError::Fenced | TxnError::Fatal)
    }

    /// Whether a retry may succeed (broker down, timeout) rather than the request being wrong.
    pub fn outcome(&self) -> qt_resilience::Outcome {
        use qt_resilience::Outcome;
        match self {
            BusError::Kafka(e) | BusError::NotQueued(e) => match e.rdkafka_error_code() {
                Some(
                    RDKafkaErrorCode::InvalidMessage
                    | RDKafkaErrorCode::MessageSizeTooLarge
                    | RDKafkaErrorCode::InvalidTopic
                    | RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::UnknownPartition,
                ) => Outcome::Permanent,
                _ => Outcome::Transient,
            },
            BusError::Timeout(..) | BusError::Cancelled | BusError::Task(_) => Outcome::Transient,
            _ => Outcome::Permanent,
        }
    }
}

pub(crate) fn header_u64(headers: Option<&rdkafka::message::BorrowedHeaders>, name: &str) -> Option<u64> {
    header_str(headers, name).and_then(|s| s.parse().ok())
}

pub(crate) fn header_str<'a>(headers: Option<&'a rdkafka::message::BorrowedHeaders>, name: &str) -> Option<&'a str> {
    use rdkafka::message::Headers;
    let h = headers?;
    h.iter().find(|h| h.key == name).and_then(|h| h.value).and_then(|v| std::str::from_utf8(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_seed_and_validate() {
        let c = KafkaConfig::default();
        assert_eq!(c.retention_ms, 604_800_000);
        assert_eq!(c.partitions_of(topic::ORDERS), 3);
        assert_eq!(c.replication_factor, 3);
        c.validate().unwrap();
        KafkaConfig::single_broker("127.0.0.1:1").validate().unwrap();
    }

    #[test]
    fn validate_rejects_impossible_settings() {
        let c = KafkaConfig { min_insync_replicas: 4, ..KafkaConfig::default() };
        assert!(matches!(c.validate(), Err(BusError::Config(_))));
        let c = KafkaConfig { compression: "brotli".into(), ..KafkaConfig::default() };
        assert!(c.validate().is_err());
        let c = KafkaConfig { brokers: " ".into(), ..KafkaConfig::default() };
        assert!(c.validate().is_err());
    }

    #[test]
    fn send_failures_are_not_written_only_when_that_is_certain() {
        use rdkafka::error::RDKafkaErrorCode as C;
        let delivery = |c| BusError::Kafka(KafkaError::MessageProduction(c));
        // Possibly written: the client must hear "outcome unknown".
        for c in [
            C::MessageTimedOut,
            C::RequestTimedOut,
            C::PurgeInflight,
            C::Fatal,
            C::NotEnoughReplicasAfterAppend,
            C::NotEnoughReplicas,
            C::AllBrokersDown,
            C::BrokerTransportFailure,
            C::OutOfOrderSequenceNumber,
        ] {
            assert_eq!(delivery(c).send_failure(), SendFailure::Unknown, "{c:?}");
        }
        assert_eq!(BusError::Cancelled.send_failure(), SendFailure::Unknown);
        assert_eq!(BusError::Task("panicked".into()).send_failure(), SendFailure::Unknown);
        assert_eq!(BusError::Timeout(Duration::from_secs(1), "reading").send_failure(), SendFailure::Unknown);
        // Certainly not written.
        for c in [C::MessageSizeTooLarge, C::InvalidRecord, C::TopicAuthorizationFailed, C::UnknownTopic, C::PurgeQueue]
        {
            assert_eq!(delivery(c).send_failure(), SendFailure::NotWritten, "{c:?}");
        }
        // Never queued, whatever the code (a fatal producer refuses new records too).
        for c in [C::QueueFull, C::Fatal, C::MessageTimedOut] {
            let e = BusError::NotQueued(KafkaError::MessageProduction(c));
            assert_eq!(e.send_failure(), SendFailure::NotWritten, "{c:?}");
        }
        let json = serde_json::from_str::<u8>("x").unwrap_err();
        assert_eq!(BusError::Json(json).send_failure(), SendFailure::NotWritten);
    }

    #[test]
    fn debug_never_shows_a_secret_property() {
        let mut c = KafkaConfig::default();
        c.extra.insert("sasl.username".into(), "quanttrader".into());
        c.extra.insert("sasl.password".into(), "hunter2-secret-value".into());
        c.extra.insert("ssl.key.password".into(), "another-one".into());
        let shown = format!("{c:?} {c:#?}");
        assert!(shown.contains("quanttrader") && shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("hunter2") && !shown.contains("another-one"), "{shown}");
    }

    #[test]
    fn config_loads_from_json_with_defaults() {
        let c: KafkaConfig =
            serde_json::from_str(r#"{"brokers":"b:9092","partitions":{"commands.matching":8}}"#).unwrap();
        assert_eq!(c.brokers, "b:9092");
        assert_eq!(c.partitions_of(topic::COMMANDS_MATCHING), 8);
        assert_eq!(c.partitions_of(topic::PRICES), 3);
        assert!(serde_json::from_str::<KafkaConfig>(r#"{"brokerz":"x"}"#).is_err());
    }
}
