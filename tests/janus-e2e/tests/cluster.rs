//! Three nodes on loopback forming one Raft group over their cluster
//! addresses: cp writes sent to any node commit and show on every node, and
//! after the leader stops the other two elect another and keep taking writes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use janus_e2e::{Answer, Http, Node};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A secret of its own for every cluster a test starts: the tests of this
/// file run at once, and a port one cluster planned and released can end up
/// with another cluster's node; with its own secret, such cross-talk is
/// refused instead of mixing the clusters.
fn secret() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("e2e-cluster-secret-{}-{n}", std::process::id())
}

/// Free loopback ports: bound, read and released (the cluster list must be
/// known before any node starts).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

async fn start_cluster() -> Vec<Node> {
    start_cluster_with(|_| {}).await
}

async fn start_cluster_with(tweak: impl Fn(&mut janus_server::ServerConfig) + Clone + Send + 'static) -> Vec<Node> {
    let ports = free_ports(3);
    let members: Vec<String> = (1..).zip(&ports).map(|(id, port)| format!("{id}@127.0.0.1:{port}")).collect();
    let secret = secret();
    let mut nodes = Vec::new();
    for (id, port) in (1..).zip(&ports) {
        nodes.push(Node::start(member_config(id, *port, &members, &secret, tweak.clone())).await);
    }
    nodes
}

/// The configuration of cluster member `id` (the same again for a restart).
fn member_config(
    id: u64,
    port: u16,
    members: &[String],
    secret: &str,
    tweak: impl Fn(&mut janus_server::ServerConfig) + Clone + Send + 'static,
) -> impl FnOnce(&mut janus_server::ServerConfig) {
    let (members, secret) = (members.to_vec(), secret.to_owned());
    move |config| {
        config.node.id = id;
        config.cluster.members = members;
        config.cluster.addr = ([127, 0, 0, 1], port).into();
        config.cluster.secret = secret;
        config.raft.heartbeat_ms = 50;
        config.raft.election_timeout_min_ms = 300;
        config.raft.election_timeout_max_ms = 600;
        tweak(config);
    }
}

