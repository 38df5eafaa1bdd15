//! A harness that feeds an exchange sequenced, time-stamped commands and keeps the log,
//! so tests can replay it, snapshot it, and read the events of each command.

use crate::fixtures::{reference_data, BTC_USD, UNIT};
use qt_core::{
    Amount, AssetId, NewOrder, OrderId, OrderType, Price, Qty, RejectReason, Side, StpMode, SymbolId, TimeInForce,
    UserId,
};
use qt_engine::{Command, CommandEnvelope, EngineConfig, Event, EventEnvelope, Exchange};

/// Best price level of one side, if any.
pub type Top = Option<(Price, Qty)>;

/// Nanoseconds of 2026-01-01T00:00:00Z: a realistic start for command time.
pub const START_TS: i64 = 1_767_225_600_000_000_000;

#[derive(Debug)]
pub struct Harness {
    pub ex: Exchange,
    pub seq: u64,
    pub ts: i64,
    next_order: u64,
    /// Every command applied, in order.
    pub log: Vec<CommandEnvelope>,
    /// Every event emitted, in order.
    pub events: Vec<EventEnvelope>,
}

impl Harness {
    /// An exchange with the reference data listed (USD, BTC, ETH; BTC-USD, ETH-USD).
    pub fn new(config: EngineConfig) -> Self {
        let mut h = Self::empty(config);
        for c in reference_data() {
            h.cmd(c);
        }
        h
    }

    pub fn empty(config: EngineConfig) -> Self {
        Harness { ex: Exchange::new(config), seq: 0, ts: START_TS, next_order: 1, log: Vec::new(), events: Vec::new() }
    }

    /// Applies one command one microsecond after the previous; returns its events.
    pub fn cmd(&mut self, cmd: Command) -> Vec<Event> {
        self.seq += 1;
        self.ts += 1_000;
        let env = CommandEnvelope::new(self.seq, self.ts, cmd);
        let mut out = Vec::new();
        self.ex.apply(&env, &mut out);
        self.log.push(env);
        let events = out.iter().map(|e| e.event.clone()).collect();
        self.events.extend(out);
        events
    }

    pub fn advance(&mut self, nanos: i64) {
        self.ts += nanos;
    }

    /// Creates a user and deposits whole units of each asset given.
    pub fn user(&mut self, id: u64, funds: &[(AssetId, i64)]) -> UserId {
        let user = UserId(id);
        self.cmd(Command::CreateUser { user, limits: None });
        for &(asset, units) in funds {
            self.cmd(Command::Deposit { user, asset, amount: Amount(units * UNIT) });
        }
        user
    }

    pub fn next_order_id(&mut self) -> OrderId {
        let id = OrderId(self.next_order);
        self.next_order += 1;
        id
    }

    /// A GTC limit order on BTC-USD with defaults for the rest.
    pub fn order(&mut self, user: UserId, side: Side, price: i64, qty: i64) -> NewOrder {
        NewOrder {
            order_id: self.next_order_id(),
            user,
            symbol: BTC_USD,
            side,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            price: Some(Price(price)),
            stop_price: None,
            qty: Qty(qty),
            post_only: false,
            stp: StpMode::CancelNewest,
            client_order_id: None,
        }
    }

    pub fn place(&mut self, order: NewOrder) -> Vec<Event> {
        self.cmd(Command::Place(order))
    }

    /// Places a GTC limit on BTC-USD; returns its id and events.
    pub fn limit(&mut self, user: UserId, side: Side, price: i64, qty: i64) -> (OrderId, Vec<Event>) {
        let o = self.order(user, side, price, qty);
        let id = o.order_id;
        (id, self.place(o))
    }

    pub fn balance(&self, user: UserId, asset: AssetId) -> (i64, i64) {
        let b = self.ex.ledger().balance(user, asset).unwrap_or_default();
        (b.available.0, b.reserved.0)
    }

    pub fn best(&self, symbol: SymbolId) -> (Top, Top) {
        let s = &self.ex.symbols()[symbol.0 as usize];
        (s.book.best_bid(), s.book.best_ask())
    }

    /// Panics with the description when an invariant of the exchange does not hold.
    pub fn assert_invariants(&self) {
        if let Err(e) = self.ex.check_invariants() {
            panic!("invariant violated after command {}: {e}", self.seq);
        }
    }
}

/// The reject reason among events, if the order or command was refused.
pub fn rejection(events: &[Event]) -> Option<RejectReason> {
    events.iter().find_map(|e| match e {
        Event::OrderRejected { reason, .. } | Event::CommandRejected { reason, .. } => Some(*reason),
        _ => None,
    })
}

/// Trades among events as (maker order, taker order, price, qty).
pub fn trades(events: &[Event]) -> Vec<(OrderId, OrderId, Price, Qty)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Trade { maker_order, taker_order, price, qty, .. } => {
                Some((*maker_order, *taker_order, *price, *qty))
            }
            _ => None,
        })
        .collect()
}
