//! A read-only replica of a matching shard's engine: it tails the shard's journal (its
//! partition of `commands.matching`) and applies every command to its own [`Exchange`].
//! The engine is deterministic, so the replica's books, balances and limits are those of
//! the shard at the same sequence number.
//!
//! Contract:
//! - Start: the shard's latest PostgreSQL snapshot (or nothing), then the journal after it.
//! - [`Replica::query`] answers the engine queries of the HTTP layer (book depth, tops,
//!   limits, the pre-trade dry run, listed markets) only once the replica has applied
//!   everything the journal held when the query arrived (its high watermark): a client that
//!   got an answer from any intake process sees its command reflected (read your writes,
//!   across processes), at the price of one metadata round trip per query.
//! - Every applied batch is broadcast as [`Published`] (events and tops of the touched
//!   books), what the WebSocket sessions of the all-in-one mode consume, once the read
//!   model has projected it (as in the all-in-one mode, where projection precedes
//!   publication: a session reads the orders an event names from the read model). A read
//!   model stuck for more than 2 s no longer holds the stream back.
//! - The replica runs on its own thread (blocking Kafka consumer, CPU-bound apply).

use crate::NodeError;
use qt_api::runtime::{now_ns, Answer, EngineStatus, Published, Query, Top};
use qt_bus_kafka::{topic, KafkaConfig, LagContext};
use qt_core::SymbolId;
use qt_engine::{CommandEnvelope, EngineConfig, Event, EventEnvelope, Exchange};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::atomic::Ordering;
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};

struct Ask {
    query: Query,
    /// Answer once the replica's next offset reaches this.
    min_offset: i64,
    reply: oneshot::Sender<Answer>,
}

/// Handle to the replica thread. Cheap to clone.
#[derive(Clone)]
pub struct Replica {
    tx: std_mpsc::Sender<Ask>,
    events: broadcast::Sender<Arc<Published>>,
    meta: Arc<BaseConsumer>,
    topic: String,
    partition: i32,
    timeout: Duration,
    pub status: Arc<EngineStatus>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").field("topic", &self.topic).field("partition", &self.partition).finish()
    }
}

/// The group id (never joined) and `group` label of the replica's journal consumer.
const REPLICA_GROUP: &str = "qt-replica";

fn consumer(cfg: &KafkaConfig, what: &str) -> Result<BaseConsumer, NodeError> {
    Ok(consumer_config(cfg, what).create()?)
}

