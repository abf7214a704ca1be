//! In-process AP clusters: AP engines on the in-memory [`Network`], which
//! can partition the nodes into groups, blackhole a node (its messages
//! vanish, so callers wait out their timeouts), slow a node's links, and
//! count messages; nodes can crash and restart empty, as a process would.
//! Made for paused tokio time.

// A fixture: a failed expectation is a test failure, so panicking is right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use janus_ap::{ApCluster, ApConfig, ApEngine, DistroConfig};
use janus_core::model::InstanceSpec;
use janus_core::replica::ReplicationConfig;
use janus_core::transport::Channel;
use janus_core::{
    ClusterName, GroupName, InstanceKey, NamespaceId, NodeId, RegistryConfig, RegistryError, RegistryStore, ServiceKey,
    ServiceName,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::net::Network;

/// A running node.
pub struct ApNode {
    /// Its registry.
    pub store: Arc<RegistryStore>,
    /// Its AP engine.
    pub engine: ApEngine,
    shutdown: CancellationToken,
    tasks: JoinHandle<()>,
}

/// An in-process AP cluster in the `public` namespace.
pub struct ApTestCluster {
    /// The network.
    pub net: Arc<Network>,
    nodes: BTreeMap<NodeId, ApNode>,
    members: BTreeMap<NodeId, String>,
    distro: DistroConfig,
    registry: RegistryConfig,
}

/// The service every helper writes to.
#[must_use]
pub fn service(name: &str) -> ServiceKey {
    ServiceKey::new(NamespaceId::public(), GroupName::default_group(), ServiceName::new(name).unwrap())
}

/// Instance `n` (a distinct address and port per `n`).
#[must_use]
pub fn instance(n: u32) -> InstanceKey {
    let [_, a, b, c] = n.to_be_bytes();
    InstanceKey::new(ClusterName::default_cluster(), format!("10.{a}.{b}.{c}").parse().unwrap(), 8080)
}

impl ApTestCluster {
    /// Starts nodes `1..=n` and waits until every one is ready and sees the others.
    pub async fn start(n: u64, distro: DistroConfig, registry: RegistryConfig) -> Self {
        let members = (1..=n).map(|id| (id, format!("node-{id}"))).collect();
        let mut cluster = Self { net: Arc::default(), nodes: BTreeMap::new(), members, distro, registry };
        for id in 1..=n {
            cluster.start_node(id);
        }
        cluster.wait_until("every node is ready and in one ring", |c| c.converged_ring()).await;
        cluster
    }

    /// Starts (or restarts, empty) node `id`.
    pub fn start_node(&mut self, id: NodeId) {
        let registry = RegistryConfig {
            replication: Some(ReplicationConfig { node: id, tombstone_ttl_ms: self.distro.tombstone_ttl_ms }),
            ..self.registry
        };
        let store = Arc::new(RegistryStore::new(registry, 1024));
        let shutdown = CancellationToken::new();
        let cluster = ApCluster { node: id, members: self.members.clone(), distro: self.distro, wait_for_group: false };
        let link = Arc::new(self.net.link(id));
        let (engine, tasks) =
            ApEngine::spawn_clustered(store.clone(), ApConfig::default(), &cluster, link, shutdown.clone());
        self.net.attach(id, Channel::Distro, Arc::new(engine.clone()));
        self.nodes.insert(id, ApNode { store, engine, shutdown, tasks });
    }

    /// Stops node `id` as a crash would: its memory is gone and it answers nothing.
    pub async fn crash(&mut self, id: NodeId) {
        self.net.detach(id);
        if let Some(node) = self.nodes.remove(&id) {
            node.shutdown.cancel();
            let _ = node.tasks.await;
        }
    }

    /// A running node.
    #[must_use]
    pub fn node(&self, id: NodeId) -> &ApNode {
        &self.nodes[&id]
    }

    /// The running nodes' ids.
    #[must_use]
    pub fn running(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Whether every running node is ready and all agree on a ring of all running nodes.
    #[must_use]
    pub fn converged_ring(&self) -> bool {
        let running = self.running();
        self.nodes.values().all(|n| n.engine.status().is_some_and(|s| s.ready && s.ring == running))
    }

    /// Registers instance `n` of `svc` through node `via`.
    pub async fn register(&self, via: NodeId, svc: &str, n: u32) -> Result<u64, RegistryError> {
        self.node(via).engine.register(&service(svc), InstanceSpec::new(instance(n))).await
    }

    /// Beats instance `n` of `svc` through node `via`.
    pub async fn beat(&self, via: NodeId, svc: &str, n: u32) -> Result<(), RegistryError> {
        self.node(via).engine.heartbeat(&service(svc), &instance(n)).await.map(|_| ())
    }

    /// Deregisters instance `n` of `svc` through node `via`.
    pub async fn deregister(&self, via: NodeId, svc: &str, n: u32) -> Result<u64, RegistryError> {
        self.node(via).engine.deregister(&service(svc), &instance(n)).await
    }

    /// What node `id` lists for `svc`: (instance, healthy), sorted.
    #[must_use]
    pub fn list(&self, id: NodeId, svc: &str) -> Vec<(InstanceKey, bool)> {
        let snapshot = self.node(id).store.read(|r| r.snapshot(&service(svc))).unwrap();
        let mut listed: Vec<(InstanceKey, bool)> =
            snapshot.instances.iter().map(|i| (i.instance.key.clone(), i.instance.healthy)).collect();
        listed.sort();
        listed
    }

    /// Whether every running node lists the same for `svc`.
    #[must_use]
    pub fn agree(&self, svc: &str) -> bool {
        let lists: Vec<_> = self.running().into_iter().map(|id| self.list(id, svc)).collect();
        lists.windows(2).all(|w| w[0] == w[1])
    }

    /// Leases node `id` runs.
    #[must_use]
    pub fn leases(&self, id: NodeId) -> u64 {
        let store = &self.node(id).store;
        store.read(|r| r.stats(store.now()).leases)
    }

    /// Polls `done` every 10 ms (of tokio time) for up to 120 s.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        for _ in 0..12_000 {
            if done(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting until {what}");
    }

    /// Lets `ms` of tokio time pass.
    pub async fn pass(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}
