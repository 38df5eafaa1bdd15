//! Orders: identifiers, sides, types, time in force, the order status state machine and
//! the machine-readable reasons an order or command is refused.
//!
//! Contract:
//! - [`transition`] is the one (state, event) table of the order life cycle. Any edge not in
//!   it is an [`InvalidTransition`] error: callers never set a status directly.
//! - [`RejectReason::code`] is the stable, machine-readable code the API returns.

use crate::money::{Price, Qty};
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UserId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TradeId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    #[inline]
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderType {
    Limit,
    Market,
    /// Stop-market: becomes a market order when the last trade reaches the stop price.
    Stop,
    /// Stop-limit: becomes a limit order when the last trade reaches the stop price.
    StopLimit,
}

impl OrderType {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::Limit => "LIMIT",
            OrderType::Market => "MARKET",
            OrderType::Stop => "STOP",
            OrderType::StopLimit => "STOP_LIMIT",
        }
    }
    #[inline]
    pub fn is_stop(self) -> bool {
        matches!(self, OrderType::Stop | OrderType::StopLimit)
    }
    /// Whether the order has a limit price once it is live on the book.
    #[inline]
    pub fn has_limit_price(self) -> bool {
        matches!(self, OrderType::Limit | OrderType::StopLimit)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimeInForce {
    /// Good till cancelled: the remainder rests on the book.
    Gtc,
    /// Immediate or cancel: the remainder expires.
    Ioc,
    /// Fill or kill: all at once or nothing.
    Fok,
}

impl TimeInForce {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "GTC",
            TimeInForce::Ioc => "IOC",
            TimeInForce::Fok => "FOK",
        }
    }
}

/// What happens when an order would trade with another order of the same user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum StpMode {
    /// Cancel the incoming (newest) order's remainder; the resting order stays.
    #[default]
    CancelNewest,
    /// Cancel the resting (oldest) order and keep matching.
    CancelOldest,
    /// Cancel both.
    CancelBoth,
}

impl StpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StpMode::CancelNewest => "CANCEL_NEWEST",
            StpMode::CancelOldest => "CANCEL_OLDEST",
            StpMode::CancelBoth => "CANCEL_BOTH",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    New,
    Accepted,
    PartiallyFilled,
    Filled,
    Settled,
    Rejected,
    Cancelled,
    Expired,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::New => "NEW",
            OrderStatus::Accepted => "ACCEPTED",
            OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
            OrderStatus::Filled => "FILLED",
            OrderStatus::Settled => "SETTLED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Expired => "EXPIRED",
        }
    }
    /// Open orders can still trade, be cancelled or amended.
    #[inline]
    pub fn is_open(self) -> bool {
        matches!(self, OrderStatus::New | OrderStatus::Accepted | OrderStatus::PartiallyFilled)
    }
}

/// Things that happen to an order; the input of [`transition`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderEvent {
    Accept,
    Reject,
    /// A fill that leaves quantity open.
    PartialFill,
    /// The fill that completes the order.
    Fill,
    /// The ledger has settled every fill of a filled order.
    Settle,
    Cancel,
    /// An IOC/FOK or market remainder that could not trade.
    Expire,
    /// Price or quantity changed while open.
    Amend,
    /// A stop order's trigger price was reached.
    Trigger,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("order cannot go from {from:?} on {event:?}")]
pub struct InvalidTransition {
    pub from: OrderStatus,
    pub event: OrderEvent,
}

/// The order life cycle: the only place that decides the next status.
pub fn transition(from: OrderStatus, event: OrderEvent) -> Result<OrderStatus, InvalidTransition> {
    use OrderEvent as E;
    use OrderStatus as S;
    let to = match (from, event) {
        (S::New, E::Accept) => S::Accepted,
        (S::New, E::Reject) => S::Rejected,
        (S::Accepted, E::PartialFill) => S::PartiallyFilled,
        (S::Accepted, E::Fill) => S::Filled,
        (S::Accepted, E::Cancel) => S::Cancelled,
        (S::Accepted, E::Expire) => S::Expired,
        (S::Accepted, E::Amend) => S::Accepted,
        (S::Accepted, E::Trigger) => S::Accepted,
        (S::PartiallyFilled, E::PartialFill) => S::PartiallyFilled,
        (S::PartiallyFilled, E::Fill) => S::Filled,
        (S::PartiallyFilled, E::Cancel) => S::Cancelled,
        (S::PartiallyFilled, E::Expire) => S::Expired,
        (S::PartiallyFilled, E::Amend) => S::PartiallyFilled,
        (S::Filled, E::Settle) => S::Settled,
        _ => return Err(InvalidTransition { from, event }),
    };
    Ok(to)
}

