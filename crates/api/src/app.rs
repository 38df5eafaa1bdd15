//! `quanttrader run` as a library: [`Application::build`] opens the data directory,
//! recovers the engine, lists the configured markets and the demo and simulator users at
//! first start, binds the listener; [`Application::run_until`] serves until shutdown.
//!
//! Contract:
//! - Binding port 0 is allowed: tests read [`Application::local_addr`] (zero2prod style).
//! - The admin token and the demo user's API key are generated once, at first start, and
//!   stored in `<data-dir>/credentials.json` with mode 0600; [`Application::first_start`]
//!   tells the caller to print them. Later starts read them back (a configured admin
//!   token wins).
//! - Shutdown: stop accepting, let in-flight requests finish (bounded by the grace period),
//!   then the engine drains its queue, journals and snapshots, and the thread ends.

use crate::config::{RunConfig, ASSET_SCALE};
use crate::http::{self, AppState, Markets};
use crate::runtime::{self, Answer, EngineHandle, Query, RecoveryReport, RuntimeSettings, SIM_USER_BASE};
use qt_core::money::parse_scaled;
use qt_core::{Amount, SymbolId, UserId};
use qt_engine::{Command, CommandMeta, EngineConfig};
use qt_sim::{SimConfig, SimSymbol, Simulator};
use qt_store_sqlite::Store;
use rand::TryRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const CREDENTIALS_FILE: &str = "credentials.json";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Start(#[from] runtime::StartError),
    #[error("store: {0}")]
    Store(#[from] qt_store_sqlite::StoreError),
    #[error("first-start setup failed: {0}")]
    Bootstrap(String),
    #[error("simulator: {0}")]
    Sim(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// What `credentials.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Credentials {
    pub admin_token: String,
    pub demo_user_id: Option<String>,
    pub demo_api_key: Option<String>,
}

#[derive(Debug)]
pub struct Application {
    listener: tokio::net::TcpListener,
    state: AppState,
    engine_thread: std::thread::JoinHandle<()>,
    config: RunConfig,
    pub recovery: RecoveryReport,
    pub credentials: Credentials,
    /// True when this start created the data directory's state: print the credentials.
    pub first_start: bool,
}

/// A random token: 32 bytes from the operating system's generator, hex. Without that
/// generator there is no safe token, so the caller fails rather than using a weak one.
pub fn random_token(prefix: &str) -> Result<String, AppError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| AppError::Bootstrap(format!("OS random generator: {e}")))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// SHA-256 of an API key, hex: what the read model stores and looks up.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Application {
    pub async fn build(config: RunConfig) -> Result<Application, AppError> {
        config.validate()?;
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| AppError::DataDir { path: dir.clone(), source })?;
        let store = Store::open(&dir)?;
        let settings = RuntimeSettings {
            batch_max: config.engine.batch_max,
            queue_capacity: config.engine.queue_capacity,
            snapshot_every: config.engine.snapshot_every,
            // Users get their limits in the CreateUser command (see `AppState::default_limits`),
            // so a changed configuration never changes what a replay of old commands does.
            engine: EngineConfig { risk_enabled: config.engine.risk_enabled, ..EngineConfig::default() },
        };
        let (engine, recovery, engine_thread) = runtime::start(&store, settings)?;
        let first_start = recovery.last_seq == 0;
        tracing::info!(
            snapshot_seq = recovery.snapshot_seq,
            replayed = recovery.replayed,
            projected = recovery.projected,
            rebuilt_read_model = recovery.rebuilt_read_model,
            last_seq = recovery.last_seq,
            millis = recovery.millis as u64,
            state_hash = %recovery.state_hash,
            "recovered"
        );

        list_markets(&engine, &config).await?;
        let (assets, symbols) = reference(&engine).await?;
        let markets = Arc::new(Markets::new(assets, symbols));

        let credentials = credentials(&engine, &config, &markets, &dir).await?;
        if config.sim.enabled {
            start_simulator(&engine, &config, &markets).await?;
        }

        let reader = store.reader()?;
        let state = AppState::new(engine.clone(), reader, markets, &credentials.admin_token, &config, None)?;
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|source| AppError::Bind { addr: config.listen.clone(), source })?;
        Ok(Application { listener, state, engine_thread, config, recovery, credentials, first_start })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    pub fn engine(&self) -> EngineHandle {
        self.state.engine.clone()
    }

    /// Serves until `shutdown` resolves, then drains and stops the engine.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), AppError> {
        let Application { listener, state, engine_thread, config, .. } = self;
        let engine = state.engine.clone();
        let draining = state.draining.clone();
        let sim_task = config.sim.enabled.then(|| {
            let engine = engine.clone();
            let period = Duration::from_millis(config.sim.step_ms);
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    ticks.tick().await;
                    engine.sim_tick();
                }
            })
        });
        let router = http::router(state, &config);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let grace = Duration::from_millis(config.http.shutdown_grace_ms);
        let signal = async move {
            shutdown.await;
            tracing::info!("shutdown requested: no new connections, finishing in-flight requests");
            draining.store(true, std::sync::atomic::Ordering::Release);
            let _ = stop_tx.send(true);
        };
        let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(signal);
        let mut stop_rx2 = stop_rx.clone();
        let result = tokio::select! {
            r = server => r.map_err(AppError::Serve),
            // In-flight requests get the grace period, then the server stops regardless
            // (WebSocket clients would otherwise hold it open forever).
            _ = async move {
                let _ = stop_rx2.wait_for(|s| *s).await;
                tokio::time::sleep(grace).await;
            } => Ok(()),
        };
        if let Some(task) = sim_task {
            task.abort();
        }
        engine.shutdown().await;
        let _ = tokio::task::spawn_blocking(move || engine_thread.join()).await;
        tracing::info!("stopped");
        result
    }
}

