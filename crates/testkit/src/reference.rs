//! A reference matcher: the simplest code that obviously implements price-time priority
//! (a flat list scanned for the best order), used by property tests to check the real
//! book's fills and depth. Orders are limit GTC or IOC; self-trade prevention is
//! cancel-newest: meeting one's own order stops the incoming order.

use qt_core::{Depth, OrderId, Price, Qty, Side, UserId};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RefOrder {
    id: OrderId,
    user: UserId,
    side: Side,
    price: Price,
    qty: Qty,
    arrival: u64,
}

#[derive(Clone, Debug, Default)]
pub struct RefBook {
    resting: Vec<RefOrder>,
    arrivals: u64,
}

/// A fill as (maker order, price, qty).
pub type RefFill = (OrderId, Price, Qty);

impl RefBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// Matches an incoming limit order and rests its remainder when `rest` (GTC) and it
    /// was not stopped by self-trade prevention.
    pub fn place(&mut self, id: OrderId, user: UserId, side: Side, price: Price, qty: Qty, rest: bool) -> Vec<RefFill> {
        let mut fills = Vec::new();
        let mut remaining = qty.0;
        while remaining > 0 {
            let best = self
                .resting
                .iter()
                .enumerate()
                .filter(|(_, o)| o.side != side)
                .min_by_key(|(_, o)| (if side == Side::Buy { o.price.0 } else { -o.price.0 }, o.arrival))
                .map(|(i, o)| (i, *o));
            let Some((i, maker)) = best else { break };
            let crosses = match side {
                Side::Buy => maker.price <= price,
                Side::Sell => maker.price >= price,
            };
            if !crosses {
                break;
            }
            if maker.user == user {
                return fills;
            }
            let traded = remaining.min(maker.qty.0);
            remaining -= traded;
            fills.push((maker.id, maker.price, Qty(traded)));
            if traded == maker.qty.0 {
                self.resting.remove(i);
            } else {
                self.resting[i].qty.0 -= traded;
            }
        }
        if remaining > 0 && rest {
            self.arrivals += 1;
            self.resting.push(RefOrder { id, user, side, price, qty: Qty(remaining), arrival: self.arrivals });
        }
        fills
    }

    pub fn cancel(&mut self, id: OrderId) -> bool {
        let before = self.resting.len();
        self.resting.retain(|o| o.id != id);
        self.resting.len() != before
    }

    /// Amends a resting order to a new price and remaining quantity: it keeps its place
    /// only when the price is the same and the quantity does not grow; otherwise it is
    /// taken out and placed again (and may trade).
    pub fn amend(&mut self, id: OrderId, price: Price, remaining: Qty) -> Vec<RefFill> {
        let Some(i) = self.resting.iter().position(|o| o.id == id) else { return Vec::new() };
        let o = self.resting[i];
        if price == o.price && remaining <= o.qty {
            self.resting[i].qty = remaining;
            return Vec::new();
        }
        self.resting.remove(i);
        self.place(id, o.user, o.side, price, remaining, true)
    }

    /// Remaining quantity of a resting order.
    pub fn remaining(&self, id: OrderId) -> Option<Qty> {
        self.resting.iter().find(|o| o.id == id).map(|o| o.qty)
    }

    /// Aggregated levels, best first: (bids, asks).
    pub fn depth(&self) -> Depth {
        let mut bids: BTreeMap<Price, i64> = BTreeMap::new();
        let mut asks: BTreeMap<Price, i64> = BTreeMap::new();
        for o in &self.resting {
            let side = if o.side == Side::Buy { &mut bids } else { &mut asks };
            *side.entry(o.price).or_default() += o.qty.0;
        }
        Depth {
            bids: bids.into_iter().rev().map(|(p, q)| (p, Qty(q))).collect(),
            asks: asks.into_iter().map(|(p, q)| (p, Qty(q))).collect(),
        }
    }
}
