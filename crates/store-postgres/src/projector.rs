//! The projector: folds applied commands and their events into the PostgreSQL read model.
//!
//! Contract:
//! - [`Projector::project`] writes a batch of one source (a matching shard's stream) in
//!   ONE transaction, together with that source's high-water mark in `projector_offsets`
//!   (read `FOR UPDATE`, so two projectors of the same source serialize). Commands at or
//!   below the mark are skipped: projecting a batch again (a redelivered Kafka batch, a
//!   replay after a crash) changes nothing — exactly-once effects over at-least-once
//!   delivery.
//! - The rows are those of the all-in-one SQLite projector, derived the same way: orders
//!   from `OrderAccepted`/`OrderRejected` (a rejected place is inserted from the command's
//!   `NewOrder`), statuses and fill totals from the order events, two executions and one
//!   public trade per `Trade`, candles of [`CANDLE_INTERVALS`] from trades, balances and
//!   positions as the absolute values of their last change (coalesced per batch), users
//!   and idempotency answers from the command's `meta`. A name or key hash already taken
//!   is stored as NULL rather than failing the batch.
//! - Idempotency answers: the first keyed place stores its answer under `(user, key)`; a
//!   later place with the same key replaces it only when the stored answer had expired at
//!   that place's time (created [`IDEMPOTENCY_TTL_NS`] or more before it: the readers'
//!   24 h window, so the shard's key check had let it through as a fresh key), never a
//!   live one. Judged by the commands' own times, so a replay decides the same way.
//!   [`Projector::purge_idempotency_expired`] deletes expired rows in bounded batches.
//! - [`Projector::take_place_answers`] hands over, after a committed batch, the answers of
//!   its keyed places that became the stored answer of their key (as the SQLite projector
//!   does), so the matching shard can reply with them and the intake need not read them
//!   back; [`Projector::take_changed_orders`] likewise the orders its cancels and amends
//!   named, read back in the batch's transaction.
//!
//! Cost: the batch is folded in memory first (new orders as whole rows, changes of older
//! orders as one delta per order, trades, executions, balances, positions, candles,
//! idempotency answers) and each table is then written with ONE statement over `UNNEST`ed
//! arrays, so a batch costs a dozen round trips whatever its size.

use crate::model::{
    execution_from_row, order_from_row, reject_http_status, variant_name, ExecutionRow, OrderView, PlaceResponse,
    CANDLE_INTERVALS, EXECUTION_COLUMNS, ORDER_COLUMNS,
};
use crate::{to_sql, StoreError, IDEMPOTENCY_TTL_NS};
use deadpool_postgres::{Pool, Transaction};
use futures_util::future::try_join_all;
use qt_core::{CancelReason, NewOrder, OrderId, OrderStatus, RejectReason, SymbolId, SymbolSpec};
use qt_engine::{Command, CommandEnvelope, CommandMeta, Event, EventEnvelope};
pub use qt_store_sqlite::PlaceAnswer;
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::types::ToSql;

/// One applied input of a source and the events it produced.
#[derive(Clone, Copy, Debug)]
pub struct Projected<'a> {
    /// The input's sequence number in its source (the high-water mark) and its time.
    pub seq: u64,
    pub ts: i64,
    /// The client command the input carries out, with its intake context; none for an
    /// input of the split engine that is not a client command (a risk shard's report of a
    /// fill from a matching shard).
    pub command: Option<(&'a Command, Option<&'a CommandMeta>)>,
    pub events: &'a [EventEnvelope],
}

impl<'a> Projected<'a> {
    /// A journaled command and its events.
    pub fn of(command: &'a CommandEnvelope, events: &'a [EventEnvelope]) -> Self {
        Projected { seq: command.seq, ts: command.ts, command: Some((&command.cmd, command.meta.as_deref())), events }
    }
}

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

/// Changes of an order that existed before the batch.
#[derive(Clone, Debug, Default)]
struct Delta {
    status: Option<OrderStatus>,
    filled: Option<i64>,
    quote_add: i64,
    fee_add: i64,
    /// `Some(p)`: the price became `p` (an amend).
    price: Option<Option<i64>>,
    qty: Option<i64>,
    triggered: bool,
    cancel_reason: Option<CancelReason>,
    updated_ts: i64,
    cmd_seq: i64,
}

/// An order touched by the batch.
#[derive(Clone, Debug)]
enum Touched {
    /// Placed in this batch: the whole row, kept current.
    New(Box<OrderView>),
    /// Placed earlier: what changes.
    Old(Delta),
}

/// A public trade to insert.
#[derive(Clone, Debug)]
struct TradeOut {
    trade_id: i64,
    symbol: i32,
    price: i64,
    qty: i64,
    taker_side: &'static str,
    ts: i64,
    seq: i64,
}

/// An idempotency answer to insert.
#[derive(Clone, Debug)]
struct IdempotencyOut {
    user: i64,
    key: String,
    request_hash: Option<String>,
    order: i64,
    status: i32,
    body: String,
    ts: i64,
    seq: i64,
    /// The answer itself, handed to [`Projector::take_place_answers`] when it is the one
    /// stored under its key.
    response: PlaceResponse,
}

/// What a batch writes, folded in memory.
#[derive(Debug, Default)]
struct Scratch {
    orders: BTreeMap<u64, Touched>,
    trades: Vec<TradeOut>,
    executions: Vec<ExecutionRow>,
    balances: BTreeMap<(u64, u16), (i64, i64, i64)>,
    positions: BTreeMap<(u64, u16), (i64, i128, i128, i64)>,
    candles: BTreeMap<(u16, u32, i64), CandleAcc>,
    /// At most one per `(user, key)` (see [`Scratch::keep_answer`]).
    idempotency: Vec<IdempotencyOut>,
    /// Index in `idempotency` of each `(user, key)`.
    idempotency_at: HashMap<(i64, String), usize>,
    /// Quote and fee totals of the current command's trades waiting for `OrderFilled`.
    pending_fills: Vec<(OrderId, i64, i64)>,
}

