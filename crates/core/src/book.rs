//! The limit order book of one symbol and its matching loop.
//!
//! Contract:
//! - Price-time priority: better price first; at one price, earlier insertion first.
//! - Insert is O(log levels) (a new level enters a `BTreeMap`); cancel and in-place
//!   reduce are O(1) by order id (hash index into a slab, intrusive doubly linked list per
//!   level) plus O(log levels) only when a level empties.
//! - Every change of a level's total quantity pushes a [`BookDelta`] carrying the next
//!   per-symbol sequence number, so a consumer can rebuild the book from a snapshot and
//!   the deltas that follow it, and detect a gap.
//! - Matching returns fills as values ([`Fill`]) and self-trade prevention actions; it
//!   never touches balances. It is deterministic: no clock, no randomness, no I/O.
//! - At rest the book is never crossed: callers only rest the remainder of an order after
//!   matching it against the opposite side up to its limit price.

use crate::money::{Price, Qty};
use crate::order::{OrderId, Side, StpMode, UserId};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookDelta {
    pub seq: u64,
    pub side: Side,
    pub price: Price,
    /// The level's new total quantity; zero means the level is gone.
    pub qty: Qty,
}

/// One execution between the incoming order and a resting maker order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    pub maker_order: OrderId,
    pub maker_user: UserId,
    pub price: Price,
    pub qty: Qty,
    /// What is left of the maker order after this fill.
    pub maker_remaining: Qty,
}

/// A resting order removed by self-trade prevention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StpCancel {
    pub order_id: OrderId,
    pub user: UserId,
    pub price: Price,
    pub remaining: Qty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MatchOutcome {
    pub filled: Qty,
    /// Self-trade prevention stopped the incoming order; its remainder must be cancelled.
    pub taker_stopped_by_stp: bool,
}

/// Aggregated price levels of both sides, best first: `(price, total quantity)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Depth {
    pub bids: Vec<(Price, Qty)>,
    pub asks: Vec<(Price, Qty)>,
}

/// A view of a resting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resting {
    pub order_id: OrderId,
    pub user: UserId,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    order_id: OrderId,
    user: UserId,
    qty: Qty,
    prev: u32,
    next: u32,
    level: u32,
}

#[derive(Clone, Copy, Debug)]
struct Level {
    side: Side,
    price: Price,
    total: Qty,
    head: u32,
    tail: u32,
}

/// Reusable output buffers for matching, so the hot path does not allocate.
#[derive(Debug, Default)]
pub struct MatchBuffers {
    pub fills: Vec<Fill>,
    pub stp_cancels: Vec<StpCancel>,
    pub deltas: Vec<BookDelta>,
}

impl MatchBuffers {
    pub fn clear(&mut self) {
        self.fills.clear();
        self.stp_cancels.clear();
        self.deltas.clear();
    }
}

#[derive(Debug, Default, Clone)]
pub struct OrderBook {
    seq: u64,
    bids: BTreeMap<Price, u32>,
    asks: BTreeMap<Price, u32>,
    levels: Vec<Level>,
    free_levels: Vec<u32>,
    nodes: Vec<Node>,
    free_nodes: Vec<u32>,
    index: FxHashMap<OrderId, u32>,
}

