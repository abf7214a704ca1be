//! The AP engine across in-process clusters on paused time: replication,
//! forwarding, ownership, partitions, dead peers, joins and restarts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use janus_ap::{DistroConfig, MessageKind, route};
use janus_core::RegistryConfig;
use janus_core::preservation::PreservationConfig;
use janus_testkit::ap_cluster::{ApTestCluster, instance, service};
use tokio::time::Instant;

fn registry() -> RegistryConfig {
    RegistryConfig {
        // Small clusters of test instances: deletions are what is being tested.
        preservation: PreservationConfig { enabled: false, ..PreservationConfig::default() },
        ..RegistryConfig::default()
    }
}

async fn three() -> ApTestCluster {
    ApTestCluster::start(3, DistroConfig::default(), registry()).await
}

#[tokio::test(start_paused = true)]
async fn writes_through_any_node_reach_every_node_within_the_sync_window() {
    let cluster = three().await;
    for n in 0..90 {
        cluster.register(1 + u64::from(n % 3), "orders", n).await.unwrap();
    }
    cluster.pass(DistroConfig::default().sync_delay_ms + 50).await;
    for id in 1..=3 {
        assert_eq!(cluster.list(id, "orders").len(), 90, "node {id}");
    }
    assert!(cluster.agree("orders"));
    // Every instance has exactly one owner running its lease.
    let leases: u64 = (1..=3).map(|id| cluster.leases(id)).sum();
    assert_eq!(leases, 90);
    for id in 1..=3 {
        assert!(cluster.leases(id) > 15, "node {id} owns a fair share: {}", cluster.leases(id));
    }
    // Writes through a non-owner were forwarded, not applied twice.
    cluster.deregister(2, "orders", 5).await.unwrap();
    cluster.pass(200).await;
    assert!(cluster.agree("orders"));
    assert_eq!(cluster.list(3, "orders").len(), 89);
}

#[tokio::test(start_paused = true)]
async fn a_change_through_one_node_wakes_a_watch_on_another_within_250_ms() {
    let cluster = three().await;
    cluster.register(1, "watched", 0).await.unwrap();
    cluster.pass(200).await;
    let key = service("watched");
    let store = cluster.node(3).store.clone();
    let mut worst = Duration::ZERO;
    for n in 1..=20 {
        let revision = store.read(|r| r.service_revision(&key));
        let waiter = {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move { store.wait_service(&key, revision, Duration::from_secs(10)).await })
        };
        tokio::task::yield_now().await;
        let written = Instant::now();
        cluster.register(1 + u64::from(n % 2), "watched", n).await.unwrap();
        let woke = waiter.await.unwrap();
        assert_ne!(woke, revision, "woken by the change, not by the timeout");
        worst = worst.max(written.elapsed());
    }
    assert!(worst <= Duration::from_millis(250), "slowest cross-node wake: {worst:?}");
}

#[tokio::test(start_paused = true)]
async fn losing_one_of_three_moves_only_its_share_of_ownership() {
    let mut cluster = three().await;
    for n in 0..300 {
        cluster.register(1, "s", n).await.unwrap();
    }
    cluster.pass(300).await;
    let before: Vec<u64> = (1..=3).map(|id| cluster.leases(id)).collect();
    assert_eq!(before.iter().sum::<u64>(), 300);
    cluster.crash(2).await;
    cluster.wait_until("the survivors drop node 2 from the ring", |c| c.converged_ring()).await;
    let after = [cluster.leases(1), cluster.leases(3)];
    assert_eq!(after.iter().sum::<u64>(), 300, "every instance has an owner again");
    let moved = after[0] - before[0] + after[1] - before[2];
    assert_eq!(moved, before[1], "only node 2's instances changed owner");
    assert!(moved * 100 <= 40 * 300, "{moved} of 300 moved");
    assert!(cluster.agree("s"));
}

/// The owner every node names for an instance (the console's owner column)
/// is the node that runs its lease.
#[tokio::test(start_paused = true)]
async fn every_node_names_the_node_running_the_lease_as_owner() {
    let cluster = three().await;
    for n in 0..60 {
        cluster.register(1 + u64::from(n % 3), "owned", n).await.unwrap();
    }
    cluster.pass(500).await;
    let key = service("owned");
    let mut leases_seen = 0;
    for runner in 1..=3 {
        let snapshot = cluster.node(runner).store.read(|r| r.snapshot(&key)).unwrap();
        for found in snapshot.instances.iter().filter(|i| i.lease.is_some()) {
            leases_seen += 1;
            for asked in 1..=3 {
                let owner = cluster.node(asked).engine.owner_of(&key, &found.instance.key);
                assert_eq!(owner, Some(runner), "node {asked} on {:?}", found.instance.key);
            }
        }
    }
    assert_eq!(leases_seen, 60, "every instance has one lease");
}

