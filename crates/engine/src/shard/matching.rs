//! The matching half: the books and stop orders of the symbols one shard owns.
//!
//! Contract (see the module above for the pipeline):
//! - Matching is [`crate::Exchange`]'s: price-time priority, limit/market/stop, GTC/IOC/FOK,
//!   post-only, self-trade prevention, amend (priority kept only when the quantity goes
//!   down), stops triggered by the last trade, oldest first.
//! - It holds no money, but it keeps each order's budget (what its risk shard reserved for
//!   it): every fill spends from it, and an amend is taken only if the budget plus what the
//!   risk shard sent along covers the new version's worst case, after which the budget is
//!   exactly that and the rest goes back. So the budget of the version in force always
//!   covers its remaining quantity, whatever the risk shard had not seen when it sent the
//!   amend.
//! - What the book alone can decide (post-only against the book of this instant, the band
//!   around the last trade) is checked again here and refused with a `Closed { refused }`
//!   report, so the risk shard releases the reservation.
//! - Outputs per input: events for the read model and the market-data stream, reports to
//!   the risk shards of the users involved (in the order the events happened), and one
//!   [`MarketUpdate`] when the last trade or the best prices of the symbol moved.
//! - Trade ids are unique across shards: shard `k` of `n` hands out `k+1, k+1+n, …`.

use super::{matching_shard_of, MarketUpdate, MatchInput, MatchReport, MatchRequest, Sequenced};
use crate::checks;
use crate::command::Command;
use crate::event::{Event, EventEnvelope};
use crate::exchange::SymbolState;
use qt_core::money::fee_amount;
use qt_core::{
    transition, Amount, Asset, CancelReason, Fill, MatchBuffers, NewOrder, OrderBook, OrderEvent, OrderId, OrderStatus,
    OrderType, Price, Qty, RejectReason, Side, StpMode, SymbolId, SymbolSpec, TimeInForce, TradeId, UserId,
};
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;

/// An open order in a matching shard (resting, waiting for its stop, or being processed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchOrder {
    pub order: NewOrder,
    pub status: OrderStatus,
    pub filled: Qty,
    /// Price it may trade up to: the limit, or the collar of a market or triggered stop order.
    pub price: Option<Price>,
    pub qty: Qty,
    pub waiting_stop: bool,
    /// What is reserved for the order in its risk shard and not yet spent or handed back;
    /// `None` when risk is off.
    pub budget: Option<Amount>,
}

impl MatchOrder {
    fn remaining(&self) -> Qty {
        Qty(self.qty.0 - self.filled.0)
    }
}

/// What one input made a matching shard say.
#[derive(Debug, Default)]
pub struct MatchOutput {
    pub events: Vec<EventEnvelope>,
    pub reports: Vec<MatchReport>,
    pub market: Vec<MarketUpdate>,
}

impl MatchOutput {
    pub fn clear(&mut self) {
        self.events.clear();
        self.reports.clear();
        self.market.clear();
    }
}

/// The books of the symbols shard `shard` of `shards` owns.
#[derive(Debug)]
pub struct MatchingShard {
    shard: u32,
    shards: u32,
    assets: Vec<Asset>,
    symbols: Vec<SymbolState>,
    /// The last market update sent per symbol, to send only changes.
    reported: Vec<MarketUpdate>,
    orders: FxHashMap<OrderId, MatchOrder>,
    next_trade_id: u64,
    event_seq: u64,
    last_input_seq: u64,
    // Per-input scratch space; never part of the state.
    buf: MatchBuffers,
    cur_seq: u64,
    cur_ts: i64,
}

impl MatchingShard {
    pub fn new(shard: u32, shards: u32) -> Self {
        let shards = shards.max(1);
        MatchingShard {
            shard,
            shards,
            assets: Vec::new(),
            symbols: Vec::new(),
            reported: Vec::new(),
            orders: FxHashMap::default(),
            next_trade_id: u64::from(shard) + 1,
            event_seq: 0,
            last_input_seq: 0,
            buf: MatchBuffers::default(),
            cur_seq: 0,
            cur_ts: 0,
        }
    }

