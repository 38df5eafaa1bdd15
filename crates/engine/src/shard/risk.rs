//! The risk half: users, balances, limits, positions and each open order's reservation.
//!
//! Contract (see the module above for the pipeline):
//! - A new order is checked exactly as [`crate::Exchange`] checks it ([`crate::checks`]),
//!   with the marks the matching shards last reported instead of the book; what the
//!   matching shard alone can know (the book at that instant) it checks again there.
//! - Funds are reserved before the order leaves and travel with it as its budget; an amend
//!   that needs more reserves the difference before it leaves. Nothing is released but what
//!   the matching shard hands back (`Amended`, `AmendRefused`) and, when it reports the
//!   order `Closed`, what is left.
//! - Every fill side is settled with [`qt_core::Ledger::settle_side`]; a failure (which the
//!   worst-case reservation rules out) is counted in [`RiskShard::settle_failures`] and
//!   changes no balance.

use super::{MarketUpdate, MatchReport, MatchRequest, RiskInput, Sequenced};
use crate::checks::{self, Marks, RiskQuery};
use crate::command::{Command, CommandMeta};
use crate::event::{Event, EventEnvelope};
use crate::exchange::{EngineConfig, UserState};
use qt_core::{
    Amount, Asset, AssetId, CancelReason, Ledger, NewOrder, OrderId, OrderType, Position, Price, Qty, RejectReason,
    RiskLimits, Side, SideSettlement, SymbolId, SymbolSpec, UserId,
};
use rustc_hash::FxHashMap;

/// A symbol as a risk shard sees it: its spec and the last prices reported for it.
#[derive(Clone, Debug)]
struct RiskSymbol {
    spec: SymbolSpec,
    mark: MarketUpdate,
}

impl Marks for [RiskSymbol] {
    fn symbol_count(&self) -> usize {
        self.len()
    }
    fn spec(&self, i: usize) -> &SymbolSpec {
        &self[i].spec
    }
    fn last(&self, i: usize) -> Option<Price> {
        self[i].mark.last
    }
}

/// An open order as its user's risk shard knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskOrder {
    pub order: NewOrder,
    /// Price of the version in force as far as this shard knows (the latest amend sent,
    /// until the matching shard answers): the limit, the collar of a market order, `None`
    /// for a stop-market order (reserved at the collar of its stop price).
    pub price: Option<Price>,
    /// Total quantity, likewise.
    pub qty: Qty,
    /// Filled quantity reported so far.
    pub filled: Qty,
    /// Funds reserved for the order now (quote for buys, base for sells): its budget at the
    /// matching shard plus what is on its way there.
    pub reserved: Amount,
}

/// The risk half of the exchange for the users of one shard.
#[derive(Debug)]
pub struct RiskShard {
    config: EngineConfig,
    assets: Vec<Asset>,
    symbols: Vec<RiskSymbol>,
    users: FxHashMap<UserId, UserState>,
    ledger: Ledger,
    orders: FxHashMap<OrderId, RiskOrder>,
    global_kill: bool,
    max_order_id: u64,
    event_seq: u64,
    last_input_seq: u64,
    settle_failures: u64,
    // Per-input scratch space; never part of the state.
    touched_balances: Vec<(UserId, AssetId)>,
    touched_positions: Vec<(UserId, SymbolId)>,
    cur_seq: u64,
    cur_ts: i64,
    cur_meta: Option<Box<CommandMeta>>,
}

/// What one input made a risk shard say.
#[derive(Debug, Default)]
pub struct RiskOutput {
    pub events: Vec<EventEnvelope>,
    pub requests: Vec<MatchRequest>,
}

impl RiskOutput {
    pub fn clear(&mut self) {
        self.events.clear();
        self.requests.clear();
    }
}

