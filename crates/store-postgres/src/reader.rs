//! The query side: what the HTTP API reads. Names, arguments, row types and paging are
//! those of `qt_store_sqlite::Reader`.
//!
//! Contract:
//! - Every method borrows a pooled connection for one statement and returns owned rows;
//!   [`PgReader`] is `Clone + Send + Sync`.
//! - Lists are newest first with keyset pagination: at most `limit` rows (clamped to
//!   `1..=`[`MAX_PAGE`]) and the cursor of the last row when more may follow; passing it
//!   back continues strictly after it, so every row is seen once even with equal times.
//! - A user only ever gets its own orders and fills: [`PgReader::order`] answers `None` for
//!   another user's order, the same as for an unknown one.
//! - Optional filters are bound as NULL-able parameters of one fixed statement per query
//!   (`$n IS NULL OR column = $n`), so each query is prepared once per connection.

use crate::model::{
    execution_from_row, order_from_row, side_from, small, AssetRow, BalanceRow, CandleRow, ExecutionRow,
    IdempotencyRow, OrderView, PositionRow, Stats24h, SymbolRow, TradeRow, UserRow, ALL_STATUSES, EXECUTION_COLUMNS,
    ORDER_COLUMNS,
};
use crate::{from_sql, to_sql, StoreError};
use deadpool_postgres::Pool;
use qt_core::{AssetId, OrderId, SymbolId, TradeId, UserId};
use tokio_postgres::Row;

pub use qt_store_sqlite::{OrderFilter, StatusFilter, IDEMPOTENCY_TTL_NS, MAX_PAGE};

const DAY_NS: i64 = 24 * 3600 * 1_000_000_000;

fn page(limit: u32) -> u32 {
    limit.clamp(1, MAX_PAGE)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn user_row(r: &Row) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        user_id: UserId(from_sql(r.try_get(0)?)?),
        name: r.try_get(1)?,
        api_key_hash: r.try_get(2)?,
        created_ts: r.try_get(3)?,
    })
}

/// Read access to the read model.
#[derive(Clone, Debug)]
pub struct PgReader {
    pool: Pool,
}

impl PgReader {
    pub(crate) fn new(pool: Pool) -> Self {
        PgReader { pool }
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(sql).await?;
        Ok(client.query(&stmt, params).await?)
    }

