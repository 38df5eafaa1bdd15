//! The one error shape of the API: `{"error":{"code","message","field"}}` with the right
//! status.
//!
//! Contract:
//! - Every handler returns [`ApiError`] for anything that is not a success; bad input is
//!   always a 4xx naming the offending field when there is one.
//! - A 5xx carries a generic message; the cause goes to the log (with the request id),
//!   never to the client.
//! - Engine reject reasons map to stable codes through [`ApiError::reject`].

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use qt_core::RejectReason;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

/// Body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `OFF_TICK`.
    pub code: String,
    pub message: String,
    /// The request field at fault, when there is one.
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None, retry_after: None }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    pub fn bad_request(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message).field(field)
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::bad_request("INVALID_FIELD", field, message)
    }

    pub fn missing(field: &str) -> Self {
        ApiError::bad_request("MISSING_FIELD", field, format!("{field} is required"))
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    pub fn unknown_symbol(symbol: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "UNKNOWN_SYMBOL", format!("unknown symbol {symbol}")).field("symbol")
    }

    /// Something on our side failed: logged in full, answered in general.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error; see the server log")
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError { retry_after: Some(1), ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message) }
    }

    /// An engine reject, with the status the read model stores for replays
    /// ([`qt_store_sqlite::reject_http_status`]: shape 400, business rules 422, velocity
    /// 429, kill switch 403), except that acting on an order that is no longer open is
    /// 409.
    pub fn reject(reason: RejectReason) -> Self {
        let status = match reason {
            RejectReason::OrderNotOpen | RejectReason::AmendNoChange => StatusCode::CONFLICT,
            _ => StatusCode::from_u16(qt_store_sqlite::reject_http_status(reason))
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
        };
        let mut e = ApiError::new(status, reason.code(), reason.to_string());
        e.field = reason.field().map(str::to_string);
        if reason == RejectReason::Velocity {
            e.retry_after = Some(1);
        }
        e
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                field: self.field.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The body was not read to its end, so the connection cannot carry another
            // request; without saying so, a client reuses it and its next request fails.
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

impl From<crate::runtime::EngineError> for ApiError {
    fn from(e: crate::runtime::EngineError) -> Self {
        use crate::runtime::EngineError as E;
        match e {
            E::Busy => ApiError::unavailable("ENGINE_BUSY", "the engine queue is full; retry shortly"),
            E::Stopped => ApiError::unavailable("SHUTTING_DOWN", "the server is shutting down"),
            E::Journal(cause) => {
                tracing::error!(%cause, "journal write failed");
                ApiError::unavailable("JOURNAL_UNAVAILABLE", "the command could not be made durable; nothing was done")
            }
            E::Unavailable(cause) => {
                tracing::error!(%cause, "command bus unavailable");
                ApiError::unavailable("BUS_UNAVAILABLE", "the command could not be made durable; nothing was done")
            }
            E::Timeout => ApiError::unavailable(
                "OUTCOME_UNKNOWN",
                "the command was accepted by the bus but its outcome did not arrive in time; retry with the same Idempotency-Key",
            ),
            E::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "IDEMPOTENCY_IN_PROGRESS", message)
                .field("Idempotency-Key"),
        }
    }
}

impl From<qt_store_sqlite::StoreError> for ApiError {
    fn from(e: qt_store_sqlite::StoreError) -> Self {
        ApiError::internal("read model query failed", e)
    }
}
