//! WebSocket `/ws/market-data`: public book, trades and ticker channels, and after `auth` the
//! private `orders` channel (order updates and fills). Protocol in docs/api.md.
//!
//! Contract:
//! - `book`: a `book_snapshot` with the book's sequence number, then one `book_diff` per
//!   level change with the next sequence number (absolute level quantity, `"0"` = gone).
//!   Diffs are not cut to the subscribed depth: clients prune. A client that sees a gap
//!   subscribes again.
//! - Every connection has a bounded outgoing queue. When it is full, or the connection
//!   falls behind the engine's event stream, the server closes it with 1008 `slow
//!   consumer`: a slow client never slows the engine or other clients.
//! - Client mistakes (bad JSON, unknown op or channel, unknown symbol, orders without
//!   auth) are answered with an `error` message; the connection stays open.

use super::error::ApiError;
use super::extract::user_for_key;
use super::views::{rfc3339, ExecutionJson, OrderJson};
use super::AppState;
use crate::runtime::Published;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use qt_core::{OrderId, Side, SymbolId, UserId};
use qt_engine::Event;
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Close code for a client that cannot keep up (RFC 6455: policy violation).
pub const SLOW_CONSUMER: u16 = 1008;
const TICKER_EVERY: Duration = Duration::from_millis(500);
/// How long a write blocked by a slow client may still finish after the client is dropped,
/// so that it can be told why (close 1008) before the connection goes.
const KILL_GRACE: Duration = Duration::from_secs(10);

pub async fn upgrade(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    ws.max_message_size(64 * 1024).on_upgrade(move |socket| session(socket, state))
}

#[derive(Debug, Deserialize)]
struct ClientMessage {
    op: String,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    symbol: Option<String>,
    #[serde(default)]
    depth: Option<usize>,
    #[serde(default)]
    api_key: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Channel {
    Book,
    Trades,
    Ticker,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Channel::Book => "book",
            Channel::Trades => "trades",
            Channel::Ticker => "ticker",
        }
    }
}

/// Why a session ends early.
enum End {
    SlowConsumer,
    Closed,
}

struct Session {
    state: AppState,
    out: mpsc::Sender<Message>,
    subs: BTreeSet<(Channel, SymbolId)>,
    /// Last book sequence sent per subscribed symbol.
    book_seq: HashMap<SymbolId, u64>,
    last_ticker: HashMap<SymbolId, Instant>,
    user: Option<UserId>,
    orders: bool,
}

async fn session(socket: WebSocket, state: AppState) {
    state.ws_clients.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = socket.split();
    let (out, mut out_rx) = mpsc::channel::<Message>(state.settings.ws_queue);
    let (kill, mut killed) = oneshot::channel::<CloseFrame>();
    // The writer owns the socket's sending half; a kill jumps the queue so that a slow
    // client is told why it is dropped without waiting behind its backlog.
    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                frame = &mut killed => {
                    if let Ok(frame) = frame {
                        let _ = tokio::time::timeout(KILL_GRACE, sink.send(Message::Close(Some(frame)))).await;
                    }
                    break;
                }
                msg = out_rx.recv() => {
                    let Some(m) = msg else { break };
                    // A client that stopped reading can block this send for ever. On a kill
                    // the write gets a short grace; if it completes the close frame follows,
                    // otherwise the connection is just dropped.
                    let mut close = None;
                    let stop;
                    {
                        let send = sink.send(m);
                        tokio::pin!(send);
                        tokio::select! {
                            biased;
                            sent = &mut send => stop = sent.is_err(),
                            frame = &mut killed => {
                                stop = true;
                                if matches!(tokio::time::timeout(KILL_GRACE, &mut send).await, Ok(Ok(()))) {
                                    close = frame.ok();
                                }
                            }
                        }
                    }
                    if let Some(frame) = close {
                        let _ = tokio::time::timeout(KILL_GRACE, sink.send(Message::Close(Some(frame)))).await;
                    }
                    if stop {
                        break;
                    }
                }
            }
        }
    });
    let mut events = state.engine.subscribe();
    let mut s = Session {
        state: state.clone(),
        out,
        subs: BTreeSet::new(),
        book_seq: HashMap::new(),
        last_ticker: HashMap::new(),
        user: None,
        orders: false,
    };
    let end = loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Err(end) = s.on_client(text.as_str()).await { break end; }
                }
                Some(Ok(Message::Binary(_))) => {
                    if let Err(end) = s.error(ApiError::invalid("op", "send text frames with JSON")) { break end; }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break End::Closed,
                Some(Ok(_)) => {}
            },
            batch = events.recv() => match batch {
                Ok(batch) => if let Err(end) = s.on_batch(&batch).await { break end; },
                Err(broadcast::error::RecvError::Lagged(_)) => break End::SlowConsumer,
                Err(broadcast::error::RecvError::Closed) => break End::Closed,
            },
        }
    };
    if let End::SlowConsumer = end {
        metrics::counter!("qt_ws_slow_consumers_total").increment(1);
        let _ = kill.send(CloseFrame { code: SLOW_CONSUMER, reason: Utf8Bytes::from_static("slow consumer") });
        // Keep reading what the client sends until it answers the close: closing a socket
        // with unread input makes the kernel send a reset, which can destroy the close
        // frame (and data) before the client reads them.
        let drain = async { while let Some(Ok(_)) = stream.next().await {} };
        let _ = tokio::time::timeout(KILL_GRACE, drain).await;
    }
    drop(s);
    let _ = writer.await;
    state.ws_clients.fetch_sub(1, Ordering::Relaxed);
}

