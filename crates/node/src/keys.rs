//! The idempotency keys of the places a matching shard sequenced recently, so that the
//! shard itself applies one place per `(user, Idempotency-Key)`.
//!
//! Contract:
//! - The intake processes normally keep a key from being published twice (the read
//!   model's answer, then a Redis claim). That is not enough on its own: with Redis down
//!   the claim is skipped, and a publish that timed out may still have been written. So
//!   the shard refuses a place whose key its user already used and answers it with an
//!   empty outcome; the intake then replays the first request's answer from the read model
//!   (it is projected before any reply of a later batch goes out).
//! - Remembered: the keys of the places sequenced since the start plus those of the
//!   journal replayed at recovery, at most [`RecentKeys::CAPACITY`] (the oldest are
//!   forgotten first). Older keys are the read model's business: their answers are
//!   projected, and an intake checks them before publishing.

use qt_engine::{Command, CommandMeta};
use std::collections::{HashSet, VecDeque};

#[derive(Debug, Default)]
pub struct RecentKeys {
    set: HashSet<(u64, String)>,
    order: VecDeque<(u64, String)>,
}

impl RecentKeys {
    /// Keys remembered at most (about 100 bytes each).
    pub const CAPACITY: usize = 250_000;

    /// The `(user, key)` of a place that carries an idempotency key.
    pub fn of(cmd: &Command, meta: Option<&CommandMeta>) -> Option<(u64, String)> {
        match (cmd, meta.and_then(|m| m.idempotency_key.as_ref())) {
            (Command::Place(o), Some(k)) => Some((o.user.0, k.clone())),
            _ => None,
        }
    }

    /// Remembers `key`; false when it was already there (a second place with it).
    pub fn insert(&mut self, key: (u64, String)) -> bool {
        if self.set.contains(&key) {
            return false;
        }
        if self.order.len() >= Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.order.push_back(key.clone());
        self.set.insert(key);
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_taken_once_per_user() {
        let mut k = RecentKeys::default();
        assert!(k.insert((1, "a".into())));
        assert!(!k.insert((1, "a".into())));
        assert!(k.insert((2, "a".into())), "another user's key is another key");
        assert_eq!(k.len(), 2);
    }

    #[test]
    fn the_oldest_keys_are_forgotten_first() {
        let mut k = RecentKeys::default();
        for i in 0..RecentKeys::CAPACITY as u64 + 1 {
            assert!(k.insert((i, String::new())));
        }
        assert_eq!(k.len(), RecentKeys::CAPACITY);
        assert!(k.insert((0, String::new())), "the first key was forgotten");
        assert!(!k.insert((RecentKeys::CAPACITY as u64, String::new())), "the last one is still there");
    }
}
