//! The projector: folds applied commands and their events into the read model.
//!
//! Contract:
//! - [`Projector::project`] takes a batch of applied commands with their events and
//!   writes it in ONE `BEGIN IMMEDIATE` transaction, together with the new high-water
//!   mark `projected_seq`. Commands at or below the mark are skipped, so projecting a
//!   batch again (replay after a crash, an at-least-once sink) changes nothing.
//! - Rows follow the events, never the engine's internals: orders from
//!   `OrderAccepted`/`OrderRejected` (a rejected place is inserted from the command's
//!   `NewOrder`; an id that already exists is left alone), status and fill totals from
//!   `OrderFilled`/`OrderSettled`/`OrderCancelled`/`OrderExpired`, price and quantity
//!   from `OrderAmended`, `triggered` from `OrderTriggered`; two executions and one public
//!   trade per `Trade`; candles of [`CANDLE_INTERVALS`] from trades; balances and
//!   positions are the absolute values of the last `BalanceChanged`/`PositionChanged`.
//! - Users come from `UserCreated` plus the command's `meta` (name, API key hash); a
//!   name or key hash that is already taken is stored as NULL rather than failing the
//!   batch (the intake is expected to refuse duplicates before they reach the engine).
//! - A place with `meta.idempotency_key` stores a [`PlaceResponse`] (the order right
//!   after the command and that command's fills) under `(user, key)`; the first command
//!   with a key wins.
//! - Everything derived is deterministic in the journal: execution ids are
//!   `trade_id × 2 (+1 for the taker)`, timestamps are command times. [`Projector::reset`]
//!   and a replay from seq 1 give the same rows as the live projection.
//!
//! Cost: prepared statements from the connection cache, no SELECT per event; balances,
//! positions and candles are coalesced in memory per batch and written once per key.

use crate::error::{to_sql, StoreError};
use crate::model::{reject_http_status, variant_name, ExecutionRow, OrderView, PlaceResponse, CANDLE_INTERVALS};
use crate::schema::{PROJECTED_SEQ_KEY, READ_MODEL_TABLES};
use qt_core::{NewOrder, OrderId, OrderStatus, RejectReason, Side, SymbolId, SymbolSpec};
use qt_engine::{Command, CommandEnvelope, Event, EventEnvelope};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::BTreeMap;

/// One applied command and the events it produced.
#[derive(Clone, Copy, Debug)]
pub struct Projected<'a> {
    /// The command as journaled (with its meta).
    pub command: &'a CommandEnvelope,
    /// Every event `Exchange::apply` emitted for it, in order.
    pub events: &'a [EventEnvelope],
}

/// Writes the read model; one per process, on the engine thread.
#[derive(Debug)]
pub struct Projector {
    conn: Connection,
    /// Keeps the store (and its checkpointer) alive as long as this handle.
    _store: crate::Store,
    specs: Specs,
    scratch: Scratch,
}

/// Symbol specifications by id, for notionals; filled from `symbols` on a miss.
#[derive(Debug, Default)]
struct Specs(Vec<Option<SymbolSpec>>);

impl Specs {
    fn get(&mut self, conn: &Connection, id: SymbolId) -> Result<&SymbolSpec, StoreError> {
        let i = id.0 as usize;
        if self.0.get(i).is_none_or(|s| s.is_none()) {
            let json: Option<String> = conn
                .prepare_cached("SELECT spec FROM symbols WHERE symbol_id = ?1")?
                .query_row([id.0], |r| r.get(0))
                .optional()?;
            let json = json.ok_or_else(|| StoreError::Corrupt(format!("trade on unknown symbol {}", id.0)))?;
            self.set(serde_json::from_str(&json)?);
        }
        self.0.get(i).and_then(Option::as_ref).ok_or_else(|| StoreError::Corrupt(format!("symbol {} not cached", id.0)))
    }

    fn set(&mut self, spec: SymbolSpec) {
        let i = spec.id.0 as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, None);
        }
        self.0[i] = Some(spec);
    }
}

/// A candle's changes within one batch.
#[derive(Clone, Copy, Debug)]
struct CandleAcc {
    open: i64,
    high: i64,
    low: i64,
    close: i64,
    volume: i64,
    quote_volume: i64,
    trades: i64,
}

