//! The engine runtime of the all-in-one mode: one thread owns the [`Exchange`], the SQLite
//! journal, the snapshot store and the read-model projector.
//!
//! Contract:
//! - Requests arrive over a bounded channel; [`EngineHandle::submit`] answers
//!   [`EngineError::Busy`] instead of waiting when it is full (back pressure, never an
//!   unbounded queue).
//! - The thread drains up to `batch_max` requests, gives each command its sequence number,
//!   time and ids (order id, user id), journals the whole batch in one transaction (group
//!   commit), applies it, projects it into the read model, and only then answers the
//!   callers and publishes the events. A command that is answered is durable; a batch the
//!   journal refused is neither applied nor answered with success.
//! - A place carrying an idempotency key is checked against the stored keys on this
//!   thread, before it is journaled: a used key is answered with its stored row and
//!   nothing is appended. The answers of new keyed places, and the order of a cancel or
//!   amend, are read back here too (the projector's connection has the pages it just
//!   wrote in cache), so handlers do not re-read SQLite on the hot path.
//! - Simulator steps run on the same thread between batches, so the simulator always sees
//!   the effects of its previous actions.
//! - A snapshot is written every `snapshot_every` commands, only after the read model has
//!   caught up with it, so recovery never needs commands older than the latest snapshot.
//! - With each snapshot, idempotency answers older than 24 h are deleted from the read
//!   model (`qt_idempotency_purged_total`).
//! - Recovery at start: the latest snapshot, then the journal after it; the read model is
//!   projected forward from where it stopped (or rebuilt from seq 1 if it is behind the
//!   snapshot). `/ready` turns true only after that.

use metrics::{counter, gauge, histogram};
use qt_core::{Asset, Depth, NewOrder, OrderId, Price, Qty, RejectReason, RiskLimits, SymbolId, SymbolSpec, UserId};
use qt_engine::ports::{Journal, SnapshotStore};
use qt_engine::{Command, CommandEnvelope, CommandMeta, EngineConfig, EventEnvelope, Exchange};
use qt_sim::{SimAction, Simulator};
use qt_store_sqlite::{
    ExecutionRow, IdempotencyRow, OrderView, PlaceAnswer, Projected, Projector, SqliteJournal, SqliteSnapshots, Store,
    IDEMPOTENCY_TTL_NS,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Users of the simulator get ids from here up, so that the ids of real users do not
/// depend on how the simulator is configured.
pub const SIM_USER_BASE: u64 = 1_000_000;

/// Nanoseconds since the Unix epoch, from the wall clock (outside the engine).
pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the engine queue is full")]
    Busy,
    #[error("the engine is not running")]
    Stopped,
    #[error("the journal refused the write: {0}")]
    Journal(String),
    /// Distributed mode: the bus could not take the command (nothing was done).
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    /// Distributed mode: the command was handed to the bus but no outcome came in time;
    /// it may still be applied (the client retries with the same idempotency key).
    #[error("no outcome in time")]
    Timeout,
    /// Distributed mode: another process holds this idempotency key with another body.
    #[error("idempotency conflict: {0}")]
    Conflict(String),
}

/// Distributed mode: the engine lives in another process. [`EngineHandle::remote`] wraps
/// an implementation; `submit` and `query` are forwarded to it, so the HTTP handlers stay
/// the same in both modes. An implementation must answer `submit` only once the command
/// is durable and applied (and its read-model rows written), like the local engine.
pub trait RemoteEngine: Send + Sync + std::fmt::Debug {
    fn submit(
        &self,
        cmd: Command,
        meta: Option<CommandMeta>,
    ) -> futures_util::future::BoxFuture<'static, Result<Outcome, EngineError>>;
    fn query(&self, query: Query) -> futures_util::future::BoxFuture<'static, Result<Answer, EngineError>>;
    /// True when the remote engine looks up a place's idempotency key itself before
    /// journaling it, answering a used key with [`Outcome::replayed`] (as the local engine
    /// does); the handler then skips its own read-model lookup.
    fn checks_idempotency_keys(&self) -> bool {
        false
    }
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub seq: u64,
    pub ts: i64,
    /// The id given to a placed order.
    pub order_id: Option<OrderId>,
    /// The id given to a created user.
    pub user_id: Option<UserId>,
    pub events: Vec<EventEnvelope>,
    /// A place with an idempotency key: its answer as stored under the key.
    pub placed: Option<PlaceAnswer>,
    /// A place whose idempotency key was already used (within 24 h): the stored answer;
    /// nothing was journaled or applied.
    pub replayed: Option<IdempotencyRow>,
    /// A cancel or amend: the order and its fills right after it (read on the engine
    /// thread, whose page cache is warm, instead of by the handler).
    pub order: Option<(OrderView, Vec<ExecutionRow>)>,
}

