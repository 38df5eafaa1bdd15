//! [`KafkaJournal`]: one partition of a command topic as the durable command log of a
//! matching shard (the engine's [`Journal`] port), or of any record type with a sequence
//! number ([`JournalRecord`]: the inputs of a shard of the split engine).
//!
//! Contract:
//! - `append` sends the batch to the journal's partition, each record keyed by its
//!   sequence number and carrying it in the `qt-seq` header, and returns once every record
//!   is acknowledged by all in-sync replicas. Sequence numbers must increase.
//! - With a transactional producer ([`BusProducer::transactional`], the matching shard's),
//!   [`KafkaJournal::append_with`] writes the batch and the records given with it (the
//!   batch's events) in one Kafka transaction: all of them become visible to
//!   `read_committed` readers at the commit, or none. A failed send or an abortable
//!   commit aborts the transaction (nothing of it is ever visible), so retrying the same
//!   batch is safe without looking at the log; a commit whose outcome is open (timeout)
//!   is resumed by the retry, never aborted. A fenced or fatal producer returns
//!   [`BusError::Fenced`] / [`BusError::ProducerFatal`] for good.
//! - With an idempotent, non-transactional producer, after a failed `append` the journal
//!   does not know how much of the batch reached Kafka; the next `append` re-reads the
//!   last sequence number and skips the commands of its batch already there.
//! - Readers see committed records only (`isolation.level=read_committed`) up to the last
//!   stable offset. Offsets are not contiguous: each transaction ends with a commit (or
//!   abort) marker that takes an offset and is never delivered, and aborted records are
//!   skipped. So every probe reads "the first data record at or after an offset, below a
//!   bound" and learns from the partition-EOF event (the fetcher reached the last stable
//!   offset, after delivering every data record before it; one per assignment, so never
//!   a stale one) that there is none; nothing assumes that offset `o` holds sequence
//!   `o + 1` or that the offset below the end is a record. Not the consumer's position:
//!   after a re-assignment it may still show the previous one's for a while.
//! - `read_from(from, max)` finds the first data record whose sequence is `>= from` (a
//!   guess from the first record, then binary search by fetching single records) and
//!   reads forward.
//! - `last_seq` is the sequence of the last data record below the last stable offset,
//!   found by reading a window before it (widened while the window holds only markers or
//!   aborted records), 0 for a log without any. With 7-day retention a log may have been
//!   truncated: recovery starts from a snapshot whose sequence is newer than the oldest
//!   record kept.
//! - One writer per partition (the shard's owner); a transactional id makes that hold:
//!   a second writer fences the first. Readers may be many.

use crate::producer::{BusProducer, OutRecord};
use crate::{header, header_u64, BusError, KafkaConfig, TxnError};
use qt_engine::ports::{Journal, JournalRecord};
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
    /// A non-transactional send failed: some of the batch may be in the log.
    Uncertain,
}

/// Where a transactional writer stands between appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnState {
    /// No transaction open.
    Ready,
    /// A transaction failed and was not aborted yet (the abort itself failed).
    NeedsAbort,
    /// The commit of the batch ending at this sequence has an open outcome: the next
    /// append of that batch resumes it.
    Committing(u64),
}

/// The durable log of one shard: one partition of a topic.
pub struct KafkaJournal<T: JournalRecord = CommandEnvelope> {
    topic: String,
    partition: i32,
    source: String,
    producer: Arc<BusProducer>,
    reader: Mutex<BaseConsumer>,
    tail: Mutex<Tail>,
    txn: Mutex<TxnState>,
    /// The offset after the last journal record of the last committed transaction.
    committed_end: Mutex<i64>,
    timeout: Duration,
    record: std::marker::PhantomData<fn() -> T>,
}

impl<T: JournalRecord> std::fmt::Debug for KafkaJournal<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaJournal")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

struct Rec<T> {
    offset: i64,
    seq: u64,
    cmd: T,
}

/// How long one poll of a probe waits at most (it returns as soon as a record or the
/// partition's end arrives).
const PROBE_POLL: Duration = Duration::from_millis(50);

