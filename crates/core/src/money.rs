//! Fixed-point money: prices in ticks, quantities in lots, amounts in minor units.
//!
//! Contract:
//! - [`Price`] counts ticks of a symbol's quote grid, [`Qty`] counts lots of its base grid,
//!   [`Amount`] counts minor units of an asset (10^-scale of one whole unit).
//! - Every arithmetic operation is checked; overflow is an error value, never a wrap.
//! - [`parse_scaled`] turns a decimal string into an integer at a given scale exactly, or
//!   fails: a value with more decimals than the scale is rejected, never rounded.
//!   [`format_scaled`] is its inverse.
//! - Nothing here is a float.

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// A price in ticks of the symbol's tick size. Always positive for a real order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Price(pub i64);

/// A quantity in lots of the symbol's lot size. Always positive for a real order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Qty(pub i64);

/// An amount of one asset in its minor units. May be negative in signed contexts (PnL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Amount(pub i64);

/// Arithmetic overflowed the 64-bit range of a money type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("arithmetic overflow")]
pub struct Overflow;

macro_rules! checked_ops {
    ($t:ident) => {
        impl $t {
            pub const ZERO: $t = $t(0);
            #[inline]
            pub fn checked_add(self, rhs: $t) -> Result<$t, Overflow> {
                self.0.checked_add(rhs.0).map($t).ok_or(Overflow)
            }
            #[inline]
            pub fn checked_sub(self, rhs: $t) -> Result<$t, Overflow> {
                self.0.checked_sub(rhs.0).map($t).ok_or(Overflow)
            }
            #[inline]
            pub fn is_positive(self) -> bool {
                self.0 > 0
            }
            #[inline]
            pub fn is_zero(self) -> bool {
                self.0 == 0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}
checked_ops!(Price);
checked_ops!(Qty);
checked_ops!(Amount);

impl Qty {
    #[inline]
    pub fn min(self, other: Qty) -> Qty {
        if self.0 <= other.0 {
            self
        } else {
            other
        }
    }
}

impl Amount {
    #[inline]
    pub fn checked_neg(self) -> Result<Amount, Overflow> {
        self.0.checked_neg().map(Amount).ok_or(Overflow)
    }
}

/// Converts an i128 intermediate into an [`Amount`], failing on overflow.
#[inline]
pub fn amount_from_i128(v: i128) -> Result<Amount, Overflow> {
    i64::try_from(v).map(Amount).map_err(|_| Overflow)
}

/// Why a decimal string was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecimalError {
    #[error("not a decimal number")]
    Malformed,
    #[error("more than {0} decimal places")]
    TooPrecise(u32),
    #[error("number out of range")]
    OutOfRange,
    #[error("negative number")]
    Negative,
}

/// Parses a plain decimal string (`"123"`, `"0.5"`, `"-1.25"`) into an integer scaled by
/// `10^scale`. No exponent, no thousands separators, no surrounding spaces. Trailing zeros
/// beyond the scale are accepted (`"1.50"` at scale 1 is 15); any other extra digit is an
/// error, so nothing is ever rounded.
pub fn parse_scaled(s: &str, scale: u32) -> Result<i128, DecimalError> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(DecimalError::Malformed);
    }
    if body.ends_with('.') && frac_part.is_empty() && body.len() == 1 {
        return Err(DecimalError::Malformed);
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::Malformed);
    }
    if int_part.len() > 30 {
        return Err(DecimalError::OutOfRange);
    }
    let frac_trimmed = frac_part.trim_end_matches('0');
    if frac_trimmed.len() > scale as usize {
        return Err(DecimalError::TooPrecise(scale));
    }
    let mut value: i128 = 0;
    for b in int_part.bytes() {
        value =
            value.checked_mul(10).and_then(|v| v.checked_add(i128::from(b - b'0'))).ok_or(DecimalError::OutOfRange)?;
    }
    let mut frac_digits = 0u32;
    for b in frac_trimmed.bytes() {
        value =
            value.checked_mul(10).and_then(|v| v.checked_add(i128::from(b - b'0'))).ok_or(DecimalError::OutOfRange)?;
        frac_digits += 1;
    }
    value = value
        .checked_mul(10i128.checked_pow(scale - frac_digits).ok_or(DecimalError::OutOfRange)?)
        .ok_or(DecimalError::OutOfRange)?;
    Ok(if negative { -value } else { value })
}