impl Outcome {
    /// An outcome with only its sequence number and time; the rest empty.
    pub fn new(seq: u64, ts: i64) -> Outcome {
        Outcome {
            seq,
            ts,
            order_id: None,
            user_id: None,
            events: Vec::new(),
            placed: None,
            replayed: None,
            order: None,
        }
    }
}

/// The top of one book after a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Top {
    pub symbol: SymbolId,
    pub best_bid: Option<(Price, Qty)>,
    pub best_ask: Option<(Price, Qty)>,
    pub last: Option<Price>,
    pub book_seq: u64,
}

/// Everything one batch produced, in sequence order, for WebSocket clients.
#[derive(Debug)]
pub struct Published {
    pub events: Vec<EventEnvelope>,
    /// Tops of the books the batch touched.
    pub tops: Vec<Top>,
}

#[derive(Debug)]
pub enum Query {
    Depth {
        symbol: SymbolId,
        depth: usize,
    },
    Tops,
    Limits {
        user: UserId,
    },
    CheckOrder {
        order: Box<NewOrder>,
    },
    /// Listed assets and symbols, and whether `user` exists.
    Reference {
        user: Option<UserId>,
    },
    /// The ledger's totals per asset (for the admin's conservation check).
    Ledger,
}

#[derive(Debug)]
pub enum Answer {
    Depth {
        seq: u64,
        depth: Depth,
    },
    Tops(Vec<Top>),
    Limits {
        limits: Option<RiskLimits>,
        global_kill: bool,
    },
    Check(Result<(), RejectReason>),
    Reference {
        assets: Vec<Asset>,
        symbols: Vec<SymbolSpec>,
        user_exists: bool,
    },
    /// Per asset id: every account plus the fee account, the fee account alone, and
    /// deposits minus withdrawals (the ledger conserves when the first equals the last).
    Ledger {
        totals: Vec<i128>,
        fees: Vec<i64>,
        net_flows: Vec<i128>,
    },
}

enum Request {
    Command { cmd: Command, meta: Option<Box<CommandMeta>>, reply: oneshot::Sender<Result<Outcome, EngineError>> },
    Query { query: Query, reply: oneshot::Sender<Answer> },
    SimTick,
    InstallSim(Box<Simulator>),
    Shutdown { reply: oneshot::Sender<()> },
}

/// Health of the runtime, shared with `/ready` and `/metrics`.
#[derive(Debug, Default)]
pub struct EngineStatus {
    pub recovered: AtomicBool,
    /// The read model or the snapshot store failed: the engine still trades, but the
    /// process should be replaced (it rebuilds on restart).
    pub degraded: AtomicBool,
    pub stopped: AtomicBool,
    pub last_seq: AtomicU64,
}

/// Cheap to clone; every HTTP handler holds one.
#[derive(Clone, Debug)]
pub struct EngineHandle {
    tx: mpsc::Sender<Request>,
    events: broadcast::Sender<Arc<Published>>,
    pub status: Arc<EngineStatus>,
    /// Set in distributed mode (see [`RemoteEngine`]).
    remote: Option<Arc<dyn RemoteEngine>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Command { cmd, .. } => write!(f, "Command({cmd:?})"),
            Request::Query { query, .. } => write!(f, "Query({query:?})"),
            Request::SimTick => write!(f, "SimTick"),
            Request::InstallSim(_) => write!(f, "InstallSim"),
            Request::Shutdown { .. } => write!(f, "Shutdown"),
        }
    }
}

