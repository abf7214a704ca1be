//! `janus agent`: runs the sidecar of `janus-agent` with the settings of a
//! TOML file (`--config`) and flags over it, until SIGINT or SIGTERM, and
//! deregisters the app before it exits.

use std::path::PathBuf;
use std::process::ExitCode;

use janus_agent::{Agent, AgentConfig};

use crate::signals::ShutdownSignals;

/// The agent's flags; each overrides the file's setting of the same name.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// The agent's TOML file (docs/agent.md; examples/agent/agent.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A registry node's HTTP address; repeat for several (`registry`)
    /// [default: 127.0.0.1:8848]
    #[arg(long = "registry")]
    pub registry: Vec<String>,
    /// An API token for a registry with auth on (`token`).
    #[arg(long, env = "JANUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The app's service name (`app.service`).
    #[arg(long)]
    pub service: Option<String>,
    /// The app's namespace (`app.namespace`) [default: public]
    #[arg(long)]
    pub namespace: Option<String>,
    /// The app's group (`app.group`) [default: DEFAULT_GROUP]
    #[arg(long)]
    pub group: Option<String>,
    /// The address others reach the app at (`app.ip`) [default: 127.0.0.1]
    #[arg(long)]
    pub ip: Option<String>,
    /// The app's port (`app.port`).
    #[arg(long)]
    pub port: Option<u16>,
    /// Metadata of the app's instance, `key=value`; repeat for several.
    #[arg(long = "metadata", value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
    /// Check the app with a GET of this URL, e.g. http://127.0.0.1:8080/health (`app.check.http`).
    #[arg(long)]
    pub check_http: Option<String>,
    /// Check the app by connecting to this address (`app.check.tcp`).
    #[arg(long)]
    pub check_tcp: Option<String>,
    /// Check the app with this shell command, passing on exit 0 (`app.check.command`).
    #[arg(long)]
    pub check_command: Option<String>,
    /// Between two checks, in milliseconds (`app.check.interval_ms`) [default: 2000]
    #[arg(long)]
    pub check_interval_ms: Option<u64>,
    /// Where the proxy listens (`proxy.addr`) [default: 127.0.0.1:15001]
    #[arg(long)]
    pub proxy_addr: Option<String>,
    /// Run no proxy (`proxy.enabled = false`).
    #[arg(long)]
    pub no_proxy: bool,
    /// Where the local DNS listens, UDP and TCP (`dns.addr`) [default: 127.0.0.1:15053]
    #[arg(long)]
    pub dns_addr: Option<String>,
    /// Run no local DNS (`dns.enabled = false`).
    #[arg(long)]
    pub no_dns: bool,
    /// Where /health and /metrics are served (`admin.addr`) [default: 127.0.0.1:15000]
    #[arg(long)]
    pub admin_addr: Option<String>,
    /// Log filter [default: info]
    #[arg(long)]
    pub log: Option<String>,
}

impl AgentArgs {
    /// The settings of the file with the flags over it.
    fn load(&self) -> Result<AgentConfig, String> {
        let mut overrides: Vec<(String, String)> = Vec::new();
        let mut set = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                overrides.push((key.to_owned(), value));
            }
        };
        set("token", self.token.clone());
        set("app.service", self.service.clone());
        set("app.namespace", self.namespace.clone());
        set("app.group", self.group.clone());
        set("app.ip", self.ip.clone());
        set("app.port", self.port.map(|p| p.to_string()));
        set("app.check.http", self.check_http.clone());
        set("app.check.tcp", self.check_tcp.clone());
        set("app.check.interval_ms", self.check_interval_ms.map(|i| i.to_string()));
        set("proxy.addr", self.proxy_addr.clone());
        set("proxy.enabled", self.no_proxy.then(|| "false".to_owned()));
        set("dns.addr", self.dns_addr.clone());
        set("dns.enabled", self.no_dns.then(|| "false".to_owned()));
        set("admin.addr", self.admin_addr.clone());
        for pair in &self.metadata {
            let (key, value) =
                pair.split_once('=').ok_or_else(|| format!("--metadata takes key=value, not `{pair}`"))?;
            overrides.push((format!("app.metadata.{key}"), value.to_owned()));
        }
        let borrowed: Vec<(&str, String)> = overrides.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let mut config = AgentConfig::load(self.config.as_deref(), &borrowed).map_err(|error| match &self.config {
            Some(file) => format!("{}: {error}", file.display()),
            None => error.to_string(),
        })?;
        if !self.registry.is_empty() {
            config.registry.clone_from(&self.registry);
        }
        if let (Some(command), Some(app)) = (&self.check_command, config.app.as_mut()) {
            app.check.command = Some(vec!["sh".to_owned(), "-c".to_owned(), command.clone()]);
        }
        config.validate().map_err(|error| error.to_string())?;
        Ok(config)
    }
}

/// Runs the agent until a signal; the exit code says how it went.
#[must_use]
pub fn run(args: &AgentArgs) -> ExitCode {
    let config = match args.load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("janus agent: bad configuration: {error}");
            return ExitCode::from(crate::cli::EX_USAGE);
        }
    };
    if let Err(error) = crate::telemetry::init(args.log.as_deref().unwrap_or("info")) {
        eprintln!("janus agent: bad log filter: {error}");
        return ExitCode::from(crate::cli::EX_USAGE);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("janus agent: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let signals = match ShutdownSignals::install() {
            Ok(signals) => signals,
            Err(error) => {
                eprintln!("janus agent: cannot install the signal handlers: {error}");
                return ExitCode::FAILURE;
            }
        };
        let agent = match Agent::start(config).await {
            Ok(agent) => agent,
            Err(error) => {
                eprintln!("janus agent: {error}");
                return ExitCode::FAILURE;
            }
        };
        signals.recv().await;
        tracing::info!("stopping the agent");
        agent.stop().await;
        ExitCode::SUCCESS
    })
}
