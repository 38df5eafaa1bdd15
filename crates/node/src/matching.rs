//! The matching role: the sequencer and engine of one shard (one shard owns every symbol
//! by default; see the crate documentation).
//!
//! Contract:
//! - Recovery at start: the latest PostgreSQL snapshot of the shard (only when the read
//!   model has caught up with it, else from scratch), then the shard's journal (a partition
//!   of `commands.matching`) after it. Replayed commands are projected again (the projector
//!   skips what it holds) and their events published again (consumers de-duplicate by
//!   `(source, seq)`), so a crash at any point leaves nothing missing downstream.
//! - Markets of the configuration that are not listed yet are listed at start, through the
//!   same path as every command.
//! - Then, per batch of `orders` requests: give each its sequence number, time and ids;
//!   journal the batch (acknowledged by all in-sync replicas); apply; then, together,
//!   project into PostgreSQL (and once projected, reply to the waiting intake processes)
//!   and publish the events; only when both are durable commit the `orders` offsets
//!   (without waiting for the broker's confirmation, except before a snapshot). A failing
//!   dependency is retried with backoff while `/ready` says degraded; nothing is replied
//!   before it is durable.
//! - Each journaled command carries `meta.ingress` (`stream#seq` of the request in
//!   `orders`): after a crash between the journal write and the offset commit, the
//!   redelivered requests are recognised and skipped, so a request is applied once.
//! - A place whose `(user, Idempotency-Key)` the shard sequenced recently (since its start
//!   or in the journal it replayed) is not applied again: it is answered with an empty
//!   outcome once the batch is durable, and the intake replays the first answer from the
//!   read model ([`crate::keys`]).
//! - A snapshot every `node.snapshot_every` commands, after the offsets are committed, and
//!   at shutdown.

use crate::config::NodeConfig;
use crate::keys::RecentKeys;
use crate::wire::{OrderRequest, Reply, WireOutcome, REPLY_TO};
use crate::NodeError;
use qt_api::runtime::{EngineStatus, Sequencer};
use qt_bus_kafka::{group, topic, BusProducer, Dedup, EffectConsumer, KafkaEventSink, KafkaJournal, OutRecord};
use qt_core::SymbolId;
use qt_engine::{Command, CommandEnvelope, CommandMeta, EngineConfig, EventEnvelope, Exchange};
use qt_store_postgres::{PgSnapshotStore, PgStore, Projected, Projector};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A command being processed and who waits for its outcome.
struct Pending {
    env: CommandEnvelope,
    reply: Option<(String, String)>,
}

pub struct Matching {
    cfg: Arc<NodeConfig>,
    exchange: Exchange,
    journal: Arc<KafkaJournal>,
    snapshots: PgSnapshotStore,
    projector: Projector,
    sink: KafkaEventSink,
    producer: Arc<BusProducer>,
    status: Arc<EngineStatus>,
    source: String,
    ids: Sequencer,
    since_snapshot: u64,
    events: Vec<EventEnvelope>,
    keys: RecentKeys,
}

impl std::fmt::Debug for Matching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matching").field("source", &self.source).field("next_seq", &self.ids.next_seq).finish()
    }
}