impl RiskShard {
    pub fn new(config: EngineConfig) -> Self {
        RiskShard {
            config,
            assets: Vec::new(),
            symbols: Vec::new(),
            users: FxHashMap::default(),
            ledger: Ledger::new(0),
            orders: FxHashMap::default(),
            global_kill: false,
            max_order_id: 0,
            event_seq: 0,
            last_input_seq: 0,
            settle_failures: 0,
            touched_balances: Vec::new(),
            touched_positions: Vec::new(),
            cur_seq: 0,
            cur_ts: 0,
            cur_meta: None,
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
    pub fn user(&self, id: UserId) -> Option<&UserState> {
        self.users.get(&id)
    }
    pub fn users(&self) -> impl Iterator<Item = UserId> + '_ {
        self.users.keys().copied()
    }
    pub fn order(&self, id: OrderId) -> Option<&RiskOrder> {
        self.orders.get(&id)
    }
    pub fn orders(&self) -> impl Iterator<Item = &RiskOrder> + '_ {
        self.orders.values()
    }
    pub fn max_order_id(&self) -> u64 {
        self.max_order_id
    }
    pub fn last_input_seq(&self) -> u64 {
        self.last_input_seq
    }
    /// Fill sides that could not be settled; always zero unless a reservation was short.
    pub fn settle_failures(&self) -> u64 {
        self.settle_failures
    }

    /// Applies one input. Inputs must come with strictly increasing sequence numbers; one
    /// that does not is ignored (it was applied already), so a replay is idempotent.
    pub fn apply(&mut self, input: &Sequenced<RiskInput>, out: &mut RiskOutput) {
        if input.seq <= self.last_input_seq {
            return;
        }
        self.last_input_seq = input.seq;
        self.cur_seq = input.seq;
        self.cur_ts = input.ts;
        match &input.input {
            RiskInput::Command { cmd, meta } => {
                self.cur_meta.clone_from(meta);
                self.command(cmd, out);
                self.cur_meta = None;
            }
            RiskInput::Report(report) => self.report(report),
            RiskInput::Market(update) => {
                if let Some(s) = self.symbols.get_mut(update.symbol.0 as usize) {
                    s.mark = *update;
                }
            }
        }
        self.flush_touched(out);
    }

    fn command(&mut self, cmd: &Command, out: &mut RiskOutput) {
        match cmd {
            Command::AddAsset { code, scale } => self.add_asset(code, *scale, out),
            Command::AddSymbol(spec) => self.add_symbol(spec, out),
            Command::CreateUser { user, limits } => self.create_user(*user, limits.clone(), out),
            Command::Deposit { user, asset, amount } => self.move_funds(*user, *asset, *amount, true, out),
            Command::Withdraw { user, asset, amount } => self.move_funds(*user, *asset, *amount, false, out),
            Command::Place(order) => self.place(order, out),
            Command::Cancel { user, order_id } => match self.orders.get(order_id) {
                Some(o) if o.order.user == *user => {
                    let symbol = o.order.symbol;
                    out.requests.push(MatchRequest::Cancel {
                        user: *user,
                        order_id: *order_id,
                        symbol,
                        reason: CancelReason::User,
                        meta: self.cur_meta.clone(),
                    });
                }
                _ => self.reject_cmd(out, Some(*user), Some(*order_id), RejectReason::OrderNotFound),
            },
            Command::Amend { user, order_id, price, qty } => self.amend(*user, *order_id, *price, *qty, out),
            Command::MassCancel { user, symbol } => self.mass_cancel(*user, *symbol, CancelReason::MassCancel, out),
            Command::SetLimits { user, limits } => {
                let Some(u) = self.users.get_mut(user) else {
                    return self.reject_cmd(out, Some(*user), None, RejectReason::UnknownUser);
                };
                let kill_on = limits.kill_switch && !u.limits.kill_switch;
                u.limits = limits.clone();
                self.emit(out, Event::LimitsChanged { user: *user });
                if kill_on {
                    self.mass_cancel(*user, None, CancelReason::KillSwitch, out);
                }
            }
            Command::SetKillSwitch { user: Some(user), on } => {
                let Some(state) = self.users.get_mut(user) else {
                    return self.reject_cmd(out, Some(*user), None, RejectReason::UnknownUser);
                };
                state.limits.kill_switch = *on;
                self.emit(out, Event::KillSwitchChanged { user: Some(*user), on: *on });
                if *on {
                    self.mass_cancel(*user, None, CancelReason::KillSwitch, out);
                }
            }
            // The global switch reaches every risk shard; each cancels its users' orders.
            Command::SetKillSwitch { user: None, on } => {
                self.global_kill = *on;
                self.emit(out, Event::KillSwitchChanged { user: None, on: *on });
                if *on {
                    let mut ids: Vec<OrderId> = self.orders.keys().copied().collect();
                    ids.sort_unstable();
                    self.request_cancels(&ids, CancelReason::KillSwitch, out);
                }
            }
        }
    }

