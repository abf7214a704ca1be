//! In-process Raft clusters: CP engines wired by an in-memory transport
//! that can cut any node off or slow its links, with helpers to restart,
//! add nodes and wait.

// A fixture: a failed expectation is a test failure, so panicking is right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use janus_core::model::{InstanceSpec, NamespaceSpec, ServiceSettings};
use janus_core::{
    ClusterName, Command, GroupName, InstanceKey, Mode, NamespaceId, RegistryConfig, RegistryStore, ServiceKey,
    ServiceName,
};
use janus_raft::{CpConfig, CpEngine, PeerTransport, RpcKind, TransportError};
use tempfile::TempDir;

/// Delivers peer messages by calling the target engine directly.
#[derive(Default)]
pub struct Router {
    /// The running engines by node id.
    pub engines: Mutex<HashMap<u64, CpEngine>>,
    /// Nodes cut off from every other node.
    pub isolated: Mutex<HashSet<u64>>,
    /// Messages delivered, by kind.
    pub delivered: Mutex<HashMap<RpcKind, usize>>,
    /// Extra delay, each way, of every message to or from a node (a slow link).
    pub slow: Mutex<HashMap<u64, Duration>>,
}

impl Router {
    fn delay(&self, from: u64, to: u64) -> Duration {
        let slow = self.slow.lock().unwrap();
        slow.get(&from).copied().unwrap_or_default() + slow.get(&to).copied().unwrap_or_default()
    }

    fn cut(&self, from: u64, to: u64) -> bool {
        let isolated = self.isolated.lock().unwrap();
        isolated.contains(&from) || isolated.contains(&to)
    }
}

/// One node's end of the router.
pub struct Link {
    router: Arc<Router>,
    from: u64,
}

impl PeerTransport for Link {
    fn call(
        &self,
        target: u64,
        addr: String,
        kind: RpcKind,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let router = self.router.clone();
        let from = self.from;
        Box::pin(async move {
            let unreachable =
                |reason: &str| TransportError::Unreachable { target, addr: addr.clone(), reason: reason.into() };
            let not_sent = |reason: &str| TransportError::NotSent { target, addr: addr.clone(), reason: reason.into() };
            if router.cut(from, target) {
                return Err(not_sent("partitioned"));
            }
            let engine = router.engines.lock().unwrap().get(&target).cloned().ok_or_else(|| not_sent("down"))?;
            let delay = router.delay(from, target);
            let exchange = async {
                tokio::time::sleep(delay).await;
                let reply = engine.handle_peer_rpc(kind, &body).await;
                tokio::time::sleep(delay).await;
                reply
            };
            let reply = match tokio::time::timeout(timeout, exchange).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(janus_raft::PeerRpcError::NotLeader(reason))) => {
                    return Err(TransportError::NotLeader { target, reason });
                }
                Ok(Err(error)) => return Err(TransportError::Refused { target, reason: error.to_string() }),
                Err(_) => return Err(unreachable("timed out")),
            };
            // A cut that happened while the call ran loses the reply too.
            if router.cut(from, target) {
                return Err(unreachable("partitioned"));
            }
            *router.delivered.lock().unwrap().entry(kind).or_default() += 1;
            Ok(reply)
        })
    }
}

pub struct Cluster {
    /// The transport between the nodes.
    pub router: Arc<Router>,
    /// Each node's registry.
    pub stores: BTreeMap<u64, Arc<RegistryStore>>,
    configs: BTreeMap<u64, CpConfig>,
    dirs: Vec<TempDir>,
}

/// The election timeout of fixture nodes.
pub const ELECTION: (Duration, Duration) = (Duration::from_millis(300), Duration::from_millis(600));

impl Cluster {
    pub async fn start(size: u64) -> Self {
        Self::start_with(size, 1000, 100).await
    }

