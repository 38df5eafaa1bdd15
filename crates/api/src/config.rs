//! Configuration of `quanttrader run`, layered: built-in defaults, then the TOML file given
//! by `--config`, then `QT_…` environment variables (`__` separates nesting levels:
//! `QT_HTTP__BODY_LIMIT_BYTES`), then command-line flags.
//!
//! Contract:
//! - [`RunConfig::load`] merges the layers; [`RunConfig::validate`] checks every setting and
//!   reports all problems at once (one line each, naming the setting), so an operator fixes
//!   a bad deployment in one round.
//! - Markets are declared with decimal strings and become engine specs through
//!   [`MarketConfig::to_spec`], which refuses a grid that cannot settle exactly.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use qt_core::money::parse_scaled;
use qt_core::{Amount, AssetId, Price, Qty, SymbolId, SymbolSpec};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Decimal places of every asset's minor unit: fine enough that every notional
/// `price × quantity` of the default markets is an exact integer.
pub const ASSET_SCALE: u32 = 8;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    /// Address the HTTP server binds (`127.0.0.1:8080`; port 0 picks a free one).
    pub listen: String,
    /// Where the journal, snapshots, read model and credentials live.
    pub data_dir: PathBuf,
    /// Bearer token of `/api/admin/*`; generated and stored at first start when unset.
    pub admin_token: Option<String>,
    /// Directory of the built web screen (`web/dist`); served at `/` when it exists.
    pub web_dir: Option<PathBuf>,
    /// Create and fund a `demo` user at first start.
    pub demo_user: bool,
    pub sim: SimSettings,
    pub engine: EngineSettings,
    pub http: HttpSettings,
    pub log: LogSettings,
    /// Limits of every user created without its own (the simulator's users have none).
    pub risk: RiskSettings,
    pub markets: Vec<MarketConfig>,
}

/// Default pre-trade limits, in decimal strings of the quote asset.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RiskSettings {
    pub max_order_notional: Option<String>,
    pub daily_loss_limit: Option<String>,
    pub max_concentration_bps: Option<u32>,
    pub max_orders_per_second: Option<u32>,
}

impl Default for RiskSettings {
    fn default() -> Self {
        RiskSettings {
            max_order_notional: Some("5000000".into()),
            daily_loss_limit: Some("1000000".into()),
            max_concentration_bps: None,
            max_orders_per_second: Some(100),
        }
    }
}

