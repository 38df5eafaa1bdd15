//! Schema and migrations of `quanttrader.db`.
//!
//! Contract:
//! - [`MIGRATIONS`] is append-only: migration `i` (0-based) brings the file from
//!   `PRAGMA user_version = i` to `i + 1`. Released migrations are never edited; a change of
//!   schema is a new entry.
//! - [`migrate`] applies the missing ones, each in its own `BEGIN IMMEDIATE` transaction
//!   together with the version bump, so a crash leaves the file at a whole version. A
//!   file whose version is above [`MIGRATIONS`]`.len()` is refused, never downgraded.
//! - Journal and snapshots are the source of truth; every other table is the read model,
//!   rebuilt by replaying the journal ([`READ_MODEL_TABLES`] are what a reset clears).
//!
//! Column conventions: ids, sequence numbers, ticks, lots and minor units are INTEGER
//! (i64); values that may exceed i64 (position cost and realised PnL, i128) are TEXT in
//! decimal; every `*_ts` and `open_time` is nanoseconds since the Unix epoch (UTC); enums
//! are TEXT (status, side, type, tif and stp as the API codes, reasons as variant names).

use crate::error::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE journal (
    seq  INTEGER PRIMARY KEY,
    ts   INTEGER NOT NULL,
    body BLOB    NOT NULL          -- JSON of the CommandEnvelope
);
CREATE TABLE snapshots (
    seq      INTEGER PRIMARY KEY,  -- last_cmd_seq of the snapshot
    saved_ts INTEGER NOT NULL,
    hash     TEXT    NOT NULL,     -- SHA-256 of body, checked on load
    body     BLOB    NOT NULL      -- Snapshot::to_bytes
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE assets (
    asset_id INTEGER PRIMARY KEY,
    code     TEXT    NOT NULL UNIQUE,
    scale    INTEGER NOT NULL
);
CREATE TABLE symbols (
    symbol_id INTEGER PRIMARY KEY,
    name      TEXT NOT NULL UNIQUE,
    spec      TEXT NOT NULL         -- JSON of the SymbolSpec
);
CREATE TABLE users (
    user_id      INTEGER PRIMARY KEY,
    name         TEXT UNIQUE,
    api_key_hash TEXT UNIQUE,
    created_ts   INTEGER NOT NULL,
    cmd_seq      INTEGER NOT NULL
);
CREATE TABLE orders (
    order_id        INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL,
    symbol_id       INTEGER NOT NULL,
    client_order_id TEXT,
    side            TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    tif             TEXT    NOT NULL,
    price           INTEGER,
    stop_price      INTEGER,
    qty             INTEGER NOT NULL,
    filled          INTEGER NOT NULL DEFAULT 0,
    quote_filled    INTEGER NOT NULL DEFAULT 0,   -- sum of price x qty of the fills, quote minor units
    fees            INTEGER NOT NULL DEFAULT 0,   -- quote minor units, negative for rebates
    status          TEXT    NOT NULL,
    post_only       INTEGER NOT NULL,
    stp             TEXT    NOT NULL,
    triggered       INTEGER NOT NULL DEFAULT 0,
    reject_reason   TEXT,
    cancel_reason   TEXT,
    created_ts      INTEGER NOT NULL,
    updated_ts      INTEGER NOT NULL,
    cmd_seq         INTEGER NOT NULL
);
CREATE INDEX orders_user_created ON orders (user_id, created_ts DESC, order_id DESC);
CREATE INDEX orders_user_status  ON orders (user_id, status);
CREATE INDEX orders_symbol_status ON orders (symbol_id, status);
CREATE TABLE executions (
    execution_id INTEGER PRIMARY KEY,   -- trade_id * 2 + (1 for the taker): stable across rebuilds
    trade_id     INTEGER NOT NULL,
    order_id     INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    symbol_id    INTEGER NOT NULL,
    side         TEXT    NOT NULL,
    price        INTEGER NOT NULL,
    qty          INTEGER NOT NULL,
    quote_qty    INTEGER NOT NULL,
    fee          INTEGER NOT NULL,
    is_maker     INTEGER NOT NULL,
    ts           INTEGER NOT NULL,
    cmd_seq      INTEGER NOT NULL
);
CREATE INDEX executions_user_ts ON executions (user_id, ts DESC, execution_id DESC);
CREATE INDEX executions_order   ON executions (order_id);
CREATE TABLE trades (
    trade_id   INTEGER PRIMARY KEY,
    symbol_id  INTEGER NOT NULL,
    price      INTEGER NOT NULL,
    qty        INTEGER NOT NULL,
    taker_side TEXT    NOT NULL,
    ts         INTEGER NOT NULL,
    cmd_seq    INTEGER NOT NULL
);
CREATE INDEX trades_symbol_id ON trades (symbol_id, trade_id DESC);
CREATE INDEX trades_symbol_ts ON trades (symbol_id, ts);
CREATE TABLE candles (
    symbol_id    INTEGER NOT NULL,
    interval_s   INTEGER NOT NULL,
    open_time    INTEGER NOT NULL,
    open         INTEGER NOT NULL,
    high         INTEGER NOT NULL,
    low          INTEGER NOT NULL,
    close        INTEGER NOT NULL,
    volume       INTEGER NOT NULL,   -- lots
    quote_volume INTEGER NOT NULL,   -- quote minor units
    trades       INTEGER NOT NULL,
    PRIMARY KEY (symbol_id, interval_s, open_time)
) WITHOUT ROWID;
CREATE TABLE positions (
    user_id    INTEGER NOT NULL,
    symbol_id  INTEGER NOT NULL,
    qty        INTEGER NOT NULL,
    cost       TEXT    NOT NULL,
    realized   TEXT    NOT NULL,
    updated_ts INTEGER NOT NULL,
    PRIMARY KEY (user_id, symbol_id)
) WITHOUT ROWID;
CREATE TABLE balances (
    user_id    INTEGER NOT NULL,
    asset_id   INTEGER NOT NULL,
    available  INTEGER NOT NULL,
    reserved   INTEGER NOT NULL,
    updated_ts INTEGER NOT NULL,
    PRIMARY KEY (user_id, asset_id)
) WITHOUT ROWID;
CREATE TABLE idempotency (
    user_id      INTEGER NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT,
    order_id     INTEGER NOT NULL,
    http_status  INTEGER NOT NULL,
    body         TEXT    NOT NULL,   -- JSON of PlaceResponse
    created_ts   INTEGER NOT NULL,
    cmd_seq      INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_created ON idempotency (created_ts);
"#];

/// Tables of the read model, in the order [`crate::Projector::reset`] clears them.
pub const READ_MODEL_TABLES: &[&str] = &[
    "assets",
    "symbols",
    "users",
    "orders",
    "executions",
    "trades",
    "candles",
    "positions",
    "balances",
    "idempotency",
];

/// Key of the projection high-water mark in `meta`.
pub const PROJECTED_SEQ_KEY: &str = "projected_seq";

/// Brings the schema up to the newest version.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read inside the write transaction: another process migrating at the same time
        // is serialized by the write lock and we see its result.
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > supported {
            return Err(StoreError::SchemaTooNew { found: version, supported });
        }
        if version == supported {
            tx.commit()?;
            return Ok(());
        }
        let idx = usize::try_from(version).map_err(|_| StoreError::Corrupt(format!("user_version {version}")))?;
        tx.execute_batch(MIGRATIONS[idx])?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}