    fn emit(&mut self, out: &mut RiskOutput, event: Event) {
        self.event_seq += 1;
        out.events.push(EventEnvelope { seq: self.event_seq, cmd_seq: self.cur_seq, ts: self.cur_ts, event });
    }

    fn reject_cmd(&mut self, out: &mut RiskOutput, user: Option<UserId>, order_id: Option<OrderId>, r: RejectReason) {
        self.emit(out, Event::CommandRejected { user, order_id, reason: r });
    }

    fn reject_order(&mut self, out: &mut RiskOutput, o: &NewOrder, reason: RejectReason) {
        self.emit(out, Event::OrderRejected { order_id: o.order_id, user: o.user, reason });
    }

    /// Emits the balances and positions this input changed, once each, in id order.
    fn flush_touched(&mut self, out: &mut RiskOutput) {
        let mut balances = std::mem::take(&mut self.touched_balances);
        balances.sort_unstable();
        balances.dedup();
        for (user, asset) in balances.drain(..) {
            if let Some(b) = self.ledger.balance(user, asset) {
                self.emit(out, Event::BalanceChanged { user, asset, available: b.available, reserved: b.reserved });
            }
        }
        self.touched_balances = balances;
        let mut positions = std::mem::take(&mut self.touched_positions);
        positions.sort_unstable();
        positions.dedup();
        for (user, symbol) in positions.drain(..) {
            if let Some(p) = self.users.get(&user).and_then(|u| u.positions.get(symbol.0 as usize)).copied() {
                let Position { qty, cost, realized } = p;
                self.emit(out, Event::PositionChanged { user, symbol, qty, cost, realized });
            }
        }
        self.touched_positions = positions;
    }

    // ---- reference data and accounts --------------------------------------------------

    fn add_asset(&mut self, code: &str, scale: u32, out: &mut RiskOutput) {
        if scale > 18 || code.is_empty() || self.assets.iter().any(|a| a.code == code) {
            return self.reject_cmd(out, None, None, RejectReason::UnknownAsset);
        }
        let id = self.ledger.add_asset();
        self.assets.push(Asset { id, code: code.to_string(), scale });
        self.emit(out, Event::AssetAdded { asset: id, code: code.to_string(), scale });
    }

    fn add_symbol(&mut self, spec: &SymbolSpec, out: &mut RiskOutput) {
        if !checks::symbol_is_valid(spec, &self.assets, self.symbols.iter().map(|s| &s.spec)) {
            return self.reject_cmd(out, None, None, RejectReason::InvalidSymbol);
        }
        self.symbols.push(RiskSymbol { spec: spec.clone(), mark: MarketUpdate::empty(spec.id) });
        for u in self.users.values_mut() {
            u.positions.push(Position::default());
        }
        self.emit(out, Event::SymbolAdded { symbol: spec.id });
    }

    fn create_user(&mut self, user: UserId, limits: Option<RiskLimits>, out: &mut RiskOutput) {
        if self.users.contains_key(&user) {
            return self.reject_cmd(out, Some(user), None, RejectReason::DuplicateUser);
        }
        let state = UserState {
            limits: limits.unwrap_or_else(|| self.config.default_limits.clone()),
            positions: vec![Position::default(); self.symbols.len()],
            ..UserState::default()
        };
        self.users.insert(user, state);
        self.ledger.open_account(user);
        self.emit(out, Event::UserCreated { user });
    }

    fn move_funds(&mut self, user: UserId, asset: AssetId, amount: Amount, deposit: bool, out: &mut RiskOutput) {
        let result =
            if deposit { self.ledger.deposit(user, asset, amount) } else { self.ledger.withdraw(user, asset, amount) };
        match result {
            Ok(_) => self.touched_balances.push((user, asset)),
            Err(e) => self.reject_cmd(out, Some(user), None, checks::ledger_reason(e)),
        }
    }

