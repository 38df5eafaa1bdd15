//! [`EffectConsumer`]: a group consumer for exactly-once *effects* over at-least-once
//! delivery.
//!
//! Contract:
//! - Offsets are never committed automatically: the caller applies a batch's effects
//!   durably, recording the last `(source, seq)` it applied in the same transaction, then
//!   calls [`EffectConsumer::commit`]. A crash in between redelivers the batch.
//! - De-duplication is per *stream*: a source's records in one partition
//!   ([`Received::stream`] = `source@topic/partition`). A source's sequence numbers only
//!   increase within a partition (a sink sends in order, the idempotent producer keeps
//!   it), not across them: a matching shard's events for two users land in two partitions
//!   in any interleaving.
//! - Each [`Received`] says whether it is a `duplicate`: its seq is not above the last one
//!   applied for its stream ([`Dedup`], seeded by the caller from its durable store at
//!   start, and advanced by `commit`). The caller skips duplicates and records the last
//!   seq per stream with its effects, so a redelivered message changes nothing.
//! - A record without `qt-source`/`qt-seq` headers is sequenced by its position:
//!   source `topic/partition`, seq `offset + 1`.
//! - One writer per source: the consumer does not fence anyone itself; a matching shard's
//!   writer is made exclusive by its transactional id (qt-node `matching::claim`), and
//!   this consumer reads committed transactions only (`isolation.level=read_committed`),
//!   so a fenced writer's aborted batch is never delivered.
//! - After a rebalance a commit of a partition this member lost fails; the new owner
//!   redelivers from the last commit, and de-duplication absorbs it.
//! - Every consumer reports `qt_kafka_consumer_lag{group,topic,partition}` ([`LagContext`]).

use crate::{header, header_str, header_u64, BusError, KafkaConfig, LagContext};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Last sequence number applied per stream (`source@topic/partition`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dedup {
    last: HashMap<String, u64>,
}

impl Dedup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records what the durable store says was applied (at start).
    pub fn seed(&mut self, source: impl Into<String>, seq: u64) {
        let e = self.last.entry(source.into()).or_insert(0);
        *e = (*e).max(seq);
    }

    pub fn last(&self, source: &str) -> u64 {
        self.last.get(source).copied().unwrap_or(0)
    }

    pub fn is_duplicate(&self, source: &str, seq: u64) -> bool {
        seq <= self.last(source)
    }

    fn advance(&mut self, source: &str, seq: u64) {
        if seq > self.last(source) {
            self.last.insert(source.to_string(), seq);
        }
    }
}

/// One consumed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// The `qt-source` header.
    pub source: String,
    /// The de-duplication stream: `source@topic/partition`.
    pub stream: String,
    pub seq: u64,
    pub payload: Vec<u8>,
    /// Already applied (by this or an earlier process): skip its effects.
    pub duplicate: bool,
}

impl Received {
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, BusError> {
        serde_json::from_slice(&self.payload).map_err(|e| BusError::BadRecord {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
            what: e.to_string(),
        })
    }
}

/// A consumer-group member with manual commits and de-duplication by source sequence.
pub struct EffectConsumer {
    consumer: Arc<StreamConsumer<LagContext>>,
    dedup: Dedup,
    timeout: Duration,
}

impl std::fmt::Debug for EffectConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EffectConsumer").field("dedup", &self.dedup).finish_non_exhaustive()
    }
}

impl EffectConsumer {
    /// Joins `group` and subscribes to `topics` (full names). A new group starts at the
    /// earliest record: a fresh projector must see the whole retained history.
    pub fn new(cfg: &KafkaConfig, group: &str, topics: &[&str], dedup: Dedup) -> Result<Self, BusError> {
        cfg.validate()?;
        let mut c = cfg.client_config(&format!("consumer-{group}"));
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", "10000")
            .set("fetch.wait.max.ms", "50");
        crate::enable_lag_stats(&mut c);
        cfg.apply_extra(&mut c);
        let consumer: StreamConsumer<LagContext> = c.create_with_context(LagContext::new(group))?;
        consumer.subscribe(topics)?;
        Ok(EffectConsumer { consumer: Arc::new(consumer), dedup, timeout: cfg.request_timeout() })
    }

    pub fn dedup(&self) -> &Dedup {
        &self.dedup
    }

    /// The fatal error of the underlying client, if it had one. Such a consumer never
    /// consumes or commits again (e.g. a static member fenced by the broker after a broker
    /// restart: `FencedInstanceId`); the caller replaces it with a new one, carrying over
    /// [`EffectConsumer::dedup`] (advanced past every batch handed to `commit*`, committed
    /// or not), so that the records redelivered from the last commit are recognised.
    pub fn fatal_error(&self) -> Option<String> {
        self.consumer.client().fatal_error().map(|(code, reason)| format!("{code:?}: {reason}"))
    }

