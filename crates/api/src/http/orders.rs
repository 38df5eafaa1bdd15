//! Order endpoints: place (idempotent), get, list, cancel, mass cancel, amend.
//!
//! Contract:
//! - `POST /api/orders` needs `Idempotency-Key`. The first request with a key is
//!   journaled with the key and the hash of its (canonicalised) body; the read model keeps
//!   the answer for 24 hours, across restarts. The same key and body replay that answer
//!   (status and body, `Idempotent-Replayed: true`); the same key with another body is
//!   409 `IDEMPOTENCY_CONFLICT`; the same key while the first is in flight is 409
//!   `IDEMPOTENCY_IN_PROGRESS`.
//! - Everything the client sent is checked before the engine sees it: symbol, side, type,
//!   time in force, grids (`OFF_TICK`, `OFF_LOT`), positivity; the engine then applies the
//!   market rules (band, notional, risk, funds) and its reason becomes the error code.
//! - Another user's order id answers 404 exactly like an unknown one.

use super::error::ApiError;
use super::extract::{AuthUser, JsonBody, QueryParams};
use super::views::{parse_rfc3339, MassCancelled, OrderJson, OrderList};
use super::{AppState, REQUEST_ID};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use qt_core::{GridError, NewOrder, OrderId, OrderStatus, OrderType, Side, StpMode, SymbolSpec, TimeInForce, UserId};
use qt_engine::{Command, CommandMeta, Event};
use qt_store_sqlite::{OrderFilter, PlaceResponse, StatusFilter};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// A new order. Prices and quantities are decimal strings on the symbol's grid.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    /// e.g. `BTC-USD`.
    pub symbol: String,
    /// `BUY` or `SELL`.
    pub side: String,
    /// `LIMIT`, `MARKET`, `STOP` (stop-market) or `STOP_LIMIT`.
    #[serde(rename = "type")]
    pub order_type: String,
    pub quantity: String,
    /// Required for `LIMIT` and `STOP_LIMIT`, refused for the others.
    #[serde(default)]
    pub price: Option<String>,
    /// Required for `STOP` and `STOP_LIMIT`.
    #[serde(default)]
    pub stop_price: Option<String>,
    /// `GTC` (default for limit orders), `IOC` (default for market and stop orders) or `FOK`.
    #[serde(default)]
    pub time_in_force: Option<String>,
    #[serde(default)]
    pub post_only: Option<bool>,
    /// Up to 64 printable ASCII characters, echoed back.
    #[serde(default)]
    pub client_order_id: Option<String>,
    /// Self-trade prevention: `CANCEL_NEWEST` (default), `CANCEL_OLDEST` or `CANCEL_BOTH`.
    #[serde(default)]
    pub stp_mode: Option<String>,
}

/// New price and/or new total quantity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendOrder {
    #[serde(default)]
    pub price: Option<String>,
    #[serde(default)]
    pub quantity: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    pub symbol: Option<String>,
    /// A status, or `OPEN` for every status that is not final.
    pub status: Option<String>,
    /// RFC 3339; orders created at or after.
    pub from: Option<String>,
    /// RFC 3339; orders created before.
    pub to: Option<String>,
    /// 1 to 500, default 100.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MassCancelParams {
    /// Only this symbol's orders; all of them when absent.
    pub symbol: Option<String>,
}

fn grid_error(field: &str, e: GridError) -> ApiError {
    match e {
        GridError::OffTick(tick) => {
            ApiError::bad_request("OFF_TICK", field, format!("{field} must be a multiple of the tick size {tick}"))
        }
        GridError::OffLot(lot) => {
            ApiError::bad_request("OFF_LOT", field, format!("{field} must be a multiple of the lot size {lot}"))
        }
        GridError::NotPositive => ApiError::invalid(field, format!("{field} must be positive")),
        GridError::Decimal(d) => ApiError::invalid(field, format!("{field} is not a valid decimal: {d}")),
    }
}

pub fn parse_side(s: &str) -> Result<Side, ApiError> {
    match s.to_ascii_uppercase().as_str() {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        _ => Err(ApiError::invalid("side", format!("side must be BUY or SELL, not '{s}'"))),
    }
}

