//! Simulator settings: what the whole market does ([`SimConfig`]) and what one symbol does
//! ([`SimSymbol`]), with defaults that make a lively demo market, and their validation.
//!
//! Contract: [`SimConfig::validate`] and [`SimSymbol::validate`] report the first setting
//! that cannot work with a reason naming it; a configuration that passes produces only
//! orders the engine accepts (given the driver contract in the crate docs).

use crate::feed::RecordedFeed;
use qt_core::{Price, Qty, SymbolSpec};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a simulator could not be built.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SimError {
    #[error("the simulator needs at least one symbol")]
    NoSymbols,
    #[error("symbol {0} is listed twice (same id or name)")]
    DuplicateSymbol(String),
    #[error("symbol {symbol}: {reason}")]
    InvalidSymbol { symbol: String, reason: String },
    #[error("simulator setting {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    #[error("simulator {what} overflows 64-bit minor units; lower the sizes or the funding horizon")]
    Overflow { what: String },
}

/// Market-wide settings. Rates are per symbol; every market maker and every noise trader
/// trades every symbol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// Seed of every random choice; the same seed and inputs give the same actions.
    pub seed: u64,
    /// Market-making users; each quotes every symbol.
    pub market_makers: u16,
    /// Noise-trading users; each trades every symbol.
    pub noise_traders: u16,
    /// Quote levels per side per market maker.
    pub levels: u16,
    /// Expected IOC/market orders per minute per symbol, over all noise traders.
    pub taker_orders_per_minute: u32,
    /// Expected resting limit orders per minute per symbol, over all noise traders.
    pub resting_orders_per_minute: u32,
    /// A noise trader's resting order is cancelled after a lifetime drawn from this range.
    pub resting_lifetime_min_s: u32,
    pub resting_lifetime_max_s: u32,
    /// Most resting orders one noise trader keeps on one symbol.
    pub max_resting_per_trader: u16,
    /// Chance per step, in parts per thousand, that a maker replaces one quote with a fresh
    /// size (cancel + place), so that level sizes change as on a real venue.
    pub refresh_per_mille: u32,
    /// A maker's inventory at which it stops adding to it, in multiples of the symbol's
    /// order size; quotes skew against inventory well before.
    pub maker_inventory_limit: u32,
    /// A noise trader's inventory at which it only reduces it, in order sizes.
    pub noise_inventory_limit: u32,
    /// Hours of continuous trading the deposits must last (the noise traders pay the
    /// spread and fees, so their quote balance shrinks slowly).
    pub funding_horizon_hours: u32,
    /// Longest gap between two steps the price process honours; a longer pause (the host
    /// slept) moves the price as if only this much time passed, so it cannot jump out of
    /// the band.
    pub max_step_gap_ms: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            market_makers: 2,
            noise_traders: 4,
            levels: 5,
            taker_orders_per_minute: 24,
            resting_orders_per_minute: 8,
            resting_lifetime_min_s: 5,
            resting_lifetime_max_s: 60,
            max_resting_per_trader: 3,
            refresh_per_mille: 5,
            maker_inventory_limit: 40,
            noise_inventory_limit: 20,
            funding_horizon_hours: 24 * 7,
            max_step_gap_ms: 5_000,
        }
    }
}

impl SimConfig {
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |field, reason: &str| Err(SimError::InvalidConfig { field, reason: reason.to_string() });
        if self.market_makers == 0 {
            return bad("market_makers", "at least one market maker keeps the book two-sided");
        }
        if self.levels == 0 || self.levels > 50 {
            return bad("levels", "must be between 1 and 50");
        }
        if self.taker_orders_per_minute > 6_000 || self.resting_orders_per_minute > 6_000 {
            return bad("orders_per_minute", "at most 6000 per minute per symbol");
        }
        if self.resting_lifetime_min_s == 0 || self.resting_lifetime_min_s > self.resting_lifetime_max_s {
            return bad("resting_lifetime_s", "min must be positive and not above max");
        }
        if self.refresh_per_mille > 1_000 {
            return bad("refresh_per_mille", "is a chance out of 1000");
        }
        if self.maker_inventory_limit == 0 || self.noise_inventory_limit == 0 {
            return bad("inventory_limit", "must be positive");
        }
        if self.funding_horizon_hours == 0 {
            return bad("funding_horizon_hours", "must be positive");
        }
        if self.max_step_gap_ms == 0 {
            return bad("max_step_gap_ms", "must be positive");
        }
        Ok(())
    }
}

