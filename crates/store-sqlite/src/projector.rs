//! The projector: folds applied commands and their events into the read model.
//!
//! Contract:
//! - [`Projector::project`] takes a batch of applied commands with their events and
//!   writes it in ONE `BEGIN IMMEDIATE` transaction, together with the new high-water
//!   mark `projected_seq`. Commands at or below the mark are skipped, so projecting a
//!   batch again (replay after a crash, an at-least-once sink) changes nothing.
//! - Rows follow the events, never the engine's internals: orders from
//!   `OrderAccepted`/`OrderRejected` (a rejected place is inserted from the command's
//!   `NewOrder`; an id that already has a row is left alone: the first row wins), status and fill totals from
//!   `OrderFilled`/`OrderSettled`/`OrderCancelled`/`OrderExpired`, price and quantity
//!   from `OrderAmended`, `triggered` from `OrderTriggered`; two executions and one public
//!   trade per `Trade`; candles of [`CANDLE_INTERVALS`] from trades; balances and
//!   positions are the absolute values of the last `BalanceChanged`/`PositionChanged`.
//! - Users come from `UserCreated` plus the command's `meta` (name, API key hash); a
//!   name or key hash that is already taken is stored as NULL rather than failing the
//!   batch (the intake is expected to refuse duplicates before they reach the engine).
//! - A place with `meta.idempotency_key` stores a [`PlaceResponse`] (the order right
//!   after the command and that command's fills) under `(user, key)`; the first command
//!   with a key wins while its answer is live: a later one replaces it only when the
//!   stored answer had expired at that command's time (created [`IDEMPOTENCY_TTL_NS`] or
//!   more before it, so the readers no longer return it and the key is fresh again).
//!   [`Projector::take_place_answers`] hands the answers of the last batch to the caller
//!   (the engine thread answers the API with them instead of reading them back).
//! - Everything derived is deterministic in the journal: execution ids are
//!   `trade_id × 2 (+1 for the taker)`, timestamps are command times. [`Projector::reset`]
//!   and a replay from seq 1 give the same rows as the live projection.
//!
//! Cost: prepared statements from the connection cache, no SELECT per event; orders,
//! balances, positions and candles are coalesced in memory per batch and written once per
//! key (an order placed and filled in one batch is one INSERT of its final row; an
//! existing order touched several times is one UPDATE). Executions and trades are
//! append-only and inserted as they come.

use crate::error::{to_sql, StoreError};
use crate::model::{
    reject_http_status, variant_name, ExecutionRow, IdempotencyRow, OrderView, PlaceResponse, CANDLE_INTERVALS,
};
use crate::reader::IDEMPOTENCY_TTL_NS;
use crate::schema::{PROJECTED_SEQ_KEY, READ_MODEL_TABLES};
use crate::writer::{Durability, Writer};
use qt_core::{CancelReason, NewOrder, OrderId, OrderStatus, RejectReason, Side, SymbolId, SymbolSpec, UserId};
use qt_engine::{Command, CommandEnvelope, Event, EventEnvelope};
use rusqlite::types::Value;
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
    conn: Writer,
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
    /// Orders touched by the batch, written at the end.
    orders: BTreeMap<OrderId, OrderPatch>,
    /// What the batch's keyed places answered, for [`Projector::take_place_answers`].
    answers: Vec<PlaceAnswer>,
}

/// The answer to a place command that carried an `Idempotency-Key`, exactly as stored
/// under that key (so the first answer and every replay are the same).
#[derive(Clone, Debug)]
pub struct PlaceAnswer {
    /// Sequence number of the place command.
    pub seq: u64,
    /// 201, or [`reject_http_status`] of the reason it was refused.
    pub http_status: u16,
    /// The order right after the command and the command's fills.
    pub response: PlaceResponse,
}