async fn submit(engine: &EngineHandle, cmd: Command, meta: Option<CommandMeta>) -> Result<runtime::Outcome, AppError> {
    let outcome = engine.submit(cmd, meta).await.map_err(|e| AppError::Bootstrap(e.to_string()))?;
    for e in &outcome.events {
        if let qt_engine::Event::CommandRejected { reason, .. } = &e.event {
            return Err(AppError::Bootstrap(format!("command {} refused: {reason}", outcome.seq)));
        }
    }
    Ok(outcome)
}

async fn reference(engine: &EngineHandle) -> Result<(Vec<qt_core::Asset>, Vec<qt_core::SymbolSpec>), AppError> {
    match engine.query(Query::Reference { user: None }).await {
        Ok(Answer::Reference { assets, symbols, .. }) => Ok((assets, symbols)),
        Ok(other) => Err(AppError::Bootstrap(format!("unexpected answer {other:?}"))),
        Err(e) => Err(AppError::Bootstrap(e.to_string())),
    }
}

async fn user_exists(engine: &EngineHandle, user: UserId) -> Result<bool, AppError> {
    match engine.query(Query::Reference { user: Some(user) }).await {
        Ok(Answer::Reference { user_exists, .. }) => Ok(user_exists),
        Ok(other) => Err(AppError::Bootstrap(format!("unexpected answer {other:?}"))),
        Err(e) => Err(AppError::Bootstrap(e.to_string())),
    }
}

/// Lists the configured assets and markets that are not listed yet (all of them at first
/// start; new ones added to the config later). Listed markets are never changed here.
async fn list_markets(engine: &EngineHandle, config: &RunConfig) -> Result<(), AppError> {
    let (mut assets, symbols) = reference(engine).await?;
    for code in config.assets() {
        if !assets.iter().any(|a| a.code == code) {
            submit(engine, Command::AddAsset { code: code.clone(), scale: ASSET_SCALE }, None).await?;
            (assets, _) = reference(engine).await?;
        }
    }
    let codes: Vec<String> = assets.iter().map(|a| a.code.clone()).collect();
    let mut next = symbols.len() as u16;
    for m in &config.markets {
        if symbols.iter().any(|s| s.name == m.symbol) {
            continue;
        }
        let spec = m.to_spec(SymbolId(next), &codes).map_err(AppError::Bootstrap)?;
        submit(engine, Command::AddSymbol(spec), None).await?;
        next += 1;
    }
    Ok(())
}

