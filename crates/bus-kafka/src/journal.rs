//! [`KafkaJournal`]: one partition of a command topic as the durable command log of a
//! matching shard (the engine's [`Journal`] port).
//!
//! Contract:
//! - `append` sends the batch with the idempotent producer to the journal's partition, each
//!   record keyed by its sequence number and carrying it in the `qt-seq` header, and
//!   returns once every record is acknowledged by all in-sync replicas.
//! - Sequence numbers must increase. After a failed `append` the journal does not know how
//!   much of the batch reached Kafka; the next `append` re-reads the last sequence number
//!   from Kafka and skips the commands of its batch that are already there, so retrying
//!   the same batch is safe (and never writes a command twice).
//! - `read_from(from, max)` finds the first offset whose sequence is `>= from` (a guess from
//!   the first record, then binary search by fetching single records) and reads forward.
//! - `last_seq` reads the record below the high watermark (0 for an empty partition). With
//!   7-day retention a log may have been truncated: recovery starts from a snapshot whose
//!   sequence is newer than the oldest record kept.
//! - One writer per partition (the shard's owner); readers may be many.

use crate::producer::{BusProducer, OutRecord};
use crate::{header, header_u64, BusError, KafkaConfig};
use qt_engine::ports::Journal;
use qt_engine::{CommandEnvelope, EventEnvelope};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Last sequence known to be in the log, and whether a failed append left it uncertain.
#[derive(Debug, Clone, Copy)]
enum Tail {
    Unknown,
    Known(u64),
    /// A send failed: some of the batch may be in the log.
    Uncertain,
}

/// The durable command log of one shard: one partition of a topic.
pub struct KafkaJournal {
    topic: String,
    partition: i32,
    source: String,
    producer: Arc<BusProducer>,
    reader: Mutex<BaseConsumer>,
    tail: Mutex<Tail>,
    timeout: Duration,
}

impl std::fmt::Debug for KafkaJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaJournal")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

struct Rec {
    offset: i64,
    seq: u64,
    cmd: Option<CommandEnvelope>,
}

