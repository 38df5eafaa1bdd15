//! [`KafkaEventSink`]: the engine's [`EventSink`] port over Kafka. Every event goes to
//! `events` (keyed by the source, so one partition holds a source's whole stream in order)
//! and to the topics that [`route`] picks for it, keyed by user or symbol.
//!
//! Contract: `publish` returns once every record is acknowledged; events whose sequence is
//! not above the last one published by this sink are skipped (the engine may hand the same
//! events again after a restart); after an error the same batch may be published again.

use crate::producer::{BusProducer, OutRecord};
use crate::{header, topic, BusError, KafkaConfig};
use qt_engine::ports::EventSink;
use qt_engine::{Event, EventEnvelope};
use std::sync::Arc;

/// Where one event goes besides `events`: a topic (short name) and the record key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub topic: &'static str,
    pub key: String,
}

fn user(u: qt_core::UserId) -> String {
    u.0.to_string()
}

/// The topics an event is published to (besides `events`), with their keys.
pub fn route(event: &Event) -> Vec<Route> {
    let to = |topic: &'static str, key: String| Route { topic, key };
    match event {
        Event::AssetAdded { .. } | Event::SymbolAdded { .. } | Event::UserCreated { .. } => vec![],
        Event::BalanceChanged { user: u, .. }
        | Event::PositionChanged { user: u, .. }
        | Event::OrderTriggered { user: u, .. }
        | Event::OrderFilled { user: u, .. }
        | Event::OrderSettled { user: u, .. }
        | Event::OrderCancelled { user: u, .. }
        | Event::OrderExpired { user: u, .. }
        | Event::OrderAmended { user: u, .. } => vec![to(topic::EXECUTIONS, user(*u))],
        Event::OrderAccepted { order } => vec![to(topic::EXECUTIONS, user(order.user))],
        Event::OrderRejected { user: u, .. } => vec![to(topic::EXECUTIONS, user(*u)), to(topic::RISK_EVENTS, user(*u))],
        Event::Trade { symbol, maker_user, taker_user, .. } => {
            let mut r = vec![to(topic::PRICES, symbol.0.to_string()), to(topic::EXECUTIONS, user(*taker_user))];
            // Each side's risk shard settles its own user; self-trades are one record.
            if maker_user != taker_user {
                r.push(to(topic::EXECUTIONS, user(*maker_user)));
            }
            r
        }
        Event::BookChanged { symbol, .. } => vec![to(topic::PRICES, symbol.0.to_string())],
        Event::CommandRejected { user: u, .. } => {
            vec![to(topic::RISK_EVENTS, u.map_or_else(|| "global".to_string(), user))]
        }
        Event::LimitsChanged { user: u } => vec![to(topic::RISK_EVENTS, user(*u))],
        Event::KillSwitchChanged { user: u, .. } => {
            vec![to(topic::RISK_EVENTS, u.map_or_else(|| "global".to_string(), user))]
        }
    }
}

fn event_type(e: &Event) -> &'static str {
    match e {
        Event::AssetAdded { .. } => "AssetAdded",
        Event::SymbolAdded { .. } => "SymbolAdded",
        Event::UserCreated { .. } => "UserCreated",
        Event::BalanceChanged { .. } => "BalanceChanged",
        Event::PositionChanged { .. } => "PositionChanged",
        Event::OrderAccepted { .. } => "OrderAccepted",
        Event::OrderRejected { .. } => "OrderRejected",
        Event::OrderTriggered { .. } => "OrderTriggered",
        Event::Trade { .. } => "Trade",
        Event::OrderFilled { .. } => "OrderFilled",
        Event::OrderSettled { .. } => "OrderSettled",
        Event::OrderCancelled { .. } => "OrderCancelled",
        Event::OrderExpired { .. } => "OrderExpired",
        Event::OrderAmended { .. } => "OrderAmended",
        Event::CommandRejected { .. } => "CommandRejected",
        Event::BookChanged { .. } => "BookChanged",
        Event::LimitsChanged { .. } => "LimitsChanged",
        Event::KillSwitchChanged { .. } => "KillSwitchChanged",
    }
}

