//! Durability of `quanttrader run` against `kill -9`: every order answered 201 before the
//! kill exists after the restart, with the same id, and its idempotency key still replays.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ADMIN: &str = "kill9-admin-token-0123456789";

/// Starts the binary on a free port and returns it with its base URL.
fn start(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quanttrader"))
        .args(["run", "--listen", "127.0.0.1:0", "--no-sim", "--admin-token", ADMIN, "--data-dir"])
        .arg(dir)
        .env("QT_LOG__LEVEL", "warn")
        // The point is durability, not the per-key rate limit.
        .env("QT_HTTP__RATE_LIMIT_PER_SECOND", "1000000")
        .env("QT_HTTP__RATE_LIMIT_BURST", "1000000")
        .env("QT_RISK__MAX_ORDERS_PER_SECOND", "1000000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("quanttrader starts");
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    // Keep reading so the server never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let url = first.split_whitespace().last().expect("a URL on the first line").to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_order_survives_kill_9() {
    let dir = std::env::temp_dir().join(format!("qt-kill9-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut child, base) = start(&dir);
    let client = reqwest::Client::new();
    let user: Value = client
        .post(format!("{base}/api/admin/users"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "k9"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = user["api_key"].as_str().unwrap().to_string();
    let id = user["user_id"].as_str().unwrap();
    let r = client
        .post(format!("{base}/api/admin/users/{id}/deposits"))
        .bearer_auth(ADMIN)
        .json(&json!({"asset": "USD", "amount": "100000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Four clients place orders as fast as they can; every 201 is recorded.
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (client, base, key, acked) = (client.clone(), base.clone(), key.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let idem = format!("t{t}-{i}");
                let body = json!({"symbol": "BTC-USD", "side": "BUY", "type": "LIMIT",
                    "price": format!("{}.00", 20000 + i % 500), "quantity": "0.001"});
                let sent = client
                    .post(format!("{base}/api/orders"))
                    .bearer_auth(&key)
                    .header("Idempotency-Key", &idem)
                    .json(&body)
                    .send()
                    .await;
                let Ok(resp) = sent else { break };
                if resp.status() != 201 {
                    break;
                }
                let Ok(order) = resp.json::<Value>().await else { break };
                acked.lock().unwrap().push((idem, order["order_id"].as_str().unwrap().to_string()));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "only {} orders acknowledged before the kill", acked.len());

    let (mut child, base) = start(&dir);
    let mut missing = Vec::new();
    for (idem, order_id) in &acked {
        let r = client.get(format!("{base}/api/orders/{order_id}")).bearer_auth(&key).send().await.unwrap();
        if r.status() != 200 {
            missing.push(format!("{order_id}: {}", r.status()));
            continue;
        }
        let order: Value = r.json().await.unwrap();
        assert_eq!(order["status"], "ACCEPTED");
        // The first acknowledged keys replay their order.
        if idem.ends_with("-0") {
            let i: u64 = 0;
            let body = json!({"symbol": "BTC-USD", "side": "BUY", "type": "LIMIT",
                "price": format!("{}.00", 20000 + i % 500), "quantity": "0.001"});
            let again: Value = client
                .post(format!("{base}/api/orders"))
                .bearer_auth(&key)
                .header("Idempotency-Key", idem)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(&again["order_id"], &json!(order_id));
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(missing.is_empty(), "{} of {} acknowledged orders lost: {missing:?}", missing.len(), acked.len());
    eprintln!("{} acknowledged orders, all present after kill -9", acked.len());
}