impl KafkaJournal {
    /// The journal of `partition` of `topic` (a full topic name, prefix included).
    pub fn new(
        cfg: &KafkaConfig,
        producer: Arc<BusProducer>,
        topic: impl Into<String>,
        partition: i32,
    ) -> Result<Self, BusError> {
        let topic = topic.into();
        let mut c = cfg.client_config(&format!("journal-reader-{topic}-{partition}"));
        // Assign-only reader: never joins a group nor commits; group.id is still required
        // by librdkafka for a consumer handle.
        c.set("group.id", format!("qt-journal-reader-{topic}"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Single-record probes should not wait for a full fetch.
            .set("fetch.wait.max.ms", "10")
            .set("enable.partition.eof", "false");
        cfg.apply_extra(&mut c);
        let reader: BaseConsumer = c.create()?;
        Ok(KafkaJournal {
            source: format!("{topic}/{partition}"),
            topic,
            partition,
            producer,
            reader: Mutex::new(reader),
            tail: Mutex::new(Tail::Unknown),
            timeout: cfg.request_timeout(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    fn tail(&self) -> Tail {
        *self.tail.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_tail(&self, t: Tail) {
        *self.tail.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    /// Appends a batch durably (see the module contract).
    pub async fn append_async(self: &Arc<Self>, batch: &[CommandEnvelope]) -> Result<(), BusError> {
        let (last, recovering) = match self.tail() {
            Tail::Known(s) => (s, false),
            Tail::Unknown => (self.last_seq_async().await?, false),
            Tail::Uncertain => (self.last_seq_async().await?, true),
        };
        let mut prev = last;
        let mut records = Vec::with_capacity(batch.len());
        for c in batch {
            if c.seq <= last && recovering {
                continue;
            }
            if c.seq <= prev {
                return Err(BusError::OutOfOrder { last: prev, got: c.seq });
            }
            prev = c.seq;
            let mut r = OutRecord::sequenced(
                self.topic.clone(),
                c.seq.to_string(),
                serde_json::to_vec(c)?,
                &self.source,
                c.seq,
            );
            r.partition = Some(self.partition);
            records.push(r);
        }
        if records.is_empty() {
            self.set_tail(Tail::Known(last));
            return Ok(());
        }
        match self.producer.send_all(&records).await {
            Ok(_) => {
                self.set_tail(Tail::Known(prev));
                Ok(())
            }
            Err(e) => {
                self.set_tail(Tail::Uncertain);
                Err(e)
            }
        }
    }

    /// Commands with `seq >= from`, at most `max`, in order.
    pub async fn read_from_async(self: &Arc<Self>, from: u64, max: usize) -> Result<Vec<CommandEnvelope>, BusError> {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || me.read_from_blocking(from, max))
            .await
            .map_err(|e| BusError::Task(e.to_string()))?
    }

    /// The last sequence number in the log, 0 when empty.
    pub async fn last_seq_async(self: &Arc<Self>) -> Result<u64, BusError> {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || me.last_seq_blocking()).await.map_err(|e| BusError::Task(e.to_string()))?
    }

    /// `read_from` on the calling thread (it blocks on network I/O).
    pub fn read_from_blocking(&self, from: u64, max: usize) -> Result<Vec<CommandEnvelope>, BusError> {
        if max == 0 {
            return Ok(vec![]);
        }
        let reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let (low, high) = self.watermarks(&reader)?;
        if low >= high {
            return Ok(vec![]);
        }
        let start = self.find_start(&reader, low, high, from)?;
        let mut out = Vec::new();
        if start >= high {
            return Ok(out);
        }
        self.assign(&reader, start)?;
        let deadline = Instant::now() + self.timeout;
        let mut next = start;
        while next < high && out.len() < max {
            let rec = self.poll_one(&reader, next, deadline)?;
            next = rec.offset + 1;
            if rec.seq >= from {
                if let Some(cmd) = rec.cmd {
                    out.push(cmd);
                }
            }
        }
        Ok(out)
    }

    /// `last_seq` on the calling thread.
    pub fn last_seq_blocking(&self) -> Result<u64, BusError> {
        let reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let (low, high) = self.watermarks(&reader)?;
        if low >= high {
            return Ok(0);
        }
        // The idempotent, non-transactional producer writes no control records, so the
        // record below the high watermark is the last command.
        Ok(self.fetch_at(&reader, high - 1)?.seq)
    }

    /// Low and high watermarks. Leadership moves (a broker restart, a fresh topic) answer
    /// "not leader" or "unknown partition" for a moment: retried until the timeout.
    fn watermarks(&self, reader: &BaseConsumer) -> Result<(i64, i64), BusError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match reader.fetch_watermarks(&self.topic, self.partition, self.timeout) {
                Ok(w) => return Ok(w),
                Err(e) if Instant::now() < deadline && transient_metadata(&e) => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The first offset in `[low, high]` whose sequence is `>= from` (`high` when none).
    fn find_start(&self, reader: &BaseConsumer, low: i64, high: i64, from: u64) -> Result<i64, BusError> {
        let first = self.fetch_at(reader, low)?;
        if first.seq >= from {
            return Ok(first.offset);
        }
        // Sequence numbers of a shard are usually dense: try the offset they imply first.
        let gap = i64::try_from(from - first.seq).unwrap_or(i64::MAX);
        let guess = first.offset.saturating_add(gap);
        if guess < high {
            let g = self.fetch_at(reader, guess)?;
            if g.seq == from {
                return Ok(g.offset);
            }
        }
        // Invariant: seq(lo) < from; every record at or after `hi` has seq >= from.
        let (mut lo, mut hi) = (first.offset, high);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let m = self.fetch_at(reader, mid)?;
            if m.offset >= hi || m.seq >= from {
                hi = mid;
            } else {
                lo = m.offset;
            }
        }
        Ok(hi)
    }

    fn assign(&self, reader: &BaseConsumer, offset: i64) -> Result<(), BusError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, self.partition, Offset::Offset(offset))?;
        reader.assign(&tpl)?;
        Ok(())
    }

    /// The first record at or after `offset`.
    fn fetch_at(&self, reader: &BaseConsumer, offset: i64) -> Result<Rec, BusError> {
        self.assign(reader, offset)?;
        self.poll_one(reader, offset, Instant::now() + self.timeout)
    }

    fn poll_one(&self, reader: &BaseConsumer, at_least: i64, deadline: Instant) -> Result<Rec, BusError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BusError::Timeout(self.timeout, "reading the journal"));
            }
            match reader.poll(left.min(Duration::from_millis(200))) {
                None => continue,
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(m)) => {
                    // Records of an earlier assignment may still be queued: skip them.
                    if m.topic() != self.topic || m.partition() != self.partition || m.offset() < at_least {
                        continue;
                    }
                    let bad = |what: String| BusError::BadRecord {
                        topic: self.topic.clone(),
                        partition: self.partition,
                        offset: m.offset(),
                        what,
                    };
                    let seq = header_u64(m.headers(), header::SEQ).ok_or_else(|| bad("no qt-seq header".into()))?;
                    let cmd: CommandEnvelope = serde_json::from_slice(m.payload().unwrap_or_default())
                        .map_err(|e| bad(format!("not a command envelope: {e}")))?;
                    if cmd.seq != seq {
                        return Err(bad(format!("qt-seq {seq} but envelope seq {}", cmd.seq)));
                    }
                    return Ok(Rec { offset: m.offset(), seq, cmd: Some(cmd) });
                }
            }
        }
    }
}

