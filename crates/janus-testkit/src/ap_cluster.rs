//! In-process AP clusters: AP engines wired by an in-memory transport that
//! can partition the nodes into groups, blackhole a node (its messages
//! vanish, so callers wait out their timeouts), slow a node's links, and
//! count messages; nodes can crash and restart empty, as a process would.
//! Made for paused tokio time.

// A fixture: a failed expectation is a test failure, so panicking is right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use janus_ap::{ApCluster, ApConfig, ApEngine, CallError, DistroConfig, DistroTransport, MessageKind};
use janus_core::model::InstanceSpec;
use janus_core::replica::ReplicationConfig;
use janus_core::{
    ClusterName, GroupName, InstanceKey, NamespaceId, NodeId, RegistryConfig, RegistryError, RegistryStore, ServiceKey,
    ServiceName,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The network between the nodes.
#[derive(Default)]
pub struct ApNet {
    engines: Mutex<HashMap<NodeId, ApEngine>>,
    /// Partition: node → group; nodes in different groups cannot talk.
    groups: Mutex<Option<HashMap<NodeId, usize>>>,
    /// Nodes whose messages (both ways) vanish.
    blackholed: Mutex<HashSet<NodeId>>,
    /// Extra delay each way for messages to or from a node.
    slow: Mutex<HashMap<NodeId, Duration>>,
    /// Messages delivered, by (sender, receiver, kind).
    delivered: Mutex<HashMap<(NodeId, NodeId, MessageKind), usize>>,
}

impl ApNet {
    fn split(&self, from: NodeId, to: NodeId) -> bool {
        self.groups.lock().unwrap().as_ref().is_some_and(|groups| groups.get(&from) != groups.get(&to))
    }

    fn blackholed(&self, from: NodeId, to: NodeId) -> bool {
        let blackholed = self.blackholed.lock().unwrap();
        blackholed.contains(&from) || blackholed.contains(&to)
    }

    fn delay(&self, from: NodeId, to: NodeId) -> Duration {
        let slow = self.slow.lock().unwrap();
        slow.get(&from).copied().unwrap_or_default() + slow.get(&to).copied().unwrap_or_default()
    }

    /// Messages of `kind` delivered from `from` to `to` so far.
    #[must_use]
    pub fn delivered(&self, from: NodeId, to: NodeId, kind: MessageKind) -> usize {
        self.delivered.lock().unwrap().get(&(from, to, kind)).copied().unwrap_or(0)
    }
}

/// One node's end of the network.
struct Link {
    net: Arc<ApNet>,
    from: NodeId,
}

impl DistroTransport for Link {
    fn call(
        &self,
        target: NodeId,
        _addr: String,
        kind: MessageKind,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, CallError>> {
        let net = self.net.clone();
        let from = self.from;
        Box::pin(async move {
            let lost = || CallError::NoReply { target, reason: "no reply in time".to_owned() };
            if net.split(from, target) {
                return Err(CallError::NotSent { target, reason: "partitioned".to_owned() });
            }
            if net.blackholed(from, target) {
                tokio::time::sleep(timeout).await;
                return Err(lost());
            }
            let Some(engine) = net.engines.lock().unwrap().get(&target).cloned() else {
                return Err(CallError::NotSent { target, reason: "connection refused".to_owned() });
            };
            let exchange = async {
                tokio::time::sleep(net.delay(from, target)).await;
                let reply = engine.handle_peer_message(kind, &body).await;
                tokio::time::sleep(net.delay(from, target)).await;
                reply
            };
            let reply = match tokio::time::timeout(timeout, exchange).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(error)) => return Err(CallError::Refused { target, reason: error.to_string() }),
                Err(_) => return Err(lost()),
            };
            if net.split(from, target) || net.blackholed(from, target) {
                return Err(lost());
            }
            *net.delivered.lock().unwrap().entry((from, target, kind)).or_default() += 1;
            Ok(reply)
        })
    }
}

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
    pub net: Arc<ApNet>,
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
        let link = Arc::new(Link { net: self.net.clone(), from: id });
        let (engine, tasks) =
            ApEngine::spawn_clustered(store.clone(), ApConfig::default(), &cluster, link, shutdown.clone());
        self.net.engines.lock().unwrap().insert(id, engine.clone());
        self.nodes.insert(id, ApNode { store, engine, shutdown, tasks });
    }

    /// Stops node `id` as a crash would: its memory is gone and it answers nothing.
    pub async fn crash(&mut self, id: NodeId) {
        self.net.engines.lock().unwrap().remove(&id);
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

    /// Splits the nodes into groups that cannot talk to each other.
    pub fn partition(&self, groups: &[&[NodeId]]) {
        let map = groups.iter().enumerate().flat_map(|(g, ids)| ids.iter().map(move |id| (*id, g))).collect();
        *self.net.groups.lock().unwrap() = Some(map);
    }

    /// Ends any partition.
    pub fn heal(&self) {
        *self.net.groups.lock().unwrap() = None;
    }

    /// Makes every message to or from `id` vanish (or not).
    pub fn blackhole(&self, id: NodeId, on: bool) {
        let mut blackholed = self.net.blackholed.lock().unwrap();
        if on {
            blackholed.insert(id);
        } else {
            blackholed.remove(&id);
        }
    }

    /// Adds `delay` each way to every message to or from `id`.
    pub fn slow(&self, id: NodeId, delay: Duration) {
        self.net.slow.lock().unwrap().insert(id, delay);
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
