//! JSON shapes of the API (docs/api.md) and how read-model rows render into them.
//!
//! Contract:
//! - Money, prices and quantities are decimal strings on the symbol's grid; ids are
//!   strings; times are RFC 3339 UTC with milliseconds.
//! - The same structs are the OpenAPI schemas (`ToSchema`), so the document describes
//!   exactly what the handlers serialize.

use super::Markets;
use qt_core::money::format_scaled;
use qt_core::{Price, Qty, SymbolSpec};
use qt_store_sqlite::{BalanceRow, CandleRow, ExecutionRow, OrderView, PositionRow, TradeRow};
use serde::Serialize;
use utoipa::ToSchema;

/// `2026-11-25T10:00:00.123Z` from nanoseconds since the Unix epoch.
pub fn rfc3339(ns: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Nanoseconds from an RFC 3339 string.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos()).ok()
}

/// A quote-asset amount in minor units, with at least the price's decimals.
pub fn quote_amount(spec: &SymbolSpec, units: i128) -> String {
    format_scaled(units, spec.quote_scale, spec.price_decimals())
}

pub fn price(spec: &SymbolSpec, ticks: i64) -> String {
    spec.format_price(Price(ticks))
}

pub fn qty(spec: &SymbolSpec, lots: i64) -> String {
    spec.format_qty(Qty(lots))
}

