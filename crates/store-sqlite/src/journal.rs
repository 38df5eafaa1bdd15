//! The command journal: the durable log the engine state is recovered from.
//!
//! Contract:
//! - [`SqliteJournal::append`] writes a whole batch in one `BEGIN IMMEDIATE` transaction
//!   on a `synchronous=FULL` connection: when it returns `Ok` every command of the batch
//!   is on disk, when it returns `Err` none is. Sequence numbers must strictly increase,
//!   across batches and within one; a batch that breaks this is refused whole.
//! - Each row holds the full [`CommandEnvelope`] as JSON, `meta` included, so users and
//!   idempotency keys rebuild from the journal alone.
//! - [`SqliteJournal::truncate_before`] is compaction, never done implicitly; it refuses
//!   to drop commands the latest snapshot does not cover and always keeps the last command
//!   (so `last_seq` never goes back and sequence numbers are never reused).

use crate::error::{to_sql, StoreError};
use crate::writer::{Durability, Writer};
use qt_engine::ports::Journal;
use qt_engine::CommandEnvelope;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

/// The journal on its own connection, or the engine thread's shared one.
#[derive(Debug)]
pub struct SqliteJournal {
    conn: Writer,
    /// Keeps the store (and its checkpointer) alive as long as this handle.
    _store: crate::Store,
    /// Reused encoding buffer: appends allocate nothing per command once warm.
    buf: Vec<u8>,
}

impl SqliteJournal {
    pub(crate) fn new(conn: Writer, store: crate::Store) -> Self {
        SqliteJournal { conn, _store: store, buf: Vec::with_capacity(512) }
    }

    /// Deletes the commands with `seq < seq` (compaction after a snapshot). Never deletes
    /// the last command, and refuses with [`StoreError::TruncateBeyondSnapshot`] when the
    /// latest snapshot does not cover everything that would go (`seq - 1 > snapshot`).
    /// Returns how many commands were deleted.
    pub fn truncate_before(&mut self, seq: u64) -> Result<usize, StoreError> {
        let mut conn = self.conn.lock_for(Durability::Full)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let snapshot: u64 = tx
            .query_row("SELECT max(seq) FROM snapshots", [], |r| r.get::<_, Option<i64>>(0))?
            .map_or(0, |v| u64::try_from(v).unwrap_or(0));
        if seq.saturating_sub(1) > snapshot {
            return Err(StoreError::TruncateBeyondSnapshot { requested: seq, snapshot });
        }
        let last: i64 = tx.query_row("SELECT coalesce(max(seq), 0) FROM journal", [], |r| r.get(0))?;
        let bound = to_sql(seq)?.min(last);
        let deleted = tx.execute("DELETE FROM journal WHERE seq < ?1", [bound])?;
        tx.commit()?;
        Ok(deleted)
    }

    /// Sequence number of the first command still in the journal, `None` when empty.
    pub fn first_seq(&self) -> Result<Option<u64>, StoreError> {
        let v: Option<i64> = self.conn.lock().query_row("SELECT min(seq) FROM journal", [], |r| r.get(0))?;
        v.map(|v| u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("journal seq {v}")))).transpose()
    }
}

impl Journal for SqliteJournal {
    type Error = StoreError;

    fn append(&mut self, batch: &[CommandEnvelope]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.lock_for(Durability::Full)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut last: u64 = tx
            .prepare_cached("SELECT seq FROM journal ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| crate::error::get_u64(r, 0))
            .optional()?
            .unwrap_or(0);
        {
            let mut insert = tx.prepare_cached("INSERT INTO journal (seq, ts, body) VALUES (?1, ?2, ?3)")?;
            for cmd in batch {
                if cmd.seq <= last {
                    // Dropping the transaction rolls the partial batch back.
                    return Err(StoreError::OutOfOrder { last, got: cmd.seq });
                }
                last = cmd.seq;
                self.buf.clear();
                serde_json::to_writer(&mut self.buf, cmd)?;
                insert.execute(params![to_sql(cmd.seq)?, cmd.ts, &self.buf[..]])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn read_from(&self, from: u64, max: usize) -> Result<Vec<CommandEnvelope>, StoreError> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached("SELECT body FROM journal WHERE seq >= ?1 ORDER BY seq LIMIT ?2")?;
        let mut rows = stmt.query(params![to_sql(from)?, limit])?;
        let mut out = Vec::with_capacity(max.min(4096));
        while let Some(row) = rows.next()? {
            let body = row.get_ref(0)?.as_bytes().map_err(|e| StoreError::Corrupt(format!("body column: {e}")))?;
            out.push(serde_json::from_slice::<CommandEnvelope>(body)?);
        }
        Ok(out)
    }

    fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .lock()
            .prepare_cached("SELECT seq FROM journal ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| crate::error::get_u64(r, 0))
            .optional()?
            .unwrap_or(0))
    }
}
