//! The random command streams the engine's property tests share: places of every kind on
//! two symbols, cancels, amends, mass cancels, deposits, withdrawals, kill switches, limit
//! changes and the passing of time, over four funded users.

#![allow(dead_code)] // each test crate uses a different part

use proptest::prelude::*;
use qt_core::{Amount, OrderId, OrderType, Price, Qty, RiskLimits, Side, StpMode, TimeInForce, UserId};
use qt_engine::{Command, EngineConfig};
use qt_testkit::harness::Harness;
use qt_testkit::{BTC, BTC_USD, ETH, ETH_USD, USD};

pub const P: i64 = 3_000_000;

#[derive(Clone, Debug)]
pub enum Op {
    Place {
        user: u64,
        side: Side,
        kind: u8,
        tif: u8,
        offset: i64,
        qty: i64,
        post_only: bool,
        stp: u8,
        eth: bool,
    },
    Cancel {
        user: u64,
        pick: usize,
    },
    Amend {
        user: u64,
        pick: usize,
        offset: Option<i64>,
        qty: Option<i64>,
    },
    MassCancel {
        user: u64,
        eth: Option<bool>,
    },
    Deposit {
        user: u64,
        units: i64,
    },
    Withdraw {
        user: u64,
        units: i64,
    },
    Kill {
        user: Option<u64>,
        on: bool,
    },
    Advance {
        millis: i64,
    },
    /// Tight limits for a user: order rate, daily loss, concentration, position.
    Limits {
        user: u64,
        velocity: Option<u32>,
        daily_loss: Option<i64>,
        concentration: Option<u32>,
        position: Option<i64>,
    },
}

pub fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (1..=4u64, side(), 0..10u8, 0..6u8, -20..=20i64, 1..=30_000i64, proptest::bool::weighted(0.1), 0..3u8, proptest::bool::weighted(0.2))
            .prop_map(|(user, side, kind, tif, offset, qty, post_only, stp, eth)| Op::Place { user, side, kind, tif, offset, qty, post_only, stp, eth }),
        3 => (1..=4u64, any::<usize>()).prop_map(|(user, pick)| Op::Cancel { user, pick }),
        4 => (1..=4u64, any::<usize>(), proptest::option::of(-20..=20i64), proptest::option::of(1..=30_000i64))
            .prop_map(|(user, pick, offset, qty)| Op::Amend { user, pick, offset, qty }),
        1 => (1..=4u64, proptest::option::of(any::<bool>())).prop_map(|(user, eth)| Op::MassCancel { user, eth }),
        1 => (1..=4u64, 1..=1_000i64).prop_map(|(user, units)| Op::Deposit { user, units }),
        1 => (1..=4u64, 1..=1_000i64).prop_map(|(user, units)| Op::Withdraw { user, units }),
        1 => (proptest::option::of(1..=4u64), proptest::bool::weighted(0.15)).prop_map(|(user, on)| Op::Kill { user, on }),
        1 => (0..2_000i64).prop_map(|millis| Op::Advance { millis }),
        1 => (1..=4u64, proptest::option::of(1..6u32), proptest::option::of(1..2_000i64), proptest::option::of(1_000..10_000u32), proptest::option::of(1..40_000i64))
            .prop_map(|(user, velocity, daily_loss, concentration, position)| Op::Limits { user, velocity, daily_loss, concentration, position }),
    ]
}

