//! The start-up summary a node logs at `info`, so the first lines of its log
//! say what is running: the version and where the configuration came from
//! ([`log_sources`], called by the binary once logging is set up), then the
//! data directory, every listener and what was recovered from disk
//! ([`log_summary`], called by [`crate::start`]).
//!
//! Sources are named, never their values: an environment variable may hold
//! the cluster secret.

use std::net::SocketAddr;
use std::path::Path;

use tracing::{info, warn};

use crate::config::ConfigSources;
use crate::{Node, ServerConfig};

/// The version the binary was built as.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The line naming the version and the configuration's sources, and the
/// effective log filter (`from_rust_log` when `RUST_LOG` replaced it).
#[must_use]
pub fn sources_line(sources: &ConfigSources, log_filter: &str, from_rust_log: bool) -> String {
    let mut used = vec!["the defaults".to_owned()];
    if let Some(file) = &sources.file {
        used.push(format!("the file {}", file.display()));
    }
    if !sources.env.is_empty() {
        used.push(format!("the environment ({})", sources.env.join(", ")));
    }
    if !sources.flags.is_empty() {
        used.push(format!("the flags {}", sources.flags.join(", ")));
    }
    let filter = if from_rust_log { "RUST_LOG" } else { "log filter" };
    format!("janus {VERSION} starting; configuration from {}; {filter} {log_filter:?}", used.join(", "))
}

/// Logs [`sources_line`], and a warning for each `JANUS_` variable that was
/// ignored (an old name, or another program's).
pub fn log_sources(sources: &ConfigSources, log_filter: &str, from_rust_log: bool) {
    info!("{}", sources_line(sources, log_filter, from_rust_log));
    for warning in &sources.warnings {
        warn!("{warning}");
    }
}

/// What a node found on disk when it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Namespaces (the default `public` included).
    pub namespaces: usize,
    /// Service definitions (every service of a `cp` namespace, and defined ones of `ap` namespaces).
    pub services: usize,
    /// Persistent instances.
    pub persistent_instances: usize,
    /// The Raft log index applied to the registry.
    pub raft_applied_index: u64,
}

impl Recovered {
    /// The replicated state of `node` now.
    #[must_use]
    pub fn of(node: &Node) -> Self {
        let state = node.store().read(janus_core::Registry::export_cp);
        Self {
            namespaces: state.namespaces.len(),
            services: state.services.len(),
            persistent_instances: state.instances.len(),
            raft_applied_index: node.cp().applied_index(),
        }
    }
}

/// Where a node listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listeners {
    /// The HTTP API.
    pub http: SocketAddr,
    /// DNS (UDP and TCP), unless `dns.enabled` is false.
    pub dns: Option<SocketAddr>,
    /// Nacos gRPC, unless `grpc.enabled` is false.
    pub grpc: Option<SocketAddr>,
    /// The cluster address, in a cluster.
    pub cluster: Option<SocketAddr>,
}

/// The summary's lines: data directory, listeners, what was recovered.
#[must_use]
pub fn summary(config: &ServerConfig, data_dir: &Path, listeners: &Listeners, recovered: &Recovered) -> Vec<String> {
    let dns = listeners.dns.map_or_else(|| "off (dns.enabled = false)".to_owned(), |a| format!("{a} (UDP and TCP)"));
    let grpc = listeners
        .grpc
        .map_or_else(|| "off (grpc.enabled = false)".to_owned(), |addr| format!("{addr} (Nacos 2.x/3.x SDKs)"));
    let cluster = listeners.cluster.map_or_else(
        || "none, this node is not clustered (cluster.members is empty)".to_owned(),
        |a| format!("{a} (Raft, Distro and the members admin API)"),
    );
    vec![
        format!("node {}, data directory {}", config.node.id, data_dir.display()),
        format!("listening: HTTP {}, gRPC {grpc}, DNS {dns}, cluster address {cluster}", listeners.http),
        auth_line(config),
        format!(
            "recovered from disk: {}, {}, {}, Raft applied index {}",
            count(recovered.namespaces, "namespace"),
            count(recovered.services, "service definition"),
            count(recovered.persistent_instances, "persistent instance"),
            recovered.raft_applied_index
        ),
    ]
}

/// Whether requests are checked, and why.
fn auth_line(config: &ServerConfig) -> String {
    match (config.auth.enabled, config.exposure()) {
        (Some(true), _) => "auth on (auth.enabled = true): every request needs a token (docs/auth.md)".to_owned(),
        (Some(false), _) => "auth off (auth.enabled = false)".to_owned(),
        (None, Some(reason)) => {
            format!(
                "auth on, since {reason}: every request needs a token (docs/auth.md; auth.enabled = false turns it off)"
            )
        }
        (None, None) => "auth off: every listener is on loopback and no cluster is configured (auth.enabled = true \
                         turns it on)"
            .to_owned(),
    }
}

/// The warning a node logs at every start when auth is off although it
/// would be on by default.
#[must_use]
pub fn auth_off_warning(config: &ServerConfig) -> Option<String> {
    match (config.auth.enabled, config.exposure()) {
        (Some(false), Some(reason)) => Some(format!(
            "auth is off (auth.enabled = false) although {reason}: anyone who can reach this node can read, change \
             and delete everything it holds; remove the setting to have it on (docs/auth.md)"
        )),
        _ => None,
    }
}

