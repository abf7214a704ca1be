//! The Janus server: reads configuration, builds a node (its registry store,
//! engines and health checker), and serves it over HTTP and DNS (and, in a
//! cluster, the cluster address) until shut down.
//!
//! This is the only crate that knows both the engines and the front ends.
//!
//! # Layout
//! - [`config`]: [`ServerConfig`] from TOML, `JANUS_*` environment and flags.
//! - [`node`]: [`Node`], the [`janus_core::RegistryService`] that routes each
//!   write to the engine owning the namespace's mode.
//! - [`members`]: the AP member list follows the Raft group's.
//! - [`memory`]: freed memory goes back to the OS after a burst of connections.
//! - [`revision_floor`]: revisions never go back across restarts.
//! - [`start`] / [`RunningServer`]: bind HTTP, DNS and the cluster address,
//!   spawn, and shut down gracefully.
//! - [`signals`]: SIGINT and SIGTERM end the process cleanly.
//! - [`startup`]: the start-up summary logged at `info`.
//! - [`telemetry`]: the tracing subscriber (binaries and tests only).
//! - [`cli`]: the operator's subcommands of the `janus` binary, and
//!   `janus agent` (the sidecar of `janus-agent`).

pub mod access;
pub mod cli;
pub mod config;
pub mod members;
pub mod memory;
pub mod node;
pub mod revision_floor;
pub mod signals;
pub mod startup;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use janus_ap::ApEngine;
use janus_core::{RegistryService, RegistryStore};
use janus_http::HttpMetrics;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info, info_span};

pub use crate::config::ServerConfig;
pub use crate::node::Node;

/// A node with its router, ready to be served (or called directly in tests).
pub struct App {
    /// The node.
    pub node: Arc<Node>,
    /// The AP engine (the cluster address serves its peers).
    pub ap: ApEngine,
    /// The HTTP router over it.
    pub router: janus_http::Router,
    /// The Nacos layer the HTTP router uses, for the gRPC front end to share.
    pub nacos: janus_nacos::NacosContext,
    /// The AP engine's reaper task.
    pub reaper: JoinHandle<()>,
    /// The health checker's task.
    pub health: JoinHandle<()>,
    /// The CP engine (to shut down after the front ends).
    pub cp: janus_raft::CpEngine,
    /// The HTTP front end's metrics (the listener counts its connections into them).
    pub metrics: Arc<HttpMetrics>,
    /// In a cluster, the runtime Raft, Distro and the cluster address run on.
    pub cluster_runtime: Option<Arc<ClusterRuntime>>,
}

/// The runtime cluster traffic runs on, in a cluster: Raft (its core and
/// replication), the Distro tasks, the lease reaper and the cluster address.
/// Its threads are apart from the ones serving clients, so a flood of client
/// connections cannot delay a heartbeat (the operating system shares the
/// cores between both). Shut down in the background when dropped.
pub struct ClusterRuntime(Option<tokio::runtime::Runtime>);

impl ClusterRuntime {
    /// A runtime of `threads` worker threads named `janus-cluster`.
    ///
    /// # Errors
    /// The threads cannot be started.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("janus-cluster")
            .enable_all()
            .build()?;
        Ok(Self(Some(runtime)))
    }

    /// Its handle.
    #[must_use]
    pub fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(tokio::runtime::Runtime::handle)
    }
}

impl Drop for ClusterRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            // Dropping a runtime may not block inside another one.
            runtime.shutdown_background();
        }
    }
}

/// Runs `future` on the cluster runtime, if there is one, else here.
async fn on_cluster<F>(runtime: Option<&ClusterRuntime>, future: F) -> anyhow::Result<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    match runtime.and_then(ClusterRuntime::handle) {
        Some(handle) => handle.spawn(future).await.context("the cluster runtime stopped"),
        None => Ok(future.await),
    }
}

