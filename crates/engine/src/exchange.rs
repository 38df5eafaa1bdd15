//! The exchange state machine: `apply(command) -> events` over users, accounts and books.
//!
//! Contract:
//! - [`Exchange::apply`] is deterministic: the same state and command give the same events
//!   and the same next state. No clock, no randomness, no I/O; iteration over hash maps
//!   never decides an outcome (ids are sorted first).
//! - A command either takes effect completely or is refused with a reason event; a refused
//!   command changes nothing but the event sequence.
//! - With risk enabled, an order's worst-case cost is reserved before it can trade
//!   (quote at the limit or collar price plus the highest fee for buys, base for sells),
//!   each fill settles in the ledger at once, and what is left is released when the order
//!   ends. The ledger conserves every asset.
//! - With risk disabled (benchmarks of pure matching), orders match without reservations,
//!   settlement or limits.

use crate::checks::{self, Marks, RiskQuery};
use crate::command::{Command, CommandEnvelope};
use crate::event::{Event, EventEnvelope};
use qt_core::money::fee_amount;
use qt_core::{
    transition, Amount, Asset, AssetId, CancelReason, DailyPnl, Ledger, MatchBuffers, NewOrder, OrderBook, OrderEvent,
    OrderId, OrderStatus, OrderType, Position, Price, Qty, RejectReason, RiskLimits, Settlement, Side, StpMode,
    SymbolId, SymbolSpec, TimeInForce, TradeId, UserId, VelocityWindow,
};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Pre-trade risk, reservations and settlement. Off only for matching benchmarks.
    pub risk_enabled: bool,
    /// Limits of users created without their own.
    pub default_limits: RiskLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { risk_enabled: true, default_limits: RiskLimits::default() }
    }
}

/// An order that is still open (resting, waiting for its stop, or being processed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveOrder {
    pub order: NewOrder,
    pub status: OrderStatus,
    pub filled: Qty,
    /// Limit price in force (amend may change it); `None` for market orders.
    pub price: Option<Price>,
    /// Total quantity in force (amend may change it).
    pub qty: Qty,
    /// Funds still reserved for this order (quote for buys, base for sells).
    pub reserved: Amount,
    /// A stop order waiting for its trigger.
    pub waiting_stop: bool,
}

