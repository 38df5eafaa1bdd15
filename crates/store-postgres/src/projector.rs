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

use crate::model::{reject_http_status, variant_name, ExecutionRow, OrderView, PlaceResponse, CANDLE_INTERVALS};
use crate::{to_sql, StoreError};
use deadpool_postgres::{Pool, Transaction};
use qt_core::{NewOrder, OrderId, OrderStatus, RejectReason, SymbolId, SymbolSpec};
use qt_engine::{Command, CommandEnvelope, Event, EventEnvelope};
use std::collections::{BTreeMap, HashMap};

/// One applied command and the events it produced.
#[derive(Clone, Copy, Debug)]
pub struct Projected<'a> {
    pub command: &'a CommandEnvelope,
    pub events: &'a [EventEnvelope],
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

#[derive(Debug, Default)]
struct Scratch {
    balances: BTreeMap<(u64, u16), (i64, i64, i64)>,
    positions: BTreeMap<(u64, u16), (i64, i128, i128, i64)>,
    candles: BTreeMap<(u16, u32, i64), CandleAcc>,
    pending_fills: Vec<(OrderId, i64, i64)>,
}

/// Writes the read model from one or more sources.
#[derive(Debug)]
pub struct Projector {
    pool: Pool,
    specs: HashMap<SymbolId, SymbolSpec>,
}

impl Projector {
    pub(crate) fn new(pool: Pool) -> Self {
        Projector { pool, specs: HashMap::new() }
    }

    /// Projects a batch of `source`'s applied commands in one transaction, skipping those
    /// at or below the source's high-water mark. Returns how many commands it applied.
    pub async fn project(&mut self, source: &str, batch: &[Projected<'_>]) -> Result<usize, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO projector_offsets (source, last_seq) VALUES ($1, 0) ON CONFLICT (source) DO NOTHING",
            &[&source],
        )
        .await?;
        let row =
            tx.query_one("SELECT last_seq FROM projector_offsets WHERE source = $1 FOR UPDATE", &[&source]).await?;
        let start: i64 = row.try_get(0)?;
        let mut last = start;
        let mut scratch = Scratch::default();
        let mut applied = 0;
        let result = async {
            for p in batch {
                let seq = to_sql(p.command.seq)?;
                if seq <= last {
                    continue;
                }
                project_command(&tx, &mut self.specs, &mut scratch, p).await?;
                last = seq;
                applied += 1;
            }
            flush(&tx, &scratch).await
        }
        .await;
        if let Err(e) = result {
            // A spec cached from a command of the failed batch may not be in the table.
            self.specs.clear();
            return Err(e);
        }
        if last != start {
            tx.execute(
                "UPDATE projector_offsets SET last_seq = $2, updated_at = now() WHERE source = $1",
                &[&source, &last],
            )
            .await?;
        }
        tx.commit().await?;
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

async fn insert_order(
    tx: &Transaction<'_>,
    o: &NewOrder,
    status: OrderStatus,
    reject: Option<RejectReason>,
    ts: i64,
    seq: i64,
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO orders (order_id, user_id, symbol_id, client_order_id, side, type, tif, price, stop_price, \
             qty, status, post_only, stp, reject_reason, created_ts, updated_ts, cmd_seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16) \
             ON CONFLICT (order_id) DO NOTHING",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &to_sql(o.order_id.0)?,
            &to_sql(o.user.0)?,
            &i32::from(o.symbol.0),
            &o.client_order_id,
            &o.side.as_str(),
            &o.order_type.as_str(),
            &o.tif.as_str(),
            &o.price.map(|p| p.0),
            &o.stop_price.map(|p| p.0),
            &o.qty.0,
            &status.as_str(),
            &o.post_only,
            &o.stp.as_str(),
            &reject.map(|r| variant_name(&r)),
            &ts,
            &seq,
        ],
    )
    .await?;
    Ok(())
}

async fn set_status(
    tx: &Transaction<'_>,
    id: OrderId,
    status: OrderStatus,
    ts: i64,
    seq: i64,
) -> Result<(), StoreError> {
    let stmt =
        tx.prepare_cached("UPDATE orders SET status = $2, updated_ts = $3, cmd_seq = $4 WHERE order_id = $1").await?;
    tx.execute(&stmt, &[&to_sql(id.0)?, &status.as_str(), &ts, &seq]).await?;
    Ok(())
}