/// Checks a place request against the symbol's grid and builds the engine order (id 0:
/// the engine thread assigns it).
pub fn to_new_order(state: &AppState, user: UserId, req: &PlaceOrder) -> Result<NewOrder, ApiError> {
    let spec: &SymbolSpec = state
        .markets
        .symbol_by_name(&req.symbol)
        .ok_or_else(|| ApiError::bad_request("UNKNOWN_SYMBOL", "symbol", format!("unknown symbol '{}'", req.symbol)))?;
    let side = parse_side(&req.side)?;
    let order_type = match req.order_type.to_ascii_uppercase().as_str() {
        "LIMIT" => OrderType::Limit,
        "MARKET" => OrderType::Market,
        "STOP" | "STOP_MARKET" => OrderType::Stop,
        "STOP_LIMIT" => OrderType::StopLimit,
        _ => {
            return Err(ApiError::invalid(
                "type",
                format!("type must be LIMIT, MARKET, STOP or STOP_LIMIT, not '{}'", req.order_type),
            ))
        }
    };
    let tif = match req.time_in_force.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None if matches!(order_type, OrderType::Market | OrderType::Stop) => TimeInForce::Ioc,
        None | Some("GTC") => TimeInForce::Gtc,
        Some("IOC") => TimeInForce::Ioc,
        Some("FOK") => TimeInForce::Fok,
        Some(other) => {
            return Err(ApiError::invalid(
                "time_in_force",
                format!("time_in_force must be GTC, IOC or FOK, not '{other}'"),
            ))
        }
    };
    let quantity = spec.parse_qty(&req.quantity).map_err(|e| grid_error("quantity", e))?;
    let price = match (&req.price, order_type.has_limit_price()) {
        (Some(p), true) => Some(spec.parse_price(p).map_err(|e| grid_error("price", e))?),
        (None, true) => return Err(ApiError::missing("price")),
        (Some(_), false) => {
            return Err(ApiError::invalid("price", format!("price is not allowed for {} orders", order_type.as_str())))
        }
        (None, false) => None,
    };
    let stop_price = match (&req.stop_price, order_type.is_stop()) {
        (Some(p), true) => Some(spec.parse_price(p).map_err(|e| grid_error("stop_price", e))?),
        (None, true) => return Err(ApiError::missing("stop_price")),
        (Some(_), false) => {
            return Err(ApiError::invalid(
                "stop_price",
                format!("stop_price is only allowed for STOP and STOP_LIMIT orders, not {}", order_type.as_str()),
            ))
        }
        (None, false) => None,
    };
    if let Some(id) = &req.client_order_id {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::invalid(
                "client_order_id",
                "client_order_id needs 1 to 64 printable ASCII characters",
            ));
        }
    }
    let stp = match req.stp_mode.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("CANCEL_NEWEST") => StpMode::CancelNewest,
        Some("CANCEL_OLDEST") => StpMode::CancelOldest,
        Some("CANCEL_BOTH") => StpMode::CancelBoth,
        Some(other) => {
            return Err(ApiError::invalid(
                "stp_mode",
                format!("stp_mode must be CANCEL_NEWEST, CANCEL_OLDEST or CANCEL_BOTH, not '{other}'"),
            ))
        }
    };
    Ok(NewOrder {
        order_id: OrderId(0),
        user,
        symbol: spec.id,
        side,
        order_type,
        tif,
        price,
        stop_price,
        qty: quantity,
        post_only: req.post_only.unwrap_or(false),
        stp,
        client_order_id: req.client_order_id.clone(),
    })
}

/// SHA-256 of the body re-serialised with sorted keys: the same order written with other
/// whitespace or key order is the same request.
fn request_hash(body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body).map(|v| v.to_string()).unwrap_or_default();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers.get(IDEMPOTENCY_KEY).ok_or_else(|| {
        ApiError::bad_request("MISSING_IDEMPOTENCY_KEY", "Idempotency-Key", "the Idempotency-Key header is required")
    })?;
    let key =
        value.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(str::to_string).ok_or_else(|| {
        ApiError::bad_request(
            "INVALID_IDEMPOTENCY_KEY",
            "Idempotency-Key",
            "Idempotency-Key needs 1 to 128 printable ASCII characters",
        )
    })
}

/// Removes the in-flight mark of a (user, key) when the request ends, however it ends.
struct InFlight {
    state: AppState,
    entry: (u64, String),
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut set) = self.state.inflight.lock() {
            set.remove(&self.entry);
        }
    }
}