/// Publishes a source's events (a matching shard's, say) to Kafka.
#[derive(Debug)]
pub struct KafkaEventSink {
    cfg: KafkaConfig,
    producer: Arc<BusProducer>,
    source: String,
    last_seq: u64,
}

impl KafkaEventSink {
    /// `source` names the stream (`matching-0`); `last_seq` is the last event sequence
    /// known published (from the snapshot the source restarted from, or 0).
    pub fn new(cfg: &KafkaConfig, producer: Arc<BusProducer>, source: impl Into<String>, last_seq: u64) -> Self {
        KafkaEventSink { cfg: cfg.clone(), producer, source: source.into(), last_seq }
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The records of a batch, in order.
    pub fn records(&self, events: &[EventEnvelope]) -> Result<Vec<OutRecord>, BusError> {
        let mut out = Vec::with_capacity(events.len() * 2);
        for e in events.iter().filter(|e| e.seq > self.last_seq) {
            let payload = serde_json::to_vec(e)?;
            let headers = vec![
                (header::SOURCE, self.source.clone()),
                (header::SEQ, e.seq.to_string()),
                (header::CMD_SEQ, e.cmd_seq.to_string()),
                (header::TYPE, event_type(&e.event).to_string()),
            ];
            let rec = |topic: &str, key: String| OutRecord {
                topic: self.cfg.topic(topic),
                partition: None,
                key,
                payload: payload.clone(),
                headers: headers.clone(),
            };
            out.push(rec(topic::EVENTS, self.source.clone()));
            for r in route(&e.event) {
                out.push(rec(r.topic, r.key));
            }
        }
        Ok(out)
    }

    pub async fn publish_async(&mut self, events: &[EventEnvelope]) -> Result<(), BusError> {
        let records = self.records(events)?;
        if records.is_empty() {
            return Ok(());
        }
        self.producer.send_all(&records).await?;
        if let Some(max) = events.iter().map(|e| e.seq).max() {
            self.last_seq = self.last_seq.max(max);
        }
        Ok(())
    }
}

/// The engine's synchronous [`EventSink`] over a [`KafkaEventSink`] (`block_on` on the
/// given runtime; call it from the engine thread, not from a runtime worker).
#[derive(Debug)]
pub struct SyncEventSink {
    inner: KafkaEventSink,
    rt: tokio::runtime::Handle,
}

impl SyncEventSink {
    pub fn new(inner: KafkaEventSink, rt: tokio::runtime::Handle) -> Self {
        SyncEventSink { inner, rt }
    }

    pub fn inner(&self) -> &KafkaEventSink {
        &self.inner
    }
}

impl EventSink for SyncEventSink {
    type Error = BusError;

    fn publish(&mut self, events: &[EventEnvelope]) -> Result<(), BusError> {
        let SyncEventSink { inner, rt } = self;
        rt.block_on(inner.publish_async(events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qt_core::{OrderId, Price, Qty, Side, SymbolId, TradeId, UserId};

    fn trade(maker: u64, taker: u64) -> Event {
        Event::Trade {
            trade_id: TradeId(1),
            symbol: SymbolId(2),
            price: Price(100),
            qty: Qty(1),
            taker_side: Side::Buy,
            maker_order: OrderId(10),
            maker_user: UserId(maker),
            taker_order: OrderId(11),
            taker_user: UserId(taker),
            maker_fee: qt_core::Amount(0),
            taker_fee: qt_core::Amount(0),
        }
    }

    #[test]
    fn trades_go_to_prices_by_symbol_and_to_both_users() {
        let r = route(&trade(7, 8));
        assert_eq!(
            r,
            vec![
                Route { topic: topic::PRICES, key: "2".into() },
                Route { topic: topic::EXECUTIONS, key: "8".into() },
                Route { topic: topic::EXECUTIONS, key: "7".into() },
            ]
        );
        assert_eq!(route(&trade(7, 7)).len(), 2);
    }

    #[test]
    fn reference_data_goes_to_events_only_and_global_kill_is_keyed_global() {
        assert!(route(&Event::UserCreated { user: UserId(1) }).is_empty());
        assert_eq!(
            route(&Event::KillSwitchChanged { user: None, on: true }),
            vec![Route { topic: topic::RISK_EVENTS, key: "global".into() }]
        );
    }
}
