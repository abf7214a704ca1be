//! Three CP engines in one process (see `janus_testkit::cluster`): writes
//! from any node reach every registry, an isolated leader refuses writes
//! quickly while the majority elects a new leader, the healed node catches up
//! (from a snapshot when the log moved on), a restart of every node brings
//! back every acknowledged write, members change at run time, a slow
//! follower neither slows commits nor falls behind for good, and a write
//! through a follower shows there as soon as it returns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use janus_core::model::NamespaceSpec;
use janus_core::{Command, Mode};
use janus_raft::{MembershipChange, RpcKind};
use janus_testkit::cluster::{Cluster, ELECTION, create_ledger, eventually, instances_on, ledger, pay, register};

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
async fn a_write_through_a_follower_shows_there_as_soon_as_it_returns() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader(&[1, 2, 3]).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let (engine, store) = (cluster.engine(follower), &cluster.stores[&follower]);

    // Read-your-writes on the node that took the write, with no polling: the
    // namespace and service it created, then each instance it registered.
    create_ledger(&engine).await;
    assert!(store.read(|r| r.namespace(&pay()).is_ok()), "the namespace is there once created");
    for port in 1..=20 {
        engine.write(register(port)).await.unwrap().unwrap();
        assert_eq!(instances_on(store), usize::from(port), "instance {port} is there once registered");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_refuses_writes_and_the_majority_moves_on() {
    let cluster = Cluster::start(3).await;
    let old_leader = cluster.leader(&[1, 2, 3]).await;
    create_ledger(&cluster.engine(old_leader)).await;
    cluster.engine(old_leader).write(register(1)).await.unwrap().unwrap();

    cluster.net.isolate(old_leader);
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
    cluster.net.heal();
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

    cluster.net.isolate(lagging);
    // The log is compacted in batches of 256 entries: write past one.
    for port in 1..=300 {
        cluster.engine(leader).write(register(port)).await.unwrap().unwrap();
    }
    cluster.net.heal();

    let store = cluster.stores[&lagging].clone();
    eventually("the lagging follower catches up", || async { (instances_on(&store) == 300).then_some(()) }).await;
    let snapshots = cluster.net.delivered_all(RpcKind::InstallSnapshot.route());
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
    // Its log caught up; it applies what is committed on the next heartbeat.
    let learner = cluster.stores[&4].clone();
    eventually("the learner applies the log", || async { (instances_on(&learner) == 1).then_some(()) }).await;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_follower_does_not_slow_commits_and_catches_up() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader(&[1, 2, 3]).await;
    create_ledger(&cluster.engine(leader)).await;
    let slow = (1..=3).find(|id| *id != leader).unwrap();
    // 150 ms each way on every message to or from it: 300 ms per round trip.
    cluster.net.slow(slow, Duration::from_millis(150));
    let started = Instant::now();
    for port in 1..=20 {
        cluster.engine(leader).write(register(port)).await.unwrap().unwrap();
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(20 * 150),
        "20 writes took {took:?}: the leader waited for the slow follower instead of the fast majority"
    );
    eventually("the slow follower catches up", || async { (instances_on(&cluster.stores[&slow]) == 20).then_some(()) })
        .await;
    cluster.net.slow(slow, Duration::ZERO);
    cluster.shutdown().await;
}

/// Users, tokens and grants are Raft state: a token issued through one node
/// works on every node, and once its revocation through another node is
/// committed, every node refuses it as soon as it has applied that entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_through_one_node_is_refused_by_every_node_once_applied() {
    use janus_auth::{AuthCommand, AuthOutcome, IssuedToken, Role, Scope, TokenKind, UserName};
    use janus_core::CommandOutcome;

    let cluster = Cluster::start(3).await;
    let leader = cluster.leader(&[1, 2, 3]).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let auth = |command| Command::Auth(command);
    let ops = UserName::parse("ops").unwrap();
    cluster
        .engine(follower)
        .write(auth(AuthCommand::CreateUser { name: ops.clone(), password: None, at_unix_ms: 1 }))
        .await
        .unwrap()
        .unwrap();
    let grant = AuthCommand::Grant { user: ops.clone(), scope: Scope::Namespace("pay".into()), role: Role::Write };
    cluster.engine(leader).write(auth(grant)).await.unwrap().unwrap();
    let token = IssuedToken::mint([5; 40]);
    let issued = cluster
        .engine(follower)
        .write(auth(AuthCommand::IssueToken {
            id: token.id.clone(),
            hash: token.hash.clone(),
            user: ops.clone(),
            kind: TokenKind::Api { name: "deploys".into() },
            at_unix_ms: 2,
            expires_unix_ms: None,
        }))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(issued, CommandOutcome::Auth(Ok(AuthOutcome::Token(_)))), "{issued:?}");
    // A refusal is the same deterministic outcome, also when forwarded.
    let again = cluster
        .engine(follower)
        .write(auth(AuthCommand::CreateUser { name: ops.clone(), password: None, at_unix_ms: 3 }))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(again, CommandOutcome::Auth(Err(janus_auth::AuthError::UserExists(_)))), "{again:?}");

    for id in 1..=3 {
        let engine = cluster.engine(id);
        eventually(&format!("node {id} knows the token"), || async {
            engine.auth().read(|s| s.authenticate(token.text(), 10).ok())
        })
        .await;
        let principal = engine.auth().read(|s| s.authenticate(token.text(), 10)).unwrap();
        assert!(
            engine.auth().read(|s| s.authorize(&principal.user, Role::Write, &Scope::Namespace("pay".into())).is_ok())
        );
    }

    let revoker = (1..=3).find(|id| *id != follower).unwrap();
    cluster.engine(revoker).write(auth(AuthCommand::RevokeToken { id: token.id.clone() })).await.unwrap().unwrap();
    let committed = cluster.engine(revoker).applied_index();
    for id in 1..=3 {
        // A read fence makes the node apply at least what was committed before it.
        let fenced = cluster.engine(id).linearize().await.unwrap();
        assert!(fenced >= committed);
        let refused = cluster.engine(id).auth().read(|s| s.authenticate(token.text(), 10));
        assert_eq!(refused, Err(janus_auth::AuthError::UnknownToken), "node {id}");
    }
    cluster.shutdown().await;
}
