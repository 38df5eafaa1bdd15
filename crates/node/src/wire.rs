//! Records the roles exchange over Kafka besides the engine's own envelopes.
//!
//! Contract:
//! - `orders` carries [`OrderRequest`]s: an unsequenced command with the intake's
//!   correlation id and its process id (`reply_to`). The matching shard gives it a sequence
//!   number, time and ids, journals it, and answers on `replies` with a [`Reply`] keyed by
//!   `reply_to`, only after the command is journaled, applied and projected. A keyed
//!   place's reply carries the answer stored under its key, a cancel's or amend's the order
//!   after it, so the intake answers without reading the read model. The shard checks the
//!   idempotency keys of places before journaling them: a key with an answer in the read
//!   model is not journaled again, its reply carries that answer (`replayed`).
//! - JSON (serde names of the engine types), like every other record of the bus.

use qt_api::runtime::Outcome;
use qt_core::{OrderId, UserId};
use qt_engine::{Command, CommandMeta, EventEnvelope};
use qt_store_sqlite::{ExecutionRow, IdempotencyRow, OrderView, PlaceAnswer, PlaceResponse};
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
    /// A place with an idempotency key: its answer, as the projection stored it under the
    /// key (absent when the key already had an answer, or the projection had this
    /// command already: the intake then reads the stored answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed: Option<WirePlaced>,
    /// A cancel or amend: the order and its fills as the read model has them after the
    /// command's batch ([`qt_api::runtime::Outcome::order`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<(OrderView, Vec<ExecutionRow>)>,
    /// A keyed place whose key already had an answer in the read model: that answer
    /// (nothing was journaled or applied; [`qt_api::runtime::Outcome::replayed`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed: Option<IdempotencyRow>,
}

/// The stored answer to a keyed place ([`qt_api::runtime::Outcome::placed`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WirePlaced {
    pub http_status: u16,
    pub response: PlaceResponse,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reply {
    pub corr: String,
    pub outcome: WireOutcome,
}

impl From<WireOutcome> for Outcome {
    fn from(w: WireOutcome) -> Outcome {
        let placed = w.placed.map(|p| PlaceAnswer { seq: w.seq, http_status: p.http_status, response: p.response });
        Outcome {
            order_id: w.order_id,
            user_id: w.user_id,
            events: w.events,
            placed,
            order: w.order,
            replayed: w.replayed,
            ..Outcome::new(w.seq, w.ts)
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_without_the_answers_still_decodes_and_one_with_them_carries_them_over() {
        // A reply of a shard that predates `placed` and `order`.
        let old = r#"{"corr":"i-1","outcome":{"seq":7,"ts":1,"order_id":3,"user_id":null,"events":[]}}"#;
        let reply: Reply = serde_json::from_str(old).unwrap();
        let outcome: Outcome = reply.outcome.into();
        assert_eq!((outcome.seq, outcome.order_id), (7, Some(OrderId(3))));
        assert!(outcome.placed.is_none() && outcome.order.is_none());
        let encoded = serde_json::to_string(&Reply {
            corr: "i-2".into(),
            outcome: serde_json::from_str(r#"{"seq":8,"ts":1,"order_id":null,"user_id":null,"events":[]}"#).unwrap(),
        })
        .unwrap();
        assert!(!encoded.contains("placed") && !encoded.contains("\"order\""), "{encoded}");
    }
}
