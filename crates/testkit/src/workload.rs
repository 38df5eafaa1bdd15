//! The benchmark workload, modelled on exchange-core's throughput test: many users, a few
//! books pre-filled around a mid price, then a stream of commands in the proportions
//! 9% GTC limit, 3% IOC, 6% cancel and 82% amend (price moves of resting orders).
//!
//! Contract: [`Workload::generate`] is deterministic for a seed. Every command in the
//! stream is valid when applied in order to an exchange set up with [`Workload::setup`]:
//! the generator runs its own exchange while it generates, so cancels and amends target
//! orders that are really open at that point.

use crate::fixtures::{many_symbols, UNIT};
use qt_core::{
    Amount, AssetId, NewOrder, OrderId, OrderType, Price, Qty, Side, StpMode, SymbolId, TimeInForce, UserId,
};
use qt_engine::{Command, CommandEnvelope, EngineConfig, Exchange};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Mid price of every symbol in ticks (100.00 with tick 0.01... scaled: 10_000 ticks).
pub const MID: i64 = 10_000;

#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    pub symbols: u16,
    pub users: u64,
    /// Resting orders per symbol before the measured stream starts.
    pub orders_per_book: usize,
    /// Commands in the measured stream.
    pub ops: usize,
    pub seed: u64,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec { symbols: 1, users: 2_000, orders_per_book: 1_000, ops: 1_000_000, seed: 1 }
    }
}

/// Which kind each measured command is, for reporting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Gtc,
    Ioc,
    Cancel,
    Amend,
}

#[derive(Debug)]
pub struct Workload {
    /// Reference data, users, deposits and the pre-fill of the books.
    pub setup: Vec<CommandEnvelope>,
    /// The measured stream.
    pub ops: Vec<CommandEnvelope>,
    pub kinds: Vec<OpKind>,
}

struct Gen {
    rng: ChaCha8Rng,
    ex: Exchange,
    seq: u64,
    ts: i64,
    next_order: u64,
    /// Orders placed per symbol that may still be open (checked on use).
    live: Vec<Vec<OrderId>>,
    out: Vec<qt_engine::EventEnvelope>,
}

impl Gen {
    fn push(&mut self, cmd: Command, into: &mut Vec<CommandEnvelope>) {
        self.seq += 1;
        // 200 ns apart: five million commands a second of simulated time.
        self.ts += 200;
        let env = CommandEnvelope::new(self.seq, self.ts, cmd);
        self.out.clear();
        self.ex.apply(&env, &mut self.out);
        into.push(env);
    }

    fn new_order(&mut self, spec: &WorkloadSpec, symbol: SymbolId, tif: TimeInForce, aggressive: bool) -> NewOrder {
        let side = if self.rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
        let offset: i64 = self.rng.random_range(1..=50);
        let price = match (side, aggressive) {
            (Side::Buy, false) => MID - offset,
            (Side::Sell, false) => MID + offset,
            (Side::Buy, true) => MID + offset / 5,
            (Side::Sell, true) => MID - offset / 5,
        };
        let id = OrderId(self.next_order);
        self.next_order += 1;
        NewOrder {
            order_id: id,
            user: UserId(self.rng.random_range(1..=spec.users)),
            symbol,
            side,
            order_type: OrderType::Limit,
            tif,
            price: Some(Price(price)),
            stop_price: None,
            qty: Qty(self.rng.random_range(1..=100)),
            post_only: false,
            stp: StpMode::CancelNewest,
            client_order_id: None,
        }
    }

    /// A random open order of the symbol, forgetting closed ones on the way.
    fn pick_live(&mut self, symbol: SymbolId) -> Option<OrderId> {
        let live = &mut self.live[symbol.0 as usize];
        while !live.is_empty() {
            let i = self.rng.random_range(0..live.len());
            let id = live[i];
            if self.ex.order(id).is_some() {
                return Some(id);
            }
            live.swap_remove(i);
        }
        None
    }
}

impl Workload {
    pub fn generate(spec: &WorkloadSpec) -> Workload {
        let mut g = Gen {
            rng: ChaCha8Rng::seed_from_u64(spec.seed),
            ex: Exchange::new(EngineConfig { risk_enabled: false, ..EngineConfig::default() }),
            seq: 0,
            ts: crate::harness::START_TS,
            next_order: 1,
            live: vec![Vec::new(); spec.symbols as usize],
            out: Vec::new(),
        };
        let mut setup = Vec::new();
        for c in many_symbols(spec.symbols) {
            g.push(c, &mut setup);
        }
        for u in 1..=spec.users {
            let user = UserId(u);
            g.push(Command::CreateUser { user, limits: None }, &mut setup);
            // Enough of everything that no order of the stream is refused for funds.
            for asset in 0..=spec.symbols {
                let amount = Amount(1_000_000_000 * UNIT);
                g.push(Command::Deposit { user, asset: AssetId(asset), amount }, &mut setup);
            }
        }
        for s in 0..spec.symbols {
            for _ in 0..spec.orders_per_book {
                let o = g.new_order(spec, SymbolId(s), TimeInForce::Gtc, false);
                g.live[s as usize].push(o.order_id);
                g.push(Command::Place(o), &mut setup);
            }
        }
        let mut ops = Vec::with_capacity(spec.ops);
        let mut kinds = Vec::with_capacity(spec.ops);
        while ops.len() < spec.ops {
            let symbol = SymbolId(g.rng.random_range(0..spec.symbols));
            let roll: u32 = g.rng.random_range(0..100);
            let kind = match roll {
                0..=8 => OpKind::Gtc,
                9..=11 => OpKind::Ioc,
                12..=17 => OpKind::Cancel,
                _ => OpKind::Amend,
            };
            let cmd = match kind {
                OpKind::Gtc | OpKind::Ioc => {
                    let tif = if kind == OpKind::Gtc { TimeInForce::Gtc } else { TimeInForce::Ioc };
                    let aggressive = kind == OpKind::Ioc || g.rng.random_bool(0.2);
                    let o = g.new_order(spec, symbol, tif, aggressive);
                    if kind == OpKind::Gtc {
                        g.live[symbol.0 as usize].push(o.order_id);
                    }
                    Command::Place(o)
                }
                OpKind::Cancel => {
                    let Some(id) = g.pick_live(symbol) else { continue };
                    let user = g.ex.order(id).map_or(UserId(0), |o| o.order.user);
                    Command::Cancel { user, order_id: id }
                }
                OpKind::Amend => {
                    let Some(id) = g.pick_live(symbol) else { continue };
                    let Some(o) = g.ex.order(id) else { continue };
                    let (user, old) = (o.order.user, o.price.unwrap_or(Price(MID)));
                    let mut step: i64 = g.rng.random_range(-3..=3);
                    if step == 0 {
                        step = 1;
                    }
                    let price = Price((old.0 + step).clamp(MID - 200, MID + 200));
                    if price == old {
                        continue;
                    }
                    Command::Amend { user, order_id: id, price: Some(price), qty: None }
                }
            };
            g.push(cmd, &mut ops);
            kinds.push(kind);
        }
        Workload { setup, ops, kinds }
    }
}