/// A beat that lands on a node holding a healthy replica is answered at
/// once, whatever the owner's latency, and renews the owner's lease when the
/// batch arrives; an owner out of reach leaves the lease to the node the beat
/// landed on; an owner that no longer has the instance makes the next beat
/// "not found".
#[tokio::test(start_paused = true)]
async fn a_beat_on_a_replica_is_answered_at_once_and_renews_the_owner() {
    // No verify rounds: they would repair the replica of the last part by themselves.
    let distro = DistroConfig { verify_interval_ms: 3_600_000, ..DistroConfig::default() };
    let cluster = ApTestCluster::start(3, distro, registry()).await;
    let key = service("beats");
    cluster.register(1, "beats", 0).await.unwrap();
    cluster.pass(500).await;
    let owner = cluster.node(1).engine.owner_of(&key, &instance(0)).unwrap();
    let via = if owner == 1 { 2 } else { 1 };
    let lease_of_owner = |c: &ApTestCluster| {
        let read = c.node(owner).store.read(|r| r.instance(&key, &instance(0))).unwrap();
        read.lease.unwrap().last_renew
    };

    cluster.net.slow(owner, Duration::from_millis(200));
    let before = lease_of_owner(&cluster);
    cluster.pass(5_000).await;
    let sent = Instant::now();
    cluster.beat(via, "beats", 0).await.unwrap();
    assert!(sent.elapsed() < Duration::from_millis(10), "answered in {:?}, not after the owner", sent.elapsed());
    cluster.wait_until("the owner renewed the lease", |c| lease_of_owner(c) > before).await;
    // The beat went 5.5 s after the registration; the owner's links take 200 ms.
    let renewed = lease_of_owner(&cluster).since(before);
    assert!((5_500..5_800).contains(&renewed), "renewed {renewed} ms after the registration");
    cluster.net.slow(owner, Duration::ZERO);

    // The owner out of reach: answered at once all the same, and the node the
    // beat landed on runs the lease after the forward timeout.
    let leases_here = cluster.leases(via);
    cluster.net.blackhole(owner, true);
    let sent = Instant::now();
    cluster.beat(via, "beats", 0).await.unwrap();
    assert!(sent.elapsed() < Duration::from_millis(10));
    cluster.wait_until("the lease runs where the beat landed", |c| c.leases(via) == leases_here + 1).await;
    cluster.net.blackhole(owner, false);
    cluster.pass(16_000).await;

    // The owner lost the instance without telling the replicas: the beat is
    // answered, the replica goes, and the next beat is "not found".
    cluster.register(1, "beats", 1).await.unwrap();
    cluster.pass(500).await;
    let owner = cluster.node(1).engine.owner_of(&key, &instance(1)).unwrap();
    let via = if owner == 1 { 2 } else { 1 };
    cluster.node(owner).store.write(|r, now| {
        r.deregister_instance(&key, &instance(1), now).unwrap();
        r.take_dirty(); // not sent
    });
    cluster.beat(via, "beats", 1).await.unwrap();
    let beaten = Instant::now();
    cluster.wait_until("the replica went", |c| c.list(via, "beats").iter().all(|(i, _)| *i != instance(1))).await;
    assert!(beaten.elapsed() < Duration::from_millis(100), "gone {:?} after the beat", beaten.elapsed());
    let error = cluster.beat(via, "beats", 1).await.unwrap_err();
    assert!(error.is_not_found(), "{error}");
}

#[tokio::test(start_paused = true)]
async fn only_the_owner_expires_and_everyone_sees_it() {
    let cluster = three().await;
    for n in 0..30 {
        cluster.register(1, "quiet", n).await.unwrap();
    }
    cluster.pass(15_500).await;
    for id in 1..=3 {
        assert!(cluster.list(id, "quiet").iter().all(|(_, healthy)| !healthy), "node {id}: unhealthy after 15 s");
    }
    // Deleted from 30 s on (about 10 leases per owner: too few for Eureka's cap to apply).
    cluster.pass(15_000).await;
    for id in 1..=3 {
        assert!(cluster.list(id, "quiet").len() < 30, "node {id}: deletions start at 30 s");
    }
    cluster.wait_until("every node has removed them", |c| (1..=3).all(|id| c.list(id, "quiet").is_empty())).await;
}