/// What a batch did to one order.
#[derive(Clone, Debug)]
enum OrderPatch {
    /// Placed in this batch: its whole row as it is now, inserted at the end (unless a
    /// row with that id already exists, which is left alone).
    New(Box<OrderView>),
    /// Already in the table: the columns to change.
    Update(OrderUpdate),
}

#[derive(Clone, Debug, Default)]
struct OrderUpdate {
    status: Option<OrderStatus>,
    filled: Option<i64>,
    quote_add: i64,
    fee_add: i64,
    price: Option<Option<i64>>,
    qty: Option<i64>,
    triggered: bool,
    cancel_reason: Option<CancelReason>,
    updated_ts: i64,
    cmd_seq: u64,
}

/// One change an event makes to an order.
#[derive(Clone, Copy, Debug)]
enum OrderChange {
    Status(OrderStatus),
    Fill { quote: i64, fee: i64 },
    Filled { filled: i64, status: OrderStatus },
    Amended { price: Option<i64>, qty: i64 },
    Triggered,
    Cancelled(CancelReason),
}

impl OrderPatch {
    fn apply(&mut self, change: OrderChange, ts: i64, seq: u64) {
        match self {
            OrderPatch::New(row) => {
                match change {
                    OrderChange::Status(s) => row.status = s,
                    OrderChange::Fill { quote, fee } => {
                        row.quote_filled += quote;
                        row.fees += fee;
                    }
                    OrderChange::Filled { filled, status } => {
                        row.filled = filled;
                        row.status = status;
                    }
                    OrderChange::Amended { price, qty } => {
                        row.price = price;
                        row.qty = qty;
                    }
                    OrderChange::Triggered => row.triggered = true,
                    OrderChange::Cancelled(reason) => {
                        row.status = OrderStatus::Cancelled;
                        row.cancel_reason = Some(reason);
                    }
                }
                row.updated_ts = ts;
                row.cmd_seq = seq;
            }
            OrderPatch::Update(u) => {
                match change {
                    OrderChange::Status(s) => u.status = Some(s),
                    OrderChange::Fill { quote, fee } => {
                        u.quote_add += quote;
                        u.fee_add += fee;
                    }
                    OrderChange::Filled { filled, status } => {
                        u.filled = Some(filled);
                        u.status = Some(status);
                    }
                    OrderChange::Amended { price, qty } => {
                        u.price = Some(price);
                        u.qty = Some(qty);
                    }
                    OrderChange::Triggered => u.triggered = true,
                    OrderChange::Cancelled(reason) => {
                        u.status = Some(OrderStatus::Cancelled);
                        u.cancel_reason = Some(reason);
                    }
                }
                u.updated_ts = ts;
                u.cmd_seq = seq;
            }
        }
    }
}

impl Scratch {
    fn clear(&mut self) {
        self.balances.clear();
        self.positions.clear();
        self.candles.clear();
        self.orders.clear();
    }

    fn change(&mut self, id: OrderId, change: OrderChange, ts: i64, seq: u64) {
        self.orders.entry(id).or_insert_with(|| OrderPatch::Update(OrderUpdate::default())).apply(change, ts, seq);
    }

    /// Records an order accepted by this batch; an id the batch already has keeps its row
    /// (the first row for an id wins).
    fn place(&mut self, o: &NewOrder, status: OrderStatus, reject: Option<RejectReason>, ts: i64, seq: u64) {
        self.orders.entry(o.order_id).or_insert_with(|| OrderPatch::New(Box::new(new_row(o, status, reject, ts, seq))));
    }
}

impl Projector {
    pub(crate) fn new(conn: Writer, store: crate::Store) -> Result<Projector, StoreError> {
        Ok(Projector { conn, _store: store, specs: Specs::default(), scratch: Scratch::default() })
    }

