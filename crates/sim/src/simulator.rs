//! The simulator: users and their funding, and one step of every symbol's market.
//!
//! Contract:
//! - [`Simulator::step`] advances each symbol's fair price to `now_ns` and returns the
//!   orders, amends and cancels of its market makers and noise traders, per symbol in this
//!   order: noise cancels (expired orders, orders the centre moved through, and orders a
//!   taker of this step would meet),
//!   every maker's moves away from the other side, every maker's moves toward it and new
//!   quotes, noise resting orders, noise takers. That order is what keeps the simulator
//!   from ever trading with itself and from cancelling an order it just filled.
//! - Every limit price lies within half the tighter of price band and collar around the
//!   last price (the fair price when nothing traded yet), every quantity on the lot grid
//!   within min/max quantity and above the minimum notional at its price (at half the last
//!   price for market orders).
//! - [`Simulator::users`] funds each user for its worst case: full ladders or resting
//!   orders, inventory at its limit, prices at the top of their bounds, and for noise
//!   traders the spread and fees paid over the funding horizon.

use crate::config::{min_lots_at, scale_bps, window_ticks, SimConfig, SimError, SimSymbol};
use crate::maker::{ladder_prices, plan_side, Ladder, Op, Phase, Quote};
use crate::noise::{buy_probability, resting_price, NoiseBook, Resting};
use crate::process::FairPrice;
use crate::view::MarketView;
use qt_core::money::amount_from_i128;
use qt_core::{
    Amount, AssetId, NewOrder, OrderId, OrderType, Price, Qty, RiskLimits, Side, StpMode, SymbolId, TimeInForce, UserId,
};
use qt_engine::Command;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One thing the simulator wants done, as the engine command of the same name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimAction {
    Place(NewOrder),
    Cancel { user: UserId, order_id: OrderId },
    Amend { user: UserId, order_id: OrderId, price: Option<Price>, qty: Option<Qty> },
}

impl From<SimAction> for Command {
    fn from(action: SimAction) -> Command {
        match action {
            SimAction::Place(order) => Command::Place(order),
            SimAction::Cancel { user, order_id } => Command::Cancel { user, order_id },
            SimAction::Amend { user, order_id, price, qty } => Command::Amend { user, order_id, price, qty },
        }
    }
}

impl SimAction {
    pub fn user(&self) -> UserId {
        match self {
            SimAction::Place(o) => o.user,
            SimAction::Cancel { user, .. } | SimAction::Amend { user, .. } => *user,
        }
    }
}

/// How an order rests or executes; maps to the engine's order type, time in force and price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A good-till-cancelled limit order (quotes and noise resting orders).
    Resting(Price),
    /// An immediate-or-cancel limit order (a taker bounded in price).
    IocLimit(Price),
    /// An immediate-or-cancel market order.
    Market,
}

/// Builds every order the simulator sends; the one place to touch when `NewOrder` grows.
fn new_order(order_id: OrderId, user: UserId, symbol: SymbolId, side: Side, kind: Kind, qty: Qty) -> NewOrder {
    let (order_type, tif, price) = match kind {
        Kind::Resting(p) => (OrderType::Limit, TimeInForce::Gtc, Some(p)),
        Kind::IocLimit(p) => (OrderType::Limit, TimeInForce::Ioc, Some(p)),
        Kind::Market => (OrderType::Market, TimeInForce::Ioc, None),
    };
    NewOrder {
        order_id,
        user,
        symbol,
        side,
        order_type,
        tif,
        price,
        stop_price: None,
        qty,
        post_only: false,
        stp: StpMode::CancelNewest,
        client_order_id: None,
    }
}

/// What one user deposits before trading: (asset, amount in minor units).
pub type Deposits = Vec<(AssetId, Amount)>;

#[derive(Debug)]
pub struct Simulator {
    config: SimConfig,
    makers: Vec<UserId>,
    noise: Vec<UserId>,
    symbols: Vec<SymbolSim>,
    funding: Vec<(UserId, Deposits)>,
    last_ns: Option<i64>,
}