#[tokio::test(start_paused = true)]
async fn both_sides_of_a_partition_serve_and_converge_after_it_heals() {
    let cluster = three().await;
    for n in 0..60 {
        cluster.register(1 + u64::from(n % 3), "p", n).await.unwrap();
    }
    cluster.pass(500).await;
    cluster.net.partition(&[&[1, 2], &[3]]);
    // Every request to a reachable node succeeds on both sides: beats of
    // 0..40 through every node, new registrations through every node, and
    // deregistrations of 40..60 on one side only.
    for round in 0..20u32 {
        for via in 1..=3 {
            for n in 0..40 {
                cluster.beat(via, "p", n).await.unwrap();
            }
            cluster.register(via, "p", 1000 + round * 3 + u32::try_from(via).unwrap()).await.unwrap();
        }
        cluster.deregister(1, "p", 40 + round).await.unwrap();
        cluster.pass(1000).await;
    }
    cluster.net.heal();
    let healed = Instant::now();
    let config = DistroConfig::default();
    cluster.wait_until("every node lists the same after the heal", |c| c.agree("p")).await;
    let took = healed.elapsed();
    assert!(
        took <= Duration::from_millis(config.sync_delay_ms + config.verify_interval_ms),
        "converged {took:?} after the heal"
    );
    let listed = cluster.list(1, "p").len();
    assert_eq!(listed, 40 + 60, "40 original, 60 registered during the partition: {listed}");
}

#[tokio::test(start_paused = true)]
async fn a_blackholed_peer_does_not_slow_replication_to_the_others() {
    let cluster = three().await;
    // Normal replication latency 1 → 2.
    let normal = replication_latency(&cluster, 0..20).await;
    cluster.net.blackhole(3, true);
    let with_dead_peer = replication_latency(&cluster, 100..120).await;
    assert!(
        with_dead_peer <= normal * 2,
        "replication to node 2: {normal:?} normally, {with_dead_peer:?} with node 3 blackholed"
    );
}

/// The slowest time, over registrations of `range` through node 1, from the
/// write's acknowledgement until node 2 lists it.
async fn replication_latency(cluster: &ApTestCluster, range: std::ops::Range<u32>) -> Duration {
    let mut worst = Duration::ZERO;
    for n in range {
        cluster.register(1, "latency", n).await.unwrap();
        let started = Instant::now();
        cluster.wait_until("node 2 lists it", |c| c.list(2, "latency").iter().any(|(i, _)| *i == instance(n))).await;
        worst = worst.max(started.elapsed());
    }
    worst
}

#[tokio::test(start_paused = true)]
async fn a_node_that_starts_loads_a_snapshot_before_it_is_ready() {
    let mut cluster = three().await;
    for n in 0..500 {
        cluster.register(1 + u64::from(n % 2), "big", n).await.unwrap();
    }
    cluster.pass(300).await;
    cluster.crash(3).await;
    cluster.start_node(3);
    assert!(!cluster.node(3).engine.is_ready(), "not ready before the snapshot");
    let refused = cluster.register(3, "big", 9999).await.unwrap_err();
    assert!(refused.to_string().contains("loading"), "{refused}");
    cluster.wait_until("node 3 is ready", |c| c.node(3).engine.is_ready()).await;
    assert_eq!(cluster.list(3, "big").len(), 500, "everything is there the moment it is ready");
    assert!(
        cluster.net.delivered(3, 1, route(MessageKind::Snapshot))
            + cluster.net.delivered(3, 2, route(MessageKind::Snapshot))
            >= 1
    );
}

fn members(ids: &[u64]) -> std::collections::BTreeMap<u64, String> {
    ids.iter().map(|id| (*id, format!("node-{id}"))).collect()
}

fn ring(cluster: &ApTestCluster, id: u64) -> Vec<u64> {
    cluster.node(id).engine.status().unwrap().ring
}

