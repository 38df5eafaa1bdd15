//! The fair price of a symbol: a mean-reverting geometric Brownian motion with jumps, or
//! a recorded feed.
//!
//! Contract:
//! - The log deviation `x = ln(S / S0)` follows an Ornstein-Uhlenbeck process (exact
//!   discretisation, so the step length does not change the statistics) plus compound
//!   Poisson jumps with normal sizes; with mean reversion off it is plain GBM without drift.
//! - `x` is kept within the symbol's maximum deviation, so the price stays inside the
//!   bounds the deposits were computed for.
//! - Floats live only here; [`FairPrice::price`] is always a whole, positive number of
//!   ticks within the bounds.
//! - The path depends only on the seed and the step times, never on the market: the
//!   process has its own random stream.

use crate::config::SimSymbol;
use crate::feed::RecordedFeed;
use qt_core::Price;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SECONDS_PER_HOUR: f64 = 3_600.0;

#[derive(Debug)]
pub(crate) struct FairPrice {
    source: Source,
    price: Price,
    low: Price,
    high: Price,
}

#[derive(Debug)]
enum Source {
    // Boxed: the process (with its RNG state) is far larger than the feed handle.
    Process(Box<Process>),
    Feed { feed: RecordedFeed, start_ns: Option<i64> },
}

#[derive(Debug)]
struct Process {
    anchor: f64,
    x: f64,
    x_min: f64,
    x_max: f64,
    /// Mean-reversion speed per second (0: none).
    theta: f64,
    /// Diffusion per square root of a second.
    sigma: f64,
    jumps_per_second: f64,
    jump_sigma: f64,
    rng: ChaCha8Rng,
}

impl FairPrice {
    pub(crate) fn new(sym: &SimSymbol, seed: u64) -> FairPrice {
        let (low, high) = sym.price_bounds();
        match &sym.feed {
            Some(feed) => FairPrice {
                price: feed.price_at(0),
                source: Source::Feed { feed: feed.clone(), start_ns: None },
                low,
                high,
            },
            None => {
                let anchor = sym.initial_price.0 as f64;
                let theta = if sym.mean_reversion_half_life_s == 0 {
                    0.0
                } else {
                    std::f64::consts::LN_2 / f64::from(sym.mean_reversion_half_life_s)
                };
                let process = Process {
                    anchor,
                    x: 0.0,
                    // Bounds in log space from the integer bounds, so snapping can never
                    // leave them.
                    x_min: (low.0 as f64 / anchor).ln(),
                    x_max: (high.0 as f64 / anchor).ln(),
                    theta,
                    sigma: f64::from(sym.volatility_bps_per_hour) / 10_000.0 / SECONDS_PER_HOUR.sqrt(),
                    jumps_per_second: sym.jumps_per_hour / SECONDS_PER_HOUR,
                    jump_sigma: f64::from(sym.jump_bps) / 10_000.0,
                    rng: ChaCha8Rng::seed_from_u64(seed),
                };
                FairPrice {
                    price: sym.initial_price.clamp(low, high),
                    source: Source::Process(Box::new(process)),
                    low,
                    high,
                }
            }
        }
    }

    /// Moves the price forward by `dt_ns` (already capped by the caller) to time `now_ns`.
    pub(crate) fn advance(&mut self, now_ns: i64, dt_ns: i64) -> Price {
        match &mut self.source {
            Source::Feed { feed, start_ns } => {
                let start = *start_ns.get_or_insert(now_ns);
                self.price = feed.price_at(now_ns.saturating_sub(start));
            }
            Source::Process(p) => {
                if dt_ns > 0 {
                    p.step(dt_ns as f64 / 1e9);
                    let raw = (p.anchor * p.x.exp()).round();
                    // `as` saturates for out-of-range floats; the clamp keeps the bounds.
                    self.price = Price(raw as i64).clamp(self.low, self.high);
                }
            }
        }
        self.price
    }

    /// Continues from `price` (the market's last price after a restart) instead of the
    /// initial price; a recorded feed keeps its own course.
    pub(crate) fn start_at(&mut self, price: Price) {
        if let Source::Process(p) = &mut self.source {
            let price = price.clamp(self.low, self.high);
            p.x = (price.0 as f64 / p.anchor).ln().clamp(p.x_min, p.x_max);
            self.price = price;
        }
    }

    pub(crate) fn price(&self) -> Price {
        self.price
    }
}

