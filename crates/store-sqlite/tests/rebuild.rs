//! Property: over random command streams, the live projection (in random batch sizes)
//! equals a rebuild from the journal after `reset`, agrees with the engine's balances,
//! positions and open orders, and its candles are exactly the trades bucketed.

mod common;

use common::{assert_matches_engine, dump, Driver, TempDir};
use proptest::prelude::*;
use qt_core::{Amount, AssetId, OrderId, OrderType, Price, Qty, Side, SymbolId, TimeInForce, UserId};
use qt_engine::ports::Journal;
use qt_engine::{Command, CommandEnvelope, EngineConfig, Exchange};
use qt_store_sqlite::{Projected, Reader, Store, CANDLE_INTERVALS};
use qt_testkit::fixtures::{BTC_USD, ETH_USD, UNIT};
use std::collections::BTreeMap;

const USERS: u64 = 4;

#[derive(Clone, Debug)]
enum Op {
    Place { user: u64, eth: bool, buy: bool, kind: u8, offset: i64, qty: i64, key: Option<u8> },
    Cancel { pick: usize, owner: bool },
    Amend { pick: usize, dprice: i64, qty: Option<i64> },
    MassCancel { user: u64, symbol: Option<bool> },
    Deposit { user: u64, asset: u16, units: i64, withdraw: bool },
    Advance { secs: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1..=USERS, any::<bool>(), any::<bool>(), 0u8..7, -40i64..40, 1i64..3_000, proptest::option::weighted(0.2, 0u8..4))
            .prop_map(|(user, eth, buy, kind, offset, qty, key)| Op::Place { user, eth, buy, kind, offset, qty, key }),
        2 => (any::<usize>(), proptest::bool::weighted(0.9)).prop_map(|(pick, owner)| Op::Cancel { pick, owner }),
        2 => (any::<usize>(), -5i64..5, proptest::option::of(1i64..4_000))
            .prop_map(|(pick, dprice, qty)| Op::Amend { pick, dprice, qty }),
        1 => (1..=USERS, proptest::option::of(any::<bool>())).prop_map(|(user, symbol)| Op::MassCancel { user, symbol }),
        1 => (1..=USERS, 0u16..3, 1i64..50, any::<bool>())
            .prop_map(|(user, asset, units, withdraw)| Op::Deposit { user, asset, units, withdraw }),
        1 => (1i64..400).prop_map(|secs| Op::Advance { secs }),
    ]
}

fn run(d: &mut Driver, ops: &[Op]) {
    let mut placed: Vec<(OrderId, UserId)> = Vec::new();
    for op in ops {
        match *op {
            Op::Place { user, eth, buy, kind, offset, qty, key } => {
                let (symbol, mid) = if eth { (ETH_USD, 200_000) } else { (BTC_USD, 3_000_000) };
                let side = if buy { Side::Buy } else { Side::Sell };
                let mut o = d.order(UserId(user), symbol, side, mid + offset, qty);
                match kind {
                    1 => o.tif = TimeInForce::Ioc,
                    2 => o.tif = TimeInForce::Fok,
                    3 => {
                        o.order_type = OrderType::Market;
                        o.tif = TimeInForce::Ioc;
                        o.price = None;
                    }
                    4 => {
                        o.order_type = OrderType::Stop;
                        o.tif = TimeInForce::Ioc;
                        o.price = None;
                        o.stop_price = Some(Price(mid + offset));
                    }
                    5 => {
                        o.order_type = OrderType::StopLimit;
                        o.stop_price = Some(Price(mid + offset / 2));
                    }
                    6 => o.post_only = true,
                    _ => {}
                }
                placed.push((o.order_id, o.user));
                let key = key.map(|k| format!("key-{k}"));
                d.place_key(o, key.as_deref());
            }
            Op::Cancel { pick, owner } if !placed.is_empty() => {
                let (id, user) = placed[pick % placed.len()];
                let user = if owner { user } else { UserId(user.0 % USERS + 1) };
                d.cmd(Command::Cancel { user, order_id: id });
            }
            Op::Amend { pick, dprice, qty } if !placed.is_empty() => {
                let (id, user) = placed[pick % placed.len()];
                let price = d.ex.order(id).and_then(|o| o.price).map(|p| Price(p.0 + dprice)).filter(|_| dprice != 0);
                d.cmd(Command::Amend { user, order_id: id, price, qty: qty.map(Qty) });
            }
            Op::MassCancel { user, symbol } => {
                let symbol = symbol.map(|eth| if eth { ETH_USD } else { BTC_USD });
                d.cmd(Command::MassCancel { user: UserId(user), symbol });
            }
            Op::Deposit { user, asset, units, withdraw } => {
                let (user, asset, amount) = (UserId(user), AssetId(asset), Amount(units * UNIT));
                d.cmd(if withdraw {
                    Command::Withdraw { user, asset, amount }
                } else {
                    Command::Deposit { user, asset, amount }
                });
            }
            Op::Advance { secs } => d.ts += secs * 1_000_000_000,
            Op::Cancel { .. } | Op::Amend { .. } => {}
        }
    }
}

