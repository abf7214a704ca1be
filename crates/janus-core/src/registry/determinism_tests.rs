//! Raft apply is deterministic: random sequences of definition commands,
//! interleaved with ephemeral (AP) writes that differ from node to node, give
//! the same outcomes and the same replicated state on every node, on a replay
//! of the log on a fresh node, and on a fresh node that installs a snapshot
//! taken part-way and replays the rest.

use proptest::prelude::*;

use super::cp::{Command, CommandOutcome};
use super::*;
use crate::model::{ClusterSettings, HealthCheck, InstancePatch, InstanceSpec, Metadata};

const NAMESPACES: [(&str, Mode); 3] = [("public", Mode::Ap), ("team-x", Mode::Ap), ("pay", Mode::Cp)];

fn key(namespace: usize, service: usize) -> ServiceKey {
    ServiceKey::new(
        NamespaceId::new(NAMESPACES[namespace].0).unwrap(),
        GroupName::default_group(),
        ServiceName::new(&format!("svc-{service}")).unwrap(),
    )
}

fn instance(port: u16) -> InstanceKey {
    InstanceKey::new(ClusterName::default_cluster(), "127.0.0.1".parse().unwrap(), port)
}

/// Which nodes an AP write lands on before it would have been replicated.
#[derive(Debug, Clone, Copy)]
enum Nodes {
    A,
    B,
    Both,
}

#[derive(Debug, Clone)]
enum Step {
    /// A definition command, taken (checked) by node A or B.
    Propose { command: Command, taken_by_a: bool },
    /// An ephemeral registration.
    Register { service: ServiceKey, port: u16, nodes: Nodes },
    /// An ephemeral deregistration.
    Deregister { service: ServiceKey, port: u16, nodes: Nodes },
    /// Time passes and the empty-service sweep runs on both nodes.
    Sweep { millis: u64 },
}

fn command() -> impl Strategy<Value = Command> {
    let ns = 0..NAMESPACES.len();
    let svc = 0..3usize;
    let port = 1..4u16;
    prop_oneof![
        (1..NAMESPACES.len()).prop_map(|n| Command::CreateNamespace(
            NamespaceSpec::new(NamespaceId::new(NAMESPACES[n].0).unwrap(), None, None, NAMESPACES[n].1).unwrap()
        )),
        ns.clone().prop_map(|n| Command::DeleteNamespace { id: NamespaceId::new(NAMESPACES[n].0).unwrap() }),
        ns.clone().prop_map(|n| Command::UpdateNamespace {
            id: NamespaceId::new(NAMESPACES[n].0).unwrap(),
            name: None,
            description: Some(format!("d{n}")),
        }),
        (ns.clone(), any::<bool>()).prop_map(|(n, answered)| Command::SetNamespaceDns {
            id: NamespaceId::new(NAMESPACES[n].0).unwrap(),
            answered
        }),
        (ns.clone(), svc.clone(), 0..3u8).prop_map(|(n, s, t)| Command::CreateService {
            key: key(n, s),
            settings: ServiceSettings::new(Some(f64::from(t) / 10.0), Metadata::new()).unwrap(),
        }),
        (ns.clone(), svc.clone(), 0..3u8).prop_map(|(n, s, t)| Command::UpdateService {
            key: key(n, s),
            patch: ServicePatch { protect_threshold: Some(f64::from(t) / 4.0), metadata: None },
        }),
        (ns.clone(), svc.clone()).prop_map(|(n, s)| Command::DeleteService { key: key(n, s) }),
        (ns.clone(), svc.clone()).prop_map(|(n, s)| Command::SetCluster {
            key: key(n, s),
            cluster: ClusterName::default_cluster(),
            settings: ClusterSettings { health_check: HealthCheck::None, metadata: Metadata::new() },
        }),
        (ns.clone(), svc.clone(), port.clone()).prop_map(|(n, s, p)| {
            let mut spec = InstanceSpec::new(instance(p));
            spec.ephemeral = Some(false);
            Command::RegisterInstance { key: key(n, s), spec }
        }),
        (ns.clone(), svc.clone(), port.clone()).prop_map(|(n, s, p)| Command::PatchInstance {
            key: key(n, s),
            instance: instance(p),
            patch: InstancePatch { weight: Some(2.0), ..InstancePatch::default() },
        }),
        (ns, svc, port).prop_map(|(n, s, p)| Command::DeregisterInstance { key: key(n, s), instance: instance(p) }),
    ]
}

fn nodes() -> impl Strategy<Value = Nodes> {
    prop_oneof![Just(Nodes::A), Just(Nodes::B), Just(Nodes::Both)]
}

fn step() -> impl Strategy<Value = Step> {
    // Ephemeral writes go to the ap namespaces only (index 0 and 1).
    let ap_service = (0..2usize, 0..3usize).prop_map(|(n, s)| key(n, s));
    prop_oneof![
        4 => (command(), any::<bool>()).prop_map(|(command, taken_by_a)| Step::Propose { command, taken_by_a }),
        3 => (ap_service.clone(), 10..13u16, nodes()).prop_map(|(service, port, nodes)| Step::Register {
            service,
            port,
            nodes
        }),
        1 => (ap_service, 10..13u16, nodes()).prop_map(|(service, port, nodes)| Step::Deregister {
            service,
            port,
            nodes
        }),
        1 => (1_000..40_000u64).prop_map(|millis| Step::Sweep { millis }),
    ]
}

