//! The rows the read model hands out, and how enums are spelled in its columns.
//!
//! Contract:
//! - Every value is an integer in the engine's units (ticks, lots, quote or asset minor
//!   units, nanoseconds since the Unix epoch) or a domain enum; nothing is rendered as a
//!   decimal string here: the API formats with the symbol's grid.
//! - `status`, `side`, `type`, `tif` and `stp` columns hold the API codes
//!   (`OrderStatus::as_str` and friends); reject and cancel reasons hold the Rust variant
//!   name (serde's encoding), so a column decodes back to exactly the enum it came from.
//! - [`PlaceResponse`] is what the idempotency table stores as `body`: serde JSON of the
//!   order right after its place command, and that command's fills.

use crate::error::get_u64;
use qt_core::{
    AssetId, CancelReason, OrderId, OrderStatus, OrderType, RejectReason, Side, StpMode, SymbolId, SymbolSpec,
    TimeInForce, TradeId, UserId,
};
use serde::{Deserialize, Serialize};

/// Candle intervals maintained from trades, in seconds (1 minute, 5 minutes, 1 hour).
pub const CANDLE_INTERVALS: [u32; 3] = [60, 300, 3600];

/// A user as the admin endpoints created it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    /// Engine user id.
    pub user_id: UserId,
    /// Unique name; `None` when the command carried none (or it was already taken).
    pub name: Option<String>,
    /// SHA-256 of the API key (hex, as the intake computed it).
    pub api_key_hash: Option<String>,
    /// Time of the CreateUser command.
    pub created_ts: i64,
}

/// An order as the read model knows it after the last projected command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// Engine order id.
    pub order_id: OrderId,
    /// Owner.
    pub user_id: UserId,
    /// Symbol traded.
    pub symbol_id: SymbolId,
    /// The client's own reference, echoed back.
    pub client_order_id: Option<String>,
    /// Buy or sell.
    pub side: Side,
    /// Limit, market, stop or stop-limit.
    pub order_type: OrderType,
    /// Time in force.
    pub tif: TimeInForce,
    /// Limit price in ticks (the amended one after an amend); `None` for market and stop orders.
    pub price: Option<i64>,
    /// Trigger price in ticks of stop orders.
    pub stop_price: Option<i64>,
    /// Total quantity in lots (the amended one after an amend).
    pub qty: i64,
    /// Cumulative filled lots.
    pub filled: i64,
    /// Sum of price × quantity of the fills in quote minor units: the average price is
    /// `quote_filled / (filled × quote_per_tick_lot)` ticks.
    pub quote_filled: i64,
    /// Sum of the fees of the fills, quote minor units (negative for rebates).
    pub fees: i64,
    /// Current status.
    pub status: OrderStatus,
    /// Post-only flag of the order.
    pub post_only: bool,
    /// Self-trade prevention mode.
    pub stp: StpMode,
    /// A stop order whose trigger price was reached.
    pub triggered: bool,
    /// Why the order was refused, when REJECTED.
    pub reject_reason: Option<RejectReason>,
    /// Why the order was cancelled, when CANCELLED.
    pub cancel_reason: Option<CancelReason>,
    /// Time of the place command.
    pub created_ts: i64,
    /// Time of the last command that changed the order.
    pub updated_ts: i64,
    /// Sequence number of the last command that changed the order.
    pub cmd_seq: u64,
}

impl OrderView {
    pub(crate) const COLUMNS: &'static str = "order_id, user_id, symbol_id, client_order_id, side, type, tif, price, \
         stop_price, qty, filled, quote_filled, fees, status, post_only, stp, triggered, reject_reason, \
         cancel_reason, created_ts, updated_ts, cmd_seq";

