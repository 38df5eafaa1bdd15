//! The simulator driven against a real `qt_engine::Exchange`, as `quanttrader run` drives
//! it: users created and funded from `Simulator::users`, every action applied as the engine
//! command of the same name before the next step reads the book.
//!
//! What is checked over hours of simulated time: the engine refuses nothing the simulator
//! sends and never cancels one of its orders for self-trade prevention, trades print every
//! few seconds on every symbol, both sides of every book stay populated, balances stay
//! positive and inventories bounded, and the same seed gives the same actions.

use proptest::prelude::*;
use qt_core::{Amount, AssetId, CancelReason, OrderId, Price, Qty, SymbolId, SymbolSpec, UserId};
use qt_engine::{Command, CommandEnvelope, EngineConfig, Event, Exchange};
use qt_sim::{MarketView, RecordedFeed, SimAction, SimConfig, SimSymbol, Simulator};
use qt_testkit::fixtures::{btc_usd, eth_usd, reference_data, BTC_USD, ETH_USD};
use std::collections::BTreeMap;

/// 2026-01-01T00:00:00Z in ns: time is a value, any start works.
const START_NS: i64 = 1_767_225_600_000_000_000;
const FIRST_USER: u64 = 1_000;

fn symbols() -> Vec<SimSymbol> {
    vec![SimSymbol::new(btc_usd(), Price(3_000_000)), SimSymbol::new(eth_usd(), Price(200_000))]
}

/// The engine as a market view without positions, so the simulator falls back to its own
/// inventory estimate (what a driver whose view cannot read positions gets).
struct WithoutPositions<'a>(&'a Exchange);

impl MarketView for WithoutPositions<'_> {
    fn best_bid(&self, symbol: SymbolId) -> Option<(Price, Qty)> {
        self.0.best_bid(symbol)
    }
    fn best_ask(&self, symbol: SymbolId) -> Option<(Price, Qty)> {
        self.0.best_ask(symbol)
    }
    fn last_price(&self, symbol: SymbolId) -> Option<Price> {
        MarketView::last_price(self.0, symbol)
    }
    fn is_open(&self, order: OrderId) -> bool {
        self.0.is_open(order)
    }
}

/// What a run observed.
#[derive(Debug, Default)]
struct Report {
    /// Every action, in order, for the determinism check.
    actions: Vec<SimAction>,
    /// Simulated ns of every trade, per symbol.
    trades: BTreeMap<SymbolId, Vec<i64>>,
    /// Steps after warm-up where a side of a book was empty: (step, symbol, side).
    empty_sides: Vec<(usize, SymbolId, &'static str)>,
    /// Engine refusals and self-trade cancels of simulator orders, with their reasons.
    failures: Vec<String>,
    /// Largest |position| in lots per (user, symbol) seen at any step.
    max_inventory: BTreeMap<(UserId, SymbolId), i64>,
}

impl Report {
    /// Engine refusals, self-trades and empty book sides, the first few of each, or `None`.
    fn problems(&self) -> Option<String> {
        let mut out = String::new();
        if !self.failures.is_empty() {
            let first = &self.failures[..self.failures.len().min(10)];
            out += &format!("{} engine refusals or self-trades, first: {first:#?}\n", self.failures.len());
        }
        if !self.empty_sides.is_empty() {
            let first = &self.empty_sides[..self.empty_sides.len().min(10)];
            out += &format!("{} empty book sides after warm-up, first: {first:?}\n", self.empty_sides.len());
        }
        (!out.is_empty()).then_some(out)
    }

    fn assert_clean(&self) {
        if let Some(problems) = self.problems() {
            panic!("{problems}");
        }
    }
}

struct Run {
    ex: Exchange,
    sim: Simulator,
    seq: u64,
    next_order: u64,
}

impl Run {
    fn new(config: SimConfig, syms: Vec<SimSymbol>) -> Run {
        let sim = Simulator::new(config, syms, FIRST_USER).expect("valid simulator");
        Run::listed(sim, reference_data())
    }