#[derive(Debug, Default)]
struct MakerBook {
    bids: Vec<Quote>,
    asks: Vec<Quote>,
    /// Inventory estimate in lots, used when the view does not report positions.
    estimate: i64,
}

#[derive(Debug)]
struct SymbolSim {
    sym: SimSymbol,
    fair: FairPrice,
    rng: ChaCha8Rng,
    makers: Vec<MakerBook>,
    noise: Vec<NoiseBook>,
    /// Whether the first step ran (and picked up the market's last price).
    started: bool,
    /// Price the spread and level step in ticks are computed from. It stays put while the
    /// centre is within 20 % of it: recomputing them from every centre would change the
    /// grid by a tick now and then and move every quote of every maker at once.
    grid_ref: i64,
}

/// What every symbol's step needs from the simulator.
struct Ctx<'a> {
    cfg: &'a SimConfig,
    makers: &'a [UserId],
    noise: &'a [UserId],
    now: i64,
    dt: i64,
}

/// A 64-bit mix (SplitMix64) so that seeds of neighbouring symbols and streams are unrelated.
fn mix(seed: u64, stream: u64, index: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Simulator {
    /// first_user: the simulator's users get ids first_user, first_user+1, ...
    pub fn new(config: SimConfig, symbols: Vec<SimSymbol>, first_user: u64) -> Result<Simulator, SimError> {
        config.validate()?;
        if symbols.is_empty() {
            return Err(SimError::NoSymbols);
        }
        let mut ids = BTreeSet::new();
        let mut names = BTreeSet::new();
        for s in &symbols {
            if !ids.insert(s.spec.id) || !names.insert(s.spec.name.clone()) {
                return Err(SimError::DuplicateSymbol(s.spec.name.clone()));
            }
            s.validate()?;
        }
        let count = u64::from(config.market_makers) + u64::from(config.noise_traders);
        if first_user.checked_add(count).is_none() {
            return Err(SimError::InvalidConfig { field: "first_user", reason: "user ids overflow".into() });
        }
        let makers: Vec<UserId> = (0..u64::from(config.market_makers)).map(|i| UserId(first_user + i)).collect();
        let noise: Vec<UserId> = (0..u64::from(config.noise_traders))
            .map(|i| UserId(first_user + u64::from(config.market_makers) + i))
            .collect();
        let funding = funding(&config, &symbols, &makers, &noise)?;
        let symbols = symbols
            .into_iter()
            .enumerate()
            .map(|(i, sym)| SymbolSim {
                fair: FairPrice::new(&sym, mix(config.seed, 1, i as u64)),
                rng: ChaCha8Rng::seed_from_u64(mix(config.seed, 2, i as u64)),
                makers: (0..makers.len()).map(|_| MakerBook::default()).collect(),
                noise: (0..noise.len()).map(|_| NoiseBook::default()).collect(),
                started: false,
                grid_ref: sym.initial_price.0,
                sym,
            })
            .collect();
        Ok(Simulator { config, makers, noise, symbols, funding, last_ns: None })
    }

    /// Users to create at first start, with the deposits each needs: (user, [(asset, amount in minor units)]).
    pub fn users(&self) -> Vec<(UserId, Deposits)> {
        self.funding.clone()
    }

    /// Every user of the simulator, market makers first.
    pub fn user_ids(&self) -> Vec<UserId> {
        self.makers.iter().chain(&self.noise).copied().collect()
    }

    /// A readable name for a simulator user (`sim-maker-0`, `sim-noise-3`).
    pub fn user_name(&self, user: UserId) -> Option<String> {
        if let Some(i) = self.makers.iter().position(|u| *u == user) {
            return Some(format!("sim-maker-{i}"));
        }
        self.noise.iter().position(|u| *u == user).map(|i| format!("sim-noise-{i}"))
    }

    /// The risk limits to create the simulator's users with: none. Makers re-quote many
    /// levels per step and would trip velocity and concentration limits meant for people;
    /// their exposure is bounded by the simulator itself and by their deposits.
    pub fn risk_limits(&self) -> RiskLimits {
        RiskLimits::default()
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The current fair price of a simulated symbol.
    pub fn fair_price(&self, symbol: SymbolId) -> Option<Price> {
        self.symbols.iter().find(|s| s.sym.spec.id == symbol).map(|s| s.fair.price())
    }

    /// One step at time now_ns (ns since the Unix epoch); called every ~100-250 ms by the driver.
    /// next_order_id allocates engine order ids (the driver owns the counter).
    pub fn step(
        &mut self,
        now_ns: i64,
        view: &dyn MarketView,
        next_order_id: &mut dyn FnMut() -> OrderId,
    ) -> Vec<SimAction> {
        let max_gap = i64::from(self.config.max_step_gap_ms) * 1_000_000;
        let dt = match self.last_ns {
            Some(last) => now_ns.saturating_sub(last).clamp(0, max_gap),
            None => 0,
        };
        // Time never runs backwards for the simulator, whatever the driver's clock does.
        let now = self.last_ns.map_or(now_ns, |l| l.max(now_ns));
        self.last_ns = Some(now);
        let ctx = Ctx { cfg: &self.config, makers: &self.makers, noise: &self.noise, now, dt };
        let mut out = Vec::new();
        for s in &mut self.symbols {
            s.step(&ctx, view, next_order_id, &mut out);
        }
        out
    }
}

impl SymbolSim {
    fn step(
        &mut self,
        ctx: &Ctx<'_>,
        view: &dyn MarketView,
        next_id: &mut dyn FnMut() -> OrderId,
        out: &mut Vec<SimAction>,
    ) {
        let id = self.sym.spec.id;
        if !self.started {
            // After a restart the market goes on from where it traded, not from the
            // initial price (the process still reverts toward that over its half-life).
            if let Some(last) = view.last_price(id) {
                self.fair.start_at(last);
            }
            self.started = true;
        }
        let fair = self.fair.advance(ctx.now, ctx.dt);
        self.sync(view);
        let reference = view.last_price(id).unwrap_or(fair);
        let w = window_ticks(&self.sym.spec, reference);
        let low = reference.0.saturating_sub(w).max(1);
        let high = reference.0.saturating_add(w);
        if high - low < 2 {
            // The last price sits so low that the band has no room for a bid and an ask
            // around it: only people can move it back.
            return;
        }
        let center = fair.0.clamp(low + 1, high - 1);
        if i128::from(center) * 5 > i128::from(self.grid_ref) * 6
            || i128::from(center) * 6 < i128::from(self.grid_ref) * 5
        {
            self.grid_ref = center;
        }
        let half_spread = ceil_bps(self.grid_ref, i64::from(self.sym.spread_bps) / 2).max(1);
        let step = ceil_bps(self.grid_ref, i64::from(self.sym.level_step_bps)).max(1);
        let order_size = self.sym.order_size.0;
        let noise_limit = order_size.saturating_mul(i64::from(ctx.cfg.noise_inventory_limit));

        // Noise decisions first: a taker's opposite resting orders must go before anyone moves.
        let n_take = self.events(ctx.cfg.taker_orders_per_minute, ctx.dt);
        let mut takers: Vec<(usize, Side)> = Vec::new();
        for _ in 0..n_take {
            if ctx.noise.is_empty() {
                break;
            }
            let t = self.rng.random_range(0..ctx.noise.len());
            let side = self.pick_side(self.noise_inventory(t, ctx, view), noise_limit);
            if !takers.iter().any(|&(o, s)| o == t && s != side) {
                takers.push((t, side));
            }
        }
        for (t, nb) in self.noise.iter_mut().enumerate() {
            let user = ctx.noise[t];
            nb.resting.retain(|r| {
                let meets_taker = takers.iter().any(|&(o, s)| o == t && s != r.side);
                // An order the fair price moved through is stale: the makers' quotes move to
                // the new centre and would trade with it as takers, emptying their side.
                let stale = match r.side {
                    Side::Buy => r.price.0 >= center,
                    Side::Sell => r.price.0 <= center,
                };
                if r.expires_ns <= ctx.now || meets_taker || stale {
                    out.push(SimAction::Cancel { user, order_id: r.id });
                    false
                } else {
                    true
                }
            });
        }

        // Market makers: plan every maker, then all moves away, then all moves toward.
        let maker_limit = order_size.saturating_mul(i64::from(ctx.cfg.maker_inventory_limit));
        let mut ops: Vec<(Phase, usize, Side, Op)> = Vec::new();
        for m in 0..self.makers.len() {
            let inv = view.position(ctx.makers[m], id).unwrap_or(self.makers[m].estimate);
            let h = half_spread.saturating_add((m as i64).saturating_mul((step + 1) / 2));
            let ladder = Ladder {
                center,
                low,
                high,
                half_spread: h,
                step,
                skew: Ladder::skew_for(h, inv, maker_limit),
                bid_levels: if inv >= maker_limit { 1 } else { usize::from(ctx.cfg.levels) },
                ask_levels: if inv <= -maker_limit { 1 } else { usize::from(ctx.cfg.levels) },
                prev_bid: self.makers[m].bids.iter().map(|q| q.price.0).max(),
                prev_ask: self.makers[m].asks.iter().map(|q| q.price.0).min(),
            };
            let (bids, asks) = ladder_prices(&ladder);
            for (side, prices) in [(Side::Buy, bids), (Side::Sell, asks)] {
                let increases = (side == Side::Buy) == (inv >= 0);
                let capped = inv.unsigned_abs() >= maker_limit.unsigned_abs() && increases;
                let targets: Vec<(Price, Qty)> = prices
                    .iter()
                    .enumerate()
                    .map(|(k, &p)| (p, self.quote_size(k, p, inv, maker_limit, increases, capped)))
                    .collect();
                let book = if side == Side::Buy { &self.makers[m].bids } else { &self.makers[m].asks };
                let mut current = book.clone();
                // A quote more than half taken is replaced by a fresh one at the same price
                // (cancel now, the plan places it again), so the depth recovers.
                current.retain(|q| {
                    let keep = q.left.0.saturating_mul(2) >= q.qty.0;
                    if !keep {
                        ops.push((Phase::Away, m, side, Op::Cancel(q.id)));
                    }
                    keep
                });
                // Now and then replace one quote with a fresh size: cancel it and let the
                // plan fill its price again.
                if !current.is_empty() && self.rng.random_range(0..1_000) < ctx.cfg.refresh_per_mille {
                    let i = self.rng.random_range(0..current.len());
                    let q = current.remove(i);
                    ops.push((Phase::Away, m, side, Op::Cancel(q.id)));
                }
                for (phase, op) in plan_side(side, &current, &targets) {
                    ops.push((phase, m, side, op));
                }
            }
        }
        for phase in [Phase::Away, Phase::Toward] {
            for &(p, m, side, op) in &ops {
                if p == phase {
                    self.apply_maker_op(m, side, op, ctx.makers[m], next_id, out);
                }
            }
        }

        // Noise traders' resting orders, on their side of the centre and clear of their own.
        let n_rest = self.events(ctx.cfg.resting_orders_per_minute, ctx.dt);
        for _ in 0..n_rest {
            if ctx.noise.is_empty() {
                break;
            }
            let t = self.rng.random_range(0..ctx.noise.len());
            let side = self.pick_side(self.noise_inventory(t, ctx, view), noise_limit);
            let conflicts = takers.iter().any(|&(o, s)| o == t && s != side);
            let full = self.noise[t].resting.len() >= usize::from(ctx.cfg.max_resting_per_trader);
            if conflicts || full {
                continue;
            }
            let depth = self.rng.random_range(0..=half_spread.saturating_add(step));
            let Some(price) = resting_price(side, center, depth, low, high, &self.noise[t].resting) else {
                continue;
            };
            let Some(qty) = self.noise_size(price, 100, 200) else { continue };
            let lifetime_s = self.rng.random_range(ctx.cfg.resting_lifetime_min_s..=ctx.cfg.resting_lifetime_max_s);
            let order_id = next_id();
            let user = ctx.noise[t];
            out.push(SimAction::Place(new_order(order_id, user, id, side, Kind::Resting(price), qty)));
            self.noise[t].resting.push(Resting {
                id: order_id,
                side,
                price,
                qty,
                expires_ns: ctx.now.saturating_add(i64::from(lifetime_s) * 1_000_000_000),
            });
        }

        // Noise takers last: nothing after them refers to an order they may fill. Together
        // they take at most half of the makers' depth on a side, so a side never empties.
        let last = view.last_price(id);
        let depth = |quotes: fn(&MakerBook) -> &Vec<Quote>| -> i64 {
            self.makers.iter().flat_map(quotes).map(|q| q.left.0).fold(0i64, i64::saturating_add) / 2
        };
        let mut budget_buy = depth(|m| &m.asks);
        let mut budget_sell = depth(|m| &m.bids);
        for (t, side) in takers {
            let user = ctx.noise[t];
            let liquidity =
                self.makers.iter().any(|m| if side == Side::Buy { !m.asks.is_empty() } else { !m.bids.is_empty() });
            let market = last.is_some() || liquidity;
            let use_limit = !market || self.rng.random_range(0..100) < 20;
            let (kind, floor_price) = if use_limit {
                let reach = half_spread.saturating_mul(2).saturating_add(step);
                let p = match side {
                    Side::Buy => center.saturating_add(reach).min(high),
                    Side::Sell => center.saturating_sub(reach).max(low),
                };
                (Kind::IocLimit(Price(p)), Price(p))
            } else {
                // The engine checks a market order's notional at the last price, which the
                // orders before it in this step may move: size for half of it.
                (Kind::Market, Price((reference.0 / 2).max(1)))
            };
            let Some(qty) = self.noise_size(floor_price, 100, 300) else { continue };
            let budget = if side == Side::Buy { &mut budget_buy } else { &mut budget_sell };
            let qty = Qty(qty.0.min(*budget));
            if qty < min_lots_at(&self.sym.spec, floor_price) {
                continue;
            }
            *budget -= qty.0;
            let order_id = next_id();
            out.push(SimAction::Place(new_order(order_id, user, id, side, kind, qty)));
            // Without positions in the view, assume the taker filled in full.
            self.noise[t].estimate += if side == Side::Buy { qty.0 } else { -qty.0 };
        }
    }

    /// Brings the open quantities up to date and forgets orders that are no longer open;
    /// what left an order counts as filled for the inventory estimate (the simulator
    /// cancelled nothing it still tracks).
    fn sync(&mut self, view: &dyn MarketView) {
        /// Lots filled since last seen (positive), and whether the order is still open.
        fn update(view: &dyn MarketView, id: OrderId, left: &mut Qty) -> (i64, bool) {
            if !view.is_open(id) {
                return (std::mem::replace(left, Qty(0)).0, false);
            }
            match view.open_qty(id) {
                Some(now) if now < *left => (std::mem::replace(left, now).0 - now.0, true),
                _ => (0, true),
            }
        }
        for mb in &mut self.makers {
            let mut bought = 0i64;
            let mut sold = 0i64;
            mb.bids.retain_mut(|q| {
                let (filled, open) = update(view, q.id, &mut q.left);
                bought += filled;
                open
            });
            mb.asks.retain_mut(|q| {
                let (filled, open) = update(view, q.id, &mut q.left);
                sold += filled;
                open
            });
            mb.estimate = mb.estimate.saturating_add(bought).saturating_sub(sold);
        }
        for nb in &mut self.noise {
            let mut net = 0i64;
            nb.resting.retain_mut(|r| {
                let (filled, open) = update(view, r.id, &mut r.qty);
                net += if r.side == Side::Buy { filled } else { -filled };
                open
            });
            nb.estimate = nb.estimate.saturating_add(net);
        }
    }

    fn noise_inventory(&self, t: usize, ctx: &Ctx<'_>, view: &dyn MarketView) -> i64 {
        view.position(ctx.noise[t], self.sym.spec.id).unwrap_or(self.noise[t].estimate)
    }

    fn pick_side(&mut self, inv: i64, limit: i64) -> Side {
        if self.rng.random_range(0..1_000_000) < buy_probability(inv, limit) {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    /// How many orders of a kind with `per_minute` expected arrive in `dt_ns`: the whole
    /// part of the expectation plus one with the fractional part's chance (integers only).
    fn events(&mut self, per_minute: u32, dt_ns: i64) -> u64 {
        let micro = i128::from(per_minute) * i128::from(dt_ns.max(0)) / 60_000;
        let whole = (micro / 1_000_000) as u64;
        let frac = (micro % 1_000_000) as u32;
        let extra = u64::from(self.rng.random_range(0..1_000_000) < frac);
        (whole + extra).min(16)
    }

    /// A maker's quote size at level `k`: deeper levels are larger, each ±30 % at random;
    /// the side that adds to the inventory shrinks with it, down to the minimum at the cap.
    fn quote_size(&mut self, k: usize, price: Price, inv: i64, limit: i64, increases: bool, capped: bool) -> Qty {
        let spec = &self.sym.spec;
        let min = min_lots_at(spec, price);
        if capped {
            return min.min(spec.max_qty);
        }
        let jitter = self.rng.random_range(70i128..=130);
        let mut size = i128::from(self.sym.order_size.0) * (20 + 10 * k as i128) * jitter / 2_000;
        if increases && limit > 0 {
            let used = i128::from(inv.unsigned_abs().min(limit.unsigned_abs()) as i64);
            size = size * (4 * i128::from(limit) - 3 * used) / (4 * i128::from(limit));
        }
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        Qty(size.max(min.0).min(spec.max_qty.0))
    }

    /// A noise order of `lo`..`hi` % of the order size, notional checked at `price`.
    fn noise_size(&mut self, price: Price, lo: i64, hi: i64) -> Option<Qty> {
        let spec = &self.sym.spec;
        let pct = self.rng.random_range(lo..=hi);
        let size = i64::try_from(i128::from(self.sym.order_size.0) * i128::from(pct) / 100).unwrap_or(i64::MAX);
        let min = min_lots_at(spec, price);
        (min <= spec.max_qty).then(|| Qty(size.max(min.0).min(spec.max_qty.0)))
    }

    fn apply_maker_op(
        &mut self,
        m: usize,
        side: Side,
        op: Op,
        user: UserId,
        next_id: &mut dyn FnMut() -> OrderId,
        out: &mut Vec<SimAction>,
    ) {
        let symbol = self.sym.spec.id;
        let book = if side == Side::Buy { &mut self.makers[m].bids } else { &mut self.makers[m].asks };
        match op {
            Op::Cancel(order_id) => {
                book.retain(|q| q.id != order_id);
                out.push(SimAction::Cancel { user, order_id });
            }
            Op::Amend(order_id, price) => {
                if let Some(q) = book.iter_mut().find(|q| q.id == order_id) {
                    q.price = price;
                }
                out.push(SimAction::Amend { user, order_id, price: Some(price), qty: None });
            }
            Op::Place(price, qty) => {
                let order_id = next_id();
                book.push(Quote { id: order_id, price, qty, left: qty });
                out.push(SimAction::Place(new_order(order_id, user, symbol, side, Kind::Resting(price), qty)));
            }
        }
    }
}

/// `ceil(value × bps / 10000)` for non-negative inputs.
fn ceil_bps(value: i64, bps: i64) -> i64 {
    let n = i128::from(value.max(0)) * i128::from(bps.max(0));
    i64::try_from((n + 9_999) / 10_000).unwrap_or(i64::MAX)
}

/// Deposits per user: enough for each one's worst case on every symbol (see module docs),
/// twice over.
fn funding(
    cfg: &SimConfig,
    symbols: &[SimSymbol],
    makers: &[UserId],
    noise: &[UserId],
) -> Result<Vec<(UserId, Deposits)>, SimError> {
    let mut maker_need: BTreeMap<AssetId, i128> = BTreeMap::new();
    let mut noise_need: BTreeMap<AssetId, i128> = BTreeMap::new();
    for s in symbols {
        let spec = &s.spec;
        let (_, high) = s.price_bounds();
        // Quotes sit within the band of the last price, which trades keep near the fair one.
        let top = Price(scale_bps(high.0, spec.price_band_bps.max(spec.market_collar_bps)).max(1));
        let fee = i128::from(10_000 + spec.taker_fee_bps.max(spec.maker_fee_bps).max(0));
        let size = i128::from(s.order_size.0);
        let levels = i128::from(cfg.levels);
        // Σ over levels of the largest quote: size × (2 + k) / 2 × 1.3, plus a lot for rounding.
        let ladder = (0..levels).map(|k| size * (20 + 10 * k) * 130 / 2_000 + 1).sum::<i128>();
        let maker_lots = 2 * ladder + size * i128::from(cfg.maker_inventory_limit);
        let biggest = size * 3 + 1;
        let noise_lots = size * i128::from(cfg.noise_inventory_limit)
            + i128::from(cfg.max_resting_per_trader) * biggest
            + 2 * biggest;
        let quote_for = |lots: i128| -> i128 {
            i128::from(top.0).saturating_mul(lots).saturating_mul(spec.quote_per_tick_lot()).saturating_mul(fee)
                / 10_000
        };
        // Noise traders pay about the spread, a level or two of depth and the taker fee on
        // every order; each gets the whole symbol's budget for the horizon.
        let cost_bps =
            i128::from(s.spread_bps) + 2 * i128::from(s.level_step_bps) + i128::from(spec.taker_fee_bps.max(0)) + 20;
        let orders = i128::from(cfg.funding_horizon_hours) * 60 * i128::from(cfg.taker_orders_per_minute);
        let losses = quote_for(2 * size).saturating_mul(orders).saturating_mul(cost_bps) / 10_000;
        let base_for = |lots: i128| lots.saturating_mul(i128::from(spec.lot));
        *maker_need.entry(spec.quote).or_default() += 2 * quote_for(maker_lots);
        *maker_need.entry(spec.base).or_default() += 2 * base_for(maker_lots);
        *noise_need.entry(spec.quote).or_default() += 2 * quote_for(noise_lots) + losses;
        *noise_need.entry(spec.base).or_default() += 2 * base_for(noise_lots);
    }
    let to_amounts = |need: &BTreeMap<AssetId, i128>, who: &str| -> Result<Deposits, SimError> {
        need.iter()
            .map(|(a, v)| {
                amount_from_i128(*v)
                    .map(|amt| (*a, amt))
                    .map_err(|_| SimError::Overflow { what: format!("{who} deposit of asset {}", a.0) })
            })
            .collect()
    };
    let maker_funds = to_amounts(&maker_need, "market maker")?;
    let noise_funds = to_amounts(&noise_need, "noise trader")?;
    Ok(makers
        .iter()
        .map(|u| (*u, maker_funds.clone()))
        .chain(noise.iter().map(|u| (*u, noise_funds.clone())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use qt_testkit::fixtures::{btc_usd, eth_usd, BTC, BTC_USD, ETH, USD};

    #[test]
    fn users_are_numbered_from_first_user_and_funded_in_every_asset() {
        let syms = vec![SimSymbol::new(btc_usd(), Price(3_000_000)), SimSymbol::new(eth_usd(), Price(200_000))];
        let sim = Simulator::new(SimConfig::default(), syms, 1_000).unwrap();
        let users = sim.users();
        assert_eq!(users.len(), 6);
        assert_eq!(users[0].0, UserId(1_000));
        assert_eq!(users[5].0, UserId(1_005));
        assert_eq!(sim.user_ids(), users.iter().map(|u| u.0).collect::<Vec<_>>());
        assert_eq!(sim.user_name(UserId(1_001)).as_deref(), Some("sim-maker-1"));
        assert_eq!(sim.user_name(UserId(1_002)).as_deref(), Some("sim-noise-0"));
        assert_eq!(sim.user_name(UserId(7)), None);
        for (_, funds) in &users {
            let assets: Vec<AssetId> = funds.iter().map(|f| f.0).collect();
            assert_eq!(assets, vec![USD, BTC, ETH]);
            assert!(funds.iter().all(|f| f.1.is_positive()));
        }
    }

    #[test]
    fn rejects_duplicate_and_missing_symbols() {
        assert_eq!(Simulator::new(SimConfig::default(), vec![], 1).err(), Some(SimError::NoSymbols));
        let s = SimSymbol::new(btc_usd(), Price(3_000_000));
        let err = Simulator::new(SimConfig::default(), vec![s.clone(), s], 1).err();
        assert_eq!(err, Some(SimError::DuplicateSymbol("BTC-USD".into())));
        let s = SimSymbol::new(btc_usd(), Price(3_000_000));
        assert!(Simulator::new(SimConfig::default(), vec![s], u64::MAX - 2).is_err());
    }

    #[test]
    fn huge_sizes_are_reported_not_wrapped() {
        let mut s = SimSymbol::new(btc_usd(), Price(3_000_000));
        // 1000 BTC orders traded for a year need more USD than 64-bit minor units hold.
        s.order_size = Qty(10_000_000);
        let cfg = SimConfig { funding_horizon_hours: 24 * 365, ..SimConfig::default() };
        let err = Simulator::new(cfg, vec![s], 1).err();
        assert!(matches!(err, Some(SimError::Overflow { .. })), "{err:?}");
    }

    #[test]
    fn event_counts_follow_the_rate() {
        let mut sim =
            Simulator::new(SimConfig::default(), vec![SimSymbol::new(btc_usd(), Price(3_000_000))], 1).unwrap();
        let s = &mut sim.symbols[0];
        // 24 per minute over 10,000 steps of 250 ms: 1000 expected.
        let n: u64 = (0..10_000).map(|_| s.events(24, 250_000_000)).sum();
        assert!((900..1_100).contains(&n), "{n}");
        assert_eq!(s.events(24, 0), 0);
        assert_eq!(s.events(6_000, 60_000_000_000), 16);
    }

    struct Quiet(Option<Price>);

    impl MarketView for Quiet {
        fn best_bid(&self, _: SymbolId) -> Option<(Price, Qty)> {
            None
        }
        fn best_ask(&self, _: SymbolId) -> Option<(Price, Qty)> {
            None
        }
        fn last_price(&self, _: SymbolId) -> Option<Price> {
            self.0
        }
        fn is_open(&self, _: OrderId) -> bool {
            true
        }
    }

    #[test]
    fn first_step_picks_up_the_last_price_and_quotes_around_it() {
        let mut sim =
            Simulator::new(SimConfig::default(), vec![SimSymbol::new(btc_usd(), Price(3_000_000))], 1).unwrap();
        let mut next = 0u64;
        let actions = sim.step(1_000, &Quiet(Some(Price(3_150_000))), &mut || {
            next += 1;
            OrderId(next)
        });
        assert_eq!(sim.fair_price(BTC_USD), Some(Price(3_150_000)));
        let prices: Vec<i64> = actions
            .iter()
            .filter_map(|a| match a {
                SimAction::Place(o) => o.price.map(|p| p.0),
                _ => None,
            })
            .collect();
        assert_eq!(prices.len(), 2 * 2 * 5, "two makers, five levels a side");
        assert!(prices.iter().all(|p| (3_100_000..3_200_000).contains(p)), "{prices:?}");
        // Without a last price the process starts where configured.
        let mut fresh =
            Simulator::new(SimConfig::default(), vec![SimSymbol::new(btc_usd(), Price(3_000_000))], 1).unwrap();
        fresh.step(1_000, &Quiet(None), &mut || {
            next += 1;
            OrderId(next)
        });
        assert_eq!(fresh.fair_price(BTC_USD), Some(Price(3_000_000)));
    }

    #[test]
    fn the_simulator_can_move_to_a_driver_task() {
        fn send<T: Send + 'static>() {}
        send::<Simulator>();
    }

    #[test]
    fn mix_separates_streams() {
        assert_ne!(mix(1, 1, 0), mix(1, 2, 0));
        assert_ne!(mix(1, 1, 0), mix(1, 1, 1));
        assert_eq!(mix(9, 2, 3), mix(9, 2, 3));
    }
}