impl Scratch {
    /// Keeps `answer` as the batch's answer for its key unless the batch already has a
    /// live one (a later place with a key replaces an earlier one only once that one has
    /// expired, the same rule as against the table). One row per key also keeps the
    /// upsert from touching a row twice. Only a batch spanning 24 h (a long replay) has
    /// an earlier answer replaced here; that place's answer is then not handed over.
    fn keep_answer(&mut self, answer: IdempotencyOut) {
        match self.idempotency_at.entry((answer.user, answer.key.clone())) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(self.idempotency.len());
                self.idempotency.push(answer);
            }
            std::collections::hash_map::Entry::Occupied(slot) => {
                let kept = &mut self.idempotency[*slot.get()];
                if expired_at(kept.ts, answer.ts) {
                    *kept = answer;
                }
            }
        }
    }

    /// Applies `f` to a new order's row or `g` to an older order's delta; `ts` and `seq`
    /// become the order's last change.
    fn touch(&mut self, id: OrderId, ts: i64, seq: i64, f: impl FnOnce(&mut OrderView), g: impl FnOnce(&mut Delta)) {
        match self.orders.entry(id.0).or_insert_with(|| Touched::Old(Delta::default())) {
            Touched::New(v) => {
                f(v);
                v.updated_ts = ts;
                v.cmd_seq = u64::try_from(seq).unwrap_or_default();
            }
            Touched::Old(d) => {
                g(d);
                d.updated_ts = ts;
                d.cmd_seq = seq;
            }
        }
    }
}

/// Writes the read model from one or more sources.
#[derive(Debug)]
pub struct Projector {
    pool: Pool,
    specs: HashMap<SymbolId, SymbolSpec>,
    /// The answers of the last batch's keyed places that were stored under their key.
    answers: Vec<PlaceAnswer>,
    /// The orders of the last batch's cancels and amends, after the batch.
    changed: Vec<ChangedOrder>,
}

/// An order a cancel or amend of the batch named, with its fills, as the read model has
/// them once the batch is written.
#[derive(Clone, Debug)]
pub struct ChangedOrder {
    /// Sequence number of the cancel or amend.
    pub seq: u64,
    pub order: OrderView,
    pub fills: Vec<ExecutionRow>,
}

impl Projector {
    pub(crate) fn new(pool: Pool) -> Self {
        Projector { pool, specs: HashMap::new(), answers: Vec::new(), changed: Vec::new() }
    }

    /// The orders the cancels and amends of the last [`Projector::project`]ed batch named
    /// (whether or not the engine carried them out), with their fills, as the read model
    /// holds them after the batch (read in its transaction), in batch order; the caller
    /// answers those commands with them instead of reading them back. Commands the batch
    /// skipped (at or below the high-water mark) have none.
    pub fn take_changed_orders(&mut self) -> Vec<ChangedOrder> {
        std::mem::take(&mut self.changed)
    }

    /// The answers of the keyed places of the last [`Projector::project`]ed batch, exactly
    /// as stored under their `Idempotency-Key` (so the first answer and every replay are
    /// the same), in batch order. A place whose key already had an answer (stored by an
    /// earlier command) or that the batch skipped (at or below the high-water mark) has
    /// none here: its answer is the stored one, for the caller to read.
    pub fn take_place_answers(&mut self) -> Vec<PlaceAnswer> {
        std::mem::take(&mut self.answers)
    }

    /// Projects a batch of `source`'s applied commands in one transaction, skipping those
    /// at or below the source's high-water mark. Returns how many commands it applied.
    pub async fn project(&mut self, source: &str, batch: &[Projected<'_>]) -> Result<usize, StoreError> {
        self.answers.clear();
        self.changed.clear();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let rows = run_pipelined(
            &tx,
            &[
                Stmt::new(
                    "INSERT INTO projector_offsets (source, last_seq) VALUES ($1, 0) ON CONFLICT (source) DO NOTHING",
                    vec![Box::new(source)],
                ),
                Stmt::new(
                    "SELECT last_seq FROM projector_offsets WHERE source = $1 FOR UPDATE",
                    vec![Box::new(source)],
                ),
            ],
        )
        .await?;
        let row = rows
            .get(1)
            .and_then(|r| r.first())
            .ok_or_else(|| StoreError::Corrupt(format!("no projector_offsets row for {source}")))?;
        let start: i64 = row.try_get(0)?;
        let mut last = start;
        let mut scratch = Scratch::default();
        let mut applied = 0;
        // (seq, order) of the cancels and amends projected.
        let mut named: Vec<(u64, OrderId)> = Vec::new();
        let result = async {
            for p in batch {
                let seq = to_sql(p.seq)?;
                if seq <= last {
                    continue;
                }
                project_command(&tx, &mut self.specs, &mut scratch, p).await?;
                if let Some((Command::Cancel { order_id, .. } | Command::Amend { order_id, .. }, _)) = p.command {
                    named.push((p.seq, *order_id));
                }
                last = seq;
                applied += 1;
            }
            let stored = flush(&tx, &scratch, (last != start).then_some((source, last))).await?;
            let changed = if named.is_empty() { Vec::new() } else { read_changed(&tx, &named).await? };
            Ok::<_, StoreError>((stored, changed))
        }
        .await;
        let (stored, changed) = match result {
            Ok(r) => r,
            Err(e) => {
                // A spec cached from a command of the failed batch may not be in the table.
                self.specs.clear();
                return Err(e);
            }
        };
        tx.commit().await?;
        self.changed = changed;
        if !stored.is_empty() {
            let stored: std::collections::HashSet<i64> = stored.into_iter().collect();
            self.answers = scratch
                .idempotency
                .into_iter()
                .filter(|i| stored.contains(&i.seq))
                .map(|i| PlaceAnswer {
                    seq: u64::try_from(i.seq).unwrap_or_default(),
                    http_status: u16::try_from(i.status).unwrap_or(500),
                    response: i.response,
                })
                .collect();
        }
        Ok(applied)
    }

    /// The high-water mark of `source`, 0 when it never projected.
    pub async fn projected_seq(&self, source: &str) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        let row = client.query_opt("SELECT last_seq FROM projector_offsets WHERE source = $1", &[&source]).await?;
        row.map_or(Ok(0), |r| crate::from_sql(r.try_get(0)?))
    }

