//! The one error type of the store.
//!
//! Contract: every fallible function of this crate returns [`StoreError`]; SQLite, pool,
//! encoding and I/O failures keep their source, and logic errors (a journal append out of
//! order, a schema newer than this build) have their own variants so callers can tell a
//! bug or a downgrade from a disk problem.

use std::path::PathBuf;

/// Anything the store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused a statement or the file is unreadable.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No pooled read connection could be had in time.
    #[error("read connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// Creating the data directory failed.
    #[error("data directory {path}: {source}")]
    Io {
        /// The directory that could not be created.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The background checkpointer thread could not be started.
    #[error("starting the WAL checkpointer thread: {0}")]
    Thread(std::io::Error),
    /// A journaled command, snapshot or idempotency body did not encode or decode.
    #[error("encoding: {0}")]
    Encoding(#[from] serde_json::Error),
    /// A snapshot decoded but is not usable (format version, inconsistency).
    #[error("snapshot: {0}")]
    Snapshot(#[from] qt_engine::SnapshotError),
    /// A journal append whose sequence numbers do not strictly follow the journal's.
    #[error("command sequence {got} does not follow {last}")]
    OutOfOrder {
        /// Last sequence number in the journal (or earlier in the same batch).
        last: u64,
        /// The offending sequence number.
        got: u64,
    },
    /// The database was written by a newer build: refusing to touch it.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// Truncating the journal would drop commands no snapshot covers.
    #[error("cannot truncate the journal before {requested}: the latest snapshot covers commands up to {snapshot}")]
    TruncateBeyondSnapshot {
        /// The first sequence number the caller wanted to keep.
        requested: u64,
        /// `last_cmd_seq` of the latest snapshot (0 when there is none).
        snapshot: u64,
    },
    /// An integer does not fit the column type (ids and sequence numbers above `i64::MAX`).
    #[error("value {0} does not fit a 64-bit signed integer column")]
    OutOfRange(u64),
    /// A row holds a value this build cannot interpret.
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
}

/// Converts an id or sequence number to the signed 64-bit integer SQLite stores.
#[inline]
pub(crate) fn to_sql(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::OutOfRange(v))
}

/// Reads a non-negative integer column as `u64`.
#[inline]
pub(crate) fn get_u64(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, v))
}
