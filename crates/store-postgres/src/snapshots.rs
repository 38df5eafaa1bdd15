//! Engine snapshots per shard in PostgreSQL (the engine's `SnapshotStore` port).
//!
//! Contract: a save is one transaction that inserts `(shard, seq, hash, body)` and prunes
//! the shard to its newest [`PgSnapshotStore::keep`] snapshots, so `latest` sees either the
//! previous or the new one, never a torn one. `latest` checks the SHA-256 of the body
//! against the stored hash and refuses a mismatch (a corrupt snapshot must not seed a
//! shard). Saving the same `(shard, seq)` again replaces it (a retried save).
//!
//! A snapshot may carry its shard's ingress watermarks ([`Ingress`]: per `orders` stream,
//! the highest request sequence number its state contains), saved in the same row
//! ([`PgSnapshotStore::save_with_ingress`], read by [`PgSnapshotStore::latest_with_ingress`]).
//! A snapshot saved without them (the engine's port, an older version) reads back as
//! `None`, never as empty watermarks: the caller must know it does not have them.

use crate::{from_sql, to_sql, StoreError};
use deadpool_postgres::Pool;
use qt_engine::ports::SnapshotStore;
use qt_engine::Snapshot;
use std::collections::BTreeMap;

/// Ingress watermarks: per ingress stream (`source@topic/partition` of `orders`), the
/// highest request sequence number whose command a snapshot's state contains.
pub type Ingress = BTreeMap<String, u64>;

/// Snapshots kept per shard by default: the newest and two fallbacks.
pub const SNAPSHOTS_KEPT: i64 = 3;

#[derive(Clone, Debug)]
pub struct PgSnapshotStore {
    pool: Pool,
    shard: String,
    keep: i64,
}

impl PgSnapshotStore {
    pub(crate) fn new(pool: Pool, shard: impl Into<String>) -> Self {
        PgSnapshotStore { pool, shard: shard.into(), keep: SNAPSHOTS_KEPT }
    }

    /// How many snapshots of the shard survive a save (at least 1).
    pub fn keep(mut self, n: i64) -> Self {
        self.keep = n.max(1);
        self
    }

    pub fn shard(&self) -> &str {
        &self.shard
    }

    /// Saves a snapshot without ingress watermarks.
    pub async fn save_async(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        self.save_with_ingress(snapshot, None).await
    }

    /// Saves a snapshot with the ingress watermarks of its state (in the same row, so a
    /// reader never gets one without the other).
    pub async fn save_with_ingress(&self, snapshot: &Snapshot, ingress: Option<&Ingress>) -> Result<(), StoreError> {
        let body = snapshot.to_bytes()?;
        let hash = snapshot.hash()?;
        let seq = to_sql(snapshot.last_cmd_seq)?;
        let ingress = ingress.map(serde_json::to_string).transpose()?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO snapshots (shard, seq, hash, body, ingress) VALUES ($1, $2, $3, $4, CAST($5::TEXT AS JSONB)) \
             ON CONFLICT (shard, seq) DO UPDATE SET hash = excluded.hash, body = excluded.body, \
             ingress = excluded.ingress, saved_at = now()",
            &[&self.shard, &seq, &hash, &body, &ingress],
        )
        .await?;
        tx.execute(
            "DELETE FROM snapshots WHERE shard = $1 AND seq NOT IN \
             (SELECT seq FROM snapshots WHERE shard = $1 ORDER BY seq DESC LIMIT $2)",
            &[&self.shard, &self.keep],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn latest_async(&self) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.latest_with_ingress().await?.map(|(snap, _)| snap))
    }

    /// The newest snapshot and its ingress watermarks (`None`: saved without them).
    pub async fn latest_with_ingress(&self) -> Result<Option<(Snapshot, Option<Ingress>)>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT seq, hash, body, ingress::TEXT FROM snapshots WHERE shard = $1 ORDER BY seq DESC LIMIT 1",
                &[&self.shard],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let seq = from_sql(row.try_get(0)?)?;
        let hash: String = row.try_get(1)?;
        let body: Vec<u8> = row.try_get(2)?;
        let ingress: Option<String> = row.try_get(3)?;
        let ingress: Option<Ingress> = ingress
            .map(|json| {
                serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("snapshot {}/{seq}: ingress watermarks: {e}", self.shard)))
            })
            .transpose()?;
        let snap = Snapshot::from_bytes(&body)?;
        let actual = snap.hash()?;
        if actual != hash || snap.last_cmd_seq != seq {
            return Err(StoreError::Corrupt(format!(
                "snapshot {}/{seq}: stored hash {hash}, body hashes to {actual} (seq {})",
                self.shard, snap.last_cmd_seq
            )));
        }
        Ok(Some((snap, ingress)))
    }

    /// Sequence numbers of the shard's snapshots, newest first.
    pub async fn list(&self) -> Result<Vec<u64>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT seq FROM snapshots WHERE shard = $1 ORDER BY seq DESC", &[&self.shard]).await?;
        rows.iter().map(|r| from_sql(r.try_get(0)?)).collect()
    }
}

/// The engine's synchronous [`SnapshotStore`] over a [`PgSnapshotStore`] (`block_on` on
/// the given runtime; call it from the engine thread, not from a runtime worker).
#[derive(Debug, Clone)]
pub struct SyncSnapshotStore {
    inner: PgSnapshotStore,
    rt: tokio::runtime::Handle,
}

impl SyncSnapshotStore {
    pub fn new(inner: PgSnapshotStore, rt: tokio::runtime::Handle) -> Self {
        SyncSnapshotStore { inner, rt }
    }
}

impl SnapshotStore for SyncSnapshotStore {
    type Error = StoreError;

    fn save(&mut self, snapshot: &Snapshot) -> Result<(), StoreError> {
        self.rt.block_on(self.inner.save_async(snapshot))
    }

    fn latest(&self) -> Result<Option<Snapshot>, StoreError> {
        self.rt.block_on(self.inner.latest_async())
    }
}