async fn project_command(
    tx: &Transaction<'_>,
    specs: &mut HashMap<SymbolId, SymbolSpec>,
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
                let scale = i32::try_from(*scale).map_err(|_| StoreError::Corrupt(format!("scale {scale}")))?;
                tx.execute(
                    "INSERT INTO assets (asset_id, code, scale) VALUES ($1, $2, $3) \
                     ON CONFLICT (asset_id) DO UPDATE SET code = excluded.code, scale = excluded.scale",
                    &[&i32::from(asset.0), code, &scale],
                )
                .await?;
            }
            Event::SymbolAdded { symbol } => {
                let Command::AddSymbol(spec) = &cmd.cmd else {
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
                let meta = cmd.meta.as_deref();
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
            Event::OrderAccepted { order } => insert_order(tx, order, OrderStatus::Accepted, None, ts, seq).await?,
            Event::OrderRejected { order_id, reason, .. } => {
                if let Command::Place(o) = &cmd.cmd {
                    if o.order_id == *order_id {
                        insert_order(tx, o, OrderStatus::Rejected, Some(*reason), ts, seq).await?;
                        rejected_place = Some(*reason);
                    }
                }
            }
            Event::OrderTriggered { order_id, .. } => {
                let stmt = tx
                    .prepare_cached(
                        "UPDATE orders SET triggered = true, updated_ts = $2, cmd_seq = $3 WHERE order_id = $1",
                    )
                    .await?;
                tx.execute(&stmt, &[&to_sql(order_id.0)?, &ts, &seq]).await?;
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
                let sym = i32::from(symbol.0);
                let trade = tx
                    .prepare_cached(
                        "INSERT INTO trades (trade_id, symbol_id, price, qty, taker_side, ts, cmd_seq) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (trade_id) DO NOTHING",
                    )
                    .await?;
                tx.execute(&trade, &[&tid, &sym, &price.0, &qty.0, &taker_side.as_str(), &ts, &seq]).await?;
                let exec = tx
                    .prepare_cached(
                        "INSERT INTO executions (execution_id, trade_id, order_id, user_id, symbol_id, side, price, \
                         qty, quote_qty, fee, is_maker, ts, cmd_seq) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                         ON CONFLICT (execution_id) DO NOTHING",
                    )
                    .await?;
                for (order, user, side, fee, is_maker) in [
                    (maker_order, maker_user, taker_side.opposite(), maker_fee, true),
                    (taker_order, taker_user, *taker_side, taker_fee, false),
                ] {
                    let execution_id = tid * 2 + i64::from(!is_maker);
                    tx.execute(
                        &exec,
                        &[
                            &execution_id,
                            &tid,
                            &to_sql(order.0)?,
                            &to_sql(user.0)?,
                            &sym,
                            &side.as_str(),
                            &price.0,
                            &qty.0,
                            &notional,
                            &fee.0,
                            &is_maker,
                            &ts,
                            &seq,
                        ],
                    )
                    .await?;
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
                let stmt = tx
                    .prepare_cached(
                        "UPDATE orders SET filled = $2, status = $3, quote_filled = quote_filled + $4, \
                         fees = fees + $5, updated_ts = $6, cmd_seq = $7 WHERE order_id = $1",
                    )
                    .await?;
                tx.execute(&stmt, &[&to_sql(order_id.0)?, &filled.0, &status.as_str(), &quote, &fee, &ts, &seq])
                    .await?;
            }
            Event::OrderSettled { order_id, .. } => set_status(tx, *order_id, OrderStatus::Settled, ts, seq).await?,
            Event::OrderCancelled { order_id, reason, .. } => {
                let stmt = tx
                    .prepare_cached(
                        "UPDATE orders SET status = $2, cancel_reason = $3, updated_ts = $4, cmd_seq = $5 \
                         WHERE order_id = $1",
                    )
                    .await?;
                tx.execute(
                    &stmt,
                    &[&to_sql(order_id.0)?, &OrderStatus::Cancelled.as_str(), &variant_name(reason), &ts, &seq],
                )
                .await?;
            }
            Event::OrderExpired { order_id, .. } => set_status(tx, *order_id, OrderStatus::Expired, ts, seq).await?,
            Event::OrderAmended { order_id, price, qty, .. } => {
                let stmt = tx
                    .prepare_cached(
                        "UPDATE orders SET price = $2, qty = $3, updated_ts = $4, cmd_seq = $5 WHERE order_id = $1",
                    )
                    .await?;
                tx.execute(&stmt, &[&to_sql(order_id.0)?, &price.map(|p| p.0), &qty.0, &ts, &seq]).await?;
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
        tx.execute(
            "UPDATE orders SET quote_filled = quote_filled + $2, fees = fees + $3, updated_ts = $4, cmd_seq = $5 \
             WHERE order_id = $1",
            &[&to_sql(order_id.0)?, &quote, &fee, &ts, &seq],
        )
        .await?;
    }
    if let Command::Place(o) = &cmd.cmd {
        if let Some(key) = cmd.meta.as_deref().and_then(|m| m.idempotency_key.as_deref()) {
            let request_hash = cmd.meta.as_deref().and_then(|m| m.request_hash.as_deref());
            store_idempotency(tx, o, key, request_hash, rejected_place, ts, seq).await?;
        }
    }
    Ok(())
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

async fn store_idempotency(
    tx: &Transaction<'_>,
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
                cmd_seq: crate::from_sql(seq)?,
            },
            fills: Vec::new(),
        },
        None => {
            let row = tx
                .query_opt(
                    &format!("SELECT {} FROM orders WHERE order_id = $1", OrderView::COLUMNS),
                    &[&to_sql(o.order_id.0)?],
                )
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("placed order {} has no row", o.order_id.0)))?;
            let order = OrderView::from_row(&row)?;
            let rows = tx
                .query(
                    &format!(
                        "SELECT {} FROM executions WHERE order_id = $1 AND cmd_seq = $2 ORDER BY execution_id",
                        ExecutionRow::COLUMNS
                    ),
                    &[&to_sql(o.order_id.0)?, &seq],
                )
                .await?;
            let fills = rows.iter().map(ExecutionRow::from_row).collect::<Result<Vec<_>, _>>()?;
            PlaceResponse { order, fills }
        }
    };
    let status = i32::from(rejected.map_or(201, reject_http_status));
    tx.execute(
        "INSERT INTO idempotency (user_id, key, request_hash, order_id, http_status, body, created_ts, cmd_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (user_id, key) DO NOTHING",
        &[
            &to_sql(o.user.0)?,
            &key,
            &request_hash,
            &to_sql(o.order_id.0)?,
            &status,
            &serde_json::to_string(&response)?,
            &ts,
            &seq,
        ],
    )
    .await?;
    Ok(())
}