    async fn user_where(
        &self,
        sql: &str,
        value: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> Result<Option<UserRow>, StoreError> {
        self.query(sql, &[value]).await?.first().map(user_row).transpose()
    }

    /// The user whose API key hashes to `hash`.
    pub async fn user_by_key_hash(&self, hash: &str) -> Result<Option<UserRow>, StoreError> {
        self.user_where("SELECT user_id, name, api_key_hash, created_ts FROM users WHERE api_key_hash = $1", &hash)
            .await
    }

    pub async fn user(&self, id: UserId) -> Result<Option<UserRow>, StoreError> {
        self.user_where("SELECT user_id, name, api_key_hash, created_ts FROM users WHERE user_id = $1", &to_sql(id.0)?)
            .await
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        self.user_where("SELECT user_id, name, api_key_hash, created_ts FROM users WHERE name = $1", &name).await
    }

    /// One of `user`'s orders; `None` when unknown or when it belongs to someone else.
    pub async fn order(&self, user: UserId, id: OrderId) -> Result<Option<OrderView>, StoreError> {
        let sql = format!("SELECT {} FROM orders WHERE order_id = $1 AND user_id = $2", ORDER_COLUMNS);
        self.query(&sql, &[&to_sql(id.0)?, &to_sql(user.0)?]).await?.first().map(order_from_row).transpose()
    }

    /// The fills of an order, oldest first (ownership checked with [`PgReader::order`]).
    pub async fn order_fills(&self, id: OrderId) -> Result<Vec<ExecutionRow>, StoreError> {
        let sql = format!("SELECT {} FROM executions WHERE order_id = $1 ORDER BY execution_id", EXECUTION_COLUMNS);
        self.query(&sql, &[&to_sql(id.0)?]).await?.iter().map(execution_from_row).collect()
    }

    /// `user`'s orders, newest first (creation time, then id), filtered, one page at a
    /// time; returns the page and the cursor of the next one when there may be more.
    pub async fn orders(
        &self,
        user: UserId,
        f: &OrderFilter,
    ) -> Result<(Vec<OrderView>, Option<(i64, u64)>), StoreError> {
        let limit = page(f.limit);
        let statuses: Option<Vec<&str>> = f.status.map(|s| match s {
            StatusFilter::One(s) => vec![s.as_str()],
            StatusFilter::Open => ALL_STATUSES.into_iter().filter(|s| s.is_open()).map(|s| s.as_str()).collect(),
        });
        let (cursor_ts, cursor_id) = match f.cursor {
            Some((ts, id)) => (Some(ts), Some(to_sql(id)?)),
            None => (None, None),
        };
        let sql = format!(
            "SELECT {} FROM orders WHERE user_id = $1 \
             AND ($2::INTEGER IS NULL OR symbol_id = $2) \
             AND ($3::TEXT[] IS NULL OR status = ANY($3)) \
             AND ($4::BIGINT IS NULL OR created_ts >= $4) \
             AND ($5::BIGINT IS NULL OR created_ts <= $5) \
             AND ($6::BIGINT IS NULL OR (created_ts, order_id) < ($6, $7::BIGINT)) \
             ORDER BY created_ts DESC, order_id DESC LIMIT $8",
            ORDER_COLUMNS
        );
        let rows = self
            .query(
                &sql,
                &[
                    &to_sql(user.0)?,
                    &f.symbol.map(|s| i32::from(s.0)),
                    &statuses,
                    &f.from_ts,
                    &f.to_ts,
                    &cursor_ts,
                    &cursor_id,
                    &(i64::from(limit) + 1),
                ],
            )
            .await?;
        let mut out = rows.iter().map(order_from_row).collect::<Result<Vec<_>, _>>()?;
        let next = if out.len() > limit as usize {
            out.truncate(limit as usize);
            out.last().map(|o| (o.created_ts, o.order_id.0))
        } else {
            None
        };
        Ok((out, next))
    }

    /// Ids of `user`'s open orders (optionally of one symbol), ascending: what a mass
    /// cancel will touch.
    pub async fn open_order_ids(&self, user: UserId, symbol: Option<SymbolId>) -> Result<Vec<OrderId>, StoreError> {
        let open: Vec<&str> = ALL_STATUSES.into_iter().filter(|s| s.is_open()).map(|s| s.as_str()).collect();
        let rows = self
            .query(
                "SELECT order_id FROM orders WHERE user_id = $1 AND status = ANY($2) \
                 AND ($3::INTEGER IS NULL OR symbol_id = $3) ORDER BY order_id",
                &[&to_sql(user.0)?, &open, &symbol.map(|s| i32::from(s.0))],
            )
            .await?;
        rows.iter().map(|r| Ok(OrderId(from_sql(r.try_get(0)?)?))).collect()
    }

    /// `user`'s fills, newest first, one page at a time; the cursor is `(ts,
    /// execution_id)` of the last row.
    pub async fn executions(
        &self,
        user: UserId,
        symbol: Option<SymbolId>,
        limit: u32,
        cursor: Option<(i64, i64)>,
    ) -> Result<(Vec<ExecutionRow>, Option<(i64, i64)>), StoreError> {
        let limit = page(limit);
        let sql = format!(
            "SELECT {} FROM executions WHERE user_id = $1 AND ($2::INTEGER IS NULL OR symbol_id = $2) \
             AND ($3::BIGINT IS NULL OR (ts, execution_id) < ($3, $4::BIGINT)) \
             ORDER BY ts DESC, execution_id DESC LIMIT $5",
            EXECUTION_COLUMNS
        );
        let rows = self
            .query(
                &sql,
                &[
                    &to_sql(user.0)?,
                    &symbol.map(|s| i32::from(s.0)),
                    &cursor.map(|c| c.0),
                    &cursor.map(|c| c.1),
                    &(i64::from(limit) + 1),
                ],
            )
            .await?;
        let mut out = rows.iter().map(execution_from_row).collect::<Result<Vec<_>, _>>()?;
        let next = if out.len() > limit as usize {
            out.truncate(limit as usize);
            out.last().map(|e| (e.ts, e.execution_id))
        } else {
            None
        };
        Ok((out, next))
    }

    /// `user`'s balances, by asset id.
    pub async fn balances(&self, user: UserId) -> Result<Vec<BalanceRow>, StoreError> {
        let rows = self
            .query(
                "SELECT asset_id, available, reserved FROM balances WHERE user_id = $1 ORDER BY asset_id",
                &[&to_sql(user.0)?],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(BalanceRow {
                    user_id: user,
                    asset_id: AssetId(small(r.try_get(0)?)?),
                    available: r.try_get(1)?,
                    reserved: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// `user`'s positions, by symbol id.
    pub async fn positions(&self, user: UserId) -> Result<Vec<PositionRow>, StoreError> {
        let rows = self
            .query(
                "SELECT symbol_id, qty, cost::TEXT, realized::TEXT FROM positions WHERE user_id = $1 ORDER BY symbol_id",
                &[&to_sql(user.0)?],
            )
            .await?;
        let big = |s: &str| s.parse::<i128>().map_err(|e| StoreError::Corrupt(format!("position amount {s:?}: {e}")));
        rows.iter()
            .map(|r| {
                Ok(PositionRow {
                    user_id: user,
                    symbol_id: SymbolId(small(r.try_get(0)?)?),
                    qty: r.try_get(1)?,
                    cost: big(r.try_get(2)?)?,
                    realized: big(r.try_get(3)?)?,
                })
            })
            .collect()
    }

    /// Every user's positions (the risk role rebuilds its Redis copy from them).
    pub async fn all_positions(&self) -> Result<Vec<PositionRow>, StoreError> {
        let rows = self
            .query(
                "SELECT user_id, symbol_id, qty, cost::TEXT, realized::TEXT FROM positions ORDER BY user_id, symbol_id",
                &[],
            )
            .await?;
        let big = |s: &str| s.parse::<i128>().map_err(|e| StoreError::Corrupt(format!("position amount {s:?}: {e}")));
        rows.iter()
            .map(|r| {
                Ok(PositionRow {
                    user_id: UserId(crate::from_sql(r.try_get(0)?)?),
                    symbol_id: SymbolId(small(r.try_get(1)?)?),
                    qty: r.try_get(2)?,
                    cost: big(r.try_get(3)?)?,
                    realized: big(r.try_get(4)?)?,
                })
            })
            .collect()
    }

    /// The latest public trades of a symbol, newest first.
    pub async fn trades(&self, symbol: SymbolId, limit: u32) -> Result<Vec<TradeRow>, StoreError> {
        let rows = self
            .query(
                "SELECT trade_id, price, qty, taker_side, ts FROM trades WHERE symbol_id = $1 \
                 ORDER BY trade_id DESC LIMIT $2",
                &[&i32::from(symbol.0), &i64::from(page(limit))],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let side: &str = r.try_get(3)?;
                Ok(TradeRow {
                    trade_id: TradeId(from_sql(r.try_get(0)?)?),
                    symbol_id: symbol,
                    price: r.try_get(1)?,
                    qty: r.try_get(2)?,
                    taker_side: side_from(side).ok_or_else(|| StoreError::Corrupt(format!("side {side:?}")))?,
                    ts: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// The newest `limit` candles of a symbol at `interval_s`, oldest first. Buckets
    /// without trades are absent.
    pub async fn candles(&self, symbol: SymbolId, interval_s: u32, limit: u32) -> Result<Vec<CandleRow>, StoreError> {
        let iv = i32::try_from(interval_s).map_err(|_| StoreError::Corrupt(format!("interval {interval_s}")))?;
        let rows = self
            .query(
                "SELECT open_time, open, high, low, close, volume, quote_volume, trades FROM candles \
                 WHERE symbol_id = $1 AND interval_s = $2 ORDER BY open_time DESC LIMIT $3",
                &[&i32::from(symbol.0), &iv, &i64::from(page(limit))],
            )
            .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(CandleRow {
                    symbol_id: symbol,
                    interval_s,
                    open_time: r.try_get(0)?,
                    open: r.try_get(1)?,
                    high: r.try_get(2)?,
                    low: r.try_get(3)?,
                    close: r.try_get(4)?,
                    volume: r.try_get(5)?,
                    quote_volume: r.try_get(6)?,
                    trades: r.try_get(7)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.reverse();
        Ok(out)
    }

    /// Open, high, low, last, volume of the 1-minute candles whose bucket starts in
    /// `(now_ts − 24 h, now_ts]`.
    pub async fn stats_24h(&self, symbol: SymbolId, now_ts: i64) -> Result<Stats24h, StoreError> {
        let rows = self
            .query(
                "SELECT open, high, low, close, volume, quote_volume, trades FROM candles \
                 WHERE symbol_id = $1 AND interval_s = 60 AND open_time > $2 AND open_time <= $3 ORDER BY open_time",
                &[&i32::from(symbol.0), &now_ts.saturating_sub(DAY_NS), &now_ts],
            )
            .await?;
        let mut s = Stats24h::default();
        for r in &rows {
            let (open, high, low, close): (i64, i64, i64, i64) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            s.open.get_or_insert(open);
            s.high = Some(s.high.map_or(high, |h| h.max(high)));
            s.low = Some(s.low.map_or(low, |l| l.min(low)));
            s.last = Some(close);
            s.volume += r.try_get::<_, i64>(4)?;
            s.quote_volume += r.try_get::<_, i64>(5)?;
            s.trades += r.try_get::<_, i64>(6)?;
        }
        Ok(s)
    }

    /// The stored answer for `(user, key)`; rows older than 24 h count as absent.
    pub async fn idempotency(&self, user: UserId, key: &str) -> Result<Option<IdempotencyRow>, StoreError> {
        self.idempotency_at(user, key, now_ns()).await
    }

    /// [`PgReader::idempotency`] with an explicit "now" (ns since the epoch).
    pub async fn idempotency_at(
        &self,
        user: UserId,
        key: &str,
        now_ts: i64,
    ) -> Result<Option<IdempotencyRow>, StoreError> {
        let rows = self
            .query(
                "SELECT request_hash, order_id, http_status, body, created_ts FROM idempotency \
                 WHERE user_id = $1 AND key = $2 AND created_ts > $3",
                &[&to_sql(user.0)?, &key, &now_ts.saturating_sub(IDEMPOTENCY_TTL_NS)],
            )
            .await?;
        rows.first()
            .map(|r| {
                let status: i32 = r.try_get(2)?;
                Ok(IdempotencyRow {
                    user_id: user,
                    key: key.to_string(),
                    request_hash: r.try_get(0)?,
                    order_id: OrderId(from_sql(r.try_get(1)?)?),
                    http_status: u16::try_from(status).map_err(|_| StoreError::Corrupt(format!("status {status}")))?,
                    body: r.try_get(3)?,
                    created_ts: r.try_get(4)?,
                })
            })
            .transpose()
    }

    /// [`PgReader::idempotency_at`] of many keys in one query: the rows of those of
    /// `keys` (user, key) that have one younger than 24 h at `now_ts`, in no particular
    /// order.
    pub async fn idempotency_many(
        &self,
        keys: &[(UserId, String)],
        now_ts: i64,
    ) -> Result<Vec<IdempotencyRow>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let users: Vec<i64> = keys.iter().map(|(u, _)| to_sql(u.0)).collect::<Result<_, _>>()?;
        let names: Vec<&str> = keys.iter().map(|(_, k)| k.as_str()).collect();
        let rows = self
            .query(
                "SELECT i.user_id, i.key, i.request_hash, i.order_id, i.http_status, i.body, i.created_ts \
                 FROM idempotency i JOIN UNNEST($1::BIGINT[], $2::TEXT[]) AS x(u, k) \
                 ON i.user_id = x.u AND i.key = x.k WHERE i.created_ts > $3",
                &[&users, &names, &now_ts.saturating_sub(IDEMPOTENCY_TTL_NS)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let status: i32 = r.try_get(4)?;
                Ok(IdempotencyRow {
                    user_id: UserId(from_sql(r.try_get(0)?)?),
                    key: r.try_get(1)?,
                    request_hash: r.try_get(2)?,
                    order_id: OrderId(from_sql(r.try_get(3)?)?),
                    http_status: u16::try_from(status).map_err(|_| StoreError::Corrupt(format!("status {status}")))?,
                    body: r.try_get(5)?,
                    created_ts: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// Every listed symbol, by id.
    pub async fn symbols(&self) -> Result<Vec<SymbolRow>, StoreError> {
        let rows = self.query("SELECT spec::TEXT FROM symbols ORDER BY symbol_id", &[]).await?;
        rows.iter().map(|r| Ok(SymbolRow { spec: serde_json::from_str(r.try_get(0)?)? })).collect()
    }

    /// Every listed asset, by id.
    pub async fn assets(&self) -> Result<Vec<AssetRow>, StoreError> {
        let rows = self.query("SELECT asset_id, code, scale FROM assets ORDER BY asset_id", &[]).await?;
        rows.iter()
            .map(|r| {
                let scale: i32 = r.try_get(2)?;
                Ok(AssetRow {
                    asset_id: AssetId(small(r.try_get(0)?)?),
                    code: r.try_get(1)?,
                    scale: u32::try_from(scale).map_err(|_| StoreError::Corrupt(format!("scale {scale}")))?,
                })
            })
            .collect()
    }

    /// The projection high-water mark of `source`: how fresh the read model is.
    pub async fn projected_seq(&self, source: &str) -> Result<u64, StoreError> {
        let rows = self.query("SELECT last_seq FROM projector_offsets WHERE source = $1", &[&source]).await?;
        rows.first().map_or(Ok(0), |r| from_sql(r.try_get(0)?))
    }
}
