//! Liveness, readiness and metrics.
//!
//! Contract: `/health` is 200 while the process serves HTTP; `/ready` is 200 only after
//! recovery, while the engine runs, the read model is healthy and no shutdown is under
//! way (503 otherwise, with the reasons in the body); `/metrics` is the Prometheus text
//! format.

use super::views::{Health, Readiness};
use super::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::atomic::Ordering;

#[utoipa::path(get, path = "/health", tag = "system", responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

#[utoipa::path(get, path = "/ready", tag = "system",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let s = &state.engine.status;
    let body = Readiness {
        recovered: s.recovered.load(Ordering::Acquire),
        degraded: s.degraded.load(Ordering::Acquire),
        draining: state.draining.load(Ordering::Acquire),
        last_seq: s.last_seq.load(Ordering::Relaxed),
        ready: false,
    };
    let ready = body.recovered && !body.degraded && !body.draining && !s.stopped.load(Ordering::Acquire);
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Readiness { ready, ..body })).into_response()
}

#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    metrics::gauge!("qt_websocket_connections").set(state.ws_clients.load(Ordering::Relaxed) as f64);
    metrics::gauge!("qt_last_seq").set(state.engine.status.last_seq.load(Ordering::Relaxed) as f64);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}