/// Builds a node and its router: opens the Raft data in `node.data_dir`
/// (rebuilding the replicated state from it), starts the engines. The AP
/// engine's tasks stop when `shutdown` is cancelled; Raft stops in
/// [`RunningServer::wait`].
///
/// # Errors
/// The data directory cannot be used, or Raft does not start.
pub async fn build(config: &ServerConfig, shutdown: &CancellationToken) -> anyhow::Result<App> {
    claim_data_dir(&config.node.data_dir, config.node.id)?;
    let store = Arc::new(RegistryStore::new(config.registry_config(), config.http.event_buffer));
    // Before Raft replays anything: every revision from now on is above the last run's.
    let reserved = revision_floor::restore(&config.node.data_dir, &store)?;
    revision_floor::keep(&config.node.data_dir, store.clone(), reserved, shutdown.child_token());
    let peers = cluster_secret(config)?
        .map(|secret| Arc::new(janus_peer::StreamPeerTransport::new(secret, config.cluster.max_message_bytes)));
    let raft_transport: Arc<dyn janus_core::transport::PeerTransport> = match &peers {
        Some(peers) => peers.clone(),
        None => Arc::new(janus_raft::NoPeers),
    };
    let cluster_runtime = match config.cluster.is_clustered() {
        true => Some(Arc::new(
            ClusterRuntime::new(config.cluster.runtime_threads).context("cannot start the cluster runtime")?,
        )),
        false => None,
    };
    let runtime = cluster_runtime.as_deref();
    // Raft spawns its tasks where it starts: on the cluster runtime.
    let cp = on_cluster(runtime, janus_raft::CpEngine::start(store.clone(), config.cp_config()?, raft_transport))
        .await?
        .context("cannot start the CP engine")?;
    // The AP engine's tasks (Distro, reaper) and the member follower too.
    let entered = runtime.and_then(ClusterRuntime::handle).map(tokio::runtime::Handle::enter);
    let (ap, reaper) = match (config.ap_cluster()?, peers) {
        (Some(mut cluster), Some(peers)) => {
            // Raft has its state by now: on a restart the group, not the
            // configuration, says who the AP peers are.
            let my_addr = cluster.members.get(&cluster.node).cloned().unwrap_or_default();
            let mut follower = members::MemberFollower::new(cluster.node, my_addr);
            if let Some(group) = follower.members(&cp.group_nodes()) {
                cluster.members = group;
                cluster.wait_for_group = false;
            }
            let (ap, reaper) =
                ApEngine::spawn_clustered(store.clone(), config.ap_config(), &cluster, peers, shutdown.child_token());
            members::follow(cp.clone(), ap.clone(), follower, shutdown.child_token());
            (ap, reaper)
        }
        _ => ApEngine::spawn(store.clone(), config.ap_config(), shutdown.child_token()),
    };
    drop(entered);
    // Each persistent instance is checked by the node owning its hash in the AP ring.
    let owner = ap.clone();
    let responsible: janus_health::Responsibility = Arc::new(move |hash| owner.owns(hash));
    let (health, health_task) = janus_health::HealthChecker::spawn(
        store.clone(),
        responsible,
        Arc::new(node::RaftHealthSink(cp.clone())),
        config.health_config(),
        shutdown.child_token(),
    );
    let node = Arc::new(Node::new(store, ap.clone(), cp.clone()).with_health(health));
    let registry: Arc<dyn RegistryService> = node.clone();
    let metrics = Arc::new(HttpMetrics::default());
    let nacos = janus_http::nacos_context(registry, &config.http_config());
    let router = janus_http::router_with(nacos.clone(), config.http_config(), metrics.clone(), shutdown.child_token());
    Ok(App { node, ap, router, nacos, reaper, health: health_task, cp, metrics, cluster_runtime })
}

/// The cluster secret, when this node is one of several.
fn cluster_secret(config: &ServerConfig) -> anyhow::Result<Option<janus_peer::ClusterSecret>> {
    if !config.cluster.is_clustered() {
        return Ok(None);
    }
    Ok(Some(config.cluster.load_secret()?))
}

/// The file in a data directory naming the node it belongs to.
const NODE_ID_FILE: &str = "node-id";

