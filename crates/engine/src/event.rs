//! Events: the only outputs of the engine. Every event carries a global sequence number,
//! the sequence number of the command that caused it and that command's time, so that
//! consumers can be idempotent (skip what they have seen) and order-preserving.

use qt_core::{
    Amount, AssetId, BookDelta, CancelReason, NewOrder, OrderId, OrderStatus, Price, Qty, RejectReason, Side, SymbolId,
    TradeId, UserId,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    AssetAdded {
        asset: AssetId,
        code: String,
        scale: u32,
    },
    SymbolAdded {
        symbol: SymbolId,
    },
    UserCreated {
        user: UserId,
    },
    BalanceChanged {
        user: UserId,
        asset: AssetId,
        available: Amount,
        reserved: Amount,
    },
    PositionChanged {
        user: UserId,
        symbol: SymbolId,
        qty: i64,
        cost: i128,
        realized: i128,
    },
    /// The order passed validation and risk: status ACCEPTED.
    OrderAccepted {
        order: NewOrder,
    },
    /// The order was refused before it could trade: status REJECTED.
    OrderRejected {
        order_id: OrderId,
        user: UserId,
        reason: RejectReason,
    },
    /// A stop order's trigger price was reached; it now trades as market or limit.
    OrderTriggered {
        order_id: OrderId,
        user: UserId,
    },
    Trade {
        trade_id: TradeId,
        symbol: SymbolId,
        price: Price,
        qty: Qty,
        taker_side: Side,
        maker_order: OrderId,
        maker_user: UserId,
        taker_order: OrderId,
        taker_user: UserId,
        /// Fees in quote minor units; negative is a rebate.
        maker_fee: Amount,
        taker_fee: Amount,
    },
    /// Cumulative filled quantity after a fill; status PARTIALLY_FILLED or FILLED.
    OrderFilled {
        order_id: OrderId,
        user: UserId,
        filled: Qty,
        status: OrderStatus,
    },
    /// Every fill of a filled order is in the ledger: status SETTLED.
    OrderSettled {
        order_id: OrderId,
        user: UserId,
    },
    OrderCancelled {
        order_id: OrderId,
        user: UserId,
        reason: CancelReason,
        remaining: Qty,
    },
    /// An IOC/FOK/market remainder that could not trade: status EXPIRED.
    OrderExpired {
        order_id: OrderId,
        user: UserId,
        remaining: Qty,
    },
    OrderAmended {
        order_id: OrderId,
        user: UserId,
        price: Option<Price>,
        qty: Qty,
        kept_priority: bool,
    },
    /// A command other than a place was refused (cancel of an unknown order, withdrawal
    /// beyond the balance, …).
    CommandRejected {
        user: Option<UserId>,
        order_id: Option<OrderId>,
        reason: RejectReason,
    },
    BookChanged {
        symbol: SymbolId,
        delta: BookDelta,
    },
    LimitsChanged {
        user: UserId,
    },
    KillSwitchChanged {
        user: Option<UserId>,
        on: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub seq: u64,
    pub cmd_seq: u64,
    pub ts: i64,
    pub event: Event,
}
