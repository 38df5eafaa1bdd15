//! The risk role: keeps every user's positions in Redis (`position:{user}:{symbol}`) from
//! the shard's events on `executions`, in the consumer group `risk-engine-group` (so
//! several risk processes share the users, partitioned by user id).
//!
//! Contract:
//! - Positions are absolute values (`PositionChanged` carries the position after the
//!   change), written before the offsets are committed: a redelivered batch writes the same
//!   values again, and records already applied are skipped by `(source, seq)`.
//! - Redis down: the batch is retried with backoff and nothing is committed, `/ready` is
//!   false meanwhile.
//! - Redis keeps no data over a restart: when `positions:complete` is missing (checked
//!   before writing each batch, and every second while idle), every position is first
//!   rewritten from the PostgreSQL read model, then the marker set. Values older than the read model's that the backlog
//!   of `executions` still holds are overwritten again by the newer records after them,
//!   so the keys converge to the read model's positions.
//! - Pre-trade checks (funds, limits, velocity, kill switch) stay in the matching shard's
//!   engine, which is authoritative: a check here could only repeat them on older state.

use crate::config::NodeConfig;
use crate::NodeError;
use qt_api::runtime::EngineStatus;
use qt_bus_kafka::{group, topic, Dedup, EffectConsumer};
use qt_cache_redis::RedisCache;
use qt_engine::{Event, EventEnvelope};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The value of `position:{user}:{symbol}`: integer lots and minor units, never floats.
#[derive(Debug, Serialize)]
struct PositionValue {
    qty_lots: i64,
    cost: String,
    realized: String,
    seq: u64,
}

pub async fn run(
    cfg: Arc<NodeConfig>,
    cache: RedisCache,
    reader: qt_store_postgres::PgReader,
    status: Arc<EngineStatus>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), NodeError> {
    let executions = cfg.kafka.topic(topic::EXECUTIONS);
    // Symbol names for the keys, from the read model; re-read when a new one shows up.
    let mut symbols: HashMap<u16, String> = HashMap::new();
    let group_id = cfg.kafka.topic(group::RISK_ENGINE);
    let mut consumer = EffectConsumer::new(&cfg.kafka, &group_id, &[executions.as_str()], Dedup::new())?;
    status.recovered.store(true, Ordering::Release);
    tracing::info!("risk: consuming executions");
    let mut checked_at: Option<std::time::Instant> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        if checked_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            match rebuild_if_lost(&cfg, &cache, &reader, &mut symbols).await {
                Ok(()) => checked_at = Some(std::time::Instant::now()),
                Err(e) => {
                    tracing::warn!(error = %e, "risk: cannot check or rebuild the positions in Redis; retrying");
                    status.degraded.store(true, Ordering::Release);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            }
        }
        let batch = tokio::select! {
            b = consumer.next_batch(1024, Duration::from_millis(200)) => b,
            _ = stop.changed() => break,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "risk: consuming executions failed");
                status.degraded.store(true, Ordering::Release);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if batch.is_empty() {
            continue;
        }
        // Last value per (user, symbol) of the batch: one write each.
        let mut latest: HashMap<(u64, u16), PositionValue> = HashMap::new();
        for r in batch.iter().filter(|r| !r.duplicate) {
            let env: EventEnvelope = match r.decode() {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(error = %e, "risk: undecodable event skipped");
                    continue;
                }
            };
            if let Event::PositionChanged { user, symbol, qty, cost, realized } = env.event {
                latest.insert(
                    (user.0, symbol.0),
                    PositionValue {
                        qty_lots: qty,
                        cost: cost.to_string(),
                        realized: realized.to_string(),
                        seq: env.seq,
                    },
                );
            }
        }
        if latest.keys().any(|(_, s)| !symbols.contains_key(s)) {
            match reader.symbols().await {
                Ok(rows) => symbols = rows.into_iter().map(|r| (r.spec.id.0, r.spec.name)).collect(),
                Err(e) => tracing::warn!(error = %e, "risk: symbol names unavailable; keys use ids"),
            }
        }
        let mut delay = Duration::from_millis(100);
        'write: loop {
            // First the positions Redis may have lost since the last check, then the batch's
            // (newer) values over them.
            let mut failed = rebuild_if_lost(&cfg, &cache, &reader, &mut symbols).await.err();
            for ((user, symbol), value) in latest.iter().filter(|_| failed.is_none()) {
                let name = symbols.get(symbol).cloned().unwrap_or_else(|| symbol.to_string());
                if let Err(e) = cache.put_position(*user, &name, value).await {
                    failed = Some(NodeError::from(e));
                    break;
                }
            }
            match failed {
                None => {
                    status.degraded.store(false, Ordering::Release);
                    break 'write;
                }
                Some(e) => {
                    tracing::error!(error = %e, "risk: writing positions failed; retrying");
                    status.degraded.store(true, Ordering::Release);
                    if *stop.borrow() {
                        // Not committed: the next owner applies the batch.
                        status.stopped.store(true, Ordering::Release);
                        return Ok(());
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        metrics::counter!("qt_risk_positions_written_total").increment(latest.len() as u64);
        if let Err(e) = consumer.commit(&batch).await {
            tracing::warn!(error = %e, "risk: commit failed (the batch will be redelivered and is idempotent)");
        }
    }
    status.stopped.store(true, Ordering::Release);
    Ok(())
}

/// Rewrites every position from the read model when Redis lost them (see the contract).
async fn rebuild_if_lost(
    cfg: &NodeConfig,
    cache: &RedisCache,
    reader: &qt_store_postgres::PgReader,
    symbols: &mut HashMap<u16, String>,
) -> Result<(), NodeError> {
    if cache.positions_complete().await? {
        return Ok(());
    }
    let seq = reader.projected_seq(&cfg.node.shard).await?;
    let rows = reader.all_positions().await?;
    if rows.iter().any(|r| !symbols.contains_key(&r.symbol_id.0)) {
        *symbols = reader.symbols().await?.into_iter().map(|r| (r.spec.id.0, r.spec.name)).collect();
    }
    for r in &rows {
        let name = symbols.get(&r.symbol_id.0).cloned().unwrap_or_else(|| r.symbol_id.0.to_string());
        let value = PositionValue { qty_lots: r.qty, cost: r.cost.to_string(), realized: r.realized.to_string(), seq };
        cache.put_position(r.user_id.0, &name, &value).await?;
    }
    cache.mark_positions_complete().await?;
    metrics::counter!("qt_risk_positions_rebuilt_total").increment(1);
    tracing::info!(positions = rows.len(), seq, "risk: positions rewritten into Redis from the read model");
    Ok(())
}
