//! Public market data: symbols, prices with 24 h statistics, order book, trades, candles.
//!
//! Contract: no authentication; an unknown symbol in the path is 404 `UNKNOWN_SYMBOL`;
//! the order book comes from the engine itself with the book's sequence number, so a
//! WebSocket client can line diffs up with it.

use super::error::ApiError;
use super::extract::QueryParams;
use super::views::{
    levels, price as price_str, qty, quote_amount, rfc3339, BookJson, CandleJson, CandleList, PriceJson, SymbolJson,
    SymbolList, TradeJson, TradeList,
};
use super::AppState;
use crate::runtime::{now_ns, Answer, Query, Top};
use axum::extract::{Path, State};
use axum::Json;
use qt_core::money::format_scaled;
use qt_core::SymbolSpec;
use qt_store_sqlite::Stats24h;
use serde::Deserialize;
use std::time::{Duration, Instant};
use utoipa::IntoParams;

#[utoipa::path(get, path = "/api/symbols", tag = "market-data", responses((status = 200, body = SymbolList)))]
pub async fn symbols(State(state): State<AppState>) -> Json<SymbolList> {
    let markets = &state.markets;
    Json(SymbolList { symbols: markets.symbols.iter().map(|s| SymbolJson::render(markets, s)).collect() })
}

/// 24 h statistics, cached for a second per symbol (tickers ask often).
pub async fn stats(state: &AppState, spec: &SymbolSpec) -> Result<Stats24h, ApiError> {
    let id = spec.id;
    if let Some((at, s)) = state.stats_cache.lock().ok().and_then(|c| c.get(&id).cloned()) {
        if at.elapsed() < Duration::from_secs(1) {
            return Ok(s);
        }
    }
    let s = state.read(move |r| r.stats_24h(id, now_ns())).await?;
    if let Ok(mut c) = state.stats_cache.lock() {
        c.insert(id, (Instant::now(), s.clone()));
    }
    Ok(s)
}

/// The ticker of one symbol: top of book from the engine, 24 h figures from the candles.
pub fn ticker(spec: &SymbolSpec, top: Option<&Top>, s: &Stats24h) -> PriceJson {
    let last = top.and_then(|t| t.last).map(|p| p.0).or(s.last);
    let change = match (last, s.open) {
        (Some(l), Some(o)) => Some(l - o),
        _ => None,
    };
    let percent = match (change, s.open) {
        (Some(c), Some(o)) if o > 0 => Some(format_scaled(i128::from(c) * 10_000 / i128::from(o), 2, 2)),
        _ => None,
    };
    PriceJson {
        symbol: spec.name.clone(),
        last: last.map(|p| price_str(spec, p)),
        best_bid: top.and_then(|t| t.best_bid).map(|(p, _)| spec.format_price(p)),
        best_ask: top.and_then(|t| t.best_ask).map(|(p, _)| spec.format_price(p)),
        best_bid_quantity: top.and_then(|t| t.best_bid).map(|(_, q)| spec.format_qty(q)),
        best_ask_quantity: top.and_then(|t| t.best_ask).map(|(_, q)| spec.format_qty(q)),
        open_24h: s.open.map(|p| price_str(spec, p)),
        high_24h: s.high.map(|p| price_str(spec, p)),
        low_24h: s.low.map(|p| price_str(spec, p)),
        volume_24h: qty(spec, s.volume),
        quote_volume_24h: quote_amount(spec, i128::from(s.quote_volume)),
        change_24h: change.map(|c| {
            let units = i128::from(c) * i128::from(spec.tick);
            format_scaled(units, spec.quote_scale, spec.price_decimals())
        }),
        change_24h_percent: percent,
        timestamp: rfc3339(now_ns()),
    }
}

/// The ticker of a symbol named by the client.
pub async fn price_of(state: &AppState, symbol: &str) -> Result<PriceJson, ApiError> {
    let spec = state.markets.require(symbol)?.clone();
    let tops = super::account::tops(state).await?;
    let s = stats(state, &spec).await?;
    Ok(ticker(&spec, tops.iter().find(|t| t.symbol == spec.id), &s))
}