    pub(crate) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OrderView> {
        Ok(OrderView {
            order_id: OrderId(get_u64(r, 0)?),
            user_id: UserId(get_u64(r, 1)?),
            symbol_id: SymbolId(r.get(2)?),
            client_order_id: r.get(3)?,
            side: decode(r, 4, side_from)?,
            order_type: decode(r, 5, order_type_from)?,
            tif: decode(r, 6, tif_from)?,
            price: r.get(7)?,
            stop_price: r.get(8)?,
            qty: r.get(9)?,
            filled: r.get(10)?,
            quote_filled: r.get(11)?,
            fees: r.get(12)?,
            status: decode(r, 13, status_from)?,
            post_only: r.get(14)?,
            stp: decode(r, 15, stp_from)?,
            triggered: r.get(16)?,
            reject_reason: decode_opt_variant(r, 17)?,
            cancel_reason: decode_opt_variant(r, 18)?,
            created_ts: r.get(19)?,
            updated_ts: r.get(20)?,
            cmd_seq: get_u64(r, 21)?,
        })
    }
}

/// One side of a trade, as the user who owned that order sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRow {
    /// `trade_id × 2 + 1` for the taker, `trade_id × 2` for the maker: stable across
    /// rebuilds, and newest-first order is execution order.
    pub execution_id: i64,
    /// The public trade.
    pub trade_id: TradeId,
    /// This user's order.
    pub order_id: OrderId,
    /// Owner of the order.
    pub user_id: UserId,
    /// Symbol traded.
    pub symbol_id: SymbolId,
    /// Side of this user's order.
    pub side: Side,
    /// Trade price in ticks.
    pub price: i64,
    /// Lots traded.
    pub qty: i64,
    /// Notional in quote minor units.
    pub quote_qty: i64,
    /// Fee in quote minor units (negative for a rebate).
    pub fee: i64,
    /// Whether this order was resting (maker) rather than incoming (taker).
    pub is_maker: bool,
    /// Time of the command that traded.
    pub ts: i64,
    /// Sequence number of the command that traded.
    pub cmd_seq: u64,
}

impl ExecutionRow {
    pub(crate) const COLUMNS: &'static str =
        "execution_id, trade_id, order_id, user_id, symbol_id, side, price, qty, quote_qty, fee, is_maker, ts, cmd_seq";

    pub(crate) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExecutionRow> {
        Ok(ExecutionRow {
            execution_id: r.get(0)?,
            trade_id: TradeId(get_u64(r, 1)?),
            order_id: OrderId(get_u64(r, 2)?),
            user_id: UserId(get_u64(r, 3)?),
            symbol_id: SymbolId(r.get(4)?),
            side: decode(r, 5, side_from)?,
            price: r.get(6)?,
            qty: r.get(7)?,
            quote_qty: r.get(8)?,
            fee: r.get(9)?,
            is_maker: r.get(10)?,
            ts: r.get(11)?,
            cmd_seq: get_u64(r, 12)?,
        })
    }
}

/// A public trade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeRow {
    /// Engine trade id (increasing).
    pub trade_id: TradeId,
    /// Symbol traded.
    pub symbol_id: SymbolId,
    /// Price in ticks.
    pub price: i64,
    /// Lots traded.
    pub qty: i64,
    /// Side of the incoming order.
    pub taker_side: Side,
    /// Time of the command that traded.
    pub ts: i64,
}

/// One OHLCV bucket built from trades.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandleRow {
    /// Symbol.
    pub symbol_id: SymbolId,
    /// Bucket length in seconds (one of [`CANDLE_INTERVALS`]).
    pub interval_s: u32,
    /// Start of the bucket, nanoseconds since the Unix epoch (a multiple of the interval).
    pub open_time: i64,
    /// Price of the first trade of the bucket, ticks.
    pub open: i64,
    /// Highest trade price, ticks.
    pub high: i64,
    /// Lowest trade price, ticks.
    pub low: i64,
    /// Price of the last trade of the bucket, ticks.
    pub close: i64,
    /// Lots traded.
    pub volume: i64,
    /// Quote minor units traded.
    pub quote_volume: i64,
    /// Number of trades.
    pub trades: i64,
}

/// A user's balance of one asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceRow {
    /// Owner.
    pub user_id: UserId,
    /// Asset.
    pub asset_id: AssetId,
    /// Free to use, minor units.
    pub available: i64,
    /// Held for open orders, minor units.
    pub reserved: i64,
}