impl EngineHandle {
    /// Journals and applies one command; ids inside it (order id of a place, user id of a
    /// create-user) are assigned by the engine thread and returned in the outcome.
    pub async fn submit(&self, cmd: Command, meta: Option<CommandMeta>) -> Result<Outcome, EngineError> {
        if let Some(remote) = &self.remote {
            return remote.submit(cmd, meta).await;
        }
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(Request::Command { cmd, meta: meta.map(Box::new), reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EngineError::Busy,
            mpsc::error::TrySendError::Closed(_) => EngineError::Stopped,
        })?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    pub async fn query(&self, query: Query) -> Result<Answer, EngineError> {
        if let Some(remote) = &self.remote {
            return remote.query(query).await;
        }
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(Request::Query { query, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EngineError::Busy,
            mpsc::error::TrySendError::Closed(_) => EngineError::Stopped,
        })?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// True for the local engine: it looks up a place's idempotency key itself, on the
    /// journaling thread, and answers a used key with [`Outcome::replayed`]. A remote
    /// engine says whether it does the same ([`RemoteEngine::checks_idempotency_keys`]);
    /// if not, the handler looks the key up in the read model first.
    pub fn checks_idempotency_keys(&self) -> bool {
        self.remote.as_ref().is_none_or(|r| r.checks_idempotency_keys())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.events.subscribe()
    }

    /// A handle over an engine in another process. `events` carries what the WebSocket
    /// clients see (the caller feeds it); `status` is the caller's to maintain (`/ready`).
    /// Simulator and shutdown requests answer "stopped": there is no local thread.
    pub fn remote(
        engine: Arc<dyn RemoteEngine>,
        events: broadcast::Sender<Arc<Published>>,
        status: Arc<EngineStatus>,
    ) -> EngineHandle {
        let (tx, _) = mpsc::channel(1);
        EngineHandle { tx, events, status, remote: Some(engine) }
    }

    /// One simulator step soon; dropped when the queue is busy (the next tick comes).
    pub fn sim_tick(&self) {
        let _ = self.tx.try_send(Request::SimTick);
    }

    /// Hands the simulator to the engine thread; it steps on every [`Self::sim_tick`].
    pub async fn install_sim(&self, sim: Simulator) -> Result<(), EngineError> {
        self.tx.send(Request::InstallSim(Box::new(sim))).await.map_err(|_| EngineError::Stopped)
    }

    /// Finishes what is queued, writes a snapshot and stops the thread.
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Request::Shutdown { reply }).await.is_ok() {
            let _ = rx.await;
        }
    }
}

#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    pub batch_max: usize,
    pub queue_capacity: usize,
    pub snapshot_every: u64,
    pub engine: EngineConfig,
}

