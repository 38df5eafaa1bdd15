//! The PostgreSQL read model behind the HTTP layer's [`ReadModel`] port.
//!
//! Contract: each call blocks the calling thread on the async [`PgReader`] through a
//! runtime handle, so it must run on the blocking pool (`AppState::read` does that for a
//! remote read model); failures come back as `StoreError::Corrupt` with the cause (the
//! handlers answer 500 without showing it).

use qt_api::read_model::ReadModel;
use qt_core::{OrderId, SymbolId, UserId};
use qt_store_postgres::PgReader;
use qt_store_sqlite::{
    BalanceRow, CandleRow, ExecutionPage, ExecutionRow, IdempotencyRow, OrderFilter, OrderPage, OrderView, PositionRow,
    Stats24h, StoreError, TradeRow, UserRow,
};

#[derive(Clone, Debug)]
pub struct PgReadModel {
    reader: PgReader,
    rt: tokio::runtime::Handle,
}

impl PgReadModel {
    pub fn new(reader: PgReader, rt: tokio::runtime::Handle) -> Self {
        PgReadModel { reader, rt }
    }

    fn run<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, qt_store_postgres::StoreError>>,
    ) -> Result<T, StoreError> {
        self.rt.block_on(f).map_err(|e| StoreError::Corrupt(format!("postgres: {e}")))
    }
}

impl ReadModel for PgReadModel {
    fn user_by_key_hash(&self, hash: &str) -> Result<Option<UserRow>, StoreError> {
        self.run(self.reader.user_by_key_hash(hash))
    }
    fn user_by_name(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        self.run(self.reader.user_by_name(name))
    }
    fn order(&self, user: UserId, id: OrderId) -> Result<Option<OrderView>, StoreError> {
        self.run(self.reader.order(user, id))
    }
    fn order_fills(&self, id: OrderId) -> Result<Vec<ExecutionRow>, StoreError> {
        self.run(self.reader.order_fills(id))
    }
    fn orders(&self, user: UserId, f: &OrderFilter) -> Result<OrderPage, StoreError> {
        self.run(self.reader.orders(user, f))
    }
    fn executions(
        &self,
        user: UserId,
        symbol: Option<SymbolId>,
        limit: u32,
        cursor: Option<(i64, i64)>,
    ) -> Result<ExecutionPage, StoreError> {
        self.run(self.reader.executions(user, symbol, limit, cursor))
    }
    fn balances(&self, user: UserId) -> Result<Vec<BalanceRow>, StoreError> {
        self.run(self.reader.balances(user))
    }
    fn positions(&self, user: UserId) -> Result<Vec<PositionRow>, StoreError> {
        self.run(self.reader.positions(user))
    }
    fn trades(&self, symbol: SymbolId, limit: u32) -> Result<Vec<TradeRow>, StoreError> {
        self.run(self.reader.trades(symbol, limit))
    }
    fn candles(&self, symbol: SymbolId, interval_s: u32, limit: u32) -> Result<Vec<CandleRow>, StoreError> {
        self.run(self.reader.candles(symbol, interval_s, limit))
    }
    fn stats_24h(&self, symbol: SymbolId, now_ts: i64) -> Result<Stats24h, StoreError> {
        self.run(self.reader.stats_24h(symbol, now_ts))
    }
    fn idempotency(&self, user: UserId, key: &str) -> Result<Option<IdempotencyRow>, StoreError> {
        self.run(self.reader.idempotency(user, key))
    }
}