/// A user's net position in one symbol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionRow {
    /// Owner.
    pub user_id: UserId,
    /// Symbol.
    pub symbol_id: SymbolId,
    /// Signed lots: positive long, negative short.
    pub qty: i64,
    /// Cost of the open quantity, quote minor units, same sign as `qty`.
    pub cost: i128,
    /// Realised PnL since the account opened, quote minor units.
    pub realized: i128,
}

/// Trading statistics over the last 24 hours (at one-minute granularity: the 1m candles
/// whose bucket starts in `(now − 24 h, now]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats24h {
    /// Price of the first trade in the window, ticks; `None` without trades.
    pub open: Option<i64>,
    /// Highest trade price, ticks.
    pub high: Option<i64>,
    /// Lowest trade price, ticks.
    pub low: Option<i64>,
    /// Price of the last trade in the window, ticks.
    pub last: Option<i64>,
    /// Lots traded.
    pub volume: i64,
    /// Quote minor units traded.
    pub quote_volume: i64,
    /// Number of trades.
    pub trades: i64,
}

/// The stored answer to a place request with an `Idempotency-Key` (also carried in the
/// distributed mode's replies, hence serde).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRow {
    /// Owner of the key.
    pub user_id: UserId,
    /// The `Idempotency-Key` header.
    pub key: String,
    /// Hash of the request body as the intake computed it; a different hash for the same
    /// key is the 409 case.
    pub request_hash: Option<String>,
    /// The order the request placed.
    pub order_id: OrderId,
    /// 201 when the order was accepted, else [`reject_http_status`] of its reason.
    pub http_status: u16,
    /// JSON of [`PlaceResponse`]; decode with [`IdempotencyRow::response`].
    pub body: String,
    /// Time of the place command.
    pub created_ts: i64,
}

impl IdempotencyRow {
    /// The stored order and fills.
    pub fn response(&self) -> Result<PlaceResponse, crate::StoreError> {
        Ok(serde_json::from_str(&self.body)?)
    }
}

/// The order right after its place command, and the fills of that command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceResponse {
    /// The order as it was right after the place command.
    pub order: OrderView,
    /// Fills of the order by that same command, oldest first.
    pub fills: Vec<ExecutionRow>,
}

/// A listed symbol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolRow {
    /// Its full specification (grids, limits, fees).
    pub spec: SymbolSpec,
}

/// A listed asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetRow {
    /// Engine asset id.
    pub asset_id: AssetId,
    /// Code (`"USD"`).
    pub code: String,
    /// Decimal places of the minor unit.
    pub scale: u32,
}

/// The HTTP status a refused place answers with; stored with idempotency rows so a
/// replayed request gets the very status the first one got. The API uses this same
/// function for the first answer.
pub fn reject_http_status(reason: RejectReason) -> u16 {
    use RejectReason::*;
    match reason {
        UnknownUser => 401,
        KillSwitch => 403,
        OrderNotFound => 404,
        DuplicateOrderId => 409,
        Velocity => 429,
        InsufficientFunds | MaxOrderQuantity | MaxOrderNotional | MaxPosition | DailyLossLimit | Concentration
        | PostOnlyWouldTake | FokNotFillable | NoLiquidity | OrderNotOpen | AmendNoChange | AmendBelowFilled => 422,
        UnknownSymbol | UnknownAsset | MissingPrice | MissingStopPrice | InvalidPrice | InvalidQuantity
        | QuantityTooSmall | QuantityTooLarge | NotionalTooSmall | PriceOutOfBand | MarketOrderTif
        | PostOnlyInvalid | Overflow | DuplicateUser | InvalidSymbol | InvalidAmount => 400,
    }
}

// ---- column codecs ------------------------------------------------------------------

fn decode<T>(r: &rusqlite::Row<'_>, idx: usize, f: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let s: String = r.get(idx)?;
    f(&s).ok_or_else(|| bad_text(idx, &s))
}

fn bad_text(idx: usize, s: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        rusqlite::types::Type::Text,
        format!("unexpected value {s:?}").into(),
    )
}

