//! Test and benchmark support for QuantTrader: reference data fixtures, a harness that
//! drives an [`qt_engine::Exchange`] with sequenced commands, a deliberately naive
//! reference matcher to check the real book against, and the seeded benchmark workload.
//!
//! Contract: everything here is deterministic for a given seed; nothing here is used by
//! the production paths except the benchmark workload.

pub mod fixtures;
pub mod harness;
pub mod reference;
pub mod servers;
pub mod workload;

pub use fixtures::{BTC, BTC_USD, ETH, ETH_USD, USD};
pub use harness::Harness;
