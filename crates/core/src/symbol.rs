//! Assets and symbol specifications: the grids every price and quantity must sit on.
//!
//! Contract:
//! - An [`Asset`] has a code and a scale (decimal places of its minor unit).
//! - A [`SymbolSpec`] names a base and a quote asset and declares, in those assets' minor
//!   units, the tick (quote units per 1 base unit, per tick) and the lot (base units per
//!   lot). [`SymbolSpec::validate`] checks that `tick × lot` is a whole number of quote
//!   minor units per base unit, so every notional `price × quantity` is an exact integer.
//! - Parsing prices and quantities against the grid rejects off-grid values with a reason.

use crate::money::{decimals_of, format_scaled, parse_scaled, Amount, DecimalError, Overflow, Price, Qty};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Index of an asset in the engine's asset table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AssetId(pub u16);

/// Index of a symbol in the engine's symbol table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SymbolId(pub u16);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    pub id: AssetId,
    pub code: String,
    /// Decimal places of the minor unit: 8 means one unit is 10^-8 of the asset.
    pub scale: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolSpec {
    pub id: SymbolId,
    pub name: String,
    pub base: AssetId,
    pub quote: AssetId,
    pub base_scale: u32,
    pub quote_scale: u32,
    /// Quote minor units per whole base unit represented by one tick.
    pub tick: i64,
    /// Base minor units per lot.
    pub lot: i64,
    pub min_qty: Qty,
    pub max_qty: Qty,
    /// Minimum notional in quote minor units.
    pub min_notional: Amount,
    /// Allowed distance of a limit price from the last trade price, in basis points.
    pub price_band_bps: i64,
    /// Protection for market orders: they execute no further than this from the reference.
    pub market_collar_bps: i64,
    /// Maker fee in basis points; negative is a rebate.
    pub maker_fee_bps: i64,
    /// Taker fee in basis points; must cover the maker rebate.
    pub taker_fee_bps: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SpecError {
    #[error("{0} must be positive")]
    NotPositive(&'static str),
    #[error("tick × lot is not a whole number of quote minor units")]
    InexactNotional,
    #[error("min_qty must not exceed max_qty")]
    QtyRange,
    #[error("taker fee must cover the maker rebate and fees must lie within ±10000 bps")]
    Fees,
    #[error("scale must be at most 18")]
    Scale,
}

/// Why a price or quantity string does not fit a symbol's grid.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum GridError {
    #[error("{0}")]
    Decimal(#[from] DecimalError),
    #[error("not a multiple of the tick size {0}")]
    OffTick(String),
    #[error("not a multiple of the lot size {0}")]
    OffLot(String),
    #[error("must be positive")]
    NotPositive,
}

impl SymbolSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.tick <= 0 {
            return Err(SpecError::NotPositive("tick"));
        }
        if self.lot <= 0 {
            return Err(SpecError::NotPositive("lot"));
        }
        if self.min_qty.0 <= 0 {
            return Err(SpecError::NotPositive("min_qty"));
        }
        if self.min_qty > self.max_qty {
            return Err(SpecError::QtyRange);
        }
        if self.price_band_bps <= 0 || self.market_collar_bps <= 0 {
            return Err(SpecError::NotPositive("price band"));
        }
        if self.base_scale > 18 || self.quote_scale > 18 {
            return Err(SpecError::Scale);
        }
        if self.taker_fee_bps < 0
            || self.taker_fee_bps > 10_000
            || self.maker_fee_bps.abs() > 10_000
            || self.taker_fee_bps + self.maker_fee_bps.min(0) < 0
        {
            return Err(SpecError::Fees);
        }
        let product = i128::from(self.tick) * i128::from(self.lot);
        if product % 10i128.pow(self.base_scale) != 0 || product / 10i128.pow(self.base_scale) == 0 {
            return Err(SpecError::InexactNotional);
        }
        Ok(())
    }

    /// Quote minor units per (tick × lot): the factor that makes notionals integers.
    #[inline]
    pub fn quote_per_tick_lot(&self) -> i128 {
        i128::from(self.tick) * i128::from(self.lot) / 10i128.pow(self.base_scale)
    }

    /// Exact notional of `qty` at `price` in quote minor units.
    #[inline]
    pub fn notional(&self, price: Price, qty: Qty) -> i128 {
        i128::from(price.0) * i128::from(qty.0) * self.quote_per_tick_lot()
    }

    #[inline]
    pub fn notional_amount(&self, price: Price, qty: Qty) -> Result<Amount, Overflow> {
        crate::money::amount_from_i128(self.notional(price, qty))
    }

    /// Base minor units in `qty` lots.
    #[inline]
    pub fn base_amount(&self, qty: Qty) -> Result<Amount, Overflow> {
        crate::money::amount_from_i128(i128::from(qty.0) * i128::from(self.lot))
    }

    pub fn parse_price(&self, s: &str) -> Result<Price, GridError> {
        let units = parse_scaled(s, self.quote_scale)?;
        if units <= 0 {
            return Err(GridError::NotPositive);
        }
        if units % i128::from(self.tick) != 0 {
            return Err(GridError::OffTick(self.tick_size()));
        }
        i64::try_from(units / i128::from(self.tick))
            .map(Price)
            .map_err(|_| GridError::Decimal(DecimalError::OutOfRange))
    }

    pub fn parse_qty(&self, s: &str) -> Result<Qty, GridError> {
        let units = parse_scaled(s, self.base_scale)?;
        if units <= 0 {
            return Err(GridError::NotPositive);
        }
        if units % i128::from(self.lot) != 0 {
            return Err(GridError::OffLot(self.lot_size()));
        }
        i64::try_from(units / i128::from(self.lot)).map(Qty).map_err(|_| GridError::Decimal(DecimalError::OutOfRange))
    }

    pub fn price_decimals(&self) -> u32 {
        decimals_of(i128::from(self.tick), self.quote_scale)
    }

    pub fn qty_decimals(&self) -> u32 {
        decimals_of(i128::from(self.lot), self.base_scale)
    }

    /// The price as a decimal string with the tick's number of decimals (`"30000.00"`).
    pub fn format_price(&self, p: Price) -> String {
        format_scaled(i128::from(p.0) * i128::from(self.tick), self.quote_scale, self.price_decimals())
    }

    /// The quantity as a decimal string, without trailing zeros (`"0.5"`).
    pub fn format_qty(&self, q: Qty) -> String {
        format_scaled(i128::from(q.0) * i128::from(self.lot), self.base_scale, 0)
    }

    pub fn tick_size(&self) -> String {
        format_scaled(i128::from(self.tick), self.quote_scale, 0)
    }

    pub fn lot_size(&self) -> String {
        format_scaled(i128::from(self.lot), self.base_scale, 0)
    }

    /// Whether `price` lies within the band around `reference` (inclusive).
    pub fn within_band(&self, price: Price, reference: Price) -> bool {
        let diff = (i128::from(price.0) - i128::from(reference.0)).abs();
        diff * 10_000 <= i128::from(reference.0) * i128::from(self.price_band_bps)
    }

    /// The furthest price a market order may reach from `reference`, on the grid.
    pub fn collar_price(&self, reference: Price, buy: bool) -> Price {
        let delta = i128::from(reference.0) * i128::from(self.market_collar_bps) / 10_000;
        let p = if buy { i128::from(reference.0) + delta } else { (i128::from(reference.0) - delta).max(1) };
        Price(i64::try_from(p).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// BTC-USD with 8-decimal assets, tick 0.01, lot 0.0001.
    pub fn btc_usd() -> SymbolSpec {
        SymbolSpec {
            id: SymbolId(0),
            name: "BTC-USD".into(),
            base: AssetId(1),
            quote: AssetId(0),
            base_scale: 8,
            quote_scale: 8,
            tick: 1_000_000,
            lot: 10_000,
            min_qty: Qty(1),
            max_qty: Qty(1_000_000),
            min_notional: Amount(100_000_000),
            price_band_bps: 1_000,
            market_collar_bps: 500,
            maker_fee_bps: -1,
            taker_fee_bps: 5,
        }
    }

    #[test]
    fn grid_parsing_rejects_off_grid_values() {
        let s = btc_usd();
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.parse_price("30000.25"), Ok(Price(3_000_025)));
        assert_eq!(s.parse_price("30000.255"), Err(GridError::OffTick("0.01".into())));
        assert_eq!(s.parse_price("0"), Err(GridError::NotPositive));
        assert_eq!(s.parse_qty("0.5"), Ok(Qty(5_000)));
        assert_eq!(s.parse_qty("0.00005"), Err(GridError::OffLot("0.0001".into())));
        assert_eq!(s.parse_qty("-1"), Err(GridError::NotPositive));
        assert!(matches!(s.parse_qty("abc"), Err(GridError::Decimal(DecimalError::Malformed))));
    }

    #[test]
    fn notional_is_exact() {
        let s = btc_usd();
        // 0.5 BTC at 30000.00 = 15000 USD = 15000e8 minor units
        assert_eq!(s.notional(Price(3_000_000), Qty(5_000)), 1_500_000_000_000);
        assert_eq!(s.format_price(Price(3_000_000)), "30000.00");
        assert_eq!(s.format_qty(Qty(5_000)), "0.5");
    }

    #[test]
    fn spec_validation() {
        let mut s = btc_usd();
        s.lot = 3;
        assert_eq!(s.validate(), Err(SpecError::InexactNotional));
        let mut s = btc_usd();
        s.maker_fee_bps = -10;
        assert_eq!(s.validate(), Err(SpecError::Fees));
    }

    #[test]
    fn band_and_collar() {
        let s = btc_usd();
        assert!(s.within_band(Price(110), Price(100)));
        assert!(!s.within_band(Price(111), Price(100)));
        assert_eq!(s.collar_price(Price(1000), true), Price(1050));
        assert_eq!(s.collar_price(Price(1000), false), Price(950));
    }
}
