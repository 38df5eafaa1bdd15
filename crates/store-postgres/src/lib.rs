//! PostgreSQL storage of the distributed QuantTrader: the read model the query endpoints
//! serve, engine snapshots per shard, and the projector that fills them from the events.
//!
//! Contract:
//! - [`PgStore::connect`] builds a connection pool (sizes and timeouts from [`PgConfig`]);
//!   [`PgStore::migrate`] applies the embedded migrations (`migrations/NNNN_name.sql`) in
//!   order, each in its own transaction under an advisory lock, recording version and
//!   SHA-256; applying them again is a no-op, and an applied migration whose file changed
//!   is refused (released migrations are never edited).
//! - [`Projector`] folds applied commands and their events into the read model in ONE
//!   transaction per batch, idempotent by `(source, seq)` (see its module).
//! - [`PgSnapshotStore`] implements the engine's `SnapshotStore` per shard, and keeps a
//!   matching shard's ingress watermarks with its snapshot.
//! - [`PgReader`] answers the API's queries with the same names, arguments, row types
//!   (re-exported from `qt_store_sqlite`) and paging as the all-in-one SQLite read model
//!   (`qt_store_sqlite::Reader`), so the API serves both with one set of types.
//!
//! Why tokio-postgres + deadpool and not sqlx: sqlx 0.8's optional SQLite driver pins
//! `libsqlite3-sys 0.30`, and Cargo resolves `links` across optional dependencies, which
//! conflicts with the workspace's rusqlite 0.40. Queries are plain SQL with bind
//! parameters, prepared once per connection (statement cache).
//!
//! Async throughout; [`SyncSnapshotStore`] adapts to the engine's synchronous port with
//! `block_on` on a runtime handle (call it from the engine thread, not a runtime worker).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod model;
mod projector;
mod reader;
mod snapshots;

pub use model::*;
pub use projector::{ChangedOrder, PlaceAnswer, Projected, Projector};
pub use reader::{OrderFilter, PgReader, StatusFilter, IDEMPOTENCY_TTL_NS, MAX_PAGE};
pub use snapshots::{Ingress, PgSnapshotStore, SyncSnapshotStore, SNAPSHOTS_KEPT};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio_postgres::NoTls;

/// Connection settings, loaded from `QT_DATABASE__…` by the binary (figment).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/db`.
    pub url: String,
    /// Schema for every table (`search_path`); `None`: the server's default (`public`).
    pub schema: Option<String>,
    /// Pool size: connections per process.
    pub max_connections: usize,
    /// Opening a connection.
    pub connect_timeout_ms: u64,
    /// Waiting for a free connection of the pool.
    pub acquire_timeout_ms: u64,
    /// Server-side limit per statement, so a stuck query cannot hold a connection forever.
    pub statement_timeout_ms: u64,
    /// `application_name` shown in `pg_stat_activity`.
    pub application_name: String,
}

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            url: "postgres://quanttrader@127.0.0.1:5432/quanttrader".into(),
            schema: None,
            max_connections: 16,
            connect_timeout_ms: 5_000,
            acquire_timeout_ms: 5_000,
            statement_timeout_ms: 30_000,
            application_name: "quanttrader".into(),
        }
    }
}

impl PgConfig {
    pub fn with_url(url: impl Into<String>) -> Self {
        PgConfig { url: url.into(), ..Self::default() }
    }
}

/// Errors of the PostgreSQL adapters.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("postgres: {0}")]
    Pg(#[from] tokio_postgres::Error),
    #[error("postgres pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("postgres configuration: {0}")]
    Config(String),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
    #[error("snapshot: {0}")]
    Snapshot(#[from] qt_engine::SnapshotError),
    #[error("read model is inconsistent: {0}")]
    Corrupt(String),
    #[error("migration {version} ({name}) was applied with checksum {applied} but the file now hashes to {file}; released migrations are never edited")]
    MigrationChanged { version: i64, name: String, applied: String, file: String },
    #[error(
        "the database has migration {0}, newer than this binary knows: refusing to run an old binary on a newer schema"
    )]
    SchemaTooNew(i64),
}

impl StoreError {
    /// Whether a retry may succeed (connection lost, timeout, serialization conflict)
    /// rather than the request being wrong.
    pub fn outcome(&self) -> qt_resilience::Outcome {
        use qt_resilience::Outcome;
        match self {
            StoreError::Pool(_) => Outcome::Transient,
            StoreError::Pg(e) => match e.code() {
                // No SQLSTATE: the connection broke or the server went away.
                None => Outcome::Transient,
                Some(code) => {
                    let c = code.code();
                    // 08: connection exception; 40: serialization failure / deadlock;
                    // 53: insufficient resources; 57P: operator intervention (shutdown).
                    if c.starts_with("08") || c.starts_with("40") || c.starts_with("53") || c.starts_with("57P") {
                        Outcome::Transient
                    } else {
                        Outcome::Permanent
                    }
                }
            },
            _ => Outcome::Permanent,
        }
    }
}

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Append-only: a schema change is a new file and a new entry.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../migrations/0001_init.sql") },
    Migration { version: 2, name: "snapshot_ingress", sql: include_str!("../migrations/0002_snapshot_ingress.sql") },
];