    // ---- orders -----------------------------------------------------------------------

    fn place(&mut self, o: &NewOrder, out: &mut RiskOutput) {
        self.max_order_id = self.max_order_id.max(o.order_id.0);
        let worst = match self.check_place(o) {
            Ok(worst) => worst,
            Err(reason) => return self.reject_order(out, o, reason),
        };
        let mut reserved = Amount::ZERO;
        if self.config.risk_enabled {
            let Some(price) = worst else { return self.reject_order(out, o, RejectReason::MissingPrice) };
            let query = self.query(o.user, o.symbol, o.side, o.qty, price, true);
            if let Err(reason) = self.check_risk(&query) {
                return self.reject_order(out, o, reason);
            }
            match self.reserve_more(o.user, o.symbol, o.side, price, o.qty, Amount::ZERO) {
                Ok(r) => reserved = r,
                Err(reason) => return self.reject_order(out, o, reason),
            }
        }
        let price = if o.order_type == OrderType::Market { worst } else { o.price };
        let record = RiskOrder { order: o.clone(), price, qty: o.qty, filled: Qty::ZERO, reserved };
        self.orders.insert(o.order_id, record);
        if let Some(u) = self.users.get_mut(&o.user) {
            u.open_orders.insert(o.order_id);
        }
        let budget = self.config.risk_enabled.then_some(reserved);
        out.requests.push(MatchRequest::Place { order: o.clone(), price, budget, meta: self.cur_meta.clone() });
    }

    /// The checks before risk, as the exchange makes them, with the reported marks in place
    /// of the book; returns the worst-case price.
    fn check_place(&self, o: &NewOrder) -> Result<Option<Price>, RejectReason> {
        let sym = self.symbols.get(o.symbol.0 as usize).ok_or(RejectReason::UnknownSymbol)?;
        if !self.users.contains_key(&o.user) {
            return Err(RejectReason::UnknownUser);
        }
        if self.orders.contains_key(&o.order_id) {
            return Err(RejectReason::DuplicateOrderId);
        }
        let mark = sym.mark;
        checks::validate_shape(o, &sym.spec, mark.last)?;
        let worst = checks::worst_price(o, &sym.spec, || {
            mark.last.or(match o.side {
                Side::Buy => mark.best_ask,
                Side::Sell => mark.best_bid,
            })
        })?;
        if o.post_only && o.price.is_some_and(|p| would_cross(&mark, o.side, p)) {
            return Err(RejectReason::PostOnlyWouldTake);
        }
        Ok(worst)
    }

    fn query(&self, user: UserId, symbol: SymbolId, side: Side, qty: Qty, price: Price, count: bool) -> RiskQuery {
        RiskQuery { user, symbol, side, qty, price, ts: self.cur_ts, count_velocity: count }
    }

    fn check_risk(&mut self, q: &RiskQuery) -> Result<(), RejectReason> {
        checks::check_risk(self.global_kill, self.users.get_mut(&q.user), &self.ledger, &self.symbols[..], q)
    }

    /// Raises a reservation from `current` to what `qty` at `price` needs, never lowering
    /// it; returns the new reservation.
    fn reserve_more(
        &mut self,
        user: UserId,
        symbol: SymbolId,
        side: Side,
        price: Price,
        qty: Qty,
        current: Amount,
    ) -> Result<Amount, RejectReason> {
        let spec = &self.symbols[symbol.0 as usize].spec;
        let need = checks::required_reserve(spec, side, price, qty)?;
        if need <= current {
            return Ok(current);
        }
        let asset = checks::reserve_asset(spec, side);
        self.ledger.reserve(user, asset, Amount(need.0 - current.0)).map_err(|_| RejectReason::InsufficientFunds)?;
        self.touched_balances.push((user, asset));
        Ok(need)
    }

