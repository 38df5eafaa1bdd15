//! Property tests: random command streams keep every invariant (book never crossed,
//! ledger conserves every asset, reservations equal open orders' needs); snapshot plus
//! replay equals the uninterrupted run; and the book matches a naive reference matcher.

mod common;

use common::{op, run, side, P};
use proptest::prelude::*;
use qt_core::{OrderId, Price, Qty, TimeInForce, UserId};
use qt_engine::ports::{Journal, MemEventSink, MemJournal, MemSnapshotStore, SnapshotStore};
use qt_engine::replay::recover;
use qt_engine::{Command, EngineConfig, Event, Exchange, Snapshot};
use qt_testkit::harness::{trades, Harness};
use qt_testkit::reference::RefBook;
use qt_testkit::{BTC_USD, ETH_USD};

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