impl Session {
    fn send(&self, value: serde_json::Value) -> Result<(), End> {
        match self.out.try_send(Message::Text(value.to_string().into())) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(End::SlowConsumer),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(End::Closed),
        }
    }

    fn error(&self, e: ApiError) -> Result<(), End> {
        self.send(json!({"type": "error", "error": e.body().error}))
    }

    async fn on_client(&mut self, text: &str) -> Result<(), End> {
        let msg: ClientMessage = match super::extract::parse_json(text.as_bytes()) {
            Ok(m) => m,
            Err(e) => return self.error(e),
        };
        match msg.op.as_str() {
            "ping" => self.send(json!({"type": "pong"})),
            "auth" => {
                let Some(key) = msg.api_key.as_deref() else { return self.error(ApiError::missing("api_key")) };
                match user_for_key(&self.state, key).await {
                    Ok(Some(user)) => {
                        self.user = Some(user);
                        self.send(json!({"type": "authenticated", "user_id": user.0.to_string()}))
                    }
                    Ok(None) => self.error(ApiError::unauthorized("unknown API key").field("api_key")),
                    Err(e) => self.error(e),
                }
            }
            "subscribe" | "unsubscribe" => self.on_subscription(&msg).await,
            other => self.error(ApiError::invalid("op", format!("unknown op '{other}'"))),
        }
    }

    async fn on_subscription(&mut self, msg: &ClientMessage) -> Result<(), End> {
        let subscribe = msg.op == "subscribe";
        let Some(channel_name) = msg.channel.as_deref() else { return self.error(ApiError::missing("channel")) };
        let reply = if subscribe { "subscribed" } else { "unsubscribed" };
        if channel_name == "orders" {
            if subscribe && self.user.is_none() {
                return self
                    .error(ApiError::unauthorized("send {\"op\":\"auth\",\"api_key\":…} first").field("channel"));
            }
            self.orders = subscribe;
            return self.send(json!({"type": reply, "channel": "orders"}));
        }
        let channel = match channel_name {
            "book" => Channel::Book,
            "trades" => Channel::Trades,
            "ticker" => Channel::Ticker,
            other => return self.error(ApiError::invalid("channel", format!("unknown channel '{other}'"))),
        };
        let Some(name) = msg.symbol.as_deref() else { return self.error(ApiError::missing("symbol")) };
        let Some(spec) = self.state.markets.symbol_by_name(name).cloned() else {
            return self.error(ApiError::unknown_symbol(name));
        };
        if !subscribe {
            self.subs.remove(&(channel, spec.id));
            if channel == Channel::Book {
                self.book_seq.remove(&spec.id);
            }
            return self.send(json!({"type": reply, "channel": channel.name(), "symbol": spec.name}));
        }
        self.subs.insert((channel, spec.id));
        self.send(json!({"type": reply, "channel": channel.name(), "symbol": spec.name}))?;
        match channel {
            Channel::Book => {
                let depth = msg.depth.unwrap_or(50).clamp(1, 1000);
                match super::market::book(&self.state, &spec, depth).await {
                    Ok(book) => {
                        self.book_seq.insert(spec.id, book.sequence);
                        let mut v = serde_json::to_value(&book).unwrap_or_default();
                        v["type"] = json!("book_snapshot");
                        self.send(v)
                    }
                    Err(e) => self.error(e),
                }
            }
            Channel::Ticker => {
                self.last_ticker.remove(&spec.id);
                match super::market::price_of(&self.state, &spec.name).await {
                    Ok(p) => self.ticker(p),
                    Err(e) => self.error(e),
                }
            }
            Channel::Trades => Ok(()),
        }
    }

    fn ticker(&self, p: super::views::PriceJson) -> Result<(), End> {
        let mut v = serde_json::to_value(&p).unwrap_or_default();
        v["type"] = json!("ticker");
        self.send(v)
    }

    async fn on_batch(&mut self, batch: &Arc<Published>) -> Result<(), End> {
        let mut touched_orders: Vec<OrderId> = Vec::new();
        for e in &batch.events {
            match &e.event {
                Event::BookChanged { symbol, delta } => {
                    let Some(last) = self.book_seq.get_mut(symbol) else { continue };
                    if delta.seq <= *last {
                        continue; // already in the snapshot
                    }
                    *last = delta.seq;
                    let Some(spec) = self.state.markets.symbol(*symbol) else { continue };
                    let level = vec![[spec.format_price(delta.price), spec.format_qty(delta.qty)]];
                    let (bids, asks) = match delta.side {
                        Side::Buy => (level, Vec::new()),
                        Side::Sell => (Vec::new(), level),
                    };
                    self.send(json!({"type": "book_diff", "symbol": spec.name, "sequence": delta.seq,
                        "bids": bids, "asks": asks}))?;
                }
                Event::Trade {
                    trade_id,
                    symbol,
                    price,
                    qty,
                    taker_side,
                    maker_order,
                    maker_user,
                    taker_order,
                    taker_user,
                    maker_fee,
                    taker_fee,
                } => {
                    let Some(spec) = self.state.markets.symbol(*symbol) else { continue };
                    if self.subs.contains(&(Channel::Trades, *symbol)) {
                        self.send(json!({"type": "trade", "symbol": spec.name, "trade_id": trade_id.0.to_string(),
                            "price": spec.format_price(*price), "quantity": spec.format_qty(*qty),
                            "taker_side": taker_side.as_str(), "timestamp": rfc3339(e.ts)}))?;
                    }
                    if let (true, Some(me)) = (self.orders, self.user) {
                        // Execution ids as the read model numbers them: 2t for the maker side,
                        // 2t+1 for the taker side of trade t.
                        let sides = [
                            (*maker_user, *maker_order, taker_side.opposite(), *maker_fee, true, 0),
                            (*taker_user, *taker_order, *taker_side, *taker_fee, false, 1),
                        ];
                        for (user, order, side, fee, is_maker, offset) in sides {
                            if user != me {
                                continue;
                            }
                            let row = qt_store_sqlite::ExecutionRow {
                                execution_id: i64::try_from(trade_id.0 * 2 + offset).unwrap_or(i64::MAX),
                                trade_id: *trade_id,
                                order_id: order,
                                user_id: user,
                                symbol_id: *symbol,
                                side,
                                price: price.0,
                                qty: qty.0,
                                quote_qty: i64::try_from(spec.notional(*price, *qty)).unwrap_or(i64::MAX),
                                fee: fee.0,
                                is_maker,
                                ts: e.ts,
                                cmd_seq: e.cmd_seq,
                            };
                            let fill = ExecutionJson::render(&self.state.markets, &row);
                            self.send(json!({"type": "fill", "fill": fill}))?;
                        }
                    }
                }
                Event::OrderAccepted { order } if self.orders && Some(order.user) == self.user => {
                    touched_orders.push(order.order_id)
                }
                Event::OrderRejected { order_id, user, .. }
                | Event::OrderTriggered { order_id, user }
                | Event::OrderFilled { order_id, user, .. }
                | Event::OrderSettled { order_id, user }
                | Event::OrderCancelled { order_id, user, .. }
                | Event::OrderExpired { order_id, user, .. }
                | Event::OrderAmended { order_id, user, .. }
                    if self.orders && Some(*user) == self.user =>
                {
                    touched_orders.push(*order_id)
                }
                _ => {}
            }
        }
        if let (false, Some(user)) = (touched_orders.is_empty(), self.user) {
            let mut seen = HashSet::new();
            touched_orders.retain(|id| seen.insert(*id));
            // The read model already holds this batch (projection precedes publication).
            let ids = touched_orders.clone();
            let views = self
                .state
                .read(move |r| {
                    ids.iter().filter_map(|id| r.order(user, *id).transpose()).collect::<Result<Vec<_>, _>>()
                })
                .await;
            match views {
                Ok(views) => {
                    for v in views {
                        let order = OrderJson::render(&self.state.markets, &v, None);
                        self.send(json!({"type": "order", "order": order}))?;
                    }
                }
                Err(e) => self.error(e)?,
            }
        }
        for top in &batch.tops {
            if !self.subs.contains(&(Channel::Ticker, top.symbol)) {
                continue;
            }
            if self.last_ticker.get(&top.symbol).is_some_and(|t| t.elapsed() < TICKER_EVERY) {
                continue;
            }
            self.last_ticker.insert(top.symbol, Instant::now());
            let Some(spec) = self.state.markets.symbol(top.symbol).cloned() else { continue };
            let stats = match super::market::stats(&self.state, &spec).await {
                Ok(s) => s,
                Err(e) => return self.error(e),
            };
            self.ticker(super::market::ticker(&spec, Some(top), &stats))?;
        }
        Ok(())
    }
}