    pub fn owns(&self, symbol: SymbolId) -> bool {
        matching_shard_of(symbol, self.shards) == self.shard
    }
    pub fn symbols(&self) -> &[SymbolState] {
        &self.symbols
    }
    pub fn order(&self, id: OrderId) -> Option<&MatchOrder> {
        self.orders.get(&id)
    }
    pub fn orders(&self) -> impl Iterator<Item = &MatchOrder> + '_ {
        self.orders.values()
    }
    pub fn last_input_seq(&self) -> u64 {
        self.last_input_seq
    }

    /// Applies one input. Inputs must come with strictly increasing sequence numbers; one
    /// that does not is ignored (it was applied already), so a replay is idempotent.
    pub fn apply(&mut self, input: &Sequenced<MatchInput>, out: &mut MatchOutput) {
        if input.seq <= self.last_input_seq {
            return;
        }
        self.last_input_seq = input.seq;
        self.cur_seq = input.seq;
        self.cur_ts = input.ts;
        match &input.input {
            MatchInput::Command(Command::AddAsset { code, scale }) => {
                if *scale <= 18 && !code.is_empty() && !self.assets.iter().any(|a| a.code == *code) {
                    let id = qt_core::AssetId(self.assets.len() as u16);
                    self.assets.push(Asset { id, code: code.clone(), scale: *scale });
                }
            }
            MatchInput::Command(Command::AddSymbol(spec)) => self.add_symbol(spec),
            // Everything else is the risk shards' business.
            MatchInput::Command(_) => {}
            MatchInput::Request(request) => {
                let symbol = request.symbol();
                if !self.owns(symbol) || self.symbols.get(symbol.0 as usize).is_none() {
                    self.refuse_unknown_symbol(request, out);
                    return;
                }
                match request {
                    MatchRequest::Place { order, price, budget, .. } => self.place(order, *price, *budget, out),
                    MatchRequest::Cancel { user, order_id, reason, .. } => match self.orders.get(order_id) {
                        Some(o) if o.order.user == *user => self.cancel_order(*order_id, *reason, out),
                        _ => self.reject_cmd(out, Some(*user), Some(*order_id), RejectReason::OrderNotFound),
                    },
                    MatchRequest::Amend { user, order_id, price, qty, extra, .. } => {
                        self.amend(*user, *order_id, (*price, *qty), *extra, out)
                    }
                }
                self.report_market(symbol, out);
            }
        }
    }

    fn add_symbol(&mut self, spec: &SymbolSpec) {
        if !checks::symbol_is_valid(spec, &self.assets, self.symbols.iter().map(|s| &s.spec)) {
            return;
        }
        self.symbols.push(SymbolState {
            spec: spec.clone(),
            book: OrderBook::new(),
            last_price: None,
            buy_stops: BTreeSet::new(),
            sell_stops: BTreeSet::new(),
        });
        self.reported.push(MarketUpdate::empty(spec.id));
    }

    /// A request for a symbol this shard does not own: a routing error upstream, answered
    /// so that nothing stays reserved for it.
    fn refuse_unknown_symbol(&mut self, request: &MatchRequest, out: &mut MatchOutput) {
        let reason = RejectReason::UnknownSymbol;
        match request {
            MatchRequest::Place { order, .. } => self.refuse_place(order, reason, out),
            MatchRequest::Cancel { user, order_id, .. } => self.reject_cmd(out, Some(*user), Some(*order_id), reason),
            MatchRequest::Amend { user, order_id, extra, .. } => {
                self.refuse_amend(*user, *order_id, reason, *extra, out)
            }
        }
    }

    /// Sends the symbol's prices to the risk shards when they moved.
    fn report_market(&mut self, symbol: SymbolId, out: &mut MatchOutput) {
        let (Some(sym), Some(reported)) =
            (self.symbols.get(symbol.0 as usize), self.reported.get_mut(symbol.0 as usize))
        else {
            return;
        };
        let now = MarketUpdate {
            symbol,
            last: sym.last_price,
            best_bid: sym.book.best_bid().map(|(p, _)| p),
            best_ask: sym.book.best_ask().map(|(p, _)| p),
        };
        if now != *reported {
            *reported = now;
            out.market.push(now);
        }
    }

    fn emit(&mut self, out: &mut MatchOutput, event: Event) {
        self.event_seq += 1;
        out.events.push(EventEnvelope { seq: self.event_seq, cmd_seq: self.cur_seq, ts: self.cur_ts, event });
    }

    fn emit_deltas(&mut self, symbol: SymbolId, deltas: &mut Vec<qt_core::BookDelta>, out: &mut MatchOutput) {
        for d in deltas.drain(..) {
            self.emit(out, Event::BookChanged { symbol, delta: d });
        }
    }

    fn reject_cmd(&mut self, out: &mut MatchOutput, user: Option<UserId>, order_id: Option<OrderId>, r: RejectReason) {
        self.emit(out, Event::CommandRejected { user, order_id, reason: r });
    }

    fn refuse_place(&mut self, o: &NewOrder, reason: RejectReason, out: &mut MatchOutput) {
        self.emit(out, Event::OrderRejected { order_id: o.order_id, user: o.user, reason });
        out.reports.push(MatchReport::Closed { user: o.user, order_id: o.order_id, refused: Some(reason) });
    }

    /// Refuses an amend and hands back what was sent along with it.
    fn refuse_amend(
        &mut self,
        user: UserId,
        order_id: OrderId,
        reason: RejectReason,
        released: Amount,
        out: &mut MatchOutput,
    ) {
        self.reject_cmd(out, Some(user), Some(order_id), reason);
        let in_force = self.orders.get(&order_id).map(|o| (o.price, o.qty));
        out.reports.push(MatchReport::AmendRefused { user, order_id, reason, in_force, released });
    }

    // ---- orders -----------------------------------------------------------------------

    fn place(&mut self, o: &NewOrder, price: Option<Price>, budget: Option<Amount>, out: &mut MatchOutput) {
        let sym = &self.symbols[o.symbol.0 as usize];
        // What the risk shard checked against reported prices, checked against the book.
        let refusal = if self.orders.contains_key(&o.order_id) {
            Some(RejectReason::DuplicateOrderId)
        } else if o.order_type.has_limit_price()
            && o.price.zip(sym.last_price).is_some_and(|(p, last)| !sym.spec.within_band(p, last))
        {
            Some(RejectReason::PriceOutOfBand)
        } else if o.post_only && o.price.is_some_and(|p| sym.book.would_cross(o.side, p)) {
            Some(RejectReason::PostOnlyWouldTake)
        } else {
            None
        };
        if let Some(reason) = refusal {
            return self.refuse_place(o, reason, out);
        }
        let Ok(status) = transition(OrderStatus::New, OrderEvent::Accept) else { return };
        let live = MatchOrder {
            order: o.clone(),
            status,
            filled: Qty::ZERO,
            price,
            qty: o.qty,
            waiting_stop: o.order_type.is_stop(),
            budget,
        };
        self.orders.insert(o.order_id, live);
        self.emit(out, Event::OrderAccepted { order: o.clone() });
        if o.order_type.is_stop() {
            let sym = &mut self.symbols[o.symbol.0 as usize];
            let stop = o.stop_price.unwrap_or_default();
            match o.side {
                Side::Buy => sym.buy_stops.insert((stop, o.order_id)),
                Side::Sell => sym.sell_stops.insert((stop, o.order_id)),
            };
        } else {
            self.execute(o.order_id, out);
        }
        // A stop whose condition already holds triggers at once.
        self.trigger_stops(o.symbol, out);
    }

    /// Runs an accepted order against the book and finishes it: rest, expire, cancel (STP)
    /// or fill.
    fn execute(&mut self, order_id: OrderId, out: &mut MatchOutput) {
        let Some(live) = self.orders.get(&order_id) else { return };
        let o = &live.order;
        let (symbol, side, user, stp, tif, order_type) = (o.symbol, o.side, o.user, o.stp, o.tif, o.order_type);
        let (limit, remaining) = (live.price, live.remaining());
        if tif == TimeInForce::Fok {
            let book = &self.symbols[symbol.0 as usize].book;
            if book.fillable(side, limit, remaining, user, stp) < remaining {
                return self.close_order(order_id, OrderEvent::Expire, None, out);
            }
        }
        let stopped_by_stp = self.run_match(order_id, symbol, side, limit, remaining, user, stp, out);
        let Some(live) = self.orders.get(&order_id) else { return };
        if live.remaining().is_zero() {
            return;
        }
        if stopped_by_stp {
            return self.close_order(order_id, OrderEvent::Cancel, Some(CancelReason::SelfTradePrevention), out);
        }
        if tif == TimeInForce::Gtc && order_type.has_limit_price() {
            let (price, rem) = (live.price.unwrap_or_default(), live.remaining());
            let mut deltas = std::mem::take(&mut self.buf.deltas);
            deltas.clear();
            self.symbols[symbol.0 as usize].book.insert(side, price, order_id, user, rem, &mut deltas);
            self.emit_deltas(symbol, &mut deltas, out);
            self.buf.deltas = deltas;
        } else {
            self.close_order(order_id, OrderEvent::Expire, None, out);
        }
    }

    /// Matches `qty` of an order as the taker; returns whether self-trade prevention
    /// stopped it.
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
        out: &mut MatchOutput,
    ) -> bool {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let outcome = self.symbols[symbol.0 as usize].book.match_incoming(side, limit, qty, user, stp, &mut buf);
        self.emit_deltas(symbol, &mut buf.deltas, out);
        for c in buf.stp_cancels.drain(..) {
            self.close_order(c.order_id, OrderEvent::Cancel, Some(CancelReason::SelfTradePrevention), out);
        }
        let fills = std::mem::take(&mut buf.fills);
        for f in &fills {
            self.trade(symbol, side, taker_order, user, f, out);
        }
        buf.fills = fills;
        buf.fills.clear();
        self.buf = buf;
        outcome.taker_stopped_by_stp
    }

    /// Books one fill: the trade event, one report per side, the orders' progress.
    fn trade(
        &mut self,
        symbol: SymbolId,
        taker_side: Side,
        taker_order: OrderId,
        taker_user: UserId,
        f: &Fill,
        out: &mut MatchOutput,
    ) {
        let spec = &self.symbols[symbol.0 as usize].spec;
        let notional = spec.notional(f.price, f.qty);
        let maker_fee = Amount(fee_amount(notional, spec.maker_fee_bps) as i64);
        let taker_fee = Amount(fee_amount(notional, spec.taker_fee_bps) as i64);
        let base_amount = i64::try_from(i128::from(f.qty.0) * i128::from(spec.lot)).unwrap_or(i64::MAX);
        let quote_amount = i64::try_from(notional).unwrap_or(i64::MAX);
        let trade_id = TradeId(self.next_trade_id);
        self.next_trade_id += u64::from(self.shards);
        self.symbols[symbol.0 as usize].last_price = Some(f.price);
        let ts = self.cur_ts;
        let (price, qty) = (f.price, f.qty);
        for (user, order_id, side, fee) in [
            (f.maker_user, f.maker_order, taker_side.opposite(), maker_fee),
            (taker_user, taker_order, taker_side, taker_fee),
        ] {
            // What the risk shard takes out of the reservation when it settles this side.
            let spent = match side {
                Side::Buy => quote_amount.saturating_add(fee.0.max(0)),
                Side::Sell => base_amount,
            };
            if let Some(budget) = self.orders.get_mut(&order_id).and_then(|o| o.budget.as_mut()) {
                budget.0 -= spent;
            }
            out.reports.push(MatchReport::Fill { user, order_id, symbol, side, trade_id, price, qty, fee, ts });
        }
        self.emit(
            out,
            Event::Trade {
                trade_id,
                symbol,
                price,
                qty,
                taker_side,
                maker_order: f.maker_order,
                maker_user: f.maker_user,
                taker_order,
                taker_user,
                maker_fee,
                taker_fee,
            },
        );
        self.record_fill(f.maker_order, qty, out);
        self.record_fill(taker_order, qty, out);
    }

    /// Adds a fill to an order's cumulative quantity and moves its status; a completed
    /// order is closed.
    fn record_fill(&mut self, order_id: OrderId, qty: Qty, out: &mut MatchOutput) {
        let Some(o) = self.orders.get_mut(&order_id) else { return };
        o.filled.0 += qty.0;
        let done = o.filled >= o.qty;
        let Ok(status) = transition(o.status, if done { OrderEvent::Fill } else { OrderEvent::PartialFill }) else {
            return;
        };
        o.status = status;
        let (user, filled) = (o.order.user, o.filled);
        self.emit(out, Event::OrderFilled { order_id, user, filled, status });
        if done {
            self.close_order(order_id, OrderEvent::Settle, None, out);
        }
    }

    /// Moves an open order to a final status and forgets it; its risk shard is told to
    /// release what is left. The caller has taken it off the book already.
    fn close_order(
        &mut self,
        order_id: OrderId,
        event: OrderEvent,
        reason: Option<CancelReason>,
        out: &mut MatchOutput,
    ) {
        let Some(o) = self.orders.get(&order_id) else { return };
        if transition(o.status, event).is_err() {
            return;
        }
        let Some(o) = self.orders.remove(&order_id) else { return };
        let (user, remaining) = (o.order.user, o.remaining());
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
        out.reports.push(MatchReport::Closed { user, order_id, refused: None });
    }

    /// Cancels an open order wherever it is (book or stop list).
    fn cancel_order(&mut self, order_id: OrderId, reason: CancelReason, out: &mut MatchOutput) {
        let Some(o) = self.orders.get(&order_id) else { return };
        let symbol = o.order.symbol;
        let mut deltas = std::mem::take(&mut self.buf.deltas);
        deltas.clear();
        self.symbols[symbol.0 as usize].book.cancel(order_id, &mut deltas);
        self.emit_deltas(symbol, &mut deltas, out);
        self.buf.deltas = deltas;
        self.close_order(order_id, OrderEvent::Cancel, Some(reason), out);
    }

    /// Applies a new version `(price, qty)` of an order, with `extra` added to its budget.
    fn amend(
        &mut self,
        user: UserId,
        order_id: OrderId,
        (new_price, qty): (Option<Price>, Qty),
        extra: Amount,
        out: &mut MatchOutput,
    ) {
        let Some(o) = self.orders.get(&order_id).filter(|o| o.order.user == user) else {
            return self.refuse_amend(user, order_id, RejectReason::OrderNotFound, extra, out);
        };
        let (symbol, side, order_type, post_only) =
            (o.order.symbol, o.order.side, o.order.order_type, o.order.post_only);
        let (old_price, old_qty, filled, waiting, stop) =
            (o.price, o.qty, o.filled, o.waiting_stop, o.order.stop_price);
        let budget = o.budget.map(|b| Amount(b.0 + extra.0));
        let price = new_price.or(old_price);
        let sym = &self.symbols[symbol.0 as usize];
        let moves = price != old_price || qty > old_qty;
        let refusal = if !order_type.has_limit_price() && new_price.is_some() {
            Some(RejectReason::InvalidPrice)
        } else if price == old_price && qty == old_qty {
            Some(RejectReason::AmendNoChange)
        } else if !qty.is_positive() {
            Some(RejectReason::InvalidQuantity)
        } else if qty <= filled {
            Some(RejectReason::AmendBelowFilled)
        } else if qty > sym.spec.max_qty {
            Some(RejectReason::QuantityTooLarge)
        } else if (new_price != old_price)
            && new_price.zip(sym.last_price).is_some_and(|(p, last)| !sym.spec.within_band(p, last))
        {
            Some(RejectReason::PriceOutOfBand)
        } else if post_only && moves && price.is_some_and(|p| !waiting && sym.book.would_cross(side, p)) {
            Some(RejectReason::PostOnlyWouldTake)
        } else {
            None
        };
        if let Some(reason) = refusal {
            return self.refuse_amend(user, order_id, reason, extra, out);
        }
        // The budget must cover the new version's remaining quantity at its worst price (a
        // stop-market order's is the collar of its stop); what it holds beyond goes back.
        let mut released = Amount::ZERO;
        let mut new_budget = None;
        if let Some(budget) = budget {
            let worst = price.or_else(|| stop.map(|s| sym.spec.collar_price(s, side == Side::Buy))).unwrap_or_default();
            let need = match checks::required_reserve(&sym.spec, side, worst, Qty(qty.0 - filled.0)) {
                Ok(need) if need <= budget => need,
                Ok(_) => return self.refuse_amend(user, order_id, RejectReason::InsufficientFunds, extra, out),
                Err(r) => return self.refuse_amend(user, order_id, r, extra, out),
            };
            released = Amount(budget.0 - need.0);
            new_budget = Some(need);
        }
        let Some(o) = self.orders.get_mut(&order_id) else { return };
        let Ok(status) = transition(o.status, OrderEvent::Amend) else {
            return self.refuse_amend(user, order_id, RejectReason::OrderNotFound, extra, out);
        };
        o.status = status;
        o.price = price;
        o.qty = qty;
        o.budget = new_budget;
        let keeps_priority = !moves;
        self.emit(out, Event::OrderAmended { order_id, user, price, qty, kept_priority: keeps_priority || waiting });
        out.reports.push(MatchReport::Amended { user, order_id, price, qty, released });
        if waiting {
            return;
        }
        let remaining = Qty(qty.0 - filled.0);
        let mut deltas = std::mem::take(&mut self.buf.deltas);
        deltas.clear();
        let book = &mut self.symbols[symbol.0 as usize].book;
        if keeps_priority {
            book.reduce(order_id, remaining, &mut deltas);
        } else {
            book.cancel(order_id, &mut deltas);
        }
        self.emit_deltas(symbol, &mut deltas, out);
        self.buf.deltas = deltas;
        if !keeps_priority {
            // Re-enters at the back of its (new) level; it may trade if it now crosses.
            self.execute(order_id, out);
            self.trigger_stops(symbol, out);
        }
    }

    /// Triggers every stop order whose condition the last price now meets, oldest order
    /// first, repeating while triggered orders move the price further.
    fn trigger_stops(&mut self, symbol: SymbolId, out: &mut MatchOutput) {
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

    /// Books are not crossed and every resting order matches its record.
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
        if let Some(o) = self.orders.values().find(|o| o.budget.is_some_and(|b| b.0 < 0)) {
            return Err(format!("order {:?} spent more than its budget", o.order.order_id));
        }
        Ok(())
    }
}
