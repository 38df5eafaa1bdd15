//! The query side: what the HTTP API reads, from a pool of read-only connections.
//!
//! Contract:
//! - Every method takes `&self`, borrows a pooled connection for one query and returns
//!   owned rows; [`Reader`] is `Clone + Send + Sync` and cheap to clone (one pool).
//! - Readers see the read model as of the last committed projection batch (WAL snapshot
//!   isolation); they never block the engine thread's writers, nor are blocked by them.
//! - Lists are newest first with keyset pagination: a page has at most `limit` rows
//!   (clamped to `1..=`[`MAX_PAGE`]) and the cursor of the last row when more may follow;
//!   passing that cursor back continues strictly after it, so every row is seen exactly
//!   once even with equal timestamps.
//! - A user only ever gets its own orders and fills: [`Reader::order`] answers `None` for
//!   another user's order, the same as for an unknown one.

use crate::error::{get_u64, to_sql, StoreError};
use crate::model::{
    AssetRow, BalanceRow, CandleRow, ExecutionRow, IdempotencyRow, OrderView, PositionRow, Stats24h, SymbolRow,
    TradeRow, UserRow, ALL_STATUSES,
};
use qt_core::{AssetId, OrderId, OrderStatus, Side, SymbolId, TradeId, UserId};
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension};
use std::time::Duration;

/// Largest page any list returns.
pub const MAX_PAGE: u32 = 1000;

/// How long an idempotency key holds: older rows count as absent.
pub const IDEMPOTENCY_TTL_NS: i64 = 24 * 3600 * 1_000_000_000;

/// Position in an order list: `(created_ts, order_id)` of the last order seen.
pub type OrderCursor = (i64, u64);

/// Position in a fill list: `(ts, execution_id)` of the last fill seen.
pub type ExecutionCursor = (i64, i64);

/// A page of orders and the cursor of the next page, if there may be one.
pub type OrderPage = (Vec<OrderView>, Option<OrderCursor>);

/// A page of fills and the cursor of the next page, if there may be one.
pub type ExecutionPage = (Vec<ExecutionRow>, Option<ExecutionCursor>);

const DAY_NS: i64 = 24 * 3600 * 1_000_000_000;

/// Which statuses an order list keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    /// Exactly this status.
    One(OrderStatus),
    /// Every status that is not final (NEW, ACCEPTED, PARTIALLY_FILLED).
    Open,
}

/// Filters and page of [`Reader::orders`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only this symbol.
    pub symbol: Option<SymbolId>,
    /// Only these statuses.
    pub status: Option<StatusFilter>,
    /// Created at or after (ns since the epoch).
    pub from_ts: Option<i64>,
    /// Created at or before (ns since the epoch).
    pub to_ts: Option<i64>,
    /// Page size, clamped to `1..=MAX_PAGE`.
    pub limit: u32,
    /// `(created_ts, order_id)` of the last order of the previous page.
    pub cursor: Option<OrderCursor>,
}

/// Read-only access to the read model.
#[derive(Clone, Debug)]
pub struct Reader {
    pool: Pool<SqliteConnectionManager>,
    /// Keeps the store (and its checkpointer) alive as long as any clone of this.
    _store: crate::Store,
}

fn page(limit: u32) -> u32 {
    limit.clamp(1, MAX_PAGE)
}

