//! Commands: the only inputs of the engine. Each carries its sequence number and
//! timestamp from outside (the sequencer), so applying a command log is deterministic.

use qt_core::{Amount, AssetId, NewOrder, OrderId, Price, Qty, RiskLimits, SymbolId, SymbolSpec, UserId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Lists an asset; it gets the next asset id.
    AddAsset {
        code: String,
        scale: u32,
    },
    /// Lists a symbol; `spec.id` must be the next symbol id.
    AddSymbol(SymbolSpec),
    /// Opens a user with its limits (the engine's defaults when `None`).
    CreateUser {
        user: UserId,
        limits: Option<RiskLimits>,
    },
    Deposit {
        user: UserId,
        asset: AssetId,
        amount: Amount,
    },
    Withdraw {
        user: UserId,
        asset: AssetId,
        amount: Amount,
    },
    Place(NewOrder),
    Cancel {
        user: UserId,
        order_id: OrderId,
    },
    /// New limit price and/or new total quantity.
    Amend {
        user: UserId,
        order_id: OrderId,
        price: Option<Price>,
        qty: Option<Qty>,
    },
    MassCancel {
        user: UserId,
        symbol: Option<SymbolId>,
    },
    SetLimits {
        user: UserId,
        limits: RiskLimits,
    },
    /// `user: None` is the global switch. Switching on cancels the affected open orders.
    SetKillSwitch {
        user: Option<UserId>,
        on: bool,
    },
}

/// A command as journaled: sequence number (strictly increasing), time in nanoseconds
/// since the Unix epoch (UTC), the command, and what the intake knew about its origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    pub seq: u64,
    pub ts: i64,
    pub cmd: Command,
    /// Never read by the engine; journaled so that projections (users, idempotency keys)
    /// rebuild from the journal alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Box<CommandMeta>>,
}

impl CommandEnvelope {
    pub fn new(seq: u64, ts: i64, cmd: Command) -> Self {
        CommandEnvelope { seq, ts, cmd, meta: None }
    }
}

/// Intake context of a command.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandMeta {
    /// `Idempotency-Key` of the request and the hash of its body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// For `CreateUser`: the user's name and the SHA-256 of its API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_hash: Option<String>,
    /// Distributed mode: where the sequencer took the command from (`stream:seq` of the
    /// intake topic), so that a restarted sequencer skips requests it journaled already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
}