/// Renders a stored place answer: 201 with the order, or the error it got.
fn replay(state: &AppState, row: &qt_store_sqlite::IdempotencyRow, replayed: bool) -> Result<Response, ApiError> {
    Ok(answer(state, row.http_status, &row.response()?, replayed))
}

/// The response to a place: the stored order and fills, or the error of its refusal with
/// the status the first answer had.
fn answer(state: &AppState, http_status: u16, stored: &PlaceResponse, replayed: bool) -> Response {
    let mut response = if let (OrderStatus::Rejected, Some(reason)) = (stored.order.status, stored.order.reject_reason)
    {
        let mut e = ApiError::reject(reason);
        e.status = StatusCode::from_u16(http_status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
        e.into_response()
    } else {
        let body = OrderJson::render(&state.markets, &stored.order, Some(&stored.fills));
        (StatusCode::CREATED, Json(body)).into_response()
    };
    if replayed {
        response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// 409 when a used key comes back with another body.
fn same_body(row: &qt_store_sqlite::IdempotencyRow, hash: &str) -> Result<(), ApiError> {
    if row.request_hash.as_deref() == Some(hash) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "IDEMPOTENCY_CONFLICT",
        "this Idempotency-Key was used with a different request body",
    )
    .field("Idempotency-Key"))
}

fn count_outcome(stored: &PlaceResponse) {
    let outcome = match stored.order.reject_reason {
        Some(reason) => format!("rejected_{}", reason.code().to_ascii_lowercase()),
        None => stored.order.status.as_str().to_ascii_lowercase(),
    };
    metrics::counter!("qt_orders_total", "outcome" => outcome).increment(1);
}

#[utoipa::path(post, path = "/api/orders", tag = "orders", request_body = PlaceOrder,
    params(("Idempotency-Key" = String, Header, description = "Required; same key and body replay the answer for 24 h")),
    responses(
        (status = 201, description = "Placed (status ACCEPTED, PARTIALLY_FILLED, FILLED, SETTLED or EXPIRED)", body = OrderJson),
        (status = 400, description = "Invalid field", body = super::error::ErrorBody),
        (status = 401, description = "No or unknown API key", body = super::error::ErrorBody),
        (status = 409, description = "Idempotency key reused with another body", body = super::error::ErrorBody),
        (status = 422, description = "Refused by risk or funds", body = super::error::ErrorBody),
        (status = 429, description = "Rate limited", body = super::error::ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn place(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
    JsonBody(req, body): JsonBody<PlaceOrder>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let order = to_new_order(&state, user, &req)?;
    let hash = request_hash(&body);

    // Only needed where the engine does not check keys itself before journaling.
    if !state.engine.checks_idempotency_keys() {
        let lookup = key.clone();
        if let Some(row) = state.read(move |r| r.idempotency(user, &lookup)).await? {
            same_body(&row, &hash)?;
            return replay(&state, &row, true);
        }
    }
    let entry = (user.0, key.clone());
    let inserted = state.inflight.lock().map(|mut s| s.insert(entry.clone())).unwrap_or(false);
    if !inserted {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "IDEMPOTENCY_IN_PROGRESS",
            "a request with this Idempotency-Key is being processed",
        )
        .field("Idempotency-Key"));
    }
    let _guard = InFlight { state: state.clone(), entry };

    let meta = CommandMeta {
        idempotency_key: Some(key.clone()),
        request_hash: Some(hash.clone()),
        request_id: headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_string),
        ..CommandMeta::default()
    };
    let outcome = state.engine.submit(Command::Place(order), Some(meta)).await?;
    if let Some(row) = &outcome.replayed {
        same_body(row, &hash)?;
        return replay(&state, row, true);
    }
    if let Some(placed) = &outcome.placed {
        count_outcome(&placed.response);
        return Ok(answer(&state, placed.http_status, &placed.response, false));
    }
    match state.read(move |r| r.idempotency(user, &key)).await? {
        Some(row) => {
            // Not this command's answer when another request with the key got in first.
            same_body(&row, &hash)?;
            count_outcome(&row.response()?);
            replay(&state, &row, false)
        }
        None => {
            // The read model failed to record the answer (the engine reports degraded);
            // answer from the events, which are authoritative.
            for e in &outcome.events {
                if let Event::OrderRejected { reason, .. } = e.event {
                    return Err(ApiError::reject(reason));
                }
            }
            Err(ApiError::internal("placed order missing from the read model", format!("seq {}", outcome.seq)))
        }
    }
}