/// Per-batch buffers, reused across batches.
#[derive(Debug, Default)]
struct Scratch {
    /// (user, asset) → (available, reserved, ts)
    balances: BTreeMap<(u64, u16), (i64, i64, i64)>,
    /// (user, symbol) → (qty, cost, realized, ts)
    positions: BTreeMap<(u64, u16), (i64, i128, i128, i64)>,
    /// (symbol, interval_s, open_time) → changes
    candles: BTreeMap<(u16, u32, i64), CandleAcc>,
    /// Fill totals of the current command's trades waiting for their `OrderFilled`:
    /// (order, quote, fee).
    pending_fills: Vec<(OrderId, i64, i64)>,
}

impl Scratch {
    fn clear(&mut self) {
        self.balances.clear();
        self.positions.clear();
        self.candles.clear();
        self.pending_fills.clear();
    }
}

impl Projector {
    pub(crate) fn new(conn: Connection, store: crate::Store) -> Result<Projector, StoreError> {
        Ok(Projector { conn, _store: store, specs: Specs::default(), scratch: Scratch::default() })
    }

    /// Projects a batch of applied commands into the read model in ONE transaction,
    /// idempotently: commands with seq <= projected_seq() are skipped (so replay after a
    /// crash is harmless).
    pub fn project(&mut self, batch: &[Projected<'_>]) -> Result<(), StoreError> {
        let Projector { conn, specs, scratch, .. } = self;
        scratch.clear();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let start = read_projected_seq(&tx)?;
        let mut last = start;
        let result = (|| {
            for p in batch {
                if p.command.seq <= last {
                    continue;
                }
                project_command(&tx, specs, scratch, p)?;
                last = p.command.seq;
            }
            flush(&tx, scratch)
        })();
        if let Err(e) = result {
            // A spec cached from a command of the failed batch may not be in the table.
            specs.0.clear();
            return Err(e);
        }
        if last != start {
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![PROJECTED_SEQ_KEY, to_sql(last)?])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sequence number of the last command projected, 0 when none.
    pub fn projected_seq(&self) -> Result<u64, StoreError> {
        read_projected_seq(&self.conn)
    }

    /// Deletes every read-model row (not the journal, not snapshots) so the caller can
    /// rebuild by replaying the journal from seq 1.
    pub fn reset(&mut self) -> Result<(), StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for table in READ_MODEL_TABLES {
            tx.execute(&format!("DELETE FROM {table}"), [])?;
        }
        tx.execute("DELETE FROM meta WHERE key = ?1", [PROJECTED_SEQ_KEY])?;
        tx.commit()?;
        self.specs.0.clear();
        Ok(())
    }

    /// Deletes idempotency rows created before `ts` (nanoseconds since the epoch); the
    /// runtime calls it hourly with `now - 24 h`. Returns how many went.
    pub fn purge_idempotency_before(&mut self, ts: i64) -> Result<usize, StoreError> {
        Ok(self.conn.prepare_cached("DELETE FROM idempotency WHERE created_ts < ?1")?.execute([ts])?)
    }
}

fn read_projected_seq(conn: &Connection) -> Result<u64, StoreError> {
    let v: Option<i64> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([PROJECTED_SEQ_KEY], |r| r.get(0))
        .optional()?;
    match v {
        None => Ok(0),
        Some(v) => u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("projected_seq {v}"))),
    }
}

fn side_of(side: Side) -> &'static str {
    side.as_str()
}

fn insert_order(
    conn: &Connection,
    o: &NewOrder,
    status: OrderStatus,
    reject: Option<RejectReason>,
    ts: i64,
    seq: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO orders (order_id, user_id, symbol_id, client_order_id, side, type, tif, price, stop_price, qty, \
         status, post_only, stp, reject_reason, created_ts, updated_ts, cmd_seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16) \
         ON CONFLICT(order_id) DO NOTHING",
    )?
    .execute(params![
        to_sql(o.order_id.0)?,
        to_sql(o.user.0)?,
        o.symbol.0,
        o.client_order_id,
        side_of(o.side),
        o.order_type.as_str(),
        o.tif.as_str(),
        o.price.map(|p| p.0),
        o.stop_price.map(|p| p.0),
        o.qty.0,
        status.as_str(),
        o.post_only,
        o.stp.as_str(),
        reject.map(|r| variant_name(&r)),
        ts,
        seq,
    ])?;
    Ok(())
}