impl LiveOrder {
    fn remaining(&self) -> Qty {
        Qty(self.qty.0 - self.filled.0)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    pub limits: RiskLimits,
    /// Indexed by symbol id.
    pub positions: Vec<Position>,
    pub velocity: VelocityWindow,
    pub daily: DailyPnl,
    #[serde(skip)]
    pub open_orders: FxHashSet<OrderId>,
}

#[derive(Clone, Debug)]
pub struct SymbolState {
    pub spec: SymbolSpec,
    pub book: OrderBook,
    pub last_price: Option<Price>,
    /// Buy stops trigger when the last price rises to their stop price.
    pub buy_stops: BTreeSet<(Price, OrderId)>,
    /// Sell stops trigger when the last price falls to their stop price.
    pub sell_stops: BTreeSet<(Price, OrderId)>,
}

impl Marks for [SymbolState] {
    fn symbol_count(&self) -> usize {
        self.len()
    }
    fn spec(&self, i: usize) -> &SymbolSpec {
        &self[i].spec
    }
    fn last(&self, i: usize) -> Option<Price> {
        self[i].last_price
    }
}

/// The whole engine state.
#[derive(Debug)]
pub struct Exchange {
    pub(crate) config: EngineConfig,
    pub(crate) assets: Vec<Asset>,
    pub(crate) symbols: Vec<SymbolState>,
    pub(crate) users: FxHashMap<UserId, UserState>,
    pub(crate) ledger: Ledger,
    pub(crate) orders: FxHashMap<OrderId, LiveOrder>,
    pub(crate) global_kill: bool,
    pub(crate) next_trade_id: u64,
    /// Highest order id any Place carried (accepted or not): intake allocates above it.
    pub(crate) max_order_id: u64,
    pub(crate) event_seq: u64,
    pub(crate) last_cmd_seq: u64,
    // Per-command scratch space; never part of the state.
    buf: MatchBuffers,
    touched_balances: Vec<(UserId, AssetId)>,
    touched_positions: Vec<(UserId, SymbolId)>,
    cur_seq: u64,
    cur_ts: i64,
}

/// Result of running an order against the book, for the caller to finish it.
struct Execution {
    stopped_by_stp: bool,
}

impl Exchange {
    pub fn new(config: EngineConfig) -> Self {
        Exchange {
            config,
            assets: Vec::new(),
            symbols: Vec::new(),
            users: FxHashMap::default(),
            ledger: Ledger::new(0),
            orders: FxHashMap::default(),
            global_kill: false,
            next_trade_id: 1,
            max_order_id: 0,
            event_seq: 0,
            last_cmd_seq: 0,
            buf: MatchBuffers::default(),
            touched_balances: Vec::new(),
            touched_positions: Vec::new(),
            cur_seq: 0,
            cur_ts: 0,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }
    pub fn last_cmd_seq(&self) -> u64 {
        self.last_cmd_seq
    }
    pub fn event_seq(&self) -> u64 {
        self.event_seq
    }
    /// Highest order id seen in a Place command; the next free one is above it.
    pub fn max_order_id(&self) -> u64 {
        self.max_order_id
    }
    /// Highest id below `bound` of the users created (0 when none): intake allocates above
    /// it, while ids from `bound` up can be reserved for other kinds of users.
    pub fn max_user_id_below(&self, bound: u64) -> u64 {
        self.users.keys().map(|u| u.0).filter(|id| *id < bound).max().unwrap_or(0)
    }
    pub fn assets(&self) -> &[Asset] {
        &self.assets
    }
    pub fn symbols(&self) -> &[SymbolState] {
        &self.symbols
    }
    pub fn symbol(&self, id: SymbolId) -> Option<&SymbolState> {
        self.symbols.get(id.0 as usize)
    }
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
    pub fn user(&self, id: UserId) -> Option<&UserState> {
        self.users.get(&id)
    }
    pub fn order(&self, id: OrderId) -> Option<&LiveOrder> {
        self.orders.get(&id)
    }
    pub fn global_kill(&self) -> bool {
        self.global_kill
    }

    /// Applies one command, appending its events to `out`. Commands must come with
    /// strictly increasing sequence numbers; one that does not is ignored (it was already
    /// applied), which makes replays idempotent.
    pub fn apply(&mut self, env: &CommandEnvelope, out: &mut Vec<EventEnvelope>) {
        if env.seq <= self.last_cmd_seq {
            return;
        }
        self.last_cmd_seq = env.seq;
        self.cur_seq = env.seq;
        self.cur_ts = env.ts;
        match &env.cmd {
            Command::AddAsset { code, scale } => self.add_asset(code, *scale, out),
            Command::AddSymbol(spec) => self.add_symbol(spec, out),
            Command::CreateUser { user, limits } => self.create_user(*user, limits.clone(), out),
            Command::Deposit { user, asset, amount } => self.deposit(*user, *asset, *amount, true, out),
            Command::Withdraw { user, asset, amount } => self.deposit(*user, *asset, *amount, false, out),
            Command::Place(order) => self.place(order, out),
            Command::Cancel { user, order_id } => self.cancel_cmd(*user, *order_id, out),
            Command::Amend { user, order_id, price, qty } => self.amend(*user, *order_id, *price, *qty, out),
            Command::MassCancel { user, symbol } => self.mass_cancel(*user, *symbol, CancelReason::MassCancel, out),
            Command::SetLimits { user, limits } => self.set_limits(*user, limits.clone(), out),
            Command::SetKillSwitch { user, on } => self.set_kill(*user, *on, out),
        }
        self.flush_touched(out);
    }

    fn emit(&mut self, out: &mut Vec<EventEnvelope>, event: Event) {
        self.event_seq += 1;
        out.push(EventEnvelope { seq: self.event_seq, cmd_seq: self.cur_seq, ts: self.cur_ts, event });
    }

    fn reject_cmd(
        &mut self,
        out: &mut Vec<EventEnvelope>,
        user: Option<UserId>,
        order_id: Option<OrderId>,
        reason: RejectReason,
    ) {
        self.emit(out, Event::CommandRejected { user, order_id, reason });
    }

    /// Emits the balances and positions this command changed, once each, in id order.
    fn flush_touched(&mut self, out: &mut Vec<EventEnvelope>) {
        if !self.touched_balances.is_empty() {
            let mut touched = std::mem::take(&mut self.touched_balances);
            touched.sort_unstable();
            touched.dedup();
            for (user, asset) in touched.drain(..) {
                if let Some(b) = self.ledger.balance(user, asset) {
                    self.emit(out, Event::BalanceChanged { user, asset, available: b.available, reserved: b.reserved });
                }
            }
            self.touched_balances = touched;
        }
        if !self.touched_positions.is_empty() {
            let mut touched = std::mem::take(&mut self.touched_positions);
            touched.sort_unstable();
            touched.dedup();
            for (user, symbol) in touched.drain(..) {
                if let Some(p) = self.users.get(&user).and_then(|u| u.positions.get(symbol.0 as usize)).copied() {
                    self.emit(
                        out,
                        Event::PositionChanged { user, symbol, qty: p.qty, cost: p.cost, realized: p.realized },
                    );
                }
            }
            self.touched_positions = touched;
        }
    }

    // ---- reference data -------------------------------------------------------------

    fn add_asset(&mut self, code: &str, scale: u32, out: &mut Vec<EventEnvelope>) {
        if scale > 18 || code.is_empty() || self.assets.iter().any(|a| a.code == code) {
            return self.reject_cmd(out, None, None, RejectReason::UnknownAsset);
        }
        let id = self.ledger.add_asset();
        self.assets.push(Asset { id, code: code.to_string(), scale });
        self.emit(out, Event::AssetAdded { asset: id, code: code.to_string(), scale });
    }

    fn add_symbol(&mut self, spec: &SymbolSpec, out: &mut Vec<EventEnvelope>) {
        let valid = checks::symbol_is_valid(spec, &self.assets, self.symbols.iter().map(|s| &s.spec));
        if !valid {
            return self.reject_cmd(out, None, None, RejectReason::InvalidSymbol);
        }
        self.symbols.push(SymbolState {
            spec: spec.clone(),
            book: OrderBook::new(),
            last_price: None,
            buy_stops: BTreeSet::new(),
            sell_stops: BTreeSet::new(),
        });
        for u in self.users.values_mut() {
            u.positions.push(Position::default());
        }
        self.emit(out, Event::SymbolAdded { symbol: spec.id });
    }

    fn create_user(&mut self, user: UserId, limits: Option<RiskLimits>, out: &mut Vec<EventEnvelope>) {
        if self.users.contains_key(&user) {
            return self.reject_cmd(out, Some(user), None, RejectReason::DuplicateUser);
        }
        self.users.insert(
            user,
            UserState {
                limits: limits.unwrap_or_else(|| self.config.default_limits.clone()),
                positions: vec![Position::default(); self.symbols.len()],
                ..UserState::default()
            },
        );
        self.ledger.open_account(user);
        self.emit(out, Event::UserCreated { user });
    }

    fn deposit(&mut self, user: UserId, asset: AssetId, amount: Amount, deposit: bool, out: &mut Vec<EventEnvelope>) {
        let result =
            if deposit { self.ledger.deposit(user, asset, amount) } else { self.ledger.withdraw(user, asset, amount) };
        match result {
            Ok(_) => self.touched_balances.push((user, asset)),
            Err(e) => self.reject_cmd(out, Some(user), None, checks::ledger_reason(e)),
        }
    }

    fn set_limits(&mut self, user: UserId, limits: RiskLimits, out: &mut Vec<EventEnvelope>) {
        let Some(u) = self.users.get_mut(&user) else {
            return self.reject_cmd(out, Some(user), None, RejectReason::UnknownUser);
        };
        let kill_on = limits.kill_switch && !u.limits.kill_switch;
        u.limits = limits;
        self.emit(out, Event::LimitsChanged { user });
        if kill_on {
            self.mass_cancel(user, None, CancelReason::KillSwitch, out);
        }
    }

    fn set_kill(&mut self, user: Option<UserId>, on: bool, out: &mut Vec<EventEnvelope>) {
        match user {
            Some(u) => {
                let Some(state) = self.users.get_mut(&u) else {
                    return self.reject_cmd(out, Some(u), None, RejectReason::UnknownUser);
                };
                state.limits.kill_switch = on;
                self.emit(out, Event::KillSwitchChanged { user, on });
                if on {
                    self.mass_cancel(u, None, CancelReason::KillSwitch, out);
                }
            }
            None => {
                self.global_kill = on;
                self.emit(out, Event::KillSwitchChanged { user: None, on });
                if on {
                    let mut ids: Vec<OrderId> = self.orders.keys().copied().collect();
                    ids.sort_unstable();
                    for id in ids {
                        self.cancel_order(id, CancelReason::KillSwitch, out);
                    }
                }
            }
        }
    }

    // ---- order entry ----------------------------------------------------------------

    fn place(&mut self, o: &NewOrder, out: &mut Vec<EventEnvelope>) {
        self.max_order_id = self.max_order_id.max(o.order_id.0);
        if let Err(reason) = self.validate_place(o) {
            return self.emit(out, Event::OrderRejected { order_id: o.order_id, user: o.user, reason });
        }
        let risk = self.config.risk_enabled;
        let limit = match self.worst_price(o) {
            Ok(limit) => limit,
            Err(reason) => return self.emit(out, Event::OrderRejected { order_id: o.order_id, user: o.user, reason }),
        };
        let book = &self.symbols[o.symbol.0 as usize].book;
        if o.post_only && o.price.is_some_and(|p| book.would_cross(o.side, p)) {
            return self.emit(
                out,
                Event::OrderRejected { order_id: o.order_id, user: o.user, reason: RejectReason::PostOnlyWouldTake },
            );
        }
        let mut reserved = Amount::ZERO;
        if risk {
            let Some(limit_price) = limit else {
                return self.emit(
                    out,
                    Event::OrderRejected { order_id: o.order_id, user: o.user, reason: RejectReason::MissingPrice },
                );
            };
            if let Err(reason) = self.check_risk(o.user, o.symbol, o.side, o.qty, limit_price, true) {
                return self.emit(out, Event::OrderRejected { order_id: o.order_id, user: o.user, reason });
            }
            match self.reserve_for(o.user, o.symbol, o.side, limit_price, o.qty, Amount::ZERO) {
                Ok(r) => reserved = r,
                Err(reason) => {
                    return self.emit(out, Event::OrderRejected { order_id: o.order_id, user: o.user, reason });
                }
            }
        }
        let status = match transition(OrderStatus::New, OrderEvent::Accept) {
            Ok(s) => s,
            Err(_) => return,
        };
        let live = LiveOrder {
            order: o.clone(),
            status,
            filled: Qty::ZERO,
            price: if o.order_type == OrderType::Market { limit } else { o.price },
            qty: o.qty,
            reserved,
            waiting_stop: o.order_type.is_stop(),
        };
        self.orders.insert(o.order_id, live);
        if let Some(u) = self.users.get_mut(&o.user) {
            u.open_orders.insert(o.order_id);
        }
        self.emit(out, Event::OrderAccepted { order: o.clone() });

        if o.order_type.is_stop() {
            let sym = &mut self.symbols[o.symbol.0 as usize];
            let stop = o.stop_price.unwrap_or_default();
            match o.side {
                Side::Buy => sym.buy_stops.insert((stop, o.order_id)),
                Side::Sell => sym.sell_stops.insert((stop, o.order_id)),
            };
            // A stop whose condition already holds triggers at once.
            self.trigger_stops(o.symbol, out);
            return;
        }
        self.execute(o.order_id, out);
        self.trigger_stops(o.symbol, out);
    }

    /// The price an order may trade at, worst case (see [`checks::worst_price`]).
    fn worst_price(&self, o: &NewOrder) -> Result<Option<Price>, RejectReason> {
        let sym = &self.symbols[o.symbol.0 as usize];
        checks::worst_price(o, &sym.spec, || {
            sym.last_price.or_else(|| match o.side {
                Side::Buy => sym.book.best_ask().map(|(p, _)| p),
                Side::Sell => sym.book.best_bid().map(|(p, _)| p),
            })
        })
    }

    /// Dry run of every check [`Command::Place`] makes before an order may trade: grid,
    /// band, post-only, the user's limits (velocity is looked at, not counted) and funds.
    /// Changes nothing; `ts` is the time the checks are made at.
    pub fn check_order(&mut self, o: &NewOrder, ts: i64) -> Result<(), RejectReason> {
        self.validate_place(o)?;
        let limit = self.worst_price(o)?;
        let book = &self.symbols[o.symbol.0 as usize].book;
        if o.post_only && o.price.is_some_and(|p| book.would_cross(o.side, p)) {
            return Err(RejectReason::PostOnlyWouldTake);
        }
        if !self.config.risk_enabled {
            return Ok(());
        }
        let price = limit.ok_or(RejectReason::MissingPrice)?;
        let saved_ts = std::mem::replace(&mut self.cur_ts, ts);
        let risk = self.check_risk(o.user, o.symbol, o.side, o.qty, price, false);
        self.cur_ts = saved_ts;
        risk?;
        if let Some(max) = self.users.get(&o.user).and_then(|u| u.limits.max_orders_per_second) {
            let mut window = self.users[&o.user].velocity.clone();
            if !window.admit(ts, max) {
                return Err(RejectReason::Velocity);
            }
        }
        let need = self.required_reserve(o.symbol, o.side, price, o.qty)?;
        let asset = checks::reserve_asset(&self.symbols[o.symbol.0 as usize].spec, o.side);
        let available = self.ledger.balance(o.user, asset).map_or(Amount::ZERO, |b| b.available);
        if need > available {
            return Err(RejectReason::InsufficientFunds);
        }
        Ok(())
    }

    /// Static checks of a new order against the symbol and the user: shape, grid limits,
    /// price band and minimum notional.
    fn validate_place(&self, o: &NewOrder) -> Result<(), RejectReason> {
        let sym = self.symbols.get(o.symbol.0 as usize).ok_or(RejectReason::UnknownSymbol)?;
        if !self.users.contains_key(&o.user) {
            return Err(RejectReason::UnknownUser);
        }
        if self.orders.contains_key(&o.order_id) {
            return Err(RejectReason::DuplicateOrderId);
        }
        checks::validate_shape(o, &sym.spec, sym.last_price)
    }

    /// The pre-trade limits of one user for an order (or the increase of one) of `qty` at
    /// worst-case `price`. `count_velocity` records the order in the rate window.
    fn check_risk(
        &mut self,
        user: UserId,
        symbol: SymbolId,
        side: Side,
        qty: Qty,
        price: Price,
        count_velocity: bool,
    ) -> Result<(), RejectReason> {
        let query = RiskQuery { user, symbol, side, qty, price, ts: self.cur_ts, count_velocity };
        checks::check_risk(self.global_kill, self.users.get_mut(&user), &self.ledger, &self.symbols[..], &query)
    }

    /// Funds an order of `qty` at worst-case `price` needs in reserve.
    fn required_reserve(&self, symbol: SymbolId, side: Side, price: Price, qty: Qty) -> Result<Amount, RejectReason> {
        checks::required_reserve(&self.symbols[symbol.0 as usize].spec, side, price, qty)
    }

    /// Brings an order's reservation from `current` to what `qty` at `price` needs;
    /// returns the new reservation.
    fn reserve_for(
        &mut self,
        user: UserId,
        symbol: SymbolId,
        side: Side,
        price: Price,
        qty: Qty,
        current: Amount,
    ) -> Result<Amount, RejectReason> {
        let need = self.required_reserve(symbol, side, price, qty)?;
        let asset = checks::reserve_asset(&self.symbols[symbol.0 as usize].spec, side);
        if need > current {
            self.ledger
                .reserve(user, asset, Amount(need.0 - current.0))
                .map_err(|_| RejectReason::InsufficientFunds)?;
        } else if need < current {
            self.ledger.release(user, asset, Amount(current.0 - need.0)).map_err(|_| RejectReason::Overflow)?;
        }
        if need != current {
            self.touched_balances.push((user, asset));
        }
        Ok(need)
    }

    /// Runs an accepted order against the book and finishes it: rest, expire, cancel (STP)
    /// or fill.
    fn execute(&mut self, order_id: OrderId, out: &mut Vec<EventEnvelope>) {
        let Some(live) = self.orders.get(&order_id) else { return };
        let o = &live.order;
        let (symbol, side, user, stp, tif, order_type) = (o.symbol, o.side, o.user, o.stp, o.tif, o.order_type);
        let limit = live.price;
        let remaining = live.remaining();
        if tif == TimeInForce::Fok {
            let book = &self.symbols[symbol.0 as usize].book;
            if book.fillable(side, limit, remaining, user, stp) < remaining {
                return self.finish_unfilled(order_id, OrderEvent::Expire, None, out);
            }
        }
        let exec = self.run_match(order_id, symbol, side, limit, remaining, user, stp, out);
        let Some(live) = self.orders.get(&order_id) else { return };
        if live.remaining().is_zero() {
            return;
        }
        if exec.stopped_by_stp {
            return self.finish_unfilled(order_id, OrderEvent::Cancel, Some(CancelReason::SelfTradePrevention), out);
        }
        let rests = tif == TimeInForce::Gtc && order_type.has_limit_price();
        if rests {
            let price = live.price.unwrap_or_default();
            let rem = live.remaining();
            let mut deltas = std::mem::take(&mut self.buf.deltas);
            deltas.clear();
            self.symbols[symbol.0 as usize].book.insert(side, price, order_id, user, rem, &mut deltas);
            for d in deltas.drain(..) {
                self.emit(out, Event::BookChanged { symbol, delta: d });
            }
            self.buf.deltas = deltas;
        } else {
            self.finish_unfilled(order_id, OrderEvent::Expire, None, out);
        }
    }

    /// Matches `qty` of an order as the taker and settles every fill.
    #[allow(clippy::too_many_arguments)]
    fn run_match(
        &mut self,
        taker_order: OrderId,
        symbol: SymbolId,
        side: Side,
        limit: Option<Price>,
        qty: Qty,
        user: UserId,
        stp: StpMode,
        out: &mut Vec<EventEnvelope>,
    ) -> Execution {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let outcome = self.symbols[symbol.0 as usize].book.match_incoming(side, limit, qty, user, stp, &mut buf);
        for d in buf.deltas.drain(..) {
            self.emit(out, Event::BookChanged { symbol, delta: d });
        }
        for c in buf.stp_cancels.drain(..) {
            self.close_order(c.order_id, OrderEvent::Cancel, Some(CancelReason::SelfTradePrevention), out);
        }
        let fills = std::mem::take(&mut buf.fills);
        for f in &fills {
            self.settle_fill(symbol, side, taker_order, user, f, out);
        }
        buf.fills = fills;
        buf.fills.clear();
        self.buf = buf;
        Execution { stopped_by_stp: outcome.taker_stopped_by_stp }
    }

    fn settle_fill(
        &mut self,
        symbol: SymbolId,
        taker_side: Side,
        taker_order: OrderId,
        taker_user: UserId,
        f: &qt_core::Fill,
        out: &mut Vec<EventEnvelope>,
    ) {
        let spec = &self.symbols[symbol.0 as usize].spec;
        let notional = spec.notional(f.price, f.qty);
        let maker_fee = fee_amount(notional, spec.maker_fee_bps);
        let taker_fee = fee_amount(notional, spec.taker_fee_bps);
        let (base, quote) = (spec.base, spec.quote);
        let base_amount = i128::from(f.qty.0) * i128::from(spec.lot);
        let trade_id = TradeId(self.next_trade_id);
        self.next_trade_id += 1;
        self.symbols[symbol.0 as usize].last_price = Some(f.price);

        if self.config.risk_enabled {
            let (buyer, seller, buyer_fee, seller_fee, buy_order, sell_order) = match taker_side {
                Side::Buy => (taker_user, f.maker_user, taker_fee, maker_fee, taker_order, f.maker_order),
                Side::Sell => (f.maker_user, taker_user, maker_fee, taker_fee, f.maker_order, taker_order),
            };
            let settlement = Settlement {
                buyer,
                seller,
                base,
                quote,
                base_amount: Amount(base_amount as i64),
                quote_amount: Amount(notional as i64),
                buyer_fee: Amount(buyer_fee as i64),
                seller_fee: Amount(seller_fee as i64),
            };
            // Reservations were made for the worst case, so settlement cannot fail; if it
            // ever did, the ledger is left untouched and the books stay consistent.
            if self.ledger.settle(&settlement).is_ok() {
                if let Some(o) = self.orders.get_mut(&buy_order) {
                    o.reserved.0 -= (notional + buyer_fee.max(0)) as i64;
                }
                if let Some(o) = self.orders.get_mut(&sell_order) {
                    o.reserved.0 -= base_amount as i64;
                }
                self.touched_balances.extend([(buyer, quote), (buyer, base), (seller, quote), (seller, base)]);
            }
            let ts = self.cur_ts;
            for (u, s) in [(buyer, Side::Buy), (seller, Side::Sell)] {
                if let Some(state) = self.users.get_mut(&u) {
                    let realized = state.positions[symbol.0 as usize].apply_fill(s, f.qty, notional);
                    state.daily.roll(ts);
                    state.daily.realized += realized;
                    self.touched_positions.push((u, symbol));
                }
            }
        }
        self.emit(
            out,
            Event::Trade {
                trade_id,
                symbol,
                price: f.price,
                qty: f.qty,
                taker_side,
                maker_order: f.maker_order,
                maker_user: f.maker_user,
                taker_order,
                taker_user,
                maker_fee: Amount(maker_fee as i64),
                taker_fee: Amount(taker_fee as i64),
            },
        );
        self.record_fill(f.maker_order, f.qty, out);
        self.record_fill(taker_order, f.qty, out);
    }

    /// Adds a fill to an order's cumulative quantity and moves its status; a completed
    /// order is settled and closed.
    fn record_fill(&mut self, order_id: OrderId, qty: Qty, out: &mut Vec<EventEnvelope>) {
        let Some(o) = self.orders.get_mut(&order_id) else { return };
        o.filled.0 += qty.0;
        let done = o.filled >= o.qty;
        let event = if done { OrderEvent::Fill } else { OrderEvent::PartialFill };
        let Ok(status) = transition(o.status, event) else { return };
        o.status = status;
        let (user, filled) = (o.order.user, o.filled);
        self.emit(out, Event::OrderFilled { order_id, user, filled, status });
        if done {
            self.close_order(order_id, OrderEvent::Settle, None, out);
        }
    }

    /// Ends an order that was accepted but never reached the book (FOK, IOC remainders,
    /// STP): it is not resting, so only its reservation and status change.
    fn finish_unfilled(
        &mut self,
        order_id: OrderId,
        event: OrderEvent,
        reason: Option<CancelReason>,
        out: &mut Vec<EventEnvelope>,
    ) {
        self.close_order(order_id, event, reason, out);
    }

    /// Moves an open order to a final status (cancelled, expired or settled), releases its
    /// reservation and forgets it. The caller has removed it from the book already.
    fn close_order(
        &mut self,
        order_id: OrderId,
        event: OrderEvent,
        reason: Option<CancelReason>,
        out: &mut Vec<EventEnvelope>,
    ) {
        let Some(o) = self.orders.get(&order_id) else { return };
        let Ok(_status) = transition(o.status, event) else { return };
        let Some(o) = self.orders.remove(&order_id) else { return };
        let remaining = o.remaining();
        let user = o.order.user;
        if o.reserved.is_positive() {
            let asset = checks::reserve_asset(&self.symbols[o.order.symbol.0 as usize].spec, o.order.side);
            if self.ledger.release(user, asset, o.reserved).is_ok() {
                self.touched_balances.push((user, asset));
            }
        }
        if let Some(u) = self.users.get_mut(&user) {
            u.open_orders.remove(&order_id);
        }
        if o.waiting_stop {
            let sym = &mut self.symbols[o.order.symbol.0 as usize];
            let key = (o.order.stop_price.unwrap_or_default(), order_id);
            sym.buy_stops.remove(&key);
            sym.sell_stops.remove(&key);
        }
        let event = match event {
            OrderEvent::Cancel => {
                Event::OrderCancelled { order_id, user, reason: reason.unwrap_or(CancelReason::User), remaining }
            }
            OrderEvent::Expire => Event::OrderExpired { order_id, user, remaining },
            _ => Event::OrderSettled { order_id, user },
        };
        self.emit(out, event);
    }

    /// Cancels an open order wherever it is (book or stop list).
    fn cancel_order(&mut self, order_id: OrderId, reason: CancelReason, out: &mut Vec<EventEnvelope>) {
        let Some(o) = self.orders.get(&order_id) else { return };
        let symbol = o.order.symbol;
        let mut deltas = std::mem::take(&mut self.buf.deltas);
        deltas.clear();
        self.symbols[symbol.0 as usize].book.cancel(order_id, &mut deltas);
        for d in deltas.drain(..) {
            self.emit(out, Event::BookChanged { symbol, delta: d });
        }
        self.buf.deltas = deltas;
        self.close_order(order_id, OrderEvent::Cancel, Some(reason), out);
    }

    fn cancel_cmd(&mut self, user: UserId, order_id: OrderId, out: &mut Vec<EventEnvelope>) {
        match self.orders.get(&order_id) {
            Some(o) if o.order.user == user => self.cancel_order(order_id, CancelReason::User, out),
            _ => self.reject_cmd(out, Some(user), Some(order_id), RejectReason::OrderNotFound),
        }
    }

    fn mass_cancel(
        &mut self,
        user: UserId,
        symbol: Option<SymbolId>,
        reason: CancelReason,
        out: &mut Vec<EventEnvelope>,
    ) {
        let Some(u) = self.users.get(&user) else {
            return self.reject_cmd(out, Some(user), None, RejectReason::UnknownUser);
        };
        let mut ids: Vec<OrderId> = u
            .open_orders
            .iter()
            .copied()
            .filter(|id| symbol.is_none_or(|s| self.orders.get(id).is_some_and(|o| o.order.symbol == s)))
            .collect();
        ids.sort_unstable();
        for id in ids {
            self.cancel_order(id, reason, out);
        }
    }

    fn amend(
        &mut self,
        user: UserId,
        order_id: OrderId,
        new_price: Option<Price>,
        new_qty: Option<Qty>,
        out: &mut Vec<EventEnvelope>,
    ) {
        let Some(o) = self.orders.get(&order_id).filter(|o| o.order.user == user) else {
            return self.reject_cmd(out, Some(user), Some(order_id), RejectReason::OrderNotFound);
        };
        let (symbol, side, order_type, stp) = (o.order.symbol, o.order.side, o.order.order_type, o.order.stp);
        let (old_price, old_qty, filled, reserved, waiting) = (o.price, o.qty, o.filled, o.reserved, o.waiting_stop);
        let price = new_price.or(old_price);
        let qty = new_qty.unwrap_or(old_qty);
        let post_only = o.order.post_only;
        let reject = |s: &mut Self, out: &mut Vec<EventEnvelope>, r| s.reject_cmd(out, Some(user), Some(order_id), r);
        if !order_type.has_limit_price() && new_price.is_some() {
            return reject(self, out, RejectReason::InvalidPrice);
        }
        if price == old_price && qty == old_qty {
            return reject(self, out, RejectReason::AmendNoChange);
        }
        if !qty.is_positive() {
            return reject(self, out, RejectReason::InvalidQuantity);
        }
        if qty <= filled {
            return reject(self, out, RejectReason::AmendBelowFilled);
        }
        let sym = &self.symbols[symbol.0 as usize];
        if qty > sym.spec.max_qty {
            return reject(self, out, RejectReason::QuantityTooLarge);
        }
        if let (Some(p), Some(last)) = (new_price, sym.last_price) {
            if !sym.spec.within_band(p, last) {
                return reject(self, out, RejectReason::PriceOutOfBand);
            }
        }
        let moves = price != old_price || qty > old_qty;
        if post_only && moves && price.is_some_and(|p| !waiting && sym.book.would_cross(side, p)) {
            return reject(self, out, RejectReason::PostOnlyWouldTake);
        }
        let remaining = Qty(qty.0 - filled.0);
        if self.config.risk_enabled {
            // A waiting stop-market order has no limit price: its reservation was made
            // at the collar of its stop price, and stays so.
            let stop = self.orders.get(&order_id).and_then(|o| o.order.stop_price);
            let spec = &self.symbols[symbol.0 as usize].spec;
            let worst = price.or_else(|| stop.map(|s| spec.collar_price(s, side == Side::Buy))).unwrap_or_default();
            let increase = Qty((qty.0 - old_qty.0).max(0));
            let check_qty = if increase.is_positive() { increase } else { remaining };
            if let Err(r) = self.check_risk(user, symbol, side, check_qty, worst, true) {
                return reject(self, out, r);
            }
            match self.reserve_for(user, symbol, side, worst, remaining, reserved) {
                Ok(r) => {
                    if let Some(o) = self.orders.get_mut(&order_id) {
                        o.reserved = r;
                    }
                }
                Err(r) => return reject(self, out, r),
            }
        }
        let Some(o) = self.orders.get_mut(&order_id) else { return };
        let Ok(status) = transition(o.status, OrderEvent::Amend) else { return };
        o.status = status;
        o.price = price;
        o.qty = qty;
        let keeps_priority = !moves;
        self.emit(out, Event::OrderAmended { order_id, user, price, qty, kept_priority: keeps_priority || waiting });
        if waiting {
            return;
        }
        let mut deltas = std::mem::take(&mut self.buf.deltas);
        deltas.clear();
        let book = &mut self.symbols[symbol.0 as usize].book;
        if keeps_priority {
            book.reduce(order_id, remaining, &mut deltas);
        } else {
            book.cancel(order_id, &mut deltas);
        }
        for d in deltas.drain(..) {
            self.emit(out, Event::BookChanged { symbol, delta: d });
        }
        self.buf.deltas = deltas;
        if !keeps_priority {
            // Re-enters at the back of its (new) level; it may trade if it now crosses.
            let _ = stp;
            self.execute(order_id, out);
            self.trigger_stops(symbol, out);
        }
    }

    /// Triggers every stop order whose condition the last price now meets, oldest order
    /// first, repeating while triggered orders move the price further.
    fn trigger_stops(&mut self, symbol: SymbolId, out: &mut Vec<EventEnvelope>) {
        loop {
            let sym = &mut self.symbols[symbol.0 as usize];
            let Some(last) = sym.last_price else { return };
            let mut triggered: Vec<OrderId> = Vec::new();
            while let Some(&(stop, id)) = sym.buy_stops.first() {
                if stop > last {
                    break;
                }
                sym.buy_stops.remove(&(stop, id));
                triggered.push(id);
            }
            while let Some(&(stop, id)) = sym.sell_stops.last() {
                if stop < last {
                    break;
                }
                sym.sell_stops.remove(&(stop, id));
                triggered.push(id);
            }
            if triggered.is_empty() {
                return;
            }
            triggered.sort_unstable();
            for id in triggered {
                let Some(o) = self.orders.get_mut(&id) else { continue };
                let Ok(status) = transition(o.status, OrderEvent::Trigger) else { continue };
                o.status = status;
                o.waiting_stop = false;
                if o.order.order_type == OrderType::Stop {
                    // Stop-market orders trade up to the collar of their stop price: the
                    // price their reservation was made for.
                    let spec = &self.symbols[symbol.0 as usize].spec;
                    o.price = o.order.stop_price.map(|s| spec.collar_price(s, o.order.side == Side::Buy));
                }
                let user = o.order.user;
                self.emit(out, Event::OrderTriggered { order_id: id, user });
                self.execute(id, out);
            }
        }
    }

    /// Checks the whole state's invariants; for tests and debug tooling.
    pub fn check_invariants(&self) -> Result<(), String> {
        for s in &self.symbols {
            s.book.check_invariants().map_err(|e| format!("{}: {e}", s.spec.name))?;
            for r in s.book.resting_orders() {
                let o = self.orders.get(&r.order_id).ok_or(format!("resting order {:?} not live", r.order_id))?;
                if o.remaining() != r.qty || o.price != Some(r.price) {
                    return Err(format!("order {:?} book/record mismatch", r.order_id));
                }
            }
        }
        if self.config.risk_enabled {
            self.ledger.check_conservation()?;
            // reserved per (user, asset) equals the sum of that user's order reservations
            let mut expected: FxHashMap<(UserId, AssetId), i64> = FxHashMap::default();
            for o in self.orders.values() {
                let asset = checks::reserve_asset(&self.symbols[o.order.symbol.0 as usize].spec, o.order.side);
                *expected.entry((o.order.user, asset)).or_default() += o.reserved.0;
            }
            for (user, balances) in self.ledger.sorted_accounts() {
                for (i, b) in balances.iter().enumerate() {
                    let e = expected.get(&(user, AssetId(i as u16))).copied().unwrap_or(0);
                    if b.reserved.0 != e {
                        return Err(format!("user {user:?} asset {i}: reserved {} != orders {e}", b.reserved.0));
                    }
                }
            }
        }
        Ok(())
    }
}
