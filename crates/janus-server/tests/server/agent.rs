//! `janus agent` against a running node over real sockets: the app is
//! registered only while its check passes, deregistered when it dies and
//! when the agent stops; the proxy reaches only registered instances,
//! retries on another one and ejects one that keeps failing. And the SDK's
//! kept registration it is built on, against the same node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use janus_agent::config::{AgentConfig, AppConfig, CheckConfig, DnsConfig, ProxyConfig};
use janus_agent::{Agent, proxy::INSTANCE_HEADER};
use janus_client::{Client, ListOptions, Method, Options, Registration, Request, ServiceRef, registration};
use janus_server::{RunningServer, ServerConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::LOOPBACK_ONLY;

struct Node {
    server: RunningServer,
    shutdown: CancellationToken,
    _data: tempfile::TempDir,
}

async fn node() -> Node {
    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::default();
    config.http.addr = ([127, 0, 0, 1], 0).into();
    config.dns.enabled = false;
    config.grpc.enabled = false;
    config.node.data_dir = data.path().to_owned();
    config.health.probe_allow = vec![LOOPBACK_ONLY.to_owned()];
    let shutdown = CancellationToken::new();
    let server = janus_server::start(config, shutdown.clone()).await.unwrap();
    Node { server, shutdown, _data: data }
}

impl Node {
    fn client(&self) -> Client {
        Client::new([self.server.http_addr.to_string()], Options::default()).unwrap()
    }

    /// The ports of the service's instances, sorted.
    async fn ports(&self, service: &str) -> Vec<u16> {
        let list = self.client().list_instances(&ServiceRef::new("public", service), &ListOptions::default()).await;
        let mut ports: Vec<u16> = list.map(|l| l.instances.iter().map(|i| i.port).collect()).unwrap_or_default();
        ports.sort_unstable();
        ports
    }

    async fn wait_for_ports(&self, service: &str, expected: &[u16]) {
        for _ in 0..100 {
            if self.ports(service).await == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{service} has instances {:?}, expected {expected:?}", self.ports(service).await);
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.server.wait().await.unwrap();
    }
}

/// A local app: `/health` passes while `healthy`, every other path answers
/// `port <port>` (or 500 while `failing`) and counts the hit.
struct App {
    addr: SocketAddr,
    healthy: Arc<AtomicBool>,
    failing: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

#[derive(Clone)]
struct AppState {
    port: u16,
    healthy: Arc<AtomicBool>,
    failing: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
}

async fn app() -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState {
        port: addr.port(),
        healthy: Arc::new(AtomicBool::new(true)),
        failing: Arc::new(AtomicBool::new(false)),
        hits: Arc::new(AtomicUsize::new(0)),
    };
    let router = Router::new()
        .route(
            "/health",
            get(|State(s): State<AppState>| async move {
                if s.healthy.load(Ordering::SeqCst) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
            }),
        )
        .fallback(|State(s): State<AppState>| async move {
            s.hits.fetch_add(1, Ordering::SeqCst);
            if s.failing.load(Ordering::SeqCst) {
                (StatusCode::INTERNAL_SERVER_ERROR, "broken".to_owned())
            } else {
                (StatusCode::OK, format!("port {}", s.port))
            }
        })
        .with_state(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    App { addr, healthy: state.healthy, failing: state.failing, hits: state.hits, task }
}

fn agent_config(node: &Node, app: Option<&App>) -> AgentConfig {
    AgentConfig {
        registry: vec![node.server.http_addr.to_string()],
        app: app.map(|app| AppConfig {
            service: "hello".to_owned(),
            namespace: "public".to_owned(),
            group: None,
            ip: "127.0.0.1".to_owned(),
            port: app.addr.port(),
            cluster: None,
            weight: None,
            metadata: std::collections::BTreeMap::new(),
            check: CheckConfig {
                http: Some(format!("http://{}/health", app.addr)),
                interval_ms: 100,
                timeout_ms: 500,
                failures_to_deregister: 2,
                ..CheckConfig::default()
            },
        }),
        proxy: ProxyConfig { addr: ([127, 0, 0, 1], 0).into(), ..ProxyConfig::default() },
        dns: DnsConfig { addr: ([127, 0, 0, 1], 0).into(), ..DnsConfig::default() },
        admin: janus_agent::config::AdminConfig { addr: ([127, 0, 0, 1], 0).into() },
        ..AgentConfig::default()
    }
}

async fn get_text(client: &Client, path: &str) -> (u16, Option<String>, String) {
    let answer = client.send(Request::new(Method::GET, path)).await.unwrap();
    (answer.status.as_u16(), answer.header(INSTANCE_HEADER).map(str::to_owned), answer.text().into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_registered_only_while_its_check_passes_and_deregistered_when_it_dies_or_the_agent_stops() {
    let node = node().await;
    let app = app().await;
    let port = app.addr.port();
    let agent = Agent::start(agent_config(&node, Some(&app))).await.unwrap();
    node.wait_for_ports("hello", &[port]).await;
    let admin = Client::new([agent.admin_addr.to_string()], Options::default()).unwrap();
    let (status, _, health) = get_text(&admin, "/health").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["app"]["registered"], true, "{health}");
    assert_eq!(health["app"]["check"], "passing", "{health}");

    // The check fails: deregistered after two failures; passes again: back.
    app.healthy.store(false, Ordering::SeqCst);
    node.wait_for_ports("hello", &[]).await;
    let (_, _, health) = get_text(&admin, "/health").await;
    assert!(health.contains("\"check\":\"failing\"") && health.contains("503"), "{health}");
    app.healthy.store(true, Ordering::SeqCst);
    node.wait_for_ports("hello", &[port]).await;
    let (_, _, metrics) = get_text(&admin, "/metrics").await;
    assert!(metrics.contains("janus_agent_app_registered 1"), "{metrics}");

    // The app is killed: its check cannot connect, and it is deregistered.
    app.task.abort();
    node.wait_for_ports("hello", &[]).await;

    // A second app, then the agent stops: deregistered at once, not by lease expiry.
    let second = self::app().await;
    let agent2 = Agent::start(agent_config(&node, Some(&second))).await.unwrap();
    node.wait_for_ports("hello", &[second.addr.port()]).await;
    agent2.stop().await;
    assert_eq!(node.ports("hello").await, Vec::<u16>::new(), "deregistered before stop returned");
    agent.stop().await;
    node.stop().await;
}

/// The ports of the SRV answer of the agent's local DNS for `name`.
async fn srv_ports(agent: &Agent, name: &str) -> Vec<u16> {
    srv_ports_over(agent, name, janus_client::dns::QueryOptions::udp()).await
}

async fn srv_ports_over(agent: &Agent, name: &str, options: janus_client::dns::QueryOptions) -> Vec<u16> {
    use janus_client::dns::proto::rr::{RData, RecordType};
    let answer = janus_client::dns::query(agent.dns_addr.unwrap(), name, RecordType::SRV, options).await.unwrap();
    let mut ports: Vec<u16> = answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(srv.port),
            _ => None,
        })
        .collect();
    ports.sort_unstable();
    ports
}

async fn set_enabled(node: &Node, port: u16, enabled: bool) {
    let path = format!("/v1/namespaces/public/services/backend/instances/127.0.0.1/{port}");
    let body = janus_client::Body::json(&serde_json::json!({ "enabled": enabled })).unwrap();
    let answer = node.client().send(Request::new(Method::PATCH, path).body(body)).await.unwrap();
    assert!(answer.status.is_success(), "{}", answer.text());
}

/// Waits until the agent's copy of `backend` offers `expected` (sorted):
/// its local DNS answers from the copy the proxy chooses from.
async fn wait_for_srv(agent: &Agent, expected: &[u16]) {
    for _ in 0..100 {
        if srv_ports(agent, "backend.svc.janus.").await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the agent's DNS answers {:?}, expected {expected:?}", srv_ports(agent, "backend.svc.janus.").await);
}

/// `count` requests through the proxy: the instance ports that answered.
async fn through_proxy(proxy: &Client, count: usize) -> Vec<(u16, Option<u16>)> {
    let mut answers = Vec::new();
    for _ in 0..count {
        let (status, instance, _) = get_text(proxy, "/backend/work?n=1").await;
        let port = instance.and_then(|i| i.rsplit(':').next().and_then(|p| p.parse().ok()));
        answers.push((status, port));
    }
    answers
}

async fn keep(node: &Node, app: &App) -> Registration {
    node.client()
        .keep_registered(&ServiceRef::new("public", "backend"), registration("127.0.0.1", app.addr.port()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_reaches_only_registered_instances_retries_elsewhere_and_ejects_a_failing_one() {
    let node = node().await;
    let (a, b) = (app().await, app().await);
    let (port_a, port_b) = (a.addr.port(), b.addr.port());
    let kept_a = keep(&node, &a).await;
    let kept_b = keep(&node, &b).await;
    let agent = Agent::start(agent_config(&node, None)).await.unwrap();
    let proxy = Client::new([agent.proxy_addr.unwrap().to_string()], Options::default()).unwrap();

    // Both instances serve, and the body is the instance's own.
    let answers = through_proxy(&proxy, 40).await;
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    for port in [port_a, port_b] {
        assert!(answers.iter().any(|(_, p)| *p == Some(port)), "{port} never chosen: {answers:?}");
    }
    let (_, instance, body) = get_text(&proxy, "/backend/").await;
    assert_eq!(body, format!("port {}", instance.unwrap().rsplit(':').next().unwrap()));
    // The agent's local DNS answers the registry's names from the same copy.
    let mut both = [port_a, port_b];
    both.sort_unstable();
    assert_eq!(srv_ports(&agent, "backend.svc.janus.").await, both);
    assert_eq!(srv_ports(&agent, "_backend._tcp.public.ns.janus.").await, both);
    let tcp = janus_client::dns::QueryOptions::tcp();
    assert_eq!(srv_ports_over(&agent, "backend.svc.janus.", tcp).await, both, "and over TCP");

    // A is taken offline (`enabled: false`): once the watch brings the
    // change, neither the proxy nor the local DNS hands it out.
    set_enabled(&node, port_a, false).await;
    wait_for_srv(&agent, &[port_b]).await;
    let hits_a = a.hits.load(Ordering::SeqCst);
    let answers = through_proxy(&proxy, 30).await;
    assert!(answers.iter().all(|a| *a == (200, Some(port_b))), "{answers:?}");
    assert_eq!(a.hits.load(Ordering::SeqCst), hits_a, "an offline instance got requests");
    set_enabled(&node, port_a, true).await;
    wait_for_srv(&agent, &both).await;

    // B is deregistered: once the watch brings the change, no request reaches it.
    kept_b.deregister().await.unwrap();
    node.wait_for_ports("backend", &[port_a]).await;
    wait_for_srv(&agent, &[port_a]).await;
    let hits_b = b.hits.load(Ordering::SeqCst);
    let answers = through_proxy(&proxy, 30).await;
    assert!(answers.iter().all(|a| *a == (200, Some(port_a))), "{answers:?}");
    assert_eq!(b.hits.load(Ordering::SeqCst), hits_b, "a deregistered instance got requests");

    // B is back but every answer of it fails: each GET is retried on A (the
    // app sees only 200s), and B is ejected after its consecutive failures.
    b.failing.store(true, Ordering::SeqCst);
    let kept_b = keep(&node, &b).await;
    node.wait_for_ports("backend", &both).await;
    wait_for_srv(&agent, &both).await;
    let before = b.hits.load(Ordering::SeqCst);
    let answers = through_proxy(&proxy, 60).await;
    assert!(answers.iter().all(|a| *a == (200, Some(port_a))), "{answers:?}");
    let hits_b = b.hits.load(Ordering::SeqCst) - before;
    assert_eq!(hits_b, 5, "B should get 5 requests, then be ejected for its 5 failures in a row");
    let admin = Client::new([agent.admin_addr.to_string()], Options::default()).unwrap();
    let (_, _, metrics) = get_text(&admin, "/metrics").await;
    assert!(metrics.contains("janus_agent_proxy_ejected_instances{service=\"backend\"} 1"), "{metrics}");
    assert!(metrics.contains("janus_agent_proxy_retries_total{service=\"backend\"}"), "{metrics}");
    assert_eq!(srv_ports(&agent, "backend.svc.janus.").await, [port_a], "DNS leaves the ejected instance out");

    // A POST is not retried after it reached an instance: with A gone from
    // the registry, B is the only instance, chosen although ejected (a call
    // to it beats none), and its 500 reaches the app.
    kept_a.deregister().await.unwrap();
    node.wait_for_ports("backend", &[port_b]).await;
    wait_for_srv(&agent, &[port_b]).await;
    let answer = proxy.send(Request::new(Method::POST, "/backend/orders")).await.unwrap();
    assert_eq!(answer.status.as_u16(), 500, "{}", answer.text());

    // A new instance C, and one that is registered but does not listen:
    // nothing was sent to the dead one, so even a POST is retried, on C (B
    // stays ejected while C and the dead one are there).
    let c = app().await;
    let _kept_c = keep(&node, &c).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _kept_dead = node
        .client()
        .keep_registered(&ServiceRef::new("public", "backend"), registration("127.0.0.1", dead))
        .await
        .unwrap();
    let mut three = [port_b, c.addr.port(), dead];
    three.sort_unstable();
    node.wait_for_ports("backend", &three).await;
    let mut live = [c.addr.port(), dead];
    live.sort_unstable();
    wait_for_srv(&agent, &live).await;
    for _ in 0..20 {
        let answer = proxy.send(Request::new(Method::POST, "/backend/orders")).await.unwrap();
        assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
        assert_eq!(answer.header(INSTANCE_HEADER), Some(c.addr.to_string().as_str()));
    }
    drop(kept_b);
    agent.stop().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_answers_bad_requests_with_a_clear_error() {
    let node = node().await;
    let mut config = agent_config(&node, None);
    config.proxy.max_body_bytes = 1024;
    let agent = Agent::start(config).await.unwrap();
    let proxy = Client::new([agent.proxy_addr.unwrap().to_string()], Options::default()).unwrap();

    let (status, _, body) = get_text(&proxy, "/nobody/x").await;
    assert_eq!(status, 503);
    assert!(body.contains("no healthy instance of public/nobody"), "{body}");
    let (status, _, body) = get_text(&proxy, "/").await;
    assert_eq!(status, 400);
    assert!(body.contains("names no service"), "{body}");
    let (status, _, body) = get_text(&proxy, "/bad%20name/x").await;
    assert_eq!(status, 400);
    assert!(body.contains("not a service name"), "{body}");
    let big = janus_client::Body::Json(vec![b'x'; 4096].into());
    let answer = proxy.send(Request::new(Method::POST, "/nobody/x").body(big)).await.unwrap();
    assert_eq!(answer.status.as_u16(), 413, "{}", answer.text());
    agent.stop().await;
    node.stop().await;
}

/// The SDK's kept registration against a real node: it beats at the
/// interval the node names (the instance's own 200 ms here), comes back
/// after the node lost it, and leaves when deregistered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_registration_beats_at_the_nodes_interval_and_comes_back_after_being_lost() {
    let node = node().await;
    let client = node.client();
    let service = ServiceRef::new("public", "kept");
    let mut instance = registration("127.0.0.1", 7001);
    instance.metadata.insert(janus_core::model::BEAT_INTERVAL_KEY.to_owned(), "200".to_owned());
    let kept = client.keep_registered(&service, instance).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let status = kept.status();
    assert_eq!(status.beat_interval, Duration::from_millis(200), "{status:?}");
    assert!(status.beats >= 3 && status.alive, "{status:?}");

    // The node loses the instance (here: deleted behind the SDK's back); the
    // next beat finds it gone and registers it again.
    client.deregister_instance(&service, "127.0.0.1", 7001, None).await.unwrap();
    node.wait_for_ports("kept", &[7001]).await;
    // The node may list it before the SDK has read the node's answer.
    for _ in 0..50 {
        if kept.status().registrations == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(kept.status().registrations, 2, "{:?}", kept.status());

    kept.deregister().await.unwrap();
    assert_eq!(node.ports("kept").await, Vec::<u16>::new());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(node.ports("kept").await, Vec::<u16>::new(), "nothing beats it back after deregistering");
    node.stop().await;
}