/// One simulated symbol: its engine spec, where its price starts and how it moves, and the
/// size of a typical order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimSymbol {
    pub spec: SymbolSpec,
    /// Start (and long-run mean) of the fair price, in ticks.
    pub initial_price: Price,
    /// Standard deviation of the log price over one hour, in basis points.
    pub volatility_bps_per_hour: u32,
    /// Half-life of a deviation from `initial_price`; 0 turns mean reversion off (plain
    /// GBM, still kept within `max_deviation_bps`).
    pub mean_reversion_half_life_s: u32,
    /// Expected price jumps per hour (Poisson).
    pub jumps_per_hour: f64,
    /// Standard deviation of one jump of the log price, in basis points.
    pub jump_bps: u32,
    /// The fair price never leaves `initial_price ± max_deviation_bps`, which bounds what
    /// the users need to be funded with.
    pub max_deviation_bps: u32,
    /// Full spread of a maker's innermost quotes around the fair price, in basis points
    /// (at least one tick each side).
    pub spread_bps: u32,
    /// Distance between a maker's levels, in basis points (at least one tick).
    pub level_step_bps: u32,
    /// A typical order, in lots; makers quote 0.7× to 1.3× of it growing with depth, noise
    /// traders send 1× to 3× of it.
    pub order_size: Qty,
    /// Replay this recorded feed as the fair price instead of the random process.
    pub feed: Option<RecordedFeed>,
}

impl SimSymbol {
    /// A symbol with default dynamics: 1.5 % hourly volatility, two-hour half-life of
    /// deviations, a couple of jumps an hour, a 10 bp spread with levels 5 bp apart, and an
    /// order size of at least 100 lots and 5× the minimum notional.
    pub fn new(spec: SymbolSpec, initial_price: Price) -> SimSymbol {
        let max_deviation_bps = 2_000;
        let low = scale_bps(initial_price.0, -(max_deviation_bps as i64)).max(1) / 2;
        let for_notional = min_lots_at(&spec, Price(low.max(1))).0.saturating_mul(5);
        let cap = (spec.max_qty.0 / 20).max(spec.min_qty.0);
        let order_size = Qty(for_notional.max(100).max(spec.min_qty.0).min(cap));
        SimSymbol {
            spec,
            initial_price,
            volatility_bps_per_hour: 150,
            mean_reversion_half_life_s: 7_200,
            jumps_per_hour: 2.0,
            jump_bps: 30,
            max_deviation_bps,
            spread_bps: 10,
            level_step_bps: 5,
            order_size,
            feed: None,
        }
    }

    /// A symbol whose fair price replays `feed`, starting at its first price, with the
    /// default sizes for that price.
    pub fn from_feed(spec: SymbolSpec, feed: RecordedFeed) -> SimSymbol {
        let first = feed.price_at(0);
        SimSymbol { feed: Some(feed), ..SimSymbol::new(spec, first) }
    }

    /// The lowest and highest fair price this symbol can have, in ticks.
    pub fn price_bounds(&self) -> (Price, Price) {
        match &self.feed {
            Some(feed) => feed.bounds(),
            None => {
                let d = i64::from(self.max_deviation_bps);
                (Price(scale_bps(self.initial_price.0, -d).max(1)), Price(scale_bps(self.initial_price.0, d).max(1)))
            }
        }
    }