impl<T: JournalRecord> KafkaJournal<T> {
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
            // Committed transactions only; the watermarks it asks for then end at the
            // last stable offset (librdkafka's default, explicit because it matters).
            .set("isolation.level", "read_committed")
            // Single-record probes should not wait for a full fetch.
            .set("fetch.wait.max.ms", "10")
            // The end of the partition (the last stable offset) is reported: how a scan
            // learns that what is left of its range is markers or aborted records.
            .set("enable.partition.eof", "true");
        cfg.apply_extra(&mut c);
        let reader: BaseConsumer = c.create()?;
        Ok(KafkaJournal {
            source: format!("{topic}/{partition}"),
            topic,
            partition,
            producer,
            reader: Mutex::new(reader),
            tail: Mutex::new(Tail::Unknown),
            txn: Mutex::new(TxnState::Ready),
            committed_end: Mutex::new(0),
            timeout: cfg.request_timeout(),
            record: std::marker::PhantomData,
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

    fn txn_state(&self) -> TxnState {
        *self.txn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_txn_state(&self, t: TxnState) {
        *self.txn.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    /// Appends a batch durably (see the module contract).
    pub async fn append_async(self: &Arc<Self>, batch: &[T]) -> Result<(), BusError> {
        self.append_with(batch, &[]).await
    }

    /// Appends a batch and `with` (records of other topics: the batch's events) in one
    /// transaction; `with` needs a transactional producer. Retry a failure with the same
    /// arguments (module contract).
    pub async fn append_with(self: &Arc<Self>, batch: &[T], with: &[OutRecord]) -> Result<(), BusError> {
        if self.producer.transactional_id().is_some() {
            return self.append_txn(batch, with).await;
        }
        if !with.is_empty() {
            return Err(BusError::Config("records besides the journal's need a transactional producer".into()));
        }
        self.append_plain(batch).await
    }

    /// The journal records of `batch`, checking that it follows `last`.
    fn records(&self, batch: &[T], last: u64, skip_known: bool) -> Result<Vec<OutRecord>, BusError> {
        let mut prev = last;
        let mut records = Vec::with_capacity(batch.len());
        for c in batch {
            let seq = c.seq();
            if seq <= last && skip_known {
                continue;
            }
            if seq <= prev {
                return Err(BusError::OutOfOrder { last: prev, got: seq });
            }
            prev = seq;
            let mut r =
                OutRecord::sequenced(self.topic.clone(), seq.to_string(), serde_json::to_vec(c)?, &self.source, seq);
            r.partition = Some(self.partition);
            records.push(r);
        }
        Ok(records)
    }

    async fn known_last(self: &Arc<Self>) -> Result<u64, BusError> {
        match self.tail() {
            Tail::Known(s) => Ok(s),
            Tail::Unknown | Tail::Uncertain => self.last_seq_async().await,
        }
    }

    /// One transaction: begin, send the batch and `with`, commit (module contract).
    async fn append_txn(self: &Arc<Self>, batch: &[T], with: &[OutRecord]) -> Result<(), BusError> {
        if batch.is_empty() && with.is_empty() {
            return Ok(());
        }
        match self.txn_state() {
            // The commit of an earlier call has an open outcome: resume it, whatever this
            // call carries (usually the same batch again, then done).
            TxnState::Committing(pending) => {
                self.commit(pending).await?;
                if batch.last().map(JournalRecord::seq) == Some(pending) {
                    return Ok(());
                }
            }
            TxnState::NeedsAbort => self.abort().await?,
            TxnState::Ready => {}
        }
        let last = self.known_last().await?;
        // A transaction without commands (an ownership probe) leaves the tail where it is.
        let end = batch.last().map_or(last, JournalRecord::seq);
        let mut records = self.records(batch, last, false)?;
        records.extend_from_slice(with);
        if let Err(e) = self.producer.begin_transaction().await {
            return Err(self.failed(e).await);
        }
        let journal_records = records.len() - with.len();
        match self.producer.send_all(&records).await {
            Ok(delivered) => {
                if let Some(d) = delivered[..journal_records.min(delivered.len())].last() {
                    *self.committed_end.lock().unwrap_or_else(|e| e.into_inner()) = d.offset + 1;
                }
            }
            Err(e) => return Err(self.failed(self.producer.classify(e)).await),
        }
        self.commit(end).await
    }

    /// The offset after the last journal record of the last committed transaction (0
    /// before any): what [`KafkaJournal::wait_visible`] waits for.
    pub fn committed_end(&self) -> i64 {
        *self.committed_end.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `read_committed` readers can see the journal up to `end` (the last
    /// stable offset passed it). A commit returns once the coordinator decided it; the
    /// markers that make it visible are written just after. Whoever answers a client
    /// after a commit waits for this, so that a replica asked next sees the command.
    pub async fn wait_visible(self: &Arc<Self>, end: i64) -> Result<(), BusError> {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + me.timeout;
            loop {
                let reader = me.reader.lock().unwrap_or_else(|e| e.into_inner());
                let (_, stable) = me.watermarks(&reader)?;
                drop(reader);
                if stable >= end {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(BusError::Timeout(me.timeout, "waiting for a commit to become visible"));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .await
        .map_err(|e| BusError::Task(e.to_string()))?
    }

    async fn commit(&self, end: u64) -> Result<(), BusError> {
        match self.producer.commit_transaction().await {
            Ok(()) => {
                self.set_txn_state(TxnState::Ready);
                self.set_tail(Tail::Known(end));
                Ok(())
            }
            Err(e) if e.txn() == TxnError::Retriable => {
                self.set_txn_state(TxnState::Committing(end));
                Err(e)
            }
            Err(e) => Err(self.failed(e).await),
        }
    }

    /// After a failed step of an open transaction: aborts it unless the producer is done
    /// for; returns the error to report (a fatal one found while aborting wins).
    async fn failed(&self, e: BusError) -> BusError {
        if e.is_fatal() {
            return e;
        }
        self.set_txn_state(TxnState::NeedsAbort);
        match self.abort().await {
            Err(abort) if abort.is_fatal() => abort,
            _ => e,
        }
    }

    async fn abort(&self) -> Result<(), BusError> {
        match self.producer.abort_transaction().await {
            Ok(()) => {
                self.set_txn_state(TxnState::Ready);
                Ok(())
            }
            Err(e) => {
                if !e.is_fatal() {
                    self.set_txn_state(TxnState::NeedsAbort);
                }
                Err(e)
            }
        }
    }

    /// A non-transactional append (module contract).
    async fn append_plain(self: &Arc<Self>, batch: &[T]) -> Result<(), BusError> {
        let recovering = matches!(self.tail(), Tail::Uncertain);
        let last = self.known_last().await?;
        let records = self.records(batch, last, recovering)?;
        let end = batch.last().map_or(last, JournalRecord::seq).max(last);
        if records.is_empty() {
            self.set_tail(Tail::Known(last));
            return Ok(());
        }
        match self.producer.send_all(&records).await {
            Ok(_) => {
                self.set_tail(Tail::Known(end));
                Ok(())
            }
            Err(e) => {
                self.set_tail(Tail::Uncertain);
                Err(e)
            }
        }
    }

    /// Commands with `seq >= from`, at most `max`, in order.
    pub async fn read_from_async(self: &Arc<Self>, from: u64, max: usize) -> Result<Vec<T>, BusError> {
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
    pub fn read_from_blocking(&self, from: u64, max: usize) -> Result<Vec<T>, BusError> {
        if max == 0 {
            return Ok(vec![]);
        }
        let reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let (low, end) = self.watermarks(&reader)?;
        if low >= end {
            return Ok(vec![]);
        }
        let start = self.find_start(&reader, low, end, from)?;
        let mut out = Vec::new();
        if start >= end {
            return Ok(out);
        }
        self.scan(&reader, start, end, |rec| {
            if rec.seq >= from {
                out.push(rec.cmd);
            }
            out.len() < max
        })?;
        Ok(out)
    }

    /// `last_seq` on the calling thread.
    pub fn last_seq_blocking(&self) -> Result<u64, BusError> {
        let reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let (low, end) = self.watermarks(&reader)?;
        // The offset below the end is usually a commit marker: read a window before it
        // and keep its last data record, widening the window while it holds none.
        let mut window = 16i64;
        loop {
            let start = end.saturating_sub(window).max(low);
            if start >= end {
                return Ok(0);
            }
            let mut last = None;
            self.scan(&reader, start, end, |rec| {
                last = Some(rec.seq);
                true
            })?;
            if let Some(seq) = last {
                return Ok(seq);
            }
            if start == low {
                return Ok(0);
            }
            window = window.saturating_mul(8);
        }
    }

    /// Low watermark and last stable offset (the reader is `read_committed`, so
    /// librdkafka asks for that end). Leadership moves (a broker restart, a fresh topic)
    /// answer "not leader" or "unknown partition" for a moment: retried until the timeout.
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

    /// The first offset in `[low, end]` from which every data record has a sequence
    /// `>= from` (`end` when none has).
    fn find_start(&self, reader: &BaseConsumer, low: i64, end: i64, from: u64) -> Result<i64, BusError> {
        let Some(first) = self.fetch_at(reader, low, end)? else { return Ok(end) };
        if first.seq >= from {
            return Ok(first.offset);
        }
        // Offsets run ahead of sequences (one marker per transaction): the offset the
        // sequences imply is at or before the wanted record, a cheap first try.
        let gap = i64::try_from(from - first.seq).unwrap_or(i64::MAX);
        let guess = first.offset.saturating_add(gap);
        if guess < end {
            if let Some(g) = self.fetch_at(reader, guess, end)? {
                if g.seq == from {
                    return Ok(g.offset);
                }
            }
        }
        // Invariant: `lo` holds a data record with seq < from; every data record at or
        // after `hi` has seq >= from.
        let (mut lo, mut hi) = (first.offset, end);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match self.fetch_at(reader, mid, hi)? {
                // Only markers or aborted records in [mid, hi), or the first data record
                // there is already far enough: the start is at or before mid.
                None => hi = mid,
                Some(m) if m.seq >= from => hi = mid,
                Some(m) => lo = m.offset,
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

    /// The first data record at or after `offset` and below `end`, if any.
    fn fetch_at(&self, reader: &BaseConsumer, offset: i64, end: i64) -> Result<Option<Rec<T>>, BusError> {
        let mut found = None;
        self.scan(reader, offset, end, |rec| {
            found = Some(rec);
            false
        })?;
        Ok(found)
    }

    /// Hands the data records of `[start, end)` to `take`, in order, until it returns
    /// false or the range is read: a record at `end - 1` or later was seen, or the
    /// partition's end was reported (markers and aborted records, never handed out, were
    /// all that was left; the end, the last stable offset, only grows).
    fn scan(
        &self,
        reader: &BaseConsumer,
        start: i64,
        end: i64,
        mut take: impl FnMut(Rec<T>) -> bool,
    ) -> Result<(), BusError> {
        if start >= end {
            return Ok(());
        }
        self.assign(reader, start)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            if Instant::now() >= deadline {
                return Err(BusError::Timeout(self.timeout, "reading the journal"));
            }
            match reader.poll(PROBE_POLL) {
                None => {}
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) if p == self.partition => return Ok(()),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(m)) => {
                    // Records of an earlier assignment may still be queued: skip them.
                    if m.topic() != self.topic || m.partition() != self.partition || m.offset() < start {
                        continue;
                    }
                    if m.offset() >= end {
                        return Ok(());
                    }
                    let rec = self.decode(&m)?;
                    if !take(rec) || m.offset() + 1 >= end {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn decode(&self, m: &rdkafka::message::BorrowedMessage<'_>) -> Result<Rec<T>, BusError> {
        let bad = |what: String| BusError::BadRecord {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: m.offset(),
            what,
        };
        let seq = header_u64(m.headers(), header::SEQ).ok_or_else(|| bad("no qt-seq header".into()))?;
        let cmd: T = serde_json::from_slice(m.payload().unwrap_or_default())
            .map_err(|e| bad(format!("not a journal record of this log: {e}")))?;
        if cmd.seq() != seq {
            return Err(bad(format!("qt-seq {seq} but record seq {}", cmd.seq())));
        }
        Ok(Rec { offset: m.offset(), seq, cmd })
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
