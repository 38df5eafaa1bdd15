//! Ports: the traits adapters implement so the engine can run all-in-one (SQLite journal)
//! or distributed (Kafka, PostgreSQL) without knowing which.
//!
//! Contract:
//! - [`Journal::append`] returns only once the whole batch is durable (group commit); a
//!   command is applied and acknowledged only after that. Sequence numbers in a journal
//!   are strictly increasing; `read_from(seq)` returns commands with `seq >= from`.
//! - [`SnapshotStore::save`] is atomic: `latest` returns either the previous or the new
//!   snapshot, never a torn one.
//! - [`EventSink::publish`] receives events in sequence order, possibly again after a
//!   restart (at-least-once); sinks skip sequence numbers they have already seen.
//!
//! The in-memory implementations are for tests and benchmarks: they lose everything on
//! exit.

use crate::command::CommandEnvelope;
use crate::event::EventEnvelope;
use crate::snapshot::Snapshot;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::convert::Infallible;

/// A record of a durable log, ordered by its sequence number: a command of the whole
/// exchange, or an input of a shard of the split engine ([`crate::shard::Sequenced`]).
pub trait JournalRecord: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    fn seq(&self) -> u64;
}

impl JournalRecord for CommandEnvelope {
    fn seq(&self) -> u64 {
        self.seq
    }
}

impl<T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static> JournalRecord for crate::shard::Sequenced<T> {
    fn seq(&self) -> u64 {
        self.seq
    }
}

pub trait Journal {
    type Error: std::error::Error + Send + Sync + 'static;
    /// Appends a batch durably.
    fn append(&mut self, batch: &[CommandEnvelope]) -> Result<(), Self::Error>;
    /// At most `max` commands with `seq >= from`, in order.
    fn read_from(&self, from: u64, max: usize) -> Result<Vec<CommandEnvelope>, Self::Error>;
    /// Sequence number of the last command appended, 0 when empty.
    fn last_seq(&self) -> Result<u64, Self::Error>;
}

pub trait SnapshotStore {
    type Error: std::error::Error + Send + Sync + 'static;
    fn save(&mut self, snapshot: &Snapshot) -> Result<(), Self::Error>;
    fn latest(&self) -> Result<Option<Snapshot>, Self::Error>;
}

pub trait EventSink {
    type Error: std::error::Error + Send + Sync + 'static;
    fn publish(&mut self, events: &[EventEnvelope]) -> Result<(), Self::Error>;
}

#[derive(Debug, thiserror::Error)]
pub enum MemJournalError {
    #[error("command sequence {got} does not follow {last}")]
    OutOfOrder { last: u64, got: u64 },
}

/// A journal in memory.
#[derive(Debug, Default, Clone)]
pub struct MemJournal {
    commands: Vec<CommandEnvelope>,
}

impl MemJournal {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.commands.len()
    }
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

impl Journal for MemJournal {
    type Error = MemJournalError;

    fn append(&mut self, batch: &[CommandEnvelope]) -> Result<(), Self::Error> {
        let mut last = self.commands.last().map_or(0, |c| c.seq);
        for c in batch {
            if c.seq <= last {
                return Err(MemJournalError::OutOfOrder { last, got: c.seq });
            }
            last = c.seq;
        }
        self.commands.extend_from_slice(batch);
        Ok(())
    }

    fn read_from(&self, from: u64, max: usize) -> Result<Vec<CommandEnvelope>, Self::Error> {
        let start = self.commands.partition_point(|c| c.seq < from);
        Ok(self.commands[start..].iter().take(max).cloned().collect())
    }

    fn last_seq(&self) -> Result<u64, Self::Error> {
        Ok(self.commands.last().map_or(0, |c| c.seq))
    }
}

/// Keeps every snapshot saved; `latest` is the one with the highest command sequence.
#[derive(Debug, Default, Clone)]
pub struct MemSnapshotStore {
    snapshots: Vec<Snapshot>,
}

impl MemSnapshotStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl SnapshotStore for MemSnapshotStore {
    type Error = Infallible;

    fn save(&mut self, snapshot: &Snapshot) -> Result<(), Self::Error> {
        self.snapshots.push(snapshot.clone());
        Ok(())
    }

    fn latest(&self) -> Result<Option<Snapshot>, Self::Error> {
        Ok(self.snapshots.iter().max_by_key(|s| s.last_cmd_seq).cloned())
    }
}

/// Collects events, skipping any it has seen (by sequence number).
#[derive(Debug, Default, Clone)]
pub struct MemEventSink {
    pub events: Vec<EventEnvelope>,
}

impl EventSink for MemEventSink {
    type Error = Infallible;

    fn publish(&mut self, events: &[EventEnvelope]) -> Result<(), Self::Error> {
        let seen = self.events.last().map_or(0, |e| e.seq);
        self.events.extend(events.iter().filter(|e| e.seq > seen).cloned());
        Ok(())
    }
}
