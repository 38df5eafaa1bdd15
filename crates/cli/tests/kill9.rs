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

async fn place_until_killed(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    cycle: usize,
    kill_after: Duration,
    child: &mut Child,
) -> Vec<(String, String, Value)> {
    // Four clients place orders as fast as they can; every 201 is recorded.
    let acked: Arc<Mutex<Vec<(String, String, Value)>>> = Arc::default();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (client, base, key, acked) = (client.clone(), base.to_string(), key.to_string(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let idem = format!("c{cycle}-t{t}-{i}");
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
                acked.lock().unwrap().push((idem, order["order_id"].as_str().unwrap().to_string(), body));
            }
        }));
    }
    tokio::time::sleep(kill_after).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    acked
}

async fn json_of(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_order_survives_kill_9() {
    let dir = std::env::temp_dir().join(format!("qt-kill9-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut child, mut base) = start(&dir);
    let client = reqwest::Client::new();
    let user = json_of(
        client
            .post(format!("{base}/api/admin/users"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "k9"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
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

    // Kill at a different moment each cycle (a spread of times, not one lucky instant).
    let mut all: Vec<(String, String, Value)> = Vec::new();
    for (cycle, millis) in [700u64, 1300, 450].into_iter().enumerate() {
        let acked = place_until_killed(&client, &base, &key, cycle, Duration::from_millis(millis), &mut child).await;
        assert!(acked.len() > 10, "cycle {cycle}: only {} orders acknowledged before the kill", acked.len());
        all.extend(acked);
        (child, base) = start(&dir);

        // Every acknowledged order is there, accepted, once.
        let mut missing = Vec::new();
        for (_, order_id, _) in &all {
            let r = client.get(format!("{base}/api/orders/{order_id}")).bearer_auth(&key).send().await.unwrap();
            if r.status() != 200 {
                missing.push(format!("{order_id}: {}", r.status()));
                continue;
            }
            assert_eq!(json_of(r).await["status"], "ACCEPTED");
        }
        assert!(
            missing.is_empty(),
            "cycle {cycle}: {} of {} acknowledged orders lost: {missing:?}",
            missing.len(),
            all.len()
        );
        let mut listed = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = json_of(
                client.get(format!("{base}/api/orders?limit=1000{cursor}")).bearer_auth(&key).send().await.unwrap(),
            )
            .await;
            listed
                .extend(page["orders"].as_array().unwrap().iter().map(|o| o["order_id"].as_str().unwrap().to_string()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        let unique: std::collections::BTreeSet<_> = listed.iter().collect();
        assert_eq!(unique.len(), listed.len(), "no order twice");
        assert!(listed.len() >= all.len(), "every acknowledged order listed");

        // The ledger holds: available + reserved is still the deposit (only resting buys).
        let balances =
            json_of(client.get(format!("{base}/api/accounts/balances")).bearer_auth(&key).send().await.unwrap()).await;
        let usd = balances["balances"].as_array().unwrap().iter().find(|b| b["asset"] == "USD").unwrap().clone();
        let total = usd["available"].as_str().unwrap().parse::<f64>().unwrap()
            + usd["reserved"].as_str().unwrap().parse::<f64>().unwrap();
        assert!((total - 100_000_000.0).abs() < 1e-6, "USD total {total}");

        // An early key of this cycle still replays its order.
        let (idem, order_id, body) = all.iter().rev().find(|(k, _, _)| k.starts_with(&format!("c{cycle}-"))).unwrap();
        let again = json_of(
            client
                .post(format!("{base}/api/orders"))
                .bearer_auth(&key)
                .header("Idempotency-Key", idem)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(&again["order_id"], &json!(order_id));
    }
    // SIGTERM is a graceful stop: intake closes, the journal is flushed, exit status 0.
    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let (mut child, base) = start(&dir);
    let r = client.get(format!("{base}/api/orders/{}", all[0].1)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{} acknowledged orders over 3 kill -9 cycles, all present", all.len());
}
