//! Market makers: a ladder of quotes on both sides of the fair price, skewed against
//! inventory, re-quoted with as few amends as possible.
//!
//! Contract:
//! - [`ladder_prices`] puts every bid strictly below the centre and every ask strictly
//!   above it, inside the window, on a grid of `step` ticks anchored at zero, so a small
//!   move of the fair price changes nothing and a larger one moves one level from the back
//!   of the ladder to the front (the book looks alive without churning). With the best
//!   quotes of the previous step given, a side stays put while its ideal anchor is at most
//!   one step away (hysteresis: a price wandering around a grid line does not re-quote at
//!   every step).
//! - [`plan_side`] turns the quotes a maker has and the ones it wants into cancels, price
//!   amends and places, each tagged [`Phase::Away`] (moves away from the other side) or
//!   [`Phase::Toward`]. Applying every `Away` operation of every maker of a symbol before
//!   any `Toward` one never crosses a maker's own quotes (nor another maker's, since all
//!   share the centre): after the `Away` phase every bid is at or below its target and
//!   every ask at or above its target, and targets do not cross.

use qt_core::{OrderId, Price, Qty, Side};

/// A quote the maker believes is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Quote {
    pub id: OrderId,
    pub price: Price,
    /// Quantity placed.
    pub qty: Qty,
    /// Quantity still open as last seen (the placed one when the view cannot tell).
    pub left: Qty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Away,
    Toward,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Cancel(OrderId),
    Amend(OrderId, Price),
    Place(Price, Qty),
}

/// Where a maker's ladder goes this step, all in ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ladder {
    /// The price the quotes straddle; `low < center < high`.
    pub center: i64,
    /// Window of allowed limit prices (inclusive), `low >= 1`.
    pub low: i64,
    pub high: i64,
    /// Distance of the innermost quotes from the centre, at least 1.
    pub half_spread: i64,
    /// Grid step between levels, at least 1.
    pub step: i64,
    /// Shift of both sides against inventory, `|skew| < half_spread`.
    pub skew: i64,
    pub bid_levels: usize,
    pub ask_levels: usize,
    /// Best bid and ask the maker has open now, if any.
    pub prev_bid: Option<i64>,
    pub prev_ask: Option<i64>,
}

impl Ladder {
    /// Skew for an inventory `inv` against a limit `limit` (both lots): long inventory
    /// moves both sides down so that the ask is hit sooner and the bid later.
    pub(crate) fn skew_for(half_spread: i64, inv: i64, limit: i64) -> i64 {
        let room = half_spread - 1;
        if room <= 0 || limit <= 0 {
            return 0;
        }
        let s = -(i128::from(inv) * i128::from(room) / i128::from(limit));
        s.clamp(-i128::from(room), i128::from(room)) as i64
    }
}

/// Bid and ask prices of the ladder, best first, distinct.
pub(crate) fn ladder_prices(l: &Ladder) -> (Vec<Price>, Vec<Price>) {
    let mut bids = Vec::with_capacity(l.bid_levels);
    let mut asks = Vec::with_capacity(l.ask_levels);
    let bid_cap = l.center - 1;
    let ask_floor = l.center + 1;
    if l.low <= bid_cap && l.bid_levels > 0 {
        let ideal = (l.center - l.half_spread + l.skew).div_euclid(l.step) * l.step;
        let anchor = match l.prev_bid {
            Some(p) if p.rem_euclid(l.step) == 0 && (p - ideal).abs() <= l.step && (l.low..=bid_cap).contains(&p) => p,
            _ => ideal,
        };
        let anchor = anchor.min(bid_cap);
        for k in 0..l.bid_levels as i64 {
            let p = anchor - k * l.step;
            if p < l.low {
                break;
            }
            bids.push(Price(p));
        }
        if bids.is_empty() {
            // The window cuts the grid: still quote, at the edge, so the side never empties.
            bids.push(Price(l.low));
        }
    }
    if ask_floor <= l.high && l.ask_levels > 0 {
        let x = l.center + l.half_spread + l.skew;
        let ideal = (x + l.step - 1).div_euclid(l.step) * l.step;
        let anchor = match l.prev_ask {
            Some(p)
                if p.rem_euclid(l.step) == 0 && (p - ideal).abs() <= l.step && (ask_floor..=l.high).contains(&p) =>
            {
                p
            }
            _ => ideal,
        };
        let anchor = anchor.max(ask_floor);
        for k in 0..l.ask_levels as i64 {
            let p = anchor + k * l.step;
            if p > l.high {
                break;
            }
            asks.push(Price(p));
        }
        if asks.is_empty() {
            asks.push(Price(l.high));
        }
    }
    (bids, asks)
}

