//! A running server for black-box tests, and a small client.
//!
//! `spawn_app()` starts the all-in-one application in this process on a free port with a
//! fresh data directory (zero2prod style). When `QT_API_URL` is set (with
//! `QT_ADMIN_TOKEN`), the suite runs unchanged against that deployment instead, e.g. the
//! distributed stack of `scripts/dev-up`.
#![allow(dead_code)]

use qt_api::{Application, RunConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub const ADMIN: &str = "test-admin-token-0123456789";

pub struct TestApp {
    pub base: String,
    pub admin: String,
    pub client: reqwest::Client,
    pub data_dir: Option<PathBuf>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A fresh, unique directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("qt-api-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn test_config(dir: PathBuf) -> RunConfig {
    let mut config = RunConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: dir,
        admin_token: Some(ADMIN.into()),
        demo_user: false,
        ..RunConfig::default()
    };
    config.sim.enabled = false;
    config.http.rate_limit_per_second = 1000;
    config.http.rate_limit_burst = 1000;
    config.engine.snapshot_every = 100;
    // Tests place orders faster than a person would.
    config.risk.max_orders_per_second = None;
    config
}

pub async fn spawn_app() -> TestApp {
    if let Ok(base) = std::env::var("QT_API_URL") {
        let admin = std::env::var("QT_ADMIN_TOKEN").expect("QT_ADMIN_TOKEN with QT_API_URL");
        return TestApp { base, admin, client: reqwest::Client::new(), data_dir: None, stop: None, task: None };
    }
    spawn_with(test_config(temp_dir("app"))).await
}

pub async fn spawn_with(config: RunConfig) -> TestApp {
    let dir = config.data_dir.clone();
    let app = Application::build(config).await.expect("app builds");
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async move {
            let _ = stopped.await;
        })
        .await
        .expect("app runs");
    });
    TestApp {
        base,
        admin: ADMIN.into(),
        client: reqwest::Client::new(),
        data_dir: Some(dir),
        stop: Some(stop),
        task: Some(task),
    }
}

pub struct User {
    pub id: String,
    pub key: String,
}

impl TestApp {
    /// Graceful stop; the data directory stays for a restart.
    pub async fn stop(mut self) -> Option<PathBuf> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
        self.data_dir.take()
    }

    pub fn in_process(&self) -> bool {
        self.data_dir.is_some()
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, key, None).await
    }

    /// Places an order with a fresh idempotency key.
    pub async fn place(&self, key: &str, body: Value) -> (StatusCode, Value) {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.place_with_key(key, &format!("k-{}-{n}", std::process::id()), body).await
    }

    pub async fn place_with_key(&self, key: &str, idem: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(format!("{}/api/orders", self.base))
            .bearer_auth(key)
            .header("Idempotency-Key", idem)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A new user, funded with `deposits` (asset, amount).
    pub async fn user(&self, deposits: &[(&str, &str)]) -> User {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("u{}-{n}", std::process::id());
        let (status, body) =
            self.call(Method::POST, "/api/admin/users", Some(&self.admin), Some(json!({ "name": name }))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let user = User { id: body["user_id"].as_str().unwrap().into(), key: body["api_key"].as_str().unwrap().into() };
        for (asset, amount) in deposits {
            let (status, body) = self
                .call(
                    Method::POST,
                    &format!("/api/admin/users/{}/deposits", user.id),
                    Some(&self.admin),
                    Some(json!({"asset": asset, "amount": amount})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        user
    }

    pub async fn balance(&self, key: &str, asset: &str) -> (String, String) {
        let (_, body) = self.get("/api/accounts/balances", Some(key)).await;
        let b = body["balances"].as_array().unwrap().iter().find(|b| b["asset"] == asset).cloned();
        b.map_or(("0".into(), "0".into()), |b| {
            (b["available"].as_str().unwrap().to_string(), b["reserved"].as_str().unwrap().to_string())
        })
    }
}

pub fn limit(symbol: &str, side: &str, price: &str, qty: &str) -> Value {
    json!({"symbol": symbol, "side": side, "type": "LIMIT", "price": price, "quantity": qty, "time_in_force": "GTC"})
}

/// The error code and field of an error body.
pub fn err(body: &Value) -> (String, Option<String>) {
    (body["error"]["code"].as_str().unwrap_or("").to_string(), body["error"]["field"].as_str().map(str::to_string))
}
