//! The exchange split in two halves that can run apart: risk shards own users (sharded by
//! user) and matching shards own books (sharded by symbol). See
//! `docs/design/symbol-sharding.md` for the pipeline this serves.
//!
//! Contract:
//! - A [`RiskShard`] takes client commands for its users, checks and reserves a new order's
//!   worst-case cost, and sends the order on as a [`MatchRequest`] to the matching shard of
//!   its symbol. Cancels, amends, mass cancels and kill switches go the same way.
//! - A [`MatchingShard`] keeps books and stop orders only. It answers with [`MatchReport`]s
//!   to the risk shard of each user involved (one per side of every fill, and one when an
//!   order ends, is refused, or an amend is confirmed or refused) and with [`MarketUpdate`]s
//!   (last trade, best bid and ask) to every risk shard.
//! - A risk shard settles each side of a fill in its own ledger against a clearing column
//!   ([`qt_core::Ledger::settle_side`]).
//! - Each order's reservation travels with it as a budget: the matching shard knows the
//!   fills and the version in force, so it alone decides how much of the budget an order
//!   still needs. A risk shard adds to a budget (an amend that needs more reserves the
//!   difference first and sends it along) but never takes from it; the matching shard
//!   hands back what is no longer needed (on an amend, taken or refused) and a closed
//!   order's rest. Hence an order's reservation in its risk shard is always its budget plus
//!   what is in flight to it, and a fill never finds its budget short, however the
//!   messages interleave.
//! - Both halves are deterministic: each message carries the time of the input that caused
//!   it, and each shard applies its inputs with strictly increasing sequence numbers (a
//!   repeated one is ignored), as [`crate::Exchange`] does.
//! - Delivered in order per (sender, receiver) pair, the halves give every order the outcome
//!   [`crate::Exchange`] gives it when each command's messages are delivered before the next
//!   command ([`Cluster`], `tests/sharded.rs`). With any other interleaving the outcomes may
//!   differ the way a real pipeline's do (a check against a price that has moved on), but
//!   every shard conserves and no settlement fails.

mod cluster;
mod matching;
mod risk;

pub use cluster::{Cluster, Input, Journaled};
pub use matching::{MatchOrder, MatchOutput, MatchingShard};
pub use risk::{RiskOrder, RiskOutput, RiskShard};

use crate::command::{Command, CommandMeta};
use qt_core::{Amount, CancelReason, NewOrder, OrderId, Price, Qty, RejectReason, Side, SymbolId, TradeId, UserId};
use serde::{Deserialize, Serialize};

/// The risk shard that owns `user` among `shards`.
pub fn risk_shard_of(user: UserId, shards: u32) -> u32 {
    (user.0 % u64::from(shards.max(1))) as u32
}

/// The matching shard that owns `symbol` among `shards`: one shard owns a symbol, so
/// price-time priority is decided in one place.
pub fn matching_shard_of(symbol: SymbolId, shards: u32) -> u32 {
    u32::from(symbol.0) % shards.max(1)
}

/// Risk shard → matching shard of the order's symbol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchRequest {
    /// An order that passed the risk shard. `price` is the price it may trade up to: the
    /// limit, or for a market order the collar its funds were reserved at. `budget` is what
    /// was reserved for it (none when risk is off).
    Place { order: NewOrder, price: Option<Price>, budget: Option<Amount>, meta: Option<Box<CommandMeta>> },
    /// `meta` is the client command's when it was a cancel; none when a mass cancel or a
    /// kill switch sent it.
    Cancel { user: UserId, order_id: OrderId, symbol: SymbolId, reason: CancelReason, meta: Option<Box<CommandMeta>> },
    /// The whole new version of the order (the price stays `None` for orders without a
    /// limit price), so that what is in force after it does not depend on the fate of an
    /// earlier amend; `extra` is what the risk shard reserved on top for it.
    Amend {
        user: UserId,
        order_id: OrderId,
        symbol: SymbolId,
        price: Option<Price>,
        qty: Qty,
        extra: Amount,
        meta: Option<Box<CommandMeta>>,
    },
}

impl MatchRequest {
    pub fn symbol(&self) -> SymbolId {
        match self {
            MatchRequest::Place { order, .. } => order.symbol,
            MatchRequest::Cancel { symbol, .. } | MatchRequest::Amend { symbol, .. } => *symbol,
        }
    }

    /// The client command this request carries out, with its intake context: what the
    /// read model and the replies of a matching shard are made from.
    pub fn command(&self) -> (Command, Option<&CommandMeta>) {
        match self {
            MatchRequest::Place { order, meta, .. } => (Command::Place(order.clone()), meta.as_deref()),
            MatchRequest::Cancel { user, order_id, meta, .. } => {
                (Command::Cancel { user: *user, order_id: *order_id }, meta.as_deref())
            }
            MatchRequest::Amend { user, order_id, price, qty, meta, .. } => {
                (Command::Amend { user: *user, order_id: *order_id, price: *price, qty: Some(*qty) }, meta.as_deref())
            }
        }
    }
}

/// Matching shard → risk shard of `user()`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchReport {
    /// One side of one trade: settle it and book the position.
    Fill {
        user: UserId,
        order_id: OrderId,
        symbol: SymbolId,
        side: Side,
        trade_id: TradeId,
        price: Price,
        qty: Qty,
        /// This side's fee in quote units; negative is a rebate.
        fee: Amount,
        /// Time of the command that traded, for the daily PnL window.
        ts: i64,
    },
    /// The order ended (filled, cancelled, expired) or was refused by the matching shard:
    /// release what is left of its reservation.
    Closed { user: UserId, order_id: OrderId, refused: Option<RejectReason> },
    /// The amend took effect; the budget is now what the new version needs, and `released`
    /// (what it held beyond that) goes back to the user.
    Amended { user: UserId, order_id: OrderId, price: Option<Price>, qty: Qty, released: Amount },
    /// The amend was refused and its `extra` is `released`; `in_force` is the version that
    /// stays (none when the order has ended, which its `Closed` report said already).
    AmendRefused {
        user: UserId,
        order_id: OrderId,
        reason: RejectReason,
        in_force: Option<(Option<Price>, Qty)>,
        released: Amount,
    },
}

impl MatchReport {
    pub fn user(&self) -> UserId {
        match self {
            MatchReport::Fill { user, .. }
            | MatchReport::Closed { user, .. }
            | MatchReport::Amended { user, .. }
            | MatchReport::AmendRefused { user, .. } => *user,
        }
    }
}

/// Matching shard → every risk shard: the prices risk checks value orders and positions
/// with (band, collar, post-only, daily loss, concentration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketUpdate {
    pub symbol: SymbolId,
    pub last: Option<Price>,
    pub best_bid: Option<Price>,
    pub best_ask: Option<Price>,
}

impl MarketUpdate {
    /// A symbol with no trade and an empty book.
    pub fn empty(symbol: SymbolId) -> Self {
        MarketUpdate { symbol, last: None, best_bid: None, best_ask: None }
    }
}

/// What a risk shard consumes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RiskInput {
    /// A client command with its intake context (passed on with the orders it sends).
    Command {
        cmd: Command,
        meta: Option<Box<CommandMeta>>,
    },
    Report(MatchReport),
    Market(MarketUpdate),
}

/// What a matching shard consumes: reference data (assets, symbols) and requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchInput {
    Command(Command),
    Request(MatchRequest),
}

/// An input as a shard journals it: its sequence number in the shard and the time of the
/// client command it descends from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequenced<T> {
    pub seq: u64,
    pub ts: i64,
    pub input: T,
}
