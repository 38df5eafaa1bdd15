//! The caller's account: fills, balances, positions, risk limits and the pre-trade dry run.
//!
//! Contract: every endpoint answers only about the authenticated user; positions are
//! marked at the symbol's last trade price.

use super::error::ApiError;
use super::extract::{AuthUser, JsonBody, QueryParams};
use super::orders::{parse_limit, to_new_order, PlaceOrder};
use super::views::{
    quote_amount, BalanceJson, Balances, ExecutionJson, ExecutionList, LimitsJson, PositionJson, Positions,
    ValidateJson,
};
use super::AppState;
use crate::runtime::{Answer, Query, Top};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExecutionParams {
    pub symbol: Option<String>,
    /// 1 to 1000, default 100.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/executions", tag = "account", params(ExecutionParams),
    responses((status = 200, body = ExecutionList), (status = 400, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn executions(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    QueryParams(q): QueryParams<ExecutionParams>,
) -> Result<Json<ExecutionList>, ApiError> {
    let symbol = match &q.symbol {
        Some(s) => Some(state.markets.require(s)?.id),
        None => None,
    };
    let limit = parse_limit(q.limit.as_deref())?;
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| {
            c.split_once('_')
                .and_then(|(ts, id)| Some((ts.parse::<i64>().ok()?, id.parse::<i64>().ok()?)))
                .ok_or_else(|| ApiError::invalid("cursor", "cursor is not one this server gave out"))
        })
        .transpose()?;
    let (rows, next) = state.read(move |r| r.executions(user, symbol, limit, cursor)).await?;
    Ok(Json(ExecutionList {
        executions: rows.iter().map(|e| ExecutionJson::render(&state.markets, e)).collect(),
        next_cursor: next.map(|(ts, id)| format!("{ts}_{id}")),
    }))
}

#[utoipa::path(get, path = "/api/accounts/balances", tag = "account",
    responses((status = 200, body = Balances), (status = 401, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn balances(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<Json<Balances>, ApiError> {
    let rows = state.read(move |r| r.balances(user)).await?;
    Ok(Json(Balances { balances: rows.iter().map(|b| BalanceJson::render(&state.markets, b)).collect() }))
}

/// Last trade price of every symbol, from the engine.
pub async fn tops(state: &AppState) -> Result<Vec<Top>, ApiError> {
    match state.engine.query(Query::Tops).await? {
        Answer::Tops(t) => Ok(t),
        other => Err(ApiError::internal("unexpected engine answer", format!("{other:?}"))),
    }
}

#[utoipa::path(get, path = "/api/risk/positions", tag = "risk",
    responses((status = 200, body = Positions), (status = 401, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn positions(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<Json<Positions>, ApiError> {
    let rows = state.read(move |r| r.positions(user)).await?;
    let tops = tops(&state).await?;
    let positions = rows
        .iter()
        .filter(|p| p.qty != 0 || p.realized != 0)
        .filter_map(|p| {
            let spec = state.markets.symbol(p.symbol_id)?;
            let mark = tops.iter().find(|t| t.symbol == p.symbol_id).and_then(|t| t.last).map(|m| m.0);
            Some(PositionJson::render(spec, p, mark))
        })
        .collect();
    Ok(Json(Positions { positions }))
}

#[utoipa::path(get, path = "/api/risk/limits", tag = "risk",
    responses((status = 200, body = LimitsJson), (status = 401, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn limits(State(state): State<AppState>, AuthUser(user): AuthUser) -> Result<Json<LimitsJson>, ApiError> {
    let Answer::Limits { limits, global_kill } = state.engine.query(Query::Limits { user }).await? else {
        return Err(ApiError::internal("unexpected engine answer", "limits"));
    };
    let limits = limits.unwrap_or_default();
    let markets = &state.markets;
    // Notional and loss limits are in the quote asset of the first market (one quote
    // currency per venue).
    let quote_spec = markets.symbols.first();
    let money = |a: qt_core::Amount| quote_spec.map_or_else(|| a.0.to_string(), |s| quote_amount(s, i128::from(a.0)));
    let per_symbol = |m: &std::collections::BTreeMap<qt_core::SymbolId, qt_core::Qty>| {
        m.iter().filter_map(|(id, q)| markets.symbol(*id).map(|s| (s.name.clone(), s.format_qty(*q)))).collect()
    };
    Ok(Json(LimitsJson {
        max_order_quantity: per_symbol(&limits.max_order_qty),
        max_order_notional: limits.max_order_notional.map(money),
        max_position: per_symbol(&limits.max_position),
        daily_loss_limit: limits.daily_loss_limit.map(money),
        max_concentration_bps: limits.max_concentration_bps,
        max_orders_per_second: limits.max_orders_per_second,
        kill_switch: limits.kill_switch,
        global_kill_switch: global_kill,
    }))
}

#[utoipa::path(post, path = "/api/risk/validate", tag = "risk", request_body = PlaceOrder,
    responses((status = 200, description = "ok true, or ok false with the error the order would get", body = ValidateJson),
        (status = 400, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn validate(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    JsonBody(req, _): JsonBody<PlaceOrder>,
) -> Result<Json<ValidateJson>, ApiError> {
    let order = match to_new_order(&state, user, &req) {
        Ok(o) => o,
        Err(e) => return Ok(Json(ValidateJson { ok: false, error: Some(e.body().error) })),
    };
    let Answer::Check(result) = state.engine.query(Query::CheckOrder { order: Box::new(order) }).await? else {
        return Err(ApiError::internal("unexpected engine answer", "check"));
    };
    Ok(Json(match result {
        Ok(()) => ValidateJson { ok: true, error: None },
        Err(reason) => ValidateJson { ok: false, error: Some(ApiError::reject(reason).body().error) },
    }))
}