/// Writes the coalesced balances, positions and candles of the batch.
async fn flush(tx: &Transaction<'_>, scratch: &Scratch) -> Result<(), StoreError> {
    if !scratch.balances.is_empty() {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO balances (user_id, asset_id, available, reserved, updated_ts) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (user_id, asset_id) DO UPDATE SET available = excluded.available, \
                 reserved = excluded.reserved, updated_ts = excluded.updated_ts",
            )
            .await?;
        for (&(user, asset), &(available, reserved, ts)) in &scratch.balances {
            tx.execute(&stmt, &[&to_sql(user)?, &i32::from(asset), &available, &reserved, &ts]).await?;
        }
    }
    if !scratch.positions.is_empty() {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO positions (user_id, symbol_id, qty, cost, realized, updated_ts) \
                 VALUES ($1, $2, $3, $4::TEXT::NUMERIC, $5::TEXT::NUMERIC, $6) \
                 ON CONFLICT (user_id, symbol_id) DO UPDATE SET qty = excluded.qty, cost = excluded.cost, \
                 realized = excluded.realized, updated_ts = excluded.updated_ts",
            )
            .await?;
        for (&(user, symbol), &(qty, cost, realized, ts)) in &scratch.positions {
            tx.execute(
                &stmt,
                &[&to_sql(user)?, &i32::from(symbol), &qty, &cost.to_string(), &realized.to_string(), &ts],
            )
            .await?;
        }
    }
    if !scratch.candles.is_empty() {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO candles (symbol_id, interval_s, open_time, open, high, low, close, volume, quote_volume, \
                 trades) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (symbol_id, interval_s, open_time) DO UPDATE SET \
                 high = GREATEST(candles.high, excluded.high), low = LEAST(candles.low, excluded.low), \
                 close = excluded.close, volume = candles.volume + excluded.volume, \
                 quote_volume = candles.quote_volume + excluded.quote_volume, trades = candles.trades + excluded.trades",
            )
            .await?;
        for (&(symbol, interval, open_time), c) in &scratch.candles {
            let interval = i32::try_from(interval).map_err(|_| StoreError::Corrupt(format!("interval {interval}")))?;
            tx.execute(
                &stmt,
                &[
                    &i32::from(symbol),
                    &interval,
                    &open_time,
                    &c.open,
                    &c.high,
                    &c.low,
                    &c.close,
                    &c.volume,
                    &c.quote_volume,
                    &c.trades,
                ],
            )
            .await?;
        }
    }
    Ok(())
}
