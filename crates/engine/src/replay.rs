//! Recovery: latest snapshot plus replay of the journal after it.
//!
//! Contract: [`recover`] returns the exchange in the state it had after the last journaled
//! command, whatever snapshots exist, and hands the events of the replayed commands to the
//! sink (which skips those it has already seen). Replaying is idempotent because
//! [`Exchange::apply`] ignores commands at or below its last sequence number.

use crate::event::EventEnvelope;
use crate::exchange::{EngineConfig, Exchange};
use crate::ports::{EventSink, Journal, SnapshotStore};
use crate::snapshot::SnapshotError;

/// Commands read from the journal per round trip during replay.
pub const REPLAY_CHUNK: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("reading the journal: {0}")]
    Journal(Box<dyn std::error::Error + Send + Sync>),
    #[error("reading the latest snapshot: {0}")]
    Snapshots(Box<dyn std::error::Error + Send + Sync>),
    #[error("publishing replayed events: {0}")]
    Sink(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// What recovery did, for logs and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub snapshot_seq: Option<u64>,
    pub replayed_commands: u64,
    pub last_cmd_seq: u64,
}

pub fn recover<J: Journal, S: SnapshotStore, E: EventSink>(
    config: EngineConfig,
    journal: &J,
    snapshots: &S,
    sink: &mut E,
) -> Result<(Exchange, RecoveryReport), RecoverError> {
    let latest = snapshots.latest().map_err(|e| RecoverError::Snapshots(Box::new(e)))?;
    let mut report = RecoveryReport { snapshot_seq: latest.as_ref().map(|s| s.last_cmd_seq), ..Default::default() };
    let mut exchange = match latest {
        Some(snap) => Exchange::restore(snap)?,
        None => Exchange::new(config),
    };
    let mut events: Vec<EventEnvelope> = Vec::new();
    loop {
        let from = exchange.last_cmd_seq() + 1;
        let batch = journal.read_from(from, REPLAY_CHUNK).map_err(|e| RecoverError::Journal(Box::new(e)))?;
        if batch.is_empty() {
            break;
        }
        for cmd in &batch {
            exchange.apply(cmd, &mut events);
            report.replayed_commands += 1;
        }
        sink.publish(&events).map_err(|e| RecoverError::Sink(Box::new(e)))?;
        events.clear();
    }
    report.last_cmd_seq = exchange.last_cmd_seq();
    Ok((exchange, report))
}