/// Why an order or a command was refused. Every variant has a stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Error)]
pub enum RejectReason {
    #[error("unknown symbol")]
    UnknownSymbol,
    #[error("unknown user")]
    UnknownUser,
    #[error("unknown asset")]
    UnknownAsset,
    #[error("duplicate order id")]
    DuplicateOrderId,
    #[error("price is required for this order type")]
    MissingPrice,
    #[error("stop price is required for this order type")]
    MissingStopPrice,
    #[error("price must be positive")]
    InvalidPrice,
    #[error("quantity must be positive")]
    InvalidQuantity,
    #[error("quantity below the symbol minimum")]
    QuantityTooSmall,
    #[error("quantity above the symbol maximum")]
    QuantityTooLarge,
    #[error("notional below the symbol minimum")]
    NotionalTooSmall,
    #[error("price outside the allowed band around the last price")]
    PriceOutOfBand,
    #[error("insufficient available balance")]
    InsufficientFunds,
    #[error("order quantity above the user's limit")]
    MaxOrderQuantity,
    #[error("order notional above the user's limit")]
    MaxOrderNotional,
    #[error("position limit for the symbol would be exceeded")]
    MaxPosition,
    #[error("daily loss limit reached")]
    DailyLossLimit,
    #[error("concentration limit would be exceeded")]
    Concentration,
    #[error("too many orders per second")]
    Velocity,
    #[error("trading is halted by a kill switch")]
    KillSwitch,
    #[error("post-only order would take liquidity")]
    PostOnlyWouldTake,
    #[error("fill-or-kill order cannot be filled in full")]
    FokNotFillable,
    #[error("no liquidity or reference price for a market order")]
    NoLiquidity,
    #[error("order not found")]
    OrderNotFound,
    #[error("order is not open")]
    OrderNotOpen,
    #[error("amend would not change the order")]
    AmendNoChange,
    #[error("new quantity must exceed the filled quantity")]
    AmendBelowFilled,
    #[error("market orders must be immediate (IOC or FOK)")]
    MarketOrderTif,
    #[error("post-only is only valid for GTC limit orders")]
    PostOnlyInvalid,
    #[error("arithmetic overflow")]
    Overflow,
    #[error("user already exists")]
    DuplicateUser,
    #[error("symbol already exists or is invalid")]
    InvalidSymbol,
    #[error("amount must be positive")]
    InvalidAmount,
}

impl RejectReason {
    pub fn code(self) -> &'static str {
        use RejectReason::*;
        match self {
            UnknownSymbol => "UNKNOWN_SYMBOL",
            UnknownUser => "UNKNOWN_USER",
            UnknownAsset => "UNKNOWN_ASSET",
            DuplicateOrderId => "DUPLICATE_ORDER_ID",
            MissingPrice => "MISSING_PRICE",
            MissingStopPrice => "MISSING_STOP_PRICE",
            InvalidPrice => "INVALID_PRICE",
            InvalidQuantity => "INVALID_QUANTITY",
            QuantityTooSmall => "QUANTITY_TOO_SMALL",
            QuantityTooLarge => "QUANTITY_TOO_LARGE",
            NotionalTooSmall => "NOTIONAL_TOO_SMALL",
            PriceOutOfBand => "PRICE_OUT_OF_BAND",
            InsufficientFunds => "INSUFFICIENT_FUNDS",
            MaxOrderQuantity => "RISK_MAX_QUANTITY",
            MaxOrderNotional => "RISK_MAX_NOTIONAL",
            MaxPosition => "RISK_MAX_POSITION",
            DailyLossLimit => "RISK_DAILY_LOSS",
            Concentration => "RISK_CONCENTRATION",
            Velocity => "RISK_VELOCITY",
            KillSwitch => "KILL_SWITCH",
            PostOnlyWouldTake => "POST_ONLY_WOULD_TAKE",
            FokNotFillable => "FOK_NOT_FILLABLE",
            NoLiquidity => "NO_LIQUIDITY",
            OrderNotFound => "ORDER_NOT_FOUND",
            OrderNotOpen => "ORDER_NOT_OPEN",
            AmendNoChange => "AMEND_NO_CHANGE",
            AmendBelowFilled => "AMEND_BELOW_FILLED",
            MarketOrderTif => "MARKET_ORDER_TIF",
            PostOnlyInvalid => "POST_ONLY_INVALID",
            Overflow => "OVERFLOW",
            DuplicateUser => "DUPLICATE_USER",
            InvalidSymbol => "INVALID_SYMBOL",
            InvalidAmount => "INVALID_AMOUNT",
        }
    }

    /// The request field a client should look at, when there is one.
    pub fn field(self) -> Option<&'static str> {
        use RejectReason::*;
        match self {
            UnknownSymbol | InvalidSymbol => Some("symbol"),
            MissingPrice | InvalidPrice | PriceOutOfBand | PostOnlyWouldTake => Some("price"),
            MissingStopPrice => Some("stop_price"),
            InvalidQuantity | QuantityTooSmall | QuantityTooLarge | MaxOrderQuantity | AmendBelowFilled => {
                Some("quantity")
            }
            NotionalTooSmall | MaxOrderNotional => Some("quantity"),
            MarketOrderTif | FokNotFillable => Some("time_in_force"),
            PostOnlyInvalid => Some("post_only"),
            UnknownAsset => Some("asset"),
            InvalidAmount => Some("amount"),
            _ => None,
        }
    }
}

