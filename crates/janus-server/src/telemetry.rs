//! The tracing subscriber; only binaries and tests install one.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs a formatted subscriber with `filter` (overridden by `RUST_LOG` when set).
///
/// # Errors
/// The filter does not parse.
pub fn init(filter: &str) -> Result<(), tracing_subscriber::filter::ParseError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.is_empty() => EnvFilter::try_new(from_env)?,
        _ => EnvFilter::try_new(filter)?,
    };
    // A second install (tests) keeps the first subscriber.
    let ansi = std::io::stdout().is_terminal();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).try_init();
    Ok(())
}
