use rand::SeedableRng;
use rand::rngs::StdRng;

use super::cp::Command;
use super::*;
use crate::model::{BEAT_INTERVAL_KEY, BEAT_TIMEOUT_KEY, DELETE_TIMEOUT_KEY, Metadata};
use crate::model::{InstancePatch, InstanceSpec};

pub(super) fn key(service: &str) -> ServiceKey {
    ServiceKey::new(NamespaceId::public(), GroupName::default_group(), ServiceName::new(service).unwrap())
}

pub(super) fn inst(port: u16) -> InstanceKey {
    InstanceKey::new(ClusterName::default_cluster(), "10.0.0.1".parse().unwrap(), port)
}

pub(super) fn no_preservation() -> RegistryConfig {
    RegistryConfig {
        preservation: PreservationConfig { enabled: false, ..PreservationConfig::default() },
        ..RegistryConfig::default()
    }
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

/// Advances the registry to `to`, expiring along the way every 100 ms.
fn run_until(reg: &mut Registry, from: Millis, to: Millis) -> ExpiryReport {
    let mut total = ExpiryReport::default();
    let mut rng = rng();
    let mut t = from.0;
    while t <= to.0 {
        let r = reg.expire(Millis(t), &mut rng);
        total.deleted += r.deleted;
        total.marked_unhealthy += r.marked_unhealthy;
        total.deferred += r.deferred;
        total.preservation_active |= r.preservation_active;
        t += 100;
    }
    total
}

fn healthy(reg: &Registry, service: &str, port: u16) -> Option<bool> {
    reg.instance(&key(service), &inst(port)).ok().map(|i| i.instance.healthy)
}

#[test]
fn register_bumps_revisions_and_reregistering_the_same_does_not() {
    let mut reg = Registry::new(RegistryConfig::default());
    let r1 = reg.register_instance(&key("orders"), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    assert!(r1 > 0);
    let changes = reg.take_changes();
    let kinds: Vec<_> = changes.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [ChangeKind::ServiceCreated, ChangeKind::InstanceRegistered]);
    assert_eq!(reg.namespace_revision(&NamespaceId::public()), r1);

    let again = reg.register_instance(&key("orders"), InstanceSpec::new(inst(1)), Millis(10)).unwrap();
    assert_eq!(again, r1, "an identical registration changes nothing");
    assert!(reg.take_changes().is_empty());

    let mut heavier = InstanceSpec::new(inst(1));
    heavier.weight = 5.0;
    let r2 = reg.register_instance(&key("orders"), heavier, Millis(20)).unwrap();
    assert!(r2 > r1);
    let snap = reg.snapshot(&key("orders")).unwrap();
    assert_eq!(snap.revision, r2);
    assert_eq!(snap.instances.len(), 1);
    assert_eq!(snap.instances[0].instance.weight, 5.0);
}

#[test]
fn mode_mismatch_and_unknown_namespace_are_refused() {
    let mut reg = Registry::new(RegistryConfig::default());
    let mut persistent = InstanceSpec::new(inst(1));
    persistent.ephemeral = Some(false);
    let err = reg.register_instance(&key("orders"), persistent, Millis(0)).unwrap_err();
    assert!(matches!(err, RegistryError::ModeMismatch { mode: Mode::Ap, .. }), "{err:?}");
    assert!(err.to_string().contains("namespace 'public' is ap"), "{err}");

    let nowhere = ServiceKey::new(
        NamespaceId::new("nowhere").unwrap(),
        GroupName::default_group(),
        ServiceName::new("s").unwrap(),
    );
    let err = reg.register_instance(&nowhere, InstanceSpec::new(inst(1)), Millis(0)).unwrap_err();
    assert_eq!(err, RegistryError::NamespaceNotFound("nowhere".to_owned()));
    assert!(reg.snapshot(&nowhere).is_err());
}

#[test]
fn cp_namespaces_hold_persistent_instances_without_leases() {
    let mut reg = Registry::new(RegistryConfig::default());
    let id = NamespaceId::new("payments").unwrap();
    reg.create_namespace(NamespaceSpec::new(id.clone(), None, None, Mode::Cp).unwrap()).unwrap();
    let key = ServiceKey::new(id, GroupName::default_group(), ServiceName::new("ledger").unwrap());
    reg.register_instance(&key, InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    assert!(matches!(reg.heartbeat(&key, &inst(1), Millis(1)), Err(RegistryError::ModeMismatch { .. })));
    let report = run_until(&mut reg, Millis(0), Millis(60_000));
    assert_eq!(report.deleted, 0);
    assert!(!reg.instance(&key, &inst(1)).unwrap().instance.ephemeral);
}

#[test]
fn namespaces_and_services_refuse_deletion_while_not_empty() {
    let mut reg = Registry::new(RegistryConfig::default());
    assert!(matches!(reg.delete_namespace(&NamespaceId::public()), Err(RegistryError::Forbidden(_))));
    let id = NamespaceId::new("team-a").unwrap();
    reg.create_namespace(NamespaceSpec::new(id.clone(), None, None, Mode::Ap).unwrap()).unwrap();
    assert!(matches!(
        reg.create_namespace(NamespaceSpec::new(id.clone(), None, None, Mode::Cp).unwrap()),
        Err(RegistryError::AlreadyExists { .. })
    ));
    let key = ServiceKey::new(id.clone(), GroupName::default_group(), ServiceName::new("web").unwrap());
    reg.register_instance(&key, InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    // Ephemeral data refuses before proposing; apply itself looks at definitions only.
    let delete_namespace = Command::DeleteNamespace { id: id.clone() };
    let delete_service = Command::DeleteService { key: key.clone() };
    assert!(matches!(reg.check_command(&delete_namespace), Err(RegistryError::NotEmpty { .. })));
    assert!(matches!(reg.check_command(&delete_service), Err(RegistryError::NotEmpty { .. })));
    reg.deregister_instance(&key, &inst(1), Millis(0)).unwrap();
    reg.check_command(&delete_service).unwrap();
    reg.delete_service(&key).unwrap();
    reg.check_command(&delete_namespace).unwrap();
    reg.delete_namespace(&id).unwrap();
    assert!(reg.namespace(&id).is_err());
    // A definition refuses in apply too: that is replicated state.
    let cp = NamespaceId::new("team-b").unwrap();
    reg.create_namespace(NamespaceSpec::new(cp.clone(), None, None, Mode::Ap).unwrap()).unwrap();
    let defined = ServiceKey::new(cp.clone(), GroupName::default_group(), ServiceName::new("api").unwrap());
    reg.create_service(&defined, ServiceSettings::default()).unwrap();
    assert!(matches!(reg.delete_namespace(&cp), Err(RegistryError::NotEmpty { .. })));
}

#[test]
fn services_page_in_order() {
    let mut reg = Registry::new(RegistryConfig::default());
    for name in ["c", "a", "b", "d"] {
        reg.create_service(&key(name), ServiceSettings::default()).unwrap();
    }
    let (total, page) = reg.services(&NamespaceId::public(), None, None, 2, 3).unwrap();
    assert_eq!(total, 4);
    assert_eq!(page.iter().map(|s| s.key.service.to_string()).collect::<Vec<_>>(), ["d"]);
    let other = GroupName::new("other").unwrap();
    let (total, page) = reg.services(&NamespaceId::public(), Some(&other), None, 1, 10).unwrap();
    assert_eq!((total, page.len()), (0, 0));
}

#[test]
fn unhealthy_at_15s_and_removed_at_30s_by_default() {
    let mut reg = Registry::new(no_preservation());
    reg.register_instance(&key("orders"), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    run_until(&mut reg, Millis(0), Millis(14_900));
    assert_eq!(healthy(&reg, "orders", 1), Some(true));
    run_until(&mut reg, Millis(15_000), Millis(15_000));
    assert_eq!(healthy(&reg, "orders", 1), Some(false));
    run_until(&mut reg, Millis(15_100), Millis(29_900));
    assert_eq!(healthy(&reg, "orders", 1), Some(false));
    let report = run_until(&mut reg, Millis(30_000), Millis(30_000));
    assert_eq!(report.deleted, 1);
    assert_eq!(healthy(&reg, "orders", 1), None);
    let kinds: Vec<_> = reg.take_changes().iter().map(|c| c.kind).collect();
    assert!(kinds.ends_with(&[ChangeKind::InstanceHealthChanged, ChangeKind::InstanceExpired]), "{kinds:?}");
}

#[test]
fn beats_keep_an_instance_and_bring_it_back_to_health() {
    let mut reg = Registry::new(no_preservation());
    reg.register_instance(&key("orders"), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    for t in (5_000..=60_000).step_by(5_000) {
        run_until(&mut reg, Millis(t - 4_900), Millis(t));
        reg.heartbeat(&key("orders"), &inst(1), Millis(t)).unwrap();
    }
    assert_eq!(healthy(&reg, "orders", 1), Some(true));
    run_until(&mut reg, Millis(60_100), Millis(80_000));
    assert_eq!(healthy(&reg, "orders", 1), Some(false));
    let timing = reg.heartbeat(&key("orders"), &inst(1), Millis(80_000)).unwrap();
    assert_eq!(timing.interval_ms, 5_000);
    assert_eq!(healthy(&reg, "orders", 1), Some(true));
    run_until(&mut reg, Millis(80_100), Millis(94_900));
    assert_eq!(healthy(&reg, "orders", 1), Some(true));
    run_until(&mut reg, Millis(95_000), Millis(95_000));
    assert_eq!(healthy(&reg, "orders", 1), Some(false));
}

#[test]
fn metadata_overrides_are_honoured() {
    let mut reg = Registry::new(no_preservation());
    let mut spec = InstanceSpec::new(inst(1));
    spec.metadata = Metadata::from([
        (BEAT_INTERVAL_KEY.to_owned(), "1000".to_owned()),
        (BEAT_TIMEOUT_KEY.to_owned(), "3000".to_owned()),
        (DELETE_TIMEOUT_KEY.to_owned(), "60000".to_owned()),
    ]);
    reg.register_instance(&key("orders"), spec, Millis(0)).unwrap();
    run_until(&mut reg, Millis(0), Millis(2_900));
    assert_eq!(healthy(&reg, "orders", 1), Some(true));
    run_until(&mut reg, Millis(3_000), Millis(3_000));
    assert_eq!(healthy(&reg, "orders", 1), Some(false));
    // A beat long after: healthy again, and unhealthy 3 s later, not at the old 60 s entry.
    run_until(&mut reg, Millis(3_100), Millis(20_000));
    assert_eq!(reg.heartbeat(&key("orders"), &inst(1), Millis(20_000)).unwrap().interval_ms, 1_000);
    run_until(&mut reg, Millis(20_100), Millis(23_000));
    assert_eq!(healthy(&reg, "orders", 1), Some(false));
    run_until(&mut reg, Millis(23_100), Millis(79_900));
    assert_eq!(healthy(&reg, "orders", 1), Some(false));
    run_until(&mut reg, Millis(80_000), Millis(80_000));
    assert_eq!(healthy(&reg, "orders", 1), None);
}

#[test]
fn bad_overrides_are_refused() {
    let mut reg = Registry::new(no_preservation());
    let mut spec = InstanceSpec::new(inst(1));
    spec.metadata = Metadata::from([(DELETE_TIMEOUT_KEY.to_owned(), "-5".to_owned())]);
    let err = reg.register_instance(&key("orders"), spec, Millis(0)).unwrap_err();
    assert!(err.to_string().contains(DELETE_TIMEOUT_KEY), "{err}");
}

fn register_many(reg: &mut Registry, n: u16) {
    for port in 1..=n {
        reg.register_instance(&key("orders"), InstanceSpec::new(inst(port)), Millis(0)).unwrap();
    }
}

/// Beats every instance whose port is in `beating` every 5 s over `[from, to]`, expiring as it goes.
fn beat_range(reg: &mut Registry, beating: std::ops::RangeInclusive<u16>, from: u64, to: u64) -> ExpiryReport {
    let mut total = ExpiryReport::default();
    let mut t = from;
    while t <= to {
        let r = run_until(reg, Millis(t), Millis(t + 4_900));
        total.deleted += r.deleted;
        total.deferred += r.deferred;
        total.preservation_active |= r.preservation_active;
        t += 5_000;
        for port in beating.clone() {
            reg.heartbeat(&key("orders"), &inst(port), Millis(t)).unwrap();
        }
    }
    total
}

#[test]
fn one_silent_instance_among_many_is_removed() {
    let mut reg = Registry::new(RegistryConfig::default());
    register_many(&mut reg, 40);
    beat_range(&mut reg, 1..=40, 0, 120_000);
    // Port 40 goes silent; the rest keep beating: 97.5 % of renewals arrive.
    let report = beat_range(&mut reg, 1..=39, 125_000, 160_000);
    assert!(!report.preservation_active);
    assert_eq!(report.deleted, 1);
    assert_eq!(healthy(&reg, "orders", 40), None);
}

#[test]
fn self_preservation_stops_deletion_when_renewals_drop() {
    let mut reg = Registry::new(RegistryConfig::default());
    register_many(&mut reg, 40);
    beat_range(&mut reg, 1..=40, 0, 120_000);
    // Half go silent: renewals fall below 85 % of expected.
    let report = beat_range(&mut reg, 1..=20, 125_000, 240_000);
    assert!(report.preservation_active);
    assert_eq!(report.deleted, 0, "no deletion while preserving");
    assert!(report.deferred > 0);
    assert_eq!(reg.stats(Millis(240_000)).instances, 40);
    assert_eq!(healthy(&reg, "orders", 30), Some(false), "still marked unhealthy");
    assert!(reg.stats(Millis(240_000)).self_preservation);
    // They come back: preservation ends once renewals recover.
    let report = beat_range(&mut reg, 1..=40, 245_000, 320_000);
    assert_eq!(report.deleted, 0);
    assert!(!reg.stats(Millis(320_000)).self_preservation);
    assert_eq!(healthy(&reg, "orders", 30), Some(true));
}

#[test]
fn one_window_deletes_at_most_fifteen_percent() {
    // A strict cap (no small-deployment exemption), preservation off.
    let mut reg = Registry::new(RegistryConfig {
        preservation: PreservationConfig { enabled: false, min_expected_per_min: 0, ..PreservationConfig::default() },
        ..RegistryConfig::default()
    });
    register_many(&mut reg, 20);
    let mut rng = rng();
    let report = reg.expire(Millis(30_000), &mut rng);
    assert_eq!(report.deleted, 3, "20 - floor(20 * 0.85)");
    assert_eq!(report.deferred, 17);
    assert_eq!(reg.stats(Millis(30_000)).instances, 17);
    // The retries of the same window delete nothing more.
    let mut t = 35_000;
    while t < 90_000 {
        let report = reg.expire(Millis(t), &mut rng);
        assert_eq!((report.deleted, report.deferred), (0, 17), "at {t}");
        t += 5_000;
    }
    // The next window: 15 % of the 17 left.
    let report = reg.expire(Millis(90_000), &mut rng);
    assert_eq!(report.deleted, 3);
    let mut left = reg.stats(Millis(90_000)).instances;
    while left > 0 && t < 1_000_000 {
        reg.expire(Millis(t), &mut rng);
        left = reg.stats(Millis(t)).instances;
        t += 5_000;
    }
    assert_eq!(left, 0);
    assert_eq!(reg.stats(Millis(t)).leases, 0);
}

#[test]
fn deregistration_drops_the_lease_and_its_budget() {
    let mut reg = Registry::new(RegistryConfig::default());
    reg.register_instance(&key("orders"), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    assert_eq!(reg.stats(Millis(0)).expected_renewals_per_min, 12);
    reg.deregister_instance(&key("orders"), &inst(1), Millis(0)).unwrap();
    let stats = reg.stats(Millis(0));
    assert_eq!((stats.instances, stats.leases, stats.expected_renewals_per_min), (0, 0, 0));
    assert_eq!(reg.next_deadline(), None);
    assert!(reg.deregister_instance(&key("orders"), &inst(1), Millis(0)).unwrap_err().is_not_found());
}

#[test]
fn patch_merges_metadata_and_keeps_the_lease_clock() {
    let mut reg = Registry::new(no_preservation());
    reg.register_instance(&key("orders"), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
    let patch = InstancePatch {
        weight: Some(3.0),
        metadata: Some(Metadata::from([("zone".to_owned(), "a".to_owned())])),
        ..InstancePatch::default()
    };
    reg.patch_instance(&key("orders"), &inst(1), patch, Millis(10_000)).unwrap();
    let got = reg.instance(&key("orders"), &inst(1)).unwrap().instance;
    assert_eq!((got.weight, got.metadata.get("zone").map(String::as_str)), (3.0, Some("a")));
    run_until(&mut reg, Millis(0), Millis(15_000));
    assert_eq!(healthy(&reg, "orders", 1), Some(false), "a patch is not a heartbeat");
}

#[test]
fn services_resolve_exactly_or_ignoring_case() {
    let mut reg = Registry::new(RegistryConfig::default());
    reg.create_service(&key("OrderService"), ServiceSettings::default()).unwrap();
    assert_eq!(reg.resolve_service("public", "DEFAULT_GROUP", "OrderService"), Some(key("OrderService")));
    assert_eq!(reg.resolve_service("PUBLIC", "default_group", "orderservice"), Some(key("OrderService")));
    assert_eq!(reg.resolve_service("public", "DEFAULT_GROUP", "nobody"), None);
    assert_eq!(reg.resolve_service("public", "DEFAULT_GROUP", "bad name"), None);
    reg.delete_service(&key("OrderService")).unwrap();
    assert_eq!(reg.resolve_service("public", "default_group", "orderservice"), None);
}

mod replicated {
    use super::*;
    use crate::registry::cp::{Command, CommandOutcome, CpState};

    fn ns(id: &str) -> NamespaceId {
        NamespaceId::new(id).unwrap()
    }

    fn in_ns(namespace: &str, service: &str) -> ServiceKey {
        ServiceKey::new(ns(namespace), GroupName::default_group(), ServiceName::new(service).unwrap())
    }

    fn persistent(port: u16) -> InstanceSpec {
        let mut spec = InstanceSpec::new(inst(port));
        spec.ephemeral = Some(false);
        spec.metadata = Metadata::from([("k".to_owned(), port.to_string())]);
        spec
    }

    fn commands() -> Vec<Command> {
        vec![
            Command::CreateNamespace(
                NamespaceSpec::new(ns("pay"), None, Some("payments".to_owned()), Mode::Cp).unwrap(),
            ),
            Command::CreateService {
                key: in_ns("pay", "Ledger"),
                settings: ServiceSettings::new(Some(0.4), Metadata::new()).unwrap(),
            },
            Command::RegisterInstance { key: in_ns("pay", "Ledger"), spec: persistent(1) },
            Command::RegisterInstance { key: in_ns("pay", "Ledger"), spec: persistent(2) },
            // Health by hand needs a cluster that is not checked.
            Command::SetCluster {
                key: in_ns("pay", "Ledger"),
                cluster: ClusterName::default_cluster(),
                settings: crate::model::ClusterSettings {
                    health_check: crate::model::HealthCheck::None,
                    metadata: Metadata::new(),
                },
            },
            Command::ReportHealth(vec![crate::registry::HealthReport {
                service: in_ns("pay", "Ledger"),
                instance: inst(1),
                healthy: false,
            }]),
            Command::PatchInstance {
                key: in_ns("pay", "Ledger"),
                instance: inst(2),
                patch: InstancePatch { healthy: Some(false), ..InstancePatch::default() },
            },
            Command::CreateService { key: in_ns("public", "defined"), settings: ServiceSettings::default() },
            Command::UpdateNamespace { id: ns("pay"), name: Some("Payments".to_owned()), description: None },
        ]
    }

    #[test]
    fn apply_matches_the_direct_calls_and_refusals_are_outcomes_too() {
        let mut replicated = Registry::new(RegistryConfig::default());
        for command in commands() {
            replicated.apply(command, Millis(5)).unwrap();
        }
        let mut direct = Registry::new(RegistryConfig::default());
        direct
            .create_namespace(NamespaceSpec::new(ns("pay"), None, Some("payments".to_owned()), Mode::Cp).unwrap())
            .unwrap();
        direct
            .create_service(&in_ns("pay", "Ledger"), ServiceSettings::new(Some(0.4), Metadata::new()).unwrap())
            .unwrap();
        direct.register_instance(&in_ns("pay", "Ledger"), persistent(1), Millis(5)).unwrap();
        direct.register_instance(&in_ns("pay", "Ledger"), persistent(2), Millis(5)).unwrap();
        let unchecked =
            crate::model::ClusterSettings { health_check: crate::model::HealthCheck::None, metadata: Metadata::new() };
        direct.set_cluster(&in_ns("pay", "Ledger"), &ClusterName::default_cluster(), unchecked).unwrap();
        let report =
            crate::registry::HealthReport { service: in_ns("pay", "Ledger"), instance: inst(1), healthy: false };
        assert_eq!(direct.report_health(&[report]), 1);
        let sick = InstancePatch { healthy: Some(false), ..InstancePatch::default() };
        direct.patch_instance(&in_ns("pay", "Ledger"), &inst(2), sick, Millis(5)).unwrap();
        direct.create_service(&in_ns("public", "defined"), ServiceSettings::default()).unwrap();
        direct.update_namespace(&ns("pay"), Some("Payments".to_owned()), None).unwrap();
        assert_eq!(replicated.export_cp(), direct.export_cp());
        assert_eq!(replicated.revision(), direct.revision());

        let again = Command::CreateNamespace(NamespaceSpec::new(ns("pay"), None, None, Mode::Ap).unwrap());
        assert!(matches!(replicated.apply(again, Millis(6)), Err(RegistryError::AlreadyExists { .. })));
        let gone =
            replicated.apply(Command::DeregisterInstance { key: in_ns("pay", "Ledger"), instance: inst(1) }, Millis(7));
        assert!(matches!(gone, Ok(CommandOutcome::Revision(_))));
    }

    #[test]
    fn commands_round_trip_through_serde_and_names_are_validated_again() {
        let http_check = Command::SetCluster {
            key: in_ns("pay", "Ledger"),
            cluster: ClusterName::new("web").unwrap(),
            settings: crate::model::ClusterSettings {
                health_check: crate::model::HealthCheck::Http { path: "/health".to_owned(), port: Some(81) },
                metadata: Metadata::new(),
            },
        };
        for command in commands().into_iter().chain([http_check]) {
            let json = serde_json::to_string(&command).unwrap();
            let back: Command = serde_json::from_str(&json).unwrap();
            assert_eq!(back, command);
            // The Raft log stores commands with postcard, which is not self-describing.
            let bytes = postcard::to_stdvec(&command).unwrap();
            assert_eq!(postcard::from_bytes::<Command>(&bytes).unwrap(), command);
        }
        let forged = r#"{"DeleteNamespace":{"id":"bad id!"}}"#;
        assert!(serde_json::from_str::<Command>(forged).is_err(), "a name that fails validation does not deserialize");
    }

    #[test]
    fn a_snapshot_rebuilds_every_index() {
        let mut leader = Registry::new(RegistryConfig::default());
        for command in commands() {
            leader.apply(command, Millis(5)).unwrap();
        }
        // Snapshot files are postcard too.
        let state = leader.export_cp();
        assert_eq!(postcard::from_bytes::<CpState>(&postcard::to_stdvec(&state).unwrap()).unwrap(), state);
        // Local ephemeral data is not part of the snapshot.
        leader.register_instance(&key("implicit"), InstanceSpec::new(inst(9)), Millis(5)).unwrap();
        let state = leader.export_cp();
        assert_eq!(state.namespaces.len(), 2);
        assert_eq!(state.services.len(), 2, "defined services only: pay/Ledger and public/defined");
        assert_eq!(state.instances.len(), 2, "persistent instances only");
        let json = serde_json::to_string(&state).unwrap();

        let mut follower = Registry::new(RegistryConfig::default());
        follower.import_cp(serde_json::from_str::<CpState>(&json).unwrap());
        assert_eq!(follower.export_cp(), state);
        let ledger = in_ns("pay", "Ledger");
        assert_eq!(follower.snapshot(&ledger).unwrap().instances.len(), 2);
        assert!(!follower.instance(&ledger, &inst(2)).unwrap().instance.healthy);
        assert_eq!(follower.service(&ledger).unwrap().settings.protect_threshold, 0.4);
        assert_eq!(
            follower.resolve_service("PAY", "default_group", "ledger"),
            Some(ledger.clone()),
            "the folded index too"
        );
        assert_eq!(follower.services(&ns("pay"), None, None, 1, 10).unwrap().0, 1);
        assert_eq!(follower.namespace(&ns("pay")).unwrap().spec.name, "Payments");
        assert!(follower.snapshot(&key("implicit")).unwrap().instances.is_empty());
    }

    #[test]
    fn importing_keeps_local_ephemeral_instances_and_drops_stale_replicated_data() {
        let mut leader = Registry::new(RegistryConfig::default());
        for command in commands() {
            leader.apply(command, Millis(5)).unwrap();
        }
        let state = leader.export_cp();

        let mut follower = Registry::new(RegistryConfig::default());
        follower.register_instance(&key("web"), InstanceSpec::new(inst(1)), Millis(0)).unwrap();
        follower.create_namespace(NamespaceSpec::new(ns("old"), None, None, Mode::Cp).unwrap()).unwrap();
        follower.register_instance(&in_ns("old", "x"), persistent(3), Millis(0)).unwrap();
        follower.create_namespace(NamespaceSpec::new(ns("pay"), None, None, Mode::Cp).unwrap()).unwrap();
        follower.register_instance(&in_ns("pay", "Ledger"), persistent(7), Millis(0)).unwrap();
        follower.import_cp(state.clone());

        assert_eq!(follower.export_cp(), state);
        assert!(follower.namespace(&ns("old")).is_err(), "a namespace the leader deleted is gone");
        assert!(
            follower.instance(&in_ns("pay", "Ledger"), &inst(7)).is_err(),
            "a persistent instance the leader lacks is gone"
        );
        assert_eq!(healthy(&follower, "web", 1), Some(true), "local ephemeral instances stay");
        assert!(follower.next_deadline().is_some(), "and keep their lease");
    }
}

/// One expiry sweep of [`spread_deaths`]: when, what it did, and the leases left after it.
struct Sweep {
    at: u64,
    report: ExpiryReport,
    leases_after: usize,
}

/// 1,000 instances registered one every 60 ms over the first minute; the even
/// ports beat every 5 s, the odd ones never renew, so 500 delete deadlines fall
/// evenly over 30–90 s. Expiry sweeps every 250 ms (the reaper's shortest gap)
/// for ten minutes.
fn spread_deaths(preservation: PreservationConfig) -> (Registry, Vec<Sweep>) {
    let mut reg = Registry::new(RegistryConfig { preservation, ..RegistryConfig::default() });
    let mut rng = rng();
    let mut sweeps = Vec::new();
    let mut registered = 0u16;
    for t in (0..=600_000u64).step_by(10) {
        if t % 60 == 0 && registered < 1_000 {
            registered += 1;
            reg.register_instance(&key("orders"), InstanceSpec::new(inst(registered)), Millis(t)).unwrap();
        }
        if t % 5_000 == 0 {
            for port in (2..=registered).step_by(2) {
                reg.heartbeat(&key("orders"), &inst(port), Millis(t)).unwrap();
            }
        }
        if t % 250 == 0 {
            let report = reg.expire(Millis(t), &mut rng);
            sweeps.push(Sweep { at: t, report, leases_after: reg.stats(Millis(t)).leases as usize });
        }
    }
    (reg, sweeps)
}

/// Checks every 60 s window `(t - 60 s, t]` ending at a sweep: at most 150
/// deletions (15 % of 1,000), and at most the cap of the leases held when the
/// window started plus those registered during it. Returns the most any
/// window deleted.
fn assert_windows_capped(sweeps: &[Sweep]) -> usize {
    let cap = |n: usize| Preservation::new(PreservationConfig::default()).eviction_cap(n);
    // Registrations up to and including `t`: one every 60 ms from 0, 1,000 in all.
    let registered = |t: u64| ((t / 60 + 1) as usize).min(1_000);
    let mut most = 0;
    for (end, sweep) in sweeps.iter().enumerate() {
        let start = sweep.at.checked_sub(60_000);
        let first = sweeps.partition_point(|s| start.is_some_and(|a| s.at <= a));
        let deleted: usize = sweeps[first..=end].iter().map(|s| s.report.deleted).sum();
        let (held, joined) = match start {
            Some(a) => (sweeps[first - 1].leases_after, registered(sweep.at) - registered(a)),
            None => (0, registered(sweep.at)),
        };
        assert!(deleted <= 150, "{deleted} deleted in the 60 s up to {} ms", sweep.at);
        assert!(
            deleted <= cap(held + joined),
            "{deleted} deleted in the 60 s up to {} ms: {held} leases at its start, {joined} registered since",
            sweep.at
        );
        most = most.max(deleted);
    }
    most
}

fn assert_only_the_silent_are_gone(reg: &Registry, sweeps: &[Sweep]) {
    let stats = reg.stats(Millis(600_000));
    assert_eq!((stats.instances, stats.leases), (500, 500), "every silent instance deleted in the end");
    for port in 1..=1_000u16 {
        assert_eq!(healthy(reg, "orders", port), (port % 2 == 0).then_some(true), "port {port}");
    }
    assert!(sweeps.iter().map(|s| s.report.deferred).sum::<usize>() > 0, "the cap deferred deletions");
    let last = sweeps.iter().rev().find(|s| s.report.deleted > 0).map_or(0, |s| s.at);
    assert!(last > 150_000, "the deletions took several windows (last at {last} ms)");
}

#[test]
fn spread_deadlines_cannot_outrun_the_cap_with_preservation_disabled() {
    // Preservation off does not lift the cap (nor does it in Eureka).
    let (reg, sweeps) = spread_deaths(PreservationConfig { enabled: false, ..PreservationConfig::default() });
    assert_eq!(assert_windows_capped(&sweeps), 150, "the cap is reached, not just respected");
    assert_only_the_silent_are_gone(&reg, &sweeps);
}

#[test]
fn spread_deadlines_cannot_outrun_the_cap_with_preservation_enabled_but_not_engaged() {
    // Half the renewals still arrive: above a 0.4 threshold, preservation stays off.
    let (reg, sweeps) = spread_deaths(PreservationConfig { renewal_threshold: 0.4, ..PreservationConfig::default() });
    assert!(sweeps.iter().all(|s| !s.report.preservation_active));
    assert_eq!(assert_windows_capped(&sweeps), 150);
    assert_only_the_silent_are_gone(&reg, &sweeps);
}

#[test]
fn a_small_deployment_loses_all_its_dead_at_30s() {
    // 19 instances expect 228 renewals a minute, below the 240 minimum: no cap.
    let mut reg = Registry::new(RegistryConfig::default());
    register_many(&mut reg, 19);
    let report = beat_range(&mut reg, 1..=15, 0, 25_000);
    assert_eq!(report.deleted, 0);
    // Ports 16 to 19 fell silent at 0 s: all four go at 30 s, though 15 % of 19 is 3.
    let report = run_until(&mut reg, Millis(30_000), Millis(30_000));
    assert_eq!((report.deleted, report.deferred), (4, 0));
    assert!(!report.preservation_active);
    assert_eq!(reg.stats(Millis(30_000)).instances, 15);
}

#[test]
fn reads_show_when_the_lease_started_and_was_last_renewed() {
    let mut reg = Registry::new(no_preservation());
    reg.register_instance(&key("orders"), InstanceSpec::new(inst(1)), Millis(1_000)).unwrap();
    reg.heartbeat(&key("orders"), &inst(1), Millis(4_000)).unwrap();
    let read = reg.instance(&key("orders"), &inst(1)).unwrap();
    assert_eq!(read.lease, Some(LeaseTimes { started: Millis(1_000), last_renew: Millis(4_000) }));
    let snapshot = reg.snapshot(&key("orders")).unwrap();
    assert_eq!(snapshot.instances[0].lease, read.lease);
}
