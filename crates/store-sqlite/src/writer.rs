//! A writer connection, owned by one handle or shared by the engine thread's journal,
//! snapshot store and projector ([`crate::Store::engine_writers`]).
//!
//! Contract:
//! - [`Writer::lock_for`] hands out the connection with `synchronous` set to what the
//!   caller's commit needs (FULL for the journal and snapshots, NORMAL for the projector);
//!   the pragma is only issued when it changes. Call it before `BEGIN`, never inside a
//!   transaction.
//! - [`Writer::lock`] is for reads and for writes whose durability does not matter.
//!
//! Why share one connection: SQLite throws away a connection's whole page cache when
//! another connection has committed to the file since its last transaction (the WAL index
//! changed). With the journal and the projector on two connections, every batch's
//! journal commit emptied the projector's cache and the projection emptied the
//! journal's, so the engine thread re-read its working set with `pread` on every batch
//! (seen in profiles as `pcache1TruncateUnsafe` and `filemap_get_read_batch`). One
//! connection keeps its cache warm across both; they run on the same thread anyway.

use crate::error::StoreError;
use rusqlite::Connection;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// How durably a writer connection commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// fsync the WAL on every commit: a commit that returned survives power loss.
    Full,
    /// fsync only at checkpoints: a commit survives a crash of the process, and the
    /// journal's next FULL commit makes it durable too.
    Normal,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// A writer connection and the `synchronous` setting it has now.
#[derive(Debug)]
pub(crate) struct WriterConn {
    conn: Connection,
    durability: Durability,
}

impl Deref for WriterConn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl DerefMut for WriterConn {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// Cloning shares the connection.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    inner: Arc<Mutex<WriterConn>>,
    /// Raised by the store's checkpointer when the WAL outgrew its bound.
    wal_oversized: Arc<AtomicBool>,
}

impl Writer {
    /// Takes `conn` as it is set up (`open_writer` sets `synchronous` to `durability`).
    pub(crate) fn new(conn: Connection, durability: Durability) -> Writer {
        Writer { inner: Arc::new(Mutex::new(WriterConn { conn, durability })), wal_oversized: Arc::default() }
    }

    /// Catches the checkpoint up before a transaction when `flag` is raised (the store's
    /// checkpointer raises it; see `Checkpointer` in lib.rs for why the writer does it).
    pub(crate) fn with_wal_bound(mut self, flag: Arc<AtomicBool>) -> Writer {
        self.wal_oversized = flag;
        self
    }

    /// The connection, as it is. Only the engine thread uses a shared writer, so the lock
    /// is never contended.
    pub(crate) fn lock(&self) -> MutexGuard<'_, WriterConn> {
        // A panic while holding it leaves nothing half-done that SQLite does not roll back.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The connection with `synchronous` set to `durability`, after catching the WAL
    /// checkpoint up if the checkpointer asked for it (no transaction is open here).
    pub(crate) fn lock_for(&self, durability: Durability) -> Result<MutexGuard<'_, WriterConn>, StoreError> {
        let mut guard = self.lock();
        if self.wal_oversized.swap(false, Ordering::AcqRel) {
            // Busy (the background pass holds the checkpoint lock): its next tick raises
            // the flag again. Anything else is left to that thread's retries too.
            let _ = crate::wal_checkpoint_passive(&guard.conn);
        }
        if guard.durability != durability {
            guard.conn.pragma_update(None, "synchronous", durability.pragma())?;
            guard.durability = durability;
        }
        Ok(guard)
    }

    /// Sets how durably this connection commits; `open_writer` uses it once.
    pub(crate) fn set_up(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
        conn.pragma_update(None, "synchronous", durability.pragma())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(w: &Writer) -> i64 {
        w.lock().query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn each_commit_gets_the_durability_it_asks_for() {
        let conn = Connection::open_in_memory().unwrap();
        Writer::set_up(&conn, Durability::Full).unwrap();
        let journal = Writer::new(conn, Durability::Full);
        let projector = journal.clone();
        assert_eq!(synchronous(&journal), 2, "FULL");
        drop(projector.lock_for(Durability::Normal).unwrap());
        assert_eq!(synchronous(&journal), 1, "NORMAL, on the shared connection");
        drop(journal.lock_for(Durability::Full).unwrap());
        assert_eq!(synchronous(&projector), 2, "FULL again");
    }
}
