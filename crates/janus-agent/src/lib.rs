//! `janus agent`: a sidecar that gives an app in any language what the Rust
//! SDK gives a Rust program, without a registry library.
//!
//! - **Registration** ([`app`]): the app (service, namespace, port,
//!   metadata) is health-checked locally (HTTP, TCP or a command) and kept
//!   registered only while the check passes; it is deregistered when the
//!   check keeps failing and when the agent stops (SIGTERM).
//! - **Discovery** ([`proxy`]): `http://127.0.0.1:15001/{service}/{path}`
//!   reaches a healthy instance of `service`, with the SDK's balancing,
//!   retries on another instance, outlier ejection and timeouts; and a local
//!   DNS on `127.0.0.1:15053` (UDP and TCP) answers the registry's names
//!   (`{service}.svc.janus.`) from the same watched copies.
//! - **Its own endpoints** ([`admin`]): `/health` and `/metrics` on
//!   `127.0.0.1:15000`.
//!
//! The agent talks to the registry only through `janus-client` (the native
//! HTTP API), so it runs next to an app on any host that reaches a node.
//! Operators' guide: `docs/agent.md`.

#![warn(missing_docs)]

pub mod admin;
pub mod app;
mod check;
pub mod config;
mod dns;
mod metrics;
pub mod proxy;
mod serve;
mod services;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use janus_client::{Client, Options};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{AgentConfig, ConfigError};

/// Why the agent cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration does not hold together.
    #[error("bad configuration: {0}")]
    Config(#[from] ConfigError),
    /// A listener cannot be opened.
    #[error("cannot listen for the {what} on {addr}: {source}")]
    Listen {
        /// `proxy`, `local DNS` or `admin endpoints`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The registry client cannot be built (an address that does not parse).
    #[error("the registry address: {0}")]
    Registry(#[from] janus_client::Error),
}

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    /// Where the proxy listens (none when it is off).
    pub proxy_addr: Option<SocketAddr>,
    /// Where the local DNS listens, UDP and TCP (none when it is off).
    pub dns_addr: Option<SocketAddr>,
    /// Where `/health` and `/metrics` are served.
    pub admin_addr: SocketAddr,
    shutdown: CancellationToken,
    app: Option<JoinHandle<()>>,
    servers: Vec<JoinHandle<()>>,
}

impl Agent {
    /// Opens the listeners and starts checking, registering and proxying.
    ///
    /// # Errors
    /// [`AgentError`]: a bad configuration, a port in use, a bad registry address.
    pub async fn start(config: AgentConfig) -> Result<Self, AgentError> {
        config.validate()?;
        let mut options = Options::default();
        if let Some(token) = &config.token {
            options = options.bearer(token.clone());
        }
        let registry = Client::new(config.registry.clone(), options)?;
        let shutdown = CancellationToken::new();
        let metrics = Arc::new(metrics::Metrics::default());
        let mut servers = Vec::new();

        let services = Arc::new(services::Services::new(registry.clone(), config.proxy_namespace(), &config.proxy));
        let proxy_addr = if config.proxy.enabled {
            let listener = listen("proxy", config.proxy.addr).await?;
            let addr = local_addr("proxy", &listener, config.proxy.addr)?;
            let proxy = Arc::new(proxy::Proxy::new(services.clone(), &config.proxy, metrics.clone()));
            let handler = move |request| proxy.clone().handle(request);
            servers.push(tokio::spawn(serve::serve(listener, config.proxy.max_connections, shutdown.clone(), handler)));
            Some(addr)
        } else {
            None
        };

        let dns_addr = if config.dns.enabled {
            let local = dns::LocalDns::new(services.clone(), &config.dns.domain)
                .map_err(|error| AgentError::Config(ConfigError::Invalid(error)))?;
            let what = "local DNS";
            let (socket, listener) = dns::bind(config.dns.addr).await.map_err(|source| AgentError::Listen {
                what,
                addr: config.dns.addr,
                source,
            })?;
            let addr =
                socket.local_addr().map_err(|source| AgentError::Listen { what, addr: config.dns.addr, source })?;
            let local = Arc::new(local);
            servers.push(tokio::spawn(local.clone().serve(socket, shutdown.clone())));
            servers.push(tokio::spawn(local.serve_tcp(listener, shutdown.clone())));
            Some(addr)
        } else {
            None
        };

        let app_status = config.app.as_ref().map(|app| Arc::new(Mutex::new(app::initial_status(app))));
        let listener = listen("admin endpoints", config.admin.addr).await?;
        let admin_addr = local_addr("admin endpoints", &listener, config.admin.addr)?;
        let admin = Arc::new(admin::Admin {
            app: app_status.clone(),
            proxy: proxy_addr,
            dns: dns_addr,
            registry: config.registry.clone(),
            metrics: metrics.clone(),
        });
        let handler = move |request: hyper::Request<hyper::body::Incoming>| {
            let answer = admin.handle(&request);
            async move { answer }
        };
        // The admin endpoints are for a probe and a scraper: a few connections.
        servers.push(tokio::spawn(serve::serve(listener, 64, shutdown.clone(), handler)));

        let app = match (config.app, app_status) {
            (Some(app), Some(status)) => Some(tokio::spawn(app::run(registry, app, status, metrics, shutdown.clone()))),
            _ => None,
        };
        let shown = |addr: Option<SocketAddr>| addr.map_or_else(|| "off".to_owned(), |addr| addr.to_string());
        tracing::info!(
            proxy = %shown(proxy_addr),
            dns = %shown(dns_addr),
            admin = %admin_addr,
            registry = ?config.registry,
            "agent started"
        );
        Ok(Self { proxy_addr, dns_addr, admin_addr, shutdown, app, servers })
    }

    /// Stops: deregisters the app (waiting at most a few seconds for the
    /// registry), then closes the listeners, letting requests in flight end.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(app) = self.app.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), app).await;
        }
        for server in self.servers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn listen(what: &'static str, addr: SocketAddr) -> Result<TcpListener, AgentError> {
    TcpListener::bind(addr).await.map_err(|source| AgentError::Listen { what, addr, source })
}

fn local_addr(what: &'static str, listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, AgentError> {
    listener.local_addr().map_err(|source| AgentError::Listen { what, addr, source })
}