    pub fn validate(&self) -> Result<(), SimError> {
        let name = &self.spec.name;
        let bad = |reason: String| Err(SimError::InvalidSymbol { symbol: name.clone(), reason });
        if let Err(e) = self.spec.validate() {
            return bad(format!("invalid spec: {e}"));
        }
        if !self.initial_price.is_positive() {
            return bad("initial_price must be positive".into());
        }
        if self.max_deviation_bps == 0 || self.max_deviation_bps >= 9_000 {
            return bad("max_deviation_bps must be between 1 and 8999".into());
        }
        if self.volatility_bps_per_hour > 5_000 || self.jump_bps > 2_000 {
            return bad("volatility_bps_per_hour at most 5000 and jump_bps at most 2000".into());
        }
        if !(self.jumps_per_hour.is_finite() && (0.0..=3_600.0).contains(&self.jumps_per_hour)) {
            return bad("jumps_per_hour must be between 0 and 3600".into());
        }
        if self.spread_bps > 2_000 || self.level_step_bps > 2_000 {
            return bad("spread_bps and level_step_bps at most 2000".into());
        }
        if let Some(feed) = &self.feed {
            if feed.is_empty() {
                return bad("the recorded feed has no prices".into());
            }
        }
        let (low, _) = self.price_bounds();
        // The makers quote within half the band (or collar) of the last price, which is at
        // least two ticks wide at the lowest price or there is no room for a bid and an ask
        // around the fair price.
        if window_ticks(&self.spec, low) < 2 {
            return bad(format!(
                "price band too narrow for the tick size at {} ticks: raise the price or the band",
                low.0
            ));
        }
        if self.order_size < self.spec.min_qty || self.order_size > self.spec.max_qty {
            return bad("order_size must lie within the symbol's min and max quantity".into());
        }
        let floor = Price((low.0 / 2).max(1));
        if min_lots_at(&self.spec, floor) > self.spec.max_qty {
            return bad("the minimum notional needs more than max_qty at the lowest price".into());
        }
        Ok(())
    }
}

/// `value × (10000 + bps) / 10000`, rounded toward zero, saturating.
pub(crate) fn scale_bps(value: i64, bps: i64) -> i64 {
    let v = i128::from(value) * i128::from(10_000 + bps) / 10_000;
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Half-width in ticks of the window around the last price the simulator places limit
/// prices in: half of the tighter of band and collar, so a quote stays in the band even
/// after trades moved the last price within the same step, and market orders reach it.
pub(crate) fn window_ticks(spec: &SymbolSpec, last: Price) -> i64 {
    let bps = spec.price_band_bps.min(spec.market_collar_bps).max(0);
    let w = i128::from(last.0) * i128::from(bps) / 20_000;
    i64::try_from(w).unwrap_or(i64::MAX)
}

/// Fewest lots whose notional at `price` reaches the symbol's minimum notional, and at
/// least `min_qty`.
pub(crate) fn min_lots_at(spec: &SymbolSpec, price: Price) -> Qty {
    let per_lot = i128::from(price.0.max(1)) * spec.quote_per_tick_lot();
    let need = i128::from(spec.min_notional.0.max(0));
    let lots = if per_lot <= 0 { i128::from(i64::MAX) } else { (need + per_lot - 1) / per_lot };
    Qty(i64::try_from(lots).unwrap_or(i64::MAX).max(spec.min_qty.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use qt_testkit::fixtures::btc_usd;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(SimConfig::default().validate(), Ok(()));
        let s = SimSymbol::new(btc_usd(), Price(3_000_000));
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.order_size, Qty(100));
        assert_eq!(s.price_bounds(), (Price(2_400_000), Price(3_600_000)));
    }

    #[test]
    fn min_lots_reach_min_notional() {
        let spec = btc_usd();
        // 1 USD minimum at 0.01 USD per BTC: 0.0001 BTC lots cost 1e-6 USD each.
        assert_eq!(min_lots_at(&spec, Price(1)), Qty(1_000_000));
        assert_eq!(min_lots_at(&spec, Price(3_000_000)), Qty(1));
        for p in [1, 7, 999, 123_456] {
            let q = min_lots_at(&spec, Price(p));
            assert!(spec.notional(Price(p), q) >= i128::from(spec.min_notional.0));
            if q.0 > spec.min_qty.0 {
                assert!(spec.notional(Price(p), Qty(q.0 - 1)) < i128::from(spec.min_notional.0));
            }
        }
    }

    #[test]
    fn rejects_unworkable_settings() {
        let mut c = SimConfig { market_makers: 0, ..SimConfig::default() };
        assert!(matches!(c.validate(), Err(SimError::InvalidConfig { field: "market_makers", .. })));
        c = SimConfig { resting_lifetime_min_s: 9, resting_lifetime_max_s: 3, ..SimConfig::default() };
        assert!(c.validate().is_err());
        let mut s = SimSymbol::new(btc_usd(), Price(3_000_000));
        s.initial_price = Price(10);
        assert!(matches!(s.validate(), Err(SimError::InvalidSymbol { .. })));
        let mut s = SimSymbol::new(btc_usd(), Price(3_000_000));
        s.order_size = Qty(0);
        assert!(s.validate().is_err());
        let mut s = SimSymbol::new(btc_usd(), Price(3_000_000));
        s.jumps_per_hour = f64::NAN;
        assert!(s.validate().is_err());
    }
}
