//! The Nacos gRPC front end with a real client: the Rust `nacos-sdk` 0.8.3,
//! in this process and, where a client must die, in a child process.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use janus_client::{Method, StatusCode};
use janus_e2e::{Node, json};
use nacos_sdk::api::naming::{
    NamingChangeEvent, NamingEventListener, NamingService, NamingServiceBuilder, ServiceInstance,
};
use nacos_sdk::api::props::ClientProps;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::sync::mpsc;

/// A Nacos SDK client of `node` in `namespace` ("" is `public`).
async fn sdk(node: &Node, namespace: &str) -> (NamingService, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let props = ClientProps::new()
        .server_addr(node.server.http_addr.to_string())
        .remote_grpc_port(node.server.grpc_addr.expect("gRPC is served").port())
        .namespace(namespace)
        .env_first(false)
        .naming_push_empty_protection(false)
        .naming_load_cache_at_start(false)
        .cache_dir(cache.path());
    let naming = NamingServiceBuilder::new(props).build().await.expect("the SDK connects");
    (naming, cache)
}

fn instance(ip: &str, port: i32) -> ServiceInstance {
    ServiceInstance { ip: ip.to_owned(), port, ..ServiceInstance::default() }
}

fn ports(instances: &[ServiceInstance]) -> Vec<i32> {
    let mut ports: Vec<i32> = instances.iter().map(|i| i.port).collect();
    ports.sort_unstable();
    ports
}

