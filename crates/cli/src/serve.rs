//! `quanttrader serve ROLE`: one role of the distributed mode (see the `qt-node` crate).

use anyhow::{Context, Result};
use clap::Args;
use qt_node::config::{overrides, NodeConfig};
use qt_node::Role;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// ingestion, risk, matching, market-data, or all (every role in one process).
    role: Role,
    /// Address to listen on (env QT_LISTEN): the API for ingestion, market-data and all;
    /// /health, /ready and /metrics for the others.
    #[arg(long)]
    listen: Option<String>,
    /// Admin token for /api/admin/* (env QT_ADMIN_TOKEN); required by the API roles.
    #[arg(long)]
    admin_token: Option<String>,
    /// TOML configuration file; QT_… variables (QT_KAFKA__BROKERS, QT_DATABASE__URL,
    /// QT_REDIS__URL, …) and flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn serve(args: ServeArgs) -> Result<()> {
    let config = match NodeConfig::load(&overrides(args.listen, args.admin_token, args.config)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("quanttrader serve: {e}");
            std::process::exit(2);
        }
    };
    qt_api::telemetry::init(&config.run.log.format, &config.run.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")?;
    runtime
        .block_on(qt_node::serve(args.role, config, crate::run::shutdown_signal()))
        .with_context(|| format!("quanttrader serve {}", args.role.as_str()))
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// TOML configuration file; QT_DATABASE__… variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// `quanttrader migrate`: the PostgreSQL schema of the distributed mode.
pub fn migrate(args: MigrateArgs) -> Result<()> {
    let config = match NodeConfig::load(&overrides(None, None, args.config)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("quanttrader migrate: {e}");
            std::process::exit(2);
        }
    };
    qt_api::telemetry::init(&config.run.log.format, &config.run.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")?;
    let applied = runtime.block_on(qt_node::migrate(&config)).context("quanttrader migrate")?;
    tracing::info!(?applied, "migrations up to date");
    Ok(())
}