/// Pairs a shard's events (as read from `events`, in order) with the commands that caused
/// them, read from the shard's journal: what the PostgreSQL projector takes (it needs the
/// command for user names, idempotency keys, listed symbols and refused places).
/// Consecutive events of one `cmd_seq` form one pair; a command without events has none.
pub async fn join_commands(
    journal: &Arc<KafkaJournal>,
    events: &[EventEnvelope],
) -> Result<Vec<(CommandEnvelope, Vec<EventEnvelope>)>, BusError> {
    let mut groups: Vec<(u64, Vec<EventEnvelope>)> = Vec::new();
    for e in events {
        match groups.last_mut() {
            Some((seq, evs)) if *seq == e.cmd_seq => evs.push(e.clone()),
            _ => groups.push((e.cmd_seq, vec![e.clone()])),
        }
    }
    let (Some(first), Some(last)) = (groups.first().map(|g| g.0), groups.last().map(|g| g.0)) else {
        return Ok(vec![]);
    };
    let (lo, hi) = (first.min(last), first.max(last));
    let mut commands = std::collections::HashMap::new();
    let mut from = lo;
    while from <= hi {
        let want = usize::try_from(hi - from + 1).unwrap_or(usize::MAX).min(10_000);
        let got = journal.read_from_async(from, want).await?;
        let Some(end) = got.last().map(|c| c.seq) else { break };
        for c in got.into_iter().filter(|c| c.seq <= hi) {
            commands.insert(c.seq, c);
        }
        from = end + 1;
    }
    groups
        .into_iter()
        .map(|(seq, evs)| match commands.remove(&seq) {
            Some(c) => Ok((c, evs)),
            None => Err(BusError::BadRecord {
                topic: journal.topic.clone(),
                partition: journal.partition,
                offset: -1,
                what: format!(
                    "command {seq} of an event is not in the journal (retention, or another shard's journal)"
                ),
            }),
        })
        .collect()
}

fn transient_metadata(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::NotLeaderForPartition
                | C::LeaderNotAvailable
                | C::UnknownPartition
                | C::UnknownTopicOrPartition
                | C::BrokerTransportFailure
                | C::AllBrokersDown
                | C::OperationTimedOut
                | C::RequestTimedOut
        )
    )
}

/// The engine's synchronous [`Journal`] over a [`KafkaJournal`]: each call `block_on`s the
/// async one on the given runtime. Use it from the engine thread, never from a runtime
/// worker (tokio panics on a nested `block_on`).
#[derive(Debug, Clone)]
pub struct SyncJournal {
    inner: Arc<KafkaJournal>,
    rt: tokio::runtime::Handle,
}

impl SyncJournal {
    pub fn new(inner: Arc<KafkaJournal>, rt: tokio::runtime::Handle) -> Self {
        SyncJournal { inner, rt }
    }

    pub fn inner(&self) -> &Arc<KafkaJournal> {
        &self.inner
    }
}

impl Journal for SyncJournal {
    type Error = BusError;

    fn append(&mut self, batch: &[CommandEnvelope]) -> Result<(), BusError> {
        self.rt.block_on(self.inner.append_async(batch))
    }

    fn read_from(&self, from: u64, max: usize) -> Result<Vec<CommandEnvelope>, BusError> {
        // Blocking reads need no runtime.
        self.inner.read_from_blocking(from, max)
    }

    fn last_seq(&self) -> Result<u64, BusError> {
        self.inner.last_seq_blocking()
    }
}