    /// The exchange with `listing` applied, then the simulator's users created and funded.
    fn listed(sim: Simulator, listing: Vec<Command>) -> Run {
        let mut run = Run { ex: Exchange::new(EngineConfig::default()), sim, seq: 0, next_order: 1 };
        for cmd in listing {
            run.apply_setup(cmd);
        }
        let limits = run.sim.risk_limits();
        for (user, deposits) in run.sim.users() {
            run.apply_setup(Command::CreateUser { user, limits: Some(limits.clone()) });
            for (asset, amount) in deposits {
                run.apply_setup(Command::Deposit { user, asset, amount });
            }
        }
        run
    }

    fn apply(&mut self, ts: i64, cmd: Command) -> Vec<Event> {
        self.seq += 1;
        let mut out = Vec::new();
        self.ex.apply(&CommandEnvelope::new(self.seq, ts, cmd), &mut out);
        out.into_iter().map(|e| e.event).collect()
    }

    fn apply_setup(&mut self, cmd: Command) {
        let shown = format!("{cmd:?}");
        for e in self.apply(START_NS - 1, cmd) {
            assert!(!matches!(e, Event::CommandRejected { .. } | Event::OrderRejected { .. }), "{shown}: {e:?}");
        }
    }

    /// `steps` steps `step_ms` apart from `START_NS`; `with_positions` chooses the view.
    fn drive(&mut self, steps: usize, step_ms: i64, warm_up: usize, with_positions: bool) -> Report {
        self.drive_at((0..steps).map(|i| START_NS + i as i64 * step_ms * 1_000_000), warm_up, with_positions)
    }

    /// One step at each of `times`, every action applied at its step's time; book sides are
    /// checked from step `warm_up` on.
    fn drive_at(&mut self, times: impl IntoIterator<Item = i64>, warm_up: usize, with_positions: bool) -> Report {
        let mut report = Report::default();
        let users = self.sim.user_ids();
        let symbol_ids: Vec<SymbolId> =
            self.ex.symbols().iter().map(|s| s.spec.id).filter(|&id| self.sim.fair_price(id).is_some()).collect();
        for (step, now) in times.into_iter().enumerate() {
            let mut counter = self.next_order;
            let actions = {
                let mut next_id = || {
                    let id = OrderId(counter);
                    counter += 1;
                    id
                };
                if with_positions {
                    self.sim.step(now, &self.ex, &mut next_id)
                } else {
                    self.sim.step(now, &WithoutPositions(&self.ex), &mut next_id)
                }
            };
            self.next_order = counter;
            for action in &actions {
                for e in self.apply(now, Command::from(action.clone())) {
                    match e {
                        Event::OrderRejected { .. } | Event::CommandRejected { .. } => {
                            report.failures.push(format!("step {step}: {action:?} -> {e:?}"));
                        }
                        Event::OrderCancelled { reason: CancelReason::SelfTradePrevention, .. } => {
                            report.failures.push(format!("step {step}: self-trade: {action:?} -> {e:?}"));
                        }
                        Event::Trade { symbol, .. } => report.trades.entry(symbol).or_default().push(now),
                        _ => {}
                    }
                }
            }
            report.actions.extend(actions);
            for &s in &symbol_ids {
                if step >= warm_up {
                    if self.ex.best_bid(s).is_none() {
                        report.empty_sides.push((step, s, "bid"));
                    }
                    if self.ex.best_ask(s).is_none() {
                        report.empty_sides.push((step, s, "ask"));
                    }
                }
                for &u in &users {
                    let qty = self.ex.user(u).and_then(|st| st.positions.get(usize::from(s.0))).map_or(0, |p| p.qty);
                    let e = report.max_inventory.entry((u, s)).or_default();
                    *e = (*e).max(qty.abs());
                }
            }
        }
        report
    }

