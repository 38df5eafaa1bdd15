//! Pre-trade risk: per-user limits, positions with realised/unrealised PnL, the daily loss
//! window, the order-rate (velocity) window and kill switches.
//!
//! Contract:
//! - Everything is a pure function of the state and the command's timestamp; the UTC day
//!   boundary and the rolling second come from command time, never from a clock.
//! - [`RiskLimits`] hold one user's limits; `None` means "no limit".
//! - [`Position`] tracks a signed quantity (lots) and its cost basis in quote minor units;
//!   realised PnL is booked when a fill reduces the position.
//! - [`VelocityWindow`] answers "would one more order exceed N orders in the last second".

use crate::money::{Amount, Price, Qty};
use crate::order::Side;
use crate::symbol::SymbolId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SECOND;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskLimits {
    /// Largest quantity of one order, per symbol.
    pub max_order_qty: BTreeMap<SymbolId, Qty>,
    /// Largest notional of one order in the symbol's quote minor units.
    pub max_order_notional: Option<Amount>,
    /// Largest absolute position, per symbol, counting open orders as if filled.
    pub max_position: BTreeMap<SymbolId, Qty>,
    /// Largest loss of one UTC day (realised today plus unrealised), quote minor units.
    pub daily_loss_limit: Option<Amount>,
    /// Largest share of equity one symbol's position may be, in basis points.
    pub max_concentration_bps: Option<u32>,
    /// Most orders (places and amends) in any rolling second.
    pub max_orders_per_second: Option<u32>,
    pub kill_switch: bool,
}

/// A user's net position in one symbol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Signed lots: positive long, negative short.
    pub qty: i64,
    /// Cost of the open quantity in quote minor units, same sign as `qty`.
    pub cost: i128,
    /// Realised PnL since the account opened, quote minor units.
    pub realized: i128,
}

impl Position {
    /// Books a fill of `qty` at a notional of `notional` quote units on `side`; returns the
    /// PnL realised by it.
    pub fn apply_fill(&mut self, side: Side, qty: Qty, notional: i128) -> i128 {
        let signed_qty = match side {
            Side::Buy => qty.0,
            Side::Sell => -qty.0,
        };
        let signed_notional = match side {
            Side::Buy => notional,
            Side::Sell => -notional,
        };
        let mut realized = 0;
        if self.qty == 0 || self.qty.signum() == signed_qty.signum() {
            self.qty += signed_qty;
            self.cost += signed_notional;
        } else {
            let closing = signed_qty.abs().min(self.qty.abs());
            // cost of the closed part, proportional to the open cost basis
            let closed_cost = self.cost * i128::from(closing) / i128::from(self.qty.abs());
            let closed_value = notional * i128::from(closing) / i128::from(qty.0);
            realized = if self.qty > 0 { closed_value - closed_cost } else { closed_cost.abs() - closed_value };
            self.cost -= closed_cost;
            self.qty += signed_qty;
            let opening = signed_qty.abs() - closing;
            if self.qty == 0 {
                self.cost = 0;
            } else if opening > 0 {
                // flipped: the new open part costs its share of this fill
                let open_value = notional * i128::from(opening) / i128::from(qty.0);
                self.cost = if self.qty > 0 { open_value } else { -open_value };
            }
            self.realized += realized;
        }
        realized
    }

    /// Unrealised PnL at a mark price, given the symbol's notional of `qty` at `mark`.
    pub fn unrealized(&self, mark_notional_of_qty: i128) -> i128 {
        // mark_notional_of_qty is the notional of |qty| at the mark price
        if self.qty >= 0 {
            mark_notional_of_qty - self.cost
        } else {
            -self.cost - mark_notional_of_qty
        }
    }

    /// Average entry price in ticks (rounded toward zero), if open.
    pub fn average_entry(&self, quote_per_tick_lot: i128) -> Option<Price> {
        if self.qty == 0 {
            return None;
        }
        let p = self.cost.abs() / (i128::from(self.qty.abs()) * quote_per_tick_lot);
        i64::try_from(p).ok().map(Price)
    }
}

/// Timestamps of a user's recent orders, for the orders-per-second limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VelocityWindow {
    recent: VecDeque<i64>,
}

impl VelocityWindow {
    /// Records an order at `now` unless that would make more than `max` orders within the
    /// last second; returns whether it was allowed.
    pub fn admit(&mut self, now: i64, max: u32) -> bool {
        while let Some(&t) = self.recent.front() {
            if now - t >= NANOS_PER_SECOND {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() >= max as usize {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

/// Realised PnL of the current UTC day, reset when a command arrives on a later day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyPnl {
    pub day: i64,
    pub realized: i128,
}

impl DailyPnl {
    pub fn roll(&mut self, now: i64) {
        let day = now.div_euclid(NANOS_PER_DAY);
        if day != self.day {
            self.day = day;
            self.realized = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_realises_pnl_on_reduction_and_flip() {
        let mut p = Position::default();
        assert_eq!(p.apply_fill(Side::Buy, Qty(10), 1_000), 0);
        assert_eq!(p.apply_fill(Side::Buy, Qty(10), 1_200), 0);
        assert_eq!((p.qty, p.cost), (20, 2_200));
        // sell 5 at 130/lot: cost of 5 = 550, value 650
        assert_eq!(p.apply_fill(Side::Sell, Qty(5), 650), 100);
        assert_eq!((p.qty, p.cost), (15, 1_650));
        // sell 20 at 100/lot: closes 15 (value 1500, cost 1650 → -150), opens 5 short at 500
        assert_eq!(p.apply_fill(Side::Sell, Qty(20), 2_000), -150);
        assert_eq!((p.qty, p.cost, p.realized), (-5, -500, -50));
        // short 5 at cost 500, mark value 400 → +100 unrealised
        assert_eq!(p.unrealized(400), 100);
        assert_eq!(p.apply_fill(Side::Buy, Qty(5), 400), 100);
        assert_eq!((p.qty, p.cost), (0, 0));
    }

    #[test]
    fn velocity_window_is_rolling() {
        let mut w = VelocityWindow::default();
        assert!(w.admit(0, 2));
        assert!(w.admit(100, 2));
        assert!(!w.admit(NANOS_PER_SECOND - 1, 2));
        assert!(w.admit(NANOS_PER_SECOND, 2));
        assert!(!w.admit(NANOS_PER_SECOND + 50, 2));
        assert!(w.admit(NANOS_PER_SECOND + 100, 2));
    }

    #[test]
    fn daily_pnl_resets_at_utc_midnight() {
        let mut d = DailyPnl::default();
        d.roll(10);
        d.realized = -5;
        d.roll(NANOS_PER_DAY - 1);
        assert_eq!(d.realized, -5);
        d.roll(NANOS_PER_DAY);
        assert_eq!(d.realized, 0);
    }
}