/// Retries `op` with exponential backoff (100 ms doubling up to 5 s) until it succeeds or
/// `stop` is set; while it fails the role reports degraded.
async fn persist<T, E: std::fmt::Display, F, Fut>(
    what: &str,
    status: &EngineStatus,
    stop: &watch::Receiver<bool>,
    mut op: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut delay = Duration::from_millis(100);
    let mut failed = false;
    loop {
        match op().await {
            Ok(v) => {
                if failed {
                    tracing::info!(what, "recovered");
                    status.degraded.store(false, Ordering::Release);
                }
                return Some(v);
            }
            Err(e) => {
                if !failed {
                    tracing::error!(what, error = %e, "failed; retrying with backoff");
                }
                failed = true;
                status.degraded.store(true, Ordering::Release);
                metrics::counter!("qt_node_retries_total", "what" => what.to_string()).increment(1);
                if *stop.borrow() {
                    return None;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

impl Matching {
    /// Recovers the shard (see the module contract).
    pub async fn recover(
        cfg: Arc<NodeConfig>,
        pg: &PgStore,
        producer: Arc<BusProducer>,
        status: Arc<EngineStatus>,
    ) -> Result<(Matching, Dedup), NodeError> {
        let started = Instant::now();
        let source = cfg.node.shard.clone();
        let journal = Arc::new(KafkaJournal::new(
            &cfg.kafka,
            producer.clone(),
            cfg.kafka.topic(topic::COMMANDS_MATCHING),
            cfg.node.partition,
        )?);
        let snapshots = pg.snapshots(source.clone());
        let mut projector = pg.projector();
        let projected = projector.projected_seq(&source).await?;
        let engine = EngineConfig { risk_enabled: cfg.run.engine.risk_enabled, ..EngineConfig::default() };
        let (mut exchange, snapshot_seq) = match snapshots.latest_async().await? {
            // The read model is behind the snapshot: replay from the start so that the
            // projector sees every command it misses.
            Some(snap) if snap.last_cmd_seq <= projected => {
                let seq = snap.last_cmd_seq;
                (Exchange::restore(snap)?, Some(seq))
            }
            _ => (Exchange::new(engine), None),
        };
        let mut sink = KafkaEventSink::new(&cfg.kafka, producer.clone(), source.clone(), 0);
        let mut dedup = Dedup::new();
        let mut keys = RecentKeys::default();
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
                if let Some((stream, seq)) =
                    env.meta.as_ref().and_then(|m| m.ingress.as_deref()).and_then(parse_ingress)
                {
                    dedup.seed(stream, seq);
                }
                if let Some(k) = RecentKeys::of(&env.cmd, env.meta.as_deref()) {
                    keys.insert(k);
                }
            }
            let items: Vec<Projected<'_>> = batch
                .iter()
                .zip(&ranges)
                .map(|(command, r)| Projected { command, events: &events[r.clone()] })
                .collect();
            projector.project(&source, &items).await?;
            sink.publish_async(&events).await?;
            replayed += batch.len() as u64;
        }
        let last_seq = journal.last_seq_async().await?.max(exchange.last_cmd_seq());
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
        let m = Matching {
            ids: Sequencer::new(&exchange, last_seq),
            since_snapshot: replayed,
            cfg,
            exchange,
            journal,
            snapshots,
            projector,
            sink,
            producer,
            status,
            source,
            events,
            keys,
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
        let mut pending: Vec<Pending> =
            cmds.into_iter().map(|cmd| Pending { env: self.envelope(cmd, None), reply: None }).collect();
        if self.process(&mut pending, stop).await {
            Ok(())
        } else {
            Err(NodeError::Setup("stopped while listing markets".into()))
        }
    }

    fn envelope(&mut self, cmd: Command, meta: Option<CommandMeta>) -> CommandEnvelope {
        self.ids.envelope(cmd, meta.map(Box::new))
    }

    /// Journals, applies, projects, publishes and replies to one batch. False when asked
    /// to stop before the batch was durable (nothing of it was replied).
    async fn process(&mut self, pending: &mut Vec<Pending>, stop: &watch::Receiver<bool>) -> bool {
        if pending.is_empty() {
            return true;
        }
        let envs: Vec<CommandEnvelope> = pending.iter().map(|p| p.env.clone()).collect();
        let timer = Instant::now();
        let journal = self.journal.clone();
        // The same batch (same sequence numbers) is retried: the journal skips what an
        // uncertain earlier attempt already wrote.
        if persist("journal", &self.status, stop, || journal.append_async(&envs)).await.is_none() {
            return false;
        }
        metrics::histogram!("qt_journal_append_seconds").record(timer.elapsed().as_secs_f64());
        metrics::histogram!("qt_engine_batch_commands").record(envs.len() as f64);
        metrics::counter!("qt_engine_commands_total").increment(envs.len() as u64);

        self.events.clear();
        let mut ranges = Vec::with_capacity(envs.len());
        for env in &envs {
            let start = self.events.len();
            self.exchange.apply(env, &mut self.events);
            ranges.push(start..self.events.len());
        }
        let items: Vec<Projected<'_>> = envs
            .iter()
            .zip(&ranges)
            .map(|(command, r)| Projected { command, events: &self.events[r.clone()] })
            .collect();
        // The replies, encoded now, go out once the batch is projected.
        let mut replies = Vec::new();
        for (p, range) in pending.drain(..).zip(&ranges) {
            let Some((corr, reply_to)) = p.reply else { continue };
            let (order_id, user_id) = match &p.env.cmd {
                Command::Place(o) => (Some(o.order_id), None),
                Command::CreateUser { user, .. } => (None, Some(*user)),
                _ => (None, None),
            };
            let reply = Reply {
                corr,
                outcome: WireOutcome {
                    seq: p.env.seq,
                    ts: p.env.ts,
                    order_id,
                    user_id,
                    events: self.events[range.clone()].to_vec(),
                },
            };
            match serde_json::to_vec(&reply) {
                Ok(payload) => replies.push(OutRecord {
                    topic: self.cfg.kafka.topic(topic::REPLIES),
                    partition: None,
                    key: reply_to.clone(),
                    payload,
                    headers: vec![(REPLY_TO, reply_to)],
                }),
                Err(e) => tracing::error!(error = %e, "reply encoding"),
            }
        }
        let (projector, source, status) = (&mut self.projector, &self.source, &self.status);
        let (sink, events, producer) = (&mut self.sink, &self.events, &self.producer);
        // Projection and event publication both follow the journal append and run
        // together; the offsets are committed only once both are durable.
        let project = async {
            let timer = Instant::now();
            let mut delay = Duration::from_millis(100);
            // Not `persist`: the projector is borrowed mutably by each try.
            loop {
                match projector.project(source, &items).await {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "projection failed; retrying with backoff");
                        status.degraded.store(true, Ordering::Release);
                        if *stop.borrow() {
                            // Journaled and applied: the next start replays and projects it.
                            return false;
                        }
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
            metrics::histogram!("qt_projection_seconds").record(timer.elapsed().as_secs_f64());
            // The command is journaled and projected: the intake may answer now, while the
            // events go out (not awaited, so the next batch does not wait for the replies'
            // acknowledgements). Best effort: an intake that misses its reply answers
            // "outcome unknown" and the client's retry with the same key finds the answer.
            if !replies.is_empty() {
                let producer = producer.clone();
                tokio::spawn(async move {
                    if let Err(e) = producer.send_all(&replies).await {
                        tracing::warn!(error = %e, replies = replies.len(), "replies not delivered");
                    }
                });
            }
            true
        };
        let publish = async {
            let timer = Instant::now();
            let mut delay = Duration::from_millis(100);
            loop {
                match sink.publish_async(events).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "publishing events failed; retrying with backoff");
                        status.degraded.store(true, Ordering::Release);
                        if *stop.borrow() {
                            return false;
                        }
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
            metrics::histogram!("qt_events_publish_seconds").record(timer.elapsed().as_secs_f64());
            true
        };
        let (projected, published) = tokio::join!(project, publish);
        if !(projected && published) {
            return false;
        }
        let events = std::mem::take(&mut self.events);
        self.status.degraded.store(false, Ordering::Release);
        metrics::counter!("qt_engine_events_total").increment(events.len() as u64);

        self.events = events;
        self.status.last_seq.store(self.ids.next_seq - 1, Ordering::Relaxed);
        self.since_snapshot += envs.len() as u64;
        true
    }

    /// Answers the places refused for a key already used with an empty outcome (see the
    /// module contract), once the batch before them is projected.
    fn answer_same_key(&self, again: Vec<(String, String)>) {
        if again.is_empty() {
            return;
        }
        let topic = self.cfg.kafka.topic(topic::REPLIES);
        let replies: Vec<OutRecord> = again
            .into_iter()
            .filter_map(|(corr, reply_to)| {
                let outcome = WireOutcome { seq: 0, ts: 0, order_id: None, user_id: None, events: Vec::new() };
                let payload = serde_json::to_vec(&Reply { corr, outcome }).ok()?;
                Some(OutRecord {
                    topic: topic.clone(),
                    partition: None,
                    key: reply_to.clone(),
                    payload,
                    headers: vec![(REPLY_TO, reply_to)],
                })
            })
            .collect();
        let producer = self.producer.clone();
        tokio::spawn(async move {
            if let Err(e) = producer.send_all(&replies).await {
                tracing::warn!(error = %e, replies = replies.len(), "replies not delivered");
            }
        });
    }

    async fn snapshot(&mut self) {
        if self.since_snapshot == 0 {
            return;
        }
        let timer = Instant::now();
        match self.snapshots.save_async(&self.exchange.snapshot()).await {
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

    /// Commits the last batch's offsets synchronously, then snapshots: a snapshot never
    /// covers a request whose offset may still be uncommitted (it would be redelivered
    /// and not recognised, the journal before the snapshot not being replayed).
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
    pub async fn run(mut self, dedup: Dedup, mut stop: watch::Receiver<bool>) -> Result<(), NodeError> {
        let orders = self.cfg.kafka.topic(topic::ORDERS);
        // Groups are namespaced like the topics, so that test namespaces never share one.
        let group_id = self.cfg.kafka.topic(group::ORDER_PROCESSOR);
        // Static membership (the shard's name): a restarted shard owner takes its
        // partitions back at once instead of waiting for the dead member's session to end.
        let mut kafka = self.cfg.kafka.clone();
        kafka.extra.insert("group.instance.id".into(), self.cfg.kafka.topic(&self.source));
        // Requests wait on the shard: fetch them as soon as one is there (unless configured).
        kafka.extra.entry("fetch.wait.max.ms".into()).or_insert_with(|| "5".into());
        kafka.extra.entry("fetch.min.bytes".into()).or_insert_with(|| "1".into());
        let mut consumer = EffectConsumer::new(&kafka, &group_id, &[orders.as_str()], dedup)?;
        self.status.recovered.store(true, Ordering::Release);
        tracing::info!(shard = %self.source, "matching: consuming orders");
        let mut idle_since = Instant::now();
        // The last batch whose offsets were committed without waiting for the broker: a
        // snapshot first commits it synchronously (recovery seeds the ingress
        // de-duplication only from the journal after the snapshot).
        let mut unconfirmed: Vec<qt_bus_kafka::Received> = Vec::new();
        // After a replaced consumer: no commit (and so no snapshot) until the new one has
        // joined the group and received a batch. A static member committing before its
        // join is fenced again; and the old `unconfirmed` records are redelivered to it
        // (recognised by de-duplication) and committed with that batch.
        let mut awaiting_batch = false;
        loop {
            if *stop.borrow() {
                break;
            }
            let poll = Instant::now();
            let batch = tokio::select! {
                b = consumer.next_batch(self.cfg.node.batch_max, Duration::from_millis(100)) => b,
                _ = stop.changed() => break,
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "consuming orders failed");
                    self.status.degraded.store(true, Ordering::Release);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let new = |dedup| EffectConsumer::new(&kafka, &group_id, &[orders.as_str()], dedup);
                    if replace_if_fatal(&mut consumer, new).await? {
                        unconfirmed.clear();
                        awaiting_batch = true;
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                // A quiet shard snapshots what it has, so a restart replays little.
                if idle_since.elapsed() > Duration::from_secs(5) && self.since_snapshot > 0 && !awaiting_batch {
                    self.confirmed_snapshot(&mut consumer, &mut unconfirmed).await;
                }
                let new = |dedup| EffectConsumer::new(&kafka, &group_id, &[orders.as_str()], dedup);
                if replace_if_fatal(&mut consumer, new).await? {
                    unconfirmed.clear();
                    awaiting_batch = true;
                }
                continue;
            }
            let cycle = Instant::now();
            metrics::histogram!("qt_matching_poll_seconds").record(cycle.duration_since(poll).as_secs_f64());
            idle_since = Instant::now();
            let mut pending = Vec::with_capacity(batch.len());
            let mut again = Vec::new();
            for r in &batch {
                if r.duplicate {
                    metrics::counter!("qt_orders_redelivered_total").increment(1);
                    continue;
                }
                match r.decode::<OrderRequest>() {
                    Ok(req) => {
                        if let Some(k) = RecentKeys::of(&req.cmd, req.meta.as_ref()) {
                            if !self.keys.insert(k) {
                                metrics::counter!("qt_places_same_key_total").increment(1);
                                again.push((req.corr, req.reply_to));
                                continue;
                            }
                        }
                        let mut meta = req.meta.unwrap_or_default();
                        meta.ingress = Some(format!("{}#{}", r.stream, r.seq));
                        let env = self.envelope(req.cmd, Some(meta));
                        pending.push(Pending { env, reply: Some((req.corr, req.reply_to)) });
                    }
                    Err(e) => tracing::error!(error = %e, "an orders record is not a request; skipped"),
                }
            }
            if !self.process(&mut pending, &stop).await {
                break;
            }
            self.answer_same_key(again);
            // The batch's effects are durable: hand its offsets over without waiting for the
            // broker (a lost commit redelivers requests the ingress de-duplication skips).
            let timer = Instant::now();
            if let Err(e) = consumer.commit_nowait(&batch) {
                tracing::warn!(error = %e, "committing orders offsets failed");
            }
            unconfirmed = batch;
            awaiting_batch = false;
            metrics::histogram!("qt_matching_commit_seconds").record(timer.elapsed().as_secs_f64());
            metrics::histogram!("qt_matching_cycle_seconds").record(cycle.elapsed().as_secs_f64());
            if self.since_snapshot >= self.cfg.node.snapshot_every {
                self.confirmed_snapshot(&mut consumer, &mut unconfirmed).await;
            }
        }
        if !awaiting_batch {
            self.confirmed_snapshot(&mut consumer, &mut unconfirmed).await;
        }
        self.status.stopped.store(true, Ordering::Release);
        tracing::info!("matching stopped");
        Ok(())
    }
}

/// Replaces `consumer` by a new one when it hit a fatal error (it would never consume
/// again: after a broker restart the shard's static member can be fenced,
/// `FencedInstanceId`). The new one carries the old one's de-duplication state, so the
/// requests redelivered from the last committed offset are skipped. True when replaced.
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

/// `stream#seq` of `meta.ingress`.
fn parse_ingress(s: &str) -> Option<(String, u64)> {
    let (stream, seq) = s.rsplit_once('#')?;
    Some((stream.to_string(), seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingress_round_trips() {
        assert_eq!(parse_ingress("orders/1@orders/1#42"), Some(("orders/1@orders/1".into(), 42)));
        assert_eq!(parse_ingress("nohash"), None);
    }
}
