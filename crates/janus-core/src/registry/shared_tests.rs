//! Instance writes under the shared lock ([`Registry::register_instance_shared`],
//! [`Registry::deregister_instance_shared`]): they have exactly the effect of
//! the exclusive writes — on instances, revisions, changes, leases,
//! self-preservation, replication versions and tombstones — publish their
//! changes themselves, and leave to the exclusive path every write that
//! would change the registry's structure.

use std::cell::RefCell;
use std::sync::Arc;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::tests::{inst, key};
use super::*;
use crate::model::{BEAT_INTERVAL_KEY, InstanceSpec, Metadata};
use crate::replica::ReplicationConfig;
use crate::store::RegistryStore;

/// Runs a shared register, collecting what it publishes.
fn register_shared(
    reg: &Registry,
    service: &ServiceKey,
    spec: InstanceSpec,
    now: u64,
) -> (Result<Result<u64, RegistryError>, InstanceSpec>, Vec<Change>) {
    let published = RefCell::new(Vec::new());
    let result = reg.register_instance_shared(service, spec, Millis(now), |changes| {
        published.borrow_mut().extend_from_slice(changes);
    });
    (result, published.into_inner())
}

#[test]
fn a_shared_register_publishes_its_change_and_queues_none() {
    let mut reg = Registry::new(RegistryConfig::default());
    let orders = key("orders");
    let first = reg.register_instance(&orders, InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    reg.take_changes();
    let (result, published) = register_shared(&reg, &orders, InstanceSpec::new(inst(2)), 10);
    let revision = result.expect("the service exists").unwrap();
    assert!(revision > first);
    assert_eq!(published.len(), 1);
    assert_eq!((published[0].revision, published[0].kind), (revision, ChangeKind::InstanceRegistered));
    assert!(reg.take_changes().is_empty(), "a shared write publishes its own changes");
    assert_eq!(reg.revision(), revision);
    assert_eq!(reg.namespace_revision(&NamespaceId::public()), revision);
    assert_eq!(reg.service_revision(&orders), revision);
    assert_eq!(reg.stats(Millis(10)).instances, 2);
    assert_eq!(reg.stats(Millis(10)).leases, 2);

    let published = RefCell::new(Vec::new());
    let removed = reg
        .deregister_instance_shared(&orders, &inst(1), Millis(20), |c| published.borrow_mut().extend_from_slice(c))
        .expect("not bound")
        .unwrap();
    assert!(removed > revision);
    assert_eq!(published.borrow()[0].kind, ChangeKind::InstanceDeregistered);
    assert_eq!(reg.stats(Millis(20)).instances, 1);
    assert_eq!(reg.stats(Millis(20)).leases, 1);
}

#[test]
fn structural_writes_are_declined_and_errors_are_the_exclusive_ones() {
    let mut reg = Registry::new(RegistryConfig::default());
    let (declined, published) = register_shared(&reg, &key("new"), InstanceSpec::new(inst(1)), 0);
    assert!(declined.is_err(), "a new service needs the exclusive lock");
    assert!(published.is_empty());

    let binding = Binding { node: 1, conn: 7 };
    reg.publish_bound(&key("bound"), vec![InstanceSpec::new(inst(2))], binding, Millis(0)).unwrap();
    assert!(register_shared(&reg, &key("bound"), InstanceSpec::new(inst(2)), 1).0.is_err(), "bound");
    assert!(reg.deregister_instance_shared(&key("bound"), &inst(2), Millis(1), |_| {}).is_none(), "bound");

    let missing = reg.deregister_instance_shared(&key("bound"), &inst(9), Millis(1), |_| {}).unwrap();
    assert!(matches!(missing, Err(RegistryError::InstanceNotFound { .. })));
    let mut persistent = InstanceSpec::new(inst(3));
    persistent.ephemeral = Some(false);
    let refused = register_shared(&reg, &key("bound"), persistent, 1).0.expect("answered under the shared lock");
    assert!(matches!(refused, Err(RegistryError::ModeMismatch { .. })));

    // Persistent instances change only by Raft applies, under the exclusive lock.
    let pay = NamespaceId::new("pay").unwrap();
    reg.create_namespace(NamespaceSpec::new(pay.clone(), None, None, Mode::Cp).unwrap()).unwrap();
    let ledger = ServiceKey::new(pay, GroupName::default_group(), ServiceName::new("ledger").unwrap());
    reg.register_instance(&ledger, InstanceSpec::new(inst(3)), Millis(0)).unwrap();
    assert!(register_shared(&reg, &ledger, InstanceSpec::new(inst(4)), 1).0.is_err(), "cp");
    assert!(reg.deregister_instance_shared(&ledger, &inst(3), Millis(1), |_| {}).is_none(), "cp");
}

/// One write of the comparison.
#[derive(Debug, Clone)]
enum Step {
    Register { service: usize, port: u16, weight: u8, interval_s: Option<u8> },
    Deregister { service: usize, port: u16 },
    Expire,
}

fn steps() -> impl Strategy<Value = Vec<(Step, u64)>> {
    let register = (0..3usize, 1..=4u16, 1..=3u8, prop::option::of(2..=9u8))
        .prop_map(|(service, port, weight, interval_s)| Step::Register { service, port, weight, interval_s });
    let deregister = (0..3usize, 1..=4u16).prop_map(|(service, port)| Step::Deregister { service, port });
    let step = prop_oneof![4 => register, 3 => deregister, 1 => Just(Step::Expire)];
    prop::collection::vec((step, 0..6_000u64), 1..60)
}

const SERVICES: [&str; 3] = ["orders", "payments", "stock"];

fn spec(port: u16, weight: u8, interval_s: Option<u8>) -> InstanceSpec {
    let mut spec = InstanceSpec::new(inst(port));
    spec.weight = f64::from(weight);
    if let Some(seconds) = interval_s {
        let mut metadata = Metadata::new();
        metadata.insert(BEAT_INTERVAL_KEY.to_owned(), (u64::from(seconds) * 1_000).to_string());
        spec.metadata = metadata;
    }
    spec
}

/// Everything a registry shows of the three services.
fn view(reg: &Registry, now: Millis) -> impl PartialEq + std::fmt::Debug {
    let services: Vec<_> = SERVICES
        .iter()
        .map(|name| {
            let snapshot = reg.snapshot(&key(name)).unwrap();
            let mut instances: Vec<_> = snapshot
                .instances
                .iter()
                .map(|i| (i.instance.key.port, i.instance.weight.to_bits(), i.instance.healthy, i.timing, i.lease))
                .collect();
            instances.sort_by_key(|(port, ..)| *port);
            let records = reg.records(&key(name), &(1..=4).map(inst).collect::<Vec<_>>());
            (snapshot.exists, snapshot.revision, instances, records)
        })
        .collect();
    (services, reg.stats(now), reg.next_deadline(), reg.tombstones(), reg.empty_services_pending())
}

fn config(replicated: bool) -> RegistryConfig {
    RegistryConfig {
        replication: replicated.then_some(ReplicationConfig { node: 2, tombstone_ttl_ms: 60_000 }),
        ..RegistryConfig::default()
    }
}

proptest! {
    /// Writes taken under the shared lock where they can be, and writes all
    /// taken exclusively, leave the same registry behind and make the same
    /// changes, with and without replication.
    #[test]
    fn shared_writes_have_the_effect_of_exclusive_ones(steps in steps(), replicated in any::<bool>()) {
        let mut exclusive = Registry::new(config(replicated));
        let mut shared = Registry::new(config(replicated));
        // Two services exist from the start; the third appears with its first write.
        for reg in [&mut exclusive, &mut shared] {
            for name in &SERVICES[..2] {
                reg.register_instance(&key(name), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
            }
            reg.take_changes();
        }
        let mut rng_exclusive = StdRng::seed_from_u64(7);
        let mut rng_shared = StdRng::seed_from_u64(7);
        let mut now = 0;
        for (step, gap) in steps {
            now += gap;
            let published = RefCell::new(Vec::new());
            let publish = |changes: &[Change]| published.borrow_mut().extend_from_slice(changes);
            match step {
                Step::Register { service, port, weight, interval_s } => {
                    let service = key(SERVICES[service]);
                    let expected = exclusive.register_instance(&service, spec(port, weight, interval_s), Millis(now));
                    let got = match shared.register_instance_shared(&service, spec(port, weight, interval_s), Millis(now), publish) {
                        Ok(result) => result,
                        Err(spec) => shared.register_instance(&service, spec, Millis(now)),
                    };
                    prop_assert_eq!(got, expected);
                }
                Step::Deregister { service, port } => {
                    let service = key(SERVICES[service]);
                    let expected = exclusive.deregister_instance(&service, &inst(port), Millis(now));
                    let got = match shared.deregister_instance_shared(&service, &inst(port), Millis(now), publish) {
                        Some(result) => result,
                        None => shared.deregister_instance(&service, &inst(port), Millis(now)),
                    };
                    prop_assert_eq!(got, expected);
                }
                Step::Expire => {
                    prop_assert_eq!(shared.expire(Millis(now), &mut rng_shared), exclusive.expire(Millis(now), &mut rng_exclusive));
                }
            }
            let mut made = published.into_inner();
            made.extend(shared.take_changes());
            let summary = |changes: Vec<Change>| changes.into_iter().map(|c| (c.revision, c.kind, c.service, c.instance)).collect::<Vec<_>>();
            prop_assert_eq!(summary(made), summary(exclusive.take_changes()));
            prop_assert_eq!(shared.take_dirty(), exclusive.take_dirty());
            prop_assert_eq!(view(&shared, Millis(now)), view(&exclusive, Millis(now)));
        }
    }
}

/// Writers on different services and on the same one, at once, through the
/// store: every change is published once, each service's in revision order,
/// and the counters add up.
#[test]
fn concurrent_writers_publish_each_service_in_revision_order() {
    const ROUNDS: u16 = 400;
    let store = Arc::new(RegistryStore::new(RegistryConfig::default(), 1 << 16));
    for name in SERVICES {
        store.write(|reg, now| reg.register_instance(&key(name), InstanceSpec::new(inst(1)), now)).unwrap();
    }
    let start = store.read(Registry::revision);
    let mut events = store.events();
    // Two writers on "orders" (ports of their own), one each on the others.
    let writers: Vec<(usize, u16)> = vec![(0, 100), (0, 2_000), (1, 100), (2, 100)];
    let handles: Vec<_> = writers
        .into_iter()
        .map(|(service, base)| {
            let store = store.clone();
            std::thread::spawn(move || {
                let service = key(SERVICES[service]);
                for i in 0..ROUNDS {
                    let port = base + i;
                    store
                        .write_shared(
                            InstanceSpec::new(inst(port)),
                            |reg, now, spec, publish| reg.register_instance_shared(&service, spec, now, publish),
                            |reg, now, spec| reg.register_instance(&service, spec, now),
                        )
                        .unwrap();
                    if i % 2 == 0 {
                        store
                            .write_shared(
                                (),
                                |reg, now, (), publish| {
                                    reg.deregister_instance_shared(&service, &inst(port), now, publish).ok_or(())
                                },
                                |reg, now, ()| reg.deregister_instance(&service, &inst(port), now),
                            )
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let mut last: HashMap<ServiceKey, u64> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut count = 0;
    while let Ok(change) = events.try_recv() {
        let service = (*change.service.clone().unwrap()).clone();
        let previous = last.insert(service.clone(), change.revision).unwrap_or(0);
        assert!(change.revision > previous, "{service}: {} after {previous}", change.revision);
        assert!(seen.insert(change.revision), "revision {} published twice", change.revision);
        count += 1;
    }
    // Each writer: ROUNDS registers and ROUNDS / 2 deregisters.
    let writes = 4 * (usize::from(ROUNDS) + usize::from(ROUNDS) / 2);
    assert_eq!(count, writes);
    let stats = store.read(|reg| reg.stats(store.now()));
    assert_eq!(stats.instances, 3 + 4 * u64::from(ROUNDS) / 2);
    assert_eq!(stats.leases, stats.instances);
    assert_eq!(stats.revision, start + writes as u64);
    let held: u64 =
        SERVICES.iter().map(|name| store.read(|reg| reg.snapshot(&key(name)).unwrap().instances.len() as u64)).sum();
    assert_eq!(held, stats.instances);
    assert_eq!(store.read(|reg| reg.service_revision(&key("orders"))), last[&key("orders")]);
}