    /// Waits up to `wait` for a first record, then takes whatever else is already there,
    /// up to `max` records. An empty batch means nothing arrived in time.
    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Received>, BusError> {
        let mut out: Vec<Received> = Vec::new();
        // Duplicates inside the batch itself (a producer retry) count too.
        let mut in_batch: HashMap<String, u64> = HashMap::new();
        let mut budget = wait;
        while out.len() < max {
            let msg = match tokio::time::timeout(budget, self.consumer.recv()).await {
                Err(_elapsed) => break,
                Ok(m) => m?,
            };
            let headers = msg.headers();
            let (source, seq) = match (header_str(headers, header::SOURCE), header_u64(headers, header::SEQ)) {
                (Some(src), Some(seq)) => (src.to_string(), seq),
                _ => (format!("{}/{}", msg.topic(), msg.partition()), u64::try_from(msg.offset() + 1).unwrap_or(0)),
            };
            let stream = format!("{source}@{}/{}", msg.topic(), msg.partition());
            let seen = self.dedup.last(&stream).max(in_batch.get(&stream).copied().unwrap_or(0));
            let duplicate = seq <= seen;
            if !duplicate {
                in_batch.insert(stream.clone(), seq);
            }
            out.push(Received {
                topic: msg.topic().to_string(),
                partition: msg.partition(),
                offset: msg.offset(),
                key: msg.key().map(<[u8]>::to_vec),
                source,
                stream,
                seq,
                payload: msg.payload().unwrap_or_default().to_vec(),
                duplicate,
            });
            // After the first record, only drain what is already fetched.
            budget = Duration::from_millis(1);
        }
        Ok(out)
    }

    /// Declares the batch's effects durable: advances de-duplication and commits the
    /// offsets after each partition's last record (synchronously, so a crash right after
    /// this returns does not redeliver).
    pub async fn commit(&mut self, batch: &[Received]) -> Result<(), BusError> {
        let Some(tpl) = self.advance(batch)? else { return Ok(()) };
        let consumer = Arc::clone(&self.consumer);
        tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync))
            .await
            .map_err(|e| BusError::Task(e.to_string()))??;
        Ok(())
    }

    /// As [`EffectConsumer::commit`], but hands the offsets to librdkafka without waiting
    /// for the broker's confirmation (no round trip per batch). Only for callers whose
    /// redelivered records are recognised as duplicates from their durable store (e.g. the
    /// matching shard's `meta.ingress`): a commit lost in a crash redelivers the batch and
    /// changes nothing. Offsets are still only handed over after the effects are durable.
    pub fn commit_nowait(&mut self, batch: &[Received]) -> Result<(), BusError> {
        let Some(tpl) = self.advance(batch)? else { return Ok(()) };
        self.consumer.commit(&tpl, CommitMode::Async)?;
        Ok(())
    }

    /// Advances de-duplication past `batch` without committing anything: for a consumer
    /// that has made the batch's effects durable in a log of its own (which recovery
    /// re-seeds de-duplication from) and commits the offsets later, so that a redelivery
    /// meanwhile (a rebalance back to the committed offset) is recognised.
    pub fn mark_seen(&mut self, batch: &[Received]) {
        for r in batch.iter().filter(|r| !r.duplicate) {
            self.dedup.advance(&r.stream, r.seq);
        }
    }

    /// Advances de-duplication past `batch`; the offsets to commit, `None` for no record.
    fn advance(&mut self, batch: &[Received]) -> Result<Option<TopicPartitionList>, BusError> {
        if batch.is_empty() {
            return Ok(None);
        }
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for r in batch {
            let e = next.entry((r.topic.as_str(), r.partition)).or_insert(r.offset + 1);
            *e = (*e).max(r.offset + 1);
            if !r.duplicate {
                self.dedup.advance(&r.stream, r.seq);
            }
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in next {
            tpl.add_partition_offset(t, p, Offset::Offset(o))?;
        }
        Ok(Some(tpl))
    }

    /// The committed offsets of the current assignment (for lag metrics and tests).
    pub fn committed(&self) -> Result<TopicPartitionList, BusError> {
        Ok(self.consumer.committed(self.timeout)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keeps_the_highest_sequence_per_source() {
        let mut d = Dedup::new();
        d.seed("matching-0", 10);
        d.seed("matching-0", 5);
        assert!(d.is_duplicate("matching-0", 10));
        assert!(!d.is_duplicate("matching-0", 11));
        assert!(!d.is_duplicate("matching-1", 1));
        d.advance("matching-1", 3);
        d.advance("matching-1", 2);
        assert_eq!(d.last("matching-1"), 3);
    }
}
