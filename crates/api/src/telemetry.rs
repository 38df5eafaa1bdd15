//! Logging: JSON lines (or human-readable with `log.format = "pretty"`) with the request
//! span's fields (the request id) on every line emitted inside a request.
//!
//! Contract: [`init`] is called once by the binary; libraries and tests only emit.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber; `RUST_LOG` wins over `level`.
pub fn init(format: &str, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let registry = tracing_subscriber::registry().with(filter);
    // Logs go to stderr so that stdout carries only what a user asked for (credentials
    // at first start, benchmark results).
    let result = if format == "pretty" {
        registry.with(fmt::layer().with_writer(std::io::stderr)).try_init()
    } else {
        registry
            .with(fmt::layer().json().with_current_span(true).with_span_list(false).with_writer(std::io::stderr))
            .try_init()
    };
    if let Err(e) = result {
        eprintln!("logging was already set up: {e}");
    }
}