#[tokio::test(start_paused = true)]
async fn a_member_removed_and_added_again_leaves_and_rejoins_replication() {
    let cluster = three().await;
    // Node 3 leaves the group: the others drop it at once, it drops them.
    for id in [1, 2] {
        cluster.node(id).engine.set_members(&members(&[1, 2]));
        assert_eq!(ring(&cluster, id), [1, 2], "node {id}");
    }
    cluster.node(3).engine.set_members(&members(&[3]));
    assert_eq!(ring(&cluster, 3), [3]);
    // Whatever the removed node still takes stays with it: its former peers refuse its records.
    cluster.register(3, "split", 1).await.unwrap();
    for n in 10..40 {
        cluster.register(1, "split", n).await.unwrap();
    }
    cluster.pass(2_000).await;
    assert_eq!(cluster.list(1, "split").len(), 30);
    assert_eq!(cluster.list(2, "split"), cluster.list(1, "split"));
    assert_eq!(cluster.list(3, "split").len(), 1, "nothing reaches a removed node");
    let from_3 = janus_distro::message::Sync { from: 3, batches: Vec::new() };
    let body = janus_distro::message::encode(&from_3).unwrap();
    let refused = cluster.node(1).engine.handle_peer_message(MessageKind::Sync, &body).await.unwrap_err();
    assert_eq!(refused, janus_ap::PeerMessageError::NotAMember { from: 3 });

    // Added again: new sender and forwarder tasks, and it is back in the ring once it answers.
    for id in 1..=3 {
        cluster.node(id).engine.set_members(&members(&[1, 2, 3]));
    }
    cluster.wait_until("all three rings hold node 3 again", |c| c.converged_ring()).await;
    for n in 100..130 {
        cluster.register(2, "split", n).await.unwrap();
    }
    cluster.pass(DistroConfig::default().sync_delay_ms + 100).await;
    for n in 100..130 {
        let key = instance(n);
        assert!(cluster.list(3, "split").iter().any(|(listed, _)| *listed == key), "instance {n} on node 3");
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_restart_under_heartbeating_clients_hides_no_instance_for_a_heartbeat_timeout() {
    let cluster = Arc::new(tokio::sync::RwLock::new(three().await));
    let clients = 45u32;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for n in 0..clients {
        let (cluster, stop) = (cluster.clone(), stop.clone());
        tasks.push(tokio::spawn(async move { client(cluster, stop, n).await }));
    }
    // Watch every ready node's list every 100 ms; record each instance's longest absence.
    let watcher = {
        let (cluster, stop) = (cluster.clone(), stop.clone());
        tokio::spawn(async move {
            let mut missing_since: HashMap<u32, Instant> = HashMap::new();
            let mut worst = Duration::ZERO;
            tokio::time::sleep(Duration::from_secs(10)).await;
            while !stop.load(Ordering::Acquire) {
                {
                    let c = cluster.read().await;
                    for id in c.running() {
                        if !c.node(id).engine.is_ready() {
                            continue;
                        }
                        let listed: Vec<_> = c.list(id, "clients").into_iter().map(|(i, _)| i).collect();
                        for n in 0..clients {
                            if listed.contains(&instance(n)) {
                                if let Some(since) = missing_since.remove(&n) {
                                    worst = worst.max(since.elapsed());
                                }
                            } else {
                                missing_since.entry(n).or_insert_with(Instant::now);
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for since in missing_since.values() {
                worst = worst.max(since.elapsed());
            }
            worst
        })
    };
    tokio::time::sleep(Duration::from_secs(20)).await;
    {
        let mut c = cluster.write().await;
        for id in 1..=3 {
            c.crash(id).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    {
        let mut c = cluster.write().await;
        for id in 1..=3 {
            c.start_node(id);
        }
    }
    tokio::time::sleep(Duration::from_secs(40)).await;
    stop.store(true, Ordering::Release);
    let worst = watcher.await.unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let timeout = Duration::from_millis(janus_core::lease::LeaseDefaults::default().unhealthy_after_ms);
    assert!(worst <= timeout, "an instance was missing from a ready node's list for {worst:?}");
    let c = cluster.read().await;
    assert!(c.agree("clients"));
    assert_eq!(c.list(1, "clients").len(), clients as usize);
}

/// A Nacos 1.x-style client: beats every 5 s through the nodes in turn;
/// re-registers when told the instance is unknown; moves on to the next
/// node when one does not answer.
async fn client(cluster: Arc<tokio::sync::RwLock<ApTestCluster>>, stop: Arc<AtomicBool>, n: u32) {
    tokio::time::sleep(Duration::from_millis(u64::from(n) * 100)).await;
    let mut via = 1 + u64::from(n % 3);
    let mut registered = false;
    while !stop.load(Ordering::Acquire) {
        let outcome = {
            let c = cluster.read().await;
            if c.running().contains(&via) {
                Some(if registered {
                    c.beat(via, "clients", n).await
                } else {
                    c.register(via, "clients", n).await.map(|_| ())
                })
            } else {
                None
            }
        };
        match outcome {
            Some(Ok(())) => registered = true,
            Some(Err(error)) if error.is_not_found() => {
                registered = false;
                continue;
            }
            _ => {
                via = via % 3 + 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        via = via % 3 + 1;
    }
}

/// alibaba/nacos#15857: in a multi-node restart a node applied a peer's
/// snapshot that predated its own fresh registrations, and deleted them.
#[tokio::test(start_paused = true)]
async fn fresh_registrations_survive_the_peers_coming_back_with_their_snapshots() {
    let mut cluster = three().await;
    for n in 0..30 {
        cluster.register(1 + u64::from(n % 3), "race", n).await.unwrap();
    }
    cluster.pass(300).await;
    // Everyone goes down; node 1 comes back first, alone, and takes fresh registrations.
    for id in 1..=3 {
        cluster.crash(id).await;
    }
    cluster.start_node(1);
    cluster.wait_until("node 1 is ready (nobody to load from)", |c| c.node(1).engine.is_ready()).await;
    for n in 100..130 {
        cluster.register(1, "race", n).await.unwrap();
    }
    // The others come back and load from node 1, then ownership moves.
    cluster.start_node(2);
    cluster.start_node(3);
    cluster.wait_until("all three form one ring again", |c| c.converged_ring()).await;
    cluster.pass(DistroConfig::default().verify_interval_ms * 2).await;
    for id in 1..=3 {
        let listed = cluster.list(id, "race");
        assert_eq!(listed.len(), 30, "node {id} holds exactly the fresh registrations");
        assert!(listed.iter().all(|(i, _)| (100..130).any(|n| instance(n) == *i)));
    }
}

mod convergence {
    //! The convergence property: random writes through random nodes under
    //! random partitions; once healed, every node lists the same within one
    //! sync window plus one verify interval.

    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Register { via: u64, n: u32 },
        Deregister { via: u64, n: u32 },
        Beat { via: u64, n: u32 },
        Partition { alone: u64 },
        Heal,
        Pass { ms: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1..=3u64, 0..24u32).prop_map(|(via, n)| Op::Register { via, n }),
            2 => (1..=3u64, 0..24u32).prop_map(|(via, n)| Op::Deregister { via, n }),
            2 => (1..=3u64, 0..24u32).prop_map(|(via, n)| Op::Beat { via, n }),
            1 => (1..=3u64).prop_map(|alone| Op::Partition { alone }),
            1 => Just(Op::Heal),
            2 => (50..4000u64).prop_map(|ms| Op::Pass { ms }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn random_writes_and_partitions_converge_after_the_heal(ops in proptest::collection::vec(op(), 5..60)) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
            let took = runtime.block_on(async move {
                let cluster = three().await;
                for op in ops {
                    match op {
                        // Every request to a reachable node succeeds (unknown instances aside).
                        Op::Register { via, n } => { cluster.register(via, "prop", n).await.unwrap(); }
                        Op::Deregister { via, n } => {
                            if let Err(e) = cluster.deregister(via, "prop", n).await { assert!(e.is_not_found(), "{e}"); }
                        }
                        Op::Beat { via, n } => {
                            if let Err(e) = cluster.beat(via, "prop", n).await { assert!(e.is_not_found(), "{e}"); }
                        }
                        Op::Partition { alone } => {
                            let others: Vec<u64> = (1..=3).filter(|id| *id != alone).collect();
                            cluster.net.partition(&[&[alone], &others]);
                        }
                        Op::Heal => cluster.net.heal(),
                        Op::Pass { ms } => cluster.pass(ms).await,
                    }
                }
                cluster.net.heal();
                let healed = Instant::now();
                cluster.wait_until("every node lists the same", |c| c.agree("prop")).await;
                healed.elapsed()
            });
            let config = DistroConfig::default();
            prop_assert!(took <= Duration::from_millis(config.sync_delay_ms + config.verify_interval_ms), "{took:?}");
        }
    }
}