fn set_status(conn: &Connection, id: OrderId, status: OrderStatus, ts: i64, seq: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE orders SET status = ?2, updated_ts = ?3, cmd_seq = ?4 WHERE order_id = ?1")?
        .execute(params![to_sql(id.0)?, status.as_str(), ts, seq])?;
    Ok(())
}

fn project_command(
    conn: &Connection,
    specs: &mut Specs,
    scratch: &mut Scratch,
    p: &Projected<'_>,
) -> Result<(), StoreError> {
    let cmd = p.command;
    let ts = cmd.ts;
    let seq = to_sql(cmd.seq)?;
    scratch.pending_fills.clear();
    let mut rejected_place: Option<RejectReason> = None;
    for env in p.events {
        match &env.event {
            Event::AssetAdded { asset, code, scale } => {
                conn.prepare_cached("INSERT OR REPLACE INTO assets (asset_id, code, scale) VALUES (?1, ?2, ?3)")?
                    .execute(params![asset.0, code, scale])?;
            }
            Event::SymbolAdded { symbol } => {
                let Command::AddSymbol(spec) = &cmd.cmd else {
                    return Err(StoreError::Corrupt(format!("SymbolAdded {} without AddSymbol", symbol.0)));
                };
                conn.prepare_cached("INSERT OR REPLACE INTO symbols (symbol_id, name, spec) VALUES (?1, ?2, ?3)")?
                    .execute(params![symbol.0, spec.name, serde_json::to_string(spec)?])?;
                specs.set(spec.clone());
            }
            Event::UserCreated { user } => {
                let meta = cmd.meta.as_deref();
                let name = meta.and_then(|m| m.user_name.as_deref());
                let hash = meta.and_then(|m| m.api_key_hash.as_deref());
                conn.prepare_cached(
                    "INSERT INTO users (user_id, name, api_key_hash, created_ts, cmd_seq) \
                     SELECT ?1, \
                       CASE WHEN EXISTS (SELECT 1 FROM users WHERE name = ?2) THEN NULL ELSE ?2 END, \
                       CASE WHEN EXISTS (SELECT 1 FROM users WHERE api_key_hash = ?3) THEN NULL ELSE ?3 END, \
                       ?4, ?5 \
                     WHERE true ON CONFLICT(user_id) DO NOTHING",
                )?
                .execute(params![to_sql(user.0)?, name, hash, ts, seq])?;
            }
            Event::BalanceChanged { user, asset, available, reserved } => {
                scratch.balances.insert((user.0, asset.0), (available.0, reserved.0, ts));
            }
            Event::PositionChanged { user, symbol, qty, cost, realized } => {
                scratch.positions.insert((user.0, symbol.0), (*qty, *cost, *realized, ts));
            }
            Event::OrderAccepted { order } => {
                insert_order(conn, order, OrderStatus::Accepted, None, ts, seq)?;
            }
            Event::OrderRejected { order_id, reason, .. } => {
                if let Command::Place(o) = &cmd.cmd {
                    if o.order_id == *order_id {
                        insert_order(conn, o, OrderStatus::Rejected, Some(*reason), ts, seq)?;
                        rejected_place = Some(*reason);
                    }
                }
            }
            Event::OrderTriggered { order_id, .. } => {
                conn.prepare_cached(
                    "UPDATE orders SET triggered = 1, updated_ts = ?2, cmd_seq = ?3 WHERE order_id = ?1",
                )?
                .execute(params![to_sql(order_id.0)?, ts, seq])?;
            }
            Event::Trade {
                trade_id,
                symbol,
                price,
                qty,
                taker_side,
                maker_order,
                maker_user,
                taker_order,
                taker_user,
                maker_fee,
                taker_fee,
            } => {
                let spec = specs.get(conn, *symbol)?;
                let notional = i64::try_from(spec.notional(*price, *qty))
                    .map_err(|_| StoreError::Corrupt(format!("notional of trade {} overflows i64", trade_id.0)))?;
                let tid = to_sql(trade_id.0)?;
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO trades (trade_id, symbol_id, price, qty, taker_side, ts, cmd_seq) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![tid, symbol.0, price.0, qty.0, side_of(*taker_side), ts, seq])?;
                let mut exec = conn.prepare_cached(
                    "INSERT OR REPLACE INTO executions (execution_id, trade_id, order_id, user_id, symbol_id, side, \
                     price, qty, quote_qty, fee, is_maker, ts, cmd_seq) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )?;
                for (order, user, side, fee, is_maker) in [
                    (maker_order, maker_user, taker_side.opposite(), maker_fee, true),
                    (taker_order, taker_user, *taker_side, taker_fee, false),
                ] {
                    let execution_id = tid * 2 + i64::from(!is_maker);
                    exec.execute(params![
                        execution_id,
                        tid,
                        to_sql(order.0)?,
                        to_sql(user.0)?,
                        symbol.0,
                        side_of(side),
                        price.0,
                        qty.0,
                        notional,
                        fee.0,
                        is_maker,
                        ts,
                        seq
                    ])?;
                    scratch.pending_fills.push((*order, notional, fee.0));
                }
                for interval in CANDLE_INTERVALS {
                    let len = i64::from(interval) * 1_000_000_000;
                    let open_time = ts.div_euclid(len) * len;
                    scratch
                        .candles
                        .entry((symbol.0, interval, open_time))
                        .and_modify(|c| {
                            c.high = c.high.max(price.0);
                            c.low = c.low.min(price.0);
                            c.close = price.0;
                            c.volume += qty.0;
                            c.quote_volume += notional;
                            c.trades += 1;
                        })
                        .or_insert(CandleAcc {
                            open: price.0,
                            high: price.0,
                            low: price.0,
                            close: price.0,
                            volume: qty.0,
                            quote_volume: notional,
                            trades: 1,
                        });
                }
            }
            Event::OrderFilled { order_id, filled, status, .. } => {
                let (quote, fee) = take_pending(&mut scratch.pending_fills, *order_id);
                conn.prepare_cached(
                    "UPDATE orders SET filled = ?2, status = ?3, quote_filled = quote_filled + ?4, fees = fees + ?5, \
                     updated_ts = ?6, cmd_seq = ?7 WHERE order_id = ?1",
                )?
                .execute(params![
                    to_sql(order_id.0)?,
                    filled.0,
                    status.as_str(),
                    quote,
                    fee,
                    ts,
                    seq
                ])?;
            }
            Event::OrderSettled { order_id, .. } => set_status(conn, *order_id, OrderStatus::Settled, ts, seq)?,
            Event::OrderCancelled { order_id, reason, .. } => {
                conn.prepare_cached(
                    "UPDATE orders SET status = ?2, cancel_reason = ?3, updated_ts = ?4, cmd_seq = ?5 WHERE order_id = ?1",
                )?
                .execute(params![
                    to_sql(order_id.0)?,
                    OrderStatus::Cancelled.as_str(),
                    variant_name(reason),
                    ts,
                    seq
                ])?;
            }
            Event::OrderExpired { order_id, .. } => set_status(conn, *order_id, OrderStatus::Expired, ts, seq)?,
            Event::OrderAmended { order_id, price, qty, .. } => {
                conn.prepare_cached(
                    "UPDATE orders SET price = ?2, qty = ?3, updated_ts = ?4, cmd_seq = ?5 WHERE order_id = ?1",
                )?
                .execute(params![to_sql(order_id.0)?, price.map(|p| p.0), qty.0, ts, seq])?;
            }
            Event::CommandRejected { .. }
            | Event::BookChanged { .. }
            | Event::LimitsChanged { .. }
            | Event::KillSwitchChanged { .. } => {}
        }
    }
    // A fill whose OrderFilled never came (the engine always sends one; this keeps the
    // totals right even if that ever changes).
    for (order_id, quote, fee) in scratch.pending_fills.drain(..) {
        conn.prepare_cached(
            "UPDATE orders SET quote_filled = quote_filled + ?2, fees = fees + ?3, updated_ts = ?4, cmd_seq = ?5 \
             WHERE order_id = ?1",
        )?
        .execute(params![to_sql(order_id.0)?, quote, fee, ts, seq])?;
    }
    if let Command::Place(o) = &cmd.cmd {
        if let Some(key) = cmd.meta.as_deref().and_then(|m| m.idempotency_key.as_deref()) {
            let request_hash = cmd.meta.as_deref().and_then(|m| m.request_hash.as_deref());
            store_idempotency(conn, o, key, request_hash, rejected_place, ts, seq)?;
        }
    }
    Ok(())
}