    /// Projects a batch of applied commands into the read model in ONE transaction,
    /// idempotently: commands with seq <= projected_seq() are skipped (so replay after a
    /// crash is harmless).
    pub fn project(&mut self, batch: &[Projected<'_>]) -> Result<(), StoreError> {
        let Projector { conn, specs, scratch, .. } = self;
        scratch.clear();
        // Kept through the flush (which clears the rest) for take_place_answers.
        scratch.answers.clear();
        let mut conn = conn.lock_for(Durability::Normal)?;
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
            scratch.answers.clear();
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

    /// The answers of the keyed places of the last [`Projector::project`] call, in
    /// command order (empty after a failed call).
    pub fn take_place_answers(&mut self) -> Vec<PlaceAnswer> {
        std::mem::take(&mut self.scratch.answers)
    }

    /// [`crate::Reader::idempotency_at`] on the projector's connection: its page cache
    /// holds what it just wrote, so the engine thread can check a key before journaling a
    /// place without the file reads a pooled reader pays after every write.
    pub fn idempotency_at(&self, user: UserId, key: &str, now_ts: i64) -> Result<Option<IdempotencyRow>, StoreError> {
        crate::reader::query_idempotency(&self.conn.lock(), user, key, now_ts)
    }

    /// An order and its fills as projected so far (any user's), on the projector's own
    /// connection; `None` when the id has no row.
    pub fn order_with_fills(&self, id: OrderId) -> Result<Option<(OrderView, Vec<ExecutionRow>)>, StoreError> {
        let conn = self.conn.lock();
        let Some(order) = crate::reader::query_order(&conn, None, id)? else { return Ok(None) };
        Ok(Some((order, crate::reader::query_order_fills(&conn, id)?)))
    }

    /// Sequence number of the last command projected, 0 when none.
    pub fn projected_seq(&self) -> Result<u64, StoreError> {
        read_projected_seq(&self.conn.lock())
    }

    /// Deletes every read-model row (not the journal, not snapshots) so the caller can
    /// rebuild by replaying the journal from seq 1.
    pub fn reset(&mut self) -> Result<(), StoreError> {
        let mut conn = self.conn.lock_for(Durability::Normal)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for table in READ_MODEL_TABLES {
            tx.execute(&format!("DELETE FROM {table}"), [])?;
        }
        tx.execute("DELETE FROM meta WHERE key = ?1", [PROJECTED_SEQ_KEY])?;
        tx.commit()?;
        drop(conn);
        self.specs.0.clear();
        Ok(())
    }

    /// Deletes idempotency rows created before `ts` (nanoseconds since the epoch), e.g.
    /// `now - 24 h`; the all-in-one runtime calls it with each snapshot (readers ignore
    /// expired rows and a place replaces one, so only the table's size depends on it).
    /// Returns how many went.
    pub fn purge_idempotency_before(&mut self, ts: i64) -> Result<usize, StoreError> {
        let conn = self.conn.lock_for(Durability::Normal)?;
        let deleted = conn.prepare_cached("DELETE FROM idempotency WHERE created_ts < ?1")?.execute([ts])?;
        Ok(deleted)
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

/// The row of an order just placed.
fn new_row(o: &NewOrder, status: OrderStatus, reject: Option<RejectReason>, ts: i64, seq: u64) -> OrderView {
    OrderView {
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
        status,
        post_only: o.post_only,
        stp: o.stp,
        triggered: false,
        reject_reason: reject,
        cancel_reason: None,
        created_ts: ts,
        updated_ts: ts,
        cmd_seq: seq,
    }
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
    let useq = cmd.seq;
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
            Event::OrderAccepted { order } => scratch.place(order, OrderStatus::Accepted, None, ts, useq),
            Event::OrderRejected { order_id, reason, .. } => {
                if let Command::Place(o) = &cmd.cmd {
                    if o.order_id == *order_id {
                        // Written at once, not through the batch's patches: a rejected place
                        // has no later events, and its id may be a live order's (the engine
                        // refuses a duplicate id, or refuses for another reason first), whose
                        // own changes in this batch must not land on the rejected row.
                        if !scratch.orders.contains_key(order_id) {
                            insert_order(conn, &new_row(o, OrderStatus::Rejected, Some(*reason), ts, useq))?;
                        }
                        rejected_place = Some(*reason);
                    }
                }
            }
            Event::OrderTriggered { order_id, .. } => scratch.change(*order_id, OrderChange::Triggered, ts, useq),
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
                    scratch.change(*order, OrderChange::Fill { quote: notional, fee: fee.0 }, ts, useq);
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
                scratch.change(*order_id, OrderChange::Filled { filled: filled.0, status: *status }, ts, useq)
            }
            Event::OrderSettled { order_id, .. } => {
                scratch.change(*order_id, OrderChange::Status(OrderStatus::Settled), ts, useq)
            }
            Event::OrderCancelled { order_id, reason, .. } => {
                scratch.change(*order_id, OrderChange::Cancelled(*reason), ts, useq)
            }
            Event::OrderExpired { order_id, .. } => {
                scratch.change(*order_id, OrderChange::Status(OrderStatus::Expired), ts, useq)
            }
            Event::OrderAmended { order_id, price, qty, .. } => {
                scratch.change(*order_id, OrderChange::Amended { price: price.map(|p| p.0), qty: qty.0 }, ts, useq)
            }
            Event::CommandRejected { .. }
            | Event::BookChanged { .. }
            | Event::LimitsChanged { .. }
            | Event::KillSwitchChanged { .. } => {}
        }
    }
    if let Command::Place(o) = &cmd.cmd {
        if let Some(key) = cmd.meta.as_deref().and_then(|m| m.idempotency_key.as_deref()) {
            let placed = match scratch.orders.get(&o.order_id) {
                Some(OrderPatch::New(row)) => Some(row.as_ref().clone()),
                _ => None,
            };
            let answer = store_idempotency(conn, cmd, o, key, rejected_place, placed)?;
            scratch.answers.push(answer);
        }
    }
    Ok(())
}

/// Stores the answer to the place command `cmd` (of order `o`) under its key.
fn store_idempotency(
    conn: &Connection,
    cmd: &CommandEnvelope,
    o: &NewOrder,
    key: &str,
    rejected: Option<RejectReason>,
    placed: Option<OrderView>,
) -> Result<PlaceAnswer, StoreError> {
    let request_hash = cmd.meta.as_deref().and_then(|m| m.request_hash.as_deref());
    let (ts, seq) = (cmd.ts, to_sql(cmd.seq)?);
    let response = match rejected {
        // Built from the command: with DUPLICATE_ORDER_ID the row under that id is
        // another order, not this request's.
        Some(reason) => {
            PlaceResponse { order: new_row(o, OrderStatus::Rejected, Some(reason), ts, cmd.seq), fills: Vec::new() }
        }
        None => {
            // The row as the batch has it now; the table only gets it at the end of the batch.
            let order = match placed {
                Some(row) => row,
                None => conn
                    .prepare_cached(&format!("SELECT {} FROM orders WHERE order_id = ?1", OrderView::COLUMNS))?
                    .query_row([to_sql(o.order_id.0)?], OrderView::from_row)
                    .optional()?
                    .ok_or_else(|| StoreError::Corrupt(format!("placed order {} has no row", o.order_id.0)))?,
            };
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
    // A live answer stays (the first command wins); an expired one (the readers' `>`
    // 24 h boundary, judged by the command's time so a replay decides the same) is
    // replaced: the key was reused after its window and this is its answer now.
    conn.prepare_cached(
        "INSERT INTO idempotency (user_id, key, request_hash, order_id, http_status, body, created_ts, cmd_seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(user_id, key) DO UPDATE SET \
         request_hash = excluded.request_hash, order_id = excluded.order_id, http_status = excluded.http_status, \
         body = excluded.body, created_ts = excluded.created_ts, cmd_seq = excluded.cmd_seq \
         WHERE idempotency.created_ts <= excluded.created_ts - ?9",
    )?
    .execute(params![
        to_sql(o.user.0)?,
        key,
        request_hash,
        to_sql(o.order_id.0)?,
        status,
        serde_json::to_string(&response)?,
        ts,
        seq,
        IDEMPOTENCY_TTL_NS
    ])?;
    Ok(PlaceAnswer { seq: cmd.seq, http_status: status, response })
}

/// Inserts an order's row unless its id already has one (ids are unique per intake; the
/// first row for an id wins).
fn insert_order(conn: &Connection, row: &OrderView) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO orders (order_id, user_id, symbol_id, client_order_id, side, type, tif, price, \
         stop_price, qty, filled, quote_filled, fees, status, post_only, stp, triggered, reject_reason, \
         cancel_reason, created_ts, updated_ts, cmd_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
         ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22) ON CONFLICT(order_id) DO NOTHING",
    )?
    .execute(params![
        to_sql(row.order_id.0)?,
        to_sql(row.user_id.0)?,
        row.symbol_id.0,
        row.client_order_id,
        row.side.as_str(),
        row.order_type.as_str(),
        row.tif.as_str(),
        row.price,
        row.stop_price,
        row.qty,
        row.filled,
        row.quote_filled,
        row.fees,
        row.status.as_str(),
        row.post_only,
        row.stp.as_str(),
        row.triggered,
        row.reject_reason.map(|r| variant_name(&r)),
        row.cancel_reason.map(|r| variant_name(&r)),
        row.created_ts,
        row.updated_ts,
        to_sql(row.cmd_seq)?,
    ])?;
    Ok(())
}

/// Writes what a batch changed in an existing order, naming only those columns: SQLite
/// rewrites the entries of every index over a column in the SET list, so an amend must not
/// mention `status` (two indexes) when it does not change it.
fn update_order(conn: &Connection, id: OrderId, u: &OrderUpdate) -> Result<(), StoreError> {
    let mut sql = String::with_capacity(256);
    sql.push_str("UPDATE orders SET updated_ts = ?2, cmd_seq = ?3");
    let mut args: Vec<Value> =
        vec![Value::Integer(to_sql(id.0)?), Value::Integer(u.updated_ts), Value::Integer(to_sql(u.cmd_seq)?)];
    let mut set = |column: &str, expr: &str, value: Value| {
        args.push(value);
        sql.push_str(&format!(", {column} = {}", expr.replace('?', &format!("?{}", args.len()))));
    };
    if let Some(status) = u.status {
        set("status", "?", Value::Text(status.as_str().to_string()));
    }
    if let Some(filled) = u.filled {
        set("filled", "?", Value::Integer(filled));
    }
    if let Some(reason) = u.cancel_reason {
        set("cancel_reason", "?", Value::Text(variant_name(&reason)));
    }
    if u.quote_add != 0 || u.fee_add != 0 {
        set("quote_filled", "quote_filled + ?", Value::Integer(u.quote_add));
        set("fees", "fees + ?", Value::Integer(u.fee_add));
    }
    if let Some(price) = u.price {
        set("price", "?", price.map_or(Value::Null, Value::Integer));
    }
    if let Some(qty) = u.qty {
        set("qty", "?", Value::Integer(qty));
    }
    if u.triggered {
        set("triggered", "?", Value::Integer(1));
    }
    sql.push_str(" WHERE order_id = ?1");
    conn.prepare_cached(&sql)?.execute(rusqlite::params_from_iter(args))?;
    Ok(())
}

/// Writes the coalesced orders, balances, positions and candles of the batch.
fn flush(conn: &Connection, scratch: &mut Scratch) -> Result<(), StoreError> {
    for (id, patch) in &scratch.orders {
        match patch {
            OrderPatch::New(row) => insert_order(conn, row)?,
            OrderPatch::Update(u) => update_order(conn, *id, u)?,
        }
    }
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
