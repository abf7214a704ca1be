//! What survives a restart: the log (entries, vote, committed id) and the
//! snapshot, which rebuilds the registry's replicated part with every index.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use janus_core::model::{InstanceSpec, NamespaceSpec, ServiceSettings};
use janus_core::{
    ClusterName, Command, GroupName, InstanceKey, Mode, NamespaceId, RegistryConfig, RegistryStore, ServiceKey,
    ServiceName,
};
use janus_raft::{LogStore, RaftRequest, StateMachine, TypeConfig};
use openraft::entry::RaftEntry as _;
use openraft::storage::{
    IOFlushed, RaftLogReader as _, RaftLogStorage as _, RaftSnapshotBuilder as _, RaftStateMachine as _,
};
use openraft::type_config::alias::{CommittedLeaderIdOf, EntryOf, LogIdOf, VoteOf};

fn ledger() -> ServiceKey {
    ServiceKey::new(NamespaceId::new("pay").unwrap(), GroupName::default_group(), ServiceName::new("ledger").unwrap())
}

fn log_id(index: u64) -> LogIdOf<TypeConfig> {
    LogIdOf::<TypeConfig>::new(CommittedLeaderIdOf::<TypeConfig> { term: 1, node_id: 1 }, index)
}

fn request(n: u16) -> RaftRequest {
    let mut spec = InstanceSpec::new(InstanceKey::new(ClusterName::default_cluster(), "10.0.0.1".parse().unwrap(), n));
    spec.ephemeral = Some(false);
    RaftRequest { at: 0, command: Command::RegisterInstance { key: ledger(), spec } }
}

#[tokio::test]
async fn the_log_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.log");
    let entries: Vec<EntryOf<TypeConfig>> =
        (1..=3).map(|i| EntryOf::<TypeConfig>::new_normal(log_id(i), request(i as u16))).collect();
    {
        let mut log = LogStore::open(&path).unwrap();
        log.append(entries.clone(), IOFlushed::noop()).await.unwrap();
        log.save_vote(&VoteOf::<TypeConfig>::new(1, 1)).await.unwrap();
        log.save_committed(Some(log_id(2))).await.unwrap();
        let closed = log.closed();
        drop(log);
        closed.await;
    }
    let mut log = LogStore::open(&path).unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(3)));
    assert_eq!(log.try_get_log_entries(1..=3).await.unwrap(), entries);
    assert_eq!(log.read_vote().await.unwrap(), Some(VoteOf::<TypeConfig>::new(1, 1)));
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(2)));
    log.purge(log_id(1)).await.unwrap();
    log.truncate_after(Some(log_id(2))).await.unwrap();
    let closed = log.closed();
    drop(log);
    closed.await;
    let mut log = LogStore::open(&path).unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(log_id(1)), Some(log_id(2))));
    assert_eq!(log.try_get_log_entries(0..10).await.unwrap(), entries[1..2].to_vec());
}

#[tokio::test]
async fn a_snapshot_rebuilds_the_registry_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = dir.path().join("snapshots");
    let store = Arc::new(RegistryStore::new(RegistryConfig::default(), 16));
    let mut machine = StateMachine::open(store.clone(), &snapshots).unwrap();
    store.write(|registry, now| {
        let namespace = NamespaceSpec::new(NamespaceId::new("pay").unwrap(), None, None, Mode::Cp).unwrap();
        registry.apply(Command::CreateNamespace(namespace), now).unwrap();
        let settings = ServiceSettings::new(Some(0.5), Default::default()).unwrap();
        registry.apply(Command::CreateService { key: ledger(), settings }, now).unwrap();
        registry.apply(request(1).command, now).unwrap();
        registry.apply(request(2).command, now).unwrap();
        let pay = NamespaceId::new("pay").unwrap();
        registry.apply(Command::SetNamespaceDns { id: pay, answered: false }, now).unwrap();
    });
    let snapshot = machine.build_snapshot().await.unwrap();
    assert!(!snapshot.snapshot.get_ref().is_empty());
    assert!(snapshots.join("snapshot.bin").exists(), "written to disk");
    assert!(!snapshots.join("snapshot.bin.tmp").exists(), "atomically");

    // A new process: an empty registry, the same directory.
    let fresh = Arc::new(RegistryStore::new(RegistryConfig::default(), 16));
    let mut restarted = StateMachine::open(fresh.clone(), &snapshots).unwrap();
    let restored = fresh.read(|r| r.snapshot(&ledger()).unwrap());
    assert_eq!(restored.instances.len(), 2, "persistent instances come back");
    assert_eq!(restored.mode, Mode::Cp);
    assert_eq!(fresh.read(|r| r.service(&ledger()).unwrap().settings.protect_threshold), 0.5);
    assert_eq!(fresh.read(|r| r.export_cp()), store.read(|r| r.export_cp()));
    let pay = NamespaceId::new("pay").unwrap();
    assert!(fresh.read(|r| r.closed_to_dns(&pay)), "the DNS access rule comes back");
    assert!(!fresh.read(|r| r.closed_to_dns(&NamespaceId::public())));
    assert_eq!(restarted.get_current_snapshot().await.unwrap().unwrap().meta, snapshot.meta);
}

fn auth_entry(index: u64, command: janus_auth::AuthCommand) -> EntryOf<TypeConfig> {
    EntryOf::<TypeConfig>::new_normal(log_id(index), RaftRequest { at: 0, command: Command::Auth(command) })
}