fn consumer_config(cfg: &KafkaConfig, what: &str) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("client.id", format!("{}-{what}", cfg.client_id))
        // Assigned partitions only: the group id is required by librdkafka, never joined.
        .set("group.id", format!("qt-{what}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // The journal is written in transactions: never apply an aborted batch (a fenced
        // shard's), and the watermarks asked for end at the last stable offset.
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", qt_bus_kafka::LONG_POLL_WAIT_MS)
        .set("socket.nagle.disable", "true")
        .set("enable.partition.eof", "false");
    for (k, v) in &cfg.extra {
        c.set(k, v);
    }
    c
}

impl Replica {
    /// Starts the replica from `snapshot` (when given) and the journal after it.
    pub fn start(
        cfg: &KafkaConfig,
        partition: i32,
        snapshot: Option<qt_engine::Snapshot>,
        engine: EngineConfig,
        status: Arc<EngineStatus>,
        projection: (qt_store_postgres::PgReader, String),
    ) -> Result<Replica, NodeError> {
        let topic = cfg.topic(topic::COMMANDS_MATCHING);
        let exchange = match snapshot {
            Some(s) => Exchange::restore(s)?,
            None => Exchange::new(engine),
        };
        // The journal tail reports `qt_kafka_consumer_lag` (its thread polls it).
        let mut tail = consumer_config(cfg, "replica");
        if !cfg.extra.contains_key("statistics.interval.ms") {
            qt_bus_kafka::enable_lag_stats(&mut tail);
        }
        let tail: BaseConsumer<LagContext> = tail.create_with_context(LagContext::new(REPLICA_GROUP))?;
        let meta = Arc::new(consumer(cfg, "replica-meta")?);
        let (tx, rx) = std_mpsc::channel();
        let (events, _) = broadcast::channel(1024);
        let (applied_tx, applied_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(publish_when_projected(applied_rx, events.clone(), projection.0, projection.1));
        let mut worker = Worker {
            exchange,
            consumer: tail,
            topic: topic.clone(),
            partition,
            next_offset: 0,
            pending: Vec::new(),
            events: applied_tx,
            status: status.clone(),
        };
        worker.seek_after_state()?;
        std::thread::Builder::new()
            .name("qt-replica".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| NodeError::Setup(format!("replica thread: {e}")))?;
        Ok(Replica { tx, events, meta, topic, partition, timeout: cfg.request_timeout(), status })
    }

    pub fn events(&self) -> broadcast::Sender<Arc<Published>> {
        self.events.clone()
    }

    /// The journal's last stable offset (the offset after its last committed transaction's
    /// marker: the replica's consumer is `read_committed`).
    async fn high_watermark(&self) -> Result<i64, NodeError> {
        let (meta, topic, partition, timeout) = (self.meta.clone(), self.topic.clone(), self.partition, self.timeout);
        let w = tokio::task::spawn_blocking(move || meta.fetch_watermarks(&topic, partition, timeout))
            .await
            .map_err(|e| NodeError::Setup(e.to_string()))??;
        Ok(w.1)
    }

    /// Answers `query` once the replica has caught up with the journal (module contract).
    pub async fn query(&self, query: Query) -> Result<Answer, NodeError> {
        let min_offset = self.high_watermark().await?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Ask { query, min_offset, reply })
            .map_err(|_| NodeError::Setup("the replica thread stopped".into()))?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(_)) => Err(NodeError::Setup("the replica thread stopped".into())),
            Err(_) => Err(NodeError::Setup("the replica did not catch up with the journal in time".into())),
        }
    }
}

struct Worker {
    exchange: Exchange,
    consumer: BaseConsumer<LagContext>,
    topic: String,
    partition: i32,
    /// Offset of the next journal record to apply.
    next_offset: i64,
    pending: Vec<Ask>,
    /// Applied batches with their last sequence number, to [`publish_when_projected`].
    events: tokio::sync::mpsc::UnboundedSender<(u64, Arc<Published>)>,
    status: Arc<EngineStatus>,
}

