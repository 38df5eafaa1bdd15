//! QuantTrader domain core: fixed-point money, symbols, orders and their life cycle, the
//! order book with matching, pre-trade risk primitives and the ledger.
//!
//! Contract: pure and deterministic. No clock, no randomness, no I/O, no async runtime;
//! time and identifiers come in as values. Money is never a float.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod book;
pub mod ledger;
pub mod money;
pub mod order;
pub mod risk;
pub mod symbol;

pub use book::{BookDelta, Depth, Fill, MatchBuffers, MatchOutcome, OrderBook, Resting, StpCancel};
pub use ledger::{Balance, Ledger, LedgerError, Settlement, SideSettlement};
pub use money::{Amount, DecimalError, Overflow, Price, Qty};
pub use order::{
    transition, CancelReason, InvalidTransition, NewOrder, OrderEvent, OrderId, OrderStatus, OrderType, RejectReason,
    Side, StpMode, TimeInForce, TradeId, UserId,
};
pub use risk::{DailyPnl, Position, RiskLimits, VelocityWindow};
pub use symbol::{Asset, AssetId, GridError, SpecError, SymbolId, SymbolSpec};