/// Turns a generated op into a command against the harness's current state.
pub fn command(h: &mut Harness, placed: &[OrderId], op: &Op) -> Option<Command> {
    // Mostly open orders by their owner; user 4 also tries other people's and closed ones.
    let live: Vec<OrderId> = placed.iter().copied().filter(|id| h.ex.order(*id).is_some()).collect();
    let pick = |i: usize, user: u64| {
        let pool = if live.is_empty() || user == 4 { placed } else { &live[..] };
        let id = if pool.is_empty() { OrderId(0) } else { pool[i % pool.len()] };
        let owner = h.ex.order(id).map(|o| o.order.user.0).filter(|_| user != 4).unwrap_or(user);
        (id, UserId(owner))
    };
    Some(match *op {
        Op::Place { user, side, kind, tif, offset, qty, post_only, stp, eth } => {
            let mut o = h.order(UserId(user), side, P + offset * 100, qty);
            if eth {
                o.symbol = ETH_USD;
                o.price = Some(Price(200_000 + offset * 10));
                o.qty = Qty(qty.max(1) / 10 + 1);
            }
            o.tif = match tif {
                4 => TimeInForce::Ioc,
                5 => TimeInForce::Fok,
                _ => TimeInForce::Gtc,
            };
            o.stp = [StpMode::CancelNewest, StpMode::CancelOldest, StpMode::CancelBoth][stp as usize];
            o.post_only = post_only;
            match kind {
                0 => {
                    o.order_type = OrderType::Market;
                    o.price = None;
                    if o.tif == TimeInForce::Gtc {
                        o.tif = TimeInForce::Ioc;
                    }
                }
                1 => {
                    o.order_type = OrderType::Stop;
                    o.stop_price = o.price;
                    o.price = None;
                    o.tif = TimeInForce::Ioc;
                }
                2 => {
                    o.order_type = OrderType::StopLimit;
                    o.stop_price = o.price.map(|p| Price(p.0 + if side == Side::Buy { -300 } else { 300 }));
                }
                _ => {}
            }
            Command::Place(o)
        }
        Op::Cancel { user, pick: i } => {
            let (order_id, user) = pick(i, user);
            Command::Cancel { user, order_id }
        }
        Op::Amend { user, pick: i, offset, qty } => {
            let (order_id, user) = pick(i, user);
            Command::Amend { user, order_id, price: offset.map(|o| Price(P + o * 100)), qty: qty.map(Qty) }
        }
        Op::MassCancel { user, eth } => {
            Command::MassCancel { user: UserId(user), symbol: eth.map(|e| if e { ETH_USD } else { BTC_USD }) }
        }
        Op::Deposit { user, units } => {
            Command::Deposit { user: UserId(user), asset: USD, amount: Amount(units * 100_000_000) }
        }
        Op::Withdraw { user, units } => {
            Command::Withdraw { user: UserId(user), asset: BTC, amount: Amount(units * 1_000_000) }
        }
        Op::Kill { user, on } => Command::SetKillSwitch { user: user.map(UserId), on },
        Op::Limits { user, velocity, daily_loss, concentration, position } => {
            let limits = RiskLimits {
                max_orders_per_second: velocity,
                daily_loss_limit: daily_loss.map(|units| Amount(units * 100_000_000)),
                max_concentration_bps: concentration,
                max_position: position
                    .map(|q| [(BTC_USD, Qty(q)), (ETH_USD, Qty(q / 10 + 1))].into())
                    .unwrap_or_default(),
                ..RiskLimits::default()
            };
            Command::SetLimits { user: UserId(user), limits }
        }
        Op::Advance { millis } => {
            h.advance(millis * 1_000_000);
            return None;
        }
    })
}

pub fn funded() -> Harness {
    let mut h = Harness::new(EngineConfig::default());
    for u in 1..=4 {
        h.user(u, &[(USD, 200_000), (BTC, 5), (ETH, 100)]);
    }
    h
}

/// Runs the ops, checking invariants after every command; returns the harness.
pub fn run(ops: &[Op]) -> Result<Harness, TestCaseError> {
    let mut h = funded();
    let mut placed = Vec::new();
    for op in ops {
        let Some(cmd) = command(&mut h, &placed, op) else { continue };
        if let Command::Place(o) = &cmd {
            placed.push(o.order_id);
        }
        h.cmd(cmd);
        if let Err(e) = h.ex.check_invariants() {
            return Err(TestCaseError::fail(format!("after {op:?}: {e}")));
        }
    }
    Ok(h)
}
