//! `quanttrader run`: the all-in-one exchange with its simulator, in one process.

/// Prints a line to stdout, ignoring a closed stdout: a server must not die because
/// whoever started it stopped reading (`println!` would panic on EPIPE).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use anyhow::{Context, Result};
use clap::Args;
use qt_api::{Application, Overrides, RunConfig};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Address to listen on (default 127.0.0.1:8080; env QT_LISTEN).
    #[arg(long)]
    listen: Option<String>,
    /// Data directory: journal, snapshots, read model, credentials (default ./quanttrader-data; env QT_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Admin token for /api/admin/* (env QT_ADMIN_TOKEN); generated at first start when unset.
    #[arg(long)]
    admin_token: Option<String>,
    /// Do not run the market simulator.
    #[arg(long)]
    no_sim: bool,
    /// Seed of the simulator.
    #[arg(long)]
    seed: Option<u64>,
    /// TOML configuration file; flags and QT_… variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory of the built web screen (default: web/dist when it exists).
    #[arg(long)]
    web_dir: Option<PathBuf>,
}

pub fn run(args: RunArgs) -> Result<()> {
    let web_dir = args.web_dir.or_else(|| {
        let default = PathBuf::from("web/dist");
        default.join("index.html").is_file().then_some(default)
    });
    let flags = Overrides {
        config_file: args.config,
        listen: args.listen,
        data_dir: args.data_dir,
        admin_token: args.admin_token,
        web_dir,
        no_sim: args.no_sim,
        seed: args.seed,
    };
    let config = match RunConfig::load(&flags).and_then(|c| c.validate().map(|()| c)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("quanttrader run: {e}");
            std::process::exit(2);
        }
    };
    qt_api::telemetry::init(&config.log.format, &config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: RunConfig) -> Result<()> {
    let web = config.web_dir.clone();
    let app = Application::build(config).await.context("starting quanttrader")?;
    let url = format!("http://{}", app.local_addr());
    let creds_path = app.data_dir().join(qt_api::app::CREDENTIALS_FILE);
    say!("QuantTrader is running at {url}");
    if web.is_some() {
        say!("  trading screen  {url}/");
    }
    say!("  API             {url}/api/symbols   (OpenAPI: {url}/openapi.json)");
    if app.first_start {
        say!("  First start: these credentials are shown once and kept in {} (mode 0600):", creds_path.display());
        say!("    admin token   {}", app.credentials.admin_token);
        if let (Some(id), Some(key)) = (&app.credentials.demo_user_id, &app.credentials.demo_api_key) {
            say!("    demo user     id {id}, API key {key}");
        }
    } else {
        say!("  Credentials (admin token, demo API key): {}", creds_path.display());
    }
    say!("  Stop with Ctrl-C.");
    app.run_until(shutdown_signal()).await.context("serving")?;
    Ok(())
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
