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
//! - The window is the API's: 24 h. A key whose answer is older may be used again (the
//!   projector keeps the first answer stored under a key until it is purged).

use qt_core::UserId;
use qt_engine::{Command, CommandMeta};
use qt_store_postgres::IdempotencyRow;
use std::collections::{HashMap, HashSet};

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
