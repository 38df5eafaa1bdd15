//! Admin endpoints: create users (their API key is shown once) and fund them.
//!
//! Contract: only the admin token; a user name is 1 to 64 characters of letters, digits,
//! `-`, `_` and `.`, unique (409 `USER_EXISTS`); deposits are positive decimal strings
//! exact at the asset's scale.

use super::error::ApiError;
use super::extract::{Admin, JsonBody};
use super::views::{BalanceJson, CreatedUser};
use super::{created, AppState};
use crate::app::{key_hash, random_token};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use qt_core::money::parse_scaled;
use qt_core::{Amount, RejectReason, UserId};
use qt_engine::{Command, CommandMeta, Event};
use serde::Deserialize;
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
