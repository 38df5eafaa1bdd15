//! Configuration of `quanttrader serve`: the all-in-one [`RunConfig`] (listen address,
//! HTTP limits, markets, default risk limits, logging) plus the distributed parts, each
//! layered the same way (defaults ← TOML file ← `QT_…` environment with `__` nesting ←
//! flags):
//!
//! - `kafka` ([`KafkaConfig`], `QT_KAFKA__BROKERS`, …),
//! - `database` ([`PgConfig`], `QT_DATABASE__URL`, …),
//! - `redis` ([`RedisConfig`], `QT_REDIS__URL`, …),
//! - `node` ([`NodeSettings`], `QT_NODE__…`).
//!
//! Contract: [`NodeConfig::load`] reports every unreadable setting at once; the Kafka
//! replication settings default to ONE broker (replication 1, min ISR 1) when neither the
//! file nor the environment sets them, because a local stack has one broker; a production
//! deployment sets `QT_KAFKA__REPLICATION_FACTOR` and `QT_KAFKA__MIN_INSYNC_REPLICAS`.

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use qt_api::{Overrides, RunConfig};
use qt_bus_kafka::KafkaConfig;
use qt_cache_redis::RedisConfig;
use qt_store_postgres::PgConfig;
use serde::Deserialize;
use std::path::PathBuf;

/// Settings of the distributed roles themselves.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSettings {
    /// Name of the matching shard: its source name in PostgreSQL (snapshots, projector
    /// offsets) and on its Kafka records.
    pub shard: String,
    /// Partition of `commands.matching` that is this shard's journal.
    pub partition: i32,
    /// How long an intake process waits for the outcome of a command it published.
    pub reply_timeout_ms: u64,
    /// Most `orders` requests sequenced, journaled and applied as one batch.
    pub batch_max: usize,
    /// A snapshot of the shard every this many commands.
    pub snapshot_every: u64,
    /// How long a Redis in-flight claim on an idempotency key lives (the answers
    /// themselves are kept 24 h by the read model).
    pub claim_ttl_s: u64,
    /// How often dependencies are probed for `/ready`.
    pub probe_ms: u64,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            shard: "matching-0".into(),
            partition: 0,
            reply_timeout_ms: 10_000,
            batch_max: 1024,
            snapshot_every: 10_000,
            claim_ttl_s: 60,
            probe_ms: 1_000,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct Distributed {
    kafka: Option<KafkaConfig>,
    database: PgConfig,
    redis: RedisConfig,
    node: NodeSettings,
}

/// Everything a role needs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub run: RunConfig,
    pub kafka: KafkaConfig,
    pub database: PgConfig,
    pub redis: RedisConfig,
    pub node: NodeSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    #[error(transparent)]
    Run(#[from] qt_api::config::ConfigError),
    #[error("configuration could not be read: {0}")]
    Load(String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

const OUR_KEYS: [&str; 4] = ["kafka", "database", "redis", "node"];

impl NodeConfig {
    pub fn load(flags: &Overrides) -> Result<NodeConfig, NodeConfigError> {
        let run = RunConfig::load(flags)?;
        run.validate()?;
        let mut figment = Figment::new();
        if let Some(file) = &flags.config_file {
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("QT_").split("__").filter(|k| {
            let top = k.as_str().split("__").next().and_then(|k| k.split('.').next()).unwrap_or("");
            OUR_KEYS.iter().any(|known| known.eq_ignore_ascii_case(top))
        }));
        // Only our sections: the file's other sections are RunConfig's.
        let mut dist = Distributed::default();
        let load = |e: figment::Error| NodeConfigError::Load(e.to_string());
        if figment.find_value("kafka").is_ok() {
            // `security_protocol` (QT_KAFKA__SECURITY_PROTOCOL, set by the Helm chart) is a
            // librdkafka property: it goes to `extra` as `security.protocol`.
            let mut raw: serde_json::Value = figment.extract_inner("kafka").map_err(load)?;
            if let Some(obj) = raw.as_object_mut() {
                if let Some(p) = obj.remove("security_protocol") {
                    let protocol = p.as_str().map_or_else(|| p.to_string(), str::to_string);
                    let extra = obj.entry("extra").or_insert_with(|| serde_json::json!({}));
                    if let Some(extra) = extra.as_object_mut() {
                        extra.insert("security.protocol".into(), serde_json::Value::String(protocol));
                    }
                }
            }
            let mut k: KafkaConfig =
                serde_json::from_value(raw).map_err(|e| NodeConfigError::Load(format!("kafka: {e}")))?;
            if figment.find_value("kafka.replication_factor").is_err() {
                k.replication_factor = 1;
                k.min_insync_replicas = 1;
            }
            dist.kafka = Some(k);
        }
        if figment.find_value("database").is_ok() {
            dist.database = figment.extract_inner("database").map_err(load)?;
        }
        if figment.find_value("redis").is_ok() {
            dist.redis = figment.extract_inner("redis").map_err(load)?;
        }
        if figment.find_value("node").is_ok() {
            dist.node = figment.extract_inner("node").map_err(load)?;
        }
        let kafka = dist.kafka.unwrap_or_else(|| KafkaConfig::single_broker(KafkaConfig::default().brokers));
        kafka.validate().map_err(|e| NodeConfigError::Invalid(e.to_string()))?;
        if dist.node.batch_max == 0 || dist.node.snapshot_every == 0 {
            return Err(NodeConfigError::Invalid("node.batch_max and node.snapshot_every must be positive".into()));
        }
        Ok(NodeConfig { run, kafka, database: dist.database, redis: dist.redis, node: dist.node })
    }
}

/// Command-line overrides of `quanttrader serve`.
pub fn overrides(listen: Option<String>, admin_token: Option<String>, config_file: Option<PathBuf>) -> Overrides {
    Overrides { config_file, listen, admin_token, no_sim: true, ..Overrides::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Helm chart hands MSK's SASL/SCRAM credentials to the binary as a TOML file
    /// (`--config`) because librdkafka's property names contain dots, which `QT_…__…`
    /// environment names cannot carry; the protocol comes as `security_protocol`. Both
    /// must end up as librdkafka properties in `extra`, and the file's `kafka` section
    /// must not upset the all-in-one part of the configuration.
    #[test]
    fn sasl_properties_from_a_config_file_reach_librdkafka() {
        let path = std::env::temp_dir().join(format!("qt-node-kafka-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            r#"
[kafka]
brokers = "b-1.example:9096,b-2.example:9096"
security_protocol = "SASL_SSL"
replication_factor = 3
min_insync_replicas = 2

[kafka.extra]
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "quanttrader"
"sasl.password" = "p@ss\"word"
"#,
        )
        .unwrap();
        let loaded = NodeConfig::load(&overrides(None, Some("t".repeat(32)), Some(path.clone())));
        std::fs::remove_file(&path).unwrap();
        let k = loaded.unwrap().kafka;
        let prop = |name: &str| k.extra.get(name).map(String::as_str);
        assert_eq!(prop("security.protocol"), Some("SASL_SSL"));
        assert_eq!(prop("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(prop("sasl.username"), Some("quanttrader"));
        assert_eq!(prop("sasl.password"), Some("p@ss\"word"));
        assert_eq!((k.replication_factor, k.min_insync_replicas), (3, 2));
    }
}
