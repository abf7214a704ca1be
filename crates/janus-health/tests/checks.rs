//! The checker against real sockets on loopback: a listening port stays
//! healthy, a closed one turns unhealthy after three failed probes and back
//! after three good ones, an HTTP check needs a 200, `none` is never probed,
//! and instances another node is responsible for are left alone. With a
//! recording fake prober: addresses the probe policy refuses are never
//! handed to the prober, and their instances turn unhealthy at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use janus_core::model::{ClusterSettings, HealthCheck, InstanceSpec, NamespaceSpec, ServiceSettings};
use janus_core::registry::HealthReport;
use janus_core::{
    ClusterName, Command, GroupName, InstanceKey, Mode, NamespaceId, RegistryConfig, RegistryStore, ServiceKey,
    ServiceName,
};
use janus_health::{HealthChecker, HealthConfig, HealthSink, ProbePolicy, Prober, SinkError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Applies verdicts straight to the registry, as Raft would on every node.
struct Apply(Arc<RegistryStore>);

impl HealthSink for Apply {
    fn report(&self, reports: Vec<HealthReport>) -> BoxFuture<'static, Result<(), SinkError>> {
        let store = self.0.clone();
        Box::pin(async move {
            store.write(|r, now| r.apply(Command::ReportHealth(reports), now)).map(|_| ()).map_err(SinkError::from)
        })
    }
}

fn service(name: &str) -> ServiceKey {
    ServiceKey::new(NamespaceId::new("pay").unwrap(), GroupName::default_group(), ServiceName::new(name).unwrap())
}

fn register(store: &RegistryStore, svc: &str, cluster: &str, port: u16) -> InstanceKey {
    register_at(store, svc, cluster, "127.0.0.1".parse().unwrap(), port)
}

fn register_at(store: &RegistryStore, svc: &str, cluster: &str, ip: IpAddr, port: u16) -> InstanceKey {
    let key = InstanceKey::new(ClusterName::new(cluster).unwrap(), ip, port);
    let mut spec = InstanceSpec::new(key.clone());
    spec.ephemeral = Some(false);
    store.write(|r, now| r.apply(Command::RegisterInstance { key: service(svc), spec }, now)).unwrap();
    key
}