impl Process {
    fn step(&mut self, dt: f64) {
        // Draw the same numbers every step so the path is a function of the step times.
        let z = standard_normal(&mut self.rng);
        let u: f64 = self.rng.random();
        let zj = standard_normal(&mut self.rng);
        let (decay, var) = if self.theta > 0.0 {
            let decay = (-self.theta * dt).exp();
            (decay, self.sigma * self.sigma * (1.0 - decay * decay) / (2.0 * self.theta))
        } else {
            (1.0, self.sigma * self.sigma * dt)
        };
        let mut x = self.x * decay + var.sqrt() * z;
        if u < 1.0 - (-self.jumps_per_second * dt).exp() {
            x += self.jump_sigma * zj;
        }
        // Reflect at the bounds rather than stick to them, then clamp what a huge jump
        // could still leave outside.
        if x > self.x_max {
            x = 2.0 * self.x_max - x;
        } else if x < self.x_min {
            x = 2.0 * self.x_min - x;
        }
        self.x = x.clamp(self.x_min, self.x_max);
    }
}

/// Box-Muller: one standard normal sample from two uniforms.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use qt_testkit::fixtures::btc_usd;

    fn sym() -> SimSymbol {
        SimSymbol::new(btc_usd(), Price(3_000_000))
    }

    #[test]
    fn same_seed_same_path_and_prices_stay_in_bounds() {
        let s = sym();
        let (low, high) = s.price_bounds();
        let mut a = FairPrice::new(&s, 7);
        let mut b = FairPrice::new(&s, 7);
        let mut c = FairPrice::new(&s, 8);
        let mut differs = false;
        for i in 1..20_000i64 {
            let pa = a.advance(i * 200_000_000, 200_000_000);
            assert_eq!(pa, b.advance(i * 200_000_000, 200_000_000));
            differs |= pa != c.advance(i * 200_000_000, 200_000_000);
            assert!(pa >= low && pa <= high);
        }
        assert!(differs);
    }

    #[test]
    fn volatility_is_roughly_as_configured() {
        // Without mean reversion and jumps, hourly log returns have the configured spread.
        let mut s = sym();
        s.mean_reversion_half_life_s = 0;
        s.jumps_per_hour = 0.0;
        s.max_deviation_bps = 8_000;
        let mut f = FairPrice::new(&s, 1);
        let mut sum_sq = 0.0;
        let hours = 400;
        let mut prev = f.price().0 as f64;
        for h in 1..=hours {
            let p = f.advance(h * 3_600_000_000_000, 3_600_000_000_000).0 as f64;
            sum_sq += (p / prev).ln().powi(2);
            prev = p;
        }
        let sd_bps = (sum_sq / hours as f64).sqrt() * 10_000.0;
        assert!((110.0..190.0).contains(&sd_bps), "hourly sd {sd_bps} bps, want about 150");
    }

    #[test]
    fn mean_reversion_pulls_back_to_the_initial_price() {
        let mut s = sym();
        s.mean_reversion_half_life_s = 600;
        let mut f = FairPrice::new(&s, 3);
        let mut sum = 0.0;
        let n = 50_000;
        for i in 1..=n {
            sum += f.advance(i * 1_000_000_000, 1_000_000_000).0 as f64;
        }
        let mean = sum / n as f64;
        assert!((mean / 3_000_000.0 - 1.0).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn a_restart_continues_from_the_last_price_within_bounds() {
        let mut f = FairPrice::new(&sym(), 5);
        f.start_at(Price(3_300_000));
        assert_eq!(f.price(), Price(3_300_000));
        let next = f.advance(250_000_000, 250_000_000);
        assert!((next.0 - 3_300_000).abs() < 30_000, "{next:?}");
        f.start_at(Price(9_000_000));
        assert_eq!(f.price(), Price(3_600_000));
    }

    #[test]
    fn feed_replays_from_the_first_step() {
        let mut s = sym();
        s.feed = Some(RecordedFeed::from_points(vec![(0, Price(100)), (1_000_000_000, Price(200))]).unwrap());
        let mut f = FairPrice::new(&s, 0);
        assert_eq!(f.advance(5_000_000_000, 0), Price(100));
        assert_eq!(f.advance(6_000_000_000, 1_000_000_000), Price(200));
        assert_eq!(f.advance(7_000_000_000, 1_000_000_000), Price(100));
    }
}