    /// Every source's high-water mark, to seed a consumer's de-duplication at start.
    pub async fn offsets(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT source, last_seq FROM projector_offsets ORDER BY source", &[]).await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, crate::from_sql(r.try_get(1)?)?))).collect()
    }

    /// Deletes idempotency rows created before `ts` (ns since the epoch).
    pub async fn purge_idempotency_before(&self, ts: i64) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        Ok(client.execute("DELETE FROM idempotency WHERE created_ts < $1", &[&ts]).await?)
    }

    /// Deletes at most `limit` idempotency rows expired at `now_ts` (ns since the epoch:
    /// created [`IDEMPOTENCY_TTL_NS`] or more before it, the rows no reader returns any
    /// more), oldest first; returns how many. One short statement, so the caller bounds
    /// how long it holds locks and loops until fewer than `limit` went.
    pub async fn purge_idempotency_expired(&self, now_ts: i64, limit: i64) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        let before = now_ts.saturating_sub(IDEMPOTENCY_TTL_NS);
        // The outer `created_ts` condition is checked again on a row a projector replaced
        // meanwhile (PostgreSQL re-evaluates it on the newest version), so a key reused
        // since the inner scan (now live) is never deleted.
        Ok(client
            .execute(
                "DELETE FROM idempotency WHERE created_ts <= $1 AND (user_id, key) IN \
                 (SELECT user_id, key FROM idempotency WHERE created_ts <= $1 ORDER BY created_ts LIMIT $2)",
                &[&before, &limit.max(0)],
            )
            .await?)
    }

    async fn spec<'a>(
        specs: &'a mut HashMap<SymbolId, SymbolSpec>,
        tx: &Transaction<'_>,
        id: SymbolId,
    ) -> Result<&'a SymbolSpec, StoreError> {
        if let std::collections::hash_map::Entry::Vacant(slot) = specs.entry(id) {
            let row = tx
                .query_opt("SELECT spec::TEXT FROM symbols WHERE symbol_id = $1", &[&i32::from(id.0)])
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("trade on unknown symbol {}", id.0)))?;
            let json: String = row.try_get(0)?;
            slot.insert(serde_json::from_str(&json)?);
        }
        specs.get(&id).ok_or_else(|| StoreError::Corrupt(format!("symbol {} not cached", id.0)))
    }
}

fn new_view(o: &NewOrder, status: OrderStatus, reject: Option<RejectReason>, ts: i64, seq: i64) -> OrderView {
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
        cmd_seq: u64::try_from(seq).unwrap_or_default(),
    }
}

/// Records a new order unless the batch already knows that id (an id that exists before
/// the batch is left alone by the insert's ON CONFLICT, as in the SQLite projector).
fn insert_order(scratch: &mut Scratch, view: OrderView) {
    scratch.orders.entry(view.order_id.0).or_insert_with(|| Touched::New(Box::new(view)));
}