/// Operations that turn `current` quotes of one side into `targets` (distinct prices).
/// Quotes already at a target price stay (they keep their time priority); the others move
/// to the missing prices, the farthest from the centre first; leftovers are cancelled and
/// missing prices without a quote to move get a new order.
pub(crate) fn plan_side(side: Side, current: &[Quote], targets: &[(Price, Qty)]) -> Vec<(Phase, Op)> {
    let mut kept = vec![false; current.len()];
    let mut missing = Vec::new();
    for &(price, qty) in targets {
        match current.iter().enumerate().find(|(i, q)| !kept[*i] && q.price == price) {
            Some((i, _)) => kept[i] = true,
            None => missing.push((price, qty)),
        }
    }
    let mut stale: Vec<&Quote> = current.iter().zip(&kept).filter(|(_, k)| !**k).map(|(q, _)| q).collect();
    // Farthest from the other side first: the back of the ladder moves to the front.
    match side {
        Side::Buy => stale.sort_by_key(|q| (q.price, q.id)),
        Side::Sell => stale.sort_by_key(|q| (std::cmp::Reverse(q.price), q.id)),
    }
    let mut ops = Vec::new();
    let mut stale = stale.into_iter();
    for (price, qty) in missing {
        match stale.next() {
            Some(q) => {
                let away = match side {
                    Side::Buy => price < q.price,
                    Side::Sell => price > q.price,
                };
                ops.push((if away { Phase::Away } else { Phase::Toward }, Op::Amend(q.id, price)));
            }
            None => ops.push((Phase::Toward, Op::Place(price, qty))),
        }
    }
    for q in stale {
        ops.push((Phase::Away, Op::Cancel(q.id)));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ladder(center: i64, half_spread: i64, step: i64, skew: i64, levels: usize, window: i64) -> Ladder {
        Ladder {
            center,
            low: (center - window).max(1),
            high: center + window,
            half_spread,
            step,
            skew,
            bid_levels: levels,
            ask_levels: levels,
            prev_bid: None,
            prev_ask: None,
        }
    }

    #[test]
    fn small_moves_keep_the_ladder_and_large_ones_move_one_level() {
        let a = ladder_prices(&ladder(10_000, 5, 10, 0, 3, 1_000));
        assert_eq!(a.0, vec![Price(9_990), Price(9_980), Price(9_970)]);
        assert_eq!(a.1, vec![Price(10_010), Price(10_020), Price(10_030)]);
        assert_eq!(ladder_prices(&ladder(10_004, 5, 10, 0, 3, 1_000)), a);
        let b = ladder_prices(&ladder(10_006, 5, 10, 0, 3, 1_000));
        assert_eq!(b.0, vec![Price(10_000), Price(9_990), Price(9_980)]);
        assert_eq!(b.1, vec![Price(10_020), Price(10_030), Price(10_040)]);
        let quotes: Vec<Quote> =
            a.0.iter()
                .enumerate()
                .map(|(i, p)| Quote { id: OrderId(i as u64), price: *p, qty: Qty(1), left: Qty(1) })
                .collect();
        let targets: Vec<(Price, Qty)> = b.0.iter().map(|p| (*p, Qty(1))).collect();
        assert_eq!(
            plan_side(Side::Buy, &quotes, &targets),
            vec![(Phase::Toward, Op::Amend(OrderId(2), Price(10_000)))]
        );
    }

    #[test]
    fn a_side_stays_put_until_its_anchor_is_two_steps_away() {
        let at = |center: i64, prev: (i64, i64)| {
            let l = Ladder { prev_bid: Some(prev.0), prev_ask: Some(prev.1), ..ladder(center, 5, 10, 0, 2, 1_000) };
            ladder_prices(&l)
        };
        let a = (vec![Price(9_990), Price(9_980)], vec![Price(10_010), Price(10_020)]);
        // Ideal anchors one step up: kept.
        assert_eq!(at(10_006, (9_990, 10_010)), a);
        // Two steps up: moved.
        assert_eq!(at(10_016, (9_990, 10_010)).0[0], Price(10_010));
        // Never at or through the centre, whatever the previous quote.
        assert_eq!(at(9_985, (9_990, 10_010)).0[0], Price(9_980));
        assert_eq!(at(9_985, (9_990, 10_010)).1[0], Price(9_990));
        // Off-grid previous quotes (a new step size) are not kept.
        assert_eq!(at(10_000, (9_993, 10_007)), a);
    }

    #[test]
    fn skew_leans_against_inventory() {
        assert_eq!(Ladder::skew_for(5, 100, 100), -4);
        assert_eq!(Ladder::skew_for(5, -1_000, 100), 4);
        assert_eq!(Ladder::skew_for(5, 50, 100), -2);
        assert_eq!(Ladder::skew_for(1, 50, 100), 0);
        let long = ladder_prices(&ladder(10_000, 5, 1, -4, 1, 100));
        assert_eq!(long, (vec![Price(9_991)], vec![Price(10_001)]));
    }

    #[test]
    fn narrow_window_still_quotes_both_sides() {
        let (b, a) = ladder_prices(&ladder(100, 50, 40, 0, 5, 2));
        assert_eq!((b, a), (vec![Price(98)], vec![Price(102)]));
    }

    proptest! {
        #[test]
        fn ladders_never_cross_and_stay_in_the_window(
            center in 3i64..10_000_000,
            half_spread in 1i64..5_000,
            step in 1i64..5_000,
            skew_raw in -5_000i64..5_000,
            levels in 1usize..12,
            window in 2i64..1_000_000,
            prev in proptest::option::of((-3i64..3, -3i64..3)),
        ) {
            let skew = skew_raw.clamp(-(half_spread - 1), half_spread - 1);
            let base = ladder(center, half_spread, step, skew, levels, window);
            // Previous best quotes a few steps around the ideal ones.
            let (prev_bid, prev_ask) = match prev {
                Some((b, a)) => (
                    Some((center - half_spread).div_euclid(step) * step + b * step),
                    Some((center + half_spread).div_euclid(step) * step + a * step),
                ),
                None => (None, None),
            };
            let l = Ladder { prev_bid, prev_ask, ..base };
            let (bids, asks) = ladder_prices(&l);
            prop_assert!(!bids.is_empty() && !asks.is_empty());
            prop_assert!(bids.len() <= levels && asks.len() <= levels);
            for w in bids.windows(2) { prop_assert!(w[0] > w[1]); }
            for w in asks.windows(2) { prop_assert!(w[0] < w[1]); }
            prop_assert!(bids.iter().all(|p| p.0 >= l.low && p.0 < center));
            prop_assert!(asks.iter().all(|p| p.0 <= l.high && p.0 > center));
        }

        /// Applying the plans of two makers phase by phase never crosses one maker's own
        /// bids and asks, nor one maker's quotes with the other's.
        #[test]
        fn phased_plans_never_cross(
            c0 in 1_000i64..2_000, c1 in 1_000i64..2_000,
            hs in 1i64..20, step in 1i64..20, levels in 1usize..6,
            inv0 in -50i64..50, inv1 in -50i64..50,
        ) {
            let mut makers: Vec<(Vec<Quote>, Vec<Quote>)> = Vec::new();
            let mut next = 0u64;
            // Place both makers' ladders around c0 (a start from an empty book).
            for (m, inv) in [(0i64, inv0), (1, inv1)] {
                let h = hs + m;
                let l = Ladder { skew: Ladder::skew_for(h, inv, 40), ..ladder(c0, h, step, 0, levels, 500) };
                let (b, a) = ladder_prices(&l);
                let mut mk = |ps: Vec<Price>| ps.into_iter().map(|p| { next += 1; Quote { id: OrderId(next), price: p, qty: Qty(1), left: Qty(1) } }).collect::<Vec<_>>();
                makers.push((mk(b), mk(a)));
            }
            // Re-quote around c1 with the inventories swapped.
            let mut plans = Vec::new();
            for (m, inv) in [(0usize, inv1), (1, inv0)] {
                let h = hs + m as i64;
                let l = Ladder { skew: Ladder::skew_for(h, inv, 40), ..ladder(c1, h, step, 0, levels, 500) };
                let (b, a) = ladder_prices(&l);
                let tb: Vec<(Price, Qty)> = b.iter().map(|p| (*p, Qty(1))).collect();
                let ta: Vec<(Price, Qty)> = a.iter().map(|p| (*p, Qty(1))).collect();
                plans.push((m, Side::Buy, plan_side(Side::Buy, &makers[m].0, &tb)));
                plans.push((m, Side::Sell, plan_side(Side::Sell, &makers[m].1, &ta)));
            }
            for phase in [Phase::Away, Phase::Toward] {
                for (m, side, ops) in &plans {
                    for (ph, op) in ops {
                        if *ph != phase { continue; }
                        let book = if *side == Side::Buy { &mut makers[*m].0 } else { &mut makers[*m].1 };
                        match *op {
                            Op::Cancel(id) => book.retain(|q| q.id != id),
                            Op::Amend(id, p) => { if let Some(q) = book.iter_mut().find(|q| q.id == id) { q.price = p; } }
                            Op::Place(p, qty) => { next += 1; book.push(Quote { id: OrderId(next), price: p, qty, left: qty }); }
                        }
                        let best_bid = makers.iter().flat_map(|mk| mk.0.iter().map(|q| q.price)).max();
                        let best_ask = makers.iter().flat_map(|mk| mk.1.iter().map(|q| q.price)).min();
                        if let (Some(b), Some(a)) = (best_bid, best_ask) {
                            prop_assert!(b < a, "crossed after {:?}: bid {:?} ask {:?}", op, b, a);
                        }
                    }
                }
            }
            // And every maker ends with exactly its target ladder.
            for (m, side, _) in &plans {
                let book = if *side == Side::Buy { &makers[*m].0 } else { &makers[*m].1 };
                let mut prices: Vec<i64> = book.iter().map(|q| q.price.0).collect();
                prices.sort_unstable();
                prices.dedup();
                prop_assert_eq!(prices.len(), book.len());
            }
        }
    }
}