/// Removes and returns the quote and fee totals of `order`'s pending fills.
fn take_pending(pending: &mut Vec<(OrderId, i64, i64)>, order: OrderId) -> (i64, i64) {
    let mut quote = 0;
    let mut fee = 0;
    pending.retain(|&(id, q, f)| {
        if id == order {
            quote += q;
            fee += f;
            false
        } else {
            true
        }
    });
    (quote, fee)
}

fn store_idempotency(
    conn: &Connection,
    o: &NewOrder,
    key: &str,
    request_hash: Option<&str>,
    rejected: Option<RejectReason>,
    ts: i64,
    seq: i64,
) -> Result<(), StoreError> {
    let response = match rejected {
        // Built from the command: with DUPLICATE_ORDER_ID the row under that id is
        // another order, not this request's.
        Some(reason) => PlaceResponse {
            order: OrderView {
                order_id: o.order_id,
                user_id: o.user,
                symbol_id: o.symbol,
                client_order_id: o.client_order_id.clone(),
                side: o.side,
                order_type: o.order_type,
                tif: o.tif,
                price: o.price.map(|p| p.0),
                stop_price: o.stop_price.map(|p| p.0),
                qty: o.qty.0,
                filled: 0,
                quote_filled: 0,
                fees: 0,
                status: OrderStatus::Rejected,
                post_only: o.post_only,
                stp: o.stp,
                triggered: false,
                reject_reason: Some(reason),
                cancel_reason: None,
                created_ts: ts,
                updated_ts: ts,
                cmd_seq: u64::try_from(seq).unwrap_or_default(),
            },
            fills: Vec::new(),
        },
        None => {
            let order = conn
                .prepare_cached(&format!("SELECT {} FROM orders WHERE order_id = ?1", OrderView::COLUMNS))?
                .query_row([to_sql(o.order_id.0)?], OrderView::from_row)
                .optional()?
                .ok_or_else(|| StoreError::Corrupt(format!("placed order {} has no row", o.order_id.0)))?;
            let fills = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM executions WHERE order_id = ?1 AND cmd_seq = ?2 ORDER BY execution_id",
                    ExecutionRow::COLUMNS
                ))?
                .query_map(params![to_sql(o.order_id.0)?, seq], ExecutionRow::from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            PlaceResponse { order, fills }
        }
    };
    let status = rejected.map_or(201, reject_http_status);
    conn.prepare_cached(
        "INSERT INTO idempotency (user_id, key, request_hash, order_id, http_status, body, created_ts, cmd_seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(user_id, key) DO NOTHING",
    )?
    .execute(params![
        to_sql(o.user.0)?,
        key,
        request_hash,
        to_sql(o.order_id.0)?,
        status,
        serde_json::to_string(&response)?,
        ts,
        seq
    ])?;
    Ok(())
}