/// The outcome as the log's entry answered it. Revisions and counts are
/// local reads that ephemeral data changes (revisions are bumped by AP writes
/// too, counts include implied services and ephemeral instances): compare
/// the replicated part only.
fn shape(outcome: &Result<CommandOutcome, RegistryError>) -> String {
    match outcome {
        Ok(CommandOutcome::Namespace(info)) => format!("namespace {:?} dns {}", info.spec, info.dns),
        Ok(CommandOutcome::Service(info)) => format!("service {} {:?}", info.key, info.settings),
        Ok(CommandOutcome::Revision(_)) => "revision".to_owned(),
        Ok(CommandOutcome::Done) => "done".to_owned(),
        Ok(CommandOutcome::Auth(outcome)) => format!("auth {outcome:?}"),
        Err(error) => format!("refused: {error}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_node_and_every_replay_decide_alike(steps in proptest::collection::vec(step(), 1..60), cut in 0..60usize) {
        let mut a = Registry::new(RegistryConfig::default());
        let mut b = Registry::new(RegistryConfig::default());
        let mut now = Millis(0);
        // The Raft log: what was proposed, with its time and the outcome on node A.
        let mut log: Vec<(Command, Millis, String)> = Vec::new();
        // Node A's replicated state after each entry, for snapshots.
        let mut snapshots = vec![a.export_cp()];
        for step in steps {
            now = now.plus(10);
            match step {
                Step::Propose { command, taken_by_a } => {
                    let taker = if taken_by_a { &a } else { &b };
                    if taker.check_command(&command).is_err() {
                        continue; // refused before proposing: not in the log
                    }
                    let on_a = shape(&a.apply(command.clone(), now));
                    let on_b = shape(&b.apply(command.clone(), now));
                    prop_assert_eq!(&on_a, &on_b, "nodes decided {:?} differently", command);
                    log.push((command, now, on_a));
                    snapshots.push(a.export_cp());
                }
                Step::Register { service, port, nodes } => {
                    let spec = InstanceSpec::new(instance(port));
                    for node in targets(&mut a, &mut b, nodes) {
                        let _ = node.register_instance(&service, spec.clone(), now);
                    }
                }
                Step::Deregister { service, port, nodes } => {
                    for node in targets(&mut a, &mut b, nodes) {
                        let _ = node.deregister_instance(&service, &instance(port), now);
                    }
                }
                Step::Sweep { millis } => {
                    now = now.plus(millis);
                    a.sweep_empty_services(now);
                    b.sweep_empty_services(now);
                }
            }
            prop_assert_eq!(a.export_cp(), b.export_cp(), "the nodes' replicated states differ");
        }
        // A fresh node replays the whole log.
        let mut replay = Registry::new(RegistryConfig::default());
        for (command, at, outcome) in &log {
            prop_assert_eq!(&shape(&replay.apply(command.clone(), *at)), outcome, "replay of {:?}", command);
        }
        prop_assert_eq!(replay.export_cp(), a.export_cp());
        // A fresh node installs a snapshot taken part-way, then replays the rest.
        let cut = cut.min(log.len());
        let mut restored = Registry::new(RegistryConfig::default());
        restored.import_cp(snapshots[cut].clone());
        for (command, at, outcome) in &log[cut..] {
            prop_assert_eq!(&shape(&restored.apply(command.clone(), *at)), outcome, "replay after snapshot of {:?}", command);
        }
        prop_assert_eq!(restored.export_cp(), a.export_cp());
    }
}

fn targets<'a>(a: &'a mut Registry, b: &'a mut Registry, nodes: Nodes) -> Vec<&'a mut Registry> {
    match nodes {
        Nodes::A => vec![a],
        Nodes::B => vec![b],
        Nodes::Both => vec![a, b],
    }
}

#[test]
fn the_issue_transcript_keeps_the_namespace() {
    // Register in an ap namespace, try to delete it, "restart" (replay).
    let mut live = Registry::new(RegistryConfig::default());
    let id = NamespaceId::new("team-x").unwrap();
    let create = Command::CreateNamespace(NamespaceSpec::new(id.clone(), None, None, Mode::Ap).unwrap());
    let mut log = vec![create.clone()];
    live.apply(create, Millis(1)).unwrap();
    let web = ServiceKey::new(id.clone(), GroupName::default_group(), ServiceName::new("web").unwrap());
    live.register_instance(&web, InstanceSpec::new(instance(80)), Millis(2)).unwrap();
    let delete = Command::DeleteNamespace { id: id.clone() };
    assert!(matches!(live.check_command(&delete), Err(RegistryError::NotEmpty { .. })));
    let mut restarted = Registry::new(RegistryConfig::default());
    for command in log.drain(..) {
        restarted.apply(command, Millis(1)).unwrap();
    }
    assert!(restarted.namespace(&id).is_ok());
}
