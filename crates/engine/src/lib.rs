//! QuantTrader engine: the command → event pipeline over the domain core.
//!
//! Contract:
//! - [`Exchange::apply`] turns one [`CommandEnvelope`] into [`EventEnvelope`]s; it is
//!   deterministic (no clock, no randomness, no I/O), so a command log replayed from a
//!   [`Snapshot`] reproduces the same state, byte for byte ([`Exchange::state_hash`]).
//! - The [`ports`] are what adapters implement (journal, snapshot store, event sink); the
//!   engine never knows whether it runs all-in-one or distributed.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod checks;
pub mod command;
pub mod event;
pub mod exchange;
pub mod ports;
pub mod replay;
pub mod shard;
pub mod snapshot;

pub use command::{Command, CommandEnvelope, CommandMeta};
pub use event::{Event, EventEnvelope};
pub use exchange::{EngineConfig, Exchange, LiveOrder, SymbolState, UserState};
pub use snapshot::{Snapshot, SnapshotError};