fn healthy(store: &RegistryStore, svc: &str, instance: &InstanceKey) -> bool {
    store.read(|r| r.instance(&service(svc), instance).unwrap().instance.healthy)
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// An HTTP server answering `status` to everything.
async fn http_server(status: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 1024];
                let _ = stream.read(&mut buffer).await;
                let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

fn fast() -> HealthConfig {
    HealthConfig {
        interval: Duration::from_millis(60),
        timeout: Duration::from_millis(200),
        report_delay: Duration::from_millis(30),
        rescan: Duration::from_millis(50),
        ..HealthConfig::default()
    }
}

fn store() -> Arc<RegistryStore> {
    let store = Arc::new(RegistryStore::new(RegistryConfig::default(), 64));
    store.write(|r, now| {
        let ns = NamespaceSpec::new(NamespaceId::new("pay").unwrap(), None, None, Mode::Cp).unwrap();
        r.apply(Command::CreateNamespace(ns), now).unwrap();
        for name in ["tcp", "web"] {
            let settings = ServiceSettings::new(None, Default::default()).unwrap();
            r.apply(Command::CreateService { key: service(name), settings }, now).unwrap();
        }
    });
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_http_checks_flip_health_after_three_results() {
    let store = store();
    let listening = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = register(&store, "tcp", "DEFAULT", listening.local_addr().unwrap().port());
    let down = register(&store, "tcp", "DEFAULT", closed_port().await);
    let ok_port = http_server("200 OK").await;
    let failing_port = http_server("503 Service Unavailable").await;
    let set = |cluster: &str, check: HealthCheck| {
        let settings = ClusterSettings { health_check: check, metadata: Default::default() };
        let command =
            Command::SetCluster { key: service("web"), cluster: ClusterName::new(cluster).unwrap(), settings };
        store.write(|r, now| r.apply(command, now)).unwrap();
    };
    set("ok", HealthCheck::Http { path: "/health".to_owned(), port: None });
    set("failing", HealthCheck::Http { path: "/health".to_owned(), port: None });
    set("manual", HealthCheck::None);
    let web_ok = register(&store, "web", "ok", ok_port);
    let web_failing = register(&store, "web", "failing", failing_port);
    let manual = register(&store, "web", "manual", closed_port().await);

    let shutdown = CancellationToken::new();
    let (checker, _task) = HealthChecker::spawn(
        store.clone(),
        Arc::new(|_| true),
        Arc::new(Apply(store.clone())),
        fast(),
        shutdown.clone(),
    );
    until("the closed port and the 503 turn unhealthy", || {
        !healthy(&store, "tcp", &down) && !healthy(&store, "web", &web_failing)
    })
    .await;
    assert!(healthy(&store, "tcp", &up), "a listening port stays healthy");
    assert!(healthy(&store, "web", &web_ok), "a 200 stays healthy");
    assert!(healthy(&store, "web", &manual), "a cluster checked by none is never probed");
    assert_eq!(checker.stats().checked.load(Ordering::Relaxed), 4, "everything but the none cluster");
    assert!(checker.stats().probes.load(Ordering::Relaxed) >= 6);

    // The port starts listening: healthy again after three good probes.
    let revived = TcpListener::bind(("127.0.0.1", down.port)).await.unwrap();
    until("the revived port turns healthy", || healthy(&store, "tcp", &down)).await;
    drop(revived);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_another_node_checks_are_left_alone() {
    let store = store();
    let down = register(&store, "tcp", "DEFAULT", closed_port().await);
    let shutdown = CancellationToken::new();
    let (checker, _task) = HealthChecker::spawn(
        store.clone(),
        Arc::new(|_| false),
        Arc::new(Apply(store.clone())),
        fast(),
        shutdown.clone(),
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(healthy(&store, "tcp", &down));
    assert_eq!(checker.stats().probes.load(Ordering::Relaxed), 0);
    shutdown.cancel();
}

#[test]
fn health_by_hand_is_refused_while_a_cluster_is_checked() {
    let store = store();
    let instance = register(&store, "tcp", "DEFAULT", 9);
    let patch = janus_core::model::InstancePatch { healthy: Some(false), ..Default::default() };
    let command = Command::PatchInstance { key: service("tcp"), instance: instance.clone(), patch: patch.clone() };
    let refused = store.write(|r, now| r.apply(command, now)).unwrap_err();
    assert!(refused.to_string().contains("health-checked by tcp"), "{refused}");
    let settings = ClusterSettings { health_check: HealthCheck::None, metadata: Default::default() };
    let command = Command::SetCluster { key: service("tcp"), cluster: ClusterName::default_cluster(), settings };
    store.write(|r, now| r.apply(command, now)).unwrap();
    let command = Command::PatchInstance { key: service("tcp"), instance: instance.clone(), patch };
    store.write(|r, now| r.apply(command, now)).unwrap();
    assert!(!healthy(&store, "tcp", &instance));
}

/// Records every address it is handed; never connects, and every probe passes.
#[derive(Default)]
struct Recording(Mutex<Vec<SocketAddr>>);

impl Recording {
    fn seen(&self) -> Vec<SocketAddr> {
        self.0.lock().unwrap().clone()
    }
}

impl Prober for Recording {
    fn probe(&self, _check: &HealthCheck, addr: SocketAddr, _timeout: Duration) -> BoxFuture<'static, bool> {
        self.0.lock().unwrap().push(addr);
        Box::pin(async { true })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_addresses_are_never_probed_and_turn_unhealthy_at_once() {
    let store = store();
    let metadata = register_at(&store, "tcp", "DEFAULT", "169.254.169.254".parse().unwrap(), 80);
    let mapped = register_at(&store, "tcp", "DEFAULT", "::ffff:169.254.169.254".parse().unwrap(), 80);
    let outside = register_at(&store, "tcp", "DEFAULT", "10.0.0.1".parse().unwrap(), 8080);
    let local = register(&store, "tcp", "DEFAULT", 8080);
    for instance in [&metadata, &mapped, &outside, &local] {
        assert!(healthy(&store, "tcp", instance), "registered healthy");
    }

    // Loopback only, and the default deny-list.
    let policy = ProbePolicy::new(vec!["127.0.0.0/8".parse().unwrap()], ProbePolicy::default().deny().to_vec());
    // Thousands of failures would be needed to flip anything by probing.
    let config = HealthConfig { probe_policy: policy, fall: 10_000, ..fast() };
    let prober = Arc::new(Recording::default());
    let shutdown = CancellationToken::new();
    let (checker, _task) = HealthChecker::spawn_with_prober(
        store.clone(),
        Arc::new(|_| true),
        Arc::new(Apply(store.clone())),
        config,
        prober.clone(),
        shutdown.clone(),
    );
    until("the refused instances turn unhealthy and the allowed one is probed a few times", || {
        [&metadata, &mapped, &outside].iter().all(|instance| !healthy(&store, "tcp", instance))
            && prober.seen().len() >= 3
    })
    .await;
    // A few more rounds: nothing refused is ever probed or turns healthy.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let local_addr = SocketAddr::new(local.ip, local.port);
    let seen = prober.seen();
    assert!(seen.iter().all(|addr| *addr == local_addr), "only 127.0.0.1 is probed: {seen:?}");
    for instance in [&metadata, &mapped, &outside] {
        assert!(!healthy(&store, "tcp", instance), "{instance} stays unhealthy");
    }
    assert!(healthy(&store, "tcp", &local));

    let stats = checker.stats();
    assert_eq!(stats.checked.load(Ordering::Relaxed), 4);
    assert_eq!(stats.refused.load(Ordering::Relaxed), 3);
    let listed: Vec<(IpAddr, u16, String)> =
        stats.refused_targets().into_iter().map(|r| (r.ip, r.port, r.rule)).collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let rule = |ip: IpAddr| listed.iter().find(|(at, _, _)| *at == ip).map(|(_, _, rule)| rule.clone()).unwrap();
    assert_eq!(rule(metadata.ip), "deny-list network 169.254.0.0/16");
    assert_eq!(rule(mapped.ip), "deny-list network 169.254.0.0/16", "matched as its IPv4 address");
    assert_eq!(rule(outside.ip), "outside every allow-list network");
    assert!(stats.refused_targets().iter().all(|r| r.service == service("tcp").to_string() && r.cluster == "DEFAULT"));
    assert!(stats.flips.load(Ordering::Relaxed) >= 3, "a report each, without a streak of failures");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_policy_probes_private_addresses_but_not_the_metadata_service() {
    let store = store();
    let metadata = register_at(&store, "tcp", "DEFAULT", "169.254.169.254".parse().unwrap(), 80);
    let link_local = register_at(&store, "tcp", "DEFAULT", "fe80::1".parse().unwrap(), 80);
    let private = register_at(&store, "tcp", "DEFAULT", "10.0.0.1".parse().unwrap(), 8080);
    let prober = Arc::new(Recording::default());
    let shutdown = CancellationToken::new();
    let (checker, _task) = HealthChecker::spawn_with_prober(
        store.clone(),
        Arc::new(|_| true),
        Arc::new(Apply(store.clone())),
        fast(),
        prober.clone(),
        shutdown.clone(),
    );
    let private_addr = SocketAddr::new(private.ip, private.port);
    until("the private address is probed and the refused ones are unhealthy", || {
        prober.seen().contains(&private_addr)
            && !healthy(&store, "tcp", &metadata)
            && !healthy(&store, "tcp", &link_local)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = prober.seen();
    assert!(seen.iter().all(|addr| *addr == private_addr), "{seen:?}");
    assert!(healthy(&store, "tcp", &private));
    assert_eq!(checker.stats().refused.load(Ordering::Relaxed), 2);
    shutdown.cancel();
}
