//! What the simulator reads of the market before each step.
//!
//! Contract: a [`MarketView`] answers from the engine state after every action of the
//! previous steps was applied. [`MarketView::open_qty`] and [`MarketView::position`] are
//! optional: without them the
//! simulator estimates inventories from its orders that disappeared (taken as filled in
//! full), which is exact for quotes that are never partially filled and close enough to
//! keep inventories bounded otherwise. `qt_engine::Exchange` implements the whole trait.

use qt_core::{OrderId, Price, Qty, SymbolId, UserId};
use qt_engine::Exchange;

pub trait MarketView {
    fn best_bid(&self, symbol: SymbolId) -> Option<(Price, Qty)>;
    fn best_ask(&self, symbol: SymbolId) -> Option<(Price, Qty)>;
    fn last_price(&self, symbol: SymbolId) -> Option<Price>;
    /// Whether an order the simulator placed is still open (resting or waiting).
    fn is_open(&self, order: OrderId) -> bool;
    /// Quantity still open of an order the simulator placed, when known. With it the
    /// simulator counts partial fills exactly and tops up quotes that were mostly taken;
    /// without it an open order is taken as untouched.
    fn open_qty(&self, _order: OrderId) -> Option<Qty> {
        None
    }
    /// The user's net position in the symbol, in lots (positive long), when known.
    fn position(&self, _user: UserId, _symbol: SymbolId) -> Option<i64> {
        None
    }
}

impl MarketView for Exchange {
    fn best_bid(&self, symbol: SymbolId) -> Option<(Price, Qty)> {
        self.symbol(symbol).and_then(|s| s.book.best_bid())
    }

    fn best_ask(&self, symbol: SymbolId) -> Option<(Price, Qty)> {
        self.symbol(symbol).and_then(|s| s.book.best_ask())
    }

    fn last_price(&self, symbol: SymbolId) -> Option<Price> {
        self.symbol(symbol).and_then(|s| s.last_price)
    }

    fn is_open(&self, order: OrderId) -> bool {
        self.order(order).is_some()
    }

    fn open_qty(&self, order: OrderId) -> Option<Qty> {
        self.order(order).map(|o| Qty(o.qty.0.saturating_sub(o.filled.0)))
    }

    fn position(&self, user: UserId, symbol: SymbolId) -> Option<i64> {
        // Positions are only kept with risk on; without it the estimate is the better answer.
        if !self.config().risk_enabled {
            return None;
        }
        self.user(user).and_then(|u| u.positions.get(symbol.0 as usize)).map(|p| p.qty)
    }
}
