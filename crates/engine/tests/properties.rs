//! Property tests: random command streams keep every invariant (book never crossed,
//! ledger conserves every asset, reservations equal open orders' needs); snapshot plus
//! replay equals the uninterrupted run; and the book matches a naive reference matcher.

use proptest::prelude::*;
use qt_core::{Amount, OrderId, OrderType, Price, Qty, Side, StpMode, TimeInForce, UserId};
use qt_engine::ports::{Journal, MemEventSink, MemJournal, MemSnapshotStore, SnapshotStore};
use qt_engine::replay::recover;
use qt_engine::{Command, EngineConfig, Event, Exchange, Snapshot};
use qt_testkit::harness::{trades, Harness};
use qt_testkit::reference::RefBook;
use qt_testkit::{BTC, BTC_USD, ETH, ETH_USD, USD};

const P: i64 = 3_000_000;

#[derive(Clone, Debug)]
enum Op {
    Place { user: u64, side: Side, kind: u8, tif: u8, offset: i64, qty: i64, post_only: bool, stp: u8, eth: bool },
    Cancel { user: u64, pick: usize },
    Amend { user: u64, pick: usize, offset: Option<i64>, qty: Option<i64> },
    MassCancel { user: u64, eth: Option<bool> },
    Deposit { user: u64, units: i64 },
    Withdraw { user: u64, units: i64 },
    Kill { user: Option<u64>, on: bool },
    Advance { millis: i64 },
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn op() -> impl Strategy<Value = Op> {
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
    ]
}

/// Turns a generated op into a command against the harness's current state.
fn command(h: &mut Harness, placed: &[OrderId], op: &Op) -> Option<Command> {
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
        Op::Advance { millis } => {
            h.advance(millis * 1_000_000);
            return None;
        }
    })
}

fn funded() -> Harness {
    let mut h = Harness::new(EngineConfig::default());
    for u in 1..=4 {
        h.user(u, &[(USD, 200_000), (BTC, 5), (ETH, 100)]);
    }
    h
}

/// Runs the ops, checking invariants after every command; returns the harness.
fn run(ops: &[Op]) -> Result<Harness, TestCaseError> {
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The book is never crossed, the ledger conserves every asset and every reservation
    /// equals what the open orders need, after every command.
    #[test]
    fn invariants_hold_after_every_command(ops in proptest::collection::vec(op(), 1..120)) {
        let h = run(&ops)?;
        // Event sequence numbers are consecutive from 1.
        for (i, e) in h.events.iter().enumerate() {
            prop_assert_eq!(e.seq, i as u64 + 1);
        }
        // Book deltas of each symbol carry consecutive sequence numbers.
        for symbol in [BTC_USD, ETH_USD] {
            let seqs: Vec<u64> = h.events.iter().filter_map(|e| match &e.event {
                Event::BookChanged { symbol: s, delta } if *s == symbol => Some(delta.seq),
                _ => None,
            }).collect();
            for w in seqs.windows(2) {
                prop_assert_eq!(w[1], w[0] + 1);
            }
        }
    }

    /// A snapshot taken anywhere, encoded, decoded, restored and fed the rest of the log
    /// ends in exactly the state of the uninterrupted run, with the same events.
    #[test]
    fn snapshot_plus_replay_equals_straight_run(ops in proptest::collection::vec(op(), 1..100), cut in any::<prop::sample::Index>()) {
        let straight = run(&ops)?;
        let log = &straight.log;
        let k = cut.index(log.len() + 1);
        let mut ex = Exchange::new(EngineConfig::default());
        let mut out = Vec::new();
        for c in &log[..k] {
            ex.apply(c, &mut out);
        }
        let snap = Snapshot::from_bytes(&ex.snapshot().to_bytes().map_err(|e| TestCaseError::fail(e.to_string()))?)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Through the ports, the way a restart does it.
        let mut journal = MemJournal::new();
        journal.append(log).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut snapshots = MemSnapshotStore::new();
        snapshots.save(&snap).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut sink = MemEventSink::default();
        let (recovered, report) = recover(EngineConfig::default(), &journal, &snapshots, &mut sink)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(report.replayed_commands as usize, log.len() - k);
        prop_assert_eq!(recovered.state_hash(), straight.ex.state_hash());
        prop_assert_eq!(&sink.events[..], &straight.events[out.len()..]);
        recovered.check_invariants().map_err(TestCaseError::fail)?;
    }

    /// Against the naive reference matcher, with risk off: same fills in the same order
    /// and the same depth after every command.
    #[test]
    fn book_matches_reference_matcher(ops in proptest::collection::vec(
        (0..10u8, 1..=5u64, side(), -10..=10i64, 1..=20i64, any::<usize>()), 1..200)) {
        let mut h = Harness::new(EngineConfig { risk_enabled: false, ..EngineConfig::default() });
        for u in 1..=5 { h.user(u, &[]); }
        let mut reference = RefBook::new();
        let mut placed: Vec<OrderId> = Vec::new();
        for (kind, user, side, offset, qty, pick) in ops {
            let price = Price(P + offset * 100);
            let (events, expected) = match kind {
                0..=5 => {
                    let mut o = h.order(UserId(user), side, price.0, qty);
                    if kind == 5 { o.tif = TimeInForce::Ioc; }
                    let id = o.order_id;
                    placed.push(id);
                    let expected = reference.place(id, UserId(user), side, price, Qty(qty), kind != 5);
                    (h.place(o), expected)
                }
                6 | 7 if !placed.is_empty() => {
                    let id = placed[pick % placed.len()];
                    let owner = h.ex.order(id).map(|o| o.order.user);
                    if kind == 6 {
                        let removed = reference.cancel(id);
                        prop_assert_eq!(removed, owner.is_some());
                        (h.cmd(Command::Cancel { user: owner.unwrap_or(UserId(1)), order_id: id }), vec![])
                    } else {
                        let Some(live) = h.ex.order(id).cloned() else { continue };
                        let new_qty = Qty(live.filled.0 + qty);
                        let expected = if Some(price) == live.price && new_qty == live.qty {
                            vec![]
                        } else {
                            reference.amend(id, price, Qty(qty))
                        };
                        (h.cmd(Command::Amend { user: live.order.user, order_id: id, price: Some(price), qty: Some(new_qty) }), expected)
                    }
                }
                _ => continue,
            };
            let got: Vec<(OrderId, Price, Qty)> = trades(&events).into_iter().map(|(m, _, p, q)| (m, p, q)).collect();
            prop_assert_eq!(got, expected);
            let book = &h.ex.symbols()[0].book;
            prop_assert_eq!(book.depth(usize::MAX), reference.depth());
            book.check_invariants().map_err(TestCaseError::fail)?;
        }
    }
}