    pub async fn start_with(size: u64, snapshot_after_logs: u64, logs_kept_after_snapshot: u64) -> Self {
        let members: BTreeMap<u64, String> = (1..=size).map(|id| (id, format!("node-{id}"))).collect();
        let mut cluster =
            Self { router: Arc::default(), stores: BTreeMap::new(), configs: BTreeMap::new(), dirs: Vec::new() };
        for id in 1..=size {
            let dir = tempfile::tempdir().unwrap();
            let config = CpConfig {
                node_id: id,
                dir: dir.path().join("raft"),
                heartbeat: Duration::from_millis(50),
                election_timeout: ELECTION,
                snapshot_after_logs,
                logs_kept_after_snapshot,
                members: members.clone(),
                join: false,
            };
            cluster.configs.insert(id, config);
            cluster.dirs.push(dir);
            cluster.boot(id).await;
        }
        cluster
    }

    /// Starts node `id` on its data directory with an empty registry, as a new process would.
    pub async fn boot(&mut self, id: u64) {
        let store = Arc::new(RegistryStore::new(RegistryConfig::default(), 16));
        let link = Arc::new(Link { router: self.router.clone(), from: id });
        let engine = CpEngine::start(store.clone(), self.configs[&id].clone(), link).await.unwrap();
        self.router.engines.lock().unwrap().insert(id, engine);
        self.stores.insert(id, store);
    }

    /// Starts an empty node that waits to be added to the group.
    pub async fn add_joiner(&mut self, id: u64) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = self.configs.values().next().unwrap().clone();
        config.node_id = id;
        config.dir = dir.path().join("raft");
        config.members = BTreeMap::new();
        config.join = true;
        self.configs.insert(id, config);
        self.dirs.push(dir);
        self.boot(id).await;
    }

    /// The voters as node `id` sees them.
    pub fn voters(&self, id: u64) -> Vec<u64> {
        self.engine(id).members().voters.into_keys().collect()
    }

    /// Stops every node, then starts them all again on their data.
    pub async fn restart_all(&mut self) {
        let engines: Vec<CpEngine> = self.router.engines.lock().unwrap().drain().map(|(_, e)| e).collect();
        for engine in engines {
            engine.shutdown().await;
        }
        let ids: Vec<u64> = self.configs.keys().copied().collect();
        for id in ids {
            self.boot(id).await;
        }
    }

    pub fn engine(&self, id: u64) -> CpEngine {
        self.router.engines.lock().unwrap()[&id].clone()
    }

    /// The leader every node in `among` agrees on.
    pub async fn leader(&self, among: &[u64]) -> u64 {
        eventually("the nodes agree on a leader", || async {
            let leaders: HashSet<Option<u64>> = among.iter().map(|id| self.engine(*id).leader()).collect();
            match leaders.into_iter().collect::<Vec<_>>()[..] {
                [Some(leader)] if among.contains(&leader) => Some(leader),
                _ => None,
            }
        })
        .await
    }

    pub async fn shutdown(self) {
        let engines: Vec<CpEngine> = self.router.engines.lock().unwrap().values().cloned().collect();
        for engine in engines {
            engine.shutdown().await;
        }
    }
}

/// Polls `probe` until it yields a value; fails the test after ten seconds.
pub async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut probe: impl FnMut() -> F) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn pay() -> NamespaceId {
    NamespaceId::new("pay").unwrap()
}

pub fn ledger() -> ServiceKey {
    ServiceKey::new(pay(), GroupName::default_group(), ServiceName::new("ledger").unwrap())
}

pub fn register(port: u16) -> Command {
    let mut spec =
        InstanceSpec::new(InstanceKey::new(ClusterName::default_cluster(), "10.0.0.1".parse().unwrap(), port));
    spec.ephemeral = Some(false);
    Command::RegisterInstance { key: ledger(), spec }
}

pub fn instances_on(store: &RegistryStore) -> usize {
    store.read(|registry| registry.snapshot(&ledger()).map_or(0, |snapshot| snapshot.instances.len()))
}

pub async fn create_ledger(engine: &CpEngine) {
    let namespace = NamespaceSpec::new(pay(), None, None, Mode::Cp).unwrap();
    engine.write(Command::CreateNamespace(namespace)).await.unwrap().unwrap();
    let settings = ServiceSettings::new(None, Default::default()).unwrap();
    engine.write(Command::CreateService { key: ledger(), settings }).await.unwrap().unwrap();
}