/// Sends until the answer has `status` (a cluster needs a moment to elect).
async fn until_status(http: &Http, method: Method, url: &str, body: serde_json::Value, status: StatusCode) -> Answer {
    let start = Instant::now();
    loop {
        let answer = http.send_json(method.clone(), url, Some(body.clone())).await.unwrap();
        if answer.status == status {
            return answer;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{method} {url}: still {} after 10 s: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn instance_count(http: &Http, node: &Node) -> usize {
    let url = format!("{}/v1/namespaces/payments/services/ledger/instances", node.base);
    let answer = http.send(Method::GET, &url, None).await.unwrap();
    answer.json()["instances"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_replicates_cp_writes_and_survives_its_leader_stopping() {
    let mut nodes = start_cluster().await;
    let http = Http::default();
    until_status(
        &http,
        Method::POST,
        &format!("{}/v1/namespaces", nodes[2].base),
        json!({"id": "payments", "mode": "cp"}),
        StatusCode::CREATED,
    )
    .await;
    // Every node takes writes: followers forward them to the leader.
    for (port, node) in (7000..).zip(&nodes) {
        let url = format!("{}/v1/namespaces/payments/services/ledger/instances", node.base);
        let reply = http.send_json(Method::POST, &url, Some(json!({"ip": "127.0.9.1", "port": port}))).await.unwrap();
        assert_eq!(reply.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&reply.body));
    }
    // A linearizable read on any node, followers included, has every acknowledged write: no waiting.
    for node in &nodes {
        let url = format!("{}/v1/namespaces/payments/services/ledger/instances?consistency=linearizable", node.base);
        let answer = http.send(Method::GET, &url, None).await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer.body));
        assert_eq!(answer.json()["instances"].as_array().map(Vec::len), Some(3), "{}", node.base);
    }

    // The leader goes away; the two left elect another and take writes.
    let leader = nodes[0].server.node.cp().leader().expect("a leader is known after a write");
    let position = nodes.iter().position(|node| node.server.node.cp().node_id() == leader).unwrap();
    nodes.remove(position).stop_within(Duration::from_secs(5)).await;
    let url = format!("{}/v1/namespaces/payments/services/ledger/instances", nodes[0].base);
    until_status(&http, Method::POST, &url, json!({"ip": "127.0.9.2", "port": 7000}), StatusCode::CREATED).await;
    let start = Instant::now();
    while instance_count(&http, &nodes[1]).await != 4 {
        assert!(start.elapsed() < Duration::from_secs(10), "the write after the stop did not replicate");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for node in nodes {
        node.stop_within(Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_quorum_refuses_cp_writes_fast_and_keeps_serving_ap() {
    let mut nodes = start_cluster().await;
    let http = Http::default();
    let namespaces = format!("{}/v1/namespaces", nodes[0].base);
    until_status(&http, Method::POST, &namespaces, json!({"id": "payments", "mode": "cp"}), StatusCode::CREATED).await;
    until_status(&http, Method::POST, &namespaces, json!({"id": "edge", "mode": "ap"}), StatusCode::CREATED).await;
    let survivor = nodes.remove(0);
    for node in nodes {
        node.stop_within(Duration::from_secs(5)).await;
    }

    // A cp write fails within the election timeout (600 ms here) + 1 s, naming
    // the namespace and the lost quorum; scheduling slack on top.
    let cp_url = format!("{}/v1/namespaces/payments/services/ledger/instances", survivor.base);
    let started = Instant::now();
    let refused = http.send_json(Method::POST, &cp_url, Some(json!({"ip": "127.0.9.1", "port": 1}))).await.unwrap();
    let took = started.elapsed();
    let message = String::from_utf8_lossy(&refused.body).into_owned();
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{message}");
    assert!(message.contains("payments") && message.contains("quorum"), "{message}");
    assert!(took < Duration::from_millis(2600), "took {took:?}");

    // Meanwhile, with cp writes stuck in flight, ap registrations and
    // heartbeats on the same node answer at once: far below the 1.6 s a cp
    // write waits (the bound leaves room for a loaded CI machine).
    let stuck: Vec<_> = (2..6)
        .map(|port| {
            let (http, url) = (http.clone(), cp_url.clone());
            tokio::spawn(async move {
                http.send_json(Method::POST, &url, Some(json!({"ip": "127.0.9.1", "port": port}))).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ap_url = format!("{}/v1/namespaces/edge/services/web/instances", survivor.base);
    let mut slowest = Duration::ZERO;
    for port in 1..=50 {
        let started = Instant::now();
        let registered =
            http.send_json(Method::POST, &ap_url, Some(json!({"ip": "10.1.0.1", "port": port}))).await.unwrap();
        assert_eq!(registered.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&registered.body));
        let beat_url = format!("{ap_url}/10.1.0.1/{port}/heartbeat");
        let beat = http.send(Method::PUT, &beat_url, None).await.unwrap();
        assert_eq!(beat.status, StatusCode::OK, "{}", String::from_utf8_lossy(&beat.body));
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(250),
        "an ap register + heartbeat took {slowest:?} while Raft had no quorum"
    );
    for write in stuck {
        assert_eq!(write.await.unwrap().unwrap().status, StatusCode::SERVICE_UNAVAILABLE);
    }
    survivor.stop_within(Duration::from_secs(5)).await;
}

/// Waits until every node says it is ready (it loaded the ap registry) and
/// every node's ownership ring holds all three.
async fn all_ready(http: &Http, nodes: &[Node]) {
    let start = Instant::now();
    for node in nodes {
        loop {
            let answer = http.send(Method::GET, &format!("{}/ready", node.base), None).await.unwrap();
            let status = http.send(Method::GET, &format!("{}/v1/cluster", node.base), None).await.unwrap().json();
            if answer.status == StatusCode::OK && status["ap"]["ring"] == json!([1, 2, 3]) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(15), "{} not ready after 15 s: {status}", node.base);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `service` is `namespace/service`, or a service of `public`.
async fn listed(http: &Http, node: &Node, service: &str) -> Vec<String> {
    let path = if service.contains('/') {
        service.replacen('/', "/services/", 1)
    } else {
        format!("public/services/{service}")
    };
    let url = format!("{}/v1/namespaces/{path}/instances", node.base);
    let answer = http.send(Method::GET, &url, None).await.unwrap();
    let mut ips: Vec<String> = answer.json()["instances"]
        .as_array()
        .map(|a| a.iter().map(|i| format!("{}:{}", i["ip"].as_str().unwrap(), i["port"])).collect())
        .unwrap_or_default();
    ips.sort();
    ips
}

async fn until_listed(http: &Http, nodes: &[Node], service: &str, count: usize) {
    let start = Instant::now();
    loop {
        let mut lists = Vec::new();
        for node in nodes {
            lists.push(listed(http, node, service).await);
        }
        if lists.iter().all(|l| l.len() == count) && lists.windows(2).all(|w| w[0] == w[1]) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "lists still differ: {:?}",
            lists.iter().map(Vec::len).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_replicates_ap_writes_and_wakes_watches_on_other_nodes() {
    let nodes = start_cluster().await;
    let http = Http::default();
    all_ready(&http, &nodes).await;
    // Writes through any node, in both APIs, show on every node.
    for n in 0..30 {
        let url = format!("{}/nacos/v1/ns/instance?serviceName=web&ip=10.3.0.{n}&port=80", nodes[0].base);
        let reply = http.send(Method::POST, &url, None).await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
        let url = format!("{}/v1/namespaces/public/services/web/instances", nodes[1].base);
        let reply =
            http.send_json(Method::POST, &url, Some(json!({"ip": format!("10.4.0.{n}"), "port": 80}))).await.unwrap();
        assert_eq!(reply.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&reply.body));
    }
    until_listed(&http, &nodes, "web", 60).await;

    // A beat through a third node reaches whichever node owns the instance.
    for n in 0..30 {
        let url = format!("{}/v1/namespaces/public/services/web/instances/10.3.0.{n}/80/heartbeat", nodes[2].base);
        let beat = http.send(Method::PUT, &url, None).await.unwrap();
        assert_eq!(beat.status, StatusCode::OK, "{}", String::from_utf8_lossy(&beat.body));
    }

    // A blocking query on node 3 wakes when node 1 takes a write.
    let url = format!("{}/v1/namespaces/public/services/web/instances", nodes[2].base);
    let index = http.send(Method::GET, &url, None).await.unwrap().index.unwrap();
    let watch = {
        let (http, url) = (http.clone(), format!("{url}?index={index}&wait=10s"));
        tokio::spawn(async move {
            let answer = http.send(Method::GET, &url, None).await.unwrap();
            (Instant::now(), answer.json()["instances"].as_array().map_or(0, Vec::len))
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let written = Instant::now();
    let url = format!("{}/v1/namespaces/public/services/web/instances", nodes[0].base);
    http.send_json(Method::POST, &url, Some(json!({"ip": "10.5.0.1", "port": 80}))).await.unwrap();
    let (woke, count) = watch.await.unwrap();
    assert_eq!(count, 61);
    let took = woke.duration_since(written);
    assert!(took < Duration::from_secs(1), "the watch on node 3 woke {took:?} after the write on node 1");

    // A deregistration through any node is gone everywhere.
    let url = format!("{}/v1/namespaces/public/services/web/instances/10.5.0.1/80", nodes[1].base);
    assert_eq!(http.send(Method::DELETE, &url, None).await.unwrap().status, StatusCode::OK);
    until_listed(&http, &nodes, "web", 60).await;

    // Operators see the members, the ring and Raft from any node.
    let status = http.send(Method::GET, &format!("{}/v1/cluster", nodes[1].base), None).await.unwrap().json();
    assert_eq!(status["node"], 2);
    assert_eq!(status["ap"]["ring"], json!([1, 2, 3]), "{status}");
    let members = status["ap"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert!(members.iter().all(|m| m["state"] == "up" && m["ready"] == true), "{status}");
    assert!(status["raft"]["leader"].as_u64().is_some(), "{status}");
    let metrics = http.send(Method::GET, &format!("{}/metrics", nodes[1].base), None).await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("janus_ap_peer_up{peer=\"1\"} 1"), "{text}");
    assert!(text.contains("janus_raft_term "), "{text}");
    for node in nodes {
        node.stop_within(Duration::from_secs(5)).await;
    }
}

/// Waits until `node` sees `ring` as the AP ring and `members` AP members.
async fn until_ring(http: &Http, node: &Node, ring: serde_json::Value, members: usize) {
    let start = Instant::now();
    loop {
        let status = http.send(Method::GET, &format!("{}/v1/cluster", node.base), None).await.unwrap().json();
        if status["ap"]["ring"] == ring && status["ap"]["members"].as_array().map(Vec::len) == Some(members) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{}: ring not {ring} after 10 s: {status}", node.base);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_added_and_removed_through_the_admin_api_joins_and_leaves_ap_replication_without_restarts() {
    let secret = secret();
    let shared = secret.clone();
    let mut nodes = start_cluster_with(move |config| config.cluster.secret.clone_from(&shared)).await;
    let http = Http::default();
    all_ready(&http, &nodes).await;
    // A committed write: the group has a leader and its first membership.
    let namespaces = format!("{}/v1/namespaces", nodes[0].base);
    until_status(&http, Method::POST, &namespaces, json!({"id": "grown", "mode": "ap"}), StatusCode::CREATED).await;
    // Instances the fourth node has to load, in a namespace it does not know before it is added.
    for n in 0..10 {
        let url = format!("{}/v1/namespaces/grown/services/early/instances", nodes[2].base);
        let reply = http.send_json(Method::POST, &url, Some(json!({"ip": format!("10.6.0.{n}"), "port": 80}))).await;
        assert_eq!(reply.unwrap().status, StatusCode::CREATED);
    }
    // A fourth node, which the first three's configuration does not list.
    let addr4: std::net::SocketAddr = ([127, 0, 0, 1], free_ports(1)[0]).into();
    let mut members: Vec<String> =
        (1..).zip(&nodes).map(|(id, node)| format!("{id}@{}", node.server.cluster_addr.unwrap())).collect();
    members.push(format!("4@{addr4}"));
    let fourth = Node::start(move |config| {
        config.node.id = 4;
        config.cluster.members = members;
        config.cluster.join = true;
        config.cluster.addr = addr4;
        config.cluster.secret = secret;
        config.raft.heartbeat_ms = 50;
        config.raft.election_timeout_min_ms = 300;
        config.raft.election_timeout_max_ms = 600;
    })
    .await;
    // Until it is added it waits: not ready, not in anybody's ring.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let waiting = http.send(Method::GET, &format!("{}/ready", fourth.base), None).await.unwrap();
    assert_ne!(waiting.status, StatusCode::OK, "a joining node is not ready before it is added");
    until_ring(&http, &nodes[0], json!([1, 2, 3]), 3).await;

    // Added to the Raft group, it becomes an AP member on every node.
    let add = janus_raft::MembershipChange::AddLearner { id: 4, addr: addr4.to_string() };
    nodes[1].server.node.cp().change_members(add).await.unwrap();
    for node in &nodes {
        until_ring(&http, node, json!([1, 2, 3, 4]), 4).await;
    }
    // Writes through it and through the others are on all four.
    for n in 0..20 {
        for (through, node) in [&fourth, &nodes[0]].into_iter().enumerate() {
            let url = format!("{}/v1/namespaces/public/services/grown/instances", node.base);
            let body = json!({"ip": format!("10.7.{through}.{n}"), "port": 80});
            let reply = http.send_json(Method::POST, &url, Some(body)).await.unwrap();
            assert_eq!(reply.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&reply.body));
        }
    }
    nodes.push(fourth);
    until_listed(&http, &nodes, "grown", 40).await;
    until_listed(&http, &nodes, "grown/early", 10).await;

    // Removed from the group, it leaves the others' ring; they keep serving everything.
    let fourth = nodes.pop().unwrap();
    nodes[0].server.node.cp().change_members(janus_raft::MembershipChange::Remove { id: 4 }).await.unwrap();
    for node in &nodes {
        until_ring(&http, node, json!([1, 2, 3]), 3).await;
    }
    fourth.stop_within(Duration::from_secs(5)).await;
    until_listed(&http, &nodes, "grown", 40).await;
    for node in nodes {
        node.stop_within(Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_instances_are_health_checked_by_exactly_one_node() {
    let nodes = start_cluster_with(|config| {
        config.health.interval_ms = 100;
        config.health.report_delay_ms = 50;
    })
    .await;
    let http = Http::default();
    all_ready(&http, &nodes).await;
    let namespaces = format!("{}/v1/namespaces", nodes[0].base);
    until_status(&http, Method::POST, &namespaces, json!({"id": "pay", "mode": "cp"}), StatusCode::CREATED).await;
    let services = format!("{}/v1/namespaces/pay/services", nodes[0].base);
    until_status(&http, Method::POST, &services, json!({"name": "ledger"}), StatusCode::CREATED).await;
    // One instance listens, the others do not; a third cluster is not checked at all.
    let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up = listening.local_addr().unwrap().port();
    let down: Vec<u16> = (0..5).map(|_| free_ports(1)[0]).collect();
    let manual = format!("{}/v1/namespaces/pay/services/ledger/clusters/manual", nodes[1].base);
    let set = http.send_json(Method::PUT, &manual, Some(json!({"health_check": {"type": "none"}}))).await.unwrap();
    assert_eq!(set.status, StatusCode::OK, "{}", String::from_utf8_lossy(&set.body));
    assert_eq!(set.json()["clusters"]["manual"]["health_check"]["type"], "none");
    let instances = format!("{}/v1/namespaces/pay/services/ledger/instances", nodes[2].base);
    for port in std::iter::once(up).chain(down.iter().copied()) {
        let reply =
            http.send_json(Method::POST, &instances, Some(json!({"ip": "127.0.0.1", "port": port}))).await.unwrap();
        assert_eq!(reply.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&reply.body));
    }
    let reply = http
        .send_json(Method::POST, &instances, Some(json!({"ip": "127.0.0.1", "port": down[0], "cluster": "manual"})))
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&reply.body));

    // The closed ports turn unhealthy on every node (three failed probes, one Raft write each batch).
    let start = Instant::now();
    loop {
        let mut settled = true;
        for node in &nodes {
            let url = format!("{}/v1/namespaces/pay/services/ledger/instances", node.base);
            let listed = http.send(Method::GET, &url, None).await.unwrap().json();
            for instance in listed["instances"].as_array().unwrap() {
                let (port, cluster) = (instance["port"].as_u64().unwrap(), instance["cluster"].as_str().unwrap());
                let want = cluster == "manual" || port == u64::from(up);
                settled &= instance["healthy"].as_bool() == Some(want);
            }
        }
        if settled {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "health checks did not settle in 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each checked instance is checked by exactly one node.
    let mut checked = 0;
    for node in &nodes {
        let status = http.send(Method::GET, &format!("{}/v1/cluster", node.base), None).await.unwrap().json();
        checked += status["health"]["checked"].as_u64().unwrap();
    }
    assert_eq!(checked, 6, "six instances are checked (the manual cluster's is not), each by one node");
    // Health by hand is refused while a cluster is checked, accepted where it is not.
    let nacos = format!(
        "{}/nacos/v1/ns/health/instance?namespaceId=pay&serviceName=ledger&ip=127.0.0.1&port={up}&healthy=false",
        nodes[0].base
    );
    let refused = http.send(Method::PUT, &nacos, None).await.unwrap();
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&refused.body));
    let by_hand = format!("{nacos}&clusterName=manual").replace(&format!("port={up}"), &format!("port={}", down[0]));
    let accepted = http.send(Method::PUT, &by_hand, None).await.unwrap();
    assert_eq!(accepted.status, StatusCode::OK, "{}", String::from_utf8_lossy(&accepted.body));
    drop(listening);
    for node in nodes {
        node.stop_within(Duration::from_secs(5)).await;
    }
}

/// The transcript on a cluster: a delete of a namespace holding
/// ephemeral instances is refused, is never proposed to Raft, and after each
/// node restarts in turn the namespace is still there on every node, with no
/// revision lower than before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_namespace_delete_stays_refused_on_every_node_through_restarts() {
    let ports = free_ports(3);
    let members: Vec<String> = (1..).zip(&ports).map(|(id, port)| format!("{id}@127.0.0.1:{port}")).collect();
    let secret = secret();
    let mut nodes = Vec::new();
    for (id, port) in (1..).zip(&ports) {
        nodes.push(Node::start(member_config(id, *port, &members, &secret, |_| {})).await);
    }
    let http = Http::default();
    let namespaces = format!("{}/v1/namespaces", nodes[0].base);
    until_status(&http, Method::POST, &namespaces, json!({"id": "team-x", "mode": "ap"}), StatusCode::CREATED).await;
    let web = format!("{}/v1/namespaces/team-x/services/web/instances", nodes[0].base);
    all_ready(&http, &nodes).await;
    until_status(&http, Method::POST, &web, json!({"ip": "10.0.0.1", "port": 80}), StatusCode::CREATED).await;
    until_listed_in(&http, &nodes, "team-x", "web", 1).await;
    let applied: Vec<u64> = nodes.iter().map(|n| n.server.node.cp().applied_index()).collect();
    for node in &nodes {
        let refused = http.send(Method::DELETE, &format!("{}/v1/namespaces/team-x", node.base), None).await.unwrap();
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", String::from_utf8_lossy(&refused.body));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after: Vec<u64> = nodes.iter().map(|n| n.server.node.cp().applied_index()).collect();
    assert_eq!(applied, after, "refused deletes never enter the Raft log");

    let revision = |answer: &janus_e2e::Answer| answer.json()["revision"].as_u64().unwrap();
    for restarted in 0..nodes.len() {
        let seen = revision(
            &http.send(Method::GET, &format!("{}/v1/namespaces/team-x", nodes[restarted].base), None).await.unwrap(),
        );
        let node = nodes.remove(restarted);
        let data = node.stop_keeping_data(Duration::from_secs(5)).await;
        let id = u64::try_from(restarted + 1).unwrap();
        nodes.insert(
            restarted,
            Node::start_in(data, member_config(id, ports[restarted], &members, &secret, |_| {})).await,
        );
        all_ready(&http, &nodes).await;
        for node in &nodes {
            let answer = http.send(Method::GET, &format!("{}/v1/namespaces/team-x", node.base), None).await.unwrap();
            assert_eq!(answer.status, StatusCode::OK, "node {} after restarting node {}", node.base, restarted + 1);
        }
        let now = revision(
            &http.send(Method::GET, &format!("{}/v1/namespaces/team-x", nodes[restarted].base), None).await.unwrap(),
        );
        assert!(now >= seen, "node {}: the namespace's revision went back from {seen} to {now}", restarted + 1);
    }
    for node in nodes {
        node.stop_within(Duration::from_secs(5)).await;
    }
}

async fn until_listed_in(http: &Http, nodes: &[Node], namespace: &str, service: &str, count: usize) {
    let start = Instant::now();
    for node in nodes {
        let url = format!("{}/v1/namespaces/{namespace}/services/{service}/instances", node.base);
        loop {
            let answer = http.send(Method::GET, &url, None).await.unwrap();
            if answer.status == StatusCode::OK && answer.json()["instances"].as_array().map(Vec::len) == Some(count) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "{url}: not {count} instances after 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Client load on the public port must not disturb cluster traffic: 20,000
/// connections opened, used once and closed on the leader's HTTP port over
/// 30 s, with the default Raft timings, and no node sees a leader change or
/// marks a Distro peer down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churning_connections_on_the_leaders_public_port_disturb_neither_raft_nor_distro() {
    use janus_core::RegistryService as _;
    let defaults = janus_server::ServerConfig::default().raft;
    let nodes = start_cluster_with(move |config| config.raft = defaults.clone()).await;
    let http = Http::default();
    all_ready(&http, &nodes).await;
    let namespaces = format!("{}/v1/namespaces", nodes[0].base);
    until_status(&http, Method::POST, &namespaces, json!({"id": "churn", "mode": "cp"}), StatusCode::CREATED).await;
    let status = |node: &Node| node.server.node.cluster_status();
    let raft = status(&nodes[0]).raft.expect("raft status");
    let (leader, term) = (raft.leader.expect("a leader after a write"), raft.term);
    let target = nodes.iter().find(|n| n.server.node.cp().node_id() == leader).expect("the leader is a node");
    let addr = target.server.http_addr;

    const CONNECTIONS: usize = 20_000;
    const CHURNERS: usize = 16;
    let spread = Duration::from_secs(30);
    let started = tokio::time::Instant::now();
    let churners: Vec<_> = (0..CHURNERS)
        .map(|n| {
            tokio::spawn(async move {
                let per = CONNECTIONS / CHURNERS;
                let mut answered = 0usize;
                for i in 0..per {
                    // Evenly paced over the whole spread.
                    let slot = spread.mul_f64((i * CHURNERS + n) as f64 / CONNECTIONS as f64);
                    tokio::time::sleep_until(started + slot).await;
                    let Ok(mut stream) = TcpStream::connect(addr).await else { continue };
                    if stream.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.is_err()
                    {
                        continue;
                    }
                    let mut sink = Vec::new();
                    if stream.read_to_end(&mut sink).await.is_ok() && sink.starts_with(b"HTTP/1.1 200") {
                        answered += 1;
                    }
                }
                answered
            })
        })
        .collect();
    let mut checks = 0;
    while churners.iter().any(|c| !c.is_finished()) {
        for node in &nodes {
            let now = status(node);
            let raft = now.raft.expect("raft status");
            assert_eq!((raft.leader, raft.term), (Some(leader), term), "node {} saw a leader change", now.node);
            let ap = now.ap.expect("ap status");
            let down: Vec<_> = ap.members.iter().filter(|m| m.state == "down").map(|m| m.id).collect();
            assert!(down.is_empty(), "node {} marked peers {down:?} down", now.node);
        }
        checks += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut answered = 0;
    for churner in churners {
        answered += churner.await.unwrap();
    }
    assert!(checks > 100, "the cluster was checked throughout ({checks} checks)");
    assert!(answered > CONNECTIONS * 9 / 10, "only {answered} of {CONNECTIONS} churned connections were answered");
    for node in nodes {
        node.stop_within(Duration::from_secs(5)).await;
    }
}