/// The ports a Nacos v1 list over HTTP shows.
async fn http_ports(node: &Node, query: &str) -> Vec<i64> {
    let answer = node.get(&format!("/nacos/v1/ns/instance/list?{query}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let mut ports: Vec<i64> =
        json(&answer)["hosts"].as_array().unwrap().iter().map(|h| h["port"].as_i64().unwrap()).collect();
    ports.sort_unstable();
    ports
}

/// Polls `check` every 50 ms until it holds or `limit` passes.
async fn until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_nacos_sdk_registers_queries_and_lists_over_grpc() {
    let node = Node::start(|_| {}).await;
    let (naming, _cache) = sdk(&node, "").await;

    naming.register_instance("orders".into(), None, instance("127.0.0.1", 8081)).await.unwrap();
    let all = naming.get_all_instances("orders".into(), None, vec![], false).await.unwrap();
    assert_eq!(ports(&all), [8081]);
    assert!(all[0].ephemeral && all[0].healthy);
    // The same registry over HTTP: Nacos v1 and the native API.
    assert_eq!(http_ports(&node, "serviceName=orders").await, [8081]);
    let native = node.get("/v1/namespaces/public/services/orders/instances").await;
    assert_eq!(json(&native)["instances"][0]["port"], 8081, "{}", native.text());

    // A register replaces what the connection published for the service (Nacos's rule).
    naming.register_instance("orders".into(), None, instance("127.0.0.1", 8082)).await.unwrap();
    assert_eq!(http_ports(&node, "serviceName=orders").await, [8082]);

    // A batch register replaces the set too.
    let batch = vec![instance("127.0.0.1", 9001), instance("127.0.0.1", 9002), instance("127.0.0.1", 9003)];
    naming.batch_register_instance("payments".into(), Some("billing".into()), batch).await.unwrap();
    let all = naming.get_all_instances("payments".into(), Some("billing".into()), vec![], false).await.unwrap();
    assert_eq!(ports(&all), [9001, 9002, 9003]);
    naming
        .batch_register_instance("payments".into(), Some("billing".into()), vec![instance("127.0.0.1", 9002)])
        .await
        .unwrap();
    assert_eq!(http_ports(&node, "serviceName=payments&groupName=billing").await, [9002]);

    // A query with a cluster filter.
    let blue = ServiceInstance { cluster_name: Some("blue".into()), ..instance("127.0.0.1", 7001) };
    naming.register_instance("colors".into(), None, blue).await.unwrap();
    let in_blue = naming.select_instances("colors".into(), None, vec!["blue".into()], false, true).await.unwrap();
    assert_eq!(ports(&in_blue), [7001]);
    let in_green = naming.select_instances("colors".into(), None, vec!["green".into()], false, false).await.unwrap();
    assert!(in_green.is_empty(), "{in_green:?}");

    // The service list of a group: plain names, paged.
    let (names, count) = naming.get_service_list(1, 10, None).await.unwrap();
    let mut names = names;
    names.sort();
    assert_eq!((names, count), (vec!["colors".to_owned(), "orders".to_owned()], 2));
    let (page, count) = naming.get_service_list(2, 1, None).await.unwrap();
    assert_eq!((page.len(), count), (1, 2));

    // A deregister withdraws the connection's instance of the service.
    naming.deregister_instance("orders".into(), None, instance("127.0.0.1", 8082)).await.unwrap();
    assert!(http_ports(&node, "serviceName=orders").await.is_empty());

    // Operators see the connection: /v1/cluster, /metrics.
    let status = json(&node.get("/v1/cluster").await);
    assert_eq!(status["grpc"]["connections"], 1, "{status}");
    assert!(status["grpc"]["requests"].as_u64().unwrap() >= 10, "{status}");
    let metrics = node.get("/metrics").await.text().into_owned();
    assert!(metrics.contains("janus_grpc_connections 1"), "{metrics}");
}

struct Events(mpsc::UnboundedSender<Arc<NamingChangeEvent>>);

impl NamingEventListener for Events {
    fn event(&self, event: Arc<NamingChangeEvent>) {
        let _ = self.0.send(event);
    }
}

/// The next event whose ports are `wanted`, within five seconds.
async fn next_push(events: &mut mpsc::UnboundedReceiver<Arc<NamingChangeEvent>>, wanted: &[i32]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no push with ports {wanted:?} within 5 s"))
            .expect("the listener lives");
        if ports(event.instances.as_deref().unwrap_or_default()) == wanted {
            return;
        }
    }
}

#[tokio::test]
async fn a_subscriber_is_pushed_every_change_whatever_api_made_it() {
    let node = Node::start(|_| {}).await;
    let (naming, _cache) = sdk(&node, "").await;
    let (sender, mut events) = mpsc::unbounded_channel();
    let listener = Arc::new(Events(sender));
    naming.subscribe("watched".into(), None, vec![], listener.clone()).await.unwrap();

    // A registration over HTTP (Nacos v1) is pushed.
    let register = "serviceName=watched&ip=127.0.0.1&port=6001&ephemeral=true";
    assert_eq!(node.form(Method::POST, "/nacos/v1/ns/instance", register).await.status, StatusCode::OK);
    next_push(&mut events, &[6001]).await;
    // So is one over the native API, and one over gRPC by another client.
    let native = json!({"ip": "127.0.0.1", "port": 6002});
    let answer = node.call(Method::POST, "/v1/namespaces/public/services/watched/instances", Some(native)).await;
    assert!(answer.status.is_success(), "{}", answer.text());
    next_push(&mut events, &[6001, 6002]).await;
    let (other, _other_cache) = sdk(&node, "").await;
    other.register_instance("watched".into(), None, instance("127.0.0.1", 6003)).await.unwrap();
    next_push(&mut events, &[6001, 6002, 6003]).await;

    // A deregistration is pushed, down to an empty list.
    let deregister = "serviceName=watched&ip=127.0.0.1&port=6001&ephemeral=true";
    assert_eq!(node.form(Method::DELETE, "/nacos/v1/ns/instance", deregister).await.status, StatusCode::OK);
    next_push(&mut events, &[6002, 6003]).await;
    other.deregister_instance("watched".into(), None, instance("127.0.0.1", 6003)).await.unwrap();
    next_push(&mut events, &[6002]).await;
    let path = "/v1/namespaces/public/services/watched/instances/127.0.0.1/6002";
    assert!(node.call(Method::DELETE, path, None).await.status.is_success());
    next_push(&mut events, &[]).await;

    // Unsubscribed: the server pushes no more (the SDK drops its listener, so
    // the server's counters tell).
    let stats = node.server.grpc_stats.clone().unwrap();
    naming.unsubscribe("watched".into(), None, vec![], listener).await.unwrap();
    assert_eq!(stats.subscriptions.load(Ordering::Relaxed), 0);
    let sent = stats.pushes_sent.load(Ordering::Relaxed);
    assert_eq!(node.form(Method::POST, "/nacos/v1/ns/instance", register).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stats.pushes_sent.load(Ordering::Relaxed), sent, "a push after unsubscribing");
    assert_eq!(stats.pushes_acked.load(Ordering::Relaxed), sent, "every push was acknowledged");
}

#[tokio::test]
async fn a_persistent_instance_in_a_cp_namespace_survives_a_restart() {
    let node = Node::start(|_| {}).await;
    let created = node.call(Method::POST, "/v1/namespaces", Some(json!({"id": "prod", "mode": "cp"}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let (naming, _cache) = sdk(&node, "prod").await;

    let persistent = ServiceInstance { ephemeral: false, ..instance("127.0.0.1", 5432) };
    naming.register_instance("db".into(), None, persistent).await.unwrap();
    assert_eq!(http_ports(&node, "serviceName=db&namespaceId=prod").await, [5432]);

    // An ephemeral instance does not fit a cp namespace: the error names it and its mode.
    let refused = naming.register_instance("cache".into(), None, instance("127.0.0.1", 6379)).await;
    let message = format!("{:?}", refused.expect_err("ephemeral instances need an ap namespace"));
    assert!(message.contains("prod") && message.contains("cp"), "{message}");

    drop(naming);
    let data = node.stop_keeping_data(Duration::from_secs(10)).await;
    let node = Node::start_in(data, |_| {}).await;
    assert_eq!(http_ports(&node, "serviceName=db&namespaceId=prod").await, [5432]);
}

#[tokio::test]
async fn a_namespace_that_does_not_exist_is_refused_with_its_name() {
    let node = Node::start(|_| {}).await;
    let (naming, _cache) = sdk(&node, "nowhere").await;
    let refused = naming.register_instance("svc".into(), None, instance("127.0.0.1", 1)).await;
    let message = format!("{:?}", refused.expect_err("the namespace does not exist"));
    assert!(message.contains("nowhere"), "{message}");
}

/// A `nacos-sdk-client` child process registered `ip:port` in `service`.
async fn spawn_client(node: &Node, service: &str, port: u16) -> tokio::process::Child {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_nacos-sdk-client"))
        .args([
            node.server.http_addr.to_string(),
            node.server.grpc_addr.unwrap().port().to_string(),
            String::new(),
            service.to_owned(),
            "127.0.0.1".to_owned(),
            port.to_string(),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the client starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
    assert!(matches!(ready, Ok(Ok(Some(ref line))) if line == "ready"), "the client did not register: {ready:?}");
    child
}

#[tokio::test]
async fn a_killed_clients_instances_go_at_once_and_a_frozen_ones_after_detection() {
    let node = Node::start(|c| {
        c.grpc.detect_idle_ms = 1_000;
        c.grpc.detect_timeout_ms = 1_000;
    })
    .await;
    let mut killed = spawn_client(&node, "doomed", 7101).await;
    let frozen = spawn_client(&node, "frozen", 7102).await;
    assert_eq!(http_ports(&node, "serviceName=doomed").await, [7101]);

    // SIGKILL: the socket closes, the instance goes.
    let started = Instant::now();
    killed.kill().await.unwrap();
    until(Duration::from_secs(3), "the killed client's instance removed", || async {
        http_ports(&node, "serviceName=doomed").await.is_empty()
    })
    .await;
    let gone_after = started.elapsed();

    // SIGSTOP: the socket stays up but nothing answers; detection removes it
    // within detect_idle + detect_timeout (plus the client's last beat, 5 s at most).
    let pid = frozen.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    assert_eq!(http_ports(&node, "serviceName=frozen").await, [7102], "still there right after the stop");
    until(Duration::from_secs(9), "the frozen client's instance removed", || async {
        http_ports(&node, "serviceName=frozen").await.is_empty()
    })
    .await;
    let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
    eprintln!("killed client's instance gone after {gone_after:?}");
}

/// A Nacos SDK client of `node` logging in as `username` (Nacos's
/// `auth-by-http` plugin: `POST /nacos/v1/auth/login`, then `accessToken` on
/// every gRPC request).
async fn sdk_as(
    node: &Node,
    username: &str,
    password: &str,
) -> Result<(NamingService, tempfile::TempDir), nacos_sdk::api::error::Error> {
    let cache = tempfile::tempdir().unwrap();
    let props = ClientProps::new()
        .server_addr(node.server.http_addr.to_string())
        .remote_grpc_port(node.server.grpc_addr.expect("gRPC is served").port())
        .env_first(false)
        .naming_push_empty_protection(false)
        .naming_load_cache_at_start(false)
        .cache_dir(cache.path())
        .auth_username(username)
        .auth_password(password);
    let naming = NamingServiceBuilder::new(props).enable_auth_plugin_http().build().await?;
    Ok((naming, cache))
}

/// With auth on, the Rust Nacos SDK logs in with a user's password and
/// works within its grant; wrong credentials fail every call cleanly, and a
/// read grant cannot register.
#[tokio::test]
async fn the_nacos_sdk_logs_in_with_username_and_password_when_auth_is_on() {
    let node = Node::start(|config| config.auth.enabled = Some(true)).await;
    let file = node.data.path().join(janus_server::access::BOOTSTRAP_TOKEN_FILE);
    until(Duration::from_secs(10), "the bootstrap token is written", || async { file.exists() }).await;
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    let admin =
        janus_client::Client::new([node.server.http_addr.to_string()], janus_e2e::options().bearer(&token)).unwrap();
    admin.create_user("svc-orders", Some("orders pass phrase")).await.unwrap();
    admin.grant("svc-orders", "public", "write").await.unwrap();
    admin.create_user("svc-reader", Some("reader pass phrase")).await.unwrap();
    admin.grant("svc-reader", "public", "read").await.unwrap();

    let (naming, _cache) = sdk_as(&node, "svc-orders", "orders pass phrase").await.expect("the SDK logs in");
    naming.register_instance("orders".into(), None, instance("127.0.0.1", 8091)).await.unwrap();
    let all = naming.get_all_instances("orders".into(), None, vec![], false).await.unwrap();
    assert_eq!(ports(&all), [8091]);

    let (reader, _cache2) = sdk_as(&node, "svc-reader", "reader pass phrase").await.expect("the SDK logs in");
    let seen = reader.get_all_instances("orders".into(), None, vec![], false).await.unwrap();
    assert_eq!(ports(&seen), [8091], "a read grant lists");
    let refused = reader.register_instance("orders".into(), None, instance("127.0.0.1", 8092)).await;
    assert!(refused.is_err(), "a read grant cannot register: {refused:?}");

    // A wrong password: the login fails, and so does every call, with an
    // error, never a hang or a success.
    match sdk_as(&node, "svc-orders", "not the password").await {
        Err(_) => {}
        Ok((wrong, _cache3)) => {
            let answer = tokio::time::timeout(
                Duration::from_secs(20),
                wrong.register_instance("orders".into(), None, instance("127.0.0.1", 8093)),
            )
            .await
            .expect("a refused call answers");
            assert!(answer.is_err(), "wrong credentials cannot register: {answer:?}");
        }
    }
    let listed = admin.list_instances(&janus_client::ServiceRef::new("public", "orders"), &Default::default()).await;
    assert_eq!(listed.unwrap().instances.iter().map(|i| i.port).collect::<Vec<_>>(), [8091]);
}
