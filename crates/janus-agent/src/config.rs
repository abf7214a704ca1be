//! The agent's settings: a TOML file (see `docs/agent.md` and
//! `examples/agent/agent.toml`) with command-line flags over it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use janus_client::balance::Strategy;
use serde::Deserialize;

/// Everything the agent does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// The registry's HTTP addresses (`host:port`), tried in turn.
    pub registry: Vec<String>,
    /// An API token for a registry with auth on.
    pub token: Option<String>,
    /// The local app to keep registered (none: the agent only proxies).
    pub app: Option<AppConfig>,
    /// The proxy to other services.
    pub proxy: ProxyConfig,
    /// The local DNS answer for the same services.
    pub dns: DnsConfig,
    /// The agent's own `/health` and `/metrics`.
    pub admin: AdminConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            registry: vec!["127.0.0.1:8848".to_owned()],
            token: None,
            app: None,
            proxy: ProxyConfig::default(),
            dns: DnsConfig::default(),
            admin: AdminConfig::default(),
        }
    }
}

/// The local app: the instance registered for it and how it is checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Service name.
    pub service: String,
    /// Namespace id.
    #[serde(default = "public")]
    pub namespace: String,
    /// Group (the registry's `DEFAULT_GROUP` when absent).
    #[serde(default)]
    pub group: Option<String>,
    /// The address other services reach the app at.
    #[serde(default = "loopback")]
    pub ip: String,
    /// The app's port.
    pub port: u16,
    /// Cluster (the registry's `DEFAULT` when absent).
    #[serde(default)]
    pub cluster: Option<String>,
    /// Weight (1 when absent).
    #[serde(default)]
    pub weight: Option<f64>,
    /// Metadata (a `zone` key takes part in zone preference).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The health check.
    #[serde(default)]
    pub check: CheckConfig,
}

/// How the app is checked: at most one of `http`, `tcp` and `command`;
/// none means the app counts as passing for as long as the agent runs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckConfig {
    /// `http://host:port/path`: passing on a 2xx answer.
    pub http: Option<String>,
    /// `host:port`: passing when a TCP connection opens.
    pub tcp: Option<String>,
    /// A program and its arguments: passing when it exits 0.
    pub command: Option<Vec<String>>,
    /// Between two checks.
    pub interval_ms: u64,
    /// How long one check may take.
    pub timeout_ms: u64,
    /// Consecutive passes before the app is registered.
    pub passes_to_register: u32,
    /// Consecutive failures before the app is deregistered.
    pub failures_to_deregister: u32,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            http: None,
            tcp: None,
            command: None,
            interval_ms: 2_000,
            timeout_ms: 1_000,
            passes_to_register: 1,
            failures_to_deregister: 2,
        }
    }
}

impl CheckConfig {
    /// Between two checks.
    #[must_use]
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// How long one check may take.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Balancing strategies by their names in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyName {
    /// [`Strategy::WeightedRandom`].
    #[default]
    WeightedRandom,
    /// [`Strategy::RoundRobin`].
    RoundRobin,
    /// [`Strategy::LeastOutstanding`].
    LeastOutstanding,
}

impl From<StrategyName> for Strategy {
    fn from(name: StrategyName) -> Self {
        match name {
            StrategyName::WeightedRandom => Self::WeightedRandom,
            StrategyName::RoundRobin => Self::RoundRobin,
            StrategyName::LeastOutstanding => Self::LeastOutstanding,
        }
    }
}

/// The proxy: `http://{addr}/{service}/{path}` goes to an instance of `service`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Whether the proxy runs.
    pub enabled: bool,
    /// Where it listens (keep it on loopback: it serves the local app).
    pub addr: SocketAddr,
    /// The namespace of the services it reaches (default: the app's, else `public`).
    pub namespace: Option<String>,
    /// Their group (the registry's `DEFAULT_GROUP` when absent; a path may
    /// name another as `/{group}@@{service}/…`).
    pub group: Option<String>,
    /// How an instance is chosen.
    pub strategy: StrategyName,
    /// The caller's zone: instances with the same `zone` metadata are preferred.
    pub zone: Option<String>,
    /// How long an instance may take to answer (to the response head).
    pub timeout_ms: u64,
    /// How long a connection to an instance may take to open.
    pub connect_timeout_ms: u64,
    /// How many other instances an idempotent request is tried on after a
    /// failure (a request never sent is always tried again).
    pub retries: u32,
    /// The largest request body the proxy takes (it keeps the body to retry).
    pub max_body_bytes: usize,
    /// Connections the proxy holds at once.
    pub max_connections: usize,
    /// Services the proxy watches at once.
    pub max_services: usize,
    /// Where the last list of each service is kept, for a start while the
    /// registry is down (the SDK's failover cache; none when absent).
    pub failover_dir: Option<PathBuf>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: SocketAddr::from(([127, 0, 0, 1], 15001)),
            namespace: None,
            group: None,
            strategy: StrategyName::default(),
            zone: None,
            timeout_ms: 10_000,
            connect_timeout_ms: 1_000,
            retries: 2,
            max_body_bytes: 10 * 1024 * 1024,
            max_connections: 1_024,
            max_services: 256,
            failover_dir: None,
        }
    }
}

