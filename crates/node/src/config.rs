//! Configuration of `quanttrader serve`: the all-in-one [`RunConfig`] (listen address,
//! HTTP limits, markets, default risk limits, logging) plus the distributed parts, each
//! layered the same way (defaults ← TOML file ← `QT_…` environment with `__` nesting ←
//! flags):
//!
//! - `kafka` ([`KafkaConfig`], `QT_KAFKA__BROKERS`, …; plus `security_protocol`,
//!   `sasl_mechanism`, `sasl_username`, `sasl_password` — `QT_KAFKA__SECURITY_PROTOCOL`,
//!   `QT_KAFKA__SASL_MECHANISM`, … — which become librdkafka's dotted `security.protocol`,
//!   `sasl.*` properties in `extra`; the SASL variables are read verbatim),
//! - `database` ([`PgConfig`], `QT_DATABASE__URL`, …),
//! - `redis` ([`RedisConfig`], `QT_REDIS__URL`, …),
//! - `node` ([`NodeSettings`], `QT_NODE__…`).
//!
//! Contract: [`NodeConfig::load`] reports every invalid setting at once (SASL: mechanism
//! PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, username and password both or neither, a `SASL_*`
//! security protocol; the password never appears in a message or in `Debug`); the Kafka
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
    /// How often the matching role deletes the idempotency answers older than 24 h from
    /// PostgreSQL (the readers ignore them already; this keeps the table bounded).
    pub idempotency_purge_every_s: u64,
    /// Most rows one purge statement deletes (short statements, short row locks; a purge
    /// runs statements until one deletes fewer).
    pub idempotency_purge_batch: u64,
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
            idempotency_purge_every_s: 3_600,
            idempotency_purge_batch: 10_000,
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
        let mut invalid = Vec::new();
        if figment.find_value("kafka").is_ok() {
            // `security_protocol` (QT_KAFKA__SECURITY_PROTOCOL, set by the Helm chart) and the
            // `sasl_*` keys are librdkafka properties: they go to `extra` under their dotted
            // names (`security.protocol`, `sasl.mechanism`, …), over what `extra` had.
            let mut raw: serde_json::Value = figment.extract_inner("kafka").map_err(load)?;
            let mut sasl = Sasl::default();
            if let Some(obj) = raw.as_object_mut() {
                let mut dotted = Vec::new();
                if let Some(p) = obj.remove("security_protocol") {
                    dotted.push(("security.protocol", p.as_str().map_or_else(|| p.to_string(), str::to_string)));
                }
                sasl = Sasl::take(obj);
                dotted.extend(sasl.properties());
                if !dotted.is_empty() {
                    let extra = obj.entry("extra").or_insert_with(|| serde_json::json!({}));
                    if let Some(extra) = extra.as_object_mut() {
                        for (k, v) in dotted {
                            extra.insert(k.into(), serde_json::Value::String(v));
                        }
                    }
                }
            }
            let mut k: KafkaConfig =
                serde_json::from_value(raw).map_err(|e| NodeConfigError::Load(format!("kafka: {e}")))?;
            if figment.find_value("kafka.replication_factor").is_err() {
                k.replication_factor = 1;
                k.min_insync_replicas = 1;
            }
            invalid.extend(sasl.problems(&k));
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
        if let Err(e) = kafka.validate() {
            invalid.insert(0, e.to_string());
        }
        if dist.node.batch_max == 0 || dist.node.snapshot_every == 0 {
            invalid.push("node.batch_max and node.snapshot_every must be positive".into());
        }
        if dist.node.idempotency_purge_every_s == 0 || dist.node.idempotency_purge_batch == 0 {
            invalid.push("node.idempotency_purge_every_s and node.idempotency_purge_batch must be positive".into());
        }
        if !invalid.is_empty() {
            return Err(NodeConfigError::Invalid(invalid.join("; ")));
        }
        Ok(NodeConfig { run, kafka, database: dist.database, redis: dist.redis, node: dist.node })
    }
}

/// SASL mechanisms the dedicated `kafka.sasl_mechanism` setting accepts (MSK uses
/// SCRAM-SHA-512); others (GSSAPI, OAUTHBEARER) can still be set in `kafka.extra`.
const SASL_MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// The environment variables of the SASL settings, read verbatim (see [`Sasl::take`]).
const SASL_ENV: [(&str, &str); 3] = [
    ("sasl_mechanism", "QT_KAFKA__SASL_MECHANISM"),
    ("sasl_username", "QT_KAFKA__SASL_USERNAME"),
    ("sasl_password", "QT_KAFKA__SASL_PASSWORD"),
];