impl RiskSettings {
    /// The engine's limits; amounts in minor units of an [`ASSET_SCALE`] quote asset.
    pub fn to_limits(&self) -> Result<qt_core::RiskLimits, String> {
        let amount = |v: &Option<String>, what: &str| -> Result<Option<Amount>, String> {
            v.as_deref().map(|s| units(s, what).map(Amount)).transpose()
        };
        Ok(qt_core::RiskLimits {
            max_order_notional: amount(&self.max_order_notional, "risk.max_order_notional")?,
            daily_loss_limit: amount(&self.daily_loss_limit, "risk.daily_loss_limit")?,
            max_concentration_bps: self.max_concentration_bps,
            // 0 means no limit (TOML has no null).
            max_orders_per_second: self.max_orders_per_second.filter(|v| *v > 0),
            ..qt_core::RiskLimits::default()
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SimSettings {
    pub enabled: bool,
    pub seed: u64,
    /// Time between two simulator steps.
    pub step_ms: u64,
    pub market_makers: u16,
    pub noise_traders: u16,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineSettings {
    /// Most commands journaled in one transaction (group commit).
    pub batch_max: usize,
    /// Requests waiting for the engine; intake answers 503 beyond it (back pressure).
    pub queue_capacity: usize,
    /// A snapshot after this many commands.
    pub snapshot_every: u64,
    /// Pre-trade risk, reservations and settlement (off only for matching experiments).
    pub risk_enabled: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    /// Sustained requests per second per API key, and the burst above it.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// Messages queued for one WebSocket client before it is dropped as a slow consumer.
    pub ws_queue: usize,
    /// How long graceful shutdown waits for in-flight requests.
    pub shutdown_grace_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// `json` (default) or `pretty`.
    pub format: String,
    /// A tracing filter (`info`, `qt_api=debug,info`); `RUST_LOG` wins when set.
    pub level: String,
}

/// A market listed at first start, in decimal strings of its assets' units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarketConfig {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub tick_size: String,
    pub lot_size: String,
    pub min_quantity: String,
    pub max_quantity: String,
    pub min_notional: String,
    pub price_band_bps: i64,
    pub market_collar_bps: i64,
    pub maker_fee_bps: i64,
    pub taker_fee_bps: i64,
    /// Where the simulator starts the fair price.
    pub initial_price: String,
    pub volatility_bps_per_hour: u32,
    /// A typical simulated order, in base units.
    pub sim_order_size: String,
    /// How much of the base asset the demo user gets.
    pub demo_deposit: String,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("quanttrader-data"),
            admin_token: None,
            web_dir: None,
            demo_user: true,
            sim: SimSettings::default(),
            engine: EngineSettings::default(),
            http: HttpSettings::default(),
            log: LogSettings::default(),
            risk: RiskSettings::default(),
            markets: default_markets(),
        }
    }
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings { enabled: true, seed: 42, step_ms: 200, market_makers: 2, noise_traders: 4 }
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings { batch_max: 512, queue_capacity: 8192, snapshot_every: 20_000, risk_enabled: true }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            body_limit_bytes: 64 * 1024,
            request_timeout_ms: 10_000,
            rate_limit_per_second: 50,
            rate_limit_burst: 100,
            ws_queue: 1024,
            shutdown_grace_ms: 10_000,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { format: "json".into(), level: "info".into() }
    }
}

#[allow(clippy::too_many_arguments)]
fn market(
    symbol: &str,
    tick: &str,
    lot: &str,
    min_qty: &str,
    max_qty: &str,
    price: &str,
    size: &str,
    demo: &str,
) -> MarketConfig {
    let (base, quote) = symbol.split_once('-').unwrap_or((symbol, "USD"));
    MarketConfig {
        symbol: symbol.into(),
        base: base.into(),
        quote: quote.into(),
        tick_size: tick.into(),
        lot_size: lot.into(),
        min_quantity: min_qty.into(),
        max_quantity: max_qty.into(),
        min_notional: "1".into(),
        price_band_bps: 1_000,
        market_collar_bps: 500,
        maker_fee_bps: -1,
        taker_fee_bps: 5,
        initial_price: price.into(),
        volatility_bps_per_hour: 150,
        sim_order_size: size.into(),
        demo_deposit: demo.into(),
    }
}

/// BTC-USD, ETH-USD and SOL-USD with grids like those of large venues.
pub fn default_markets() -> Vec<MarketConfig> {
    vec![
        market("BTC-USD", "0.01", "0.0001", "0.0001", "100", "65000.00", "0.05", "10"),
        market("ETH-USD", "0.01", "0.001", "0.001", "1000", "3200.00", "0.5", "100"),
        market("SOL-USD", "0.001", "0.01", "0.01", "50000", "150.000", "10", "2000"),
    ]
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub admin_token: Option<String>,
    pub web_dir: Option<PathBuf>,
    pub no_sim: bool,
    pub seed: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(String),
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl RunConfig {
    /// Defaults ← config file ← `QT_…` environment ← flags.
    pub fn load(flags: &Overrides) -> Result<RunConfig, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RunConfig::default()));
        if let Some(file) = &flags.config_file {
            if !file.exists() {
                return Err(ConfigError::Load(format!("config file {} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        // Variables of the distributed roles (QT_DATABASE__URL, …) are not ours: only keys
        // this struct knows are taken, so they never make `run` fail.
        figment = figment.merge(Env::prefixed("QT_").split("__").filter(|k| {
            // The filter may see the key before or after `__` becomes `.`.
            let top = k.as_str().split("__").next().and_then(|k| k.split('.').next()).unwrap_or("");
            KNOWN_KEYS.iter().any(|known| known.eq_ignore_ascii_case(top))
        }));
        let mut config: RunConfig = figment.extract().map_err(|e| ConfigError::Load(flatten_figment(e)))?;
        if let Some(v) = &flags.listen {
            config.listen = v.clone();
        }
        if let Some(v) = &flags.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = &flags.admin_token {
            config.admin_token = Some(v.clone());
        }
        if let Some(v) = &flags.web_dir {
            config.web_dir = Some(v.clone());
        }
        if flags.no_sim {
            config.sim.enabled = false;
        }
        if let Some(seed) = flags.seed {
            config.sim.seed = seed;
        }
        Ok(config)
    }

    /// Every problem, one message each.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        if self.listen.parse::<SocketAddr>().is_err() {
            errors.push(format!("listen: '{}' is not an address like 127.0.0.1:8080", self.listen));
        }
        if self.data_dir.as_os_str().is_empty() {
            errors.push("data_dir: must not be empty".into());
        }
        if let Some(t) = &self.admin_token {
            if t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                errors.push("admin_token: needs at least 16 characters and no whitespace".into());
            }
        }
        if let Some(dir) = &self.web_dir {
            if !dir.join("index.html").is_file() {
                errors.push(format!(
                    "web_dir: {} has no index.html (build it with `npm run build` in web/)",
                    dir.display()
                ));
            }
        }
        if !(10..=60_000).contains(&self.sim.step_ms) {
            errors.push(format!("sim.step_ms: {} is outside 10..=60000", self.sim.step_ms));
        }
        if self.sim.enabled && (self.sim.market_makers == 0 || self.sim.noise_traders == 0) {
            errors.push("sim: market_makers and noise_traders must be at least 1 when the simulator is on".into());
        }
        if !(1..=65_536).contains(&self.engine.batch_max) {
            errors.push(format!("engine.batch_max: {} is outside 1..=65536", self.engine.batch_max));
        }
        if self.engine.queue_capacity < 16 {
            errors.push(format!("engine.queue_capacity: {} is below 16", self.engine.queue_capacity));
        }
        if self.engine.snapshot_every < 100 {
            errors.push(format!("engine.snapshot_every: {} is below 100", self.engine.snapshot_every));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.http.body_limit_bytes) {
            errors.push(format!("http.body_limit_bytes: {} is outside 1024..=16777216", self.http.body_limit_bytes));
        }
        if !(100..=600_000).contains(&self.http.request_timeout_ms) {
            errors.push(format!("http.request_timeout_ms: {} is outside 100..=600000", self.http.request_timeout_ms));
        }
        if self.http.rate_limit_per_second == 0 || self.http.rate_limit_burst == 0 {
            errors.push("http.rate_limit_per_second and http.rate_limit_burst must be positive".into());
        }
        if self.http.ws_queue < 16 {
            errors.push(format!("http.ws_queue: {} is below 16", self.http.ws_queue));
        }
        if !matches!(self.log.format.as_str(), "json" | "pretty") {
            errors.push(format!("log.format: '{}' is not json or pretty", self.log.format));
        }
        if let Err(e) = self.risk.to_limits() {
            errors.push(e);
        }
        if self.risk.max_concentration_bps.is_some_and(|b| b == 0 || b > 10_000) {
            errors.push("risk.max_concentration_bps: must be 1..=10000".into());
        }
        if self.markets.is_empty() {
            errors.push("markets: at least one market is needed".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, m) in self.markets.iter().enumerate() {
            if !seen.insert(m.symbol.clone()) {
                errors.push(format!("markets[{i}].symbol: '{}' is listed twice", m.symbol));
            }
            let assets = self.assets();
            if let Err(e) = m.to_spec(SymbolId(i as u16), &assets) {
                errors.push(format!("markets[{i}] ({}): {e}", m.symbol));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }

    /// Asset codes in listing order: every quote and base of the markets, first seen first.
    pub fn assets(&self) -> Vec<String> {
        let mut assets: Vec<String> = Vec::new();
        for m in &self.markets {
            for code in [&m.quote, &m.base] {
                if !assets.contains(code) {
                    assets.push(code.clone());
                }
            }
        }
        assets
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// Top-level keys taken from `QT_…` variables.
const KNOWN_KEYS: &[&str] =
    &["listen", "data_dir", "admin_token", "web_dir", "demo_user", "sim", "engine", "http", "log", "risk"];

fn flatten_figment(e: figment::Error) -> String {
    e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")
}

fn units(s: &str, what: &str) -> Result<i64, String> {
    let v = parse_scaled(s, ASSET_SCALE).map_err(|e| format!("{what} '{s}': {e}"))?;
    if v <= 0 {
        return Err(format!("{what} '{s}' must be positive"));
    }
    i64::try_from(v).map_err(|_| format!("{what} '{s}' is too large"))
}

impl MarketConfig {
    /// The engine's spec of this market; `assets` are the codes in listing order.
    pub fn to_spec(&self, id: SymbolId, assets: &[String]) -> Result<SymbolSpec, String> {
        let asset_id = |code: &str| {
            assets.iter().position(|a| a == code).map(|i| AssetId(i as u16)).ok_or(format!("unknown asset {code}"))
        };
        if self.symbol.is_empty() || self.symbol.len() > 32 {
            return Err("symbol must have 1 to 32 characters".into());
        }
        let tick = units(&self.tick_size, "tick_size")?;
        let lot = units(&self.lot_size, "lot_size")?;
        let min_units = units(&self.min_quantity, "min_quantity")?;
        let max_units = units(&self.max_quantity, "max_quantity")?;
        if min_units % lot != 0 || max_units % lot != 0 {
            return Err("min_quantity and max_quantity must be multiples of lot_size".into());
        }
        let spec = SymbolSpec {
            id,
            name: self.symbol.clone(),
            base: asset_id(&self.base)?,
            quote: asset_id(&self.quote)?,
            base_scale: ASSET_SCALE,
            quote_scale: ASSET_SCALE,
            tick,
            lot,
            min_qty: Qty(min_units / lot),
            max_qty: Qty(max_units / lot),
            min_notional: Amount(units(&self.min_notional, "min_notional")?),
            price_band_bps: self.price_band_bps,
            market_collar_bps: self.market_collar_bps,
            maker_fee_bps: self.maker_fee_bps,
            taker_fee_bps: self.taker_fee_bps,
        };
        spec.validate().map_err(|e| e.to_string())?;
        if spec.min_qty > spec.max_qty {
            return Err("min_quantity is above max_quantity".into());
        }
        spec.parse_price(&self.initial_price).map_err(|e| format!("initial_price '{}': {e}", self.initial_price))?;
        spec.parse_qty(&self.sim_order_size).map_err(|e| format!("sim_order_size '{}': {e}", self.sim_order_size))?;
        units(&self.demo_deposit, "demo_deposit")?;
        Ok(spec)
    }

    pub fn initial_price(&self, spec: &SymbolSpec) -> Price {
        spec.parse_price(&self.initial_price).unwrap_or(Price(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = RunConfig::default();
        c.validate().unwrap();
        assert_eq!(c.assets(), vec!["USD", "BTC", "ETH", "SOL"]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut c = RunConfig { listen: "nope".into(), ..RunConfig::default() };
        c.sim.step_ms = 1;
        c.http.body_limit_bytes = 10;
        c.markets[0].tick_size = "0.000000001".into();
        let ConfigError::Invalid(errors) = c.validate().unwrap_err() else { panic!("expected Invalid") };
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].starts_with("listen:"));
        assert!(errors.iter().any(|e| e.starts_with("markets[0] (BTC-USD): tick_size")), "{errors:#?}");
    }

    #[test]
    fn flags_win_over_defaults() {
        let flags =
            Overrides { listen: Some("127.0.0.1:0".into()), no_sim: true, seed: Some(7), ..Overrides::default() };
        let c = RunConfig::load(&flags).unwrap();
        assert_eq!(c.listen, "127.0.0.1:0");
        assert!(!c.sim.enabled);
        assert_eq!(c.sim.seed, 7);
    }

    #[test]
    fn config_file_layers_under_flags() {
        let dir = std::env::temp_dir().join(format!("qt-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("qt.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9999\"\n[http]\nrate_limit_per_second = 7\n").unwrap();
        let c = RunConfig::load(&Overrides { config_file: Some(file.clone()), ..Overrides::default() }).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999");
        assert_eq!(c.http.rate_limit_per_second, 7);
        assert_eq!(c.http.rate_limit_burst, 100, "unset keys keep their defaults");
        let c = RunConfig::load(&Overrides {
            config_file: Some(file),
            listen: Some("127.0.0.1:1".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:1");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
