//! The exchange split into risk shards (by user) and matching shards (by symbol), joined by
//! in-memory queues ([`Cluster`]), against the whole exchange on the same command log:
//! - delivered in lock step (every message of a command before the next command), the
//!   halves give the same trades, the same outcome for every order and command, and the
//!   same balances, fees, positions and books, for 1–3 risk shards and 1–2 matching shards;
//! - delivered in any interleaving that keeps each queue's order, every shard conserves,
//!   no fill side fails to settle, and once the queues drain the clearing columns sum to
//!   zero and both halves agree on which orders are open.

mod common;

use common::{op, run};
use proptest::prelude::*;
use qt_core::{OrderId, SymbolId, UserId};
use qt_engine::shard::{matching_shard_of, risk_shard_of, Cluster, Input};
use qt_engine::{EngineConfig, Event, EventEnvelope};
use qt_testkit::{BTC_USD, ETH_USD};
use std::collections::BTreeMap;

const USERS: u64 = 4;
const ASSETS: u16 = 3;

/// A trade without its id (ids are allocated per matching shard).
fn trades_of(events: &[&Event], symbol: SymbolId) -> Vec<Event> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Trade { symbol: s, .. } if *s == symbol => {
                let mut t = (*e).clone();
                if let Event::Trade { trade_id, .. } = &mut t {
                    trade_id.0 = 0;
                }
                Some(t)
            }
            _ => None,
        })
        .collect()
}

/// What happened to each order, in order: acceptance, refusals (of the place or of a
/// command on it), fills, amends, triggers and its end.
fn outcomes(events: &[&Event]) -> BTreeMap<OrderId, Vec<Event>> {
    let mut by_order: BTreeMap<OrderId, Vec<Event>> = BTreeMap::new();
    for e in events {
        let id = match e {
            Event::OrderAccepted { order } => Some(order.order_id),
            Event::OrderRejected { order_id, .. }
            | Event::OrderTriggered { order_id, .. }
            | Event::OrderFilled { order_id, .. }
            | Event::OrderSettled { order_id, .. }
            | Event::OrderCancelled { order_id, .. }
            | Event::OrderExpired { order_id, .. }
            | Event::OrderAmended { order_id, .. } => Some(*order_id),
            Event::CommandRejected { order_id, .. } => *order_id,
            _ => None,
        };
        if let Some(id) = id {
            by_order.entry(id).or_default().push((*e).clone());
        }
    }
    by_order
}

fn lock_step(ops: &[common::Op], risk_shards: u32, matching_shards: u32) -> Result<(), TestCaseError> {
    let h = run(ops)?;
    let mut cluster = Cluster::new(EngineConfig::default(), risk_shards, matching_shards);
    for env in &h.log {
        cluster.submit(env);
        cluster.drain();
        cluster.check_invariants().map_err(|e| TestCaseError::fail(format!("after command {}: {e}", env.seq)))?;
    }
    let whole: Vec<&Event> = h.events.iter().map(|e| &e.event).collect();
    let split: Vec<&Event> = cluster.events.iter().map(|(_, e)| &e.event).collect();
    for symbol in [BTC_USD, ETH_USD] {
        prop_assert_eq!(trades_of(&split, symbol), trades_of(&whole, symbol), "trades of {:?}", symbol);
        let m = &cluster.matching[matching_shard_of(symbol, matching_shards) as usize];
        let (mine, theirs) = (&m.symbols()[symbol.0 as usize], &h.ex.symbols()[symbol.0 as usize]);
        prop_assert_eq!(mine.book.resting_orders(), theirs.book.resting_orders());
        prop_assert_eq!(mine.last_price, theirs.last_price);
    }
    let (split_outcomes, whole_outcomes) = (outcomes(&split), outcomes(&whole));
    for (id, expected) in &whole_outcomes {
        prop_assert_eq!(split_outcomes.get(id), Some(expected), "order {:?}", id);
    }
    prop_assert_eq!(split_outcomes.len(), whole_outcomes.len());
    for u in 1..=USERS {
        let user = UserId(u);
        let shard = &cluster.risk[risk_shard_of(user, risk_shards) as usize];
        prop_assert_eq!(shard.ledger().balances(user), h.ex.ledger().balances(user), "balances of {:?}", user);
        prop_assert_eq!(&shard.user(user).map(|s| s.positions.clone()), &h.ex.user(user).map(|s| s.positions.clone()));
    }
    for a in 0..ASSETS {
        let fees: i64 = cluster.risk.iter().map(|r| r.ledger().fees()[a as usize].0).sum();
        prop_assert_eq!(fees, h.ex.ledger().fees()[a as usize].0, "fees of asset {}", a);
    }
    Ok(())
}

/// A failure with the cluster's events, for the reader of a shrunk case.
fn fail_with_trace(cluster: &Cluster, e: String) -> TestCaseError {
    if std::env::var_os("QT_TRACE").is_some() {
        for (shard, ev) in &cluster.events {
            eprintln!("{shard:?} {:?}", ev.event);
        }
    }
    TestCaseError::fail(e)
}

/// Events of one shard carry consecutive sequence numbers from 1.
fn check_event_seqs(events: &[(Input, EventEnvelope)]) -> Result<(), TestCaseError> {
    let mut last: BTreeMap<Input, u64> = BTreeMap::new();
    for (shard, e) in events {
        let prev = last.insert(*shard, e.seq).unwrap_or(0);
        prop_assert_eq!(e.seq, prev + 1, "event seq of {:?}", shard);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// In lock step the halves are the exchange.
    #[test]
    fn lock_step_halves_equal_the_whole_exchange(
        ops in proptest::collection::vec(op(), 1..120),
        risk_shards in 1..=3u32,
        matching_shards in 1..=2u32,
    ) {
        lock_step(&ops, risk_shards, matching_shards)?;
    }

    /// In any interleaving every shard conserves and nothing fails to settle; drained, the
    /// cluster is consistent.
    #[test]
    fn any_interleaving_conserves_and_drains_consistent(
        ops in proptest::collection::vec(op(), 1..120),
        schedule in proptest::collection::vec((any::<prop::sample::Index>(), 0..4usize), 1..400),
        risk_shards in 1..=3u32,
        matching_shards in 1..=2u32,
    ) {
        let h = run(&ops)?;
        let mut cluster = Cluster::new(EngineConfig::default(), risk_shards, matching_shards);
        let mut plan = schedule.iter().cycle();
        for env in &h.log {
            cluster.submit(env);
            // A few messages of any ready inbox, so commands overtake earlier commands'
            // reports and market updates.
            let Some((pick, steps)) = plan.next() else { break };
            for _ in 0..*steps {
                let ready = cluster.ready();
                if ready.is_empty() {
                    break;
                }
                cluster.step(ready[pick.index(ready.len())]);
                cluster.check_invariants().map_err(|e| fail_with_trace(&cluster, e))?;
            }
        }
        cluster.drain();
        cluster.check_invariants().map_err(|e| fail_with_trace(&cluster, e))?;
        check_event_seqs(&cluster.events)?;
        // Every deposit and withdrawal landed: the shards' totals are the whole exchange's
        // net flows (the same commands, whatever the order of their effects).
        for a in 0..ASSETS as usize {
            let flows: i128 = cluster.risk.iter().map(|r| r.ledger().net_flows()[a]).sum();
            let totals: i128 = cluster.risk.iter().map(|r| r.ledger().totals()[a]).sum();
            prop_assert_eq!(flows, totals);
        }
    }
}
