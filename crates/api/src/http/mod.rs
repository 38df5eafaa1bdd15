//! The HTTP surface: `fn router(state) -> Router`, its shared state and its middleware.
//!
//! Contract:
//! - Layers, outermost first: request id (taken from `X-Request-Id` or made), a tracing
//!   span carrying it (so every log line of the request has it), metrics, timeout, body
//!   limit, then the routes. Every response, errors included, carries `X-Request-Id`.
//! - Routes are those of docs/api.md; `/openapi.json` is generated from the same handlers
//!   (see [`openapi`]).
//! - Unknown paths under `/api` answer 404 in the error shape; other unknown paths fall
//!   back to the web screen when one is served.

pub mod account;
pub mod admin;
pub mod error;
pub mod extract;
pub mod market;
pub mod openapi;
pub mod orders;
pub mod system;
pub mod views;
pub mod ws;

use crate::config::{HttpSettings, RunConfig};
use crate::read_model::Reader;
use crate::runtime::EngineHandle;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use error::ApiError;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use metrics::{counter, histogram};
use metrics_exporter_prometheus::PrometheusHandle;
use qt_core::{Asset, AssetId, SymbolId, SymbolSpec, UserId};
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Listed assets and symbols, looked up by id and by name.
#[derive(Debug)]
pub struct Markets {
    pub assets: Vec<Asset>,
    pub symbols: Vec<SymbolSpec>,
    by_name: HashMap<String, SymbolId>,
}

impl Markets {
    pub fn new(assets: Vec<Asset>, symbols: Vec<SymbolSpec>) -> Markets {
        let by_name = symbols.iter().map(|s| (s.name.clone(), s.id)).collect();
        Markets { assets, symbols, by_name }
    }
    pub fn symbol_by_name(&self, name: &str) -> Option<&SymbolSpec> {
        self.by_name.get(name).and_then(|id| self.symbol(*id))
    }
    pub fn symbol(&self, id: SymbolId) -> Option<&SymbolSpec> {
        self.symbols.get(id.0 as usize)
    }
    pub fn asset(&self, id: AssetId) -> Option<&Asset> {
        self.assets.get(id.0 as usize)
    }
    pub fn asset_by_code(&self, code: &str) -> Option<&Asset> {
        self.assets.iter().find(|a| a.code == code)
    }
    /// The symbol named in a request, or 404 `UNKNOWN_SYMBOL` naming the field.
    pub fn require(&self, name: &str) -> Result<&SymbolSpec, ApiError> {
        self.symbol_by_name(name).ok_or_else(|| ApiError::unknown_symbol(name))
    }
}

/// Shared by every handler. One `Arc`: axum's `State` extractor and the middleware clone
/// the state for every request, and with the fields behind one pointer that is one atomic
/// increment instead of one per field (the per-field clones and drops were ~3% of the HTTP
/// workers' samples in `perf` under `bench http`).
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppShared>);

impl std::ops::Deref for AppState {
    type Target = AppShared;
    fn deref(&self) -> &AppShared {
        &self.0
    }
}

/// What [`AppState`] points to.
#[derive(Debug)]
pub struct AppShared {
    pub engine: EngineHandle,
    pub reader: Reader,
    pub markets: Arc<Markets>,
    /// SHA-256 of the admin token: compared in constant time, never kept in clear.
    pub admin_token_hash: Arc<[u8; 32]>,
    pub limiter: Arc<DefaultKeyedRateLimiter<u64>>,
    /// API key hash → user, so that authentication does not hit SQLite every request.
    pub key_cache: Arc<Mutex<HashMap<String, UserId>>>,
    /// (user, idempotency key) of requests being processed: a concurrent duplicate gets 409.
    pub inflight: Arc<Mutex<HashSet<(u64, String)>>>,
    pub settings: Arc<HttpSettings>,
    pub metrics: PrometheusHandle,
    pub draining: Arc<AtomicBool>,
    pub ws_clients: Arc<AtomicU64>,
    pub stats_cache: Arc<Mutex<HashMap<SymbolId, (Instant, qt_store_sqlite::Stats24h)>>>,
    /// Limits given to users the admin API creates (journaled with the command).
    pub default_limits: Arc<qt_core::RiskLimits>,
    /// Distributed mode: the per-user request budget shared by every intake process
    /// (`None`: the in-process `limiter` alone).
    pub shared_rate: Option<Arc<dyn SharedRateLimit>>,
}

/// A per-user request budget shared across processes (Redis in the distributed mode).
pub trait SharedRateLimit: Send + Sync + std::fmt::Debug {
    /// `Ok(None)`: allowed; `Ok(Some(wait))`: refused until `wait` has passed; `Err`: the
    /// shared store is unreachable, and the in-process limiter decides instead.
    fn check(&self, user: UserId) -> futures_util::future::BoxFuture<'static, Result<Option<Duration>, String>>;
}

