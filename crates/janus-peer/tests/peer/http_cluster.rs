//! Three CP engines talking Raft over real loopback HTTP: they elect a
//! leader, a follower forwards a write, every registry gets it, a caller
//! without the cluster secret is refused, and a fourth node joins through
//! the admin API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use janus_core::model::{InstanceSpec, NamespaceSpec, ServiceSettings};
use janus_core::transport::{CallError, PeerTransport, RefusalKind};
use janus_core::{
    ClusterName, Command, GroupName, InstanceKey, Mode, NamespaceId, RegistryConfig, RegistryStore, ServiceKey,
    ServiceName,
};
use janus_peer::{ClusterSecret, HttpPeerTransport, StreamPeerTransport};
use janus_raft::{CpConfig, CpEngine, RpcKind};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const MAX_BODY: usize = 64 << 20;

fn secret() -> ClusterSecret {
    ClusterSecret::new("test-cluster-secret-0123").unwrap()
}

fn ledger() -> ServiceKey {
    ServiceKey::new(NamespaceId::new("pay").unwrap(), GroupName::default_group(), ServiceName::new("ledger").unwrap())
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_over_http_with_the_cluster_secret() {
    let mut listeners = Vec::new();
    for _ in 0..4 {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addrs: BTreeMap<u64, String> =
        (1..).zip(&listeners).map(|(id, l)| (id, l.local_addr().unwrap().to_string())).collect();
    // Nodes 1–3 form the group; node 4 starts empty and joins later.
    let members: BTreeMap<u64, String> = addrs.range(1..=3).map(|(id, addr)| (*id, addr.clone())).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for (id, listener) in (1..).zip(listeners) {
        let store = Arc::new(RegistryStore::new(RegistryConfig::default(), 16));
        let config = CpConfig {
            node_id: id,
            dir: dir.path().join(format!("node-{id}")),
            heartbeat: Duration::from_millis(50),
            election_timeout: (Duration::from_millis(300), Duration::from_millis(600)),
            snapshot_after_logs: 1000,
            logs_kept_after_snapshot: 100,
            members: members.clone(),
            join: id == 4,
        };
        let transport = Arc::new(StreamPeerTransport::new(secret(), MAX_BODY));
        let engine = CpEngine::start(store.clone(), config, transport).await.unwrap();
        let (ap, _) = janus_ap::ApEngine::spawn(store.clone(), janus_ap::ApConfig::default(), CancellationToken::new());
        let router = janus_peer::router(engine.clone(), ap, secret(), MAX_BODY);
        tokio::spawn(async move { axum::serve(listener, router).await });
        nodes.push((engine, store));
    }

    wait_until("a leader is elected", || {
        let leaders: Vec<Option<u64>> = nodes[..3].iter().map(|(engine, _)| engine.leader()).collect();
        leaders[0].is_some() && leaders.iter().all(|l| *l == leaders[0])
    })
    .await;
    let leader = nodes[0].0.leader().unwrap();
    let follower = &nodes[..3].iter().find(|(engine, _)| engine.node_id() != leader).unwrap().0;

    let namespace = NamespaceSpec::new(NamespaceId::new("pay").unwrap(), None, None, Mode::Cp).unwrap();
    follower.write(Command::CreateNamespace(namespace)).await.unwrap().unwrap();
    let settings = ServiceSettings::new(None, Default::default()).unwrap();
    follower.write(Command::CreateService { key: ledger(), settings }).await.unwrap().unwrap();
    let mut spec = InstanceSpec::new(InstanceKey::new(ClusterName::default_cluster(), "10.0.0.1".parse().unwrap(), 80));
    spec.ephemeral = Some(false);
    follower.write(Command::RegisterInstance { key: ledger(), spec }).await.unwrap().unwrap();
    for (engine, store) in &nodes[..3] {
        wait_until(&format!("node {} holds the instance", engine.node_id()), || {
            store.read(|r| r.snapshot(&ledger()).is_ok_and(|s| s.instances.len() == 1))
        })
        .await;
    }

    // Someone without the secret gets nothing through, with or without a
    // body; with the secret, garbage is a clear refusal, not a crash.
    let intruder = HttpPeerTransport::new(ClusterSecret::new("not-the-cluster-secret").unwrap(), MAX_BODY);
    let member = HttpPeerTransport::new(secret(), MAX_BODY);
    let refusals = [
        (&intruder, RpcKind::Vote, vec![0; 32], RefusalKind::Forbidden, "401 Unauthorized"),
        (&member, RpcKind::AppendEntries, vec![0xff; 9], RefusalKind::Malformed, "malformed append message"),
    ];
    for (transport, kind, body, expected, reason) in refusals {
        let error = transport
            .call(1, members[&1].clone(), kind.route(), body, Duration::from_secs(2))
            .await
            .expect_err("refused");
        assert!(
            matches!(&error, CallError::Refused { refusal, .. }
                if refusal.kind == expected && refusal.reason.starts_with(reason)),
            "{error}"
        );
    }

    // The admin API: read the group, add node 4 and promote it, through a follower.
    let admin = |method: Method, path: &str, body: &str, secret: &str| {
        admin_call(
            method,
            format!("http://{}/internal/admin/{path}", addrs[&follower.node_id()]),
            body.to_owned(),
            secret.to_owned(),
        )
    };
    let (status, _) = admin(Method::GET, "members", "", "Bearer wrong-secret-wrong-secret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let good = "Bearer test-cluster-secret-0123";
    let (status, body) = admin(Method::GET, "members", "", good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let group: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(group["voters"].as_object().unwrap().len(), 3, "{body}");
    let (status, body) = admin(Method::POST, "members", r#"{"id": 4}"#, good).await;
    assert!(status.is_client_error(), "a member without an address is refused: {status} {body}");
    let join = format!(r#"{{"id": 4, "addr": "{}"}}"#, addrs[&4]);
    let (status, body) = admin(Method::POST, "members", &join, good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_until("node 4 has caught up", || {
        nodes[3].1.read(|r| r.snapshot(&ledger()).is_ok_and(|s| s.instances.len() == 1))
    })
    .await;
    let (status, body) = admin(Method::POST, "members/4/promote", "", good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_until("node 4 votes", || nodes[0].0.members().voters.contains_key(&4)).await;

    for (engine, _) in &nodes {
        engine.shutdown().await;
    }
}

async fn admin_call(method: Method, url: String, body: String, authorization: String) -> (StatusCode, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", authorization)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}