/// Why an open order stopped being open without filling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CancelReason {
    User,
    MassCancel,
    SelfTradePrevention,
    KillSwitch,
}

/// A new order as it comes in with a place command; ids and time come from outside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    pub order_id: OrderId,
    pub user: UserId,
    pub symbol: crate::symbol::SymbolId,
    pub side: Side,
    pub order_type: OrderType,
    pub tif: TimeInForce,
    /// Limit price; required for LIMIT and STOP_LIMIT, ignored otherwise.
    pub price: Option<Price>,
    /// Trigger price; required for STOP and STOP_LIMIT.
    pub stop_price: Option<Price>,
    pub qty: Qty,
    pub post_only: bool,
    pub stp: StpMode,
    /// The client's own reference, echoed back; at most 64 characters (checked at intake).
    pub client_order_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_STATES: [OrderStatus; 8] = [
        OrderStatus::New,
        OrderStatus::Accepted,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::Settled,
        OrderStatus::Rejected,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
    ];
    const ALL_EVENTS: [OrderEvent; 9] = [
        OrderEvent::Accept,
        OrderEvent::Reject,
        OrderEvent::PartialFill,
        OrderEvent::Fill,
        OrderEvent::Settle,
        OrderEvent::Cancel,
        OrderEvent::Expire,
        OrderEvent::Amend,
        OrderEvent::Trigger,
    ];

    #[test]
    fn happy_path() {
        let s = transition(OrderStatus::New, OrderEvent::Accept).unwrap();
        let s = transition(s, OrderEvent::PartialFill).unwrap();
        let s = transition(s, OrderEvent::Fill).unwrap();
        assert_eq!(transition(s, OrderEvent::Settle), Ok(OrderStatus::Settled));
    }

    #[test]
    fn final_states_have_no_exit() {
        for from in [OrderStatus::Settled, OrderStatus::Rejected, OrderStatus::Cancelled, OrderStatus::Expired] {
            for event in ALL_EVENTS {
                assert_eq!(transition(from, event), Err(InvalidTransition { from, event }));
            }
        }
    }

    #[test]
    fn table_has_exactly_fourteen_edges() {
        let edges = ALL_STATES
            .iter()
            .flat_map(|s| ALL_EVENTS.iter().map(move |e| (*s, *e)))
            .filter(|(s, e)| transition(*s, *e).is_ok())
            .count();
        assert_eq!(edges, 14);
        // and a filled order can only be settled
        assert!(transition(OrderStatus::Filled, OrderEvent::Cancel).is_err());
    }

    #[test]
    fn every_reason_has_a_distinct_code() {
        use std::collections::HashSet;
        let reasons = [
            RejectReason::InsufficientFunds,
            RejectReason::MaxPosition,
            RejectReason::DailyLossLimit,
            RejectReason::Concentration,
            RejectReason::Velocity,
            RejectReason::KillSwitch,
            RejectReason::MaxOrderNotional,
            RejectReason::MaxOrderQuantity,
        ];
        let codes: HashSet<_> = reasons.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), reasons.len());
    }
}
