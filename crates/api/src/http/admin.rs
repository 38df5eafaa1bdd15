//! Admin endpoints: create users (their API key is shown once), fund them, and read the
//! ledger's totals.
//!
//! Contract: only the admin token; a user name is 1 to 64 characters of letters, digits,
//! `-`, `_` and `.`, unique (409 `USER_EXISTS`); deposits are positive decimal strings
//! exact at the asset's scale. `GET /api/admin/ledger` answers from the engine (in the
//! distributed mode its replica, as every engine query): per asset, the sum over every
//! account and the fee account, the fee account, deposits minus withdrawals, and whether
//! the first equals the last.

use super::error::ApiError;
use super::extract::{Admin, JsonBody};
use super::views::{BalanceJson, CreatedUser};
use super::{created, AppState};
use crate::app::{key_hash, random_token};
use crate::runtime::{Answer, Query};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use qt_core::money::{format_scaled, parse_scaled};
use qt_core::{Amount, RejectReason, UserId};
use qt_engine::{Command, CommandMeta, Event};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeposit {
    /// Asset code, e.g. `USD`.
    pub asset: String,
    /// Positive decimal string, e.g. `"100000"`.
    pub amount: String,
}

#[utoipa::path(post, path = "/api/admin/users", tag = "admin", request_body = NewUser,
    responses((status = 201, body = CreatedUser), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)),
    security(("admin_token" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    _: Admin,
    JsonBody(req, _): JsonBody<NewUser>,
) -> Result<Response, ApiError> {
    let name = req.name.trim().to_string();
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ApiError::invalid("name", "name needs 1 to 64 letters, digits, '-', '_' or '.'"));
    }
    let lookup = name.clone();
    if state.read(move |r| r.user_by_name(&lookup)).await?.is_some() {
        return Err(
            ApiError::new(StatusCode::CONFLICT, "USER_EXISTS", format!("a user named '{name}' exists")).field("name")
        );
    }
    let key = random_token("qtk_").map_err(|e| ApiError::internal("api key", e))?;
    let meta = CommandMeta { user_name: Some(name.clone()), api_key_hash: Some(key_hash(&key)), ..Default::default() };
    let outcome = state
        .engine
        .submit(Command::CreateUser { user: UserId(0), limits: Some((*state.default_limits).clone()) }, Some(meta))
        .await?;
    if let Some(reason) = outcome.events.iter().find_map(|e| match e.event {
        Event::CommandRejected { reason, .. } => Some(reason),
        _ => None,
    }) {
        return Err(ApiError::reject(reason));
    }
    let user = outcome.user_id.ok_or_else(|| ApiError::internal("create user", "no user id"))?;
    Ok(created(CreatedUser { user_id: user.0.to_string(), name, api_key: key }))
}

#[utoipa::path(post, path = "/api/admin/users/{id}/deposits", tag = "admin", request_body = NewDeposit,
    params(("id" = String, Path)),
    responses((status = 201, description = "The asset's balance after the deposit", body = BalanceJson),
        (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)),
    security(("admin_token" = [])))]
pub async fn deposit(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
    JsonBody(req, _): JsonBody<NewDeposit>,
) -> Result<Response, ApiError> {
    let user = id
        .parse::<u64>()
        .ok()
        .map(UserId)
        .ok_or_else(|| ApiError::not_found("UNKNOWN_USER", format!("no user {id}")).field("id"))?;
    let asset = state
        .markets
        .asset_by_code(&req.asset)
        .ok_or_else(|| ApiError::invalid("asset", format!("unknown asset '{}'", req.asset)))?
        .clone();
    let units = parse_scaled(&req.amount, asset.scale).map_err(|e| {
        ApiError::invalid("amount", format!("amount is not a valid decimal at {} places: {e}", asset.scale))
    })?;
    let amount = i64::try_from(units)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| ApiError::invalid("amount", "amount must be positive and below 9.2e10 units"))?;
    let outcome = state.engine.submit(Command::Deposit { user, asset: asset.id, amount: Amount(amount) }, None).await?;
    for e in &outcome.events {
        match &e.event {
            Event::CommandRejected { reason: RejectReason::UnknownUser, .. } => {
                return Err(ApiError::not_found("UNKNOWN_USER", format!("no user {id}")).field("id"))
            }
            Event::CommandRejected { reason, .. } => return Err(ApiError::reject(*reason)),
            Event::BalanceChanged { asset: a, available, reserved, user: u } if *a == asset.id && *u == user => {
                let row = qt_store_sqlite::BalanceRow {
                    user_id: user,
                    asset_id: *a,
                    available: available.0,
                    reserved: reserved.0,
                };
                return Ok(created(BalanceJson::render(&state.markets, &row)));
            }
            _ => {}
        }
    }
    Err(ApiError::internal("deposit", "no balance event"))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerAsset {
    pub asset: String,
    /// Every account's available + reserved, plus the fee account.
    pub total: String,
    /// The fee account (fees net of maker rebates).
    pub fees: String,
    /// Deposits minus withdrawals.
    pub net_deposits: String,
    /// `total` equals `net_deposits`.
    pub conserves: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerTotals {
    pub assets: Vec<LedgerAsset>,
}

#[utoipa::path(get, path = "/api/admin/ledger", tag = "admin",
    responses((status = 200, description = "The ledger's totals per asset", body = LedgerTotals),
        (status = 401, description = "No token", body = super::error::ErrorBody),
        (status = 403, description = "Not the admin token", body = super::error::ErrorBody)),
    security(("admin_token" = [])))]
pub async fn ledger(State(state): State<AppState>, _: Admin) -> Result<Json<LedgerTotals>, ApiError> {
    let Answer::Ledger { totals, fees, net_flows } = state.engine.query(Query::Ledger).await? else {
        return Err(ApiError::internal("unexpected engine answer", "ledger"));
    };
    let assets = state
        .markets
        .assets
        .iter()
        .map(|a| {
            let i = a.id.0 as usize;
            let (total, net) = (totals.get(i).copied().unwrap_or(0), net_flows.get(i).copied().unwrap_or(0));
            LedgerAsset {
                asset: a.code.clone(),
                total: format_scaled(total, a.scale, 2),
                fees: format_scaled(i128::from(fees.get(i).copied().unwrap_or(0)), a.scale, 2),
                net_deposits: format_scaled(net, a.scale, 2),
                conserves: total == net,
            }
        })
        .collect();
    Ok(Json(LedgerTotals { assets }))
}