/// Advisory lock key serializing migrations across processes ("qtmigr" in ASCII).
const MIGRATION_LOCK: i64 = 0x7174_6d69_6772;

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The pool and the handles built on it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: Pool,
    config: PgConfig,
}

impl PgStore {
    /// Builds the pool; connections open lazily, so this succeeds while the server is down.
    pub fn connect(config: &PgConfig) -> Result<PgStore, StoreError> {
        let mut pg: tokio_postgres::Config =
            config.url.parse().map_err(|e: tokio_postgres::Error| StoreError::Config(e.to_string()))?;
        pg.connect_timeout(Duration::from_millis(config.connect_timeout_ms));
        pg.application_name(&config.application_name);
        let mut options = format!("-c statement_timeout={}", config.statement_timeout_ms);
        if let Some(schema) = &config.schema {
            if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || schema.is_empty() {
                return Err(StoreError::Config(format!("schema {schema:?}: letters, digits and _ only")));
            }
            options.push_str(&format!(" -c search_path={schema}"));
        }
        pg.options(&options);
        let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let acquire = Duration::from_millis(config.acquire_timeout_ms);
        let pool = Pool::builder(manager)
            .max_size(config.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(acquire))
            .create_timeout(Some(Duration::from_millis(config.connect_timeout_ms)))
            .recycle_timeout(Some(acquire))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(PgStore { pool, config: config.clone() })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// A round trip, for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.pool.get().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Creates the configured schema when missing (tests and fresh installs).
    pub async fn ensure_schema(&self) -> Result<(), StoreError> {
        if let Some(schema) = &self.config.schema {
            // The name was checked to be [A-Za-z0-9_]+ in connect.
            self.pool.get().await?.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).await?;
        }
        Ok(())
    }

    /// Applies the missing migrations; returns the versions it applied.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        self.ensure_schema().await?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Serializes concurrent starts of several replicas: the lock ends with the transaction.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    BIGINT PRIMARY KEY,
                name       TEXT NOT NULL,
                checksum   TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .await?;
        let rows = tx.query("SELECT version, name, checksum FROM schema_migrations ORDER BY version", &[]).await?;
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        let mut applied = Vec::new();
        for r in &rows {
            let version: i64 = r.get(0);
            if version > known {
                return Err(StoreError::SchemaTooNew(version));
            }
            let checksum: String = r.get(2);
            if let Some(m) = MIGRATIONS.iter().find(|m| m.version == version) {
                let file = sha256_hex(m.sql);
                if file != checksum {
                    return Err(StoreError::MigrationChanged { version, name: r.get(1), applied: checksum, file });
                }
            }
            applied.push(version);
        }
        let mut done = Vec::new();
        for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
            tx.batch_execute(m.sql).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                &[&m.version, &m.name, &sha256_hex(m.sql)],
            )
            .await?;
            tracing::info!(version = m.version, name = m.name, "applied postgres migration");
            done.push(m.version);
        }
        tx.commit().await?;
        Ok(done)
    }

    pub fn projector(&self) -> Projector {
        Projector::new(self.pool.clone())
    }

    pub fn reader(&self) -> PgReader {
        PgReader::new(self.pool.clone())
    }

    pub fn snapshots(&self, shard: impl Into<String>) -> PgSnapshotStore {
        PgSnapshotStore::new(self.pool.clone(), shard)
    }
}

pub(crate) fn to_sql(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} does not fit a BIGINT")))
}

pub(crate) fn from_sql(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative id or sequence {v}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
        }
    }

    #[test]
    fn config_rejects_odd_schema_names_and_bad_urls() {
        let c = PgConfig { schema: Some("x; DROP TABLE users".into()), ..PgConfig::default() };
        assert!(matches!(PgStore::connect(&c), Err(StoreError::Config(_))));
        assert!(PgStore::connect(&PgConfig::with_url("not a url")).is_err());
    }

    #[tokio::test]
    async fn pool_builds_while_the_server_is_down() {
        let s = PgStore::connect(&PgConfig {
            connect_timeout_ms: 200,
            acquire_timeout_ms: 200,
            ..PgConfig::with_url("postgres://u:p@127.0.0.1:1/db")
        })
        .unwrap();
        let err = s.ping().await.unwrap_err();
        assert_eq!(err.outcome(), qt_resilience::Outcome::Transient);
    }
}
