//! Embedded SQLite storage of the all-in-one QuantTrader: the command journal, engine
//! snapshots and the read model the query endpoints serve.
//!
//! Contract:
//! - One file, `<dir>/quanttrader.db`, in WAL mode. [`Store::open`] creates it and applies
//!   the migrations; every other handle opens its own connection to it, except that
//!   [`Store::engine_writers`] gives the engine thread's journal, snapshots and projector
//!   one shared connection (its page cache survives their alternating commits). The
//!   HTTP readers never share a connection with a writer.
//! - [`SqliteJournal`] implements [`qt_engine::ports::Journal`]: one transaction per batch
//!   with `synchronous=FULL`, so `append` returning `Ok` means the whole batch survives a
//!   power cut (group commit: one WAL fsync per batch).
//! - [`SqliteSnapshots`] implements [`qt_engine::ports::SnapshotStore`]: a save is one
//!   transaction that also prunes to the newest [`SNAPSHOTS_KEPT`].
//! - [`Projector`] folds applied commands and their events into the read model, one
//!   transaction per batch, idempotently (commands at or below [`Projector::projected_seq`]
//!   are skipped). The read model is derived data: [`Projector::reset`] and a replay of the
//!   journal from seq 1 rebuild it to the same rows.
//! - [`Reader`] answers the queries from a pool of read-only connections; it is `Clone +
//!   Send + Sync` and never blocks the writers (WAL readers see the last committed batch).
//! - WAL checkpoints run on a background thread of the [`Store`], never inside a writer's
//!   commit; the thread ends when the store and every handle opened from it are dropped.
//!
//! Blocking: every call does synchronous file I/O (microseconds for reads, one fsync for
//! a journal append); async callers use `spawn_blocking` or a dedicated thread.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

mod error;
mod journal;
mod model;
mod projector;
mod reader;
pub mod schema;
mod snapshots;
mod writer;

pub use error::StoreError;
pub use journal::SqliteJournal;
pub use model::{
    reject_http_status, AssetRow, BalanceRow, CandleRow, ExecutionRow, IdempotencyRow, OrderView, PlaceResponse,
    PositionRow, Stats24h, SymbolRow, TradeRow, UserRow, CANDLE_INTERVALS,
};
pub use projector::{PlaceAnswer, Projected, Projector};
pub use reader::{
    ExecutionCursor, ExecutionPage, OrderCursor, OrderFilter, OrderPage, Reader, StatusFilter, IDEMPOTENCY_TTL_NS,
    MAX_PAGE,
};
pub use snapshots::{SqliteSnapshots, SNAPSHOTS_KEPT};

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use writer::{Durability, Writer};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "quanttrader.db";

/// How long a connection waits for another's write lock before giving up. Writers are
/// all on the engine thread, so a wait this long means something is badly wrong.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection; the projector uses about twenty and the
/// reader's dynamic list queries a few dozen variants.
const STATEMENT_CACHE: usize = 128;

/// Page size of a new database file. Why not SQLite's 4096: the read model is updated at
/// random (an order here, a balance there), and every page a batch dirties is written
/// whole to the WAL and checksummed; with 1 KiB pages the projector used about 20% less
/// CPU in `store_bench` (1.1 s against 1.4 s per 100k commands), with reads unchanged
/// within the noise. Only applies when the file is created.
const PAGE_SIZE: i64 = 1024;

/// Page cache of each writer connection, KiB: SQLite's default, 2 MiB. Not bigger: when a
/// B-tree page splits, SQLite parks a page under the lock-byte page's number (1,048,577
/// with 1 KiB pages) for a moment, and a commit that finds a cached key above the file's
/// end scans the whole page-cache hash table. With 16 MiB that scan was ~9% of the engine
/// thread's samples (`perf`); measured on a pre-filled 110 MB store, 2 MiB took ~11% less
/// engine CPU per command than 16 MiB (123 against 139 us, five rounds each).
const WRITER_CACHE_KIB: i64 = 2 * 1024;

/// Page cache of each pooled reader connection, KiB.
const READER_CACHE_KIB: i64 = 4 * 1024;

/// Read connections in the [`Reader`] pool.
const READ_POOL_SIZE: u32 = 8;

/// How often the background checkpointer copies the WAL into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// Size the WAL file is truncated back to after a checkpoint has emptied it; without a
/// limit it keeps its largest size forever.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Handle on `<dir>/quanttrader.db`: opens the connections of the other handles and
/// runs the WAL checkpointer while any clone of it is alive.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    checkpointer: Option<Checkpointer>,
    /// Set by the checkpointer when the WAL outgrew its bound; the next writer to begin a
    /// transaction catches the checkpoint up first (see `Checkpointer`).
    wal_oversized: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(c) = self.checkpointer.take() {
            c.stop();
        }
    }
}