    /// Every balance of every simulator user: (user, asset, available + reserved).
    fn balances(&self) -> Vec<(UserId, u32, i64)> {
        let mut out = Vec::new();
        for (user, deposits) in self.sim.users() {
            for (asset, _) in deposits {
                let b = self.ex.ledger().balance(user, asset).expect("funded account");
                out.push((user, u32::from(asset.0), b.available.0 + b.reserved.0));
            }
        }
        out
    }
}

/// Longest time without a trade on `symbol` between `from_ns` and `to_ns`.
fn longest_gap(trades: &[i64], from_ns: i64, to_ns: i64) -> i64 {
    let mut prev = from_ns;
    let mut gap = 0;
    for &t in trades.iter().filter(|&&t| t >= from_ns) {
        gap = gap.max(t - prev);
        prev = t;
    }
    gap.max(to_ns - prev)
}

/// `max_gap_s`: longest stretch without a trade on a symbol; takers arrive as a Poisson
/// process of 24 a minute, so over a day one gap of half a minute is expected.
fn assert_healthy(run: &Run, report: &Report, steps: usize, step_ms: i64, warm_up: usize, max_gap_s: i64) {
    report.assert_clean();
    let from = START_NS + warm_up as i64 * step_ms * 1_000_000;
    let to = START_NS + steps as i64 * step_ms * 1_000_000;
    for s in [BTC_USD, ETH_USD] {
        let trades = report.trades.get(&s).map_or(&[][..], |v| &v[..]);
        let gap = longest_gap(trades, from, to);
        assert!(gap <= max_gap_s * 1_000_000_000, "symbol {s:?}: {gap} ns without a trade ({} trades)", trades.len());
        let seconds = (to - from) / 1_000_000_000;
        assert!(trades.len() as i64 * 5 >= seconds, "symbol {s:?}: only {} trades in {seconds} s", trades.len());
    }
    let deposits: BTreeMap<(UserId, u32), i64> = run
        .sim
        .users()
        .into_iter()
        .flat_map(|(u, d)| d.into_iter().map(move |(a, amt)| ((u, u32::from(a.0)), amt.0)))
        .collect();
    for (user, asset, total) in run.balances() {
        let deposit = deposits[&(user, asset)];
        // Positive, and far from running out: the deposits cover a week of trading.
        assert!(total > deposit / 4, "user {user:?} asset {asset}: {total} left of {deposit}");
    }
    run.ex.check_invariants().expect("engine invariants");
}

/// Every user's largest inventory on each of [`symbols`]: its limit plus what one step can
/// add beyond it (a taker, or a swept ladder).
fn assert_inventories_bounded(run: &Run, report: &Report) {
    let cfg = run.sim.config();
    for s in symbols() {
        let size = s.order_size.0;
        for (i, user) in run.sim.user_ids().into_iter().enumerate() {
            let inv = report.max_inventory.get(&(user, s.spec.id)).copied().unwrap_or(0);
            let limit =
                if i < usize::from(cfg.market_makers) { cfg.maker_inventory_limit } else { cfg.noise_inventory_limit };
            let bound = size * (i64::from(limit) + 3 * i64::from(cfg.levels) + 6);
            assert!(inv <= bound, "user {user:?} on {}: inventory {inv} lots, bound {bound}", s.spec.name);
        }
    }
}

#[test]
fn an_hour_of_market_against_the_engine() {
    let (steps, step_ms, warm_up) = (15_000, 250, 20);
    let mut run = Run::new(SimConfig::default(), symbols());
    let report = run.drive(steps, step_ms, warm_up, true);
    assert_healthy(&run, &report, steps, step_ms, warm_up, 30);
    assert_inventories_bounded(&run, &report);
    // The book looks alive: makers re-quote by amending, not only by cancel/replace.
    let amends = report.actions.iter().filter(|a| matches!(a, SimAction::Amend { .. })).count();
    assert!(amends > 100, "{amends} amends");
}

/// A simulated day, for soak checks outside CI (about a minute in release):
/// `cargo test -p qt-sim --release --test engine -- --ignored`.
#[test]
#[ignore = "a simulated day; run on demand with --release"]
fn a_day_of_market_against_the_engine() {
    let (steps, step_ms, warm_up) = (24 * 3_600 * 4, 250, 20);
    let mut run = Run::new(SimConfig { seed: 2_026, ..SimConfig::default() }, symbols());
    let report = run.drive(steps, step_ms, warm_up, true);
    assert_healthy(&run, &report, steps, step_ms, warm_up, 60);
    assert_inventories_bounded(&run, &report);
    let trades: usize = report.trades.values().map(Vec::len).sum();
    let count = |f: fn(&SimAction) -> bool| report.actions.iter().filter(|a| f(a)).count();
    eprintln!(
        "a day: {} actions ({} places, {} amends, {} cancels), {trades} trades, max inventories {:?}",
        report.actions.len(),
        count(|a| matches!(a, SimAction::Place(_))),
        count(|a| matches!(a, SimAction::Amend { .. })),
        count(|a| matches!(a, SimAction::Cancel { .. })),
        report.max_inventory
    );
    for (user, asset, total) in run.balances() {
        eprintln!("user {} asset {asset}: {total}", user.0);
    }
}

#[test]
fn inventory_estimate_without_positions_keeps_the_market_healthy() {
    let (steps, step_ms, warm_up) = (8_000, 200, 20);
    let mut run = Run::new(SimConfig { seed: 7, ..SimConfig::default() }, symbols());
    let report = run.drive(steps, step_ms, warm_up, false);
    assert_healthy(&run, &report, steps, step_ms, warm_up, 30);
    assert_inventories_bounded(&run, &report);
}

#[test]
fn same_seed_same_actions_and_another_seed_differs() {
    let run_actions = |seed: u64| {
        let mut run = Run::new(SimConfig { seed, ..SimConfig::default() }, symbols());
        run.drive(1_500, 200, 20, true).actions
    };
    let a = run_actions(11);
    assert!(!a.is_empty());
    assert_eq!(a, run_actions(11));
    assert_ne!(a, run_actions(12));
}

#[test]
fn irregular_steps_and_a_long_pause_stay_valid() {
    // A driver that lags, or a host that slept for ten minutes: the process moves as if at
    // most max_step_gap_ms passed, so nothing lands outside the price band.
    let mut run = Run::new(SimConfig::default(), symbols());
    let times = (0..3_000i64).scan(START_NS, |now, i| {
        *now += match i {
            1_000 => 600_000_000_000,
            _ if i % 7 == 0 => 1_000_000_000,
            _ => 100_000_000,
        };
        Some(*now)
    });
    let report = run.drive_at(times, 20, true);
    report.assert_clean();
    // A driver clock that steps back is taken as no time passing.
    let back = run.drive_at([START_NS, START_NS + 1], 0, true);
    back.assert_clean();
}

#[test]
fn a_restarted_simulator_takes_over_the_running_market() {
    // The driver contract at a restart: a fresh simulator, the old one's orders mass
    // cancelled, then steps again; the market goes on from its last price.
    let mut run = Run::new(SimConfig::default(), symbols());
    run.drive(2_000, 250, 20, true).assert_clean();
    let last_before = MarketView::last_price(&run.ex, BTC_USD).expect("traded");
    run.sim = Simulator::new(SimConfig::default(), symbols(), FIRST_USER).expect("valid simulator");
    let restart = START_NS + 2_000 * 250_000_000;
    for user in run.sim.user_ids() {
        for e in run.apply(restart, Command::MassCancel { user, symbol: None }) {
            assert!(!matches!(e, Event::CommandRejected { .. }), "{e:?}");
        }
    }
    run.drive_at([restart], 1, true).assert_clean();
    assert_eq!(run.sim.fair_price(BTC_USD), Some(last_before), "the fair price goes on from the last trade");
    let report = run.drive_at((1..2_000).map(|i| restart + i * 250_000_000), 1, true);
    report.assert_clean();
    assert!(report.trades.get(&BTC_USD).is_some_and(|t| t.len() > 100));
}

#[test]
fn a_recorded_feed_drives_the_market() {
    // A recording with a 3 % rally and a sell-off: the makers follow it within the band.
    let mut csv = String::from("seconds,price\n");
    for i in 0..120 {
        let usd = 30_000.0 + 900.0 * (f64::from(i) / 19.0).sin();
        csv.push_str(&format!("{},{:.2}\n", i * 5, usd));
    }
    let feed = RecordedFeed::parse_csv(&csv, &btc_usd()).expect("valid csv");
    let btc = SimSymbol::from_feed(btc_usd(), feed);
    let sim = Simulator::new(SimConfig::default(), vec![btc], FIRST_USER).expect("valid simulator");
    let mut run = Run::listed(sim, reference_data());
    let report = run.drive(6_000, 200, 20, true);
    report.assert_clean();
    assert!(report.trades.get(&BTC_USD).is_some_and(|t| t.len() > 500));
    assert!(!report.trades.contains_key(&ETH_USD));
    let last = MarketView::last_price(&run.ex, BTC_USD).expect("traded");
    assert!((2_900_000..=3_100_000).contains(&last.0), "last {last:?}");
}

/// A symbol listed after the reference data: base asset 3, symbol id 2.
fn listing_with(spec: &SymbolSpec) -> Vec<Command> {
    let mut cmds = reference_data();
    cmds.push(Command::AddAsset { code: "SOL".into(), scale: spec.base_scale });
    cmds.push(Command::AddSymbol(spec.clone()));
    cmds
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Any symbol grid the engine accepts and the simulator validates trades cleanly with
    /// the default dynamics: sizes, notionals and prices come out right for it.
    #[test]
    fn any_valid_symbol_grid_trades_cleanly(
        tick_exp in 0u32..8,
        lot_extra in 0u32..2,
        price_ticks in 20i64..20_000_000,
        min_notional_cents in 0i64..2_000,
        band_bps in 20i64..3_000,
        collar_bps in 20i64..3_000,
        min_qty in 1i64..50,
        seed in any::<u64>(),
    ) {
        // tick × lot must be a whole number of quote minor units per base unit (scale 8).
        let lot_exp = 8 - tick_exp + lot_extra;
        let spec = SymbolSpec {
            id: SymbolId(2),
            name: "SOL-USD".into(),
            base: AssetId(3),
            tick: 10i64.pow(tick_exp),
            lot: 10i64.pow(lot_exp),
            min_qty: Qty(min_qty),
            max_qty: Qty(1_000_000_000),
            min_notional: Amount(min_notional_cents * 1_000_000),
            price_band_bps: band_bps,
            market_collar_bps: collar_bps,
            ..btc_usd()
        };
        prop_assume!(spec.validate().is_ok());
        let sym = SimSymbol::new(spec.clone(), Price(price_ticks));
        prop_assume!(sym.validate().is_ok());
        let sim = Simulator::new(SimConfig { seed, ..SimConfig::default() }, vec![sym], FIRST_USER);
        prop_assume!(sim.is_ok());
        let mut run = Run::listed(sim.expect("checked"), listing_with(&spec));
        let report = run.drive(600, 250, 5, true);
        let problems = report.problems();
        prop_assert!(problems.is_none(), "{}", problems.unwrap_or_default());
        prop_assert!(report.trades.get(&SymbolId(2)).is_some_and(|t| !t.is_empty()));
        prop_assert!(run.ex.check_invariants().is_ok());
    }

    /// Any seed and any reasonable market shape: nothing the simulator sends is refused.
    #[test]
    fn any_seed_and_shape_is_accepted_by_the_engine(
        seed in any::<u64>(),
        market_makers in 1u16..4,
        noise_traders in 0u16..6,
        levels in 1u16..8,
        taker_orders_per_minute in 0u32..120,
        resting_orders_per_minute in 0u32..60,
        refresh_per_mille in 0u32..200,
        spread_bps in 0u32..50,
        level_step_bps in 0u32..30,
        step_ms in 50i64..1_000,
    ) {
        let config = SimConfig {
            seed,
            market_makers,
            noise_traders,
            levels,
            taker_orders_per_minute,
            resting_orders_per_minute,
            refresh_per_mille,
            ..SimConfig::default()
        };
        let syms: Vec<SimSymbol> = symbols()
            .into_iter()
            .map(|s| SimSymbol { spread_bps, level_step_bps, ..s })
            .collect();
        let mut run = Run::new(config, syms);
        let report = run.drive(800, step_ms, 5, true);
        let problems = report.problems();
        prop_assert!(problems.is_none(), "{}", problems.unwrap_or_default());
        prop_assert!(run.ex.check_invariants().is_ok());
    }
}
