//! Three nodes on loopback forming one Raft group over their cluster
//! addresses: cp writes sent to any node commit and show on every node, and
//! after the leader stops the other two elect another and keep taking writes,
//! and a client of all three fails over to them; a Nacos gRPC client's
//! instance outlives the node it was connected to.

use std::time::{Duration, Instant};

use janus_client::{Body, ListOptions, Method, Response, ServiceRef, StatusCode, registration};
use janus_e2e::{Node, client_of, json};
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

/// Loopback ports for the cluster addresses (the member list must be known
/// before any node starts), outside the ephemeral range that the churn test's
/// thousands of connections draw from.
fn free_ports(n: usize) -> Vec<u16> {
    janus_testkit::ports::unused_loopback_ports(n)
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
        config.auth.enabled = Some(false);
        config.raft.heartbeat_ms = 50;
        config.raft.election_timeout_min_ms = 300;
        config.raft.election_timeout_max_ms = 600;
        tweak(config);
    }
}

/// Sends to `node` until the answer has `status` (a cluster needs a moment to elect).
async fn until_status(
    node: &Node,
    method: Method,
    path: &str,
    body: serde_json::Value,
    status: StatusCode,
) -> Response {
    let start = Instant::now();
    loop {
        let answer = node.call(method.clone(), path, Some(body.clone())).await;
        if answer.status == status {
            return answer;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{method} {path}: still {} after 10 s: {}",
            answer.status,
            answer.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ledger() -> ServiceRef {
    ServiceRef::new("payments", "ledger")
}

async fn instance_count(node: &Node) -> usize {
    node.client.list_instances(&ledger(), &ListOptions::default()).await.map_or(0, |list| list.instances.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_replicates_cp_writes_and_survives_its_leader_stopping() {
    let mut nodes = start_cluster().await;
    until_status(
        &nodes[2],
        Method::POST,
        "/v1/namespaces",
        json!({"id": "payments", "mode": "cp"}),
        StatusCode::CREATED,
    )
    .await;
    // Every node takes writes: followers forward them to the leader.
    for (port, node) in (7000..).zip(&nodes) {
        node.client.register_instance(&ledger(), &registration("127.0.9.1", port)).await.unwrap();
    }
    // A linearizable read on any node, followers included, has every acknowledged write: no waiting.
    for node in &nodes {
        let list = node.client.list_instances(&ledger(), &ListOptions::default().linearizable()).await.unwrap();
        assert_eq!(list.instances.len(), 3, "{}", node.server.http_addr);
    }

    // The leader goes away; the two left elect another and take writes.
    let leader = nodes[0].server.node.cp().leader().expect("a leader is known after a write");
    let position = nodes.iter().position(|node| node.server.node.cp().node_id() == leader).unwrap();
    // A client of all three, the leader's address first.
    let mut in_order: Vec<&Node> = nodes.iter().collect();
    in_order.swap(0, position);
    let everyone = client_of(&in_order);
    nodes.remove(position).stop_within(Duration::from_secs(5)).await;
    let path = "/v1/namespaces/payments/services/ledger/instances";
    until_status(&nodes[0], Method::POST, path, json!({"ip": "127.0.9.2", "port": 7000}), StatusCode::CREATED).await;
    let start = Instant::now();
    while instance_count(&nodes[1]).await != 4 {
        assert!(start.elapsed() < Duration::from_secs(10), "the write after the stop did not replicate");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing listens at its first address any more: it writes and reads through the others.
    everyone.register_instance(&ledger(), &registration("127.0.9.3", 7000)).await.unwrap();
    let list = everyone.list_instances(&ledger(), &ListOptions::default().linearizable()).await.unwrap();
    assert_eq!(list.instances.len(), 5);
    let answer = everyone.request(Method::GET, "/health", Body::Empty).await.unwrap();
    assert_ne!(answer.addr, everyone.addrs()[0], "the stopped node did not answer");
    for node in nodes {
        node.stop_within(Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_quorum_refuses_cp_writes_fast_and_keeps_serving_ap() {
    let mut nodes = start_cluster().await;
    let namespaces = "/v1/namespaces";
    until_status(&nodes[0], Method::POST, namespaces, json!({"id": "payments", "mode": "cp"}), StatusCode::CREATED)
        .await;
    until_status(&nodes[0], Method::POST, namespaces, json!({"id": "edge", "mode": "ap"}), StatusCode::CREATED).await;
    // A follower applies a write it forwarded when the leader's next message
    // tells it the commit (docs/consistency.md): have the survivor hold both
    // namespaces before the others go.
    until_status(&nodes[0], Method::GET, "/v1/namespaces/edge", json!(null), StatusCode::OK).await;
    let survivor = nodes.remove(0);
    for node in nodes {
        node.stop_within(Duration::from_secs(5)).await;
    }

    // A cp write fails within the election timeout (600 ms here) + 1 s, naming
    // the namespace and the lost quorum; scheduling slack on top.
    let started = Instant::now();
    let refused = survivor.client.register_instance(&ledger(), &registration("127.0.9.1", 1)).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(refused.status(), Some(StatusCode::SERVICE_UNAVAILABLE), "{refused}");
    let message = refused.to_string();
    assert!(message.contains("payments") && message.contains("quorum"), "{message}");
    assert!(took < Duration::from_millis(2600), "took {took:?}");

    // Meanwhile, with cp writes stuck in flight, ap registrations and
    // heartbeats on the same node answer at once: far below the 1.6 s a cp
    // write waits (the bound leaves room for a loaded CI machine).
    let stuck: Vec<_> = (2..6)
        .map(|port| {
            let client = survivor.client.clone();
            tokio::spawn(async move { client.register_instance(&ledger(), &registration("127.0.9.1", port)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let web = ServiceRef::new("edge", "web");
    let mut slowest = Duration::ZERO;
    for port in 1..=50 {
        let started = Instant::now();
        survivor.client.register_instance(&web, &registration("10.1.0.1", port)).await.unwrap();
        survivor.client.heartbeat(&web, "10.1.0.1", port, None).await.unwrap();
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(250),
        "an ap register + heartbeat took {slowest:?} while Raft had no quorum"
    );
    for write in stuck {
        assert_eq!(write.await.unwrap().unwrap_err().status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    }
    survivor.stop_within(Duration::from_secs(5)).await;
}

/// Waits until every node says it is ready (it loaded the ap registry) and
/// every node's ownership ring holds all three.
async fn all_ready(nodes: &[Node]) {
    let start = Instant::now();
    for node in nodes {
        loop {
            let ready = node.client.ready().await.unwrap();
            let status = node.client.cluster_status().await.unwrap();
            if ready && status["ap"]["ring"] == json!([1, 2, 3]) {
                break;
            }
            let addr = node.server.http_addr;
            assert!(start.elapsed() < Duration::from_secs(15), "{addr} not ready after 15 s: {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `service` is `namespace/service`, or a service of `public`; none while
/// the node does not know the namespace.
async fn listed(node: &Node, service: &str) -> Vec<String> {
    let of = match service.split_once('/') {
        Some((namespace, name)) => ServiceRef::new(namespace, name),
        None => ServiceRef::new("public", service),
    };
    let list = node.client.list_instances(&of, &ListOptions::default()).await;
    let mut ips: Vec<String> =
        list.map(|l| l.instances.iter().map(|i| format!("{}:{}", i.ip, i.port)).collect()).unwrap_or_default();
    ips.sort();
    ips
}

async fn until_listed(nodes: &[Node], service: &str, count: usize) {
    let start = Instant::now();
    loop {
        let mut lists = Vec::new();
        for node in nodes {
            lists.push(listed(node, service).await);
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
    all_ready(&nodes).await;
    // Writes through any node, in both APIs, show on every node.
    let web = ServiceRef::new("public", "web");
    for n in 0..30 {
        let reply = nodes[0]
            .call(Method::POST, &format!("/nacos/v1/ns/instance?serviceName=web&ip=10.3.0.{n}&port=80"), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        nodes[1].client.register_instance(&web, &registration(format!("10.4.0.{n}"), 80)).await.unwrap();
    }
    until_listed(&nodes, "web", 60).await;

    // A beat through a third node reaches whichever node owns the instance.
    for n in 0..30 {
        nodes[2].client.heartbeat(&web, &format!("10.3.0.{n}"), 80, None).await.unwrap();
    }

    // A blocking query on node 3 wakes when node 1 takes a write.
    let index = nodes[2].client.list_instances(&web, &ListOptions::default()).await.unwrap().revision;
    let watch = {
        let (client, web) = (nodes[2].client.clone(), web.clone());
        tokio::spawn(async move {
            let watching = ListOptions::default().watch(index, Duration::from_secs(10));
            let list = client.list_instances(&web, &watching).await.unwrap();
            (Instant::now(), list.instances.len())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let written = Instant::now();
    nodes[0].client.register_instance(&web, &registration("10.5.0.1", 80)).await.unwrap();
    let (woke, count) = watch.await.unwrap();
    assert_eq!(count, 61);
    let took = woke.duration_since(written);
    assert!(took < Duration::from_secs(1), "the watch on node 3 woke {took:?} after the write on node 1");

    // A deregistration through any node is gone everywhere.
    nodes[1].client.deregister_instance(&web, "10.5.0.1", 80, None).await.unwrap();
    until_listed(&nodes, "web", 60).await;

    // Operators see the members, the ring and Raft from any node.
    let status = nodes[1].client.cluster_status().await.unwrap();
    assert_eq!(status["node"], 2);
    assert_eq!(status["ap"]["ring"], json!([1, 2, 3]), "{status}");
    let members = status["ap"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert!(members.iter().all(|m| m["state"] == "up" && m["ready"] == true), "{status}");
    assert!(status["raft"]["leader"].as_u64().is_some(), "{status}");
    let metrics = nodes[1].get("/metrics").await;
    let text = metrics.text();
    assert!(text.contains("janus_ap_peer_up{peer=\"1\"} 1"), "{text}");
    assert!(text.contains("janus_raft_term "), "{text}");
    for node in nodes {
        node.stop_within(Duration::from_secs(5)).await;
    }
}

/// Waits until `node` sees `ring` as the AP ring and `members` AP members.
async fn until_ring(node: &Node, ring: serde_json::Value, members: usize) {
    let start = Instant::now();
    loop {
        let status = node.client.cluster_status().await.unwrap();
        if status["ap"]["ring"] == ring && status["ap"]["members"].as_array().map(Vec::len) == Some(members) {
            return;
        }
        let addr = node.server.http_addr;
        assert!(start.elapsed() < Duration::from_secs(10), "{addr}: ring not {ring} after 10 s: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_added_and_removed_through_the_admin_api_joins_and_leaves_ap_replication_without_restarts() {
    let secret = secret();
    let shared = secret.clone();
    let mut nodes = start_cluster_with(move |config| config.cluster.secret.clone_from(&shared)).await;
    all_ready(&nodes).await;
    // A committed write: the group has a leader and its first membership.
    until_status(&nodes[0], Method::POST, "/v1/namespaces", json!({"id": "grown", "mode": "ap"}), StatusCode::CREATED)
        .await;
    // Instances the fourth node has to load, in a namespace it does not know before it is added.
    for n in 0..10 {
        let early = ServiceRef::new("grown", "early");
        nodes[2].client.register_instance(&early, &registration(format!("10.6.0.{n}"), 80)).await.unwrap();
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
        config.auth.enabled = Some(false);
        config.raft.heartbeat_ms = 50;
        config.raft.election_timeout_min_ms = 300;
        config.raft.election_timeout_max_ms = 600;
    })
    .await;
    // Until it is added it waits: not ready, not in anybody's ring.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!fourth.client.ready().await.unwrap(), "a joining node is not ready before it is added");
    until_ring(&nodes[0], json!([1, 2, 3]), 3).await;

    // Added to the Raft group, it becomes an AP member on every node.
    let add = janus_raft::MembershipChange::AddLearner { id: 4, addr: addr4.to_string() };
    nodes[1].server.node.cp().change_members(add).await.unwrap();
    for node in &nodes {
        until_ring(node, json!([1, 2, 3, 4]), 4).await;
    }
    // Writes through it and through the others are on all four.
    let grown = ServiceRef::new("public", "grown");
    for n in 0..20 {
        for (through, node) in [&fourth, &nodes[0]].into_iter().enumerate() {
            node.client.register_instance(&grown, &registration(format!("10.7.{through}.{n}"), 80)).await.unwrap();
        }
    }
    nodes.push(fourth);
    until_listed(&nodes, "grown", 40).await;
    until_listed(&nodes, "grown/early", 10).await;

    // Removed from the group, it leaves the others' ring; they keep serving everything.
    let fourth = nodes.pop().unwrap();
    nodes[0].server.node.cp().change_members(janus_raft::MembershipChange::Remove { id: 4 }).await.unwrap();
    for node in &nodes {
        until_ring(node, json!([1, 2, 3]), 3).await;
    }
    fourth.stop_within(Duration::from_secs(5)).await;
    until_listed(&nodes, "grown", 40).await;
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
    all_ready(&nodes).await;
    until_status(&nodes[0], Method::POST, "/v1/namespaces", json!({"id": "pay", "mode": "cp"}), StatusCode::CREATED)
        .await;
    until_status(
        &nodes[0],
        Method::POST,
        "/v1/namespaces/pay/services",
        json!({"name": "ledger"}),
        StatusCode::CREATED,
    )
    .await;
    // One instance listens, the others do not; a third cluster is not checked at all.
    let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up = listening.local_addr().unwrap().port();
    let down: Vec<u16> = (0..5).map(|_| free_ports(1)[0]).collect();
    let manual = "/v1/namespaces/pay/services/ledger/clusters/manual";
    let set = nodes[1].call(Method::PUT, manual, Some(json!({"health_check": {"type": "none"}}))).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    assert_eq!(json(&set)["clusters"]["manual"]["health_check"]["type"], "none");
    let ledger = ServiceRef::new("pay", "ledger");
    for port in std::iter::once(up).chain(down.iter().copied()) {
        nodes[2].client.register_instance(&ledger, &registration("127.0.0.1", port)).await.unwrap();
    }
    let mut in_manual = registration("127.0.0.1", down[0]);
    in_manual.cluster = Some("manual".to_owned());
    nodes[2].client.register_instance(&ledger, &in_manual).await.unwrap();

    // The closed ports turn unhealthy on every node (three failed probes, one Raft write each batch).
    let start = Instant::now();
    loop {
        let mut settled = true;
        for node in &nodes {
            let listed = node.client.list_instances(&ledger, &ListOptions::default()).await.unwrap();
            for instance in &listed.instances {
                let want = instance.cluster == "manual" || instance.port == up;
                settled &= instance.healthy == want;
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
        let status = node.client.cluster_status().await.unwrap();
        checked += status["health"]["checked"].as_u64().unwrap();
    }
    assert_eq!(checked, 6, "six instances are checked (the manual cluster's is not), each by one node");
    // Health by hand is refused while a cluster is checked, accepted where it is not.
    let nacos =
        format!("/nacos/v1/ns/health/instance?namespaceId=pay&serviceName=ledger&ip=127.0.0.1&port={up}&healthy=false");
    let refused = nodes[0].call(Method::PUT, &nacos, None).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text());
    let by_hand = format!("{nacos}&clusterName=manual").replace(&format!("port={up}"), &format!("port={}", down[0]));
    let accepted = nodes[0].call(Method::PUT, &by_hand, None).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
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
    until_status(&nodes[0], Method::POST, "/v1/namespaces", json!({"id": "team-x", "mode": "ap"}), StatusCode::CREATED)
        .await;
    let web = "/v1/namespaces/team-x/services/web/instances";
    all_ready(&nodes).await;
    until_status(&nodes[0], Method::POST, web, json!({"ip": "10.0.0.1", "port": 80}), StatusCode::CREATED).await;
    until_listed_in(&nodes, "team-x", "web", 1).await;
    let applied: Vec<u64> = nodes.iter().map(|n| n.server.node.cp().applied_index()).collect();
    for node in &nodes {
        let refused = node.call(Method::DELETE, "/v1/namespaces/team-x", None).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after: Vec<u64> = nodes.iter().map(|n| n.server.node.cp().applied_index()).collect();
    assert_eq!(applied, after, "refused deletes never enter the Raft log");

    for restarted in 0..nodes.len() {
        let seen = nodes[restarted].client.namespace("team-x").await.unwrap().revision;
        let node = nodes.remove(restarted);
        let data = node.stop_keeping_data(Duration::from_secs(5)).await;
        let id = u64::try_from(restarted + 1).unwrap();
        nodes.insert(
            restarted,
            Node::start_in(data, member_config(id, ports[restarted], &members, &secret, |_| {})).await,
        );
        all_ready(&nodes).await;
        for node in &nodes {
            let answer = node.client.namespace("team-x").await;
            assert!(
                answer.is_ok(),
                "node {} after restarting node {}: {answer:?}",
                node.server.http_addr,
                restarted + 1
            );
        }
        let now = nodes[restarted].client.namespace("team-x").await.unwrap().revision;
        assert!(now >= seen, "node {}: the namespace's revision went back from {seen} to {now}", restarted + 1);
    }
    for node in nodes {
        node.stop_within(Duration::from_secs(5)).await;
    }
}

async fn until_listed_in(nodes: &[Node], namespace: &str, service: &str, count: usize) {
    let start = Instant::now();
    let of = ServiceRef::new(namespace, service);
    for node in nodes {
        loop {
            let list = node.client.list_instances(&of, &ListOptions::default()).await;
            if list.as_ref().is_ok_and(|l| l.instances.len() == count) {
                break;
            }
            let addr = node.server.http_addr;
            assert!(start.elapsed() < Duration::from_secs(10), "{addr}: not {count} instances after 10 s: {list:?}");
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
    all_ready(&nodes).await;
    until_status(&nodes[0], Method::POST, "/v1/namespaces", json!({"id": "churn", "mode": "cp"}), StatusCode::CREATED)
        .await;
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

/// `n` loopback HTTP ports whose port + 1000 (the gRPC port Nacos SDKs
/// derive) is free too.
fn http_ports_with_grpc(n: usize) -> Vec<u16> {
    let mut ports = Vec::new();
    while ports.len() < n {
        let port = free_ports(1)[0];
        let grpc_free = std::net::TcpListener::bind(("127.0.0.1", port + 1000)).is_ok();
        if grpc_free && !ports.contains(&port) && port + 1000 <= 32_767 {
            ports.push(port);
        }
    }
    ports
}

struct Pushes(tokio::sync::mpsc::UnboundedSender<Vec<i32>>);

impl nacos_sdk::api::naming::NamingEventListener for Pushes {
    fn event(&self, event: std::sync::Arc<nacos_sdk::api::naming::NamingChangeEvent>) {
        let ports = event.instances.iter().flatten().map(|i| i.port).collect();
        let _ = self.0.send(ports);
    }
}

async fn sdk_of(nodes: &[&Node]) -> (nacos_sdk::api::naming::NamingService, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let servers: Vec<String> = nodes.iter().map(|n| n.server.http_addr.to_string()).collect();
    let props = nacos_sdk::api::props::ClientProps::new()
        .server_addr(servers.join(","))
        .namespace("")
        .env_first(false)
        .naming_push_empty_protection(false)
        .naming_load_cache_at_start(false)
        .cache_dir(cache.path());
    let naming = nacos_sdk::api::naming::NamingServiceBuilder::new(props).build().await.unwrap();
    (naming, cache)
}

fn binding_node(node: &Node, service: &str, port: u16) -> Option<u64> {
    let key = janus_core::ServiceKey::new(
        janus_core::NamespaceId::public(),
        janus_core::GroupName::default_group(),
        janus_core::ServiceName::new(service).unwrap(),
    );
    let instance =
        janus_core::InstanceKey::new(janus_core::ClusterName::default_cluster(), "127.0.0.1".parse().unwrap(), port);
    let registry: &dyn janus_core::RegistryService = &*node.server.node;
    registry.view().read(|r| r.binding_of(&key, &instance)).map(|b| b.node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_clients_instance_survives_its_node_and_is_never_undone_by_the_late_cleanup() {
    const GRACE_MS: u64 = 20_000;
    let cluster_ports = free_ports(3);
    let http_ports = http_ports_with_grpc(3);
    let members: Vec<String> = (1..).zip(&cluster_ports).map(|(id, port)| format!("{id}@127.0.0.1:{port}")).collect();
    let secret = secret();
    let mut nodes = Vec::new();
    for ((id, port), http) in (1..).zip(&cluster_ports).zip(&http_ports) {
        let http = *http;
        let tweak = move |config: &mut janus_server::ServerConfig| {
            config.http.addr = ([127, 0, 0, 1], http).into();
            config.distro.verify_interval_ms = 1_000;
            config.distro.bound_orphan_grace_ms = GRACE_MS;
        };
        nodes.push(Node::start(member_config(id, *port, &members, &secret, tweak)).await);
    }
    // Every node is ready (Distro) before the client starts.
    for node in &nodes {
        until_status(node, Method::GET, "/ready", json!(null), StatusCode::OK).await;
    }

    // A client of all three nodes; it connects to one of them (the SDK picks).
    let (client, _client_cache) = sdk_of(&nodes.iter().collect::<Vec<_>>()).await;
    let connections =
        |node: &Node| node.server.grpc_stats.as_ref().unwrap().connections.load(std::sync::atomic::Ordering::Relaxed);
    let start = Instant::now();
    let binder = loop {
        if let Some(i) = nodes.iter().position(|n| connections(n) == 1) {
            break i;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the client connected nowhere");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (watcher, other) = match binder {
        0 => (1, 2),
        1 => (2, 0),
        _ => (0, 1),
    };

    // A subscriber on another node is pushed the client's registration.
    let (subscriber, _subscriber_cache) = sdk_of(&[&nodes[watcher]]).await;
    let (sender, mut pushes) = tokio::sync::mpsc::unbounded_channel();
    subscriber.subscribe("moving".into(), None, vec![], std::sync::Arc::new(Pushes(sender))).await.unwrap();
    let registered = Instant::now();
    let instance = nacos_sdk::api::naming::ServiceInstance {
        ip: "127.0.0.1".to_owned(),
        port: 7300,
        ..nacos_sdk::api::naming::ServiceInstance::default()
    };
    client.register_instance("moving".into(), None, instance).await.unwrap();
    loop {
        let ports = tokio::time::timeout(Duration::from_secs(5), pushes.recv()).await.expect("a push").unwrap();
        if ports == [7300] {
            break;
        }
    }
    eprintln!("cross-node push after {:?}", registered.elapsed());
    assert_eq!(binding_node(&nodes[watcher], "moving", 7300), Some(binder as u64 + 1));

    // A poller on the watching node records every moment the instance is missing.
    let watched = nodes[watcher].client.clone();
    let polling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let poll_flag = polling.clone();
    let poller = tokio::spawn(async move {
        let (mut longest, mut missing_since) = (Duration::ZERO, None::<Instant>);
        while poll_flag.load(std::sync::atomic::Ordering::Relaxed) {
            let answer =
                watched.request(Method::GET, "/nacos/v1/ns/instance/list?serviceName=moving", Body::Empty).await;
            let present = answer.is_ok_and(|a| a.text().contains("7300"));
            match (present, missing_since) {
                (false, None) => missing_since = Some(Instant::now()),
                (true, Some(since)) => {
                    longest = longest.max(since.elapsed());
                    missing_since = None;
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        longest.max(missing_since.map_or(Duration::ZERO, |s| s.elapsed()))
    });

    // The client's node goes away; the client reconnects to another one and redoes.
    let stopped = Instant::now();
    nodes.remove(binder).stop_within(Duration::from_secs(10)).await;
    let (watcher, other) =
        (if watcher > binder { watcher - 1 } else { watcher }, if other > binder { other - 1 } else { other });
    let start = Instant::now();
    while binding_node(&nodes[watcher], "moving", 7300) == Some(binder as u64 + 1) {
        assert!(start.elapsed() < Duration::from_secs(40), "the client did not register again elsewhere");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reconnect = stopped.elapsed();
    eprintln!("the client's redo took over after {reconnect:?}");

    // Past the orphan grace and two verify rounds: the old connection's cleanup undid nothing.
    tokio::time::sleep(Duration::from_millis(GRACE_MS + 2_000).saturating_sub(reconnect)).await;
    polling.store(false, std::sync::atomic::Ordering::Relaxed);
    let longest_missing = poller.await.unwrap();
    eprintln!("longest time missing from the watching node: {longest_missing:?}");
    assert!(longest_missing <= reconnect, "missing for {longest_missing:?}, longer than the reconnect ({reconnect:?})");
    for node in [&nodes[watcher], &nodes[other]] {
        let list = json(&node.get("/nacos/v1/ns/instance/list?serviceName=moving").await);
        assert_eq!(list["hosts"].as_array().map(Vec::len), Some(1), "{list}");
        let bound_to = binding_node(node, "moving", 7300);
        assert!(bound_to.is_some_and(|n| n != binder as u64 + 1), "bound to {bound_to:?}");
    }
}