/// `kafka.sasl_mechanism`, `kafka.sasl_username`, `kafka.sasl_password` (TOML) or
/// `QT_KAFKA__SASL_MECHANISM`, `…_USERNAME`, `…_PASSWORD` (environment, over the file):
/// librdkafka's `sasl.mechanism`, `sasl.username`, `sasl.password`. Empty is unset.
#[derive(Default)]
struct Sasl {
    mechanism: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Sasl {
    /// Takes the `sasl_*` keys out of the `kafka` section. Values set in the environment
    /// are read from it verbatim: figment parses environment values (`007` would become the
    /// number 7, `[x]` an array), which a password must not go through.
    fn take(kafka: &mut serde_json::Map<String, serde_json::Value>) -> Sasl {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let mut values = SASL_ENV.iter().map(|(key, var)| {
            let from_file = kafka.remove(*key).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
            let from_env = env.iter().find(|(k, _)| k.eq_ignore_ascii_case(var)).map(|(_, v)| v.clone());
            from_env.or(from_file).filter(|v| !v.is_empty())
        });
        Sasl {
            mechanism: values.next().flatten(),
            username: values.next().flatten(),
            password: values.next().flatten(),
        }
    }

    fn properties(&self) -> Vec<(&'static str, String)> {
        [("sasl.mechanism", &self.mechanism), ("sasl.username", &self.username), ("sasl.password", &self.password)]
            .into_iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
            .collect()
    }

    /// What is wrong with the SASL settings, given the resulting librdkafka properties.
    /// Messages never contain the password.
    fn problems(&self, k: &KafkaConfig) -> Vec<String> {
        let mut out = Vec::new();
        if self.mechanism.is_none() && self.username.is_none() && self.password.is_none() {
            return out;
        }
        if let Some(m) = &self.mechanism {
            if !SASL_MECHANISMS.contains(&m.as_str()) {
                out.push(format!("kafka.sasl_mechanism: '{m}' is not one of {}", SASL_MECHANISMS.join(", ")));
            }
        }
        let prop = |name: &str| k.extra.get(name).filter(|v| !v.is_empty());
        if prop("sasl.username").is_some() != prop("sasl.password").is_some() {
            out.push("kafka.sasl_username and kafka.sasl_password: set both or neither".into());
        }
        if (self.username.is_some() || self.password.is_some()) && prop("sasl.mechanism").is_none() {
            out.push(format!(
                "kafka.sasl_mechanism: required with a SASL username and password ({})",
                SASL_MECHANISMS.join(", ")
            ));
        }
        match prop("security.protocol") {
            Some(p) if p.eq_ignore_ascii_case("SASL_SSL") || p.eq_ignore_ascii_case("SASL_PLAINTEXT") => {}
            p => out.push(format!(
                "kafka.security_protocol: SASL settings need SASL_SSL or SASL_PLAINTEXT, not {}",
                p.map_or_else(|| "the default PLAINTEXT".to_string(), |p| format!("'{p}'"))
            )),
        }
        out
    }
}

/// Command-line overrides of `quanttrader serve`.
pub fn overrides(listen: Option<String>, admin_token: Option<String>, config_file: Option<PathBuf>) -> Overrides {
    Overrides { config_file, listen, admin_token, no_sim: true, ..Overrides::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Tests that load the configuration read the process environment: one at a time.
    static ENV: Mutex<()> = Mutex::new(());

    /// Sets environment variables for one test and removes them when dropped.
    struct EnvVars(Vec<&'static str>);

    impl EnvVars {
        fn set(vars: &[(&'static str, &str)]) -> EnvVars {
            for (k, v) in vars {
                std::env::set_var(k, v);
            }
            EnvVars(vars.iter().map(|(k, _)| *k).collect())
        }
    }

    impl Drop for EnvVars {
        fn drop(&mut self) {
            for k in &self.0 {
                std::env::remove_var(k);
            }
        }
    }

    fn temp_toml(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("qt-node-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load(file: Option<PathBuf>) -> Result<NodeConfig, NodeConfigError> {
        let loaded = NodeConfig::load(&overrides(None, Some("t".repeat(32)), file.clone()));
        if let Some(f) = file {
            std::fs::remove_file(f).unwrap();
        }
        loaded
    }

    /// The Helm chart's ExternalSecret sets the MSK SCRAM credentials as environment
    /// variables; the password reaches librdkafka verbatim (figment would turn `007` into
    /// a number and `[x]` into an array) and never shows in `Debug`.
    #[test]
    fn sasl_settings_from_the_environment_reach_librdkafka() {
        let _one = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let password = "007[x]{y}=\"z\"#";
        let _vars = EnvVars::set(&[
            ("QT_KAFKA__BROKERS", "b-1.example:9096"),
            ("QT_KAFKA__SECURITY_PROTOCOL", "SASL_SSL"),
            ("QT_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512"),
            ("QT_KAFKA__SASL_USERNAME", "quanttrader"),
            ("QT_KAFKA__SASL_PASSWORD", password),
        ]);
        let cfg = load(None).unwrap();
        let prop = |name: &str| cfg.kafka.extra.get(name).map(String::as_str);
        assert_eq!(prop("security.protocol"), Some("SASL_SSL"));
        assert_eq!(prop("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(prop("sasl.username"), Some("quanttrader"));
        assert_eq!(prop("sasl.password"), Some(password));
        assert_eq!(cfg.kafka.brokers, "b-1.example:9096");
        let shown = format!("{cfg:?}");
        assert!(shown.contains("quanttrader") && !shown.contains("007[x]"), "{shown}");
    }

    /// The TOML keys work too, and the environment overrides the file.
    #[test]
    fn sasl_settings_from_the_file_are_overridden_by_the_environment() {
        let _one = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let _vars = EnvVars::set(&[("QT_KAFKA__SASL_PASSWORD", "from-env")]);
        let file = temp_toml(
            "sasl-keys",
            r#"
[kafka]
brokers = "b-1.example:9096"
security_protocol = "SASL_PLAINTEXT"
sasl_mechanism = "PLAIN"
sasl_username = "svc"
sasl_password = "from-file"
"#,
        );
        let cfg = load(Some(file)).unwrap();
        let prop = |name: &str| cfg.kafka.extra.get(name).map(String::as_str);
        assert_eq!(prop("sasl.mechanism"), Some("PLAIN"));
        assert_eq!(prop("sasl.username"), Some("svc"));
        assert_eq!(prop("sasl.password"), Some("from-env"));
    }

    /// Every SASL mistake is reported at once, with the other configuration errors, and
    /// the password is not part of the message.
    #[test]
    fn sasl_mistakes_are_reported_together() {
        let _one = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let _vars = EnvVars::set(&[
            ("QT_KAFKA__SASL_MECHANISM", "SCRAM-SHA-1"),
            ("QT_KAFKA__SASL_PASSWORD", "s3cr3t-pw"),
            ("QT_KAFKA__REPLICATION_FACTOR", "1"),
            ("QT_KAFKA__MIN_INSYNC_REPLICAS", "5"),
        ]);
        let err = load(None).unwrap_err().to_string();
        for part in [
            "min_insync_replicas 5",
            "kafka.sasl_mechanism: 'SCRAM-SHA-1' is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
            "kafka.sasl_username and kafka.sasl_password: set both or neither",
            "kafka.security_protocol: SASL settings need SASL_SSL or SASL_PLAINTEXT",
        ] {
            assert!(err.contains(part), "{part:?} missing from: {err}");
        }
        assert!(!err.contains("s3cr3t"), "{err}");
        drop(_vars);

        let _vars = EnvVars::set(&[
            ("QT_KAFKA__SECURITY_PROTOCOL", "SASL_SSL"),
            ("QT_KAFKA__SASL_USERNAME", "svc"),
            ("QT_KAFKA__SASL_PASSWORD", "pw"),
        ]);
        let err = load(None).unwrap_err().to_string();
        assert!(err.contains("kafka.sasl_mechanism: required"), "{err}");
        drop(_vars);

        // Nothing SASL: nothing to say.
        load(None).unwrap();
    }

    /// librdkafka properties can also come in a TOML file (`--config`) under
    /// `[kafka.extra]` with their dotted names; the protocol comes as `security_protocol`.
    /// Both must end up as librdkafka properties in `extra`, and the file's `kafka` section
    /// must not upset the all-in-one part of the configuration.
    #[test]
    fn sasl_properties_from_a_config_file_reach_librdkafka() {
        let _one = ENV.lock().unwrap_or_else(|e| e.into_inner());
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
