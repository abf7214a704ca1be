use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::model::InstanceSpec;
use crate::replica::{ReplicationConfig, ServiceRecords, Version, record_hash};

fn key(service: &str) -> ServiceKey {
    ServiceKey::new(NamespaceId::public(), GroupName::default_group(), ServiceName::new(service).unwrap())
}

fn inst(port: u16) -> InstanceKey {
    InstanceKey::new(ClusterName::default_cluster(), "10.0.0.1".parse().unwrap(), port)
}

fn node(id: u64) -> Registry {
    Registry::new(RegistryConfig {
        replication: Some(ReplicationConfig { node: id, tombstone_ttl_ms: 60_000 }),
        preservation: PreservationConfig { enabled: false, ..PreservationConfig::default() },
        ..RegistryConfig::default()
    })
}

/// Everything `from` changed since the last call, as records (what a sync sends).
fn outgoing(from: &mut Registry) -> Vec<ServiceRecords> {
    let dirty = from.take_dirty();
    dirty.iter().map(|(service, instance)| from.records(service, [instance])).collect()
}

fn deliver(to: &mut Registry, batches: Vec<ServiceRecords>, now: u64) -> ApplyReport {
    let mut total = ApplyReport::default();
    for batch in batches {
        let report = to.apply_records(batch, Millis(now), &|_| false);
        total.applied += report.applied;
        total.stale += report.stale;
        total.refused += report.refused;
        total.reasserted += report.reasserted;
        total.newer_here.extend(report.newer_here);
    }
    total
}

fn listed(reg: &Registry, service: &str) -> Vec<(u16, bool, Version)> {
    let mut out = Vec::new();
    if reg.services.contains_key(&key(service)) {
        reg.visit_ephemeral(&key(service), |view| {
            let healthy = reg.instance(&key(service), view.instance).unwrap().instance.healthy;
            out.push((view.instance.port, healthy, view.version));
        });
    }
    out.sort_by_key(|e| e.0);
    out
}