fn parse_order_id(id: &str) -> Result<OrderId, ApiError> {
    id.parse::<u64>()
        .ok()
        .filter(|v| *v > 0)
        .map(OrderId)
        .ok_or_else(|| ApiError::not_found("ORDER_NOT_FOUND", format!("no order {id}")).field("id"))
}

/// The order with its fills, or 404 when it does not exist or is someone else's.
async fn load(state: &AppState, user: UserId, id: OrderId) -> Result<OrderJson, ApiError> {
    let (order, fills) = state
        .read(move |r| {
            let Some(order) = r.order(user, id)? else { return Ok((None, Vec::new())) };
            let fills = r.order_fills(id)?;
            Ok((Some(order), fills))
        })
        .await?;
    let order =
        order.ok_or_else(|| ApiError::not_found("ORDER_NOT_FOUND", format!("no order {}", id.0)).field("id"))?;
    Ok(OrderJson::render(&state.markets, &order, Some(&fills)))
}

#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders", params(("id" = String, Path)),
    responses((status = 200, body = OrderJson), (status = 404, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<OrderJson>, ApiError> {
    let id = parse_order_id(&id)?;
    Ok(Json(load(&state, user, id).await?))
}

fn parse_cursor(s: &str) -> Option<(i64, u64)> {
    let (ts, id) = s.split_once('_')?;
    Some((ts.parse().ok()?, id.parse().ok()?))
}

pub fn parse_limit(limit: Option<&str>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(100),
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=qt_store_sqlite::MAX_PAGE).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", format!("limit must be 1 to {}", qt_store_sqlite::MAX_PAGE))),
    }
}

fn parse_status(s: &str) -> Result<StatusFilter, ApiError> {
    use OrderStatus as S;
    let status = match s.to_ascii_uppercase().as_str() {
        "OPEN" => return Ok(StatusFilter::Open),
        "NEW" => S::New,
        "ACCEPTED" => S::Accepted,
        "PARTIALLY_FILLED" => S::PartiallyFilled,
        "FILLED" => S::Filled,
        "SETTLED" => S::Settled,
        "REJECTED" => S::Rejected,
        "CANCELLED" | "CANCELED" => S::Cancelled,
        "EXPIRED" => S::Expired,
        _ => return Err(ApiError::invalid("status", format!("unknown status '{s}'"))),
    };
    Ok(StatusFilter::One(status))
}

#[utoipa::path(get, path = "/api/orders", tag = "orders", params(ListParams),
    responses((status = 200, body = OrderList), (status = 400, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    QueryParams(q): QueryParams<ListParams>,
) -> Result<Json<OrderList>, ApiError> {
    let symbol = match &q.symbol {
        Some(s) => Some(state.markets.require(s)?.id),
        None => None,
    };
    let time = |field: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
        v.as_deref()
            .map(|s| {
                parse_rfc3339(s).ok_or_else(|| ApiError::invalid(field, format!("{field} must be an RFC 3339 time")))
            })
            .transpose()
    };
    let filter = OrderFilter {
        symbol,
        status: q.status.as_deref().map(parse_status).transpose()?,
        from_ts: time("from", &q.from)?,
        to_ts: time("to", &q.to)?,
        limit: parse_limit(q.limit.as_deref())?,
        cursor: q
            .cursor
            .as_deref()
            .map(|c| {
                parse_cursor(c).ok_or_else(|| ApiError::invalid("cursor", "cursor is not one this server gave out"))
            })
            .transpose()?,
    };
    let (orders, next) = state.read(move |r| r.orders(user, &filter)).await?;
    Ok(Json(OrderList {
        orders: orders.iter().map(|o| OrderJson::render(&state.markets, o, None)).collect(),
        next_cursor: next.map(|(ts, id)| format!("{ts}_{id}")),
    }))
}

/// 409 `ORDER_NOT_OPEN` for an order that is filled, cancelled, expired or rejected.
fn require_open(order: &OrderJson) -> Result<(), ApiError> {
    match order.status.as_str() {
        "NEW" | "ACCEPTED" | "PARTIALLY_FILLED" => Ok(()),
        status => Err(ApiError::reject(qt_core::RejectReason::OrderNotOpen)
            .field("id")
            .with_message(format!("order {} is {status}", order.order_id))),
    }
}

