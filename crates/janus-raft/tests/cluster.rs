//! Three CP engines in one process, wired by an in-memory transport that can
//! cut any node off: writes from any node reach every registry, an isolated
//! leader refuses writes quickly while the majority elects a new leader, the
//! healed node catches up (from a snapshot when the log moved on), and a
//! restart of every node brings back every acknowledged write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

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
use janus_raft::{CpConfig, CpEngine, MembershipChange, PeerTransport, RpcKind, TransportError};
use tempfile::TempDir;

/// Delivers peer messages by calling the target engine directly.
#[derive(Default)]
struct Router {
    engines: Mutex<HashMap<u64, CpEngine>>,
    isolated: Mutex<HashSet<u64>>,
    delivered: Mutex<HashMap<RpcKind, usize>>,
}

impl Router {
    fn cut(&self, from: u64, to: u64) -> bool {
        let isolated = self.isolated.lock().unwrap();
        isolated.contains(&from) || isolated.contains(&to)
    }
}

/// One node's end of the router.
struct Link {
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
            let reply = match tokio::time::timeout(timeout, engine.handle_peer_rpc(kind, &body)).await {
                Ok(Ok(reply)) => reply,
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

struct Cluster {
    router: Arc<Router>,
    stores: BTreeMap<u64, Arc<RegistryStore>>,
    configs: BTreeMap<u64, CpConfig>,
    _dirs: Vec<TempDir>,
}

const ELECTION: (Duration, Duration) = (Duration::from_millis(300), Duration::from_millis(600));

impl Cluster {
    async fn start(size: u64) -> Self {
        Self::start_with(size, 1000, 100).await
    }

    async fn start_with(size: u64, snapshot_after_logs: u64, logs_kept_after_snapshot: u64) -> Self {
        let members: BTreeMap<u64, String> = (1..=size).map(|id| (id, format!("node-{id}"))).collect();
        let mut cluster =
            Self { router: Arc::default(), stores: BTreeMap::new(), configs: BTreeMap::new(), _dirs: Vec::new() };
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
            cluster._dirs.push(dir);
            cluster.boot(id).await;
        }
        cluster
    }

    /// Starts node `id` on its data directory with an empty registry, as a new process would.
    async fn boot(&mut self, id: u64) {
        let store = Arc::new(RegistryStore::new(RegistryConfig::default(), 16));
        let link = Arc::new(Link { router: self.router.clone(), from: id });
        let engine = CpEngine::start(store.clone(), self.configs[&id].clone(), link).await.unwrap();
        self.router.engines.lock().unwrap().insert(id, engine);
        self.stores.insert(id, store);
    }

    /// Starts an empty node that waits to be added to the group.
    async fn add_joiner(&mut self, id: u64) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = self.configs.values().next().unwrap().clone();
        config.node_id = id;
        config.dir = dir.path().join("raft");
        config.members = BTreeMap::new();
        config.join = true;
        self.configs.insert(id, config);
        self._dirs.push(dir);
        self.boot(id).await;
    }

    /// The voters as node `id` sees them.
    fn voters(&self, id: u64) -> Vec<u64> {
        self.engine(id).members().voters.into_keys().collect()
    }

    /// Stops every node, then starts them all again on their data.
    async fn restart_all(&mut self) {
        let engines: Vec<CpEngine> = self.router.engines.lock().unwrap().drain().map(|(_, e)| e).collect();
        for engine in engines {
            engine.shutdown().await;
        }
        let ids: Vec<u64> = self.configs.keys().copied().collect();
        for id in ids {
            self.boot(id).await;
        }
    }

    fn engine(&self, id: u64) -> CpEngine {
        self.router.engines.lock().unwrap()[&id].clone()
    }

    /// The leader every node in `among` agrees on.
    async fn leader(&self, among: &[u64]) -> u64 {
        eventually("the nodes agree on a leader", || async {
            let leaders: HashSet<Option<u64>> = among.iter().map(|id| self.engine(*id).leader()).collect();
            match leaders.into_iter().collect::<Vec<_>>()[..] {
                [Some(leader)] if among.contains(&leader) => Some(leader),
                _ => None,
            }
        })
        .await
    }

    async fn shutdown(self) {
        let engines: Vec<CpEngine> = self.router.engines.lock().unwrap().values().cloned().collect();
        for engine in engines {
            engine.shutdown().await;
        }
    }
}

