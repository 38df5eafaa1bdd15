//! QuantTrader market simulator: a living market for demos, tests and the all-in-one
//! `quanttrader run`.
//!
//! Per symbol, a fair price follows a mean-reverting geometric Brownian motion with jumps
//! (or replays a recorded feed); market makers keep a ladder of quotes on both sides of it
//! and skew against their inventory; noise traders take liquidity with IOC/market orders
//! and now and then rest a limit order inside the spread. Everything reaches the exchange
//! as ordinary engine commands ([`SimAction`]) placed by ordinary, funded users.
//!
//! Contract:
//! - Deterministic: the same [`SimConfig::seed`], symbols, `first_user`, step times and
//!   [`MarketView`] answers give the same actions. No clock, no I/O, no threads: time comes
//!   in as `now_ns`, order ids from the driver's counter.
//! - Money is never a float: prices are ticks, quantities lots, deposits minor units.
//!   Floats live only inside the random process and are snapped to the tick grid.
//! - Orders are valid for the engine when the driver keeps the contract below: on the
//!   tick/lot grid, within min/max quantity and above the minimum notional, limit prices
//!   within the price band of the last price, market orders only IOC, and the simulator
//!   never crosses its own orders (self-trade prevention would cancel them).
//!
//! Driver contract (what `quanttrader run` must do):
//! 1. At first start create the users of [`Simulator::users`] with
//!    [`Simulator::risk_limits`] (no per-user limits: a market maker re-quoting several
//!    levels on several symbols exceeds any sensible human velocity limit) and deposit what
//!    each entry lists.
//! 2. At every start (the simulator keeps no state across restarts) mass-cancel the open
//!    orders of [`Simulator::user_ids`] before the first step. The first step picks up
//!    each symbol's last price from the view, so a restarted market goes on from there.
//! 3. Apply the actions of one step in order, and all of them before the next step reads
//!    the view: an order the simulator placed and the view does not show as open is taken
//!    as filled.
//! 4. A cancel or amend of an order that a real user filled between the view and the
//!    command is refused by the engine with `ORDER_NOT_FOUND`: harmless, ignore it.
//!
//! A driver in miniature (the engine is the view; a real driver sequences, journals and
//! publishes the commands instead of applying them directly):
//!
//! ```
//! use qt_core::{OrderId, Price};
//! use qt_engine::{Command, CommandEnvelope, EngineConfig, Exchange};
//! use qt_sim::{SimConfig, SimSymbol, Simulator};
//! use qt_testkit::fixtures::{btc_usd, reference_data};
//!
//! let sim_symbols = vec![SimSymbol::new(btc_usd(), Price(3_000_000))];
//! let mut sim = Simulator::new(SimConfig { seed: 7, ..SimConfig::default() }, sim_symbols, 1_000)?;
//! let mut ex = Exchange::new(EngineConfig::default());
//! let (mut seq, mut next_order) = (0u64, 1u64);
//! let mut apply = |ex: &mut Exchange, ts: i64, cmd: Command| {
//!     seq += 1;
//!     ex.apply(&CommandEnvelope::new(seq, ts, cmd), &mut Vec::new());
//! };
//! let start = 1_767_225_600_000_000_000i64;
//! for cmd in reference_data() {
//!     apply(&mut ex, start, cmd);
//! }
//! for (user, deposits) in sim.users() {
//!     apply(&mut ex, start, Command::CreateUser { user, limits: Some(sim.risk_limits()) });
//!     for (asset, amount) in deposits {
//!         apply(&mut ex, start, Command::Deposit { user, asset, amount });
//!     }
//! }
//! for step in 0..400 {
//!     let now = start + step * 250_000_000;
//!     let actions = sim.step(now, &ex, &mut || {
//!         next_order += 1;
//!         OrderId(next_order - 1)
//!     });
//!     for action in actions {
//!         apply(&mut ex, now, Command::from(action));
//!     }
//! }
//! let book = &ex.symbols()[0];
//! assert!(book.book.best_bid().is_some() && book.book.best_ask().is_some());
//! assert!(book.last_price.is_some(), "trades printed");
//! # Ok::<(), qt_sim::SimError>(())
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod feed;
mod maker;
mod noise;
mod process;
mod simulator;
mod view;

pub use config::{SimConfig, SimError, SimSymbol};
pub use feed::{FeedError, RecordedFeed};
pub use simulator::{Deposits, SimAction, Simulator};
pub use view::MarketView;