/// The engine forgets orders once they end: for an order the read model showed open a
/// moment ago, "not found" means it ended in between.
fn finished_meanwhile(e: ApiError) -> ApiError {
    if e.code == "ORDER_NOT_FOUND" {
        ApiError::reject(qt_core::RejectReason::OrderNotOpen)
            .with_message("the order ended before the request reached it")
    } else {
        e
    }
}

/// The reason of a refused cancel or amend, as the error it is.
fn refused(events: &[qt_engine::EventEnvelope]) -> Option<ApiError> {
    events.iter().find_map(|e| match e.event {
        Event::CommandRejected { reason, .. } | Event::OrderRejected { reason, .. } => Some(ApiError::reject(reason)),
        _ => None,
    })
}

#[utoipa::path(delete, path = "/api/orders/{id}", tag = "orders", params(("id" = String, Path)),
    responses((status = 200, description = "Cancelled", body = OrderJson), (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "The order is no longer open", body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<OrderJson>, ApiError> {
    let id = parse_order_id(&id)?;
    // Straight to the engine, which refuses an id that is not this user's open order;
    // the read model is asked only then, to tell "no such order" from "no longer open".
    let outcome = state.engine.submit(Command::Cancel { user, order_id: id }, None).await?;
    if let Some(e) = refused(&outcome.events) {
        require_open(&load(&state, user, id).await?)?;
        return Err(finished_meanwhile(e));
    }
    after_change(&state, user, id, outcome).await
}

/// The order after a cancel or amend the engine carried out: as the engine thread read it
/// back, or from the read model when it could not.
async fn after_change(
    state: &AppState,
    user: UserId,
    id: OrderId,
    outcome: crate::runtime::Outcome,
) -> Result<Json<OrderJson>, ApiError> {
    match outcome.order {
        Some((order, fills)) if order.user_id == user => {
            Ok(Json(OrderJson::render(&state.markets, &order, Some(&fills))))
        }
        _ => Ok(Json(load(state, user, id).await?)),
    }
}

#[utoipa::path(delete, path = "/api/orders", tag = "orders", params(MassCancelParams),
    responses((status = 200, body = MassCancelled), (status = 404, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn mass_cancel(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    QueryParams(q): QueryParams<MassCancelParams>,
) -> Result<Json<MassCancelled>, ApiError> {
    let symbol = match &q.symbol {
        Some(s) => Some(state.markets.require(s)?.id),
        None => None,
    };
    let outcome = state.engine.submit(Command::MassCancel { user, symbol }, None).await?;
    if let Some(e) = refused(&outcome.events) {
        return Err(e);
    }
    let cancelled = outcome
        .events
        .iter()
        .filter_map(|e| match e.event {
            Event::OrderCancelled { order_id, .. } => Some(order_id.0.to_string()),
            _ => None,
        })
        .collect();
    Ok(Json(MassCancelled { cancelled }))
}

#[utoipa::path(patch, path = "/api/orders/{id}", tag = "orders", params(("id" = String, Path)), request_body = AmendOrder,
    responses((status = 200, body = OrderJson), (status = 400, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn amend(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    JsonBody(req, _): JsonBody<AmendOrder>,
) -> Result<Json<OrderJson>, ApiError> {
    let id = parse_order_id(&id)?;
    let current = load(&state, user, id).await?;
    require_open(&current)?;
    let spec = state.markets.require(&current.symbol)?;
    if req.price.is_none() && req.quantity.is_none() {
        return Err(ApiError::missing("price").field("price"))
            .map_err(|e| ApiError { message: "give a new price, a new quantity or both".into(), ..e });
    }
    let price = req.price.as_deref().map(|p| spec.parse_price(p).map_err(|e| grid_error("price", e))).transpose()?;
    let qty = req.quantity.as_deref().map(|q| spec.parse_qty(q).map_err(|e| grid_error("quantity", e))).transpose()?;
    let outcome = state.engine.submit(Command::Amend { user, order_id: id, price, qty }, None).await?;
    if let Some(e) = refused(&outcome.events) {
        return Err(finished_meanwhile(e));
    }
    after_change(&state, user, id, outcome).await
}

impl IntoResponse for OrderJson {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}
