//! The `quanttrader` binary: a thin layer of argument parsing over the library crates.

mod bench;
mod bench_http;
mod run;
mod serve;

use anyhow::Result;

// The server allocates small short-lived buffers per request on every worker thread
// (JSON, headers, events); glibc's malloc spent ~8% of the CPU in `bench http` profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "quanttrader",
    version,
    about = "QuantTrader: a trading platform (matching, risk, settlement, market data)"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// The whole exchange in one process: API, engine, durable journal, simulator, web screen.
    Run(run::RunArgs),
    /// One role of the distributed mode over Kafka, PostgreSQL and Redis.
    Serve(serve::ServeArgs),
    /// Applies the PostgreSQL migrations of the distributed mode, then exits.
    Migrate(serve::MigrateArgs),
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Debug, Subcommand)]
enum BenchWhat {
    /// Single-threaded engine throughput and latency on an exchange-core style workload.
    Engine(bench::EngineBenchArgs),
    /// Orders per second and latency of a running server over HTTP, against a /health baseline.
    Http(bench_http::HttpBenchArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Commands::Run(args) => run::run(args),
        Commands::Serve(args) => serve::serve(args),
        Commands::Migrate(args) => serve::migrate(args),
        Commands::Bench { what: BenchWhat::Engine(args) } => bench::engine(&args),
        Commands::Bench { what: BenchWhat::Http(args) } => {
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench_http::http(&args))
        }
    }
}