async fn project_command(
    tx: &Transaction<'_>,
    specs: &mut HashMap<SymbolId, SymbolSpec>,
    scratch: &mut Scratch,
    p: &Projected<'_>,
) -> Result<(), StoreError> {
    let (command, meta) = match p.command {
        Some((command, meta)) => (Some(command), meta),
        None => (None, None),
    };
    let ts = p.ts;
    let seq = to_sql(p.seq)?;
    // A place the events neither accept nor refuse went on to a matching shard (split
    // engine): its answer is that shard's to store.
    let mut accepted_place = false;
    scratch.pending_fills.clear();
    let first_execution = scratch.executions.len();
    let mut rejected_place: Option<RejectReason> = None;
    for env in p.events {
        match &env.event {
            Event::AssetAdded { asset, code, scale } => {
                let scale = i32::try_from(*scale).map_err(|_| StoreError::Corrupt(format!("scale {scale}")))?;
                tx.execute(
                    "INSERT INTO assets (asset_id, code, scale) VALUES ($1, $2, $3) \
                     ON CONFLICT (asset_id) DO UPDATE SET code = excluded.code, scale = excluded.scale",
                    &[&i32::from(asset.0), code, &scale],
                )
                .await?;
            }
            Event::SymbolAdded { symbol } => {
                let Some(Command::AddSymbol(spec)) = command else {
                    return Err(StoreError::Corrupt(format!("SymbolAdded {} without AddSymbol", symbol.0)));
                };
                tx.execute(
                    "INSERT INTO symbols (symbol_id, name, spec) VALUES ($1, $2, $3::TEXT::JSONB) \
                     ON CONFLICT (symbol_id) DO UPDATE SET name = excluded.name, spec = excluded.spec",
                    &[&i32::from(symbol.0), &spec.name, &serde_json::to_string(spec)?],
                )
                .await?;
                specs.insert(*symbol, spec.clone());
            }
            Event::UserCreated { user } => {
                let name = meta.and_then(|m| m.user_name.as_deref());
                let hash = meta.and_then(|m| m.api_key_hash.as_deref());
                tx.execute(
                    "INSERT INTO users (user_id, name, api_key_hash, created_ts, cmd_seq) \
                     SELECT $1, \
                       CASE WHEN EXISTS (SELECT 1 FROM users WHERE name = $2::TEXT) THEN NULL ELSE $2::TEXT END, \
                       CASE WHEN EXISTS (SELECT 1 FROM users WHERE api_key_hash = $3::TEXT) THEN NULL ELSE $3::TEXT END, \
                       $4, $5 \
                     ON CONFLICT (user_id) DO NOTHING",
                    &[&to_sql(user.0)?, &name, &hash, &ts, &seq],
                )
                .await?;
            }
            Event::BalanceChanged { user, asset, available, reserved } => {
                scratch.balances.insert((user.0, asset.0), (available.0, reserved.0, ts));
            }
            Event::PositionChanged { user, symbol, qty, cost, realized } => {
                scratch.positions.insert((user.0, symbol.0), (*qty, *cost, *realized, ts));
            }
            Event::OrderAccepted { order } => {
                if let Some(Command::Place(o)) = command {
                    accepted_place |= o.order_id == order.order_id;
                }
                insert_order(scratch, new_view(order, OrderStatus::Accepted, None, ts, seq))
            }
            Event::OrderRejected { order_id, reason, .. } => {
                if let Some(Command::Place(o)) = command {
                    if o.order_id == *order_id {
                        rejected_place = Some(*reason);
                        // Written at once and kept out of the batch's map: with
                        // DUPLICATE_ORDER_ID the id belongs to a live order whose later
                        // changes in this batch must not land on the refused one. An id
                        // the batch already knows, or that the table has, is left alone.
                        if !scratch.orders.contains_key(&order_id.0) {
                            let view = new_view(o, OrderStatus::Rejected, Some(*reason), ts, seq);
                            let mut out = Vec::new();
                            write_orders(&mut out, &[&view])?;
                            run_pipelined(tx, &out).await?;
                        }
                    }
                }
            }
            Event::OrderTriggered { order_id, .. } => {
                scratch.touch(*order_id, ts, seq, |v| v.triggered = true, |d| d.triggered = true);
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
                let spec = Projector::spec(specs, tx, *symbol).await?;
                let notional = i64::try_from(spec.notional(*price, *qty))
                    .map_err(|_| StoreError::Corrupt(format!("notional of trade {} overflows i64", trade_id.0)))?;
                let tid = to_sql(trade_id.0)?;
                scratch.trades.push(TradeOut {
                    trade_id: tid,
                    symbol: i32::from(symbol.0),
                    price: price.0,
                    qty: qty.0,
                    taker_side: taker_side.as_str(),
                    ts,
                    seq,
                });
                for (order, user, side, fee, is_maker) in [
                    (maker_order, maker_user, taker_side.opposite(), maker_fee, true),
                    (taker_order, taker_user, *taker_side, taker_fee, false),
                ] {
                    scratch.executions.push(ExecutionRow {
                        execution_id: tid * 2 + i64::from(!is_maker),
                        trade_id: *trade_id,
                        order_id: *order,
                        user_id: *user,
                        symbol_id: *symbol,
                        side,
                        price: price.0,
                        qty: qty.0,
                        quote_qty: notional,
                        fee: fee.0,
                        is_maker,
                        ts,
                        cmd_seq: p.seq,
                    });
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
                let (filled, status) = (filled.0, *status);
                scratch.touch(
                    *order_id,
                    ts,
                    seq,
                    |v| {
                        v.filled = filled;
                        v.status = status;
                        v.quote_filled += quote;
                        v.fees += fee;
                    },
                    |d| {
                        d.filled = Some(filled);
                        d.status = Some(status);
                        d.quote_add += quote;
                        d.fee_add += fee;
                    },
                );
            }
            Event::OrderSettled { order_id, .. } => set_status(scratch, *order_id, OrderStatus::Settled, ts, seq),
            Event::OrderCancelled { order_id, reason, .. } => {
                let reason = *reason;
                scratch.touch(
                    *order_id,
                    ts,
                    seq,
                    |v| {
                        v.status = OrderStatus::Cancelled;
                        v.cancel_reason = Some(reason);
                    },
                    |d| {
                        d.status = Some(OrderStatus::Cancelled);
                        d.cancel_reason = Some(reason);
                    },
                );
            }
            Event::OrderExpired { order_id, .. } => set_status(scratch, *order_id, OrderStatus::Expired, ts, seq),
            Event::OrderAmended { order_id, price, qty, .. } => {
                let (price, qty) = (price.map(|p| p.0), qty.0);
                scratch.touch(
                    *order_id,
                    ts,
                    seq,
                    |v| {
                        v.price = price;
                        v.qty = qty;
                    },
                    |d| {
                        d.price = Some(price);
                        d.qty = Some(qty);
                    },
                );
            }
            Event::CommandRejected { .. }
            | Event::BookChanged { .. }
            | Event::LimitsChanged { .. }
            | Event::KillSwitchChanged { .. } => {}
        }
    }
    // Fills whose OrderFilled never came (the engine always sends one; this keeps the
    // totals right even if that ever changes).
    for (order_id, quote, fee) in std::mem::take(&mut scratch.pending_fills) {
        scratch.touch(
            order_id,
            ts,
            seq,
            |v| {
                v.quote_filled += quote;
                v.fees += fee;
            },
            |d| {
                d.quote_add += quote;
                d.fee_add += fee;
            },
        );
    }
    if let Some(Command::Place(o)) = command.filter(|_| accepted_place || rejected_place.is_some()) {
        if let Some(key) = meta.and_then(|m| m.idempotency_key.as_deref()) {
            let request_hash = meta.and_then(|m| m.request_hash.clone());
            let response = match rejected_place {
                // Built from the command: with DUPLICATE_ORDER_ID the row under that id is
                // another order, not this request's.
                Some(reason) => {
                    PlaceResponse { order: new_view(o, OrderStatus::Rejected, Some(reason), ts, seq), fills: vec![] }
                }
                None => match scratch.orders.get(&o.order_id.0) {
                    Some(Touched::New(view)) => PlaceResponse {
                        order: (**view).clone(),
                        fills: scratch.executions[first_execution..]
                            .iter()
                            .filter(|e| e.order_id == o.order_id)
                            .cloned()
                            .collect(),
                    },
                    _ => return Err(StoreError::Corrupt(format!("placed order {} has no row", o.order_id.0))),
                },
            };
            let status = i32::from(rejected_place.map_or(201, reject_http_status));
            scratch.keep_answer(IdempotencyOut {
                user: to_sql(o.user.0)?,
                key: key.to_string(),
                request_hash,
                order: to_sql(o.order_id.0)?,
                status,
                body: serde_json::to_string(&response)?,
                ts,
                seq,
                response,
            });
        }
    }
    Ok(())
}

fn set_status(scratch: &mut Scratch, id: OrderId, status: OrderStatus, ts: i64, seq: i64) {
    scratch.touch(id, ts, seq, |v| v.status = status, |d| d.status = Some(status));
}

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

/// Whether an idempotency answer created at `created_ts` has expired at `at` (both ns
/// since the epoch): the complement of the readers' "younger than 24 h" (`created_ts >
/// at - TTL`), so a key is either answered from the table or free to store anew.
fn expired_at(created_ts: i64, at: i64) -> bool {
    created_ts <= at.saturating_sub(IDEMPOTENCY_TTL_NS)
}

fn reason_name<T: serde::Serialize>(r: Option<&T>) -> Option<String> {
    r.map(variant_name)
}

/// The orders `named` (seq of the command, order id) and their fills, as the transaction
/// sees them: two queries sent together (pipelined on the connection).
async fn read_changed(tx: &Transaction<'_>, named: &[(u64, OrderId)]) -> Result<Vec<ChangedOrder>, StoreError> {
    let mut ids: Vec<i64> = named.iter().map(|(_, id)| to_sql(id.0)).collect::<Result<_, _>>()?;
    ids.sort_unstable();
    ids.dedup();
    let orders_sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = ANY($1)");
    let fills_sql =
        format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE order_id = ANY($1) ORDER BY execution_id");
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&ids];
    let (orders, fills) = tokio::try_join!(tx.query(&orders_sql, &params), tx.query(&fills_sql, &params))?;
    let mut by_id: HashMap<u64, (OrderView, Vec<ExecutionRow>)> = HashMap::with_capacity(orders.len());
    for r in &orders {
        let view = order_from_row(r)?;
        by_id.insert(view.order_id.0, (view, Vec::new()));
    }
    for r in &fills {
        let fill = execution_from_row(r)?;
        if let Some((_, f)) = by_id.get_mut(&fill.order_id.0) {
            f.push(fill);
        }
    }
    Ok(named
        .iter()
        .filter_map(|(seq, id)| {
            by_id.get(&id.0).map(|(order, fills)| ChangedOrder {
                seq: *seq,
                order: order.clone(),
                fills: fills.clone(),
            })
        })
        .collect())
}