/// Writes the coalesced balances, positions and candles of the batch.
fn flush(conn: &Connection, scratch: &mut Scratch) -> Result<(), StoreError> {
    if !scratch.balances.is_empty() {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO balances (user_id, asset_id, available, reserved, updated_ts) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT(user_id, asset_id) DO UPDATE SET available = excluded.available, \
             reserved = excluded.reserved, updated_ts = excluded.updated_ts",
        )?;
        for (&(user, asset), &(available, reserved, ts)) in &scratch.balances {
            stmt.execute(params![to_sql(user)?, asset, available, reserved, ts])?;
        }
    }
    if !scratch.positions.is_empty() {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO positions (user_id, symbol_id, qty, cost, realized, updated_ts) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(user_id, symbol_id) DO UPDATE SET qty = excluded.qty, \
             cost = excluded.cost, realized = excluded.realized, updated_ts = excluded.updated_ts",
        )?;
        for (&(user, symbol), &(qty, cost, realized, ts)) in &scratch.positions {
            stmt.execute(params![to_sql(user)?, symbol, qty, cost.to_string(), realized.to_string(), ts])?;
        }
    }
    if !scratch.candles.is_empty() {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO candles (symbol_id, interval_s, open_time, open, high, low, close, volume, quote_volume, \
             trades) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT(symbol_id, interval_s, open_time) DO UPDATE SET high = max(high, excluded.high), \
             low = min(low, excluded.low), close = excluded.close, volume = volume + excluded.volume, \
             quote_volume = quote_volume + excluded.quote_volume, trades = trades + excluded.trades",
        )?;
        for (&(symbol, interval, open_time), c) in &scratch.candles {
            stmt.execute(params![
                symbol,
                interval,
                open_time,
                c.open,
                c.high,
                c.low,
                c.close,
                c.volume,
                c.quote_volume,
                c.trades
            ])?;
        }
    }
    scratch.clear();
    Ok(())
}