/// What recovery did, for the start-up log line.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    pub snapshot_seq: Option<u64>,
    pub replayed: u64,
    pub projected: u64,
    pub rebuilt_read_model: bool,
    pub last_seq: u64,
    pub millis: u128,
    pub state_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("store: {0}")]
    Store(#[from] qt_store_sqlite::StoreError),
    #[error("snapshot: {0}")]
    Snapshot(#[from] qt_engine::SnapshotError),
    #[error("engine thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Recovers the state from `store` and starts the engine thread.
pub fn start(
    store: &Store,
    settings: RuntimeSettings,
) -> Result<(EngineHandle, RecoveryReport, std::thread::JoinHandle<()>), StartError> {
    let started = Instant::now();
    // One connection for the three: its page cache survives their alternating commits.
    let (journal, snapshots, mut projector) = store.engine_writers()?;
    let status = Arc::new(EngineStatus::default());
    let (events_tx, _) = broadcast::channel(1024);
    let mut report = RecoveryReport::default();

    let latest = snapshots.latest()?;
    let projected = projector.projected_seq()?;
    let mut exchange = match latest {
        // The read model is behind the snapshot (it failed after the snapshot was taken):
        // replaying from the snapshot cannot fill the gap, so rebuild both from seq 1.
        Some(snap) if snap.last_cmd_seq > projected => {
            projector.reset()?;
            report.rebuilt_read_model = true;
            Exchange::new(settings.engine.clone())
        }
        Some(snap) => {
            report.snapshot_seq = Some(snap.last_cmd_seq);
            Exchange::restore(snap)?
        }
        None => Exchange::new(settings.engine.clone()),
    };
    let mut events = Vec::new();
    loop {
        let batch = journal.read_from(exchange.last_cmd_seq() + 1, 4096)?;
        if batch.is_empty() {
            break;
        }
        let mut ranges = Vec::with_capacity(batch.len());
        for env in &batch {
            let start = events.len();
            exchange.apply(env, &mut events);
            ranges.push(start..events.len());
        }
        let items: Vec<Projected<'_>> =
            batch.iter().zip(&ranges).map(|(command, r)| Projected { command, events: &events[r.clone()] }).collect();
        projector.project(&items)?;
        report.replayed += batch.len() as u64;
        report.projected += batch.iter().filter(|c| c.seq > projected).count() as u64;
        events.clear();
    }
    report.last_seq = journal.last_seq()?.max(exchange.last_cmd_seq());
    report.millis = started.elapsed().as_millis();
    report.state_hash = exchange.state_hash();
    status.last_seq.store(report.last_seq, Ordering::Relaxed);

    let (tx, rx) = mpsc::channel(settings.queue_capacity);
    let handle = EngineHandle { tx, events: events_tx.clone(), status: status.clone(), remote: None };
    let ids = Sequencer::new(&exchange, report.last_seq);
    let mut worker = Worker {
        exchange,
        journal,
        snapshots,
        projector,
        sim: None,
        ids,
        since_snapshot: 0,
        settings,
        events_tx,
        status: status.clone(),
        scratch: Vec::new(),
    };
    let thread = std::thread::Builder::new().name("qt-engine".into()).spawn(move || worker.run(rx))?;
    status.recovered.store(true, Ordering::Release);
    Ok((handle, report, thread))
}

type Reply = Option<oneshot::Sender<Result<Outcome, EngineError>>>;

struct Worker {
    exchange: Exchange,
    journal: SqliteJournal,
    snapshots: SqliteSnapshots,
    projector: Projector,
    sim: Option<Simulator>,
    ids: Sequencer,
    since_snapshot: u64,
    settings: RuntimeSettings,
    events_tx: broadcast::Sender<Arc<Published>>,
    status: Arc<EngineStatus>,
    scratch: Vec<EventEnvelope>,
}

impl Worker {
    fn run(&mut self, mut rx: mpsc::Receiver<Request>) {
        let mut requests = Vec::with_capacity(self.settings.batch_max);
        loop {
            // Block for the first request, then take what else is already waiting: under load
            // batches grow and the fsync per batch is shared by more commands.
            match rx.blocking_recv() {
                Some(r) => requests.push(r),
                None => break,
            }
            while requests.len() < self.settings.batch_max {
                match rx.try_recv() {
                    Ok(r) => requests.push(r),
                    Err(_) => break,
                }
            }
            gauge!("qt_engine_queue_depth").set(rx.len() as f64);
            if self.handle(&mut requests) {
                break;
            }
        }
        self.status.stopped.store(true, Ordering::Release);
    }

    /// Processes one drained set of requests; true when asked to stop.
    fn handle(&mut self, requests: &mut Vec<Request>) -> bool {
        let mut pending: Vec<(CommandEnvelope, Reply)> = Vec::new();
        let mut queries = Vec::new();
        let mut stop = None;
        for request in requests.drain(..) {
            match request {
                Request::Command { cmd, meta, reply } => {
                    // A key seen before answers from its row without touching the log.
                    match self.used_key(&cmd, meta.as_deref()) {
                        Ok(Some(row)) => {
                            let mut outcome = Outcome::new(0, row.created_ts);
                            outcome.order_id = Some(row.order_id);
                            outcome.replayed = Some(row);
                            let _ = reply.send(Ok(outcome));
                        }
                        Ok(None) => {
                            let env = self.envelope(cmd, meta);
                            pending.push((env, Some(reply)));
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "idempotency lookup failed");
                            let _ = reply.send(Err(EngineError::Journal(e.to_string())));
                        }
                    }
                }
                Request::Query { query, reply } => queries.push((query, reply)),
                Request::SimTick => {
                    self.commit(&mut pending);
                    let actions = self.sim_step();
                    pending.extend(actions.into_iter().map(|cmd| (self.envelope(cmd, None), None)));
                    self.commit(&mut pending);
                }
                Request::InstallSim(sim) => self.sim = Some(*sim),
                Request::Shutdown { reply } => stop = Some(reply),
            }
        }
        self.commit(&mut pending);
        for (query, reply) in queries {
            let _ = reply.send(self.answer(query));
        }
        if let Some(reply) = stop {
            self.save_snapshot();
            let _ = reply.send(());
            return true;
        }
        false
    }

    /// The stored answer when `cmd` is a place whose idempotency key its user already
    /// used within 24 h. Checked here, on the thread that journals, so that no replay can
    /// slip between a check and the append (concurrent duplicates are refused earlier by
    /// the API's in-flight set, so one batch never holds the same key twice).
    fn used_key(
        &self,
        cmd: &Command,
        meta: Option<&CommandMeta>,
    ) -> Result<Option<IdempotencyRow>, qt_store_sqlite::StoreError> {
        let (Command::Place(order), Some(key)) = (cmd, meta.and_then(|m| m.idempotency_key.as_deref())) else {
            return Ok(None);
        };
        self.projector.idempotency_at(order.user, key, now_ns())
    }

    fn envelope(&mut self, cmd: Command, meta: Option<Box<CommandMeta>>) -> CommandEnvelope {
        self.ids.envelope(cmd, meta)
    }

    fn sim_step(&mut self) -> Vec<Command> {
        let Some(sim) = self.sim.as_mut() else { return Vec::new() };
        let next = &mut self.ids.next_order_id;
        let mut alloc = || {
            let id = OrderId(*next);
            *next += 1;
            id
        };
        let now = self.ids.last_ts.max(now_ns());
        sim.step(now, &self.exchange, &mut alloc)
            .into_iter()
            .map(|a| match a {
                SimAction::Place(o) => Command::Place(o),
                SimAction::Cancel { user, order_id } => Command::Cancel { user, order_id },
                SimAction::Amend { user, order_id, price, qty } => Command::Amend { user, order_id, price, qty },
            })
            .collect()
    }

    fn commit(&mut self, pending: &mut Vec<(CommandEnvelope, Reply)>) {
        if pending.is_empty() {
            return;
        }
        let envs: Vec<CommandEnvelope> = pending.iter().map(|(e, _)| e.clone()).collect();
        let timer = Instant::now();
        if let Err(e) = self.journal.append(&envs) {
            tracing::error!(error = %e, commands = envs.len(), "journal append failed; batch refused");
            counter!("qt_journal_failures_total").increment(1);
            // Nothing of the batch happened: give its sequence numbers out again.
            self.ids.next_seq = envs[0].seq;
            for (_, reply) in pending.drain(..) {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(EngineError::Journal(e.to_string())));
                }
            }
            return;
        }
        histogram!("qt_journal_append_seconds").record(timer.elapsed().as_secs_f64());
        histogram!("qt_engine_batch_commands").record(envs.len() as f64);
        counter!("qt_engine_commands_total").increment(envs.len() as u64);

        let apply_timer = Instant::now();
        self.scratch.clear();
        let mut ranges = Vec::with_capacity(envs.len());
        for env in &envs {
            let start = self.scratch.len();
            self.exchange.apply(env, &mut self.scratch);
            ranges.push(start..self.scratch.len());
        }
        histogram!("qt_engine_apply_seconds").record(apply_timer.elapsed().as_secs_f64());
        let items: Vec<Projected<'_>> = envs
            .iter()
            .zip(&ranges)
            .map(|(command, r)| Projected { command, events: &self.scratch[r.clone()] })
            .collect();
        let project_timer = Instant::now();
        let projected = match self.projector.project(&items) {
            Ok(()) => true,
            Err(e) => {
                // The command log and the engine are right; only the queries are behind. The
                // process reports not-ready so that it gets replaced, and rebuilds on restart.
                tracing::error!(error = %e, "read model projection failed");
                self.status.degraded.store(true, Ordering::Release);
                false
            }
        };
        histogram!("qt_projection_seconds").record(project_timer.elapsed().as_secs_f64());
        counter!("qt_engine_events_total").increment(self.scratch.len() as u64);

        // Answers of a batch that did not commit were never stored: the handler then
        // reads (and fails) as for any degraded read model.
        let answers = self.projector.take_place_answers();
        let mut answers = (if projected { answers } else { Vec::new() }).into_iter().peekable();
        for ((env, reply), range) in pending.drain(..).zip(&ranges) {
            let mut outcome = Outcome::new(env.seq, env.ts);
            // Answers come in command order; take this command's, if it has one.
            if answers.peek().is_some_and(|a| a.seq == env.seq) {
                outcome.placed = answers.next();
            }
            let Some(reply) = reply else { continue };
            match &env.cmd {
                Command::Place(o) => outcome.order_id = Some(o.order_id),
                Command::CreateUser { user, .. } => outcome.user_id = Some(*user),
                Command::Cancel { order_id, .. } | Command::Amend { order_id, .. } if projected => {
                    outcome.order = self.projector.order_with_fills(*order_id).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "reading an order back failed; the handler reads it");
                        None
                    });
                }
                _ => {}
            }
            outcome.events = self.scratch[range.clone()].to_vec();
            let _ = reply.send(Ok(outcome));
        }
        self.status.last_seq.store(self.ids.next_seq - 1, Ordering::Relaxed);

        let mut touched: Vec<SymbolId> = self
            .scratch
            .iter()
            .filter_map(|e| match &e.event {
                qt_engine::Event::BookChanged { symbol, .. } | qt_engine::Event::Trade { symbol, .. } => Some(*symbol),
                _ => None,
            })
            .collect();
        touched.sort_unstable();
        touched.dedup();
        for s in &touched {
            if let Some(sym) = self.exchange.symbol(*s) {
                gauge!("qt_book_orders", "symbol" => sym.spec.name.clone()).set(sym.book.len() as f64);
            }
        }
        let tops = touched.into_iter().filter_map(|s| self.top(s)).collect();
        // No receivers is fine: nobody is watching.
        let _ = self.events_tx.send(Arc::new(Published { events: std::mem::take(&mut self.scratch), tops }));

        self.since_snapshot += envs.len() as u64;
        if self.since_snapshot >= self.settings.snapshot_every {
            self.save_snapshot();
        }
    }

    fn save_snapshot(&mut self) {
        if self.status.degraded.load(Ordering::Acquire) || self.since_snapshot == 0 {
            return;
        }
        let timer = Instant::now();
        match self.snapshots.save(&self.exchange.snapshot()) {
            Ok(()) => {
                self.since_snapshot = 0;
                histogram!("qt_snapshot_seconds").record(timer.elapsed().as_secs_f64());
                tracing::info!(
                    seq = self.exchange.last_cmd_seq(),
                    millis = timer.elapsed().as_millis() as u64,
                    "snapshot saved"
                );
                self.purge_expired_keys();
            }
            Err(e) => {
                tracing::error!(error = %e, "snapshot failed");
                self.status.degraded.store(true, Ordering::Release);
            }
        }
    }

    /// Deletes the idempotency answers older than 24 h (readers already ignore them and a
    /// reused key replaces one, so this only bounds the table). Runs with each snapshot:
    /// between two snapshots at most `snapshot_every` keyed places can expire, so one
    /// indexed DELETE stays short; a failure is logged and retried at the next snapshot.
    fn purge_expired_keys(&mut self) {
        match self.projector.purge_idempotency_before(now_ns().saturating_sub(IDEMPOTENCY_TTL_NS)) {
            Ok(deleted) => counter!("qt_idempotency_purged_total").increment(deleted as u64),
            Err(e) => tracing::warn!(error = %e, "purge of expired idempotency keys failed"),
        }
    }

    fn top(&self, symbol: SymbolId) -> Option<Top> {
        top_of(&self.exchange, symbol)
    }

    fn answer(&mut self, query: Query) -> Answer {
        answer_query(&mut self.exchange, query, self.ids.last_ts.max(now_ns()))
    }
}