/// Broadcasts each applied batch once the read model holds it (module contract).
async fn publish_when_projected(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(u64, Arc<Published>)>,
    events: broadcast::Sender<Arc<Published>>,
    reader: qt_store_postgres::PgReader,
    source: String,
) {
    let mut projected = 0u64;
    while let Some((seq, published)) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while projected < seq && tokio::time::Instant::now() < deadline {
            match reader.projected_seq(&source).await {
                Ok(p) => projected = projected.max(p),
                Err(e) => tracing::warn!(error = %e, "replica: projected sequence unknown"),
            }
            if projected < seq {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = events.send(published);
    }
}

impl Worker {
    /// Assigns the journal partition at or before the state's next command: sequence
    /// numbers of a shard are dense from 1 and each takes at least one offset (commit
    /// markers and aborted records take more), so command `s` sits at offset `s - 1` or
    /// later and every record before that offset is already applied (skipped when read).
    /// [`Worker::apply_record`] checks and starts over from the beginning when the guess
    /// is wrong (retention removed the start).
    fn seek_after_state(&mut self) -> Result<(), NodeError> {
        let last = self.exchange.last_cmd_seq();
        let offset = i64::try_from(last).unwrap_or(i64::MAX);
        self.assign(offset)
    }

    fn assign(&mut self, offset: i64) -> Result<(), NodeError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, self.partition, Offset::Offset(offset))?;
        self.consumer.assign(&tpl)?;
        self.next_offset = offset;
        Ok(())
    }

    fn run(&mut self, rx: std_mpsc::Receiver<Ask>) {
        let mut out = Vec::new();
        let mut caught_up_once = false;
        loop {
            loop {
                match rx.try_recv() {
                    Ok(ask) => self.pending.push(ask),
                    Err(std_mpsc::TryRecvError::Empty) => break,
                    Err(std_mpsc::TryRecvError::Disconnected) => return,
                }
            }
            out.clear();
            let mut applied = 0;
            let mut wait = Duration::from_millis(if self.pending.is_empty() { 20 } else { 2 });
            while applied < 4096 {
                match self.consumer.poll(wait) {
                    None => break,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "replica: reading the journal");
                        break;
                    }
                    Some(Ok(m)) => {
                        wait = Duration::ZERO;
                        let offset = m.offset();
                        let env: Result<CommandEnvelope, _> = serde_json::from_slice(m.payload().unwrap_or_default());
                        match env {
                            Ok(env) => {
                                if !self.apply_record(offset, &env, &mut out) {
                                    break;
                                }
                                applied += 1;
                            }
                            Err(e) => {
                                tracing::error!(error = %e, offset, "replica: not a command envelope; skipped");
                                self.next_offset = offset + 1;
                            }
                        }
                    }
                }
            }
            self.advance_to_position();
            if applied > 0 {
                self.publish(std::mem::take(&mut out));
                self.status.last_seq.store(self.exchange.last_cmd_seq(), Ordering::Relaxed);
            }
            if !caught_up_once && applied == 0 {
                caught_up_once = true;
                self.status.recovered.store(true, Ordering::Release);
                tracing::info!(seq = self.exchange.last_cmd_seq(), "replica caught up with the journal");
            }
            let next = self.next_offset;
            let mut i = 0;
            while i < self.pending.len() {
                if self.pending[i].min_offset <= next {
                    let ask = self.pending.swap_remove(i);
                    let answer = self.answer(ask.query);
                    let _ = ask.reply.send(answer);
                } else {
                    i += 1;
                }
            }
        }
    }

    /// Applies one journal record; false when the position was wrong and the partition was
    /// re-assigned (the caller stops this poll round).
    fn apply_record(&mut self, offset: i64, env: &CommandEnvelope, out: &mut Vec<EventEnvelope>) -> bool {
        let last = self.exchange.last_cmd_seq();
        if env.seq <= last {
            self.next_offset = offset + 1;
            return true;
        }
        if env.seq != last + 1 {
            tracing::warn!(
                seq = env.seq,
                expected = last + 1,
                "replica: journal position guessed wrong; reading from the start"
            );
            if last == 0 {
                // Nothing before it exists any more: start from what is there.
                tracing::error!("replica: the journal lost its start and no snapshot covers it");
            }
            if let Err(e) = self.assign_beginning() {
                tracing::error!(error = %e, "replica: re-assign failed");
            }
            return false;
        }
        self.exchange.apply(env, out);
        self.next_offset = offset + 1;
        true
    }

    /// Moves `next_offset` to the consumer's position: past the commit markers (and the
    /// records of aborted transactions) that follow the last record applied, which are
    /// never handed out but take offsets. Without it a query waiting for the last stable
    /// offset would wait for the next batch.
    fn advance_to_position(&mut self) {
        let Ok(tpl) = self.consumer.position() else { return };
        if let Some(rdkafka::Offset::Offset(o)) = tpl.find_partition(&self.topic, self.partition).map(|p| p.offset()) {
            self.next_offset = self.next_offset.max(o);
        }
    }

    fn assign_beginning(&mut self) -> Result<(), NodeError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, self.partition, Offset::Beginning)?;
        self.consumer.assign(&tpl)?;
        Ok(())
    }

    fn publish(&mut self, events: Vec<EventEnvelope>) {
        let mut touched: Vec<SymbolId> = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::BookChanged { symbol, .. } | Event::Trade { symbol, .. } => Some(*symbol),
                _ => None,
            })
            .collect();
        touched.sort_unstable();
        touched.dedup();
        let tops = touched.into_iter().filter_map(|s| self.top(s)).collect();
        let _ = self.events.send((self.exchange.last_cmd_seq(), Arc::new(Published { events, tops })));
    }

    fn top(&self, symbol: SymbolId) -> Option<Top> {
        qt_api::runtime::top_of(&self.exchange, symbol)
    }

    /// A `CheckOrder` is a dry run (`check_order` changes nothing), so the replica stays
    /// identical to the shard.
    fn answer(&mut self, query: Query) -> Answer {
        qt_api::runtime::answer_query(&mut self.exchange, query, now_ns())
    }
}