/// The local DNS: the registry's names (`docs/dns.md`) over UDP and TCP, answered
/// from the proxy's watched copies.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Whether it runs.
    pub enabled: bool,
    /// Where it listens (UDP and TCP).
    pub addr: SocketAddr,
    /// The domain its names end in, as the registry's `dns.domain`.
    pub domain: String,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self { enabled: true, addr: SocketAddr::from(([127, 0, 0, 1], 15053)), domain: "janus".to_owned() }
    }
}

/// The agent's own endpoints.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Where `/health` and `/metrics` are served.
    pub addr: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { addr: SocketAddr::from(([127, 0, 0, 1], 15000)) }
    }
}

fn public() -> String {
    "public".to_owned()
}

fn loopback() -> String {
    "127.0.0.1".to_owned()
}

/// A configuration that cannot be used; each names where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or a flag does not parse into the settings.
    #[error("{0}")]
    Parse(#[from] config::ConfigError),
    /// The settings parse but do not fit together.
    #[error("{0}")]
    Invalid(String),
}

impl AgentConfig {
    /// The settings of `file` (TOML), with `overrides` (`(key, value)`, e.g.
    /// `("app.port", "8080")`, from flags) over it.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, the key or the rule.
    pub fn load(file: Option<&Path>, overrides: &[(&str, String)]) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml).required(true));
        }
        for (key, value) in overrides {
            builder = builder.set_override(*key, value.as_str())?;
        }
        let config: Self = builder.build()?.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// The rules serde cannot state.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        if self.registry.is_empty() {
            return invalid("`registry` names no registry address".to_owned());
        }
        if let Some(app) = &self.app {
            if app.service.is_empty() {
                return invalid("`app.service` is empty".to_owned());
            }
            if app.port == 0 {
                return invalid("`app.port` must be 1-65535".to_owned());
            }
            let check = &app.check;
            let kinds = [check.http.is_some(), check.tcp.is_some(), check.command.is_some()];
            if kinds.iter().filter(|set| **set).count() > 1 {
                return invalid("`app.check` takes one of `http`, `tcp` and `command`, not several".to_owned());
            }
            if let Some(url) = &check.http {
                crate::check::split_http_url(url).map_err(ConfigError::Invalid)?;
            }
            if check.command.as_ref().is_some_and(Vec::is_empty) {
                return invalid("`app.check.command` names no program".to_owned());
            }
            if check.interval_ms == 0 || check.timeout_ms == 0 {
                return invalid("`app.check.interval_ms` and `app.check.timeout_ms` must be above 0".to_owned());
            }
            if check.passes_to_register == 0 || check.failures_to_deregister == 0 {
                return invalid(
                    "`app.check.passes_to_register` and `app.check.failures_to_deregister` must be at least 1"
                        .to_owned(),
                );
            }
        }
        let proxy = &self.proxy;
        if proxy.timeout_ms == 0 || proxy.connect_timeout_ms == 0 {
            return invalid("`proxy.timeout_ms` and `proxy.connect_timeout_ms` must be above 0".to_owned());
        }
        if proxy.max_connections == 0 || proxy.max_services == 0 {
            return invalid("`proxy.max_connections` and `proxy.max_services` must be at least 1".to_owned());
        }
        Ok(())
    }

    /// The namespace the proxy reaches services in.
    #[must_use]
    pub fn proxy_namespace(&self) -> String {
        self.proxy
            .namespace
            .clone()
            .or_else(|| self.app.as_ref().map(|app| app.namespace.clone()))
            .unwrap_or_else(public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, overrides: &[(&str, String)]) -> Result<AgentConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.toml");
        std::fs::write(&file, text).unwrap();
        AgentConfig::load(Some(&file), overrides)
    }

    #[test]
    fn the_sample_configuration_parses() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/agent/agent.toml");
        let config = AgentConfig::load(Some(&sample), &[]).unwrap();
        let app = config.app.expect("the sample defines an app");
        assert_eq!(app.service, "hello");
        assert!(app.check.http.is_some());
        assert!(config.proxy.enabled);
    }

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let config = load_text(
            "registry = [\"10.0.0.1:8848\"]\n[app]\nservice = \"web\"\nport = 8080\n",
            &[("app.port", "9090".to_owned()), ("proxy.retries", "0".to_owned())],
        )
        .unwrap();
        let app = config.app.clone().unwrap();
        assert_eq!(
            (app.service.as_str(), app.port, app.namespace.as_str(), app.ip.as_str()),
            ("web", 9090, "public", "127.0.0.1")
        );
        assert_eq!(config.proxy.retries, 0);
        assert_eq!(config.proxy.addr, SocketAddr::from(([127, 0, 0, 1], 15001)));
        assert_eq!(config.proxy_namespace(), "public");
        assert_eq!(config.registry, ["10.0.0.1:8848"]);
    }

    #[test]
    fn mistakes_are_named() {
        let unknown = load_text("[proxy]\nretry = 3\n", &[]).unwrap_err().to_string();
        assert!(unknown.contains("retry"), "{unknown}");
        let two = load_text(
            "[app]\nservice = \"web\"\nport = 1\n[app.check]\nhttp = \"http://127.0.0.1:1/\"\ntcp = \"127.0.0.1:1\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(two.contains("one of"), "{two}");
        let url = load_text("[app]\nservice = \"web\"\nport = 1\n[app.check]\nhttp = \"https://x/\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(url.contains("http://"), "{url}");
        let port = load_text("[app]\nservice = \"web\"\n", &[]).unwrap_err().to_string();
        assert!(port.contains("port"), "{port}");
    }
}