/// The top of one book of `exchange`.
pub fn top_of(exchange: &Exchange, symbol: SymbolId) -> Option<Top> {
    let s = exchange.symbol(symbol)?;
    Some(Top {
        symbol,
        best_bid: s.book.best_bid(),
        best_ask: s.book.best_ask(),
        last: s.last_price,
        book_seq: s.book.seq(),
    })
}

/// Answers a [`Query`] from the state of `exchange` (the engine thread's, or a replica's
/// in distributed mode). `&mut` only for the engine's scratch buffers: a `CheckOrder` is
/// a dry run at `now_ts` and changes no state.
pub fn answer_query(exchange: &mut Exchange, query: Query, now_ts: i64) -> Answer {
    match query {
        Query::Depth { symbol, depth } => match exchange.symbol(symbol) {
            Some(s) => Answer::Depth { seq: s.book.seq(), depth: s.book.depth(depth) },
            None => Answer::Depth { seq: 0, depth: Depth::default() },
        },
        Query::Tops => {
            let n = exchange.symbols().len() as u16;
            Answer::Tops((0..n).filter_map(|i| top_of(exchange, SymbolId(i))).collect())
        }
        Query::Limits { user } => Answer::Limits {
            limits: exchange.user(user).map(|u| u.limits.clone()),
            global_kill: exchange.global_kill(),
        },
        Query::CheckOrder { order } => Answer::Check(exchange.check_order(&order, now_ts)),
        Query::Reference { user } => Answer::Reference {
            assets: exchange.assets().to_vec(),
            symbols: exchange.symbols().iter().map(|s| s.spec.clone()).collect(),
            user_exists: user.is_some_and(|u| exchange.user(u).is_some()),
        },
        Query::Ledger => {
            let ledger = exchange.ledger();
            Answer::Ledger {
                totals: ledger.totals(),
                fees: ledger.fees().iter().map(|a| a.0).collect(),
                net_flows: ledger.net_flows().to_vec(),
            }
        }
    }
}

