//! The matching role: the sequencer and engine of one shard (one shard owns every symbol
//! by default; see the crate documentation).
//!
//! Contract:
//! - Ownership: the shard writes through a transactional producer whose
//!   `transactional.id` is the shard's name within the topic prefix (as the `orders`
//!   consumer's `group.instance.id`). [`claim`] registers it before anything is read:
//!   Kafka then aborts the open transaction of any older process writing as the shard,
//!   and every later send or commit of that one fails as fenced. Recovery reads the
//!   journal only after the claim, so no batch of the fenced process commits behind it.
//! - Recovery at start: the latest PostgreSQL snapshot of the shard (only when the read
//!   model has caught up with it, else from scratch), then the shard's journal (a partition
//!   of `commands.matching`, committed transactions only) after it. Replayed commands are
//!   projected again (the projector skips what it holds); their events are not published
//!   again: they were committed in the same transactions as the journal records. The
//!   `orders` de-duplication starts from the snapshot's ingress watermarks advanced by the
//!   replayed journal (a snapshot without them, from an older version, seeds nothing and
//!   is logged).
//! - Markets of the configuration that are not listed yet are listed at start, through the
//!   same path as every command.
//! - Then, per batch of `orders` requests: check the idempotency keys of its places (one
//!   place per `(user, Idempotency-Key)`: the read model's answers younger than 24 h, the
//!   batch itself and the batch still in flight; the rule and why it suffices are in
//!   [`crate::keys`]): a used key is not journaled and is answered with the stored answer
//!   (read once this batch is projected when its first request is in one of those two
//!   batches); give each other request its sequence number, time and ids; apply the batch
//!   to the in-memory exchange, collecting its events; write its commands (the journal)
//!   and its events (`events`, `executions`, `prices`, `risk-events`) in ONE Kafka
//!   transaction; then project into PostgreSQL, then reply to the waiting intake
//!   processes (a keyed place with the answer stored under its key); then commit the
//!   `orders` offsets (without waiting for the broker's confirmation, except before a
//!   snapshot).
//! - Applying before the journal is durable is safe because nothing of the batch leaves
//!   the process before its transaction commits: no reply, no projection, no event
//!   visible (readers are `read_committed`), no snapshot. If the transaction cannot
//!   commit the process either retries the same records or stops, and a stopped process
//!   never snapshots a state holding an uncommitted batch: the next start rebuilds the
//!   state from the journal, where that batch is not.
//! - Transaction failures: a retriable or abortable one (broker restarting, coordinator
//!   moving, timeout) aborts the transaction (nothing of it is visible) and sends the same
//!   records in a new one, with backoff (100 ms doubling to 5 s) while `/ready` says
//!   degraded; a commit whose outcome is open is resumed, not aborted. A fenced producer
//!   (another process claimed the shard) or any other fatal producer error stops the role
//!   with [`NodeError::Lost`] (the process exits non-zero) without projecting, replying or
//!   snapshotting anything more; the producer is never initialised again by this process
//!   (that would fence the rightful owner back). Other fatal errors are treated like
//!   fencing because this process cannot tell them apart from losing the shard, and a
//!   fresh start is the one safe way back (it claims, then recovers from the journal).
//! - A fenced process that has no request to journal learns it through an ownership
//!   probe (a transaction with one record nobody reads): when its `orders` consumer is
//!   fenced as a static member (the other process joined), and before an idle snapshot.
//! - Pipelined, two batches deep: while the effects of batch N (projection, replies) run,
//!   batch N+1 is polled, applied and journaled; N+1's effects start only once N's are
//!   durable (the projection follows the journal's order) and N's offsets are committed
//!   then. A request is marked seen as soon as it is journaled, so a redelivery before
//!   its offset is committed is skipped.
//! - Each journaled command carries `meta.ingress` (`stream#seq` of the request in
//!   `orders`), and the shard keeps per stream the highest one applied (its ingress
//!   watermarks): after a crash between the journal write and the offset commit, the
//!   redelivered requests are recognised and skipped, so a request is applied once.
//! - A snapshot every `node.snapshot_every` commands and at shutdown, saved with the
//!   ingress watermarks of the same state; none while a batch's effects were left undone
//!   or a batch was applied but not committed. The offsets are committed (synchronously)
//!   before, so a restart has little to redeliver, but correctness does not rest on that
//!   commit: a snapshot may cover requests whose offsets are not committed (after a
//!   consumer replacement the first batch may hold only part of the redelivered
//!   requests), and the watermarks recognise them although the journal before the
//!   snapshot is not replayed.
//! - An `orders` consumer that hit a fatal error (a static member fenced after a broker
//!   restart never consumes again) is replaced, between batches (none in flight), by one
//!   that carries its de-duplication state, so the requests redelivered from the last
//!   committed offset are skipped. Until the new one has received a batch, nothing is
//!   committed and no snapshot is taken: a static member committing before its join is
//!   fenced again.

use crate::config::NodeConfig;
use crate::keys::{self, Key, KeyCheck, Verdict};
use crate::wire::{OrderRequest, Reply, WireOutcome, WirePlaced, REPLY_TO};
use crate::NodeError;
use qt_api::runtime::{EngineStatus, Sequencer};
use qt_bus_kafka::{
    group, topic, BusProducer, Dedup, EffectConsumer, KafkaEventSink, KafkaJournal, OutRecord, Received,
};
use qt_core::{SymbolId, UserId};
use qt_engine::{Command, CommandEnvelope, CommandMeta, EngineConfig, EventEnvelope, Exchange};
use qt_store_postgres::{
    ChangedOrder, IdempotencyRow, Ingress, PgReader, PgSnapshotStore, PgStore, PlaceAnswer, Projected, Projector,
};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A command being processed and who waits for its outcome.
struct Pending {
    env: CommandEnvelope,
    reply: Option<(String, String)>,
}