    fn amend(&mut self, user: UserId, order_id: OrderId, price: Option<Price>, qty: Option<Qty>, out: &mut RiskOutput) {
        let Some(o) = self.orders.get(&order_id).filter(|o| o.order.user == user) else {
            return self.reject_cmd(out, Some(user), Some(order_id), RejectReason::OrderNotFound);
        };
        let (symbol, side, order_type) = (o.order.symbol, o.order.side, o.order.order_type);
        let (old_price, old_qty, filled, reserved) = (o.price, o.qty, o.filled, o.reserved);
        let (post_only, stop) = (o.order.post_only, o.order.stop_price);
        let new_price = price.or(old_price);
        let new_qty = qty.unwrap_or(old_qty);
        let sym = &self.symbols[symbol.0 as usize];
        let out_of_band = price.zip(sym.mark.last).is_some_and(|(p, last)| !sym.spec.within_band(p, last));
        let refusal = if !order_type.has_limit_price() && price.is_some() {
            Some(RejectReason::InvalidPrice)
        } else if new_price == old_price && new_qty == old_qty {
            Some(RejectReason::AmendNoChange)
        } else if !new_qty.is_positive() {
            Some(RejectReason::InvalidQuantity)
        } else if new_qty <= filled {
            Some(RejectReason::AmendBelowFilled)
        } else if new_qty > sym.spec.max_qty {
            Some(RejectReason::QuantityTooLarge)
        } else if out_of_band {
            Some(RejectReason::PriceOutOfBand)
        } else {
            None
        };
        let moves = new_price != old_price || new_qty > old_qty;
        let refusal = refusal.or_else(|| {
            (post_only && moves && new_price.is_some_and(|p| would_cross(&sym.mark, side, p)))
                .then_some(RejectReason::PostOnlyWouldTake)
        });
        if let Some(r) = refusal {
            return self.reject_cmd(out, Some(user), Some(order_id), r);
        }
        let mut extra = Amount::ZERO;
        if self.config.risk_enabled {
            // A stop-market order has no limit price: it was reserved at the collar of its
            // stop price, and stays so.
            let spec = &self.symbols[symbol.0 as usize].spec;
            let worst = new_price.or_else(|| stop.map(|s| spec.collar_price(s, side == Side::Buy))).unwrap_or_default();
            let remaining = Qty(new_qty.0 - filled.0);
            let increase = Qty((new_qty.0 - old_qty.0).max(0));
            let check_qty = if increase.is_positive() { increase } else { remaining };
            let query = self.query(user, symbol, side, check_qty, worst, true);
            if let Err(r) = self.check_risk(&query) {
                return self.reject_cmd(out, Some(user), Some(order_id), r);
            }
            // The matching shard resizes the budget once it knows the fills this shard has
            // not seen yet; until then it may still trade at the old version, so nothing is
            // released here.
            match self.reserve_more(user, symbol, side, worst, remaining, reserved) {
                Ok(r) => extra = Amount(r.0 - reserved.0),
                Err(r) => return self.reject_cmd(out, Some(user), Some(order_id), r),
            }
        }
        if let Some(o) = self.orders.get_mut(&order_id) {
            o.reserved.0 += extra.0;
            o.price = new_price;
            o.qty = new_qty;
        }
        let price = if order_type.has_limit_price() { new_price } else { None };
        let meta = self.cur_meta.clone();
        out.requests.push(MatchRequest::Amend { user, order_id, symbol, price, qty: new_qty, extra, meta });
    }

    fn mass_cancel(&mut self, user: UserId, symbol: Option<SymbolId>, reason: CancelReason, out: &mut RiskOutput) {
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
        self.request_cancels(&ids, reason, out);
    }

    fn request_cancels(&mut self, ids: &[OrderId], reason: CancelReason, out: &mut RiskOutput) {
        for id in ids {
            if let Some(o) = self.orders.get(id) {
                let (user, symbol) = (o.order.user, o.order.symbol);
                out.requests.push(MatchRequest::Cancel { user, order_id: *id, symbol, reason, meta: None });
            }
        }
    }

    // ---- reports from the matching shards ---------------------------------------------