impl Store {
    /// Creates the directory/file when missing, applies migrations (`PRAGMA
    /// user_version`), switches the file to WAL and checks that it is usable. Foreign keys
    /// stay off (the read model is derived; the engine has already validated every
    /// reference) and every connection gets a busy timeout.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_wal_bound(dir, WAL_SIZE_LIMIT)
    }

    /// [`Store::open`] with the WAL size (bytes) above which the writers catch the
    /// checkpoint up (see `Checkpointer`); tests use a small one.
    #[doc(hidden)]
    pub fn open_with_wal_bound(dir: &Path, wal_bound_bytes: i64) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        let path = dir.join(DB_FILE);
        let mut conn = open_writer(&path, Durability::Full)?;
        // Must precede the first write of a new file (switching to WAL is one); ignored for
        // an existing file, which keeps its page size.
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        // WAL is persistent in the file: set once here, every later connection inherits it.
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!("journal_mode is {mode}, WAL could not be enabled")));
        }
        schema::migrate(&mut conn)?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        let wal_oversized = Arc::new(AtomicBool::new(false));
        let checkpointer = Checkpointer::start(conn, wal_bound_bytes, wal_oversized.clone())?;
        Ok(Store { inner: Arc::new(Inner { path, checkpointer: Some(checkpointer), wal_oversized }) })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The command journal, on its own connection with `synchronous=FULL`.
    pub fn journal(&self) -> Result<SqliteJournal, StoreError> {
        Ok(SqliteJournal::new(self.writer(Durability::Full)?, self.clone()))
    }

    /// The snapshot store, on its own connection (`synchronous=FULL`: the journal may be
    /// truncated behind a snapshot, which then must be on disk).
    pub fn snapshots(&self) -> Result<SqliteSnapshots, StoreError> {
        Ok(SqliteSnapshots::new(self.writer(Durability::Full)?, self.clone()))
    }

    /// The read-model projector, on its own connection with `synchronous=NORMAL`: it is
    /// rebuilt from the journal after a crash, so it need not pay an fsync per batch.
    pub fn projector(&self) -> Result<Projector, StoreError> {
        Projector::new(self.writer(Durability::Normal)?, self.clone())
    }

    /// The journal, the snapshot store and the projector of the engine thread on ONE
    /// connection (each still commits with its own durability): SQLite empties a
    /// connection's page cache whenever another connection has written, so on separate
    /// connections every journal commit cost the projector its cache (see `writer`).
    pub fn engine_writers(&self) -> Result<(SqliteJournal, SqliteSnapshots, Projector), StoreError> {
        let writer = self.writer(Durability::Full)?;
        Ok((
            SqliteJournal::new(writer.clone(), self.clone()),
            SqliteSnapshots::new(writer.clone(), self.clone()),
            Projector::new(writer, self.clone())?,
        ))
    }

    fn writer(&self, durability: Durability) -> Result<Writer, StoreError> {
        let conn = open_writer(&self.inner.path, durability)?;
        Ok(Writer::new(conn, durability).with_wal_bound(self.inner.wal_oversized.clone()))
    }

    /// A pool of read-only connections for the query side.
    pub fn reader(&self) -> Result<Reader, StoreError> {
        Reader::new(self.clone(), READ_POOL_SIZE)
    }
}

fn open_writer(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", false)?;
    // Checkpoints run on the store's own thread (see `Checkpointer`), never inside a
    // commit of the engine thread, where they would add fsyncs to a batch's latency.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    Writer::set_up(&conn, durability)?;
    Ok(conn)
}

/// A thread that checkpoints the WAL in the background.
///
/// Why: with SQLite's automatic checkpoints the commit that crosses the threshold copies
/// the WAL into the database and fsyncs it, on the engine thread; measured on this
/// machine that is about 40% of the projector's wall time. A PASSIVE checkpoint here
/// never blocks writers or readers, and the WAL is reset by the next writer once it has
/// been copied completely.
///
/// Bounded: under sustained writes that reset never came (each pass here finishes behind
/// the frames the engine appended meanwhile) and the WAL grew without limit: 200 MB after
/// 40 s of saturation, every page lookup searching a longer WAL index. A RESTART
/// checkpoint from this thread does not help: it waits for the writer lock, which the
/// engine takes again after each commit, and starves. So once the WAL holds more than the
/// bound, this thread raises a flag and the writer, before its next transaction, runs a
/// PASSIVE checkpoint itself ([`writer::Writer::lock_for`]): with no commit running beside
/// it, it copies the few frames left, and the next commit starts the WAL from its
/// beginning. That pause (a copy of ~250 ms of frames and an fsync) happens once per bound
/// of WAL written.
#[derive(Debug)]
struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    fn start(conn: Connection, bound_bytes: i64, oversized: Arc<AtomicBool>) -> Result<Checkpointer, StoreError> {
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("qt-store-checkpoint".into())
            .spawn(move || {
                // The file keeps the page size it was created with; a frame adds 24 bytes.
                let page = conn.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0)).unwrap_or(PAGE_SIZE);
                // Ends when the Store is dropped (the sender goes away) or asks to stop.
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(CHECKPOINT_INTERVAL) {
                    // A failure (a busy lock, a full disk) is retried at the next tick; the
                    // WAL only grows meanwhile, nothing is lost.
                    if let Ok(frames) = wal_checkpoint_passive(&conn) {
                        if frames.saturating_mul(page + 24) > bound_bytes {
                            oversized.store(true, Ordering::Release);
                        }
                    }
                }
                let _ = wal_checkpoint_passive(&conn);
            })
            .map_err(StoreError::Thread)?;
        Ok(Checkpointer { stop, thread })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: the number of frames in the WAL it saw.
pub(crate) fn wal_checkpoint_passive(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))
}

/// Settings of a pooled read-only connection.
fn init_reader(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
    conn.pragma_update(None, "query_only", true)
}