/// A batch journaled and applied, whose effects (projection, replies, events) are still to
/// be made durable.
#[derive(Default)]
struct Applied {
    envs: Vec<CommandEnvelope>,
    events: Vec<EventEnvelope>,
    /// The events of `envs[i]`.
    ranges: Vec<Range<usize>>,
    /// Who waits for which command: (index in `envs`, correlation id, intake process).
    replies: Vec<(usize, String, String)>,
    /// Requests answered without being journaled (their idempotency key was used before,
    /// maybe by a request of this batch or of the one before, whose answer the read model
    /// has by the time this batch is projected).
    replayed: Vec<Replayed>,
    /// The keys of the places journaled in this batch ([`crate::keys`]).
    keys: HashSet<Key>,
    /// The `orders` records of the batch, committed once its effects are durable.
    received: Vec<Received>,
    started: Option<Instant>,
    /// The journal offset its transaction's commit must make visible before any reply.
    visible_at: i64,
}

/// A keyed place answered without being journaled.
struct Replayed {
    corr: String,
    reply_to: String,
    user: UserId,
    key: String,
    /// The stored answer, when the read model had it at the check.
    row: Option<IdempotencyRow>,
}

/// What a batch's effects are once its transaction (journal and events) committed: the
/// projection into PostgreSQL, then the replies.
struct Effects {
    projector: Projector,
    /// Reads the stored answers of replays whose first request was in flight.
    reader: PgReader,
    /// Sends the replies (not transactional: they leave after the commit anyway).
    producer: Arc<BusProducer>,
    journal: Arc<KafkaJournal>,
    status: Arc<EngineStatus>,
    source: String,
    replies_topic: String,
}

pub struct Matching {
    cfg: Arc<NodeConfig>,
    exchange: Exchange,
    /// Written through the shard's transactional producer ([`claim`]).
    journal: Arc<KafkaJournal>,
    /// Builds the event records each batch's transaction carries.
    sink: KafkaEventSink,
    snapshots: PgSnapshotStore,
    effects: Effects,
    /// Looks up the idempotency keys of places before they are journaled.
    reader: PgReader,
    status: Arc<EngineStatus>,
    source: String,
    ids: Sequencer,
    since_snapshot: u64,
    /// The ingress watermarks of `exchange`'s state: per `orders` stream, the highest
    /// request seq journaled and applied. Saved with each snapshot, because recovery
    /// replays only the journal after it (see [`recovered_dedup`]).
    ingress: Ingress,
}

impl std::fmt::Debug for Matching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matching").field("source", &self.source).field("next_seq", &self.ids.next_seq).finish()
    }
}

/// Exponential backoff (100 ms doubling up to 5 s) of one operation that must succeed
/// before the shard goes on: while it fails the role reports degraded. The one retry loop
/// of the shard ([`persist`], [`persist_unless`] and the projection use it).
struct Backoff<'a> {
    what: &'static str,
    status: &'a EngineStatus,
    delay: Duration,
    failed: bool,
}

impl<'a> Backoff<'a> {
    fn new(what: &'static str, status: &'a EngineStatus) -> Self {
        Backoff { what, status, delay: Duration::from_millis(100), failed: false }
    }

    /// After a failure: logs it (the first time), reports degraded and waits; false when
    /// asked to stop instead.
    async fn wait<E: std::fmt::Display>(&mut self, error: &E, stop: &watch::Receiver<bool>) -> bool {
        if !self.failed {
            tracing::error!(what = self.what, %error, "failed; retrying with backoff");
        }
        self.failed = true;
        self.status.degraded.store(true, Ordering::Release);
        metrics::counter!("qt_node_retries_total", "what" => self.what).increment(1);
        if *stop.borrow() {
            return false;
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(5));
        true
    }

    fn succeeded(&self) {
        if self.failed {
            tracing::info!(what = self.what, "recovered");
            self.status.degraded.store(false, Ordering::Release);
        }
    }
}

/// How [`persist_unless`] ended.
enum Persisted<T, E> {
    Done(T),
    /// Asked to stop while retrying.
    Stopped,
    /// An error retrying cannot cure.
    Failed(E),
}

/// Retries `op` with [`Backoff`] until it succeeds, `stop` is set, or it fails with an
/// error that `fatal` says retrying cannot cure.
async fn persist_unless<T, E: std::fmt::Display, F, Fut>(
    what: &'static str,
    status: &EngineStatus,
    stop: &watch::Receiver<bool>,
    fatal: impl Fn(&E) -> bool,
    mut op: F,
) -> Persisted<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::new(what, status);
    loop {
        match op().await {
            Ok(v) => {
                backoff.succeeded();
                return Persisted::Done(v);
            }
            Err(e) if fatal(&e) => return Persisted::Failed(e),
            Err(e) => {
                if !backoff.wait(&e, stop).await {
                    return Persisted::Stopped;
                }
            }
        }
    }
}

/// [`persist_unless`] for operations whose every error is worth retrying; None when asked
/// to stop.
async fn persist<T, E: std::fmt::Display, F, Fut>(
    what: &'static str,
    status: &EngineStatus,
    stop: &watch::Receiver<bool>,
    op: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    match persist_unless(what, status, stop, |_| false, op).await {
        Persisted::Done(v) => Some(v),
        Persisted::Stopped | Persisted::Failed(_) => None,
    }
}