/// Writes what the batch folded, one statement per table. Returns the command sequence
/// numbers whose idempotency answer was stored (the first of its key).
async fn flush(tx: &Transaction<'_>, s: &Scratch, offset: Option<(&str, i64)>) -> Result<Vec<i64>, StoreError> {
    let mut out: Vec<Stmt<'_>> = Vec::new();
    flush_orders(&mut out, s)?;
    if !s.trades.is_empty() {
        let t = &s.trades;
        let id: Vec<i64> = t.iter().map(|x| x.trade_id).collect();
        let symbol: Vec<i32> = t.iter().map(|x| x.symbol).collect();
        let price: Vec<i64> = t.iter().map(|x| x.price).collect();
        let qty: Vec<i64> = t.iter().map(|x| x.qty).collect();
        let side: Vec<&str> = t.iter().map(|x| x.taker_side).collect();
        let ts: Vec<i64> = t.iter().map(|x| x.ts).collect();
        let seq: Vec<i64> = t.iter().map(|x| x.seq).collect();
        out.push(Stmt::new(
            "INSERT INTO trades (trade_id, symbol_id, price, qty, taker_side, ts, cmd_seq) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::INTEGER[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[], $6::BIGINT[], $7::BIGINT[]) \
             ON CONFLICT (trade_id) DO NOTHING",
            vec![Box::new(id), Box::new(symbol), Box::new(price), Box::new(qty), Box::new(side), Box::new(ts), Box::new(seq)],
        ));
    }
    if !s.executions.is_empty() {
        let e = &s.executions;
        let ids: Vec<i64> = e.iter().map(|x| x.execution_id).collect();
        let trade: Vec<i64> = e.iter().map(|x| to_sql(x.trade_id.0)).collect::<Result<_, _>>()?;
        let order: Vec<i64> = e.iter().map(|x| to_sql(x.order_id.0)).collect::<Result<_, _>>()?;
        let user: Vec<i64> = e.iter().map(|x| to_sql(x.user_id.0)).collect::<Result<_, _>>()?;
        let symbol: Vec<i32> = e.iter().map(|x| i32::from(x.symbol_id.0)).collect();
        let side: Vec<&str> = e.iter().map(|x| x.side.as_str()).collect();
        let price: Vec<i64> = e.iter().map(|x| x.price).collect();
        let qty: Vec<i64> = e.iter().map(|x| x.qty).collect();
        let quote: Vec<i64> = e.iter().map(|x| x.quote_qty).collect();
        let fee: Vec<i64> = e.iter().map(|x| x.fee).collect();
        let maker: Vec<bool> = e.iter().map(|x| x.is_maker).collect();
        let ts: Vec<i64> = e.iter().map(|x| x.ts).collect();
        let seq: Vec<i64> = e.iter().map(|x| to_sql(x.cmd_seq)).collect::<Result<_, _>>()?;
        out.push(Stmt::new(
            "INSERT INTO executions (execution_id, trade_id, order_id, user_id, symbol_id, side, price, qty, quote_qty, \
             fee, is_maker, ts, cmd_seq) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::INTEGER[], $6::TEXT[], \
             $7::BIGINT[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[], $11::BOOLEAN[], $12::BIGINT[], $13::BIGINT[]) \
             ON CONFLICT (execution_id) DO NOTHING",
            vec![Box::new(ids), Box::new(trade), Box::new(order), Box::new(user), Box::new(symbol), Box::new(side), Box::new(price), Box::new(qty), Box::new(quote), Box::new(fee), Box::new(maker), Box::new(ts), Box::new(seq)],
        ));
    }
    if !s.balances.is_empty() {
        let b = &s.balances;
        let user: Vec<i64> = b.keys().map(|k| to_sql(k.0)).collect::<Result<_, _>>()?;
        let asset: Vec<i32> = b.keys().map(|k| i32::from(k.1)).collect();
        let available: Vec<i64> = b.values().map(|v| v.0).collect();
        let reserved: Vec<i64> = b.values().map(|v| v.1).collect();
        let ts: Vec<i64> = b.values().map(|v| v.2).collect();
        out.push(Stmt::new(
            "INSERT INTO balances (user_id, asset_id, available, reserved, updated_ts) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::INTEGER[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[]) \
             ON CONFLICT (user_id, asset_id) DO UPDATE SET available = excluded.available, \
             reserved = excluded.reserved, updated_ts = excluded.updated_ts",
            vec![Box::new(user), Box::new(asset), Box::new(available), Box::new(reserved), Box::new(ts)],
        ));
    }
    if !s.positions.is_empty() {
        let p = &s.positions;
        let user: Vec<i64> = p.keys().map(|k| to_sql(k.0)).collect::<Result<_, _>>()?;
        let symbol: Vec<i32> = p.keys().map(|k| i32::from(k.1)).collect();
        let qty: Vec<i64> = p.values().map(|v| v.0).collect();
        let cost: Vec<String> = p.values().map(|v| v.1.to_string()).collect();
        let realized: Vec<String> = p.values().map(|v| v.2.to_string()).collect();
        let ts: Vec<i64> = p.values().map(|v| v.3).collect();
        out.push(Stmt::new(
            "INSERT INTO positions (user_id, symbol_id, qty, cost, realized, updated_ts) \
             SELECT u, s, q, c::NUMERIC, r::NUMERIC, t \
             FROM UNNEST($1::BIGINT[], $2::INTEGER[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[]) AS x(u, s, q, c, r, t) \
             ON CONFLICT (user_id, symbol_id) DO UPDATE SET qty = excluded.qty, cost = excluded.cost, \
             realized = excluded.realized, updated_ts = excluded.updated_ts",
            vec![Box::new(user), Box::new(symbol), Box::new(qty), Box::new(cost), Box::new(realized), Box::new(ts)],
        ));
    }
    if !s.candles.is_empty() {
        let mut cols: (Vec<i32>, Vec<i32>, Vec<i64>, [Vec<i64>; 7]) = Default::default();
        for (&(symbol, interval, open_time), c) in &s.candles {
            cols.0.push(i32::from(symbol));
            cols.1.push(i32::try_from(interval).map_err(|_| StoreError::Corrupt(format!("interval {interval}")))?);
            cols.2.push(open_time);
            for (v, x) in cols.3.iter_mut().zip([c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades]) {
                v.push(x);
            }
        }
        let [open, high, low, close, volume, quote_volume, trades] = cols.3;
        out.push(Stmt::new(
            "INSERT INTO candles (symbol_id, interval_s, open_time, open, high, low, close, volume, quote_volume, trades) \
             SELECT * FROM UNNEST($1::INTEGER[], $2::INTEGER[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[], \
             $7::BIGINT[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[]) \
             ON CONFLICT (symbol_id, interval_s, open_time) DO UPDATE SET \
             high = GREATEST(candles.high, excluded.high), low = LEAST(candles.low, excluded.low), \
             close = excluded.close, volume = candles.volume + excluded.volume, \
             quote_volume = candles.quote_volume + excluded.quote_volume, trades = candles.trades + excluded.trades",
            vec![Box::new(cols.0), Box::new(cols.1), Box::new(cols.2), Box::new(open), Box::new(high), Box::new(low), Box::new(close), Box::new(volume), Box::new(quote_volume), Box::new(trades)],
        ));
    }
    let mut idempotency = None;
    if !s.idempotency.is_empty() {
        let i = &s.idempotency;
        let user: Vec<i64> = i.iter().map(|x| x.user).collect();
        let key: Vec<&str> = i.iter().map(|x| x.key.as_str()).collect();
        let hash: Vec<Option<&str>> = i.iter().map(|x| x.request_hash.as_deref()).collect();
        let order: Vec<i64> = i.iter().map(|x| x.order).collect();
        let status: Vec<i32> = i.iter().map(|x| x.status).collect();
        let body: Vec<&str> = i.iter().map(|x| x.body.as_str()).collect();
        let ts: Vec<i64> = i.iter().map(|x| x.ts).collect();
        let seq: Vec<i64> = i.iter().map(|x| x.seq).collect();
        // One row per key (the batch kept its answer per key, `Scratch::keep_answer`;
        // DISTINCT ON only guards the upsert, which may not touch a row twice). Across
        // batches a stored answer stays while it is live at the new place's time and is
        // replaced once it has expired (the same `>` 24 h boundary as the readers').
        // RETURNING lists only the rows inserted or replaced: the answers that are the
        // stored ones.
        idempotency = Some(out.len());
        out.push(Stmt::new(
            "INSERT INTO idempotency (user_id, key, request_hash, order_id, http_status, body, created_ts, cmd_seq) \
             SELECT DISTINCT ON (u, k) u, k, h, o, st, b, t, q \
             FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::INTEGER[], $6::TEXT[], $7::BIGINT[], \
             $8::BIGINT[]) WITH ORDINALITY AS x(u, k, h, o, st, b, t, q, n) ORDER BY u, k, n \
             ON CONFLICT (user_id, key) DO UPDATE SET request_hash = excluded.request_hash, \
             order_id = excluded.order_id, http_status = excluded.http_status, body = excluded.body, \
             created_ts = excluded.created_ts, cmd_seq = excluded.cmd_seq \
             WHERE idempotency.created_ts <= excluded.created_ts - $9 RETURNING cmd_seq",
            vec![
                Box::new(user),
                Box::new(key),
                Box::new(hash),
                Box::new(order),
                Box::new(status),
                Box::new(body),
                Box::new(ts),
                Box::new(seq),
                Box::new(IDEMPOTENCY_TTL_NS),
            ],
        ));
    }
    if let Some((source, last)) = offset {
        out.push(Stmt::new(
            "UPDATE projector_offsets SET last_seq = $2, updated_at = now() WHERE source = $1",
            vec![Box::new(source), Box::new(last)],
        ));
    }
    let rows = run_pipelined(tx, &out).await?;
    match idempotency {
        Some(i) => Ok(rows[i].iter().map(|r| r.try_get::<_, i64>(0)).collect::<Result<_, _>>()?),
        None => Ok(Vec::new()),
    }
}

