//! WebSocket stream (snapshot then consecutive diffs, trades, private orders, slow
//! consumers), restart recovery with idempotency, and the simulator keeping a market alive.

mod common;

use common::{limit, spawn_app, spawn_with, temp_dir, test_config};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(base: &str) -> Ws {
    let url = format!("{}/ws/market-data", base.replace("http://", "ws://"));
    tokio_tungstenite::connect_async(url).await.expect("ws connects").0
}

/// A client with a tiny receive buffer, so that not reading shows up at the server at once
/// instead of after megabytes of kernel buffers.
async fn connect_small_buffer(base: &str) -> Ws {
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let url = format!("ws://{addr}/ws/market-data");
    tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream)).await.expect("ws connects").0
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON message, skipping pings; panics after 5 s of silence.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a message within 5 s");
        match msg {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Close(f))) => return json!({"type": "closed", "frame": format!("{f:?}")}),
            Some(Ok(_)) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    }
}

async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = next(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
}

#[tokio::test]
async fn book_snapshot_then_consecutive_diffs_trades_and_private_orders() {
    let app = spawn_app().await;
    let maker = app.user(&[("BTC", "5")]).await;
    let taker = app.user(&[("USD", "1000000")]).await;
    app.place(&maker.key, limit("BTC-USD", "SELL", "30000.00", "1")).await;

    let mut ws = connect(&app.base).await;
    send(&mut ws, json!({"op": "subscribe", "channel": "book", "symbol": "BTC-USD", "depth": 10})).await;
    assert_eq!(next(&mut ws).await, json!({"type": "subscribed", "channel": "book", "symbol": "BTC-USD"}));
    let snap = next(&mut ws).await;
    assert_eq!(snap["type"], "book_snapshot");
    assert_eq!(snap["asks"][0], json!(["30000.00", "1"]));
    let mut seq = snap["sequence"].as_u64().unwrap();
    // The client's copy of the book, kept from the snapshot and the diffs.
    let mut book: [std::collections::BTreeMap<String, String>; 2] = Default::default();
    for (i, side) in ["bids", "asks"].iter().enumerate() {
        for level in snap[side].as_array().unwrap() {
            book[i].insert(level[0].as_str().unwrap().into(), level[1].as_str().unwrap().into());
        }
    }
    send(&mut ws, json!({"op": "subscribe", "channel": "trades", "symbol": "BTC-USD"})).await;
    send(&mut ws, json!({"op": "auth", "api_key": taker.key})).await;
    send(&mut ws, json!({"op": "subscribe", "channel": "orders"})).await;
    let mut authed = false;
    while !authed {
        let v = next(&mut ws).await;
        authed = v["type"] == "subscribed" && v["channel"] == "orders";
        assert_ne!(v["type"], "error", "{v}");
    }

    app.place(&maker.key, limit("BTC-USD", "SELL", "30010.00", "0.5")).await;
    app.place(&taker.key, json!({"symbol":"BTC-USD","side":"BUY","type":"LIMIT","price":"30000.00","quantity":"0.25"}))
        .await;

    let (mut diffs, mut trade, mut order, mut fill) = (Vec::new(), None, None, None);
    while diffs.len() < 2 || trade.is_none() || order.is_none() || fill.is_none() {
        let v = next(&mut ws).await;
        match v["type"].as_str().unwrap() {
            "book_diff" => {
                let s = v["sequence"].as_u64().unwrap();
                assert_eq!(s, seq + 1, "diffs follow the snapshot without gaps: {v}");
                seq = s;
                for (i, side) in ["bids", "asks"].iter().enumerate() {
                    for level in v[side].as_array().unwrap() {
                        let (p, q) = (level[0].as_str().unwrap().to_string(), level[1].as_str().unwrap().to_string());
                        if q == "0" {
                            book[i].remove(&p);
                        } else {
                            book[i].insert(p, q);
                        }
                    }
                }
                diffs.push(v);
            }
            "trade" => trade = Some(v),
            "order" => order = Some(v),
            "fill" => fill = Some(v),
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!(diffs[0]["asks"], json!([["30010.00", "0.5"]]));
    // The book rebuilt from the stream is the REST snapshot.
    let (_, rest) = app.get("/api/market-data/orderbook/BTC-USD?depth=100", None).await;
    assert_eq!(rest["sequence"].as_u64().unwrap(), seq);
    for (i, side) in ["bids", "asks"].iter().enumerate() {
        let rest_side: std::collections::BTreeMap<String, String> = rest[side]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l[0].as_str().unwrap().into(), l[1].as_str().unwrap().into()))
            .collect();
        assert_eq!(book[i], rest_side, "{side}");
    }
    assert_eq!(diffs[1]["asks"], json!([["30000.00", "0.75"]]));
    let trade = trade.unwrap();
    assert_eq!((trade["price"].as_str(), trade["quantity"].as_str()), (Some("30000.00"), Some("0.25")));
    assert_eq!(order.unwrap()["order"]["symbol"], "BTC-USD");
    let fill = fill.unwrap();
    assert_eq!((fill["fill"]["liquidity"].as_str(), fill["fill"]["quantity"].as_str()), (Some("TAKER"), Some("0.25")));
    // The fill matches the REST execution (same id).
    let (_, ex) = app.get("/api/executions", Some(&taker.key)).await;
    assert_eq!(ex["executions"][0]["execution_id"], fill["fill"]["execution_id"]);

    // Mistakes are answered, the socket stays.
    send(&mut ws, json!({"op": "subscribe", "channel": "book", "symbol": "NOPE"})).await;
    assert_eq!(next_of(&mut ws, "error").await["error"]["code"], "UNKNOWN_SYMBOL");
    ws.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(next_of(&mut ws, "error").await["error"]["code"], "INVALID_JSON");
    send(&mut ws, json!({"op": "ping"})).await;
    next_of(&mut ws, "pong").await;
}