fn asset_units(markets: &Markets, code: &str, amount: &str) -> Result<(qt_core::AssetId, Amount), AppError> {
    let asset = markets.asset_by_code(code).ok_or_else(|| AppError::Bootstrap(format!("unknown asset {code}")))?;
    let v = parse_scaled(amount, asset.scale).map_err(|e| AppError::Bootstrap(format!("{code} {amount}: {e}")))?;
    let v = i64::try_from(v).map_err(|_| AppError::Bootstrap(format!("{code} {amount} is too large")))?;
    Ok((asset.id, Amount(v)))
}

/// Reads `credentials.json`, or at first start creates the admin token and the demo user
/// and writes it (mode 0600).
async fn credentials(
    engine: &EngineHandle,
    config: &RunConfig,
    markets: &Markets,
    dir: &Path,
) -> Result<Credentials, AppError> {
    let path = dir.join(CREDENTIALS_FILE);
    let io = |source| AppError::DataDir { path: path.clone(), source };
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(io)?;
        let mut stored: Credentials = serde_json::from_str(&text)
            .map_err(|e| AppError::Bootstrap(format!("{} is not valid: {e}", path.display())))?;
        if let Some(t) = &config.admin_token {
            stored.admin_token = t.clone();
        }
        return Ok(stored);
    }
    let admin_token = match &config.admin_token {
        Some(t) => t.clone(),
        None => random_token("qta_")?,
    };
    let mut creds = Credentials { admin_token, demo_user_id: None, demo_api_key: None };
    if config.demo_user {
        let key = random_token("qtk_")?;
        let meta =
            CommandMeta { user_name: Some("demo".into()), api_key_hash: Some(key_hash(&key)), ..Default::default() };
        let limits = config.risk.to_limits().map_err(AppError::Bootstrap)?;
        let outcome = submit(engine, Command::CreateUser { user: UserId(0), limits: Some(limits) }, Some(meta)).await?;
        let user = outcome.user_id.ok_or_else(|| AppError::Bootstrap("no user id for demo".into()))?;
        let quote = config.markets.first().map_or("USD", |m| m.quote.as_str()).to_string();
        let mut deposits = vec![(quote, "1000000".to_string())];
        deposits.extend(config.markets.iter().map(|m| (m.base.clone(), m.demo_deposit.clone())));
        for (code, amount) in deposits {
            let (asset, amount) = asset_units(markets, &code, &amount)?;
            submit(engine, Command::Deposit { user, asset, amount }, None).await?;
        }
        creds.demo_user_id = Some(user.0.to_string());
        creds.demo_api_key = Some(key);
    }
    write_private(&path, &serde_json::to_vec_pretty(&creds).unwrap_or_default()).map_err(io)?;
    Ok(creds)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Creates the simulator's users when missing, cancels what they left open, and hands the
/// simulator to the engine thread.
async fn start_simulator(engine: &EngineHandle, config: &RunConfig, markets: &Markets) -> Result<(), AppError> {
    let mut symbols = Vec::new();
    for m in &config.markets {
        let Some(spec) = markets.symbol_by_name(&m.symbol) else { continue };
        let mut s = SimSymbol::new(spec.clone(), m.initial_price(spec));
        s.volatility_bps_per_hour = m.volatility_bps_per_hour;
        if let Ok(size) = spec.parse_qty(&m.sim_order_size) {
            s.order_size = size;
        }
        symbols.push(s);
    }
    let sim_config = SimConfig {
        seed: config.sim.seed,
        market_makers: config.sim.market_makers,
        noise_traders: config.sim.noise_traders,
        ..SimConfig::default()
    };
    let sim = Simulator::new(sim_config, symbols, SIM_USER_BASE).map_err(|e| AppError::Sim(e.to_string()))?;
    for (user, deposits) in sim.users() {
        if user_exists(engine, user).await? {
            continue;
        }
        let meta = CommandMeta { user_name: sim.user_name(user), ..Default::default() };
        submit(engine, Command::CreateUser { user, limits: Some(sim.risk_limits()) }, Some(meta)).await?;
        for (asset, amount) in deposits {
            submit(engine, Command::Deposit { user, asset, amount }, None).await?;
        }
    }
    // The simulator keeps no state across restarts: what its users left open is cancelled.
    for user in sim.user_ids() {
        engine
            .submit(Command::MassCancel { user, symbol: None }, None)
            .await
            .map_err(|e| AppError::Sim(e.to_string()))?;
    }
    engine.install_sim(sim).await.map_err(|e| AppError::Sim(e.to_string()))
}
