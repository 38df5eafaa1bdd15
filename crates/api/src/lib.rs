//! QuantTrader's all-in-one server: the engine runtime (sequencer, SQLite journal, read
//! model, simulator driver) and the HTTP/WebSocket API around it.
//!
//! Contract:
//! - [`app::Application`] is `quanttrader run`: build (recover, list markets, first-start
//!   credentials, simulator), then serve until a shutdown signal.
//! - [`runtime`] owns the engine on one thread; the HTTP layer talks to it only through
//!   [`runtime::EngineHandle`] and reads queries from the read model.
//! - [`http`] is the public interface of docs/api.md and DESIGN.md section 3.
//! - Distributed mode (crate `qt-node`) reuses all of it: [`runtime::EngineHandle::remote`]
//!   forwards commands and queries to another process, and [`read_model::Reader`] queries
//!   another store.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod config;
pub mod http;
pub mod read_model;
pub mod runtime;
pub mod telemetry;

pub use app::{AppError, Application};
pub use config::{Overrides, RunConfig};
