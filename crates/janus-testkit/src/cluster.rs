//! In-process Raft clusters: CP engines on the in-memory [`Network`], which
//! can cut any node off or slow its links, with helpers to restart, add
//! nodes and wait.

// A fixture: a failed expectation is a test failure, so panicking is right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use janus_core::model::{InstanceSpec, NamespaceSpec, ServiceSettings};
use janus_core::transport::Channel;
use janus_core::{
    ClusterName, Command, GroupName, InstanceKey, Mode, NamespaceId, RegistryConfig, RegistryStore, ServiceKey,
    ServiceName,
};
use janus_raft::{CpConfig, CpEngine};
use tempfile::TempDir;

use crate::net::Network;

pub struct Cluster {
    /// The network between the nodes.
    pub net: Arc<Network>,
    /// The running engines.
    engines: BTreeMap<u64, CpEngine>,
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
        let mut cluster = Self {
            net: Arc::default(),
            engines: BTreeMap::new(),
            stores: BTreeMap::new(),
            configs: BTreeMap::new(),
            dirs: Vec::new(),
        };
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
        let link = Arc::new(self.net.link(id));
        let engine = CpEngine::start(store.clone(), self.configs[&id].clone(), link).await.unwrap();
        self.net.attach(id, Channel::Raft, Arc::new(engine.clone()));
        self.engines.insert(id, engine);
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
        for (id, engine) in std::mem::take(&mut self.engines) {
            self.net.detach(id);
            engine.shutdown().await;
        }
        let ids: Vec<u64> = self.configs.keys().copied().collect();
        for id in ids {
            self.boot(id).await;
        }
    }

    pub fn engine(&self, id: u64) -> CpEngine {
        self.engines[&id].clone()
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
        for (id, engine) in &self.engines {
            self.net.detach(*id);
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
