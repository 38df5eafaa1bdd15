//! Noise traders: takers that buy or sell at random, leaning against their inventory, and
//! now and then rest a limit order inside the spread for a while.
//!
//! Contract:
//! - [`buy_probability`] is 1/2 at zero inventory and falls (rises) linearly to 5 % (95 %)
//!   at the inventory limit; beyond the limit a trader only reduces its inventory, so
//!   inventories stay bounded however long the market runs.
//! - [`resting_price`] never crosses the trader's own resting orders of the other side
//!   (self-trade prevention would cancel the new order), and stays strictly on its side of
//!   the centre.

use qt_core::{OrderId, Price, Qty, Side};

/// A resting limit order of a noise trader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Resting {
    pub id: OrderId,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    pub expires_ns: i64,
}

/// One noise trader's state on one symbol.
#[derive(Clone, Debug, Default)]
pub(crate) struct NoiseBook {
    pub resting: Vec<Resting>,
    /// Inventory estimate in lots, used when the view does not report positions.
    pub estimate: i64,
}

/// Chance in parts per million that the next order of a trader with inventory `inv` is a
/// buy, given its inventory limit.
pub(crate) fn buy_probability(inv: i64, limit: i64) -> u32 {
    if limit <= 0 || inv >= limit {
        return 0;
    }
    if inv <= -limit {
        return 1_000_000;
    }
    let lean = i128::from(inv) * 450_000 / i128::from(limit);
    (500_000 - lean) as u32
}

/// The price of a resting order on `side`, `depth` ticks behind the centre's neighbour,
/// or `None` when no price on that side would stay clear of the trader's own orders.
pub(crate) fn resting_price(
    side: Side,
    center: i64,
    depth: i64,
    low: i64,
    high: i64,
    own: &[Resting],
) -> Option<Price> {
    match side {
        Side::Buy => {
            let limit = own.iter().filter(|r| r.side == Side::Sell).map(|r| r.price.0 - 1).min().unwrap_or(i64::MAX);
            let p = (center - 1 - depth).max(low).min(limit).min(center - 1);
            (p >= low && p >= 1).then_some(Price(p))
        }
        Side::Sell => {
            let floor = own.iter().filter(|r| r.side == Side::Buy).map(|r| r.price.0 + 1).max().unwrap_or(i64::MIN);
            let p = (center + 1 + depth).min(high).max(floor).max(center + 1);
            (p <= high).then_some(Price(p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leans_against_inventory_and_stops_at_the_limit() {
        assert_eq!(buy_probability(0, 100), 500_000);
        assert_eq!(buy_probability(50, 100), 275_000);
        assert_eq!(buy_probability(-99, 100), 945_500);
        assert_eq!(buy_probability(100, 100), 0);
        assert_eq!(buy_probability(-100, 100), 1_000_000);
    }

    #[test]
    fn resting_prices_avoid_own_orders() {
        let own = [Resting { id: OrderId(1), side: Side::Sell, price: Price(995), qty: Qty(1), expires_ns: 0 }];
        assert_eq!(resting_price(Side::Buy, 1_000, 0, 900, 1_100, &own), Some(Price(994)));
        assert_eq!(resting_price(Side::Buy, 1_000, 20, 900, 1_100, &own), Some(Price(979)));
        assert_eq!(resting_price(Side::Sell, 1_000, 3, 900, 1_100, &own), Some(Price(1_004)));
        let own = [Resting { id: OrderId(2), side: Side::Buy, price: Price(1_100), qty: Qty(1), expires_ns: 0 }];
        assert_eq!(resting_price(Side::Sell, 1_000, 3, 900, 1_100, &own), None);
        assert_eq!(resting_price(Side::Buy, 1_000, 500, 900, 1_100, &[]), Some(Price(900)));
    }
}