#[test]
fn local_changes_are_versioned_and_queued_only_when_replicating() {
    let mut single = Registry::new(RegistryConfig::default());
    single.register_instance(&key("a"), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    assert!(single.take_dirty().is_empty(), "a lone node queues nothing");

    let mut reg = node(7);
    reg.register_instance(&key("a"), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    let first = listed(&reg, "a")[0].2;
    assert_eq!(first, Version { counter: 1, node: 7 });
    assert_eq!(reg.take_dirty().len(), 1);
    reg.register_instance(&key("a"), InstanceSpec::new(inst(1)), Millis(10)).unwrap();
    assert!(reg.take_dirty().is_empty(), "an identical re-registration (a sign of life) is not a change");
    reg.heartbeat(&key("a"), &inst(1), Millis(20)).unwrap();
    assert!(reg.take_dirty().is_empty(), "beats are not replicated");
    let mut heavier = InstanceSpec::new(inst(1));
    heavier.weight = 3.0;
    reg.register_instance(&key("a"), heavier, Millis(30)).unwrap();
    assert_eq!(listed(&reg, "a")[0].2, Version { counter: 2, node: 7 });
    reg.deregister_instance(&key("a"), &inst(1), Millis(40)).unwrap();
    let records = outgoing(&mut reg);
    assert_eq!(records[0].records[0].body, None, "a deletion travels as a tombstone");
    assert_eq!(records[0].records[0].version, Version { counter: 3, node: 7 });
    reg.register_instance(&key("a"), InstanceSpec::new(inst(1)), Millis(50)).unwrap();
    assert_eq!(listed(&reg, "a")[0].2.counter, 4, "a new life counts on from the tombstone");
}

#[test]
fn replicas_take_only_newer_records_and_tombstones_stop_resurrection() {
    let mut a = node(1);
    let mut b = node(2);
    a.register_instance(&key("s"), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    let registered = outgoing(&mut a);
    assert_eq!(deliver(&mut b, registered.clone(), 5).applied, 1);
    assert_eq!(listed(&b, "s").len(), 1);
    assert!(b.take_dirty().is_empty(), "what a peer sent is not sent on again");
    assert_eq!(deliver(&mut b, registered.clone(), 6).stale, 1, "the same record again changes nothing");

    a.deregister_instance(&key("s"), &inst(1), Millis(10)).unwrap();
    let deleted = outgoing(&mut a);
    assert_eq!(deliver(&mut b, deleted, 11).applied, 1);
    assert!(listed(&b, "s").is_empty());
    let late = deliver(&mut b, registered, 12);
    assert_eq!(late.stale, 1, "a late older copy cannot bring it back");
    assert_eq!(late.newer_here.len(), 1, "and its sender is owed the newer record");
    assert_eq!(b.tombstones(), 1);
    assert_eq!(b.prune_tombstones(Millis(11 + 60_000)), 1);
    assert_eq!(b.tombstones(), 0);
}

#[test]
fn records_for_unknown_or_cp_namespaces_are_refused() {
    let mut a = node(1);
    let mut b = node(2);
    let team = NamespaceSpec::new(NamespaceId::new("team").unwrap(), None, None, Mode::Ap).unwrap();
    a.create_namespace(team).unwrap();
    let service =
        ServiceKey::new(NamespaceId::new("team").unwrap(), GroupName::default_group(), ServiceName::new("x").unwrap());
    a.register_instance(&service, InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    let report = deliver(&mut b, outgoing(&mut a), 1);
    assert_eq!(report.refused, 1, "namespaces come through Raft; until then the record waits for a repair");
}

#[test]
fn replicas_have_no_lease_and_become_leased_when_written_or_beaten_here() {
    let mut a = node(1);
    let mut b = node(2);
    a.register_instance(&key("s"), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    deliver(&mut b, outgoing(&mut a), 0);
    assert_eq!(b.stats(Millis(0)).leases, 0, "a replica's lease runs on its owner");
    // Its silence on b means nothing: b does not own it.
    let mut rng = StdRng::seed_from_u64(1);
    assert_eq!(b.expire_owned(Millis(60_000), &mut rng, &|_| false), ExpiryReport::default());
    assert_eq!(listed(&b, "s").len(), 1);
    // A beat that reaches b (its owner is away) starts a lease here.
    b.heartbeat(&key("s"), &inst(1), Millis(60_000)).unwrap();
    assert_eq!(b.stats(Millis(60_000)).leases, 1);
    // When that lease comes due on a node that does not own the instance, it
    // is handed back instead of expiring.
    let report = b.expire_owned(Millis(80_000), &mut rng, &|_| false);
    assert_eq!(report.released, 1);
    assert_eq!(report.marked_unhealthy + report.deleted, 0);
    assert_eq!(b.stats(Millis(80_000)).leases, 0);
    assert!(listed(&b, "s")[0].1, "still there and healthy");
}

#[test]
fn only_the_owner_expires_and_its_decisions_replicate() {
    let mut a = node(1);
    let mut b = node(2);
    a.register_instance(&key("s"), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    deliver(&mut b, outgoing(&mut a), 0);
    let mut rng = StdRng::seed_from_u64(1);
    let report = a.expire_owned(Millis(15_000), &mut rng, &|_| true);
    assert_eq!(report.marked_unhealthy, 1);
    deliver(&mut b, outgoing(&mut a), 15_000);
    assert!(!listed(&b, "s")[0].1, "the owner's health flip reached the replica");
    let report = a.expire_owned(Millis(30_000), &mut rng, &|_| true);
    assert_eq!(report.deleted, 1);
    deliver(&mut b, outgoing(&mut a), 30_000);
    assert!(listed(&b, "s").is_empty());
}

#[test]
fn rebalance_adopts_and_releases_by_ownership() {
    let mut a = node(1);
    for port in 1..=20 {
        a.register_instance(&key("s"), InstanceSpec::new(inst(port)), Millis(0)).unwrap();
    }
    a.take_dirty();
    let owns_even = |hash: u64| hash.is_multiple_of(2);
    let released = a.rebalance(Millis(100), &owns_even);
    let kept = a.stats(Millis(100)).leases;
    assert_eq!(released.len() as u64 + kept, 20);
    assert!(released.iter().all(|(s, i)| !owns_even(record_hash(s, i))));
    let released_again = a.rebalance(Millis(200), &|_| true);
    assert!(released_again.is_empty());
    assert_eq!(a.stats(Millis(200)).leases, 20, "owning everything again adopts every replica");
}

#[test]
fn snapshot_pages_cover_every_ephemeral_instance_once() {
    let mut a = node(1);
    for s in 0..7 {
        for port in 1..=5 {
            a.register_instance(&key(&format!("svc{s}")), InstanceSpec::new(inst(port)), Millis(0)).unwrap();
        }
    }
    let mut seen = 0;
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (page, next) = a.snapshot_page(cursor.as_ref(), 12);
        seen += page.iter().map(|p| p.records.len()).sum::<usize>();
        pages += 1;
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, 35);
    assert!(pages >= 3);
}

#[test]
fn drop_replicas_leaves_leased_instances_alone() {
    let mut a = node(1);
    let mut b = node(2);
    a.register_instance(&key("s"), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    deliver(&mut b, outgoing(&mut a), 0);
    b.register_instance(&key("s"), InstanceSpec::new(inst(2)), Millis(0)).unwrap();
    assert_eq!(b.drop_replicas(&key("s"), [&inst(1), &inst(2)]), 1);
    assert_eq!(listed(&b, "s").iter().map(|e| e.0).collect::<Vec<_>>(), [2]);
}

/// One step of the convergence property: a write on one of two nodes, or a
/// delivery of what one node changed to the other.
#[derive(Debug, Clone)]
enum Step {
    Register { on: usize, port: u16, weight: u8 },
    Deregister { on: usize, port: u16 },
    Deliver { from: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..2usize, 1..4u16, 1..4u8).prop_map(|(on, port, weight)| Step::Register { on, port, weight }),
        (0..2usize, 1..4u16).prop_map(|(on, port)| Step::Deregister { on, port }),
        (0..2usize).prop_map(|from| Step::Deliver { from }),
    ]
}

proptest! {
    /// Whatever two partitioned nodes did, once each has everything the other
    /// changed, they hold the same instances at the same versions.
    #[test]
    fn two_nodes_converge_after_exchanging_everything(steps in proptest::collection::vec(step(), 1..40)) {
        let mut nodes = [node(1), node(2)];
        let mut pending: [Vec<ServiceRecords>; 2] = [Vec::new(), Vec::new()];
        for (t, step) in steps.into_iter().enumerate() {
            let now = Millis(t as u64);
            match step {
                Step::Register { on, port, weight } => {
                    let mut spec = InstanceSpec::new(inst(port));
                    spec.weight = f64::from(weight);
                    nodes[on].register_instance(&key("s"), spec, now).unwrap();
                }
                Step::Deregister { on, port } => {
                    let _ = nodes[on].deregister_instance(&key("s"), &inst(port), now);
                }
                Step::Deliver { from } => {
                    let batches = std::mem::take(&mut pending[from]);
                    deliver(&mut nodes[1 - from], batches, t as u64);
                }
            }
            for (i, n) in nodes.iter_mut().enumerate() {
                let out = outgoing(n);
                pending[i].extend(out);
            }
        }
        // Heal: full exchange both ways, as a verify repair would do.
        for from in 0..2 {
            let all: Vec<ServiceRecords> = {
                let n = &nodes[from];
                let instances: Vec<InstanceKey> = (1..4).map(inst).collect();
                vec![n.records(&key("s"), instances.iter())]
            };
            deliver(&mut nodes[1 - from], all, 1000);
        }
        prop_assert_eq!(listed(&nodes[0], "s"), listed(&nodes[1], "s"));
    }
}

mod bound {
    use super::*;
    use crate::registry::Binding;

    const X1: Binding = Binding { node: 1, conn: 10 };
    const Y2: Binding = Binding { node: 2, conn: 20 };

    fn publish(reg: &mut Registry, port: u16, binding: Binding, now: u64) {
        reg.publish_bound(&key("b"), vec![InstanceSpec::new(inst(port))], binding, Millis(now)).unwrap();
    }

    #[test]
    fn a_bound_instance_replicates_with_its_binding_and_no_lease_anywhere() {
        let (mut x, mut y) = (node(1), node(2));
        publish(&mut x, 1, X1, 0);
        // Even a node that owns its hash runs no lease for it: its connection keeps it.
        let records = outgoing(&mut x);
        for batch in records {
            y.apply_records(batch, Millis(1), &|_| true);
        }
        assert_eq!(y.binding_of(&key("b"), &inst(1)), Some(X1));
        assert_eq!(y.stats(Millis(1)).leases, 0);
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(y.expire(Millis(10_000_000), &mut rng).deleted, 0, "no lease, no expiry");
    }

    #[test]
    fn a_redo_elsewhere_rebinds_and_the_old_connections_release_changes_nothing() {
        let (mut x, mut y) = (node(1), node(2));
        publish(&mut x, 1, X1, 0);
        deliver(&mut y, outgoing(&mut x), 1);
        // The client moved to y: the same instance, a new binding, a newer version.
        publish(&mut y, 1, Y2, 2);
        deliver(&mut x, outgoing(&mut y), 3);
        assert_eq!(x.binding_of(&key("b"), &inst(1)), Some(Y2));
        // x detects the old connection dead later: nothing to release.
        assert_eq!(x.release_binding(X1, Millis(4)), 0);
        assert!(outgoing(&mut x).is_empty());
        assert_eq!(listed(&y, "b").len(), 1);
    }

    #[test]
    fn a_cleanup_of_a_live_connection_is_reasserted_above_it() {
        let (mut x, mut f) = (node(1), node(3));
        publish(&mut x, 1, X1, 0);
        deliver(&mut f, outgoing(&mut x), 1);
        // f, cut off from x for longer than the grace, clears x's instance.
        assert!(f.clear_orphan(&key("b"), &inst(1), X1, Millis(2)));
        let cleanup = outgoing(&mut f);
        // x still holds the connection: it refuses the deletion and answers with a newer record.
        let report = deliver(&mut x, cleanup, 3);
        assert_eq!(report.reasserted, 1);
        assert_eq!(listed(&x, "b").len(), 1);
        let reasserted = outgoing(&mut x);
        deliver(&mut f, reasserted, 4);
        assert_eq!(f.binding_of(&key("b"), &inst(1)), Some(X1), "back on f, bound as before");
        // A deregistration by the client itself is not reasserted.
        x.unpublish_bound(&key("b"), X1, Millis(5)).unwrap();
        deliver(&mut f, outgoing(&mut x), 6);
        assert!(listed(&f, "b").is_empty());
    }

    #[test]
    fn an_orphan_cleanup_skips_an_instance_rebound_meanwhile() {
        let mut f = node(3);
        publish(&mut f, 1, Y2, 0);
        assert!(!f.clear_orphan(&key("b"), &inst(1), X1, Millis(1)), "bound to another connection now");
        assert_eq!(listed(&f, "b").len(), 1);
    }
}

#[test]
fn a_healthy_replica_tells_the_timings_a_beat_would_get_and_nothing_else_does() {
    let mut owner = node(1);
    let mut replica = node(2);
    let mut spec = InstanceSpec::new(inst(1));
    spec.metadata.insert(crate::model::BEAT_INTERVAL_KEY.to_owned(), "2000".to_owned());
    owner.register_instance(&key("a"), spec, Millis(0)).unwrap();
    assert!(owner.replica_beat_timing(&key("a"), &inst(1)).is_none(), "the owner runs the lease");
    deliver(&mut replica, outgoing(&mut owner), 10);
    let (timing, version) = replica.replica_beat_timing(&key("a"), &inst(1)).expect("a healthy replica");
    assert_eq!(timing.interval_ms, 2_000, "the instance's own interval");
    assert_eq!(version, listed(&owner, "a")[0].2, "the replica's version");
    assert!(replica.replica_beat_timing(&key("a"), &inst(2)).is_none(), "unknown here");

    // Unhealthy at its owner: the beat must reach the owner to heal it.
    owner.expire(Millis(15_000), &mut StdRng::seed_from_u64(1));
    deliver(&mut replica, outgoing(&mut owner), 15_010);
    assert!(replica.replica_beat_timing(&key("a"), &inst(1)).is_none(), "unhealthy");

    // A replica whose lease this node took over is beaten here, not relayed.
    owner.heartbeat(&key("a"), &inst(1), Millis(15_100)).unwrap();
    deliver(&mut replica, outgoing(&mut owner), 15_110);
    assert!(replica.replica_beat_timing(&key("a"), &inst(1)).is_some());
    replica.heartbeat(&key("a"), &inst(1), Millis(15_200)).unwrap();
    assert!(replica.replica_beat_timing(&key("a"), &inst(1)).is_none(), "leased here now");
}

#[test]
fn a_replica_the_owner_disowns_goes_only_if_nothing_newer_arrived() {
    let mut owner = node(1);
    let mut replica = node(2);
    owner.register_instance(&key("a"), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    deliver(&mut replica, outgoing(&mut owner), 10);
    let (_, asked_about) = replica.replica_beat_timing(&key("a"), &inst(1)).unwrap();
    // A newer record (a re-registration with a change) arrives before the owner's answer.
    let mut changed = InstanceSpec::new(inst(1));
    changed.weight = 3.0;
    owner.register_instance(&key("a"), changed, Millis(20)).unwrap();
    deliver(&mut replica, outgoing(&mut owner), 30);
    assert!(!replica.drop_replica_at(&key("a"), &inst(1), asked_about), "a newer record stays");
    assert_eq!(listed(&replica, "a").len(), 1);
    let (_, current) = replica.replica_beat_timing(&key("a"), &inst(1)).unwrap();
    assert!(replica.drop_replica_at(&key("a"), &inst(1), current));
    assert!(listed(&replica, "a").is_empty());
    assert!(!owner.drop_replica_at(&key("a"), &inst(1), current), "the owner's own lease is never dropped");
}
