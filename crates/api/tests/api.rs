//! Black-box tests of the public API (docs/api.md) over real HTTP.

mod common;

use common::{err, limit, spawn_app, ADMIN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn health_ready_symbols_and_request_ids() {
    let app = spawn_app().await;
    let (s, body) = app.get("/health", None).await;
    assert_eq!((s, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, body) = app.get("/ready", None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["ready"], true);

    let (s, body) = app.get("/api/symbols", None).await;
    assert_eq!(s, StatusCode::OK);
    let btc = body["symbols"].as_array().unwrap().iter().find(|s| s["symbol"] == "BTC-USD").unwrap().clone();
    assert_eq!(btc["tick_size"], "0.01");
    assert_eq!(btc["lot_size"], "0.0001");
    assert_eq!(btc["quote_asset"], "USD");

    // X-Request-Id: echoed when given, made when not, also on errors.
    let resp = app.client.get(format!("{}/api/nope", app.base)).header("X-Request-Id", "abc-123").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    let resp = app.client.get(format!("{}/health", app.base)).send().await.unwrap();
    assert!(!resp.headers()["x-request-id"].is_empty());
}

#[tokio::test]
async fn auth_is_required_and_admin_is_separate() {
    let app = spawn_app().await;
    let (s, body) = app.get("/api/accounts/balances", None).await;
    assert_eq!((s, err(&body).0.as_str()), (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"));
    let (s, _) = app.get("/api/accounts/balances", Some("qtk_not_a_key")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, body) =
        app.call(Method::POST, "/api/admin/users", Some("wrong-token-xxxxxxxx"), Some(json!({"name":"x"}))).await;
    assert_eq!((s, err(&body).0.as_str()), (StatusCode::FORBIDDEN, "FORBIDDEN"));
    let user = app.user(&[]).await;
    let (s, _) = app.call(Method::POST, "/api/admin/users", Some(&user.key), Some(json!({"name":"y"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a user key is not the admin token");
    let (s, body) =
        app.call(Method::POST, "/api/admin/users", Some(&app.admin), Some(json!({"name":"bad name!"}))).await;
    assert_eq!((s, err(&body)), (StatusCode::BAD_REQUEST, ("INVALID_FIELD".into(), Some("name".into()))));
    let (s, body) = app
        .call(
            Method::POST,
            "/api/admin/users/999999/deposits",
            Some(&app.admin),
            Some(json!({"asset":"USD","amount":"1"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    let (s, body) = app
        .call(
            Method::POST,
            &format!("/api/admin/users/{}/deposits", user.id),
            Some(&app.admin),
            Some(json!({"asset":"USD","amount":"-5"})),
        )
        .await;
    assert_eq!((s, err(&body).1.as_deref()), (StatusCode::BAD_REQUEST, Some("amount")));
}

#[tokio::test]
async fn place_get_list_cancel_and_privacy() {
    let app = spawn_app().await;
    let alice = app.user(&[("USD", "100000")]).await;
    let bob = app.user(&[("USD", "100000")]).await;
    let mut body = limit("BTC-USD", "BUY", "30000.00", "0.5");
    body["client_order_id"] = json!("abc-1");
    let (s, order) = app.place(&alice.key, body).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "ACCEPTED");
    assert_eq!(order["price"], "30000.00");
    assert_eq!(order["quantity"], "0.5");
    assert_eq!(order["filled_quantity"], "0");
    assert_eq!(order["remaining_quantity"], "0.5");
    assert_eq!(order["client_order_id"], "abc-1");
    assert!(order["created_at"].as_str().unwrap().ends_with('Z'));
    let id = order["order_id"].as_str().unwrap().to_string();

    // Reserved at the limit price plus the worst fee.
    let (available, reserved) = app.balance(&alice.key, "USD").await;
    assert_eq!(reserved, "15007.50");
    assert_eq!(available, "84992.50");

    let (s, got) = app.get(&format!("/api/orders/{id}"), Some(&alice.key)).await;
    assert_eq!((s, &got["order_id"]), (StatusCode::OK, &json!(id)));
    assert_eq!(got["fills"], json!([]));
    let (s, body) = app.get(&format!("/api/orders/{id}"), Some(&bob.key)).await;
    assert_eq!((s, err(&body).0.as_str()), (StatusCode::NOT_FOUND, "ORDER_NOT_FOUND"), "someone else's order is 404");
    let (s, _) = app.call(Method::DELETE, &format!("/api/orders/{id}"), Some(&bob.key), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, list) = app.get("/api/orders?symbol=BTC-USD&status=OPEN", Some(&alice.key)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["orders"].as_array().unwrap().len(), 1);
    let (_, list) = app.get("/api/orders", Some(&bob.key)).await;
    assert_eq!(list["orders"], json!([]));

    let (s, cancelled) = app.call(Method::DELETE, &format!("/api/orders/{id}"), Some(&alice.key), None).await;
    assert_eq!((s, &cancelled["status"]), (StatusCode::OK, &json!("CANCELLED")), "{cancelled}");
    assert_eq!(cancelled["remaining_quantity"], "0");
    let (s, body) = app.call(Method::DELETE, &format!("/api/orders/{id}"), Some(&alice.key), None).await;
    assert_eq!((s, err(&body).0.as_str()), (StatusCode::CONFLICT, "ORDER_NOT_OPEN"), "{body}");
    assert_eq!(app.balance(&alice.key, "USD").await, ("100000.00".into(), "0.00".into()));
}

#[tokio::test]
async fn bad_input_gets_the_right_4xx_naming_the_field() {
    let app = spawn_app().await;
    let u = app.user(&[("USD", "1000")]).await;
    let cases: Vec<(Value, StatusCode, &str, Option<&str>)> = vec![
        (limit("BTC-USD", "BUY", "30000.001", "0.1"), StatusCode::BAD_REQUEST, "OFF_TICK", Some("price")),
        (limit("BTC-USD", "BUY", "30000.00", "0.00001"), StatusCode::BAD_REQUEST, "OFF_LOT", Some("quantity")),
        (limit("BTC-USD", "BUY", "30000.00", "0"), StatusCode::BAD_REQUEST, "INVALID_FIELD", Some("quantity")),
        (limit("BTC-USD", "BUY", "30000.00", "-1"), StatusCode::BAD_REQUEST, "INVALID_FIELD", Some("quantity")),
        (limit("BTC-USD", "BUY", "abc", "0.1"), StatusCode::BAD_REQUEST, "INVALID_FIELD", Some("price")),
        (limit("NOPE-USD", "BUY", "1.00", "1"), StatusCode::BAD_REQUEST, "UNKNOWN_SYMBOL", Some("symbol")),
        (limit("BTC-USD", "HOLD", "1.00", "1"), StatusCode::BAD_REQUEST, "INVALID_FIELD", Some("side")),
        (
            json!({"symbol":"BTC-USD","side":"BUY","type":"LIMIT","quantity":0.5,"price":"1.00"}),
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            Some("quantity"),
        ),
        (
            json!({"symbol":"BTC-USD","side":"BUY","type":"LIMIT","quantity":"0.5"}),
            StatusCode::BAD_REQUEST,
            "MISSING_FIELD",
            Some("price"),
        ),
        (
            json!({"side":"BUY","type":"LIMIT","quantity":"0.5","price":"1.00"}),
            StatusCode::BAD_REQUEST,
            "MISSING_FIELD",
            Some("symbol"),
        ),
        (
            json!({"symbol":"BTC-USD","side":"BUY","type":"LIMIT","quantity":"0.5","price":"1.00","colour":"red"}),
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            None,
        ),
        (
            json!({"symbol":"BTC-USD","side":"BUY","type":"STOP_LIMIT","quantity":"0.5","price":"1.00"}),
            StatusCode::BAD_REQUEST,
            "MISSING_FIELD",
            Some("stop_price"),
        ),
        (limit("BTC-USD", "BUY", "30000.00", "1"), StatusCode::UNPROCESSABLE_ENTITY, "INSUFFICIENT_FUNDS", None),
        (limit("BTC-USD", "BUY", "0.01", "0.0001"), StatusCode::BAD_REQUEST, "NOTIONAL_TOO_SMALL", Some("quantity")),
        (limit("BTC-USD", "BUY", "30000.00", "1000"), StatusCode::BAD_REQUEST, "QUANTITY_TOO_LARGE", Some("quantity")),
        (
            json!({"symbol":"BTC-USD","side":"BUY","type":"MARKET","quantity":"0.1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "NO_LIQUIDITY",
            None,
        ),
    ];
    for (body, status, code, field) in cases {
        let (s, got) = app.place(&u.key, body.clone()).await;
        assert_eq!(s, status, "{body} -> {got}");
        assert_eq!(err(&got).0, code, "{body} -> {got}");
        if let Some(f) = field {
            assert_eq!(err(&got).1.as_deref(), Some(f), "{body} -> {got}");
        }
    }
    // Malformed JSON, wrong content type, no idempotency key, a body over the limit.
    let post = |body: &'static str, ctype: &'static str, idem: bool| {
        let mut r = app
            .client
            .post(format!("{}/api/orders", app.base))
            .bearer_auth(&u.key)
            .header("Content-Type", ctype)
            .body(body);
        if idem {
            r = r.header("Idempotency-Key", format!("m-{}", body.len()));
        }
        r.send()
    };
    let r = post("{\"symbol\": ", "application/json", true).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "INVALID_JSON");
    let r = post("{}", "text/plain", true).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, body) = {
        let r = app
            .client
            .post(format!("{}/api/orders", app.base))
            .bearer_auth(&u.key)
            .json(&limit("BTC-USD", "BUY", "1.00", "1"))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(
        (s, err(&body)),
        (StatusCode::BAD_REQUEST, ("MISSING_IDEMPOTENCY_KEY".into(), Some("Idempotency-Key".into())))
    );
    let big = format!("{{\"symbol\":\"{}\"}}", "x".repeat(200_000));
    let r = app
        .client
        .post(format!("{}/api/orders", app.base))
        .bearer_auth(&u.key)
        .header("Idempotency-Key", "big")
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Query strings and paths.
    let (s, body) = app.get("/api/orders?limit=0", Some(&u.key)).await;
    assert_eq!((s, err(&body).1.as_deref()), (StatusCode::BAD_REQUEST, Some("limit")));
    let (s, body) = app.get("/api/orders?status=SLEEPING", Some(&u.key)).await;
    assert_eq!((s, err(&body).1.as_deref()), (StatusCode::BAD_REQUEST, Some("status")));
    let (s, body) = app.get("/api/orders?bogus=1", Some(&u.key)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, _) = app.get("/api/orders/xyz", Some(&u.key)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = app.get("/api/market-data/orderbook/NOPE", None).await;
    assert_eq!((s, err(&body).0.as_str()), (StatusCode::NOT_FOUND, "UNKNOWN_SYMBOL"));
    let (s, body) = app.get("/api/market-data/candles/BTC-USD?interval=7m", None).await;
    assert_eq!((s, err(&body).1.as_deref()), (StatusCode::BAD_REQUEST, Some("interval")));
}

#[tokio::test]
async fn idempotency_replays_and_conflicts() {
    let app = spawn_app().await;
    let u = app.user(&[("USD", "100000")]).await;
    let body = limit("ETH-USD", "BUY", "3000.00", "1");
    let (s1, first) = app.place_with_key(&u.key, "same-key", body.clone()).await;
    assert_eq!(s1, StatusCode::CREATED);
    let resp = app
        .client
        .post(format!("{}/api/orders", app.base))
        .bearer_auth(&u.key)
        .header("Idempotency-Key", "same-key")
        .header("Content-Type", "application/json")
        // Same order, other key order and spacing: the same request.
        .body(r#"{ "time_in_force":"GTC", "quantity":"1", "price":"3000.00", "type":"LIMIT", "side":"BUY", "symbol":"ETH-USD" }"#)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let replayed = resp.headers().get("idempotent-replayed").cloned();
    let replay: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{replay}");
    assert_eq!(replayed.unwrap(), "true");
    assert_eq!(replay, first, "the original answer, byte for byte");
    let (_, list) = app.get("/api/orders", Some(&u.key)).await;
    assert_eq!(list["orders"].as_array().unwrap().len(), 1, "placed once");

    let (s, conflict) = app.place_with_key(&u.key, "same-key", limit("ETH-USD", "BUY", "3001.00", "1")).await;
    assert_eq!((s, err(&conflict).0.as_str()), (StatusCode::CONFLICT, "IDEMPOTENCY_CONFLICT"));

    // A refused order replays its refusal too.
    let (s, refused) = app.place_with_key(&u.key, "poor", limit("ETH-USD", "BUY", "3000.00", "100")).await;
    assert_eq!((s, err(&refused).0.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "INSUFFICIENT_FUNDS"));
    let (s, again) = app.place_with_key(&u.key, "poor", limit("ETH-USD", "BUY", "3000.00", "100")).await;
    assert_eq!((s, again), (StatusCode::UNPROCESSABLE_ENTITY, refused));

    // Keys are per user.
    let v = app.user(&[("USD", "100000")]).await;
    let (s, other) = app.place_with_key(&v.key, "same-key", body).await;
    assert_eq!(s, StatusCode::CREATED, "{other}");
    assert_ne!(other["order_id"], first["order_id"]);
}

#[tokio::test]
async fn a_trade_moves_money_and_shows_everywhere() {
    let app = spawn_app().await;
    let maker = app.user(&[("BTC", "2")]).await;
    let taker = app.user(&[("USD", "100000")]).await;
    let (s, sell) = app.place(&maker.key, limit("BTC-USD", "SELL", "30000.00", "1")).await;
    assert_eq!(s, StatusCode::CREATED, "{sell}");
    let (_, book) = app.get("/api/market-data/orderbook/BTC-USD?depth=5", None).await;
    assert_eq!(book["asks"][0], json!(["30000.00", "1"]));
    let seq_before = book["sequence"].as_u64().unwrap();

    let (s, buy) =
        app.place(&taker.key, json!({"symbol":"BTC-USD","side":"BUY","type":"MARKET","quantity":"0.4"})).await;
    assert_eq!(s, StatusCode::CREATED, "{buy}");
    assert_eq!(buy["filled_quantity"], "0.4");
    assert!(matches!(buy["status"].as_str(), Some("FILLED" | "SETTLED")), "{buy}");
    assert_eq!(buy["average_price"], "30000.00");
    assert_eq!(buy["fills"].as_array().unwrap().len(), 1);
    assert_eq!(buy["fills"][0]["liquidity"], "TAKER");
    assert_eq!(buy["fills"][0]["fee"], "6.00", "5 bps of 12000");

    // Taker paid 12000 + 6 fee; maker got 12000 + 1.20 rebate (-1 bps).
    assert_eq!(app.balance(&taker.key, "USD").await, ("87994.00".into(), "0.00".into()));
    assert_eq!(app.balance(&taker.key, "BTC").await.0, "0.40");
    assert_eq!(app.balance(&maker.key, "USD").await.0, "12001.20");
    assert_eq!(app.balance(&maker.key, "BTC").await, ("1.00".into(), "0.60".into()));

    let (_, sell_now) = app.get(&format!("/api/orders/{}", sell["order_id"].as_str().unwrap()), Some(&maker.key)).await;
    assert_eq!(sell_now["status"], "PARTIALLY_FILLED");
    assert_eq!(sell_now["fills"][0]["liquidity"], "MAKER");
    let (_, ex) = app.get("/api/executions?symbol=BTC-USD", Some(&taker.key)).await;
    assert_eq!(ex["executions"].as_array().unwrap().len(), 1);
    assert_eq!(ex["executions"][0]["price"], "30000.00");
    let (_, pos) = app.get("/api/risk/positions", Some(&taker.key)).await;
    let p = &pos["positions"][0];
    assert_eq!((p["symbol"].as_str(), p["quantity"].as_str()), (Some("BTC-USD"), Some("0.4")));
    assert_eq!(p["average_entry_price"], "30000.00");
    assert_eq!(p["mark_price"], "30000.00");
    assert_eq!(p["unrealized_pnl"], "0.00");
    let (_, pos) = app.get("/api/risk/positions", Some(&maker.key)).await;
    assert_eq!(pos["positions"][0]["quantity"], "-0.4");

    let (_, trades) = app.get("/api/market-data/trades/BTC-USD", None).await;
    let t = &trades["trades"][0];
    assert_eq!(
        (t["price"].as_str(), t["quantity"].as_str(), t["taker_side"].as_str()),
        (Some("30000.00"), Some("0.4"), Some("BUY"))
    );
    let (_, candles) = app.get("/api/market-data/candles/BTC-USD?interval=1m", None).await;
    let c = candles["candles"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (c["open"].as_str(), c["close"].as_str(), c["volume"].as_str()),
        (Some("30000.00"), Some("30000.00"), Some("0.4"))
    );
    let (_, price) = app.get("/api/market-data/prices/BTC-USD", None).await;
    assert_eq!(price["last"], "30000.00");
    assert_eq!(price["best_ask"], "30000.00");
    assert_eq!(price["volume_24h"], "0.4");
    let (_, book) = app.get("/api/market-data/orderbook/BTC-USD", None).await;
    assert_eq!(book["asks"][0], json!(["30000.00", "0.6"]));
    assert!(book["sequence"].as_u64().unwrap() > seq_before);

    // The ledger conserves: 6.00 taker fee less the 1.20 maker rebate in the fee account.
    let (s, ledger) = app.get("/api/admin/ledger", Some(&app.admin)).await;
    assert_eq!(s, StatusCode::OK, "{ledger}");
    let usd = ledger["assets"].as_array().unwrap().iter().find(|a| a["asset"] == "USD").unwrap();
    assert_eq!((usd["fees"].as_str(), usd["conserves"].as_bool()), (Some("4.80"), Some(true)), "{ledger}");
    assert_eq!(usd["total"], usd["net_deposits"]);
    let (s, _) = app.get("/api/admin/ledger", Some(&taker.key)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "admin only");
}

#[tokio::test]
async fn amend_mass_cancel_validate_and_limits() {
    let app = spawn_app().await;
    let u = app.user(&[("USD", "100000")]).await;
    let (_, a) = app.place(&u.key, limit("BTC-USD", "BUY", "30000.00", "0.5")).await;
    let (_, b) = app.place(&u.key, limit("ETH-USD", "BUY", "3000.00", "2")).await;
    let a_id = a["order_id"].as_str().unwrap();
    let (s, amended) = app
        .call(
            Method::PATCH,
            &format!("/api/orders/{a_id}"),
            Some(&u.key),
            Some(json!({"price":"30100.00","quantity":"0.3"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{amended}");
    assert_eq!((amended["price"].as_str(), amended["quantity"].as_str()), (Some("30100.00"), Some("0.3")));
    let (s, body) =
        app.call(Method::PATCH, &format!("/api/orders/{a_id}"), Some(&u.key), Some(json!({"price":"30100.005"}))).await;
    assert_eq!((s, err(&body).0.as_str()), (StatusCode::BAD_REQUEST, "OFF_TICK"));
    let (s, body) = app.call(Method::PATCH, &format!("/api/orders/{a_id}"), Some(&u.key), Some(json!({}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    let (s, v) = app
        .call(Method::POST, "/api/risk/validate", Some(&u.key), Some(limit("BTC-USD", "BUY", "30000.00", "0.1")))
        .await;
    assert_eq!((s, &v["ok"]), (StatusCode::OK, &json!(true)), "{v}");
    let (_, v) = app
        .call(Method::POST, "/api/risk/validate", Some(&u.key), Some(limit("BTC-USD", "BUY", "30000.00", "90")))
        .await;
    assert_eq!((v["ok"].as_bool(), v["error"]["code"].as_str()), (Some(false), Some("INSUFFICIENT_FUNDS")));
    let (_, v) =
        app.call(Method::POST, "/api/risk/validate", Some(&u.key), Some(limit("BTC-USD", "BUY", "1.001", "1"))).await;
    assert_eq!(v["error"]["code"], "OFF_TICK");
    let (_, open) = app.get("/api/orders?status=OPEN", Some(&u.key)).await;
    assert_eq!(open["orders"].as_array().unwrap().len(), 2, "validate places nothing");

    let (s, limits) = app.get("/api/risk/limits", Some(&u.key)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(limits["kill_switch"], false);

    let (s, mc) = app.call(Method::DELETE, "/api/orders?symbol=ETH-USD", Some(&u.key), None).await;
    assert_eq!((s, &mc["cancelled"]), (StatusCode::OK, &json!([b["order_id"]])));
    let (_, mc) = app.call(Method::DELETE, "/api/orders", Some(&u.key), None).await;
    assert_eq!(mc["cancelled"], json!([a_id]));
    let (_, open) = app.get("/api/orders?status=OPEN", Some(&u.key)).await;
    assert_eq!(open["orders"], json!([]));
}

#[tokio::test]
async fn pagination_returns_every_order_once() {
    let app = spawn_app().await;
    let u = app.user(&[("USD", "100000")]).await;
    let mut placed = Vec::new();
    for i in 0..7 {
        let (_, o) = app.place(&u.key, limit("ETH-USD", "BUY", &format!("{}.00", 2000 + i), "0.01")).await;
        placed.push(o["order_id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut path = "/api/orders?limit=3".to_string();
    loop {
        let (s, page) = app.get(&path, Some(&u.key)).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        seen.extend(page["orders"].as_array().unwrap().iter().map(|o| o["order_id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/orders?limit=3&cursor={c}"),
            None => break,
        }
    }
    placed.reverse();
    assert_eq!(seen, placed, "newest first, each once");
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let mut config = common::test_config(common::temp_dir("rate"));
    config.http.rate_limit_per_second = 1;
    config.http.rate_limit_burst = 3;
    let app = common::spawn_with(config).await;
    let u = app.user(&[]).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let r = app.client.get(format!("{}/api/accounts/balances", app.base)).bearer_auth(&u.key).send().await.unwrap();
        let status = r.status();
        statuses.push(status.as_u16());
        if status == StatusCode::TOO_MANY_REQUESTS {
            retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "RATE_LIMITED");
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);
    // Another key has its own budget; public data is not limited per key.
    let v = app.user(&[]).await;
    let (s, _) = app.get("/api/accounts/balances", Some(&v.key)).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn openapi_lists_every_route_and_matches_responses() {
    let app = spawn_app().await;
    let (s, doc) = app.get("/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/orders", vec!["post", "get", "delete"]),
        ("/api/orders/{id}", vec!["get", "delete", "patch"]),
        ("/api/executions", vec!["get"]),
        ("/api/risk/validate", vec!["post"]),
        ("/api/risk/positions", vec!["get"]),
        ("/api/risk/limits", vec!["get"]),
        ("/api/accounts/balances", vec!["get"]),
        ("/api/symbols", vec!["get"]),
        ("/api/market-data/prices/{symbol}", vec!["get"]),
        ("/api/market-data/orderbook/{symbol}", vec!["get"]),
        ("/api/market-data/trades/{symbol}", vec!["get"]),
        ("/api/market-data/candles/{symbol}", vec!["get"]),
        ("/api/admin/users", vec!["post"]),
        ("/api/admin/users/{id}/deposits", vec!["post"]),
        ("/api/admin/ledger", vec!["get"]),
        ("/health", vec!["get"]),
        ("/ready", vec!["get"]),
        ("/metrics", vec!["get"]),
    ] {
        for m in methods {
            assert!(paths.get(path).and_then(|p| p.get(m)).is_some(), "{m} {path} missing from the OpenAPI document");
        }
    }
    // What the server returns has exactly the properties its schema declares.
    let schemas = &doc["components"]["schemas"];
    let u = app.user(&[("USD", "1000")]).await;
    let (_, order) = app.place(&u.key, limit("BTC-USD", "BUY", "100.00", "0.1")).await;
    let (_, symbols) = app.get("/api/symbols", None).await;
    let (_, price) = app.get("/api/market-data/prices/BTC-USD", None).await;
    let (_, error) = app.get("/api/accounts/balances", None).await;
    for (name, value) in [
        ("OrderJson", order),
        ("SymbolJson", symbols["symbols"][0].clone()),
        ("PriceJson", price),
        ("ErrorBody", error),
    ] {
        let declared: std::collections::BTreeSet<&str> = schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .map(String::as_str)
            .collect();
        let returned: std::collections::BTreeSet<&str> =
            value.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(returned.is_subset(&declared), "{name}: returned {returned:?} but declared {declared:?}");
        let required: Vec<&str> = schemas[name]["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for r in required {
            assert!(returned.contains(r), "{name}: required {r} missing from {value}");
        }
    }
    let _ = ADMIN;
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let app = spawn_app().await;
    let _ = app.get("/api/symbols", None).await;
    let resp = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(text.contains("qt_http_requests_total"), "{text}");
}

#[tokio::test]
async fn default_limits_apply_to_new_users() {
    let mut config = common::test_config(common::temp_dir("limits"));
    config.risk.max_orders_per_second = Some(3);
    config.risk.max_order_notional = Some("50000".into());
    let app = common::spawn_with(config).await;
    let u = app.user(&[("USD", "1000000")]).await;
    let (_, limits) = app.get("/api/risk/limits", Some(&u.key)).await;
    assert_eq!(limits["max_order_notional"], "50000.00", "{limits}");
    assert_eq!(limits["max_orders_per_second"], 3);
    let (s, body) = app.place(&u.key, limit("BTC-USD", "BUY", "30000.00", "2")).await;
    assert_eq!((s, err(&body).0.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "RISK_MAX_NOTIONAL"));
    let mut codes = Vec::new();
    for _ in 0..5 {
        let (s, body) = app.place(&u.key, limit("BTC-USD", "BUY", "100.00", "0.1")).await;
        codes.push((s.as_u16(), err(&body).0));
    }
    assert!(codes.contains(&(429, "RISK_VELOCITY".to_string())), "{codes:?}");
}

#[tokio::test]
async fn first_start_stores_credentials_privately_and_the_demo_user_can_trade() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::temp_dir("creds");
    let mut config = common::test_config(dir.clone());
    config.admin_token = None;
    config.demo_user = true;
    let app = qt_api::Application::build(config.clone()).await.unwrap();
    assert!(app.first_start);
    let creds = app.credentials.clone();
    assert!(creds.admin_token.starts_with("qta_") && creds.admin_token.len() > 60);
    let key = creds.demo_api_key.clone().unwrap();
    let file = dir.join(qt_api::app::CREDENTIALS_FILE);
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(stored["demo_api_key"], json!(key));
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let balances: Value = client
        .get(format!("{base}/api/accounts/balances"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let usd = balances["balances"].as_array().unwrap().iter().find(|b| b["asset"] == "USD").unwrap().clone();
    assert_eq!(usd["available"], "1000000.00");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    // The second start reads the same credentials and prints nothing new.
    let again = qt_api::Application::build(config).await.unwrap();
    assert!(!again.first_start);
    assert_eq!(again.credentials.admin_token, creds.admin_token);
}