/// One statement of a batch's flush with its parameters.
struct Stmt<'a> {
    sql: &'static str,
    params: Vec<Box<dyn ToSql + Sync + Send + 'a>>,
}

impl<'a> Stmt<'a> {
    fn new(sql: &'static str, params: Vec<Box<dyn ToSql + Sync + Send + 'a>>) -> Self {
        Stmt { sql, params }
    }
}

/// Runs `stmts` in the transaction, pipelined: each prepared once per connection (cached),
/// then all sent at once, in order, and their results awaited together, so a batch costs
/// one round trip instead of two per statement. Returns each statement's rows.
async fn run_pipelined(tx: &Transaction<'_>, stmts: &[Stmt<'_>]) -> Result<Vec<Vec<tokio_postgres::Row>>, StoreError> {
    if stmts.is_empty() {
        return Ok(Vec::new());
    }
    let prepared = try_join_all(stmts.iter().map(|s| tx.prepare_cached(s.sql))).await?;
    let params: Vec<Vec<&(dyn ToSql + Sync)>> =
        stmts.iter().map(|s| s.params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()).collect();
    // try_join_all polls the queries in order the first time (it does for up to 30
    // futures; a flush has at most 10 statements), and a query is sent on its first poll:
    // the server runs them in this order.
    debug_assert!(stmts.len() <= 30);
    Ok(try_join_all(prepared.iter().zip(&params).map(|(st, p)| tx.query(st, p))).await?)
}