/// Polls `probe` until it yields a value; fails the test after ten seconds.
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut probe: impl FnMut() -> F) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pay() -> NamespaceId {
    NamespaceId::new("pay").unwrap()
}

fn ledger() -> ServiceKey {
    ServiceKey::new(pay(), GroupName::default_group(), ServiceName::new("ledger").unwrap())
}

fn register(port: u16) -> Command {
    let mut spec =
        InstanceSpec::new(InstanceKey::new(ClusterName::default_cluster(), "10.0.0.1".parse().unwrap(), port));
    spec.ephemeral = Some(false);
    Command::RegisterInstance { key: ledger(), spec }
}

fn instances_on(store: &RegistryStore) -> usize {
    store.read(|registry| registry.snapshot(&ledger()).map_or(0, |snapshot| snapshot.instances.len()))
}

async fn create_ledger(engine: &CpEngine) {
    let namespace = NamespaceSpec::new(pay(), None, None, Mode::Cp).unwrap();
    engine.write(Command::CreateNamespace(namespace)).await.unwrap().unwrap();
    let settings = ServiceSettings::new(None, Default::default()).unwrap();
    engine.write(Command::CreateService { key: ledger(), settings }).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_any_node_reach_every_registry() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader(&[1, 2, 3]).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();

    create_ledger(&cluster.engine(leader)).await;
    // A follower forwards the write to the leader and returns its outcome.
    cluster.engine(follower).write(register(1)).await.unwrap().unwrap();
    cluster.engine(leader).write(register(2)).await.unwrap().unwrap();
    // A refused command is an outcome, not a transport failure, also when forwarded.
    let duplicate_namespace = Command::CreateNamespace(NamespaceSpec::new(pay(), None, None, Mode::Ap).unwrap());
    assert!(cluster.engine(follower).write(duplicate_namespace).await.unwrap().is_err());

    // A follower's read fence asks the leader for its read index and waits
    // to apply it: right after it, without polling, the follower has both writes.
    let acknowledged = cluster.engine(leader).applied_index();
    let index = cluster.engine(follower).linearize().await.unwrap();
    assert!(index >= acknowledged, "fenced at {index}, before the acknowledged {acknowledged}");
    assert_eq!(instances_on(&cluster.stores[&follower]), 2);

    for (id, store) in &cluster.stores {
        eventually(&format!("node {id} holds both instances"), || async { (instances_on(store) == 2).then_some(()) })
            .await;
        assert_eq!(store.read(|r| r.namespace(&pay()).unwrap().spec.mode), Mode::Cp);
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_refuses_writes_and_the_majority_moves_on() {
    let cluster = Cluster::start(3).await;
    let old_leader = cluster.leader(&[1, 2, 3]).await;
    create_ledger(&cluster.engine(old_leader)).await;
    cluster.engine(old_leader).write(register(1)).await.unwrap().unwrap();

    cluster.router.isolated.lock().unwrap().insert(old_leader);
    let majority: Vec<u64> = (1..=3).filter(|id| *id != old_leader).collect();

    // The minority side fails fast: within election timeout + 1 s (plus scheduling slack).
    let started = Instant::now();
    let refused = cluster.engine(old_leader).write(register(2)).await;
    let took = started.elapsed();
    let error = refused.expect_err("an isolated leader cannot commit");
    assert!(error.to_string().contains("quorum"), "{error}");
    assert!(took <= ELECTION.1 + Duration::from_millis(1500), "took {took:?}");

    // The majority elects a new leader and commits through either member.
    let new_leader = cluster.leader(&majority).await;
    assert_ne!(new_leader, old_leader);
    for (port, id) in (3..).zip(&majority) {
        cluster.engine(*id).write(register(port)).await.unwrap().unwrap();
    }

    // Healed, the old leader follows and learns every committed write; the one
    // it could not commit is not among them.
    cluster.router.isolated.lock().unwrap().clear();
    let old_store = cluster.stores[&old_leader].clone();
    eventually("the old leader catches up", || async { (instances_on(&old_store) == 3).then_some(()) }).await;
    let ports: HashSet<u16> =
        old_store.read(|r| r.snapshot(&ledger()).unwrap().instances.iter().map(|i| i.instance.key.port).collect());
    assert_eq!(ports, HashSet::from([1, 3, 4]));
    assert_eq!(cluster.leader(&[1, 2, 3]).await, new_leader);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_peer_message_is_refused_not_applied() {
    let cluster = Cluster::start(1).await;
    let engine = cluster.engine(1);
    for kind in RpcKind::ALL {
        assert_eq!(RpcKind::from_name(kind.as_str()), Some(kind));
        let error = engine.handle_peer_rpc(kind, &[0xff; 7]).await.expect_err("garbage is refused");
        assert!(error.to_string().contains(&format!("malformed {kind} message")), "{error}");
    }
    assert_eq!(RpcKind::from_name("nonsense"), None);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_compacted_log_is_sent_the_snapshot() {
    // A snapshot every 20 entries, 5 entries kept after it.
    let cluster = Cluster::start_with(3, 20, 5).await;
    let leader = cluster.leader(&[1, 2, 3]).await;
    let lagging = (1..=3).find(|id| *id != leader).unwrap();
    create_ledger(&cluster.engine(leader)).await;

    cluster.router.isolated.lock().unwrap().insert(lagging);
    // The log is compacted in batches of 256 entries: write past one.
    for port in 1..=300 {
        cluster.engine(leader).write(register(port)).await.unwrap().unwrap();
    }
    cluster.router.isolated.lock().unwrap().clear();

    let store = cluster.stores[&lagging].clone();
    eventually("the lagging follower catches up", || async { (instances_on(&store) == 300).then_some(()) }).await;
    let snapshots = cluster.router.delivered.lock().unwrap().get(&RpcKind::InstallSnapshot).copied().unwrap_or(0);
    assert!(snapshots >= 1, "the log it missed was compacted, so it must have been sent the snapshot");
    assert_eq!(store.read(|r| r.export_cp()), cluster.stores[&leader].read(|r| r.export_cp()));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_node_brings_back_every_acknowledged_write() {
    // Snapshots every 25 entries, so the restart rebuilds from a snapshot plus the log after it.
    let mut cluster = Cluster::start_with(3, 25, 5).await;
    let leader = cluster.leader(&[1, 2, 3]).await;
    create_ledger(&cluster.engine(leader)).await;
    for port in 1..=40 {
        // Through every node in turn: followers forward.
        let via = u64::from(port % 3) + 1;
        cluster.engine(via).write(register(port)).await.unwrap().unwrap();
    }
    let before = cluster.stores[&leader].read(|r| r.export_cp());

    cluster.restart_all().await;
    cluster.leader(&[1, 2, 3]).await;
    for (id, store) in &cluster.stores {
        eventually(&format!("node {id} has all 40 instances again"), || async {
            (instances_on(store) == 40).then_some(())
        })
        .await;
        assert_eq!(store.read(|r| r.export_cp()), before, "node {id}");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_join_get_promoted_and_leave_at_run_time() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader(&[1, 2, 3]).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    create_ledger(&cluster.engine(leader)).await;
    cluster.engine(leader).write(register(1)).await.unwrap().unwrap();

    // A new, empty node joins as a learner through a follower (forwarded to
    // the leader); the call returns once it caught up.
    cluster.add_joiner(4).await;
    let add = MembershipChange::AddLearner { id: 4, addr: "node-4".to_owned() };
    cluster.engine(follower).change_members(add).await.unwrap();
    assert_eq!(cluster.engine(leader).members().learners.keys().copied().collect::<Vec<_>>(), [4]);
    assert_eq!(instances_on(&cluster.stores[&4]), 1, "a learner is caught up when it is added");

    cluster.engine(follower).change_members(MembershipChange::Promote { id: 4 }).await.unwrap();
    assert_eq!(cluster.voters(leader), [1, 2, 3, 4]);

    // The old leader leaves; the others go on without it.
    cluster.engine(follower).change_members(MembershipChange::Remove { id: leader }).await.unwrap();
    let rest: Vec<u64> = (1..=4).filter(|id| *id != leader).collect();
    for id in &rest {
        let id = *id;
        eventually(&format!("node {id} sees the old leader gone"), || async {
            (cluster.voters(id) == rest).then_some(())
        })
        .await;
    }
    let new_leader = cluster.leader(&rest).await;
    cluster.engine(4).write(register(2)).await.unwrap().unwrap();
    for id in &rest {
        let store = cluster.stores[id].clone();
        eventually("the write after the change replicates", || async { (instances_on(&store) == 2).then_some(()) })
            .await;
    }

    // Nonsense is refused with a reason, not hung on.
    let error = cluster.engine(new_leader).change_members(MembershipChange::Promote { id: 9 }).await.unwrap_err();
    assert!(error.to_string().contains("refused"), "{error}");
    cluster.shutdown().await;
}
