//! Records the roles exchange over Kafka besides the engine's own envelopes.
//!
//! Contract:
//! - `orders` carries [`OrderRequest`]s: an unsequenced command with the intake's
//!   correlation id and its process id (`reply_to`). The matching shard gives it a sequence
//!   number, time and ids, journals it, and answers on `replies` with a [`Reply`] keyed by
//!   `reply_to`, only after the command is journaled, applied and projected.
//! - JSON (serde names of the engine types), like every other record of the bus.

use qt_api::runtime::Outcome;
use qt_core::{OrderId, UserId};
use qt_engine::{Command, CommandMeta, EventEnvelope};
use serde::{Deserialize, Serialize};

/// Header naming the intake process a reply goes to.
pub const REPLY_TO: &str = "qt-reply-to";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrderRequest {
    pub corr: String,
    pub reply_to: String,
    pub cmd: Command,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<CommandMeta>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireOutcome {
    pub seq: u64,
    pub ts: i64,
    pub order_id: Option<OrderId>,
    pub user_id: Option<UserId>,
    pub events: Vec<EventEnvelope>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reply {
    pub corr: String,
    pub outcome: WireOutcome,
}

impl From<WireOutcome> for Outcome {
    fn from(w: WireOutcome) -> Outcome {
        Outcome { order_id: w.order_id, user_id: w.user_id, events: w.events, ..Outcome::new(w.seq, w.ts) }
    }
}

/// The Kafka key of a command: its user, so one user's commands stay in order.
pub fn command_key(cmd: &Command) -> String {
    let user = match cmd {
        Command::CreateUser { user, .. }
        | Command::Deposit { user, .. }
        | Command::Withdraw { user, .. }
        | Command::Cancel { user, .. }
        | Command::Amend { user, .. }
        | Command::MassCancel { user, .. }
        | Command::SetLimits { user, .. } => Some(*user),
        Command::Place(o) => Some(o.user),
        Command::SetKillSwitch { user, .. } => *user,
        Command::AddAsset { .. } | Command::AddSymbol(_) => None,
    };
    // New users (id 0 until sequenced) and listings share one key: they are rare.
    user.filter(|u| u.0 != 0).map_or_else(|| "admin".to_string(), |u| u.0.to_string())
}