/// Records `id` in a fresh data directory, or checks that the directory
/// belongs to `id`: a Raft node id is never reused or changed, since a node
/// that comes back under another id can split a group's votes.
///
/// # Errors
/// The directory belongs to another node, or cannot be written.
pub fn claim_data_dir(dir: &std::path::Path, id: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let file = dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            let owner: u64 = text.trim().parse().with_context(|| format!("{} is not a node id", file.display()))?;
            anyhow::ensure!(
                owner == id,
                "the data directory {} belongs to node {owner}, but this node is configured as node {id}; \
                 node ids are never reused or changed (give each node its own data directory)",
                dir.display()
            );
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&file, format!("{id}\n")).with_context(|| format!("cannot write {}", file.display()))
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// Connections the cluster address holds at once: peers keep a few pooled
/// connections each, so this only bounds a misbehaving or hostile caller.
const CLUSTER_MAX_CONNECTIONS: usize = 1024;

/// A server that is listening.
pub struct RunningServer {
    /// Where HTTP is served (the bound address, also when the port was 0).
    pub http_addr: SocketAddr,
    /// Where DNS is served (UDP and TCP), if enabled.
    pub dns_addr: Option<SocketAddr>,
    /// Where Nacos gRPC is served, if enabled.
    pub grpc_addr: Option<SocketAddr>,
    /// The gRPC front end's counters, if it is served.
    pub grpc_stats: Option<Arc<janus_grpc::GrpcStats>>,
    grpc: Option<JoinHandle<()>>,
    /// Where cluster (Raft) traffic is served, in a cluster.
    pub cluster_addr: Option<SocketAddr>,
    cluster: Option<JoinHandle<std::io::Result<()>>>,
    dns: Option<janus_dns::DnsHandle>,
    /// The node.
    pub node: Arc<Node>,
    http: JoinHandle<std::io::Result<()>>,
    reaper: JoinHandle<()>,
    health: JoinHandle<()>,
    cp: janus_raft::CpEngine,
    /// Dropped (shut down) last, once everything on it has stopped.
    cluster_runtime: Option<Arc<ClusterRuntime>>,
}