    fn report(&mut self, report: &MatchReport) {
        match *report {
            MatchReport::Fill { user, order_id, symbol, side, price, qty, fee, ts, .. } => {
                self.settle(user, order_id, symbol, side, price, qty, fee, ts)
            }
            MatchReport::Closed { order_id, .. } => self.close(order_id),
            MatchReport::Amended { order_id, price, qty, released, .. } => {
                self.amend_answered(order_id, Some((price, qty)), released)
            }
            MatchReport::AmendRefused { order_id, in_force, released, .. } => {
                self.amend_answered(order_id, in_force, released)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn settle(
        &mut self,
        user: UserId,
        order_id: OrderId,
        symbol: SymbolId,
        side: Side,
        price: Price,
        qty: Qty,
        fee: Amount,
        ts: i64,
    ) {
        let Some(sym) = self.symbols.get(symbol.0 as usize) else { return };
        let spec = &sym.spec;
        let notional = spec.notional(price, qty);
        let base_amount = i128::from(qty.0) * i128::from(spec.lot);
        let (Ok(quote_amount), Ok(base_amount)) =
            (qt_core::money::amount_from_i128(notional), qt_core::money::amount_from_i128(base_amount))
        else {
            self.settle_failures += 1;
            return;
        };
        let (base, quote) = (spec.base, spec.quote);
        if let Some(o) = self.orders.get_mut(&order_id) {
            o.filled.0 += qty.0;
        }
        if !self.config.risk_enabled {
            return;
        }
        let side_settlement = SideSettlement { user, side, base, quote, base_amount, quote_amount, fee };
        if self.ledger.settle_side(&side_settlement).is_ok() {
            if let Some(o) = self.orders.get_mut(&order_id) {
                o.reserved.0 -= match side {
                    Side::Buy => quote_amount.0 + fee.0.max(0),
                    Side::Sell => base_amount.0,
                };
            }
            self.touched_balances.extend([(user, quote), (user, base)]);
        } else {
            self.settle_failures += 1;
        }
        if let Some(state) = self.users.get_mut(&user) {
            let realized = state.positions[symbol.0 as usize].apply_fill(side, qty, notional);
            state.daily.roll(ts);
            state.daily.realized += realized;
            self.touched_positions.push((user, symbol));
        }
    }

    /// The order ended at the matching shard: give back what is left of its reservation.
    fn close(&mut self, order_id: OrderId) {
        let Some(o) = self.orders.remove(&order_id) else { return };
        let user = o.order.user;
        self.release(user, o.order.symbol, o.order.side, o.reserved);
        if let Some(u) = self.users.get_mut(&user) {
            u.open_orders.remove(&order_id);
        }
    }

    /// An amend was answered: the version the matching shard now has in force, and what it
    /// handed back from the budget.
    fn amend_answered(&mut self, order_id: OrderId, in_force: Option<(Option<Price>, Qty)>, released: Amount) {
        let Some(o) = self.orders.get_mut(&order_id) else { return };
        if let Some((price, qty)) = in_force {
            o.price = price;
            o.qty = qty;
        }
        let released = Amount(released.0.clamp(0, o.reserved.0));
        o.reserved.0 -= released.0;
        let (user, symbol, side) = (o.order.user, o.order.symbol, o.order.side);
        self.release(user, symbol, side, released);
    }

    fn release(&mut self, user: UserId, symbol: SymbolId, side: Side, amount: Amount) {
        if !amount.is_positive() {
            return;
        }
        let asset = checks::reserve_asset(&self.symbols[symbol.0 as usize].spec, side);
        if self.ledger.release(user, asset, amount).is_ok() {
            self.touched_balances.push((user, asset));
        }
    }

    /// The shard's invariants: its ledger conserves (clearing included), no settlement
    /// failed, and each user's reserved balance equals the sum of its orders' reservations.
    pub fn check_invariants(&self) -> Result<(), String> {
        if !self.config.risk_enabled {
            return Ok(());
        }
        self.ledger.check_conservation()?;
        if self.settle_failures > 0 {
            return Err(format!("{} fill sides could not be settled", self.settle_failures));
        }
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
        Ok(())
    }
}

/// Whether a limit at `price` on `side` would trade against the reported best prices.
fn would_cross(mark: &MarketUpdate, side: Side, price: Price) -> bool {
    match side {
        Side::Buy => mark.best_ask.is_some_and(|a| price >= a),
        Side::Sell => mark.best_bid.is_some_and(|b| price <= b),
    }
}