/// New orders as whole rows (one INSERT), older orders as deltas (one UPDATE).
fn flush_orders<'a>(out: &mut Vec<Stmt<'a>>, s: &'a Scratch) -> Result<(), StoreError> {
    let new: Vec<&OrderView> = s
        .orders
        .values()
        .filter_map(|t| match t {
            Touched::New(v) => Some(&**v),
            Touched::Old(_) => None,
        })
        .collect();
    write_orders(out, &new)?;
    let old: Vec<(u64, &Delta)> = s
        .orders
        .iter()
        .filter_map(|(id, t)| match t {
            Touched::Old(d) => Some((*id, d)),
            Touched::New(_) => None,
        })
        .collect();
    if !old.is_empty() {
        let id: Vec<i64> = old.iter().map(|(id, _)| to_sql(*id)).collect::<Result<_, _>>()?;
        let status: Vec<Option<&str>> = old.iter().map(|(_, d)| d.status.map(|s| s.as_str())).collect();
        let filled: Vec<Option<i64>> = old.iter().map(|(_, d)| d.filled).collect();
        let quote: Vec<i64> = old.iter().map(|(_, d)| d.quote_add).collect();
        let fee: Vec<i64> = old.iter().map(|(_, d)| d.fee_add).collect();
        let set_price: Vec<bool> = old.iter().map(|(_, d)| d.price.is_some()).collect();
        let price: Vec<Option<i64>> = old.iter().map(|(_, d)| d.price.flatten()).collect();
        let qty: Vec<Option<i64>> = old.iter().map(|(_, d)| d.qty).collect();
        let triggered: Vec<bool> = old.iter().map(|(_, d)| d.triggered).collect();
        let cancel: Vec<Option<String>> = old.iter().map(|(_, d)| reason_name(d.cancel_reason.as_ref())).collect();
        let updated: Vec<i64> = old.iter().map(|(_, d)| d.updated_ts).collect();
        let seq: Vec<i64> = old.iter().map(|(_, d)| d.cmd_seq).collect();
        out.push(Stmt::new(
            "UPDATE orders o SET status = COALESCE(d.status, o.status), filled = COALESCE(d.filled, o.filled), \
             quote_filled = o.quote_filled + d.quote, fees = o.fees + d.fee, \
             price = CASE WHEN d.set_price THEN d.price ELSE o.price END, qty = COALESCE(d.qty, o.qty), \
             triggered = o.triggered OR d.triggered, cancel_reason = COALESCE(d.cancel, o.cancel_reason), \
             updated_ts = d.updated, cmd_seq = d.seq \
             FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::BOOLEAN[], \
             $7::BIGINT[], $8::BIGINT[], $9::BOOLEAN[], $10::TEXT[], $11::BIGINT[], $12::BIGINT[]) \
             AS d(id, status, filled, quote, fee, set_price, price, qty, triggered, cancel, updated, seq) \
             WHERE o.order_id = d.id",
            vec![
                Box::new(id),
                Box::new(status),
                Box::new(filled),
                Box::new(quote),
                Box::new(fee),
                Box::new(set_price),
                Box::new(price),
                Box::new(qty),
                Box::new(triggered),
                Box::new(cancel),
                Box::new(updated),
                Box::new(seq),
            ],
        ));
    }
    Ok(())
}