#[utoipa::path(get, path = "/api/market-data/prices/{symbol}", tag = "market-data", params(("symbol" = String, Path)),
    responses((status = 200, body = PriceJson), (status = 404, body = super::error::ErrorBody)))]
pub async fn price(State(state): State<AppState>, Path(symbol): Path<String>) -> Result<Json<PriceJson>, ApiError> {
    Ok(Json(price_of(&state, &symbol).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DepthParams {
    /// Levels per side, 1 to 1000, default 20.
    pub depth: Option<String>,
}

pub async fn book(state: &AppState, spec: &SymbolSpec, depth: usize) -> Result<BookJson, ApiError> {
    let Answer::Depth { seq, depth } = state.engine.query(Query::Depth { symbol: spec.id, depth }).await? else {
        return Err(ApiError::internal("unexpected engine answer", "depth"));
    };
    Ok(BookJson {
        symbol: spec.name.clone(),
        sequence: seq,
        bids: levels(spec, &depth.bids),
        asks: levels(spec, &depth.asks),
    })
}

pub fn parse_depth(depth: Option<&str>, default: usize) -> Result<usize, ApiError> {
    match depth {
        None => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|d| (1..=1000).contains(d))
            .ok_or_else(|| ApiError::invalid("depth", "depth must be 1 to 1000")),
    }
}

#[utoipa::path(get, path = "/api/market-data/orderbook/{symbol}", tag = "market-data",
    params(("symbol" = String, Path), DepthParams),
    responses((status = 200, body = BookJson), (status = 404, body = super::error::ErrorBody)))]
pub async fn orderbook(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    QueryParams(q): QueryParams<DepthParams>,
) -> Result<Json<BookJson>, ApiError> {
    let spec = state.markets.require(&symbol)?.clone();
    let depth = parse_depth(q.depth.as_deref(), 20)?;
    Ok(Json(book(&state, &spec, depth).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TradesParams {
    /// 1 to 1000, default 100.
    pub limit: Option<String>,
}

#[utoipa::path(get, path = "/api/market-data/trades/{symbol}", tag = "market-data",
    params(("symbol" = String, Path), TradesParams),
    responses((status = 200, body = TradeList), (status = 404, body = super::error::ErrorBody)))]
pub async fn trades(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    QueryParams(q): QueryParams<TradesParams>,
) -> Result<Json<TradeList>, ApiError> {
    let spec = state.markets.require(&symbol)?.clone();
    let limit = super::orders::parse_limit(q.limit.as_deref())?;
    let id = spec.id;
    let rows = state.read(move |r| r.trades(id, limit)).await?;
    Ok(Json(TradeList {
        symbol: spec.name.clone(),
        trades: rows.iter().map(|t| TradeJson::render(&spec, t)).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CandleParams {
    /// `1m` (default), `5m` or `1h`.
    pub interval: Option<String>,
    /// 1 to 1000, default 500.
    pub limit: Option<String>,
}

#[utoipa::path(get, path = "/api/market-data/candles/{symbol}", tag = "market-data",
    params(("symbol" = String, Path), CandleParams),
    responses((status = 200, body = CandleList), (status = 400, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
pub async fn candles(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    QueryParams(q): QueryParams<CandleParams>,
) -> Result<Json<CandleList>, ApiError> {
    let spec = state.markets.require(&symbol)?.clone();
    let interval = q.interval.clone().unwrap_or_else(|| "1m".into());
    let seconds = match interval.as_str() {
        "1m" => 60,
        "5m" => 300,
        "1h" => 3600,
        other => return Err(ApiError::invalid("interval", format!("interval must be 1m, 5m or 1h, not '{other}'"))),
    };
    let limit = match q.limit.as_deref() {
        None => 500,
        Some(_) => super::orders::parse_limit(q.limit.as_deref())?,
    };
    let id = spec.id;
    let rows = state.read(move |r| r.candles(id, seconds, limit)).await?;
    Ok(Json(CandleList {
        symbol: spec.name.clone(),
        interval,
        candles: rows.iter().map(|c| CandleJson::render(&spec, c)).collect(),
    }))
}