/// `1 namespace`, `2 namespaces`.
fn count(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// Logs [`summary`] for a node that has bound its listeners.
pub fn log_summary(config: &ServerConfig, node: &Node, listeners: &Listeners) {
    let data_dir = std::fs::canonicalize(&config.node.data_dir).unwrap_or_else(|_| config.node.data_dir.clone());
    for line in summary(config, &data_dir, listeners, &Recovered::of(node)) {
        info!("{line}");
    }
    if let Some(warning) = auth_off_warning(config) {
        warn!("{warning}");
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn the_sources_line_names_every_source_but_no_value() {
        let sources = ConfigSources {
            file: Some(PathBuf::from("/etc/janus.toml")),
            env: vec!["JANUS_CLUSTER__SECRET".to_owned(), "JANUS_HTTP__ADDR".to_owned()],
            flags: vec!["--data-dir".to_owned()],
            warnings: Vec::new(),
        };
        let line = sources_line(&sources, "info,openraft=warn", false);
        for wanted in [
            &format!("janus {VERSION} starting"),
            "the defaults",
            "the file /etc/janus.toml",
            "the environment (JANUS_CLUSTER__SECRET, JANUS_HTTP__ADDR)",
            "the flags --data-dir",
            "log filter \"info,openraft=warn\"",
        ] {
            assert!(line.contains(wanted), "{wanted:?} missing from {line}");
        }
        let line = sources_line(&ConfigSources::default(), "debug", true);
        assert!(line.contains("configuration from the defaults; RUST_LOG \"debug\""), "{line}");
    }

    #[test]
    fn the_summary_names_directory_listeners_and_recovered_state() {
        let config = ServerConfig::default();
        let listeners = Listeners {
            http: "127.0.0.1:8848".parse().unwrap(),
            dns: Some("127.0.0.1:8600".parse().unwrap()),
            grpc: Some("127.0.0.1:9848".parse().unwrap()),
            cluster: None,
        };
        let recovered = Recovered { namespaces: 2, services: 1, persistent_instances: 4, raft_applied_index: 17 };
        let text = summary(&config, Path::new("/var/lib/janus"), &listeners, &recovered).join("\n");
        for wanted in [
            "node 1, data directory /var/lib/janus",
            "HTTP 127.0.0.1:8848",
            "DNS 127.0.0.1:8600 (UDP and TCP)",
            "gRPC 127.0.0.1:9848 (Nacos 2.x/3.x SDKs)",
            "not clustered (cluster.members is empty)",
            "2 namespaces, 1 service definition, 4 persistent instances, Raft applied index 17",
        ] {
            assert!(text.contains(wanted), "{wanted:?} missing from\n{text}");
        }
        let listeners =
            Listeners { dns: None, grpc: None, cluster: Some("10.0.0.1:7848".parse().unwrap()), ..listeners };
        let text = summary(&config, Path::new("d"), &listeners, &recovered).join("\n");
        assert!(
            text.contains("DNS off (dns.enabled = false)") && text.contains("cluster address 10.0.0.1:7848"),
            "{text}"
        );
        assert!(text.contains("gRPC off (grpc.enabled = false)"), "{text}");
    }

    #[test]
    fn auth_is_on_off_loopback_or_in_a_cluster_and_turning_it_off_there_warns() {
        let listeners = Listeners { http: "127.0.0.1:8848".parse().unwrap(), dns: None, grpc: None, cluster: None };
        let line =
            |config: &ServerConfig| summary(config, Path::new("d"), &listeners, &Recovered::default()).join("\n");
        let local = ServerConfig::default();
        assert!(!local.auth_enabled() && auth_off_warning(&local).is_none());
        assert!(line(&local).contains("auth off: every listener is on loopback"), "{}", line(&local));

        let mut public = ServerConfig::default();
        public.http.addr = "0.0.0.0:8848".parse().unwrap();
        assert!(public.auth_enabled());
        assert!(line(&public).contains("auth on, since http.addr 0.0.0.0:8848 is not a loopback address"));
        let mut dns = ServerConfig::default();
        dns.dns.addr = "10.1.2.3:53".parse().unwrap();
        assert!(dns.auth_enabled(), "a DNS listener off loopback counts too");
        dns.dns.enabled = false;
        assert!(!dns.auth_enabled());
        let mut grpc = ServerConfig::default();
        grpc.grpc.addr = "[::]:9848".to_owned();
        assert!(grpc.auth_enabled(), "so does the gRPC one");
        let mut clustered = ServerConfig::default();
        clustered.cluster.members = vec!["1@127.0.0.1:7848".to_owned()];
        assert!(clustered.auth_enabled(), "a cluster on loopback still has auth on");
        assert!(line(&clustered).contains("since a cluster is configured"));

        public.auth.enabled = Some(false);
        assert!(!public.auth_enabled());
        let warning = auth_off_warning(&public).expect("turning auth off on a public address warns");
        assert!(warning.contains("http.addr 0.0.0.0:8848") && warning.contains("auth.enabled = false"), "{warning}");
        let mut forced = ServerConfig::default();
        forced.auth.enabled = Some(true);
        assert!(forced.auth_enabled() && line(&forced).contains("auth on (auth.enabled = true)"));
    }
}