/// Unit enum variants stored by their serde name (`"InsufficientFunds"`).
pub(crate) fn variant_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        // Unit variants always encode as strings; anything else is a programming error
        // that decoding would report, so keep the JSON for the record.
        Ok(other) => other.to_string(),
        Err(e) => e.to_string(),
    }
}

fn decode_opt_variant<T: for<'de> Deserialize<'de>>(r: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Option<T>> {
    let s: Option<String> = r.get(idx)?;
    s.map(|s| serde_json::from_value(serde_json::Value::String(s.clone())).map_err(|_| bad_text(idx, &s))).transpose()
}

pub(crate) fn side_from(s: &str) -> Option<Side> {
    Some(match s {
        "BUY" => Side::Buy,
        "SELL" => Side::Sell,
        _ => return None,
    })
}

pub(crate) fn order_type_from(s: &str) -> Option<OrderType> {
    Some(match s {
        "LIMIT" => OrderType::Limit,
        "MARKET" => OrderType::Market,
        "STOP" => OrderType::Stop,
        "STOP_LIMIT" => OrderType::StopLimit,
        _ => return None,
    })
}

pub(crate) fn tif_from(s: &str) -> Option<TimeInForce> {
    Some(match s {
        "GTC" => TimeInForce::Gtc,
        "IOC" => TimeInForce::Ioc,
        "FOK" => TimeInForce::Fok,
        _ => return None,
    })
}

pub(crate) fn stp_from(s: &str) -> Option<StpMode> {
    Some(match s {
        "CANCEL_NEWEST" => StpMode::CancelNewest,
        "CANCEL_OLDEST" => StpMode::CancelOldest,
        "CANCEL_BOTH" => StpMode::CancelBoth,
        _ => return None,
    })
}

pub(crate) fn status_from(s: &str) -> Option<OrderStatus> {
    Some(match s {
        "NEW" => OrderStatus::New,
        "ACCEPTED" => OrderStatus::Accepted,
        "PARTIALLY_FILLED" => OrderStatus::PartiallyFilled,
        "FILLED" => OrderStatus::Filled,
        "SETTLED" => OrderStatus::Settled,
        "REJECTED" => OrderStatus::Rejected,
        "CANCELLED" => OrderStatus::Cancelled,
        "EXPIRED" => OrderStatus::Expired,
        _ => return None,
    })
}

/// Every status, for the codec test and the "open" filter.
pub(crate) const ALL_STATUSES: [OrderStatus; 8] = [
    OrderStatus::New,
    OrderStatus::Accepted,
    OrderStatus::PartiallyFilled,
    OrderStatus::Filled,
    OrderStatus::Settled,
    OrderStatus::Rejected,
    OrderStatus::Cancelled,
    OrderStatus::Expired,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for s in ALL_STATUSES {
            assert_eq!(status_from(s.as_str()), Some(s));
        }
        for s in [Side::Buy, Side::Sell] {
            assert_eq!(side_from(s.as_str()), Some(s));
        }
        for t in [OrderType::Limit, OrderType::Market, OrderType::Stop, OrderType::StopLimit] {
            assert_eq!(order_type_from(t.as_str()), Some(t));
        }
        for t in [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok] {
            assert_eq!(tif_from(t.as_str()), Some(t));
        }
        for m in [StpMode::CancelNewest, StpMode::CancelOldest, StpMode::CancelBoth] {
            assert_eq!(stp_from(m.as_str()), Some(m));
        }
        assert_eq!(variant_name(&RejectReason::InsufficientFunds), "InsufficientFunds");
        assert_eq!(variant_name(&CancelReason::SelfTradePrevention), "SelfTradePrevention");
    }

    #[test]
    fn refusals_are_client_errors() {
        assert_eq!(reject_http_status(RejectReason::InsufficientFunds), 422);
        assert_eq!(reject_http_status(RejectReason::PriceOutOfBand), 400);
        assert_eq!(reject_http_status(RejectReason::Velocity), 429);
    }
}