impl OrderBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sequence number of the last delta emitted (0 before any change).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Restores the sequence counter (used when restoring from a snapshot).
    pub fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn contains(&self, id: OrderId) -> bool {
        self.index.contains_key(&id)
    }

    pub fn best_bid(&self) -> Option<(Price, Qty)> {
        self.bids.last_key_value().map(|(p, l)| (*p, self.levels[*l as usize].total))
    }

    pub fn best_ask(&self) -> Option<(Price, Qty)> {
        self.asks.first_key_value().map(|(p, l)| (*p, self.levels[*l as usize].total))
    }

    pub fn get(&self, id: OrderId) -> Option<Resting> {
        let n = &self.nodes[*self.index.get(&id)? as usize];
        let l = &self.levels[n.level as usize];
        Some(Resting { order_id: n.order_id, user: n.user, side: l.side, price: l.price, qty: n.qty })
    }

    /// Aggregated levels, best first, at most `depth` per side.
    pub fn depth(&self, depth: usize) -> Depth {
        let bids = self.bids.iter().rev().take(depth).map(|(p, l)| (*p, self.levels[*l as usize].total)).collect();
        let asks = self.asks.iter().take(depth).map(|(p, l)| (*p, self.levels[*l as usize].total)).collect();
        Depth { bids, asks }
    }

    /// Every resting order in priority order: bids best first, then asks best first; within
    /// a level, oldest first. Re-inserting them in this order rebuilds the same book.
    pub fn resting_orders(&self) -> Vec<Resting> {
        let mut out = Vec::with_capacity(self.index.len());
        for (_, l) in self.bids.iter().rev().chain(self.asks.iter()) {
            let level = &self.levels[*l as usize];
            let mut n = level.head;
            while n != NIL {
                let node = &self.nodes[n as usize];
                out.push(Resting {
                    order_id: node.order_id,
                    user: node.user,
                    side: level.side,
                    price: level.price,
                    qty: node.qty,
                });
                n = node.next;
            }
        }
        out
    }

    /// Whether an order on `side` at `price` would trade immediately.
    pub fn would_cross(&self, side: Side, price: Price) -> bool {
        match side {
            Side::Buy => self.best_ask().is_some_and(|(p, _)| price >= p),
            Side::Sell => self.best_bid().is_some_and(|(p, _)| price <= p),
        }
    }

    /// Appends an order at the back of its price level. The caller guarantees the id is
    /// not already resting and `qty` is positive.
    pub fn insert(
        &mut self,
        side: Side,
        price: Price,
        order_id: OrderId,
        user: UserId,
        qty: Qty,
        deltas: &mut Vec<BookDelta>,
    ) {
        debug_assert!(qty.is_positive());
        debug_assert!(!self.index.contains_key(&order_id));
        let map = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let level_idx = match map.get(&price) {
            Some(l) => *l,
            None => {
                let level = Level { side, price, total: Qty::ZERO, head: NIL, tail: NIL };
                let idx = match self.free_levels.pop() {
                    Some(i) => {
                        self.levels[i as usize] = level;
                        i
                    }
                    None => {
                        self.levels.push(level);
                        (self.levels.len() - 1) as u32
                    }
                };
                map.insert(price, idx);
                idx
            }
        };
        let tail = self.levels[level_idx as usize].tail;
        let node = Node { order_id, user, qty, prev: tail, next: NIL, level: level_idx };
        let node_idx = match self.free_nodes.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        if tail == NIL {
            self.levels[level_idx as usize].head = node_idx;
        } else {
            self.nodes[tail as usize].next = node_idx;
        }
        let level = &mut self.levels[level_idx as usize];
        level.tail = node_idx;
        level.total.0 += qty.0;
        let total = level.total;
        self.index.insert(order_id, node_idx);
        self.push_delta(side, price, total, deltas);
    }

    /// Removes a resting order; returns what it was.
    pub fn cancel(&mut self, order_id: OrderId, deltas: &mut Vec<BookDelta>) -> Option<Resting> {
        let node_idx = self.index.remove(&order_id)?;
        let node = self.nodes[node_idx as usize];
        let level = self.levels[node.level as usize];
        self.unlink(node_idx);
        let new_total = Qty(level.total.0 - node.qty.0);
        self.levels[node.level as usize].total = new_total;
        self.push_delta(level.side, level.price, new_total, deltas);
        self.drop_level_if_empty(node.level);
        Some(Resting { order_id, user: node.user, side: level.side, price: level.price, qty: node.qty })
    }

    /// Lowers a resting order's quantity in place, keeping its time priority.
    /// Returns false if the order is not resting or `new_qty` is not a reduction to a
    /// positive quantity.
    pub fn reduce(&mut self, order_id: OrderId, new_qty: Qty, deltas: &mut Vec<BookDelta>) -> bool {
        let Some(&node_idx) = self.index.get(&order_id) else { return false };
        let node = &mut self.nodes[node_idx as usize];
        if !new_qty.is_positive() || new_qty >= node.qty {
            return false;
        }
        let diff = node.qty.0 - new_qty.0;
        node.qty = new_qty;
        let level_idx = node.level;
        let level = &mut self.levels[level_idx as usize];
        level.total.0 -= diff;
        let (side, price, total) = (level.side, level.price, level.total);
        self.push_delta(side, price, total, deltas);
        true
    }

    /// How much of an incoming order on `side` could trade right now against other users'
    /// orders up to `limit` (None: any price), counting no further than `want`. Orders of
    /// `user` stop the count under cancel-newest/cancel-both, because matching would stop
    /// there; under cancel-oldest they are skipped, because matching would remove them.
    pub fn fillable(&self, side: Side, limit: Option<Price>, want: Qty, user: UserId, stp: StpMode) -> Qty {
        let mut total = 0i64;
        let levels: Box<dyn Iterator<Item = (&Price, &u32)>> = match side {
            Side::Buy => Box::new(self.asks.iter()),
            Side::Sell => Box::new(self.bids.iter().rev()),
        };
        for (price, l) in levels {
            if !Self::price_ok(side, *price, limit) {
                break;
            }
            let mut n = self.levels[*l as usize].head;
            while n != NIL {
                let node = &self.nodes[n as usize];
                if node.user == user {
                    if stp != StpMode::CancelOldest {
                        return Qty(total);
                    }
                } else {
                    total += node.qty.0;
                    if total >= want.0 {
                        return want;
                    }
                }
                n = node.next;
            }
        }
        Qty(total)
    }

    /// Matches an incoming order against the opposite side, best price first, up to
    /// `limit` (None: no price limit) and `qty`. Fills, STP cancellations and deltas are
    /// appended to `out`.
    pub fn match_incoming(
        &mut self,
        side: Side,
        limit: Option<Price>,
        qty: Qty,
        user: UserId,
        stp: StpMode,
        out: &mut MatchBuffers,
    ) -> MatchOutcome {
        let mut remaining = qty.0;
        let mut stopped = false;
        while remaining > 0 && !stopped {
            let best = match side {
                Side::Buy => self.asks.first_key_value(),
                Side::Sell => self.bids.last_key_value(),
            };
            let Some((&price, &level_idx)) = best else { break };
            if !Self::price_ok(side, price, limit) {
                break;
            }
            let level_side = side.opposite();
            let mut n = self.levels[level_idx as usize].head;
            let mut traded_here = 0i64;
            let mut stp_here = false;
            while n != NIL && remaining > 0 {
                let node = self.nodes[n as usize];
                let next = node.next;
                if node.user == user {
                    if stp != StpMode::CancelNewest {
                        // The resting (oldest) order goes.
                        self.index.remove(&node.order_id);
                        self.unlink(n);
                        self.levels[level_idx as usize].total.0 -= node.qty.0;
                        stp_here = true;
                        out.stp_cancels.push(StpCancel {
                            order_id: node.order_id,
                            user: node.user,
                            price,
                            remaining: node.qty,
                        });
                    }
                    if stp != StpMode::CancelOldest {
                        stopped = true;
                        break;
                    }
                    n = next;
                    continue;
                }
                let trade = remaining.min(node.qty.0);
                remaining -= trade;
                traded_here += trade;
                let maker_remaining = node.qty.0 - trade;
                out.fills.push(Fill {
                    maker_order: node.order_id,
                    maker_user: node.user,
                    price,
                    qty: Qty(trade),
                    maker_remaining: Qty(maker_remaining),
                });
                if maker_remaining == 0 {
                    self.index.remove(&node.order_id);
                    self.unlink(n);
                } else {
                    self.nodes[n as usize].qty = Qty(maker_remaining);
                }
                n = next;
            }
            let level = &mut self.levels[level_idx as usize];
            level.total.0 -= traded_here;
            let total = level.total;
            if traded_here > 0 || stp_here {
                self.push_delta(level_side, price, total, &mut out.deltas);
            }
            self.drop_level_if_empty(level_idx);
        }
        MatchOutcome { filled: Qty(qty.0 - remaining), taker_stopped_by_stp: stopped }
    }

    #[inline]
    fn price_ok(side: Side, level_price: Price, limit: Option<Price>) -> bool {
        match (side, limit) {
            (_, None) => true,
            (Side::Buy, Some(l)) => level_price <= l,
            (Side::Sell, Some(l)) => level_price >= l,
        }
    }

    #[inline]
    fn push_delta(&mut self, side: Side, price: Price, qty: Qty, deltas: &mut Vec<BookDelta>) {
        self.seq += 1;
        deltas.push(BookDelta { seq: self.seq, side, price, qty });
    }

    fn unlink(&mut self, node_idx: u32) {
        let node = self.nodes[node_idx as usize];
        if node.prev == NIL {
            self.levels[node.level as usize].head = node.next;
        } else {
            self.nodes[node.prev as usize].next = node.next;
        }
        if node.next == NIL {
            self.levels[node.level as usize].tail = node.prev;
        } else {
            self.nodes[node.next as usize].prev = node.prev;
        }
        self.free_nodes.push(node_idx);
    }

    fn drop_level_if_empty(&mut self, level_idx: u32) {
        let level = self.levels[level_idx as usize];
        if level.head != NIL {
            return;
        }
        debug_assert_eq!(level.total, Qty::ZERO);
        match level.side {
            Side::Buy => self.bids.remove(&level.price),
            Side::Sell => self.asks.remove(&level.price),
        };
        self.free_levels.push(level_idx);
    }

    /// Checks the internal invariants; for tests. Returns a description of the first
    /// violation.
    pub fn check_invariants(&self) -> Result<(), String> {
        if let (Some((b, _)), Some((a, _))) = (self.best_bid(), self.best_ask()) {
            if b >= a {
                return Err(format!("crossed book: bid {b} >= ask {a}"));
            }
        }
        let mut count = 0;
        for (side, map) in [(Side::Buy, &self.bids), (Side::Sell, &self.asks)] {
            for (price, l) in map {
                let level = &self.levels[*l as usize];
                if level.side != side || level.price != *price {
                    return Err(format!("level {price} mislabelled"));
                }
                let mut sum = 0;
                let mut n = level.head;
                let mut prev = NIL;
                while n != NIL {
                    let node = &self.nodes[n as usize];
                    if node.prev != prev || node.level != *l || !node.qty.is_positive() {
                        return Err(format!("broken node {:?}", node.order_id));
                    }
                    if self.index.get(&node.order_id) != Some(&n) {
                        return Err(format!("index mismatch for {:?}", node.order_id));
                    }
                    sum += node.qty.0;
                    count += 1;
                    prev = n;
                    n = node.next;
                }
                if level.tail != prev || level.total.0 != sum || sum == 0 {
                    return Err(format!("level {price} total {} != {sum}", level.total));
                }
            }
        }
        if count != self.index.len() {
            return Err(format!("index has {} orders, levels {count}", self.index.len()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book_with(orders: &[(Side, i64, u64, u64, i64)]) -> OrderBook {
        let mut b = OrderBook::new();
        let mut d = Vec::new();
        for &(side, p, id, user, q) in orders {
            b.insert(side, Price(p), OrderId(id), UserId(user), Qty(q), &mut d);
        }
        b
    }

    #[test]
    fn price_then_time_priority() {
        let mut b = book_with(&[(Side::Sell, 101, 1, 1, 5), (Side::Sell, 100, 2, 2, 5), (Side::Sell, 100, 3, 3, 5)]);
        let mut out = MatchBuffers::default();
        let r = b.match_incoming(Side::Buy, Some(Price(101)), Qty(12), UserId(9), StpMode::CancelNewest, &mut out);
        assert_eq!(r.filled, Qty(12));
        let makers: Vec<_> = out.fills.iter().map(|f| (f.maker_order.0, f.price.0, f.qty.0)).collect();
        assert_eq!(makers, vec![(2, 100, 5), (3, 100, 5), (1, 101, 2)]);
        assert_eq!(b.best_ask(), Some((Price(101), Qty(3))));
        b.check_invariants().unwrap();
    }

    #[test]
    fn limit_stops_matching() {
        let mut b = book_with(&[(Side::Sell, 100, 1, 1, 5), (Side::Sell, 102, 2, 1, 5)]);
        let mut out = MatchBuffers::default();
        let r = b.match_incoming(Side::Buy, Some(Price(101)), Qty(8), UserId(9), StpMode::CancelNewest, &mut out);
        assert_eq!(r.filled, Qty(5));
        assert_eq!(b.best_ask(), Some((Price(102), Qty(5))));
    }

    #[test]
    fn cancel_and_reduce_keep_totals_and_deltas_are_sequenced() {
        let mut d = Vec::new();
        let mut b = OrderBook::new();
        b.insert(Side::Buy, Price(99), OrderId(1), UserId(1), Qty(4), &mut d);
        b.insert(Side::Buy, Price(99), OrderId(2), UserId(1), Qty(6), &mut d);
        assert!(b.reduce(OrderId(2), Qty(3), &mut d));
        assert!(!b.reduce(OrderId(2), Qty(3), &mut d), "not a reduction");
        assert_eq!(b.cancel(OrderId(1), &mut d).map(|r| r.qty), Some(Qty(4)));
        assert_eq!(b.best_bid(), Some((Price(99), Qty(3))));
        assert_eq!(b.cancel(OrderId(1), &mut d), None);
        let seqs: Vec<_> = d.iter().map(|x| x.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        assert_eq!(d.iter().map(|x| x.qty.0).collect::<Vec<_>>(), vec![4, 10, 7, 3]);
        b.cancel(OrderId(2), &mut d);
        assert_eq!(d.last().map(|x| x.qty), Some(Qty(0)));
        assert!(b.is_empty());
        b.check_invariants().unwrap();
    }

    #[test]
    fn stp_modes() {
        let orders = [(Side::Sell, 100, 1, 7, 5), (Side::Sell, 100, 2, 8, 5)];
        // cancel newest: stops at own order, nothing traded, resting untouched
        let mut b = book_with(&orders);
        let mut out = MatchBuffers::default();
        let r = b.match_incoming(Side::Buy, None, Qty(10), UserId(7), StpMode::CancelNewest, &mut out);
        assert_eq!((r.filled, r.taker_stopped_by_stp), (Qty(0), true));
        assert_eq!(b.len(), 2);
        // cancel oldest: own order removed, trades with the next
        let mut b = book_with(&orders);
        let mut out = MatchBuffers::default();
        let r = b.match_incoming(Side::Buy, None, Qty(10), UserId(7), StpMode::CancelOldest, &mut out);
        assert_eq!((r.filled, r.taker_stopped_by_stp), (Qty(5), false));
        assert_eq!(out.stp_cancels.len(), 1);
        assert!(b.is_empty());
        // cancel both
        let mut b = book_with(&orders);
        let mut out = MatchBuffers::default();
        let r = b.match_incoming(Side::Buy, None, Qty(10), UserId(7), StpMode::CancelBoth, &mut out);
        assert_eq!((r.filled, r.taker_stopped_by_stp), (Qty(0), true));
        assert_eq!(out.stp_cancels[0].order_id, OrderId(1));
        assert_eq!(b.len(), 1);
        b.check_invariants().unwrap();
    }

    #[test]
    fn fillable_counts_like_matching() {
        let b = book_with(&[(Side::Sell, 100, 1, 1, 5), (Side::Sell, 101, 2, 7, 5), (Side::Sell, 102, 3, 2, 5)]);
        assert_eq!(b.fillable(Side::Buy, Some(Price(102)), Qty(15), UserId(9), StpMode::CancelNewest), Qty(15));
        assert_eq!(b.fillable(Side::Buy, Some(Price(102)), Qty(15), UserId(7), StpMode::CancelNewest), Qty(5));
        assert_eq!(b.fillable(Side::Buy, Some(Price(102)), Qty(15), UserId(7), StpMode::CancelOldest), Qty(10));
        assert_eq!(b.fillable(Side::Buy, Some(Price(100)), Qty(15), UserId(9), StpMode::CancelNewest), Qty(5));
    }

    #[test]
    fn resting_orders_round_trip() {
        let b = book_with(&[(Side::Buy, 99, 1, 1, 5), (Side::Buy, 99, 2, 2, 3), (Side::Sell, 101, 3, 1, 4)]);
        let mut c = OrderBook::new();
        let mut d = Vec::new();
        for r in b.resting_orders() {
            c.insert(r.side, r.price, r.order_id, r.user, r.qty, &mut d);
        }
        assert_eq!(b.resting_orders(), c.resting_orders());
    }
}