/// Creates the shard's transactional producer and registers its `transactional.id` (the
/// shard's name within the topic prefix, like the `orders` consumer's static membership):
/// this fences any other process that still writes as the shard, and must happen before
/// recovery reads the journal, so that no batch of the fenced one can commit after it.
pub async fn claim(cfg: &NodeConfig) -> Result<Arc<BusProducer>, NodeError> {
    let id = cfg.kafka.topic(&cfg.node.shard);
    let producer = Arc::new(BusProducer::transactional(&cfg.kafka, &format!("{}-txn", cfg.node.shard), &id)?);
    let timer = Instant::now();
    producer.init_transactions().await?;
    tracing::info!(transactional_id = %id, millis = timer.elapsed().as_millis() as u64, "matching: shard claimed");
    Ok(producer)
}

impl Matching {
    /// Recovers the shard (see the module contract). `owner` is the shard's transactional
    /// producer, initialised ([`claim`]); `producer` sends the replies.
    pub async fn recover(
        cfg: Arc<NodeConfig>,
        pg: &PgStore,
        owner: Arc<BusProducer>,
        producer: Arc<BusProducer>,
        status: Arc<EngineStatus>,
    ) -> Result<(Matching, Dedup), NodeError> {
        let started = Instant::now();
        let source = cfg.node.shard.clone();
        let journal = Arc::new(KafkaJournal::new(
            &cfg.kafka,
            owner.clone(),
            cfg.kafka.topic(topic::COMMANDS_MATCHING),
            cfg.node.partition,
        )?);
        let snapshots = pg.snapshots(source.clone());
        let mut projector = pg.projector();
        let projected = projector.projected_seq(&source).await?;
        let engine = EngineConfig { risk_enabled: cfg.run.engine.risk_enabled, ..EngineConfig::default() };
        let (mut exchange, snapshot_seq, mut ingress) = match snapshots.latest_with_ingress().await? {
            // The read model is behind the snapshot: replay from the start so that the
            // projector sees every command it misses.
            Some((snap, watermarks)) if snap.last_cmd_seq <= projected => {
                let seq = snap.last_cmd_seq;
                let ingress = watermarks.unwrap_or_else(|| {
                    // Saved by an older version: only the journal after it is known, as
                    // before; the next snapshot carries them.
                    tracing::warn!(
                        snapshot_seq = seq,
                        "the snapshot has no ingress watermarks: requests it covers whose offsets were not \
                         committed would not be recognised if redelivered"
                    );
                    Ingress::new()
                });
                (Exchange::restore(snap)?, Some(seq), ingress)
            }
            _ => (Exchange::new(engine), None, Ingress::new()),
        };
        // Events went out in the same transactions as the journal: replaying publishes none.
        let sink = KafkaEventSink::new(&cfg.kafka, owner, source.clone(), 0);
        let mut replayed = 0u64;
        let mut events = Vec::new();
        loop {
            let batch = journal.read_from_async(exchange.last_cmd_seq() + 1, 4096).await?;
            if batch.is_empty() {
                break;
            }
            events.clear();
            let mut ranges = Vec::with_capacity(batch.len());
            for env in &batch {
                let start = events.len();
                exchange.apply(env, &mut events);
                ranges.push(start..events.len());
                advance_ingress(&mut ingress, env);
            }
            let items: Vec<Projected<'_>> =
                batch.iter().zip(&ranges).map(|(command, r)| Projected::of(command, &events[r.clone()])).collect();
            projector.project(&source, &items).await?;
            replayed += batch.len() as u64;
        }
        let last_seq = journal.last_seq_async().await?.max(exchange.last_cmd_seq());
        let dedup = recovered_dedup(&ingress);
        tracing::info!(
            shard = %source,
            snapshot_seq,
            replayed,
            last_seq,
            millis = started.elapsed().as_millis() as u64,
            state_hash = %exchange.state_hash(),
            "matching recovered"
        );
        status.last_seq.store(last_seq, Ordering::Relaxed);
        let effects = Effects {
            projector,
            reader: pg.reader(),
            journal: journal.clone(),
            producer,
            status: status.clone(),
            source: source.clone(),
            replies_topic: cfg.kafka.topic(topic::REPLIES),
        };
        let m = Matching {
            ids: Sequencer::new(&exchange, last_seq),
            since_snapshot: replayed,
            cfg,
            exchange,
            journal,
            sink,
            snapshots,
            effects,
            reader: pg.reader(),
            status,
            source,
            ingress,
        };
        Ok((m, dedup))
    }

    /// Lists the configured assets and markets the shard does not have yet.
    pub async fn list_markets(&mut self, stop: &watch::Receiver<bool>) -> Result<(), NodeError> {
        let mut codes: Vec<String> = self.exchange.assets().iter().map(|a| a.code.clone()).collect();
        let mut cmds = Vec::new();
        for code in self.cfg.run.assets() {
            if !codes.contains(&code) {
                cmds.push(Command::AddAsset { code: code.clone(), scale: qt_api::config::ASSET_SCALE });
                codes.push(code);
            }
        }
        let listed: Vec<String> = self.exchange.symbols().iter().map(|s| s.spec.name.clone()).collect();
        let mut next = listed.len() as u16;
        for m in &self.cfg.run.markets {
            if listed.contains(&m.symbol) {
                continue;
            }
            let spec = m.to_spec(SymbolId(next), &codes).map_err(NodeError::Setup)?;
            cmds.push(Command::AddSymbol(spec));
            next += 1;
        }
        if cmds.is_empty() {
            return Ok(());
        }
        tracing::info!(commands = cmds.len(), "listing the configured markets");
        let pending: Vec<Pending> =
            cmds.into_iter().map(|cmd| Pending { env: self.envelope(cmd, None), reply: None }).collect();
        if self.process(pending, stop).await? {
            Ok(())
        } else {
            Err(NodeError::Setup("stopped while listing markets".into()))
        }
    }