/// Average fill price: exact quote units per base unit, cut at the quote scale.
pub fn average_price(spec: &SymbolSpec, quote_filled: i128, filled_lots: i64) -> Option<String> {
    if filled_lots <= 0 {
        return None;
    }
    let base_units = i128::from(filled_lots) * i128::from(spec.lot);
    let per_unit = quote_filled * 10i128.pow(spec.base_scale) / base_units;
    Some(format_scaled(per_unit, spec.quote_scale, spec.price_decimals()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderJson {
    pub order_id: String,
    pub client_order_id: Option<String>,
    pub symbol: String,
    /// `BUY` or `SELL`.
    pub side: String,
    /// `LIMIT`, `MARKET`, `STOP` or `STOP_LIMIT`.
    #[serde(rename = "type")]
    pub order_type: String,
    /// `NEW`, `ACCEPTED`, `PARTIALLY_FILLED`, `FILLED`, `SETTLED`, `REJECTED`, `CANCELLED` or `EXPIRED`.
    pub status: String,
    pub price: Option<String>,
    pub stop_price: Option<String>,
    pub quantity: String,
    pub filled_quantity: String,
    pub remaining_quantity: String,
    pub average_price: Option<String>,
    /// Fees paid so far in the quote asset (negative: rebate).
    pub fees: String,
    pub time_in_force: String,
    pub post_only: bool,
    pub stp_mode: String,
    /// Whether a stop order's trigger was reached.
    pub triggered: bool,
    /// Code of the reason a REJECTED order was refused.
    pub reject_reason: Option<String>,
    /// `USER`, `MASS_CANCEL`, `SELF_TRADE_PREVENTION` or `KILL_SWITCH`.
    pub cancel_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The order's fills, oldest first (absent in WebSocket order updates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fills: Option<Vec<ExecutionJson>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionJson {
    pub execution_id: String,
    pub order_id: String,
    pub trade_id: String,
    pub symbol: String,
    pub side: String,
    pub price: String,
    pub quantity: String,
    pub fee: String,
    pub fee_asset: String,
    /// `MAKER` or `TAKER`.
    pub liquidity: String,
    pub timestamp: String,
}

fn cancel_code(r: qt_core::CancelReason) -> &'static str {
    match r {
        qt_core::CancelReason::User => "USER",
        qt_core::CancelReason::MassCancel => "MASS_CANCEL",
        qt_core::CancelReason::SelfTradePrevention => "SELF_TRADE_PREVENTION",
        qt_core::CancelReason::KillSwitch => "KILL_SWITCH",
    }
}

impl OrderJson {
    pub fn render(markets: &Markets, o: &OrderView, fills: Option<&[ExecutionRow]>) -> OrderJson {
        let Some(spec) = markets.symbol(o.symbol_id) else {
            // Orders only exist for listed symbols; a missing spec means a corrupt read
            // model, which renders raw numbers rather than failing the whole list.
            return OrderJson::raw(o);
        };
        OrderJson {
            order_id: o.order_id.0.to_string(),
            client_order_id: o.client_order_id.clone(),
            symbol: spec.name.clone(),
            side: o.side.as_str().into(),
            order_type: o.order_type.as_str().into(),
            status: o.status.as_str().into(),
            price: o.price.map(|p| price(spec, p)),
            stop_price: o.stop_price.map(|p| price(spec, p)),
            quantity: qty(spec, o.qty),
            filled_quantity: qty(spec, o.filled),
            remaining_quantity: qty(spec, remaining(o)),
            average_price: average_price(spec, i128::from(o.quote_filled), o.filled),
            fees: quote_amount(spec, i128::from(o.fees)),
            time_in_force: o.tif.as_str().into(),
            post_only: o.post_only,
            stp_mode: o.stp.as_str().into(),
            triggered: o.triggered,
            reject_reason: o.reject_reason.map(|r| r.code().to_string()),
            cancel_reason: o.cancel_reason.map(|r| cancel_code(r).to_string()),
            created_at: rfc3339(o.created_ts),
            updated_at: rfc3339(o.updated_ts),
            fills: fills.map(|f| f.iter().map(|e| ExecutionJson::render(markets, e)).collect()),
        }
    }

    fn raw(o: &OrderView) -> OrderJson {
        OrderJson {
            order_id: o.order_id.0.to_string(),
            client_order_id: o.client_order_id.clone(),
            symbol: o.symbol_id.0.to_string(),
            side: o.side.as_str().into(),
            order_type: o.order_type.as_str().into(),
            status: o.status.as_str().into(),
            price: o.price.map(|p| p.to_string()),
            stop_price: o.stop_price.map(|p| p.to_string()),
            quantity: o.qty.to_string(),
            filled_quantity: o.filled.to_string(),
            remaining_quantity: remaining(o).to_string(),
            average_price: None,
            fees: o.fees.to_string(),
            time_in_force: o.tif.as_str().into(),
            post_only: o.post_only,
            stp_mode: o.stp.as_str().into(),
            triggered: o.triggered,
            reject_reason: o.reject_reason.map(|r| r.code().to_string()),
            cancel_reason: o.cancel_reason.map(|r| cancel_code(r).to_string()),
            created_at: rfc3339(o.created_ts),
            updated_at: rfc3339(o.updated_ts),
            fills: None,
        }
    }
}

/// What is left to fill: nothing once the order is final.
fn remaining(o: &OrderView) -> i64 {
    if o.status.is_open() {
        (o.qty - o.filled).max(0)
    } else {
        0
    }
}

impl ExecutionJson {
    pub fn render(markets: &Markets, e: &ExecutionRow) -> ExecutionJson {
        let spec = markets.symbol(e.symbol_id);
        let fee_asset = spec.and_then(|s| markets.asset(s.quote)).map_or_else(String::new, |a| a.code.clone());
        ExecutionJson {
            execution_id: e.execution_id.to_string(),
            order_id: e.order_id.0.to_string(),
            trade_id: e.trade_id.0.to_string(),
            symbol: spec.map_or_else(|| e.symbol_id.0.to_string(), |s| s.name.clone()),
            side: e.side.as_str().into(),
            price: spec.map_or_else(|| e.price.to_string(), |s| price(s, e.price)),
            quantity: spec.map_or_else(|| e.qty.to_string(), |s| qty(s, e.qty)),
            fee: spec.map_or_else(|| e.fee.to_string(), |s| quote_amount(s, i128::from(e.fee))),
            fee_asset,
            liquidity: if e.is_maker { "MAKER" } else { "TAKER" }.into(),
            timestamp: rfc3339(e.ts),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList {
    pub orders: Vec<OrderJson>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionList {
    pub executions: Vec<ExecutionJson>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MassCancelled {
    /// Ids of the orders cancelled.
    pub cancelled: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceJson {
    pub asset: String,
    pub available: String,
    pub reserved: String,
}

impl BalanceJson {
    pub fn render(markets: &Markets, b: &BalanceRow) -> BalanceJson {
        let (code, scale) =
            markets.asset(b.asset_id).map_or((b.asset_id.0.to_string(), 0), |a| (a.code.clone(), a.scale));
        BalanceJson {
            asset: code,
            available: format_scaled(i128::from(b.available), scale, 2),
            reserved: format_scaled(i128::from(b.reserved), scale, 2),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Balances {
    pub balances: Vec<BalanceJson>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PositionJson {
    pub symbol: String,
    /// Signed: negative is short.
    pub quantity: String,
    pub average_entry_price: Option<String>,
    pub realized_pnl: String,
    pub unrealized_pnl: Option<String>,
    pub mark_price: Option<String>,
}

impl PositionJson {
    pub fn render(spec: &SymbolSpec, p: &PositionRow, mark: Option<i64>) -> PositionJson {
        let base_units = i128::from(p.qty.unsigned_abs().min(i64::MAX as u64) as i64) * i128::from(spec.lot);
        let average = (p.qty != 0)
            .then(|| p.cost.abs() * 10i128.pow(spec.base_scale) / base_units)
            .map(|units| format_scaled(units, spec.quote_scale, spec.price_decimals()));
        // Unrealised = what the open quantity is worth at the mark minus what it cost;
        // `cost` has the sign of the position, so one formula serves longs and shorts.
        let unrealized = mark.map(|m| spec.notional(Price(m), Qty(p.qty.abs())) * i128::from(p.qty.signum()) - p.cost);
        PositionJson {
            symbol: spec.name.clone(),
            quantity: format_scaled(i128::from(p.qty) * i128::from(spec.lot), spec.base_scale, 0),
            average_entry_price: average,
            realized_pnl: quote_amount(spec, p.realized),
            unrealized_pnl: unrealized.map(|u| quote_amount(spec, u)),
            mark_price: mark.map(|m| price(spec, m)),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Positions {
    pub positions: Vec<PositionJson>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SymbolJson {
    pub symbol: String,
    pub base_asset: String,
    pub quote_asset: String,
    pub tick_size: String,
    pub lot_size: String,
    pub min_quantity: String,
    pub max_quantity: String,
    pub min_notional: String,
    pub price_band_bps: i64,
    pub market_collar_bps: i64,
    pub maker_fee_bps: i64,
    pub taker_fee_bps: i64,
    pub price_decimals: u32,
    pub quantity_decimals: u32,
    /// `TRADING`.
    pub status: String,
}

impl SymbolJson {
    pub fn render(markets: &Markets, s: &SymbolSpec) -> SymbolJson {
        let code = |id| markets.asset(id).map_or_else(String::new, |a| a.code.clone());
        SymbolJson {
            symbol: s.name.clone(),
            base_asset: code(s.base),
            quote_asset: code(s.quote),
            tick_size: s.tick_size(),
            lot_size: s.lot_size(),
            min_quantity: qty(s, s.min_qty.0),
            max_quantity: qty(s, s.max_qty.0),
            min_notional: quote_amount(s, i128::from(s.min_notional.0)),
            price_band_bps: s.price_band_bps,
            market_collar_bps: s.market_collar_bps,
            maker_fee_bps: s.maker_fee_bps,
            taker_fee_bps: s.taker_fee_bps,
            price_decimals: s.price_decimals(),
            quantity_decimals: s.qty_decimals(),
            status: "TRADING".into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SymbolList {
    pub symbols: Vec<SymbolJson>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PriceJson {
    pub symbol: String,
    pub last: Option<String>,
    pub best_bid: Option<String>,
    pub best_ask: Option<String>,
    pub best_bid_quantity: Option<String>,
    pub best_ask_quantity: Option<String>,
    pub open_24h: Option<String>,
    pub high_24h: Option<String>,
    pub low_24h: Option<String>,
    /// Base quantity traded over 24 h.
    pub volume_24h: String,
    pub quote_volume_24h: String,
    /// Last minus the first price of the window, in the quote asset.
    pub change_24h: Option<String>,
    /// Change in percent with two decimals (`"-1.25"`).
    pub change_24h_percent: Option<String>,
    pub timestamp: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BookJson {
    pub symbol: String,
    /// Book sequence number: WebSocket diffs continue from it.
    pub sequence: u64,
    /// `[price, quantity]`, best (highest) first.
    pub bids: Vec<[String; 2]>,
    /// `[price, quantity]`, best (lowest) first.
    pub asks: Vec<[String; 2]>,
}

pub fn levels(spec: &SymbolSpec, levels: &[(Price, Qty)]) -> Vec<[String; 2]> {
    levels.iter().map(|(p, q)| [spec.format_price(*p), spec.format_qty(*q)]).collect()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TradeJson {
    pub trade_id: String,
    pub price: String,
    pub quantity: String,
    /// Side of the incoming (aggressing) order.
    pub taker_side: String,
    pub timestamp: String,
}

impl TradeJson {
    pub fn render(spec: &SymbolSpec, t: &TradeRow) -> TradeJson {
        TradeJson {
            trade_id: t.trade_id.0.to_string(),
            price: price(spec, t.price),
            quantity: qty(spec, t.qty),
            taker_side: t.taker_side.as_str().into(),
            timestamp: rfc3339(t.ts),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TradeList {
    pub symbol: String,
    /// Newest first.
    pub trades: Vec<TradeJson>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CandleJson {
    pub open_time: String,
    pub open: String,
    pub high: String,
    pub low: String,
    pub close: String,
    pub volume: String,
    pub quote_volume: String,
    pub trades: i64,
}

impl CandleJson {
    pub fn render(spec: &SymbolSpec, c: &CandleRow) -> CandleJson {
        CandleJson {
            open_time: rfc3339(c.open_time),
            open: price(spec, c.open),
            high: price(spec, c.high),
            low: price(spec, c.low),
            close: price(spec, c.close),
            volume: qty(spec, c.volume),
            quote_volume: quote_amount(spec, i128::from(c.quote_volume)),
            trades: c.trades,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CandleList {
    pub symbol: String,
    /// `1m`, `5m` or `1h`.
    pub interval: String,
    /// Oldest first.
    pub candles: Vec<CandleJson>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsJson {
    /// Per symbol.
    pub max_order_quantity: std::collections::BTreeMap<String, String>,
    pub max_order_notional: Option<String>,
    pub max_position: std::collections::BTreeMap<String, String>,
    pub daily_loss_limit: Option<String>,
    pub max_concentration_bps: Option<u32>,
    pub max_orders_per_second: Option<u32>,
    pub kill_switch: bool,
    pub global_kill_switch: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValidateJson {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<super::error::ErrorDetail>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    pub user_id: String,
    pub name: String,
    /// Shown once: only its hash is stored.
    pub api_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub recovered: bool,
    pub degraded: bool,
    pub draining: bool,
    /// Sequence number of the last journaled command.
    pub last_seq: u64,
}
