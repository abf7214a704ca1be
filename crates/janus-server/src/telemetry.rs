//! The tracing subscriber; only binaries and tests install one.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Crates that are chatty at `info` and below, kept at `warn` unless a filter
/// names them: openraft (every election, append and snapshot step) and
/// hickory's server (a line per DNS-over-TCP connection).
pub const QUIET_CRATES: &[&str] = &["openraft", "hickory_server"];

/// Installs a formatted subscriber with `filter` (see [`with_quiet_crates`]),
/// or with `RUST_LOG` exactly as given when that is set.
///
/// # Errors
/// The filter does not parse.
pub fn init(filter: &str) -> Result<(), tracing_subscriber::filter::ParseError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.is_empty() => EnvFilter::try_new(from_env)?,
        _ => EnvFilter::try_new(with_quiet_crates(filter))?,
    };
    // A second install (tests) keeps the first subscriber.
    let ansi = std::io::stdout().is_terminal();
    // No complaints on stderr when stdout is gone (`janus | head`): they
    // would fail too, and a failing eprintln panics the task that logged.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).log_internal_errors(false).try_init();
    Ok(())
}

/// `filter` with `<crate>=warn` added for each of [`QUIET_CRATES`] that it
/// does not name, when its default level is more verbose than `warn`:
/// `--log debug` becomes `debug,openraft=warn,hickory_server=warn`, while
/// `debug,openraft=debug`, `warn` and `janus_ap=debug` stay as they are.
#[must_use]
pub fn with_quiet_crates(filter: &str) -> String {
    let directives: Vec<&str> = filter.split(',').map(str::trim).filter(|d| !d.is_empty()).collect();
    let verbose = directives
        .iter()
        .any(|d| matches!(d.to_ascii_lowercase().as_str(), "info" | "debug" | "trace" | "3" | "4" | "5"));
    let mut out = filter.trim().to_owned();
    if !verbose {
        return out;
    }
    for quiet in QUIET_CRATES {
        let named = directives.iter().any(|d| {
            let target = d.split(['=', '[']).next().unwrap_or_default();
            target == *quiet || target.starts_with(&format!("{quiet}::"))
        });
        if !named {
            out.push_str(&format!(",{quiet}=warn"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_keeps_openraft_and_hickory_at_warn() {
        assert_eq!(with_quiet_crates("debug"), "debug,openraft=warn,hickory_server=warn");
        assert_eq!(with_quiet_crates("info"), "info,openraft=warn,hickory_server=warn");
        assert_eq!(with_quiet_crates("info,openraft=warn"), "info,openraft=warn,hickory_server=warn");
        assert_eq!(with_quiet_crates("trace,janus_ap=debug"), "trace,janus_ap=debug,openraft=warn,hickory_server=warn");
    }

    #[test]
    fn a_filter_naming_them_or_quiet_anyway_is_kept() {
        assert_eq!(with_quiet_crates("debug,openraft=debug"), "debug,openraft=debug,hickory_server=warn");
        assert_eq!(
            with_quiet_crates("debug,openraft::engine=trace,hickory_server=info"),
            "debug,openraft::engine=trace,hickory_server=info"
        );
        for unchanged in ["warn", "error", "off", "janus_ap=debug"] {
            assert_eq!(with_quiet_crates(unchanged), unchanged);
        }
    }

    #[test]
    fn every_result_parses() {
        for filter in ["debug", "info,openraft=warn", "janus_dns=trace,info"] {
            assert!(EnvFilter::try_new(with_quiet_crates(filter)).is_ok(), "{filter}");
        }
    }
}
