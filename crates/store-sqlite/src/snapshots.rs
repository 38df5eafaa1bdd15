//! Engine snapshots: the starting point of recovery, so replay stays short.
//!
//! Contract:
//! - [`SqliteSnapshots::save`] stores the snapshot and prunes to the newest
//!   [`SNAPSHOTS_KEPT`] in one transaction with `synchronous=FULL`: `latest`
//!   sees the old set or the new one, never a torn row.
//! - Each row carries the SHA-256 of its body; [`SqliteSnapshots::latest`] checks it and
//!   falls back to the next older snapshot when a body does not match or decode (a torn
//!   page from a bad disk must not stop recovery while an older snapshot plus the journal
//!   can still rebuild the state), but only to one the journal still covers (no command
//!   after it truncated away). It fails when no usable snapshot qualifies.
//! - Saving a snapshot with the sequence number of an existing one replaces it.

use crate::error::{to_sql, StoreError};
use crate::writer::{Durability, Writer};
use qt_engine::ports::SnapshotStore;
use qt_engine::Snapshot;
use rusqlite::{params, TransactionBehavior};

/// Snapshots kept after each save.
pub const SNAPSHOTS_KEPT: usize = 3;

/// The snapshot store on its own connection, or the engine thread's shared one.
#[derive(Debug)]
pub struct SqliteSnapshots {
    conn: Writer,
    /// Keeps the store (and its checkpointer) alive as long as this handle.
    _store: crate::Store,
}

impl SqliteSnapshots {
    pub(crate) fn new(conn: Writer, store: crate::Store) -> Self {
        SqliteSnapshots { conn, _store: store }
    }

    /// Whether the journal still has every command after `seq` (or is empty).
    fn journal_covers_after(conn: &rusqlite::Connection, seq: i64) -> Result<bool, StoreError> {
        let first: Option<i64> = conn.query_row("SELECT min(seq) FROM journal", [], |r| r.get(0))?;
        Ok(first.is_none_or(|f| f <= seq + 1))
    }

    /// `last_cmd_seq` of the stored snapshots, newest first.
    pub fn list(&self) -> Result<Vec<u64>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached("SELECT seq FROM snapshots ORDER BY seq DESC")?;
        let rows = stmt.query_map([], |r| crate::error::get_u64(r, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl SnapshotStore for SqliteSnapshots {
    type Error = StoreError;

    fn save(&mut self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let body = snapshot.to_bytes()?;
        let hash = sha256_hex(&body);
        let saved_ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let mut conn = self.conn.lock_for(Durability::Full)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("INSERT OR REPLACE INTO snapshots (seq, saved_ts, hash, body) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![to_sql(snapshot.last_cmd_seq)?, saved_ts, hash, body])?;
        tx.prepare_cached(
            "DELETE FROM snapshots WHERE seq NOT IN (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT ?1)",
        )?
        .execute([SNAPSHOTS_KEPT as i64])?;
        tx.commit()?;
        Ok(())
    }

    fn latest(&self) -> Result<Option<Snapshot>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached("SELECT seq, hash, body FROM snapshots ORDER BY seq DESC")?;
        let mut rows = stmt.query([])?;
        let mut first_error: Option<StoreError> = None;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            if first_error.is_some() && !Self::journal_covers_after(&conn, seq)? {
                // An older snapshot is only a valid start if the journal still holds every
                // command after it; otherwise replay would silently skip commands.
                break;
            }
            let hash: String = row.get(1)?;
            let body = row.get_ref(2)?.as_bytes().map_err(|e| StoreError::Corrupt(format!("body column: {e}")))?;
            let decoded = if sha256_hex(body) != hash {
                Err(StoreError::Corrupt(format!("snapshot {seq}: body does not match its hash")))
            } else {
                Snapshot::from_bytes(body).map_err(StoreError::from)
            };
            match decoded {
                Ok(s) => return Ok(Some(s)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }
}