fn open_statuses() -> impl Iterator<Item = OrderStatus> {
    ALL_STATUSES.into_iter().filter(|s| s.is_open())
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl Reader {
    pub(crate) fn new(store: crate::Store, size: u32) -> Result<Reader, StoreError> {
        let manager = SqliteConnectionManager::file(store.path())
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(crate::init_reader);
        // Connections are opened lazily (min_idle 0): a reader costs nothing until used.
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        Ok(Reader { pool, _store: store })
    }

    fn conn(&self) -> Result<PooledConnection<SqliteConnectionManager>, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Runs an ordered list query for one page: asks for one row more than `limit`, so
    /// the cursor of the page's last row is returned only when more rows follow.
    fn keyset_page<T, C>(
        &self,
        mut sql: String,
        mut args: Vec<Value>,
        limit: u32,
        map: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
        cursor_of: impl Fn(&T) -> C,
    ) -> Result<(Vec<T>, Option<C>), StoreError> {
        sql.push_str(" LIMIT ?");
        args.push(Value::Integer(i64::from(limit) + 1));
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows: Vec<T> = stmt.query_map(params_from_iter(args), map)?.collect::<Result<_, _>>()?;
        if rows.len() <= limit as usize {
            return Ok((rows, None));
        }
        rows.truncate(limit as usize);
        let next = rows.last().map(cursor_of);
        Ok((rows, next))
    }

    fn user_where(&self, clause: &str, value: Value) -> Result<Option<UserRow>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT user_id, name, api_key_hash, created_ts FROM users WHERE {clause} = ?1"
        ))?;
        Ok(stmt
            .query_row([value], |r| {
                Ok(UserRow {
                    user_id: UserId(get_u64(r, 0)?),
                    name: r.get(1)?,
                    api_key_hash: r.get(2)?,
                    created_ts: r.get(3)?,
                })
            })
            .optional()?)
    }

    /// The user whose API key hashes to `hash`.
    pub fn user_by_key_hash(&self, hash: &str) -> Result<Option<UserRow>, StoreError> {
        self.user_where("api_key_hash", Value::Text(hash.to_string()))
    }

    /// The user with this id.
    pub fn user(&self, id: UserId) -> Result<Option<UserRow>, StoreError> {
        self.user_where("user_id", Value::Integer(to_sql(id.0)?))
    }

    /// The user with this name.
    pub fn user_by_name(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        self.user_where("name", Value::Text(name.to_string()))
    }

    /// One of `user`'s orders; `None` when unknown or when it belongs to someone else.
    pub fn order(&self, user: UserId, id: OrderId) -> Result<Option<OrderView>, StoreError> {
        query_order(&*self.conn()?, Some(user), id)
    }

    /// The fills of an order, oldest first. The caller has checked ownership with
    /// [`Reader::order`].
    pub fn order_fills(&self, id: OrderId) -> Result<Vec<ExecutionRow>, StoreError> {
        query_order_fills(&*self.conn()?, id)
    }

    /// `user`'s orders, newest first (by creation time, then id), filtered, one page at a
    /// time; returns the page and the cursor of the next one when there may be more.
    pub fn orders(&self, user: UserId, f: &OrderFilter) -> Result<OrderPage, StoreError> {
        let limit = page(f.limit);
        let mut sql = format!("SELECT {} FROM orders WHERE user_id = ?", OrderView::COLUMNS);
        let mut args: Vec<Value> = vec![Value::Integer(to_sql(user.0)?)];
        if let Some(s) = f.symbol {
            sql.push_str(" AND symbol_id = ?");
            args.push(Value::Integer(i64::from(s.0)));
        }
        match f.status {
            Some(StatusFilter::One(s)) => {
                sql.push_str(" AND status = ?");
                args.push(Value::Text(s.as_str().to_string()));
            }
            Some(StatusFilter::Open) => {
                let statuses: Vec<&str> = open_statuses().map(|s| s.as_str()).collect();
                sql.push_str(&format!(" AND status IN ({})", vec!["?"; statuses.len()].join(", ")));
                args.extend(statuses.into_iter().map(|s| Value::Text(s.to_string())));
            }
            None => {}
        }
        if let Some(from) = f.from_ts {
            sql.push_str(" AND created_ts >= ?");
            args.push(Value::Integer(from));
        }
        if let Some(to) = f.to_ts {
            sql.push_str(" AND created_ts <= ?");
            args.push(Value::Integer(to));
        }
        if let Some((ts, id)) = f.cursor {
            sql.push_str(" AND (created_ts, order_id) < (?, ?)");
            args.push(Value::Integer(ts));
            args.push(Value::Integer(to_sql(id)?));
        }
        sql.push_str(" ORDER BY created_ts DESC, order_id DESC");
        self.keyset_page(sql, args, limit, OrderView::from_row, |o| (o.created_ts, o.order_id.0))
    }

    /// Ids of `user`'s open orders (optionally of one symbol), ascending: what a mass
    /// cancel will touch.
    pub fn open_order_ids(&self, user: UserId, symbol: Option<SymbolId>) -> Result<Vec<OrderId>, StoreError> {
        let statuses: Vec<&str> = open_statuses().map(|s| s.as_str()).collect();
        let marks = vec!["?"; statuses.len()].join(", ");
        let mut sql = format!("SELECT order_id FROM orders WHERE user_id = ? AND status IN ({marks})");
        let mut args: Vec<Value> = vec![Value::Integer(to_sql(user.0)?)];
        args.extend(statuses.into_iter().map(|s| Value::Text(s.to_string())));
        if let Some(s) = symbol {
            sql.push_str(" AND symbol_id = ?");
            args.push(Value::Integer(i64::from(s.0)));
        }
        sql.push_str(" ORDER BY order_id");
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| Ok(OrderId(get_u64(r, 0)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// `user`'s fills, newest first, one page at a time; the cursor is `(ts,
    /// execution_id)` of the last row.
    pub fn executions(
        &self,
        user: UserId,
        symbol: Option<SymbolId>,
        limit: u32,
        cursor: Option<ExecutionCursor>,
    ) -> Result<ExecutionPage, StoreError> {
        let limit = page(limit);
        let mut sql = format!("SELECT {} FROM executions WHERE user_id = ?", ExecutionRow::COLUMNS);
        let mut args: Vec<Value> = vec![Value::Integer(to_sql(user.0)?)];
        if let Some(s) = symbol {
            sql.push_str(" AND symbol_id = ?");
            args.push(Value::Integer(i64::from(s.0)));
        }
        if let Some((ts, id)) = cursor {
            sql.push_str(" AND (ts, execution_id) < (?, ?)");
            args.push(Value::Integer(ts));
            args.push(Value::Integer(id));
        }
        sql.push_str(" ORDER BY ts DESC, execution_id DESC");
        self.keyset_page(sql, args, limit, ExecutionRow::from_row, |e| (e.ts, e.execution_id))
    }

    /// `user`'s balances, by asset id.
    pub fn balances(&self, user: UserId) -> Result<Vec<BalanceRow>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT asset_id, available, reserved FROM balances WHERE user_id = ?1 ORDER BY asset_id",
        )?;
        let rows = stmt.query_map([to_sql(user.0)?], |r| {
            Ok(BalanceRow { user_id: user, asset_id: AssetId(r.get(0)?), available: r.get(1)?, reserved: r.get(2)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// `user`'s positions, by symbol id (flat ones included once the user has traded).
    pub fn positions(&self, user: UserId) -> Result<Vec<PositionRow>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT symbol_id, qty, cost, realized FROM positions WHERE user_id = ?1 ORDER BY symbol_id",
        )?;
        let rows = stmt.query_map([to_sql(user.0)?], |r| {
            Ok(PositionRow {
                user_id: user,
                symbol_id: SymbolId(r.get(0)?),
                qty: r.get(1)?,
                cost: parse_i128(r, 2)?,
                realized: parse_i128(r, 3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The latest public trades of a symbol, newest first.
    pub fn trades(&self, symbol: SymbolId, limit: u32) -> Result<Vec<TradeRow>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT trade_id, price, qty, taker_side, ts FROM trades WHERE symbol_id = ?1 \
             ORDER BY trade_id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![symbol.0, page(limit)], |r| {
            let side: String = r.get(3)?;
            Ok(TradeRow {
                trade_id: TradeId(get_u64(r, 0)?),
                symbol_id: symbol,
                price: r.get(1)?,
                qty: r.get(2)?,
                taker_side: side_of(&side, 3)?,
                ts: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest `limit` candles of a symbol at `interval_s` (one of
    /// [`crate::CANDLE_INTERVALS`]), oldest first. Buckets without trades are absent.
    pub fn candles(&self, symbol: SymbolId, interval_s: u32, limit: u32) -> Result<Vec<CandleRow>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT open_time, open, high, low, close, volume, quote_volume, trades FROM candles \
             WHERE symbol_id = ?1 AND interval_s = ?2 ORDER BY open_time DESC LIMIT ?3",
        )?;
        let mut rows: Vec<CandleRow> = stmt
            .query_map(params![symbol.0, interval_s, page(limit)], |r| {
                Ok(CandleRow {
                    symbol_id: symbol,
                    interval_s,
                    open_time: r.get(0)?,
                    open: r.get(1)?,
                    high: r.get(2)?,
                    low: r.get(3)?,
                    close: r.get(4)?,
                    volume: r.get(5)?,
                    quote_volume: r.get(6)?,
                    trades: r.get(7)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// Open, high, low, last, volume of the 1-minute candles whose bucket starts in
    /// `(now_ts − 24 h, now_ts]` (one-minute precision; a 24 h window holds at most 1440
    /// of them, so this is cheap whatever the trade rate).
    pub fn stats_24h(&self, symbol: SymbolId, now_ts: i64) -> Result<Stats24h, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT open, high, low, close, volume, quote_volume, trades FROM candles \
             WHERE symbol_id = ?1 AND interval_s = 60 AND open_time > ?2 AND open_time <= ?3 ORDER BY open_time",
        )?;
        let mut rows = stmt.query(params![symbol.0, now_ts.saturating_sub(DAY_NS), now_ts])?;
        let mut s = Stats24h::default();
        while let Some(r) = rows.next()? {
            let (open, high, low, close): (i64, i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            s.open.get_or_insert(open);
            s.high = Some(s.high.map_or(high, |h| h.max(high)));
            s.low = Some(s.low.map_or(low, |l| l.min(low)));
            s.last = Some(close);
            s.volume += r.get::<_, i64>(4)?;
            s.quote_volume += r.get::<_, i64>(5)?;
            s.trades += r.get::<_, i64>(6)?;
        }
        Ok(s)
    }

    /// The stored answer for `(user, key)`; rows created more than 24 h before now count
    /// as absent.
    pub fn idempotency(&self, user: UserId, key: &str) -> Result<Option<IdempotencyRow>, StoreError> {
        self.idempotency_at(user, key, now_ns())
    }

    /// [`Reader::idempotency`] with an explicit "now" (ns since the epoch).
    pub fn idempotency_at(&self, user: UserId, key: &str, now_ts: i64) -> Result<Option<IdempotencyRow>, StoreError> {
        query_idempotency(&*self.conn()?, user, key, now_ts)
    }

    /// Every listed symbol, by id.
    pub fn symbols(&self) -> Result<Vec<SymbolRow>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT spec FROM symbols ORDER BY symbol_id")?;
        let specs: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        specs.iter().map(|s| Ok(SymbolRow { spec: serde_json::from_str(s)? })).collect()
    }

    /// Every listed asset, by id.
    pub fn assets(&self) -> Result<Vec<AssetRow>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT asset_id, code, scale FROM assets ORDER BY asset_id")?;
        let rows =
            stmt.query_map([], |r| Ok(AssetRow { asset_id: AssetId(r.get(0)?), code: r.get(1)?, scale: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sequence number of the last projected command: how fresh the read model is.
    pub fn projected_seq(&self) -> Result<u64, StoreError> {
        let conn = self.conn()?;
        let v: Option<i64> = conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([crate::schema::PROJECTED_SEQ_KEY], |r| r.get(0))
            .optional()?;
        Ok(v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
    }
}

// ---- point queries shared by the reader pool and the projector's connection ----------

/// One order by id; with `user`, only when it is that user's.
pub(crate) fn query_order(
    conn: &Connection,
    user: Option<UserId>,
    id: OrderId,
) -> Result<Option<OrderView>, StoreError> {
    let id = to_sql(id.0)?;
    Ok(match user {
        Some(user) => conn
            .prepare_cached(&format!("SELECT {} FROM orders WHERE order_id = ?1 AND user_id = ?2", OrderView::COLUMNS))?
            .query_row(params![id, to_sql(user.0)?], OrderView::from_row)
            .optional()?,
        None => conn
            .prepare_cached(&format!("SELECT {} FROM orders WHERE order_id = ?1", OrderView::COLUMNS))?
            .query_row(params![id], OrderView::from_row)
            .optional()?,
    })
}

/// The fills of an order, oldest first.
pub(crate) fn query_order_fills(conn: &Connection, id: OrderId) -> Result<Vec<ExecutionRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM executions WHERE order_id = ?1 ORDER BY execution_id",
        ExecutionRow::COLUMNS
    ))?;
    let rows = stmt.query_map([to_sql(id.0)?], ExecutionRow::from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The stored answer for `(user, key)` unless it is older than 24 h at `now_ts`.
pub(crate) fn query_idempotency(
    conn: &Connection,
    user: UserId,
    key: &str,
    now_ts: i64,
) -> Result<Option<IdempotencyRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT request_hash, order_id, http_status, body, created_ts FROM idempotency \
         WHERE user_id = ?1 AND key = ?2 AND created_ts > ?3",
    )?;
    Ok(stmt
        .query_row(params![to_sql(user.0)?, key, now_ts.saturating_sub(IDEMPOTENCY_TTL_NS)], |r| {
            Ok(IdempotencyRow {
                user_id: user,
                key: key.to_string(),
                request_hash: r.get(0)?,
                order_id: OrderId(get_u64(r, 1)?),
                http_status: r.get(2)?,
                body: r.get(3)?,
                created_ts: r.get(4)?,
            })
        })
        .optional()?)
}

fn parse_i128(r: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<i128> {
    let s: String = r.get(idx)?;
    s.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}

fn side_of(s: &str, idx: usize) -> rusqlite::Result<Side> {
    crate::model::side_from(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, format!("side {s:?}").into())
    })
}