/// Formats `value / 10^scale` with exactly `decimals` fractional digits when `decimals`
/// is at least the number of significant fractional digits, else with as many as needed.
pub fn format_scaled(value: i128, scale: u32, decimals: u32) -> String {
    let negative = value < 0;
    let abs = value.unsigned_abs();
    let pow = 10u128.pow(scale);
    let int_part = abs / pow;
    let mut frac = format!("{:0width$}", abs % pow, width = scale as usize);
    let significant = frac.trim_end_matches('0').len();
    let keep = significant.max(decimals.min(scale) as usize);
    frac.truncate(keep);
    let sign = if negative && abs != 0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac}")
    }
}

/// Number of decimal places needed to write `units / 10^scale` (e.g. a tick of 0.01 → 2).
pub fn decimals_of(units: i128, scale: u32) -> u32 {
    let mut d = scale;
    let mut u = units;
    while d > 0 && u % 10 == 0 {
        u /= 10;
        d -= 1;
    }
    d
}

/// `floor(amount * bps / 10_000)` for a non-negative amount: fees always round in the
/// exchange's favour so that reserving `ceil` up front always covers the sum of fills.
#[inline]
pub fn bps_floor(amount: i128, bps: i64) -> i128 {
    (amount * i128::from(bps)).div_euclid(10_000)
}

/// The fee on a non-negative notional at `bps` basis points: a charge (positive bps)
/// rounds down, a rebate (negative bps) rounds toward zero, so neither favours the
/// client by a fraction of a minor unit and the fee account never pays out more than
/// it takes in as long as the taker rate covers the maker rebate.
#[inline]
pub fn fee_amount(notional: i128, bps: i64) -> i128 {
    if bps >= 0 {
        bps_floor(notional, bps)
    } else {
        -bps_floor(notional, -bps)
    }
}

/// `ceil(amount * bps / 10_000)` for a non-negative amount and non-negative bps.
#[inline]
pub fn bps_ceil(amount: i128, bps: i64) -> i128 {
    let n = amount * i128::from(bps);
    n.div_euclid(10_000) + i128::from(n.rem_euclid(10_000) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_values() {
        assert_eq!(parse_scaled("101.25", 2), Ok(10125));
        assert_eq!(parse_scaled("101.250000", 2), Ok(10125));
        assert_eq!(parse_scaled("0.5", 8), Ok(50_000_000));
        assert_eq!(parse_scaled(".5", 1), Ok(5));
        assert_eq!(parse_scaled("7", 0), Ok(7));
        assert_eq!(parse_scaled("-1.5", 1), Ok(-15));
        assert_eq!(parse_scaled("5.", 2), Ok(500));
    }

    #[test]
    fn rejects_instead_of_rounding() {
        assert_eq!(parse_scaled("101.255", 2), Err(DecimalError::TooPrecise(2)));
        assert_eq!(parse_scaled("1e5", 2), Err(DecimalError::Malformed));
        assert_eq!(parse_scaled("", 2), Err(DecimalError::Malformed));
        assert_eq!(parse_scaled(".", 2), Err(DecimalError::Malformed));
        assert_eq!(parse_scaled("-", 2), Err(DecimalError::Malformed));
        assert_eq!(parse_scaled(" 1", 2), Err(DecimalError::Malformed));
        assert_eq!(parse_scaled("1,000", 2), Err(DecimalError::Malformed));
        assert_eq!(parse_scaled("NaN", 2), Err(DecimalError::Malformed));
        assert_eq!(parse_scaled(&"9".repeat(40), 2), Err(DecimalError::OutOfRange));
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format_scaled(10125, 2, 2), "101.25");
        assert_eq!(format_scaled(50_000_000, 8, 0), "0.5");
        assert_eq!(format_scaled(3_000_000_000_000, 8, 2), "30000.00");
        assert_eq!(format_scaled(-15, 1, 0), "-1.5");
        assert_eq!(format_scaled(0, 8, 0), "0");
        assert_eq!(decimals_of(1_000_000, 8), 2);
        assert_eq!(decimals_of(10_000, 8), 4);
    }

    #[test]
    fn fee_rounding_is_in_exchange_favour() {
        assert_eq!(bps_floor(999, 10), 0);
        assert_eq!(bps_ceil(999, 10), 1);
        assert_eq!(bps_floor(10_000, 10), 10);
        assert_eq!(bps_ceil(10_000, 10), 10);
        assert_eq!(fee_amount(10_001, -2), -2);
        assert_eq!(fee_amount(10_001, 2), 2);
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        assert_eq!(Amount(i64::MAX).checked_add(Amount(1)), Err(Overflow));
        assert_eq!(Qty(5).checked_sub(Qty(2)), Ok(Qty(3)));
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_is_identity(v in -1_000_000_000_000i128..1_000_000_000_000, scale in 0u32..10) {
            let s = format_scaled(v, scale, 0);
            proptest::prop_assert_eq!(parse_scaled(&s, scale), Ok(v));
        }
    }
}
