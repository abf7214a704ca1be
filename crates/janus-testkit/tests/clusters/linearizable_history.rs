//! Recorded concurrent histories of a 3-node CP cluster, checked for
//! linearizability: clients register, deregister and read (through the Raft
//! read fence) on every node while the leader is cut off and a new one takes
//! over. The same checker rejects the history of reads that skip the fence
//! on a cut-off follower, so it would catch a stale read. And under a steady
//! write load a node joins, is promoted and another leaves, without losing an
//! acknowledged write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use janus_core::{ClusterName, Command, InstanceKey, RegistryError, RegistryStore};
use janus_raft::{CpEngine, MembershipChange};
use janus_testkit::cluster::{Cluster, create_ledger, ledger, register};
use janus_testkit::linearizability::{InstanceSet, Operation, SetOp, SetRet, check};

type History = Arc<Mutex<Vec<Operation<SetOp, SetRet>>>>;

fn ports_on(store: &RegistryStore) -> BTreeSet<u16> {
    store
        .read(|r| r.snapshot(&ledger()).map(|s| s.instances.iter().map(|i| i.instance.key.port).collect()))
        .unwrap_or_default()
}

fn deregister(port: u16) -> Command {
    let instance = InstanceKey::new(ClusterName::default_cluster(), "10.0.0.1".parse().unwrap(), port);
    Command::DeregisterInstance { key: ledger(), instance }
}

/// Runs `op` on `engine` (and reads `store`) and records it.
async fn perform(engine: &CpEngine, store: &RegistryStore, op: SetOp, fence: bool, clock: Instant, history: &History) {
    let now = || u64::try_from(clock.elapsed().as_micros()).unwrap();
    let call = now();
    let result = match &op {
        SetOp::Register(port) => match engine.write(register(*port)).await {
            Ok(Ok(_)) => Some(SetRet::Ok),
            Ok(Err(error)) => panic!("register refused: {error}"),
            Err(_) => None,
        },
        SetOp::Deregister(port) => match engine.write(deregister(*port)).await {
            Ok(Ok(_)) => Some(SetRet::Removed(true)),
            Ok(Err(RegistryError::InstanceNotFound { .. })) => Some(SetRet::Removed(false)),
            Ok(Err(error)) => panic!("deregister refused: {error}"),
            Err(_) => None,
        },
        SetOp::Read => {
            if fence && engine.linearize().await.is_err() {
                return; // a read that failed saw nothing and changed nothing
            }
            Some(SetRet::Seen(ports_on(store)))
        }
    };
    let ret = result.as_ref().map(|_| now());
    history.lock().unwrap().push(Operation { call, ret, op, result });
}

/// A small deterministic generator (no shared RNG between clients needed).
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_across_a_leader_failover_are_linearizable() {
    let cluster = Arc::new(Cluster::start(3).await);
    let leader = cluster.leader(&[1, 2, 3]).await;
    create_ledger(&cluster.engine(leader)).await;
    let history = History::default();
    let clock = Instant::now();

    let clients: Vec<_> = (0..6u64)
        .map(|client| {
            let (cluster, history) = (cluster.clone(), history.clone());
            tokio::spawn(async move {
                let node = client % 3 + 1;
                let (engine, store) = (cluster.engine(node), cluster.stores[&node].clone());
                let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (client + 1);
                for _ in 0..60 {
                    let port = u16::try_from(next(&mut seed) % 4).unwrap() + 1;
                    let op = match next(&mut seed) % 3 {
                        0 => SetOp::Register(port),
                        1 => SetOp::Deregister(port),
                        _ => SetOp::Read,
                    };
                    perform(&engine, &store, op, true, clock, &history).await;
                    tokio::time::sleep(Duration::from_millis(next(&mut seed) % 30)).await;
                }
            })
        })
        .collect();

    // Mid-run the leader is cut off; the others elect a new one; then it
    // heals. The cut outlasts the write deadline (1.6 s), so operations that
    // were waiting on the old leader end and new ones run on the majority.
    tokio::time::sleep(Duration::from_millis(200)).await;
    cluster.net.isolate(leader);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    cluster.net.heal();
    for client in clients {
        client.await.unwrap();
    }

    let history = history.lock().unwrap().clone();
    let acknowledged = history.iter().filter(|o| o.result.is_some()).count();
    assert!(acknowledged >= 100, "only {acknowledged} operations completed");
    let during_the_cut = history.iter().filter(|o| (200_000..3_200_000).contains(&o.call)).count();
    assert!(during_the_cut >= 10, "only {during_the_cut} operations ran while the leader was cut off");
    if let Err(error) = check(&InstanceSet::default(), &history) {
        panic!("{error}\n{history:#?}");
    }
    assert_ne!(cluster.leader(&[1, 2, 3]).await, leader, "the leadership moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_that_skip_the_fence_on_a_cut_off_follower_are_caught() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader(&[1, 2, 3]).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    create_ledger(&cluster.engine(leader)).await;
    let history = History::default();
    let clock = Instant::now();
    let (leader_engine, leader_store) = (cluster.engine(leader), cluster.stores[&leader].clone());
    let (follower_engine, follower_store) = (cluster.engine(follower), cluster.stores[&follower].clone());

    cluster.net.isolate(follower);
    perform(&leader_engine, &leader_store, SetOp::Register(1), true, clock, &history).await;
    // The injected bug: a "linearizable" read served from local state.
    perform(&follower_engine, &follower_store, SetOp::Read, false, clock, &history).await;
    let buggy = history.lock().unwrap().clone();
    assert!(check(&InstanceSet::default(), &buggy).is_err(), "the stale read must be caught: {buggy:#?}");

    // With the fence the cut-off follower refuses to answer rather than answer stale.
    history.lock().unwrap().pop();
    perform(&follower_engine, &follower_store, SetOp::Read, true, clock, &history).await;
    let fenced = history.lock().unwrap().clone();
    assert_eq!(fenced.len(), 1, "the fenced read failed instead of answering stale");
    assert!(check(&InstanceSet::default(), &fenced).is_ok());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_change_under_load_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader(&[1, 2, 3]).await;
    create_ledger(&cluster.engine(leader)).await;
    cluster.add_joiner(4).await;
    let cluster = Arc::new(cluster);
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));

    let clients: Vec<_> = (0..4u16)
        .map(|client| {
            let (cluster, acknowledged) = (cluster.clone(), acknowledged.clone());
            tokio::spawn(async move {
                // Clients on nodes 2 and 3, which stay members throughout.
                let engine = cluster.engine(u64::from(client % 2) + 2);
                for i in 0..80 {
                    let port = client * 1000 + i + 1;
                    if let Ok(Ok(_)) = engine.write(register(port)).await {
                        acknowledged.lock().unwrap().insert(port);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();

    // While they write: node 4 joins and votes, node 1 leaves.
    let admin = cluster.engine(2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    admin.change_members(MembershipChange::AddLearner { id: 4, addr: "node-4".to_owned() }).await.unwrap();
    admin.change_members(MembershipChange::Promote { id: 4 }).await.unwrap();
    admin.change_members(MembershipChange::Remove { id: 1 }).await.unwrap();
    for client in clients {
        client.await.unwrap();
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 200, "only {} of 320 writes were acknowledged", acknowledged.len());
    for id in [2, 3, 4] {
        let store = cluster.stores[&id].clone();
        let start = Instant::now();
        while !ports_on(&store).is_superset(&acknowledged) {
            assert!(start.elapsed() < Duration::from_secs(10), "node {id} lacks acknowledged writes");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(cluster.engine(2).members().voters.into_keys().collect::<Vec<_>>(), [2, 3, 4]);
}