/// Inserts whole order rows (one statement); an id already in the table is left alone.
fn write_orders<'a>(out: &mut Vec<Stmt<'a>>, new: &[&'a OrderView]) -> Result<(), StoreError> {
    if new.is_empty() {
        return Ok(());
    }
    let id: Vec<i64> = new.iter().map(|o| to_sql(o.order_id.0)).collect::<Result<_, _>>()?;
    let user: Vec<i64> = new.iter().map(|o| to_sql(o.user_id.0)).collect::<Result<_, _>>()?;
    let symbol: Vec<i32> = new.iter().map(|o| i32::from(o.symbol_id.0)).collect();
    let coid: Vec<Option<&str>> = new.iter().map(|o| o.client_order_id.as_deref()).collect();
    let side: Vec<&str> = new.iter().map(|o| o.side.as_str()).collect();
    let kind: Vec<&str> = new.iter().map(|o| o.order_type.as_str()).collect();
    let tif: Vec<&str> = new.iter().map(|o| o.tif.as_str()).collect();
    let price: Vec<Option<i64>> = new.iter().map(|o| o.price).collect();
    let stop: Vec<Option<i64>> = new.iter().map(|o| o.stop_price).collect();
    let qty: Vec<i64> = new.iter().map(|o| o.qty).collect();
    let filled: Vec<i64> = new.iter().map(|o| o.filled).collect();
    let quote: Vec<i64> = new.iter().map(|o| o.quote_filled).collect();
    let fees: Vec<i64> = new.iter().map(|o| o.fees).collect();
    let status: Vec<&str> = new.iter().map(|o| o.status.as_str()).collect();
    let post_only: Vec<bool> = new.iter().map(|o| o.post_only).collect();
    let stp: Vec<&str> = new.iter().map(|o| o.stp.as_str()).collect();
    let triggered: Vec<bool> = new.iter().map(|o| o.triggered).collect();
    let reject: Vec<Option<String>> = new.iter().map(|o| reason_name(o.reject_reason.as_ref())).collect();
    let cancel: Vec<Option<String>> = new.iter().map(|o| reason_name(o.cancel_reason.as_ref())).collect();
    let created: Vec<i64> = new.iter().map(|o| o.created_ts).collect();
    let updated: Vec<i64> = new.iter().map(|o| o.updated_ts).collect();
    let seq: Vec<i64> = new.iter().map(|o| to_sql(o.cmd_seq)).collect::<Result<_, _>>()?;
    out.push(Stmt::new(
        "INSERT INTO orders (order_id, user_id, symbol_id, client_order_id, side, type, tif, price, stop_price, qty, \
         filled, quote_filled, fees, status, post_only, stp, triggered, reject_reason, cancel_reason, created_ts, \
         updated_ts, cmd_seq) \
         SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::INTEGER[], $4::TEXT[], $5::TEXT[], $6::TEXT[], \
         $7::TEXT[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[], $11::BIGINT[], $12::BIGINT[], $13::BIGINT[], \
         $14::TEXT[], $15::BOOLEAN[], $16::TEXT[], $17::BOOLEAN[], $18::TEXT[], $19::TEXT[], $20::BIGINT[], \
         $21::BIGINT[], $22::BIGINT[]) \
         ON CONFLICT (order_id) DO NOTHING",
        vec![
            Box::new(id),
            Box::new(user),
            Box::new(symbol),
            Box::new(coid),
            Box::new(side),
            Box::new(kind),
            Box::new(tif),
            Box::new(price),
            Box::new(stop),
            Box::new(qty),
            Box::new(filled),
            Box::new(quote),
            Box::new(fees),
            Box::new(status),
            Box::new(post_only),
            Box::new(stp),
            Box::new(triggered),
            Box::new(reject),
            Box::new(cancel),
            Box::new(created),
            Box::new(updated),
            Box::new(seq),
        ],
    ));
    Ok(())
}
