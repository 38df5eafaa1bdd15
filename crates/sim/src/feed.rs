//! Recorded price feeds: replay a series of prices as a symbol's fair price.
//!
//! Contract:
//! - [`RecordedFeed::parse_csv`] reads `seconds,price` lines (seconds since the start of the
//!   recording, decimal; price a decimal string on the symbol's tick grid). A first line
//!   that is not numeric is a header; blank lines and lines starting with `#` are skipped.
//!   Any other malformed line is an error naming its line number: nothing is rounded.
//! - Offsets must not decrease. The feed starts at the simulator's first step and loops,
//!   so a short recording drives a market for as long as it runs.
//! - The caller reads the file; this module never does I/O.

use qt_core::money::parse_scaled;
use qt_core::{Price, SymbolSpec};
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FeedError {
    #[error("line {line}: expected `seconds,price`")]
    Shape { line: usize },
    #[error("line {line}: bad time offset: {reason}")]
    Time { line: usize, reason: String },
    #[error("line {line}: bad price: {reason}")]
    Price { line: usize, reason: String },
    #[error("line {line}: time offset goes backwards")]
    Backwards { line: usize },
    #[error("the feed has no prices")]
    Empty,
}

/// A recorded series of `(offset ns, price)` points, the first at offset 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFeed {
    points: Vec<(i64, Price)>,
    /// Length of one loop: the last offset plus the last gap (one second for a single
    /// point), so the last price lasts as long as the one before it.
    period_ns: i64,
}

const NANOS: u32 = 9;

impl RecordedFeed {
    /// A feed from points given in memory; offsets are made relative to the first one.
    pub fn from_points(points: Vec<(i64, Price)>) -> Result<RecordedFeed, FeedError> {
        let Some(&(first, _)) = points.first() else { return Err(FeedError::Empty) };
        let mut out = Vec::with_capacity(points.len());
        for (i, &(t, p)) in points.iter().enumerate() {
            if !p.is_positive() {
                return Err(FeedError::Price { line: i + 1, reason: "must be positive".into() });
            }
            let rel = t.checked_sub(first).ok_or(FeedError::Time { line: i + 1, reason: "out of range".into() })?;
            if out.last().is_some_and(|&(prev, _)| rel < prev) || rel < 0 {
                return Err(FeedError::Backwards { line: i + 1 });
            }
            out.push((rel, p));
        }
        let last = out[out.len() - 1].0;
        let gap = if out.len() >= 2 { last - out[out.len() - 2].0 } else { 0 };
        let period_ns = last.saturating_add(if gap > 0 { gap } else { 1_000_000_000 });
        Ok(RecordedFeed { points: out, period_ns })
    }

    /// Parses `seconds,price` CSV text against the symbol's grid.
    pub fn parse_csv(text: &str, spec: &SymbolSpec) -> Result<RecordedFeed, FeedError> {
        let mut points = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let mut cols = l.split(',').map(str::trim);
            let (Some(t), Some(p), None) = (cols.next(), cols.next(), cols.next()) else {
                return Err(FeedError::Shape { line });
            };
            if points.is_empty() && t.chars().any(|c| c.is_ascii_alphabetic()) {
                continue; // header
            }
            let ns = parse_scaled(t, NANOS).map_err(|e| FeedError::Time { line, reason: e.to_string() })?;
            let ns = i64::try_from(ns).map_err(|_| FeedError::Time { line, reason: "out of range".into() })?;
            if ns < 0 {
                return Err(FeedError::Time { line, reason: "negative".into() });
            }
            let price = spec.parse_price(p).map_err(|e| FeedError::Price { line, reason: e.to_string() })?;
            if points.last().is_some_and(|&(prev, _)| ns < prev) {
                return Err(FeedError::Backwards { line });
            }
            points.push((ns, price));
        }
        RecordedFeed::from_points(points)
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// The recorded price in force `elapsed_ns` after the start, looping.
    pub fn price_at(&self, elapsed_ns: i64) -> Price {
        let t = elapsed_ns.max(0) % self.period_ns.max(1);
        let i = self.points.partition_point(|&(offset, _)| offset <= t);
        self.points[i.saturating_sub(1)].1
    }

    /// Lowest and highest recorded price.
    pub fn bounds(&self) -> (Price, Price) {
        let low = self.points.iter().map(|p| p.1).min().unwrap_or(Price(1));
        let high = self.points.iter().map(|p| p.1).max().unwrap_or(Price(1));
        (low, high)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qt_testkit::fixtures::btc_usd;

    #[test]
    fn parses_and_replays_with_loop() {
        let csv = "seconds,price\n# a comment\n0,30000.00\n1.5,30001.25\n\n3,29999.99\n";
        let feed = RecordedFeed::parse_csv(csv, &btc_usd()).unwrap();
        assert_eq!(feed.len(), 3);
        assert_eq!(feed.price_at(0), Price(3_000_000));
        assert_eq!(feed.price_at(1_499_999_999), Price(3_000_000));
        assert_eq!(feed.price_at(1_500_000_000), Price(3_000_125));
        assert_eq!(feed.price_at(4_000_000_000), Price(2_999_999));
        // period = 3 s + last gap 1.5 s
        assert_eq!(feed.price_at(4_500_000_000), Price(3_000_000));
        assert_eq!(feed.bounds(), (Price(2_999_999), Price(3_000_125)));
    }

    #[test]
    fn reports_the_bad_line() {
        let spec = btc_usd();
        assert_eq!(
            RecordedFeed::parse_csv("0,1.001", &spec),
            Err(FeedError::Price { line: 1, reason: "not a multiple of the tick size 0.01".into() })
        );
        assert_eq!(RecordedFeed::parse_csv("t,p\n2,1\n1,1", &spec), Err(FeedError::Backwards { line: 3 }));
        assert_eq!(RecordedFeed::parse_csv("0,1,2", &spec), Err(FeedError::Shape { line: 1 }));
        assert!(matches!(RecordedFeed::parse_csv("0,1\nx,1", &spec), Err(FeedError::Time { line: 2, .. })));
        assert_eq!(RecordedFeed::parse_csv("time,price\n", &spec), Err(FeedError::Empty));
        assert!(matches!(RecordedFeed::parse_csv("0,-5", &spec), Err(FeedError::Price { line: 1, .. })));
    }

    #[test]
    fn offsets_are_relative_to_the_first_point() {
        let feed = RecordedFeed::from_points(vec![(100, Price(5)), (200, Price(6))]).unwrap();
        assert_eq!(feed.price_at(0), Price(5));
        assert_eq!(feed.price_at(100), Price(6));
        assert_eq!(feed.price_at(200), Price(5));
    }
}