/// What a sequencer gives each command before it is journaled: its sequence number, its
/// time (never behind the previous command's, whatever the wall clock does) and the ids
/// of what it creates. Shared by the all-in-one engine thread and the distributed
/// matching shard.
#[derive(Debug, Clone)]
pub struct Sequencer {
    pub next_seq: u64,
    /// The simulator allocates its order ids from here too (before enveloping).
    pub next_order_id: u64,
    pub next_user_id: u64,
    pub last_ts: i64,
}

impl Sequencer {
    /// Continues after `last_seq` and after the ids `exchange` already holds (real users
    /// stay below [`SIM_USER_BASE`]).
    pub fn new(exchange: &Exchange, last_seq: u64) -> Sequencer {
        Sequencer {
            next_seq: last_seq + 1,
            next_order_id: exchange.max_order_id() + 1,
            next_user_id: exchange.max_user_id_below(SIM_USER_BASE) + 1,
            last_ts: 0,
        }
    }

    /// Sequence number, time and ids for a command; ids already set are kept.
    pub fn envelope(&mut self, mut cmd: Command, meta: Option<Box<CommandMeta>>) -> CommandEnvelope {
        match &mut cmd {
            Command::Place(o) if o.order_id.0 == 0 => {
                o.order_id = OrderId(self.next_order_id);
                self.next_order_id += 1;
            }
            Command::CreateUser { user, .. } if user.0 == 0 => {
                *user = UserId(self.next_user_id);
                self.next_user_id += 1;
            }
            _ => {}
        }
        self.last_ts = self.last_ts.max(now_ns());
        let seq = self.next_seq;
        self.next_seq += 1;
        CommandEnvelope { seq, ts: self.last_ts, cmd, meta }
    }
}