/// Binds the HTTP listener and starts serving; everything stops when `shutdown` is cancelled.
///
/// # Errors
/// The listener cannot be bound.
pub async fn start(config: ServerConfig, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
    let span = info_span!("node", node_id = config.node.id);
    let listener = TcpListener::bind(config.http.addr)
        .await
        .with_context(|| format!("cannot bind HTTP address {}", config.http.addr))?;
    let http_addr = listener.local_addr()?;
    // Bound before Raft starts, so peers' calls wait in the backlog rather than fail.
    let cluster_listener = match cluster_secret(&config)? {
        Some(secret) => Some((
            TcpListener::bind(config.cluster.addr)
                .await
                .with_context(|| format!("cannot bind cluster address {}", config.cluster.addr))?,
            secret,
        )),
        None => None,
    };
    let App { node, ap, router, nacos, reaper, health, cp, metrics, cluster_runtime } =
        build(&config, &shutdown).instrument(span.clone()).await?;
    let (cluster_addr, cluster) = match cluster_listener {
        Some((cluster_listener, secret)) => {
            let addr = cluster_listener.local_addr()?;
            let peers = janus_peer::router(cp.clone(), ap, secret, config.cluster.max_message_bytes);
            let stop = shutdown.clone();
            // Served on the cluster runtime: its listener is registered there.
            let listener = cluster_listener.into_std()?;
            let serving = async move {
                let listener = TcpListener::from_std(listener)?;
                let limits = janus_http::ServeLimits {
                    max_connections: CLUSTER_MAX_CONNECTIONS,
                    // Peer streams are upgraded connections (janus-peer).
                    upgrades: true,
                    ..janus_http::ServeLimits::default()
                };
                janus_http::serve_with(listener, peers, limits, Arc::default(), stop.cancelled_owned()).await
            }
            .instrument(span.clone());
            let served = match cluster_runtime.as_deref().and_then(ClusterRuntime::handle) {
                Some(handle) => handle.spawn(serving),
                None => tokio::spawn(serving),
            };
            span.in_scope(|| info!(cluster_addr = %addr, "serving cluster traffic"));
            (Some(addr), Some(served))
        }
        None => (None, None),
    };
    let dns = if config.dns.enabled {
        let registry: Arc<dyn RegistryService> = node.clone();
        let handler = janus_dns::RegistryHandler::new(
            registry,
            &config.dns.domain,
            config.dns.default_ttl_secs,
            config.dns.namespace_ttl_secs.clone().into_iter().collect(),
            config.dns.cache_entries,
        )
        .context("bad DNS domain")?
        .with_max_udp_payload(config.dns.max_udp_payload_bytes());
        let timeout = Duration::from_millis(config.dns.tcp_timeout_ms);
        let dns = janus_dns::start(handler, config.dns.addr, timeout, config.dns.rrl(), shutdown.child_token())
            .instrument(span.clone())
            .await
            .with_context(|| format!("cannot bind DNS address {}", config.dns.addr))?;
        Some(dns)
    } else {
        None
    };
    let dns_addr = dns.as_ref().map(|d| d.addr);
    let (grpc_addr, grpc_stats, grpc) = if config.grpc.enabled {
        let addr = config.grpc.listen_addr(config.http.addr)?;
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!("cannot bind gRPC address {addr} (set grpc.addr, or grpc.enabled = false to serve no gRPC)")
        })?;
        let mut server = janus_grpc::GrpcServer::new(listener, nacos, config.node.id, config.grpc.config());
        if config.auth_enabled() {
            server = server.with_authorizer(Arc::new(access::TokenAuthorizer(node.cp().auth().clone())));
        }
        let (addr, stats) = (server.local_addr()?, server.stats());
        node.show_grpc(server.directory());
        let stop = shutdown.clone();
        let serving = tokio::spawn(server.serve(stop.cancelled_owned()).instrument(span.clone()));
        span.in_scope(|| info!(grpc_addr = %addr, "grpc serving"));
        (Some(addr), Some(stats), Some(serving))
    } else {
        (None, None, None)
    };
    let stop = shutdown.clone();
    let (limits, serve_stats) = (config.http_config().serve_limits(), metrics.serve.clone());
    let mut listeners: Vec<Arc<dyn memory::HeldConnections>> = vec![serve_stats.clone()];
    listeners.extend(grpc_stats.clone().map(|stats| stats as Arc<dyn memory::HeldConnections>));
    tokio::spawn(memory::release_after_bursts(listeners, shutdown.child_token()));
    let http = tokio::spawn(
        async move { janus_http::serve_with(listener, router, limits, serve_stats, stop.cancelled_owned()).await }
            .instrument(span.clone()),
    );
    if config.auth_enabled() {
        tokio::spawn(access::bootstrap_admin(node.clone(), config.bootstrap_token_file()).instrument(span.clone()));
    }
    let listeners = startup::Listeners { http: http_addr, dns: dns_addr, grpc: grpc_addr, cluster: cluster_addr };
    span.in_scope(|| startup::log_summary(&config, &node, &listeners));
    span.in_scope(|| info!(%http_addr, "janus serving"));
    Ok(RunningServer {
        http_addr,
        dns_addr,
        grpc_addr,
        grpc_stats,
        grpc,
        cluster_addr,
        cluster,
        dns,
        node,
        http,
        reaper,
        health,
        cp,
        cluster_runtime,
    })
}

impl RunningServer {
    /// Waits until the server has shut down.
    ///
    /// # Errors
    /// The HTTP server failed.
    pub async fn wait(self) -> anyhow::Result<()> {
        let served = self.http.await.context("HTTP task panicked")?;
        self.reaper.await.context("reaper task panicked")?;
        self.health.await.context("health checker panicked")?;
        if let Some(dns) = self.dns {
            dns.wait().await;
        }
        if let Some(grpc) = self.grpc {
            grpc.await.context("gRPC task panicked")?;
        }
        if let Some(cluster) = self.cluster {
            cluster.await.context("cluster task panicked")?.context("cluster server failed")?;
        }
        self.cp.shutdown().await;
        drop(self.cluster_runtime);
        served.context("HTTP server failed")
    }
}
