//! One place per `(user, Idempotency-Key)`: the rule by which a matching shard answers a
//! keyed place with the stored answer instead of journaling it again.
//!
//! Contract:
//! - The guarantee lives in the shard, in ONE check made before each batch is journaled
//!   ([`KeyCheck`], fed by `matching`). A keyed place is not journaled when its key
//!   - has an answer in the PostgreSQL read model younger than 24 h (the first place with
//!     it is projected; one query per batch), or
//!   - was taken by a place journaled but not projected yet: earlier in the same batch, or
//!     in the batch whose effects are under way (the shard is pipelined two batches deep;
//!     every batch before that one is projected before this check runs).
//!
//!   Together these cover every journaled place, restarts included: recovery projects the
//!   replayed journal before the shard consumes, so the read model then holds every key
//!   the journal does. The read model is therefore the memory of used keys; the shard keeps
//!   in memory only the keys of the (at most two) batches not projected yet.
//! - The intake's Redis claims and its per-process in-flight set only spare a publish or a
//!   wait; they are not the guarantee. With Redis down they are skipped, and two intakes may
//!   publish the same key: this check alone then keeps it to one order.
//! - A place refused here is answered with the stored answer: the row the check found, or,
//!   when the first place was not projected at the check, the row read once this batch is
//!   projected. The intake compares the stored request hash with its own (409
//!   `IDEMPOTENCY_CONFLICT` for another body).
//! - The window is the API's: 24 h. A key whose answer is older is a fresh key: the check
//!   does not see the old answer, the place is journaled, and the projector replaces the
//!   expired row with the new answer (never a live one), so the reply and every later
//!   replay carry the new order.
//! - The matching role deletes the expired rows every `node.idempotency_purge_every_s`
//!   ([`purge_expired`]: statements of at most `node.idempotency_purge_batch` rows, logged,
//!   counted in `qt_idempotency_purged_total`). Correctness does not depend on it (readers
//!   ignore expired rows, the projector replaces them); it keeps the table bounded.

use qt_core::UserId;
use qt_engine::{Command, CommandMeta};
use qt_store_postgres::{IdempotencyRow, Projector};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// `(user, Idempotency-Key)`.
pub type Key = (u64, String);

/// The key of a place that carries an idempotency key.
pub fn of(cmd: &Command, meta: Option<&CommandMeta>) -> Option<(UserId, String)> {
    match (cmd, meta.and_then(|m| m.idempotency_key.as_ref())) {
        (Command::Place(o), Some(k)) => Some((o.user, k.clone())),
        _ => None,
    }
}

/// What the check says of one keyed place.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The key is free: journal the place (the key is now taken by this batch).
    Journal,
    /// The key is used: answer with the stored answer, given when the read model had it at
    /// the check, else to be read once the batch is projected.
    Replay(Option<IdempotencyRow>),
}

/// The check of one batch's keyed places (see the module contract).
#[derive(Debug)]
pub struct KeyCheck<'a> {
    /// Answers the read model had for the batch's keys.
    stored: HashMap<Key, IdempotencyRow>,
    /// Keys of the batch whose effects are under way (journaled, not projected).
    inflight: &'a HashSet<Key>,
    /// Keys taken by places of this batch.
    taken: HashSet<Key>,
}

impl<'a> KeyCheck<'a> {
    /// `stored`: the read model's answers (younger than 24 h) for the batch's keys;
    /// `inflight`: the keys of the batch journaled before this one and not projected yet.
    pub fn new(stored: Vec<IdempotencyRow>, inflight: &'a HashSet<Key>) -> Self {
        let stored = stored.into_iter().map(|r| ((r.user_id.0, r.key.clone()), r)).collect();
        KeyCheck { stored, inflight, taken: HashSet::new() }
    }

    /// The verdict on a place with `key`, in batch order.
    pub fn check(&mut self, key: Key) -> Verdict {
        if let Some(row) = self.stored.get(&key) {
            return Verdict::Replay(Some(row.clone()));
        }
        if self.inflight.contains(&key) || self.taken.contains(&key) {
            return Verdict::Replay(None);
        }
        self.taken.insert(key);
        Verdict::Journal
    }

    /// The keys this batch took: the in-flight keys of the next batch's check.
    pub fn into_taken(self) -> HashSet<Key> {
        self.taken
    }
}

/// Deletes the expired idempotency answers every `every` (the first time at once) until
/// `stop`; see the module contract.
pub async fn purge_expired(projector: Projector, every: Duration, batch: u64, mut stop: watch::Receiver<bool>) {
    let limit = i64::try_from(batch).unwrap_or(i64::MAX).max(1);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let timer = Instant::now();
        let mut purged = 0u64;
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
            match projector.purge_idempotency_expired(now, limit).await {
                Ok(n) => {
                    purged += n;
                    metrics::counter!("qt_idempotency_purged_total").increment(n);
                    if n < batch || *stop.borrow() {
                        break;
                    }
                    // Leave the projector's transactions room between statements.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    // Harmless to leave for the next round: readers ignore expired rows.
                    tracing::warn!(error = %e, purged, "purging expired idempotency answers failed; next round retries");
                    metrics::counter!("qt_idempotency_purge_failures_total").increment(1);
                    break;
                }
            }
        }
        metrics::histogram!("qt_idempotency_purge_seconds").record(timer.elapsed().as_secs_f64());
        tracing::info!(purged, millis = timer.elapsed().as_millis() as u64, "expired idempotency answers purged");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qt_core::OrderId;

    fn row(user: u64, key: &str) -> IdempotencyRow {
        IdempotencyRow {
            user_id: UserId(user),
            key: key.into(),
            request_hash: None,
            order_id: OrderId(7),
            http_status: 201,
            body: "{}".into(),
            created_ts: 0,
        }
    }

    #[test]
    fn a_key_is_taken_once_per_user_within_a_batch() {
        let none = HashSet::new();
        let mut c = KeyCheck::new(Vec::new(), &none);
        assert_eq!(c.check((1, "a".into())), Verdict::Journal);
        assert_eq!(c.check((1, "a".into())), Verdict::Replay(None));
        assert_eq!(c.check((2, "a".into())), Verdict::Journal, "another user's key is another key");
        assert_eq!(c.into_taken().len(), 2);
    }

    #[test]
    fn a_key_of_the_batch_in_flight_or_in_the_read_model_is_replayed() {
        let inflight: HashSet<Key> = [(1, "f".to_string())].into();
        let mut c = KeyCheck::new(vec![row(1, "p")], &inflight);
        assert_eq!(c.check((1, "f".into())), Verdict::Replay(None), "journaled, not projected yet");
        assert_eq!(c.check((1, "p".into())), Verdict::Replay(Some(row(1, "p"))), "projected: its stored answer");
        assert_eq!(c.check((2, "p".into())), Verdict::Journal);
        assert_eq!(c.into_taken(), [(2, "p".to_string())].into());
    }
}
