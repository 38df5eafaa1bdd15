//! The read model the HTTP handlers query: the embedded SQLite one of the all-in-one mode,
//! or another store (PostgreSQL in the distributed mode) behind [`ReadModel`].
//!
//! Contract:
//! - [`Reader`] has the method names, arguments, row types and paging of
//!   `qt_store_sqlite::Reader`, so handlers are the same in both modes.
//! - Methods are synchronous. A [`ReadModel`] may block on network I/O: `AppState::read`
//!   runs its queries on the blocking pool, never on an async worker; SQLite queries
//!   (microseconds) stay on the worker.
//! - A remote store's failures come back as `StoreError::Corrupt` carrying the cause: the
//!   handlers answer them as 500 without leaking it, exactly like a SQLite failure.

use qt_core::{OrderId, SymbolId, UserId};
use qt_store_sqlite::{
    BalanceRow, CandleRow, ExecutionPage, ExecutionRow, IdempotencyRow, OrderFilter, OrderPage, OrderView, PositionRow,
    Stats24h, StoreError, TradeRow, UserRow,
};
use std::sync::Arc;

/// The queries of the HTTP layer, for a read model other than the embedded SQLite one.
pub trait ReadModel: Send + Sync + std::fmt::Debug {
    fn user_by_key_hash(&self, hash: &str) -> Result<Option<UserRow>, StoreError>;
    fn user_by_name(&self, name: &str) -> Result<Option<UserRow>, StoreError>;
    fn order(&self, user: UserId, id: OrderId) -> Result<Option<OrderView>, StoreError>;
    fn order_fills(&self, id: OrderId) -> Result<Vec<ExecutionRow>, StoreError>;
    fn orders(&self, user: UserId, f: &OrderFilter) -> Result<OrderPage, StoreError>;
    fn executions(
        &self,
        user: UserId,
        symbol: Option<SymbolId>,
        limit: u32,
        cursor: Option<(i64, i64)>,
    ) -> Result<ExecutionPage, StoreError>;
    fn balances(&self, user: UserId) -> Result<Vec<BalanceRow>, StoreError>;
    fn positions(&self, user: UserId) -> Result<Vec<PositionRow>, StoreError>;
    fn trades(&self, symbol: SymbolId, limit: u32) -> Result<Vec<TradeRow>, StoreError>;
    fn candles(&self, symbol: SymbolId, interval_s: u32, limit: u32) -> Result<Vec<CandleRow>, StoreError>;
    fn stats_24h(&self, symbol: SymbolId, now_ts: i64) -> Result<Stats24h, StoreError>;
    fn idempotency(&self, user: UserId, key: &str) -> Result<Option<IdempotencyRow>, StoreError>;
}

/// What `AppState.reader` holds. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Reader {
    Sqlite(qt_store_sqlite::Reader),
    Remote(Arc<dyn ReadModel>),
}

impl From<qt_store_sqlite::Reader> for Reader {
    fn from(r: qt_store_sqlite::Reader) -> Self {
        Reader::Sqlite(r)
    }
}

impl Reader {
    /// Whether queries may block on the network (and so belong on the blocking pool).
    pub fn is_remote(&self) -> bool {
        matches!(self, Reader::Remote(_))
    }
}

macro_rules! dispatch {
    ($(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        impl Reader {
            $(
                pub fn $name(&self $(, $arg: $ty)*) -> Result<$ret, StoreError> {
                    match self {
                        Reader::Sqlite(r) => r.$name($($arg),*),
                        Reader::Remote(r) => r.$name($($arg),*),
                    }
                }
            )*
        }
    };
}

dispatch! {
    fn user_by_key_hash(&self, hash: &str) -> Option<UserRow>;
    fn user_by_name(&self, name: &str) -> Option<UserRow>;
    fn order(&self, user: UserId, id: OrderId) -> Option<OrderView>;
    fn order_fills(&self, id: OrderId) -> Vec<ExecutionRow>;
    fn orders(&self, user: UserId, f: &OrderFilter) -> OrderPage;
    fn executions(&self, user: UserId, symbol: Option<SymbolId>, limit: u32, cursor: Option<(i64, i64)>) -> ExecutionPage;
    fn balances(&self, user: UserId) -> Vec<BalanceRow>;
    fn positions(&self, user: UserId) -> Vec<PositionRow>;
    fn trades(&self, symbol: SymbolId, limit: u32) -> Vec<TradeRow>;
    fn candles(&self, symbol: SymbolId, interval_s: u32, limit: u32) -> Vec<CandleRow>;
    fn stats_24h(&self, symbol: SymbolId, now_ts: i64) -> Stats24h;
    fn idempotency(&self, user: UserId, key: &str) -> Option<IdempotencyRow>;
}
