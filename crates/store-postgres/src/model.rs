//! The rows the read model hands out are those of the all-in-one SQLite read model
//! (`qt_store_sqlite`'s row types, re-exported here), so the API renders both stores with
//! one set of types and an idempotency body written by one decodes in the other. This
//! module adds their decoding from PostgreSQL rows.
//!
//! Every value is an integer in the engine's units (ticks, lots, minor units, nanoseconds
//! since the Unix epoch) or a domain enum; the API formats decimals with the symbol grid.
//! `status`, `side`, `type`, `tif` and `stp` columns hold the API codes; reject and cancel
//! reasons hold the Rust variant name (serde's encoding).

use crate::{from_sql, StoreError};
use qt_core::{OrderId, OrderStatus, OrderType, Side, StpMode, SymbolId, TimeInForce, TradeId, UserId};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;

pub use qt_store_sqlite::{
    reject_http_status, AssetRow, BalanceRow, CandleRow, ExecutionRow, IdempotencyRow, OrderView, PlaceResponse,
    PositionRow, Stats24h, SymbolRow, TradeRow, UserRow, CANDLE_INTERVALS,
};

pub(crate) const ORDER_COLUMNS: &str = "order_id, user_id, symbol_id, client_order_id, side, type, tif, price, \
     stop_price, qty, filled, quote_filled, fees, status, post_only, stp, triggered, reject_reason, cancel_reason, \
     created_ts, updated_ts, cmd_seq";

pub(crate) fn order_from_row(r: &Row) -> Result<OrderView, StoreError> {
    Ok(OrderView {
        order_id: OrderId(from_sql(r.try_get(0)?)?),
        user_id: UserId(from_sql(r.try_get(1)?)?),
        symbol_id: SymbolId(small(r.try_get(2)?)?),
        client_order_id: r.try_get(3)?,
        side: decode(r, 4, side_from)?,
        order_type: decode(r, 5, order_type_from)?,
        tif: decode(r, 6, tif_from)?,
        price: r.try_get(7)?,
        stop_price: r.try_get(8)?,
        qty: r.try_get(9)?,
        filled: r.try_get(10)?,
        quote_filled: r.try_get(11)?,
        fees: r.try_get(12)?,
        status: decode(r, 13, status_from)?,
        post_only: r.try_get(14)?,
        stp: decode(r, 15, stp_from)?,
        triggered: r.try_get(16)?,
        reject_reason: decode_opt_variant(r, 17)?,
        cancel_reason: decode_opt_variant(r, 18)?,
        created_ts: r.try_get(19)?,
        updated_ts: r.try_get(20)?,
        cmd_seq: from_sql(r.try_get(21)?)?,
    })
}

pub(crate) const EXECUTION_COLUMNS: &str =
    "execution_id, trade_id, order_id, user_id, symbol_id, side, price, qty, quote_qty, fee, is_maker, ts, cmd_seq";

pub(crate) fn execution_from_row(r: &Row) -> Result<ExecutionRow, StoreError> {
    Ok(ExecutionRow {
        execution_id: r.try_get(0)?,
        trade_id: TradeId(from_sql(r.try_get(1)?)?),
        order_id: OrderId(from_sql(r.try_get(2)?)?),
        user_id: UserId(from_sql(r.try_get(3)?)?),
        symbol_id: SymbolId(small(r.try_get(4)?)?),
        side: decode(r, 5, side_from)?,
        price: r.try_get(6)?,
        qty: r.try_get(7)?,
        quote_qty: r.try_get(8)?,
        fee: r.try_get(9)?,
        is_maker: r.try_get(10)?,
        ts: r.try_get(11)?,
        cmd_seq: from_sql(r.try_get(12)?)?,
    })
}

// ---- column codecs ------------------------------------------------------------------

pub(crate) fn small(v: i32) -> Result<u16, StoreError> {
    u16::try_from(v).map_err(|_| StoreError::Corrupt(format!("id {v} out of range")))
}

fn decode<T>(r: &Row, idx: usize, f: fn(&str) -> Option<T>) -> Result<T, StoreError> {
    let s: &str = r.try_get(idx)?;
    f(s).ok_or_else(|| StoreError::Corrupt(format!("column {idx}: unexpected value {s:?}")))
}

/// Unit enum variants stored by their serde name (`"InsufficientFunds"`).
pub(crate) fn variant_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => e.to_string(),
    }
}

fn decode_opt_variant<T: for<'de> Deserialize<'de>>(r: &Row, idx: usize) -> Result<Option<T>, StoreError> {
    let s: Option<String> = r.try_get(idx)?;
    s.map(|s| {
        serde_json::from_value(serde_json::Value::String(s.clone()))
            .map_err(|_| StoreError::Corrupt(format!("column {idx}: unexpected value {s:?}")))
    })
    .transpose()
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
        assert_eq!(variant_name(&qt_core::RejectReason::InsufficientFunds), "InsufficientFunds");
    }
}