/// Auth commands from the log change the auth store, not the registry, and
/// the snapshot carries the auth state across a restart.
#[tokio::test]
async fn the_auth_state_is_applied_from_the_log_and_comes_back_from_a_snapshot() {
    use janus_auth::{AuthCommand, IssuedToken, Role, Scope, TokenKind, UserName};
    let dir = tempfile::tempdir().unwrap();
    let snapshots = dir.path().join("snapshots");
    let store = Arc::new(RegistryStore::new(RegistryConfig::default(), 16));
    let mut machine = StateMachine::open(store.clone(), &snapshots).unwrap();
    let admin = UserName::parse("admin").unwrap();
    let token = IssuedToken::mint([9; 40]);
    let entries = vec![
        auth_entry(1, AuthCommand::CreateUser { name: admin.clone(), password: None, at_unix_ms: 1 }),
        auth_entry(2, AuthCommand::Grant { user: admin.clone(), scope: Scope::Global, role: Role::Admin }),
        auth_entry(
            3,
            AuthCommand::IssueToken {
                id: token.id.clone(),
                hash: token.hash.clone(),
                user: admin.clone(),
                kind: TokenKind::Bootstrap,
                at_unix_ms: 2,
                expires_unix_ms: None,
            },
        ),
    ];
    let responders = entries.into_iter().map(|entry| Ok((entry, None)));
    machine.apply(futures_util::stream::iter(responders)).await.unwrap();
    assert!(machine.auth().read(|s| s.has_global_admin()));
    let untouched = RegistryStore::new(RegistryConfig::default(), 16).read(|r| r.export_cp());
    assert_eq!(store.read(|r| r.export_cp()), untouched, "the registry is untouched");
    machine.build_snapshot().await.unwrap();

    let fresh = Arc::new(RegistryStore::new(RegistryConfig::default(), 16));
    let restarted = StateMachine::open(fresh, &snapshots).unwrap();
    let principal = restarted.auth().read(|s| s.authenticate(token.text(), 5)).unwrap();
    assert_eq!(principal.user, admin);
    assert_eq!(restarted.auth().export(), machine.auth().export());
}

/// A snapshot written before the auth state existed (`JANUSSN1`) is still
/// read: the registry comes back and the auth state starts empty.
#[tokio::test]
async fn a_snapshot_from_before_the_auth_state_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = dir.path().join("snapshots");
    std::fs::create_dir_all(&snapshots).unwrap();
    let mut state = janus_core::CpState::default();
    state.namespaces.push(NamespaceSpec::new(NamespaceId::new("pay").unwrap(), None, None, Mode::Cp).unwrap());
    let meta = openraft::type_config::alias::SnapshotMetaOf::<TypeConfig> {
        last_log_id: Some(log_id(7)),
        last_membership: Default::default(),
    };
    // The old layout: the meta and the registry's state (namespaces,
    // services, instances), nothing else.
    let payload = postcard::to_stdvec(&(meta, (state.namespaces, Vec::<()>::new(), Vec::<()>::new()))).unwrap();
    let mut bytes = b"JANUSSN1".to_vec();
    bytes.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    std::fs::write(snapshots.join("snapshot.bin"), bytes).unwrap();

    let store = Arc::new(RegistryStore::new(RegistryConfig::default(), 16));
    let machine = StateMachine::open(store.clone(), &snapshots).unwrap();
    assert_eq!(machine.last_applied(), Some(log_id(7)));
    assert!(store.read(|r| r.namespace(&NamespaceId::new("pay").unwrap()).is_ok()));
    assert!(!machine.auth().read(|s| s.has_global_admin()));
}

/// A snapshot written before the DNS access rule (`JANUSSN2`) is still
/// read: the registry and the auth state come back, every namespace answered.
#[tokio::test]
async fn a_snapshot_from_before_the_dns_rule_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = dir.path().join("snapshots");
    std::fs::create_dir_all(&snapshots).unwrap();
    let pay = NamespaceSpec::new(NamespaceId::new("pay").unwrap(), None, None, Mode::Cp).unwrap();
    let meta = openraft::type_config::alias::SnapshotMetaOf::<TypeConfig> {
        last_log_id: Some(log_id(9)),
        last_membership: Default::default(),
    };
    let mut auth = janus_auth::AuthState::default();
    let admin = janus_auth::UserName::parse("admin").unwrap();
    let create = janus_auth::AuthCommand::CreateUser { name: admin, password: None, at_unix_ms: 1 };
    auth.apply(create).unwrap();
    // The old layout: meta, the registry's three lists, the auth state.
    let payload = postcard::to_stdvec(&(meta, (vec![pay], Vec::<()>::new(), Vec::<()>::new()), &auth)).unwrap();
    let mut bytes = b"JANUSSN2".to_vec();
    bytes.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    std::fs::write(snapshots.join("snapshot.bin"), bytes).unwrap();

    let store = Arc::new(RegistryStore::new(RegistryConfig::default(), 16));
    let machine = StateMachine::open(store.clone(), &snapshots).unwrap();
    assert_eq!(machine.last_applied(), Some(log_id(9)));
    assert!(!store.read(|r| r.closed_to_dns(&NamespaceId::new("pay").unwrap())), "answered, as before the rule");
    assert_eq!(machine.auth().export(), auth, "the auth state comes back");
}