/// Candles must be exactly the trades of the read model, bucketed.
fn assert_candles_match_trades(reader: &Reader, symbol: SymbolId) {
    let mut trades = reader.trades(symbol, qt_store_sqlite::MAX_PAGE).unwrap();
    trades.reverse();
    for interval in CANDLE_INTERVALS {
        let len = i64::from(interval) * 1_000_000_000;
        let mut expected: BTreeMap<i64, (i64, i64, i64, i64, i64, i64)> = BTreeMap::new();
        for t in &trades {
            let e = expected.entry(t.ts.div_euclid(len) * len).or_insert((t.price, t.price, t.price, t.price, 0, 0));
            e.1 = e.1.max(t.price);
            e.2 = e.2.min(t.price);
            e.3 = t.price;
            e.4 += t.qty;
            e.5 += 1;
        }
        let got: BTreeMap<i64, (i64, i64, i64, i64, i64, i64)> = reader
            .candles(symbol, interval, qt_store_sqlite::MAX_PAGE)
            .unwrap()
            .into_iter()
            .map(|c| (c.open_time, (c.open, c.high, c.low, c.close, c.volume, c.trades)))
            .collect();
        assert_eq!(got, expected, "{interval}s candles of {symbol:?}");
    }
}

/// Every order's row agrees with an independent fold of the events: final status, filled,
/// notional and fees of its fills, trigger flag, and its executions.
fn assert_orders_follow_events(reader: &Reader, log: &[(CommandEnvelope, Vec<qt_engine::EventEnvelope>)]) {
    use qt_core::OrderStatus;
    use qt_engine::Event;
    #[derive(Debug, Default, PartialEq)]
    struct Expected {
        status: Option<OrderStatus>,
        filled: i64,
        quote: i64,
        fees: i64,
        triggered: bool,
        fills: usize,
    }
    let specs = [qt_testkit::fixtures::btc_usd(), qt_testkit::fixtures::eth_usd()];
    let mut owner: BTreeMap<OrderId, UserId> = BTreeMap::new();
    let mut exp: BTreeMap<OrderId, Expected> = BTreeMap::new();
    for (cmd, events) in log {
        for e in events {
            match &e.event {
                Event::OrderAccepted { order } => {
                    owner.entry(order.order_id).or_insert(order.user);
                    exp.entry(order.order_id).or_default().status = Some(OrderStatus::Accepted);
                }
                Event::OrderRejected { order_id, user, .. }
                    if !owner.contains_key(order_id)
                        && matches!(&cmd.cmd, Command::Place(o) if o.order_id == *order_id) =>
                {
                    owner.insert(*order_id, *user);
                    exp.entry(*order_id).or_default().status = Some(OrderStatus::Rejected);
                }
                Event::Trade { symbol, price, qty, maker_order, taker_order, maker_fee, taker_fee, .. } => {
                    let notional = i64::try_from(specs[symbol.0 as usize].notional(*price, *qty)).unwrap();
                    for (id, fee) in [(maker_order, maker_fee), (taker_order, taker_fee)] {
                        let x = exp.entry(*id).or_default();
                        x.quote += notional;
                        x.fees += fee.0;
                        x.fills += 1;
                    }
                }
                Event::OrderFilled { order_id, filled, status, .. } => {
                    let x = exp.entry(*order_id).or_default();
                    x.filled = filled.0;
                    x.status = Some(*status);
                }
                Event::OrderSettled { order_id, .. } => {
                    exp.entry(*order_id).or_default().status = Some(OrderStatus::Settled)
                }
                Event::OrderCancelled { order_id, .. } => {
                    exp.entry(*order_id).or_default().status = Some(OrderStatus::Cancelled)
                }
                Event::OrderExpired { order_id, .. } => {
                    exp.entry(*order_id).or_default().status = Some(OrderStatus::Expired)
                }
                Event::OrderTriggered { order_id, .. } => exp.entry(*order_id).or_default().triggered = true,
                _ => {}
            }
        }
    }
    for (id, x) in &exp {
        let user = owner[id];
        let row = reader.order(user, *id).unwrap().unwrap_or_else(|| panic!("order {id:?} missing"));
        let got = Expected {
            status: Some(row.status),
            filled: row.filled,
            quote: row.quote_filled,
            fees: row.fees,
            triggered: row.triggered,
            fills: reader.order_fills(*id).unwrap().len(),
        };
        assert_eq!(&got, x, "order {id:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn rebuild_from_the_journal_equals_the_live_projection(
        ops in proptest::collection::vec(op(), 10..150),
        batches in proptest::collection::vec(1usize..20, 1..8),
        rebuild_batch in 1usize..64,
    ) {
        let dir = TempDir::new("prop");
        let store = Store::open(dir.path()).unwrap();
        let mut d = Driver::new();
        let users: Vec<UserId> = (1..=USERS).map(|u| d.user(u, &format!("user{u}"))).collect();
        for &u in &users {
            d.cmd(Command::Deposit { user: u, asset: AssetId(0), amount: Amount(500_000 * UNIT) });
            d.cmd(Command::Deposit { user: u, asset: AssetId(1), amount: Amount(20 * UNIT) });
            d.cmd(Command::Deposit { user: u, asset: AssetId(2), amount: Amount(200 * UNIT) });
        }
        run(&mut d, &ops);

        // Live: journal then project, batch by batch, as the engine thread does.
        let mut journal = store.journal().unwrap();
        let mut proj = store.projector().unwrap();
        let mut at = 0;
        let mut i = 0;
        while at < d.log.len() {
            let end = (at + batches[i % batches.len()]).min(d.log.len());
            let cmds: Vec<CommandEnvelope> = d.log[at..end].iter().map(|(c, _)| c.clone()).collect();
            journal.append(&cmds).unwrap();
            proj.project(&d.projected(at, end)).unwrap();
            at = end;
            i += 1;
        }
        let reader = store.reader().unwrap();
        assert_matches_engine(&reader, &d.ex, &users);
        assert_candles_match_trades(&reader, BTC_USD);
        assert_candles_match_trades(&reader, ETH_USD);
        assert_orders_follow_events(&reader, &d.log);
        let live = dump(store.path());

        // Rebuild: reset, replay the journal through a fresh exchange, project.
        proj.reset().unwrap();
        let mut ex = Exchange::new(EngineConfig::default());
        let cmds = journal.read_from(1, usize::MAX).unwrap();
        prop_assert_eq!(cmds.len(), d.log.len());
        for chunk in cmds.chunks(rebuild_batch) {
            let per_cmd: Vec<Vec<_>> = chunk.iter().map(|c| { let mut out = Vec::new(); ex.apply(c, &mut out); out }).collect();
            let batch: Vec<Projected<'_>> =
                chunk.iter().zip(&per_cmd).map(|(c, e)| Projected { command: c, events: e }).collect();
            proj.project(&batch).unwrap();
        }
        prop_assert_eq!(ex.state_hash(), d.ex.state_hash());
        let rebuilt = dump(store.path());
        prop_assert_eq!(rebuilt, live);
    }
}