#[tokio::test]
async fn orders_channel_needs_auth() {
    let app = spawn_app().await;
    let mut ws = connect(&app.base).await;
    send(&mut ws, json!({"op": "subscribe", "channel": "orders"})).await;
    assert_eq!(next(&mut ws).await["error"]["code"], "UNAUTHORIZED");
    send(&mut ws, json!({"op": "auth", "api_key": "qtk_wrong"})).await;
    assert_eq!(next(&mut ws).await["error"]["code"], "UNAUTHORIZED");
}

#[tokio::test]
async fn a_client_that_does_not_read_is_dropped_as_slow_consumer() {
    let mut config = test_config(temp_dir("slow"));
    config.http.ws_queue = 16;
    let app = spawn_with(config).await;
    let u = app.user(&[("USD", "10000000"), ("BTC", "100")]).await;
    let mut ws = connect_small_buffer(&app.base).await;
    send(&mut ws, json!({"op": "subscribe", "channel": "book", "symbol": "BTC-USD"})).await;
    // A deep book makes every snapshot ~10 kB; asking for hundreds of them and never
    // reading fills the kernel buffers and then the server's queue for this client.
    // 1000 levels, placed 50 at a time: every snapshot is then ~25 kB, and 1000 of them
    // are far more than any kernel buffers hold.
    for chunk in 0..20 {
        let places = (0..50).map(|j| {
            let price = format!("{}.00", 20000 + chunk * 50 + j);
            app.place(&u.key, limit("BTC-USD", "BUY", &price, "0.001"))
        });
        futures_util::future::join_all(places).await;
    }
    for _ in 0..1000 {
        send(&mut ws, json!({"op": "subscribe", "channel": "book", "symbol": "BTC-USD", "depth": 1000})).await;
    }
    let mut closed = None;
    let mut received = 0;
    for _ in 0..100_000 {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                closed = frame;
                break;
            }
            Ok(Some(Ok(_))) => received += 1,
            other => {
                eprintln!("after {received} messages: {other:?}");
                break;
            }
        }
    }
    eprintln!("received {received} messages before the close");
    let frame = closed.expect("closed with a frame");
    assert_eq!(u16::from(frame.code), 1008);
    assert_eq!(frame.reason.as_str(), "slow consumer");
    // The engine did not wait for it.
    let (s, _) = app.place(&u.key, limit("BTC-USD", "BUY", "100.00", "0.01")).await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn restart_recovers_orders_balances_and_idempotency() {
    let dir = temp_dir("restart");
    let app = spawn_with(test_config(dir.clone())).await;
    let maker = app.user(&[("BTC", "3")]).await;
    let taker = app.user(&[("USD", "1000000")]).await;
    let mut open = Vec::new();
    // More than `snapshot_every` (100) commands, so recovery uses a snapshot and a replay.
    for i in 0..60 {
        let (s, o) = app.place(&maker.key, limit("BTC-USD", "SELL", &format!("{}.00", 30000 + i), "0.01")).await;
        assert_eq!(s, StatusCode::CREATED);
        open.push(o["order_id"].as_str().unwrap().to_string());
    }
    let (s, first) = app.place_with_key(&taker.key, "buy-once", limit("BTC-USD", "BUY", "30005.00", "0.05")).await;
    assert_eq!(s, StatusCode::CREATED);
    for i in 0..50 {
        app.place(&taker.key, limit("BTC-USD", "BUY", &format!("{}.00", 20000 + i), "0.01")).await;
    }
    let (_, orders_before) = app.get("/api/orders?limit=1000", Some(&maker.key)).await;
    let balances_before = (app.balance(&maker.key, "BTC").await, app.balance(&taker.key, "USD").await);
    let (_, book_before) = app.get("/api/market-data/orderbook/BTC-USD?depth=100", None).await;
    let dir = app.stop().await.unwrap();

    let app = spawn_with(test_config(dir)).await;
    let (_, orders_after) = app.get("/api/orders?limit=1000", Some(&maker.key)).await;
    assert_eq!(orders_after, orders_before);
    assert_eq!((app.balance(&maker.key, "BTC").await, app.balance(&taker.key, "USD").await), balances_before);
    let (_, book_after) = app.get("/api/market-data/orderbook/BTC-USD?depth=100", None).await;
    assert_eq!(book_after, book_before);
    // The idempotency key still answers with the original response.
    let (s, again) = app.place_with_key(&taker.key, "buy-once", limit("BTC-USD", "BUY", "30005.00", "0.05")).await;
    assert_eq!((s, again), (StatusCode::CREATED, first));
    // New ids continue after the old ones.
    let (_, o) = app.place(&maker.key, limit("BTC-USD", "SELL", "31000.00", "0.01")).await;
    let new_id: u64 = o["order_id"].as_str().unwrap().parse().unwrap();
    assert!(open.iter().all(|id| id.parse::<u64>().unwrap() < new_id));
}

#[tokio::test]
async fn the_simulator_keeps_the_market_alive() {
    let mut config = test_config(temp_dir("sim"));
    config.sim.enabled = true;
    config.sim.step_ms = 50;
    let app = spawn_with(config).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, book) = app.get("/api/market-data/orderbook/ETH-USD", None).await;
        let (_, trades) = app.get("/api/market-data/trades/ETH-USD", None).await;
        let has_book = !book["bids"].as_array().unwrap().is_empty() && !book["asks"].as_array().unwrap().is_empty();
        let has_trades = !trades["trades"].as_array().unwrap().is_empty();
        if has_book && has_trades {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no live market after 20 s: {book} {trades}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A user can trade against it.
    let u = app.user(&[("USD", "100000")]).await;
    let (s, o) = app.place(&u.key, json!({"symbol":"ETH-USD","side":"BUY","type":"MARKET","quantity":"0.1"})).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(o["filled_quantity"], "0.1", "{o}");
}