/// The process-wide Prometheus recorder (installed once, shared by every app in a test
/// process).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(&[
                    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                    1.0, 2.5,
                ])
                .map(|b| b.build_recorder());
            match recorder {
                Ok(recorder) => {
                    let handle = recorder.handle();
                    // Fails only when another recorder is installed already; ours then
                    // renders nothing, which the metrics test would show.
                    let _ = metrics::set_global_recorder(recorder);
                    handle
                }
                Err(_) => metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

impl AppState {
    /// `shared_rate`: the distributed mode's per-user budget shared by every intake process
    /// (`None`: the in-process limiter alone).
    pub fn new(
        engine: EngineHandle,
        reader: impl Into<Reader>,
        markets: Arc<Markets>,
        admin_token: &str,
        config: &RunConfig,
        shared_rate: Option<Arc<dyn SharedRateLimit>>,
    ) -> Result<AppState, crate::app::AppError> {
        use sha2::{Digest, Sha256};
        let per_second = NonZeroU32::new(config.http.rate_limit_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.http.rate_limit_burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Ok(AppState(Arc::new(AppShared {
            engine,
            reader: reader.into(),
            markets,
            admin_token_hash: Arc::new(Sha256::digest(admin_token.as_bytes()).into()),
            limiter: Arc::new(RateLimiter::keyed(quota)),
            key_cache: Arc::default(),
            inflight: Arc::default(),
            settings: Arc::new(config.http.clone()),
            metrics: prometheus(),
            draining: Arc::default(),
            ws_clients: Arc::default(),
            stats_cache: Arc::default(),
            default_limits: Arc::new(config.risk.to_limits().map_err(crate::app::AppError::Bootstrap)?),
            shared_rate,
        })))
    }

    /// Runs a read-model query. Queries are index lookups and bounded pages over a WAL
    /// database (microseconds; a full page well under a millisecond), so they run on the
    /// async worker itself: handing each to the blocking pool cost more in thread
    /// wake-ups than the query (measured with `bench http`: most of the CPU was futex
    /// traffic of the pool). A remote read model (PostgreSQL) waits on the network, so
    /// its queries do go to the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Reader) -> Result<T, qt_store_sqlite::StoreError> + Send + 'static,
    {
        if self.reader.is_remote() {
            let reader = self.reader.clone();
            return tokio::task::spawn_blocking(move || f(&reader))
                .await
                .map_err(|e| ApiError::internal("read model task", e))?
                .map_err(ApiError::from);
        }
        f(&self.reader).map_err(ApiError::from)
    }
}

/// Request ids: a per-process random prefix and a counter, short and unique.
#[derive(Clone)]
struct MakeId {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:08x}", self.prefix)).ok().map(RequestId::new)
    }
}

/// Counts and times every request by its route template and status.
async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let method = req.method().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    counter!("qt_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    histogram!("qt_http_request_seconds", "method" => method, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

/// The 404 of an unknown API path, in the error shape.
async fn api_not_found() -> ApiError {
    ApiError::not_found("NOT_FOUND", "no such endpoint")
}

/// Answers 503 `TIMEOUT` for a request that takes longer than `limit`. A command that
/// reached the engine still completes; its idempotency key gives the client its answer.
async fn with_timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "TIMEOUT", "the request took too long").into_response()
        }
    }
}

pub fn router(state: AppState, config: &RunConfig) -> Router {
    let timeout = Duration::from_millis(config.http.request_timeout_ms);
    let body_limit = config.http.body_limit_bytes;
    let api = Router::new()
        .route("/orders", post(orders::place).get(orders::list).delete(orders::mass_cancel))
        .route("/orders/{id}", get(orders::get_one).delete(orders::cancel).patch(orders::amend))
        .route("/executions", get(account::executions))
        .route("/risk/validate", post(account::validate))
        .route("/risk/positions", get(account::positions))
        .route("/risk/limits", get(account::limits))
        .route("/accounts/balances", get(account::balances))
        .route("/symbols", get(market::symbols))
        .route("/market-data/prices/{symbol}", get(market::price))
        .route("/market-data/orderbook/{symbol}", get(market::orderbook))
        .route("/market-data/trades/{symbol}", get(market::trades))
        .route("/market-data/candles/{symbol}", get(market::candles))
        .route("/admin/users", post(admin::create_user))
        .route("/admin/users/{id}/deposits", post(admin::deposit))
        .route("/admin/ledger", get(admin::ledger))
        .fallback(api_not_found);
    let mut app = Router::new()
        .nest("/api", api)
        .route("/ws/market-data", get(ws::upgrade))
        .route("/health", get(system::health))
        .route("/ready", get(system::ready))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(openapi::serve));
    if let Some(dir) = config.web_dir.as_ref().filter(|d| d.join("index.html").is_file()) {
        // The screen is a single-page app: unknown paths get index.html.
        app = app.fallback_service(ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html"))));
    }
    // A per-process prefix keeps ids from two processes (or restarts) apart in the logs.
    let prefix: String = crate::app::random_token("").unwrap_or_default().chars().take(8).collect();
    let make_id = MakeId { prefix: Arc::from(prefix.as_str()), next: Arc::default() };
    app.layer(middleware::from_fn(track))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(move |req, next| with_timeout(timeout, req, next)))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, make_id))
        .with_state(state)
}

/// Makes `IntoResponse` of `(StatusCode, Json)` tuples read well in handlers.
pub fn created<T: serde::Serialize>(body: T) -> Response {
    (StatusCode::CREATED, axum::Json(body)).into_response()
}
