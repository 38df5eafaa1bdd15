//! Request extractors: authenticated user (with its rate limit), admin, JSON bodies and
//! query strings that fail with the API's error shape naming the field.
//!
//! Contract:
//! - [`AuthUser`] accepts only `Authorization: Bearer <api key>` of an existing user; the
//!   key is hashed (SHA-256) before any lookup, and every accepted request spends one
//!   token of that user's bucket: an empty bucket is 429 with `Retry-After`. The bucket is
//!   shared by every intake process when `AppState.shared_rate` is set (distributed mode).
//! - [`Admin`] compares the token's hash in constant time.
//! - [`JsonBody`] reports malformed JSON as 400 `INVALID_JSON` and a wrongly typed or
//!   unknown field as 400 `INVALID_FIELD` with the field's path.

use super::error::ApiError;
use super::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use governor::clock::{Clock, DefaultClock};
use qt_core::UserId;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The caller, authenticated by API key.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser(pub UserId);

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Looks an API key up (cache first, then the read model).
pub async fn user_for_key(state: &AppState, key: &str) -> Result<Option<UserId>, ApiError> {
    let hash = crate::app::key_hash(key);
    if let Some(user) = state.key_cache.lock().ok().and_then(|c| c.get(&hash).copied()) {
        return Ok(Some(user));
    }
    let lookup = hash.clone();
    let row = state.read(move |r| r.user_by_key_hash(&lookup)).await?;
    if let Some(row) = &row {
        if let Ok(mut cache) = state.key_cache.lock() {
            cache.insert(hash, row.user_id);
        }
    }
    Ok(row.map(|r| r.user_id))
}

/// Spends one request of the user's rate; 429 with `Retry-After` when none is left.
pub fn check_rate(state: &AppState, user: UserId) -> Result<(), ApiError> {
    match state.limiter.check_key(&user.0) {
        Ok(()) => Ok(()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            metrics::counter!("qt_rate_limited_total").increment(1);
            Err(ApiError {
                retry_after: Some(wait.as_secs().max(1)),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "too many requests; slow down")
            })
        }
    }
}

/// [`check_rate`] against the budget shared by every intake process when there is one;
/// the in-process limiter when it is unreachable (a Redis outage must not stop trading).
pub async fn check_shared_rate(state: &AppState, user: UserId) -> Result<(), ApiError> {
    let Some(shared) = &state.shared_rate else { return check_rate(state, user) };
    match shared.check(user).await {
        Ok(None) => Ok(()),
        Ok(Some(wait)) => {
            metrics::counter!("qt_rate_limited_total").increment(1);
            Err(ApiError {
                retry_after: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "too many requests; slow down")
            })
        }
        Err(cause) => {
            metrics::counter!("qt_rate_limit_fallbacks_total").increment(1);
            tracing::warn!(%cause, "shared rate limit unavailable; using the local one");
            check_rate(state, user)
        }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let key = bearer(parts).ok_or_else(|| ApiError::unauthorized("Authorization: Bearer <api key> is required"))?;
        let user = user_for_key(state, key).await?.ok_or_else(|| ApiError::unauthorized("unknown API key"))?;
        check_shared_rate(state, user).await?;
        Ok(AuthUser(user))
    }
}

/// The caller presented the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token =
            bearer(parts).ok_or_else(|| ApiError::unauthorized("Authorization: Bearer <admin token> is required"))?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if bool::from(digest.ct_eq(&*state.admin_token_hash)) {
            Ok(Admin)
        } else {
            Err(ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", "not the admin token"))
        }
    }
}

/// A JSON body with field-level errors.
#[derive(Debug)]
pub struct JsonBody<T>(pub T, pub axum::body::Bytes);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.ends_with("+json"));
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "send the body as Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE", "the request body is too large")
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "INVALID_BODY", e.body_text())
            }
        })?;
        let value = parse_json(&bytes)?;
        Ok(JsonBody(value, bytes))
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        use serde_json::error::Category;
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::new(StatusCode::BAD_REQUEST, "INVALID_JSON", format!("malformed JSON: {inner}"))
            }
            Category::Data => {
                let msg = inner.to_string();
                // serde names a missing field in its message, not in the path.
                if let Some(field) = msg.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
                    ApiError::missing(field)
                } else if path == "." || path.is_empty() {
                    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_JSON", format!("unexpected JSON: {msg}"))
                } else {
                    ApiError::invalid(&path, msg)
                }
            }
        }
    })
}

/// A query string with field-level errors.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded_de(query);
        de.map(QueryParams)
    }
}

fn serde_urlencoded_de<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    // Query values are all taken as strings and validated by the handlers, so the only
    // failure here is an unknown parameter or a malformed encoding.
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::invalid("query", format!("malformed query string: {e}")))?;
    let map: serde_json::Map<String, serde_json::Value> =
        pairs.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
    serde_path_to_error::deserialize(serde_json::Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        ApiError::invalid(if path == "." { "query" } else { &path }, msg)
    })
}