    fn envelope(&mut self, cmd: Command, meta: Option<CommandMeta>) -> CommandEnvelope {
        self.ids.envelope(cmd, meta.map(Box::new))
    }

    /// Applies, journals with its events, projects and replies to one batch. False when
    /// asked to stop before the batch was durable (nothing of it was replied); an error
    /// when the shard is owned by another process now.
    async fn process(&mut self, pending: Vec<Pending>, stop: &watch::Receiver<bool>) -> Result<bool, NodeError> {
        let shard = Shard {
            exchange: &mut self.exchange,
            ingress: &mut self.ingress,
            journal: &self.journal,
            sink: &self.sink,
            reader: &self.reader,
            status: &self.status,
            ids: &mut self.ids,
        };
        let applied = match apply_and_journal(shard, pending, stop).await {
            Journaled::Done(a) => a,
            Journaled::Stopped => return Ok(false),
            Journaled::Lost(e) => return Err(e.into()),
        };
        if !self.effects.run(&applied, stop).await {
            return Ok(false);
        }
        self.done(&applied);
        Ok(true)
    }

    /// Whether this process still owns the shard: a transaction carrying one record that
    /// nobody reads (a reply addressed to no intake) must commit. Asked when something
    /// hints that another process took the shard over (the `orders` consumer was fenced
    /// as a static member) and before an idle snapshot, so that a shard with no requests
    /// to journal also learns it was fenced. Other failures are not conclusive (broker
    /// away): Ok.
    async fn check_ownership(&self) -> Result<(), qt_bus_kafka::BusError> {
        let probe = OutRecord {
            topic: self.cfg.kafka.topic(topic::REPLIES),
            partition: None,
            key: format!("ownership-probe-{}", self.source),
            payload: b"{}".to_vec(),
            headers: vec![],
        };
        match self.journal.append_with(&[], &[probe]).await {
            Err(e) if e.is_fatal() => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "ownership probe failed (not conclusive)");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// The hash of the shard's state (what recovery from the journal must reproduce).
    pub fn state_hash(&self) -> String {
        self.exchange.state_hash().to_string()
    }

    /// The sequence number of the last command applied.
    pub fn last_seq(&self) -> u64 {
        self.exchange.last_cmd_seq()
    }

    /// Book-keeping once a batch's effects are durable.
    fn done(&mut self, applied: &Applied) {
        self.status.last_seq.store(
            applied.envs.last().map_or(0, |e| e.seq).max(self.status.last_seq.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        self.since_snapshot += applied.envs.len() as u64;
    }

    async fn snapshot(&mut self) {
        if self.since_snapshot == 0 {
            return;
        }
        let timer = Instant::now();
        // With the ingress watermarks of the same state: a restart from this snapshot then
        // recognises every request it covers, committed offset or not.
        match self.snapshots.save_with_ingress(&self.exchange.snapshot(), Some(&self.ingress)).await {
            Ok(()) => {
                self.since_snapshot = 0;
                metrics::histogram!("qt_snapshot_seconds").record(timer.elapsed().as_secs_f64());
                tracing::info!(
                    seq = self.exchange.last_cmd_seq(),
                    millis = timer.elapsed().as_millis() as u64,
                    "snapshot saved"
                );
            }
            Err(e) => tracing::error!(error = %e, "snapshot failed (recovery replays more)"),
        }
    }

    /// Commits the last batch's offsets synchronously, then snapshots, so that a restart
    /// from the snapshot has little to redeliver. What it covers beyond the committed
    /// offsets is recognised by the snapshot's ingress watermarks.
    async fn confirmed_snapshot(
        &mut self,
        consumer: &mut EffectConsumer,
        unconfirmed: &mut Vec<qt_bus_kafka::Received>,
    ) {
        let mut delay = Duration::from_millis(100);
        for attempt in 0..5 {
            match consumer.commit(unconfirmed).await {
                Ok(()) => {
                    unconfirmed.clear();
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "committing orders offsets failed");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
        if unconfirmed.is_empty() {
            self.snapshot().await;
        } else {
            tracing::warn!("snapshot postponed: the orders offsets are not committed");
        }
    }

    /// Consumes `orders` until `stop`; see the module contract.
    pub async fn run(&mut self, dedup: Dedup, mut stop: watch::Receiver<bool>) -> Result<(), NodeError> {
        let orders = self.cfg.kafka.topic(topic::ORDERS);
        // Groups are namespaced like the topics, so that test namespaces never share one.
        let group_id = self.cfg.kafka.topic(group::ORDER_PROCESSOR);
        // Static membership (the shard's name): a restarted shard owner takes its
        // partitions back at once instead of waiting for the dead member's session to end.
        let mut kafka = self.cfg.kafka.clone();
        kafka.extra.insert("group.instance.id".into(), self.cfg.kafka.topic(&self.source));
        // Requests wait on the shard: a fetch returns as soon as one is there (unless configured).
        kafka.extra.entry("fetch.wait.max.ms".into()).or_insert_with(|| qt_bus_kafka::LONG_POLL_WAIT_MS.into());
        kafka.extra.entry("fetch.min.bytes".into()).or_insert_with(|| "1".into());
        let mut consumer = EffectConsumer::new(&kafka, &group_id, &[orders.as_str()], dedup)?;
        self.status.recovered.store(true, Ordering::Release);
        tracing::info!(shard = %self.source, "matching: consuming orders");
        let mut idle_since = Instant::now();
        // The last batch whose offsets were committed without waiting for the broker: a
        // snapshot first commits it synchronously (less to redeliver after a restart).
        let mut unconfirmed: Vec<Received> = Vec::new();
        // Pipelined: the effects of batch N (projection, replies, events) run while batch
        // N+1 is polled, journaled and applied; those of N+1 start once N's are durable,
        // so the projection keeps the journal's order, and N's offsets are committed then.
        let mut inflight: Option<Applied> = None;
        let effects_stop = stop.clone();
        // A batch whose effects were left undone (asked to stop while retrying them): no
        // snapshot may then cover it, else a restart would not replay it.
        let mut undone = false;
        // After a replaced consumer: no commit (and so no snapshot) until the new one has
        // joined the group and received a batch. A static member committing before its
        // join is fenced again; and the old `unconfirmed` records are redelivered to it
        // (recognised by de-duplication) and committed with that batch.
        let mut awaiting_batch = false;
        loop {
            if *stop.borrow() {
                break;
            }
            let prev = inflight.take();
            let Matching { cfg, exchange, journal, sink, effects, reader, status, ids, ingress, .. } = &mut *self;
            let no_keys = HashSet::new();
            let shard = Shard { exchange, ingress, journal, sink, reader, status, ids };
            let (durable, step) = tokio::join!(
                async {
                    match &prev {
                        Some(b) => effects.run(b, &effects_stop).await,
                        None => true,
                    }
                },
                next_step(
                    &mut consumer,
                    cfg.node.batch_max,
                    shard,
                    prev.as_ref().map_or(&no_keys, |b| &b.keys),
                    &mut stop
                ),
            );
            if let Some(b) = prev {
                if !durable {
                    undone = true;
                    break;
                }
                self.committed(&mut consumer, b, &mut unconfirmed);
            }
            match step {
                Step::Stop => break,
                Step::Abandoned => {
                    undone = true;
                    break;
                }
                Step::Lost(e) => return Err(self.lost(e)),
                Step::Idle => {
                    // A quiet shard snapshots what it has, so a restart replays little;
                    // only while it still owns the shard.
                    if idle_since.elapsed() > Duration::from_secs(5) && self.since_snapshot > 0 && !awaiting_batch {
                        self.check_ownership().await.map_err(|e| self.lost(e))?;
                        self.confirmed_snapshot(&mut consumer, &mut unconfirmed).await;
                    }
                    // A fenced static member may mean that another process joined as the
                    // shard: if it also took the transactional id over, stop here.
                    if consumer.fatal_error().is_some() {
                        self.check_ownership().await.map_err(|e| self.lost(e))?;
                    }
                    // Only here: no batch is in flight (`prev` was committed above, this
                    // step brought none), so nothing is left to commit on the old consumer.
                    let new = |dedup| EffectConsumer::new(&kafka, &group_id, &[orders.as_str()], dedup);
                    if replace_if_fatal(&mut consumer, new).await? {
                        unconfirmed.clear();
                        awaiting_batch = true;
                    }
                }
                Step::Batch(b) => {
                    idle_since = Instant::now();
                    inflight = Some(*b);
                    awaiting_batch = false;
                }
            }
            // Not while awaiting a batch: the snapshot's commit would come from a static
            // member that has not joined yet (fenced again).
            if self.since_snapshot >= self.cfg.node.snapshot_every && !awaiting_batch {
                if let Some(b) = inflight.take() {
                    if !self.effects.run(&b, &stop).await {
                        undone = true;
                        break;
                    }
                    self.committed(&mut consumer, b, &mut unconfirmed);
                }
                self.confirmed_snapshot(&mut consumer, &mut unconfirmed).await;
            }
        }
        if let Some(b) = inflight.take() {
            if self.effects.run(&b, &stop).await {
                self.committed(&mut consumer, b, &mut unconfirmed);
            } else {
                undone = true;
            }
        }
        if undone {
            tracing::warn!(
                "stopping with a batch applied but not journaled, or journaled but not projected: no snapshot \
                 (the next start replays the journal)"
            );
        } else if awaiting_batch {
            tracing::warn!("stopping with a replaced orders consumer that got no batch yet: no commit, no snapshot");
        } else {
            self.confirmed_snapshot(&mut consumer, &mut unconfirmed).await;
        }
        self.status.stopped.store(true, Ordering::Release);
        tracing::info!("matching stopped");
        Ok(())
    }

    /// Another process owns the shard (or the producer can never write again): nothing
    /// more leaves this one, no snapshot; the role stops with an error.
    fn lost(&self, e: qt_bus_kafka::BusError) -> NodeError {
        metrics::counter!("qt_matching_fenced_total").increment(1);
        tracing::error!(
            error = %e,
            shard = %self.source,
            "matching: the shard's transactional producer is fenced or failed fatally; stopping without \
             projecting, replying or snapshotting anything more"
        );
        self.status.stopped.store(true, Ordering::Release);
        NodeError::Lost(e.to_string())
    }

    /// A batch's effects are durable: hand its offsets over without waiting for the broker
    /// (a lost commit redelivers requests the ingress de-duplication skips).
    fn committed(&mut self, consumer: &mut EffectConsumer, b: Applied, unconfirmed: &mut Vec<Received>) {
        let timer = Instant::now();
        if let Err(e) = consumer.commit_nowait(&b.received) {
            tracing::warn!(error = %e, "committing orders offsets failed");
        }
        metrics::histogram!("qt_matching_commit_seconds").record(timer.elapsed().as_secs_f64());
        if let Some(started) = b.started {
            metrics::histogram!("qt_matching_cycle_seconds").record(started.elapsed().as_secs_f64());
        }
        self.done(&b);
        if !b.received.is_empty() {
            *unconfirmed = b.received;
        }
    }
}

/// Replaces `consumer` by a new one when it hit a fatal error (it would never consume
/// again: after a broker restart the shard's static member can be fenced,
/// `FencedInstanceId`). The new one carries the old one's de-duplication state (including
/// what was marked seen once journaled), so the requests redelivered from the last
/// committed offset are skipped. True when replaced.
async fn replace_if_fatal(
    consumer: &mut EffectConsumer,
    new: impl FnOnce(Dedup) -> Result<EffectConsumer, qt_bus_kafka::BusError>,
) -> Result<bool, NodeError> {
    let Some(fatal) = consumer.fatal_error() else { return Ok(false) };
    tracing::warn!(%fatal, "the orders consumer hit a fatal error; replacing it");
    metrics::counter!("qt_consumer_replaced_total").increment(1);
    let old = std::mem::replace(consumer, new(consumer.dedup().clone())?);
    // Closing a consumer talks to the broker: not on the runtime's threads.
    let _ = tokio::task::spawn_blocking(move || drop(old)).await;
    Ok(true)
}

/// What one turn of the consuming loop got.
enum Step {
    Stop,
    /// Asked to stop while a batch applied in memory was not journaled yet: the state must
    /// not be snapshotted.
    Abandoned,
    /// The shard's producer is fenced or failed fatally ([`Matching::lost`]).
    Lost(qt_bus_kafka::BusError),
    /// Nothing to do (no request, or consuming failed and was logged).
    Idle,
    /// A batch journaled and applied.
    Batch(Box<Applied>),
}

/// What [`next_step`] works on.
struct Shard<'a> {
    exchange: &'a mut Exchange,
    ingress: &'a mut Ingress,
    journal: &'a Arc<KafkaJournal>,
    sink: &'a KafkaEventSink,
    reader: &'a PgReader,
    status: &'a EngineStatus,
    ids: &'a mut Sequencer,
}

/// Polls the next batch of `orders` requests; answers the places whose idempotency key was
/// used before (in the read model, in this batch, or in `inflight_keys`: the batch whose
/// effects are under way) from the stored answer; sequences and applies the rest and
/// journals it with its events.
async fn next_step(
    consumer: &mut EffectConsumer,
    batch_max: usize,
    shard: Shard<'_>,
    inflight_keys: &HashSet<Key>,
    stop: &mut watch::Receiver<bool>,
) -> Step {
    let Shard { reader, status, .. } = &shard;
    let (reader, status) = (*reader, *status);
    let poll = Instant::now();
    let batch = tokio::select! {
        b = consumer.next_batch(batch_max, Duration::from_millis(100)) => b,
        _ = stop.changed() => return Step::Stop,
    };
    let batch = match batch {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "consuming orders failed");
            status.degraded.store(true, Ordering::Release);
            tokio::time::sleep(Duration::from_millis(200)).await;
            return Step::Idle;
        }
    };
    if batch.is_empty() {
        return Step::Idle;
    }
    metrics::histogram!("qt_matching_poll_seconds").record(poll.elapsed().as_secs_f64());
    let mut requests = Vec::with_capacity(batch.len());
    for r in &batch {
        if r.duplicate {
            metrics::counter!("qt_orders_redelivered_total").increment(1);
            continue;
        }
        match r.decode::<OrderRequest>() {
            Ok(req) => requests.push((req, format!("{}#{}", r.stream, r.seq))),
            Err(e) => tracing::error!(error = %e, "an orders record is not a request; skipped"),
        }
    }
    // The keys the read model may already have answered: one query for the batch.
    let keyed: Vec<(UserId, String)> =
        requests.iter().filter_map(|(req, _)| keys::of(&req.cmd, req.meta.as_ref())).collect();
    let mut stored = Vec::new();
    if !keyed.is_empty() {
        let timer = Instant::now();
        let now = now_ns();
        let Some(rows) = persist("idempotency", status, stop, || reader.idempotency_many(&keyed, now)).await else {
            return Step::Stop;
        };
        metrics::histogram!("qt_idempotency_check_seconds").record(timer.elapsed().as_secs_f64());
        stored = rows;
    }
    let mut check = KeyCheck::new(stored, inflight_keys);
    let mut pending = Vec::with_capacity(requests.len());
    let mut replayed = Vec::new();
    for (req, ingress) in requests {
        if let Some((user, key)) = keys::of(&req.cmd, req.meta.as_ref()) {
            if let Verdict::Replay(row) = check.check((user.0, key.clone())) {
                replayed.push(Replayed { corr: req.corr, reply_to: req.reply_to, user, key, row });
                continue;
            }
        }
        let mut meta = req.meta.unwrap_or_default();
        meta.ingress = Some(ingress);
        let env = shard.ids.envelope(req.cmd, Some(Box::new(meta)));
        pending.push(Pending { env, reply: Some((req.corr, req.reply_to)) });
    }
    if !replayed.is_empty() {
        metrics::counter!("qt_orders_key_replayed_total").increment(replayed.len() as u64);
    }
    let mut applied = match apply_and_journal(shard, pending, stop).await {
        Journaled::Done(a) => a,
        Journaled::Stopped => return Step::Abandoned,
        Journaled::Lost(e) => return Step::Lost(e),
    };
    // Journaled: a redelivery of these requests from now on is a duplicate.
    consumer.mark_seen(&batch);
    applied.received = batch;
    applied.replayed = replayed;
    applied.keys = check.into_taken();
    Step::Batch(Box::new(applied))
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// How [`apply_and_journal`] ended.
enum Journaled {
    Done(Applied),
    /// Asked to stop before the transaction committed: the batch is applied in memory
    /// only (never visible outside), so that state must not be snapshotted.
    Stopped,
    /// Fenced or fatal: see [`Matching::lost`].
    Lost(qt_bus_kafka::BusError),
}

/// Applies a batch to the exchange (collecting its events), advancing the ingress
/// watermarks, then writes its commands (the journal) and its events in one Kafka
/// transaction, retried (a new transaction with the same records) until it commits.
/// Applying first is safe because nothing of the batch leaves the process before the
/// commit (module contract).
async fn apply_and_journal(shard: Shard<'_>, pending: Vec<Pending>, stop: &watch::Receiver<bool>) -> Journaled {
    let Shard { exchange, ingress, journal, sink, status, .. } = shard;
    let mut applied = Applied { started: Some(Instant::now()), ..Applied::default() };
    if pending.is_empty() {
        return Journaled::Done(applied);
    }
    let mut envs = Vec::with_capacity(pending.len());
    for (i, p) in pending.into_iter().enumerate() {
        if let Some((corr, reply_to)) = p.reply {
            applied.replies.push((i, corr, reply_to));
        }
        envs.push(p.env);
    }
    applied.ranges.reserve(envs.len());
    for env in &envs {
        let start = applied.events.len();
        exchange.apply(env, &mut applied.events);
        applied.ranges.push(start..applied.events.len());
        advance_ingress(ingress, env);
    }
    let events = match sink.records(&applied.events) {
        Ok(r) => r,
        // Cannot happen for the engine's types; never journal a batch without its events.
        Err(e) => return Journaled::Lost(e),
    };
    let timer = Instant::now();
    let fatal = |e: &qt_bus_kafka::BusError| e.is_fatal();
    match persist_unless("journal", status, stop, fatal, || journal.append_with(&envs, &events)).await {
        Persisted::Done(()) => {}
        Persisted::Stopped => return Journaled::Stopped,
        Persisted::Failed(e) => return Journaled::Lost(e),
    }
    metrics::histogram!("qt_journal_append_seconds").record(timer.elapsed().as_secs_f64());
    metrics::histogram!("qt_engine_batch_commands").record(envs.len() as f64);
    metrics::counter!("qt_engine_commands_total").increment(envs.len() as u64);
    metrics::counter!("qt_engine_events_total").increment(applied.events.len() as u64);
    applied.envs = envs;
    applied.visible_at = journal.committed_end();
    Journaled::Done(applied)
}

/// Sends replies without waiting for their acknowledgements (so the next batch does not
/// wait for them).
fn send_replies(producer: &Arc<BusProducer>, replies: Vec<OutRecord>) {
    if replies.is_empty() {
        return;
    }
    let producer = producer.clone();
    tokio::spawn(async move {
        if let Err(e) = producer.send_all(&replies).await {
            tracing::warn!(error = %e, replies = replies.len(), "replies not delivered");
        }
    });
}

fn reply_record(topic: &str, corr: &str, reply_to: &str, outcome: WireOutcome) -> Option<OutRecord> {
    match serde_json::to_vec(&Reply { corr: corr.to_string(), outcome }) {
        Ok(payload) => Some(OutRecord {
            topic: topic.to_string(),
            partition: None,
            key: reply_to.to_string(),
            payload,
            headers: vec![(REPLY_TO, reply_to.to_string())],
        }),
        Err(e) => {
            tracing::error!(error = %e, "reply encoding");
            None
        }
    }
}

/// The replies to the requests of `b` answered without being journaled, with their stored
/// answers; those whose first request was in flight are read now (the batch before this
/// one, or this one, being projected by now). A read that fails leaves the answer out: the
/// intake then reads it itself.
async fn replayed_replies(b: &Applied, topic: &str, reader: &PgReader) -> Vec<OutRecord> {
    let missing: Vec<(UserId, String)> =
        b.replayed.iter().filter(|r| r.row.is_none()).map(|r| (r.user, r.key.clone())).collect();
    let mut read: HashMap<(u64, String), IdempotencyRow> = HashMap::new();
    if !missing.is_empty() {
        match reader.idempotency_many(&missing, now_ns()).await {
            Ok(rows) => read = rows.into_iter().map(|r| ((r.user_id.0, r.key.clone()), r)).collect(),
            Err(e) => tracing::warn!(error = %e, "reading the answers of replayed keys"),
        }
    }
    b.replayed
        .iter()
        .filter_map(|r| {
            let row = r.row.clone().or_else(|| read.get(&(r.user.0, r.key.clone())).cloned());
            let outcome = WireOutcome {
                seq: 0,
                ts: 0,
                order_id: None,
                user_id: None,
                events: Vec::new(),
                placed: None,
                order: None,
                replayed: row,
            };
            reply_record(topic, &r.corr, &r.reply_to, outcome)
        })
        .collect()
}

impl Effects {
    /// Projects the batch into PostgreSQL, then replies to the waiting intake processes
    /// (its events went out with its journal records); true once projected, false when
    /// asked to stop before (the batch is journaled: the next start replays it).
    async fn run(&mut self, b: &Applied, stop: &watch::Receiver<bool>) -> bool {
        if b.envs.is_empty() {
            // Nothing to project: the replays' answers are in the read model already.
            let replies = replayed_replies(b, &self.replies_topic, &self.reader).await;
            send_replies(&self.producer, replies);
            return true;
        }
        let items: Vec<Projected<'_>> =
            b.envs.iter().zip(&b.ranges).map(|(command, r)| Projected::of(command, &b.events[r.clone()])).collect();
        let Effects { projector, reader, producer, status, source, replies_topic, journal } = self;
        let (status, source): (&EngineStatus, &str) = (status, source);
        let timer = Instant::now();
        let project = async {
            // `Backoff` rather than `persist`: the projector is borrowed mutably by each try.
            let mut backoff = Backoff::new("projection", status);
            while let Err(e) = projector.project(source, &items).await {
                if !backoff.wait(&e, stop).await {
                    // Journaled and applied: the next start replays and projects it.
                    return false;
                }
            }
            backoff.succeeded();
            metrics::histogram!("qt_projection_seconds").record(timer.elapsed().as_secs_f64());
            true
        };
        // Meanwhile: the replicas answer a query once they read up to the journal's last
        // stable offset, so a client answered must find its command below it.
        let visible = persist("journal visibility", status, stop, || journal.wait_visible(b.visible_at));
        let (projected, visible) = tokio::join!(project, visible);
        if !projected || visible.is_none() {
            return false;
        }
        {
            // The command is journaled with its events and projected: the intake may
            // answer now (not awaited, so the next batch does not wait for the replies'
            // acknowledgements). Best effort: an intake that misses its reply answers
            // "outcome unknown" and the client's retry with the same key finds the answer.
            let mut answers: HashMap<u64, PlaceAnswer> =
                projector.take_place_answers().into_iter().map(|a| (a.seq, a)).collect();
            let mut changed: HashMap<u64, ChangedOrder> =
                projector.take_changed_orders().into_iter().map(|c| (c.seq, c)).collect();
            let mut replies = Vec::with_capacity(b.replies.len());
            for (i, corr, reply_to) in &b.replies {
                let env = &b.envs[*i];
                let (order_id, user_id) = match &env.cmd {
                    Command::Place(o) => (Some(o.order_id), None),
                    Command::CreateUser { user, .. } => (None, Some(*user)),
                    _ => (None, None),
                };
                let placed =
                    answers.remove(&env.seq).map(|a| WirePlaced { http_status: a.http_status, response: a.response });
                let outcome = WireOutcome {
                    seq: env.seq,
                    ts: env.ts,
                    order_id,
                    user_id,
                    events: b.events[b.ranges[*i].clone()].to_vec(),
                    placed,
                    order: changed.remove(&env.seq).map(|c| (c.order, c.fills)),
                    replayed: None,
                };
                replies.extend(reply_record(replies_topic, corr, reply_to, outcome));
            }
            replies.extend(replayed_replies(b, replies_topic, reader).await);
            send_replies(producer, replies);
        }
        status.degraded.store(false, Ordering::Release);
        true
    }
}

/// `stream#seq` of `meta.ingress`.
fn parse_ingress(s: &str) -> Option<(String, u64)> {
    let (stream, seq) = s.rsplit_once('#')?;
    Some((stream.to_string(), seq.parse().ok()?))
}

/// Advances the ingress watermarks past `env`'s request (`meta.ingress`), if it has one.
fn advance_ingress(ingress: &mut Ingress, env: &CommandEnvelope) {
    if let Some((stream, seq)) = env.meta.as_ref().and_then(|m| m.ingress.as_deref()).and_then(parse_ingress) {
        let last = ingress.entry(stream).or_insert(0);
        *last = (*last).max(seq);
    }
}

/// The `orders` de-duplication a recovered shard starts with: the watermarks of its
/// snapshot advanced by the journal replayed after it. Not the journal alone: a snapshot
/// may cover requests whose `orders` offsets were never committed (e.g. taken after a
/// replaced consumer's first batch, which held only part of the redelivered requests),
/// and their journal entries, before the snapshot, are not replayed.
fn recovered_dedup(ingress: &Ingress) -> Dedup {
    let mut dedup = Dedup::new();
    for (stream, seq) in ingress {
        dedup.seed(stream.clone(), *seq);
    }
    dedup
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ingress(seq: u64, ingress: Option<&str>) -> CommandEnvelope {
        let mut env = CommandEnvelope::new(seq, 0, Command::CreateUser { user: UserId(seq), limits: None });
        env.meta = Some(Box::new(CommandMeta { ingress: ingress.map(str::to_string), ..CommandMeta::default() }));
        env
    }

    /// The case of a snapshot taken after a replaced consumer's first batch: it applied
    /// requests up to `s#7` whose offsets were never committed, and the journal after it
    /// holds nothing of stream `s`. Seeded from that journal alone, `s#5..=7` redelivered
    /// would be applied a second time.
    #[test]
    fn recovery_recognises_what_the_snapshot_covers_and_what_the_journal_after_it_adds() {
        let mut ingress: Ingress = [("s".to_string(), 7), ("t".to_string(), 2)].into();
        for env in [with_ingress(10, Some("t#3")), with_ingress(11, None), with_ingress(12, Some("u#1"))] {
            advance_ingress(&mut ingress, &env);
        }
        let d = recovered_dedup(&ingress);
        assert!(d.is_duplicate("s", 5) && d.is_duplicate("s", 7), "covered by the snapshot only");
        assert!(!d.is_duplicate("s", 8));
        assert!(d.is_duplicate("t", 3) && !d.is_duplicate("t", 4), "the journal after the snapshot");
        assert!(d.is_duplicate("u", 1) && !d.is_duplicate("v", 1));
        // A watermark never goes back.
        advance_ingress(&mut ingress, &with_ingress(13, Some("s#6")));
        assert_eq!(ingress["s"], 7);
    }

    #[test]
    fn ingress_round_trips() {
        assert_eq!(parse_ingress("orders/1@orders/1#42"), Some(("orders/1@orders/1".into(), 42)));
        assert_eq!(parse_ingress("nohash"), None);
    }
}
