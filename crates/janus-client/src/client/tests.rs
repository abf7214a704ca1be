//! The client against scripted servers: typed operations on the wire,
//! failover, timeouts, refusals, pooling.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use janus_api::native::{CreateNamespace, Mode};

use crate::testing::{FakeServer, Reply, closed_addr};
use crate::{Body, Client, Error, ListOptions, Method, Options, Request, ServiceRef, StatusCode, registration};

const ACK: &str = r#"{"namespace":"team","mode":"ap","revision":7}"#;
const NAMESPACE: &str = r#"{"id":"team","name":"team","description":"","mode":"ap","service_count":0,"revision":3}"#;
const UNAVAILABLE: &str = r#"{"code":"unavailable","message":"namespace 'pay' (cp) has no quorum"}"#;
const OVERLOADED: &str = r#"{"code":"overloaded","message":"too many writes"}"#;

fn client(addrs: &[&str]) -> Client {
    Client::new(addrs, Options::default()).unwrap()
}

fn create_team() -> CreateNamespace {
    CreateNamespace { id: "team".to_owned(), name: None, description: None, mode: Mode::Ap, dns: None }
}

#[tokio::test]
async fn a_registration_goes_out_as_the_api_defines_it() {
    let server = FakeServer::answering(201, ACK).await;
    let web = ServiceRef::new("team", "web shop").in_group(Some("blue"));
    let mut instance = registration("10.0.0.7", 8080);
    instance.cluster = Some("east".to_owned());
    let ack = client(&[&server.addr]).register_instance(&web, &instance).await.unwrap();
    assert_eq!((ack.namespace.as_str(), ack.mode, ack.revision), ("team", Mode::Ap, 7));
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].target, "/v1/namespaces/team/services/web%20shop/instances?group=blue");
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(seen[0].header("host"), Some(server.addr.as_str()));
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!((&body["ip"], &body["port"], &body["cluster"]), (&"10.0.0.7".into(), &8080.into(), &"east".into()));
}

#[test]
fn a_service_shows_its_namespace_group_and_name() {
    assert_eq!(ServiceRef::new("team", "web").to_string(), "team/web");
    assert_eq!(ServiceRef::new("team", "web").in_group(Some("blue")).to_string(), "team/blue@@web");
}

#[tokio::test]
async fn heartbeats_deregistrations_and_blocking_lists_use_their_paths() {
    let server = FakeServer::start(|seen| match seen.method.as_str() {
        "PUT" => Reply::json(200, r#"{"mode":"ap","beat_interval_ms":5000}"#),
        "DELETE" => Reply::json(200, ACK),
        _ => Reply::json(
            200,
            r#"{"namespace":"team","mode":"ap","group":"DEFAULT_GROUP","service":"web","revision":9,
                "reach_protection_threshold":false,"instances":[{"instance_id":"i","ip":"10.0.0.7","port":80,
                "cluster":"DEFAULT","weight":1.0,"healthy":true,"enabled":true,"ephemeral":true,"metadata":{}}]}"#,
        )
        .with_index(9),
    })
    .await;
    let client = client(&[&server.addr]);
    let web = ServiceRef::new("team", "web");
    let beat = client.heartbeat(&web, "fe80::1", 80, Some("east")).await.unwrap();
    assert_eq!(beat.beat_interval_ms, 5000);
    client.deregister_instance(&web, "10.0.0.7", 80, None).await.unwrap();
    let options = ListOptions::default().clusters(["a", "b"]).healthy_only().watch(8, Duration::from_millis(1500));
    let list = client.list_instances(&web, &options).await.unwrap();
    assert_eq!((list.revision, list.instances.len(), list.instances[0].port), (9, 1, 80));
    let targets: Vec<String> = server.seen().into_iter().map(|s| format!("{} {}", s.method, s.target)).collect();
    assert_eq!(
        targets,
        [
            "PUT /v1/namespaces/team/services/web/instances/fe80%3A%3A1/80/heartbeat?cluster=east",
            "DELETE /v1/namespaces/team/services/web/instances/10.0.0.7/80",
            "GET /v1/namespaces/team/services/web/instances?cluster=a%2Cb&healthy_only=true&index=8&wait=1500ms",
        ]
    );
}

#[tokio::test]
async fn a_blocking_query_may_take_its_wait_on_top_of_the_request_timeout() {
    let server =
        FakeServer::start(|_| Reply::json(200, r#"{"namespaces":[]}"#).after(Duration::from_millis(400))).await;
    let options = Options::default().request_timeout(Duration::from_millis(200));
    let client = Client::new([&server.addr], options).unwrap();
    // A plain read is cut at 200 ms…
    let error = client.list_namespaces().await.unwrap_err();
    assert!(matches!(&error, Error::Timeout { after, .. } if *after == Duration::from_millis(200)), "{error:?}");
    // …a blocking query waiting up to 1 s is not.
    let server = FakeServer::start(|_| {
        Reply::json(
            200,
            r#"{"namespace":"public","mode":"ap","group":"DEFAULT_GROUP","service":"web","revision":2,
                "reach_protection_threshold":false,"instances":[]}"#,
        )
        .after(Duration::from_millis(400))
    })
    .await;
    let client = Client::new([&server.addr], options_with_timeout(200)).unwrap();
    let watch = ListOptions::default().watch(1, Duration::from_secs(1));
    assert_eq!(client.list_instances(&ServiceRef::new("public", "web"), &watch).await.unwrap().revision, 2);
}

fn options_with_timeout(ms: u64) -> Options {
    Options::default().request_timeout(Duration::from_millis(ms))
}

#[tokio::test]
async fn an_address_that_refuses_connections_is_skipped_for_any_request() {
    let server = FakeServer::answering(201, NAMESPACE).await;
    let closed = closed_addr();
    let client = client(&[&closed, &server.addr]);
    // Not even a POST was sent to the closed port, so it goes on to the next.
    let created = client.create_namespace(&create_team()).await.unwrap();
    assert_eq!(created.id, "team");
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn unreachable_names_every_address_tried() {
    let (first, second) = (closed_addr(), closed_addr());
    let error = client(&[&first, &second]).list_namespaces().await.unwrap_err();
    let Error::Unreachable { tried } = &error else { panic!("{error:?}") };
    let addrs: Vec<&str> = tried.iter().map(|t| t.addr.as_str()).collect();
    assert_eq!(addrs, [first.as_str(), second.as_str()]);
    assert!(tried.iter().all(|t| t.reason == "connection refused"), "{tried:?}");
    assert_eq!(error.to_string(), format!("cannot reach {first} (connection refused), {second} (connection refused)"));
}

#[tokio::test]
async fn a_503_moves_a_read_on_but_not_a_create() {
    let busy = FakeServer::answering(503, UNAVAILABLE).await;
    let fine = FakeServer::answering(200, r#"{"namespaces":[]}"#).await;
    let client = client(&[&busy.addr, &fine.addr]);
    assert!(client.list_namespaces().await.unwrap().namespaces.is_empty());
    assert_eq!((busy.seen().len(), fine.seen().len()), (1, 1));

    // A create may commit later: the 503 is the answer.
    let error = client.create_namespace(&create_team()).await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(StatusCode::SERVICE_UNAVAILABLE), Some("unavailable")));
    assert_eq!(error.to_string(), "namespace 'pay' (cp) has no quorum (HTTP 503)");
    assert_eq!((busy.seen().len(), fine.seen().len()), (2, 1), "the create was not sent to the second server");

    // Unless the caller says it may be repeated.
    let request = Request::new(Method::POST, "/v1/namespaces").body(Body::Json("{}".into())).retry_safe(true);
    assert_eq!(client.send(request).await.unwrap().status, StatusCode::OK);
    assert_eq!((busy.seen().len(), fine.seen().len()), (3, 2));
}

#[tokio::test]
async fn a_shed_request_moves_on_whatever_its_method() {
    let shedding = FakeServer::answering(503, OVERLOADED).await;
    let fine = FakeServer::answering(201, NAMESPACE).await;
    let created = client(&[&shedding.addr, &fine.addr]).create_namespace(&create_team()).await.unwrap();
    assert_eq!(created.id, "team");
    // With every server shedding, the last 503 is the answer.
    let other = FakeServer::answering(503, OVERLOADED).await;
    let answer = client(&[&shedding.addr, &other.addr]).request(Method::POST, "/v1/x", Body::Empty).await.unwrap();
    assert_eq!((answer.status, answer.addr.as_str()), (StatusCode::SERVICE_UNAVAILABLE, other.addr.as_str()));
    assert_eq!(answer.retry_after(), None);
}

#[tokio::test]
async fn a_timeout_moves_a_read_on_but_a_create_reports_it() {
    let stuck = FakeServer::start(|_| Reply::Hang).await;
    let fine = FakeServer::answering(200, r#"{"namespaces":[]}"#).await;
    let client = Client::new([&stuck.addr, &fine.addr], options_with_timeout(300)).unwrap();
    let started = Instant::now();
    client.list_namespaces().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));

    let error = client.create_namespace(&create_team()).await.unwrap_err();
    assert!(matches!(&error, Error::Timeout { addr, .. } if *addr == stuck.addr), "{error:?}");
    assert_eq!(fine.seen().len(), 1, "the create was not repeated elsewhere");
}

#[tokio::test]
async fn a_connection_broken_before_the_answer_moves_only_safe_requests_on() {
    let hangs_up = FakeServer::start(|_| Reply::HangUp).await;
    let fine = FakeServer::answering(200, ACK).await;
    let client = client(&[&hangs_up.addr, &fine.addr]);
    let web = ServiceRef::new("team", "web");
    // A registration is an upsert: safe to send again.
    client.register_instance(&web, &registration("10.0.0.1", 1)).await.unwrap();
    assert_eq!(fine.seen().len(), 1);
    let error = client.request(Method::PATCH, "/v1/namespaces/team", Body::Empty).await.unwrap_err();
    assert!(matches!(&error, Error::Broken { addr, .. } if *addr == hangs_up.addr), "{error:?}");
    assert_eq!(fine.seen().len(), 1);
}

#[tokio::test]
async fn refusals_carry_the_servers_code_and_message_and_odd_answers_are_malformed() {
    let server = FakeServer::start(|seen| {
        if seen.target.starts_with("/v1/namespaces/") {
            Reply::json(404, r#"{"code":"not_found","message":"namespace 'x' does not exist"}"#)
        } else {
            Reply::json(200, "<html>not json</html>")
        }
    })
    .await;
    let client = client(&[&server.addr]);
    let error = client.namespace("x").await.unwrap_err();
    let Error::Refused { status, code, message, addr } = &error else { panic!("{error:?}") };
    assert_eq!(
        (status.as_u16(), code.as_deref(), message.as_str()),
        (404, Some("not_found"), "namespace 'x' does not exist")
    );
    assert_eq!(addr, &server.addr);
    let error = client.list_namespaces().await.unwrap_err();
    assert!(matches!(error, Error::Malformed { .. }), "{error:?}");
    // The raw request hands back any status as it is.
    let raw = client.request(Method::GET, "/v1/namespaces/x", Body::Empty).await.unwrap();
    assert_eq!(
        (raw.status, raw.json::<serde_json::Value>().unwrap()["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn requests_share_keep_alive_connections() {
    let server = FakeServer::answering(200, r#"{"namespaces":[]}"#).await;
    let client = client(&[&server.addr]);
    for _ in 0..5 {
        client.list_namespaces().await.unwrap();
    }
    client.clone().list_namespaces().await.unwrap();
    assert_eq!(server.seen().len(), 6);
    assert_eq!(server.connections(), 1, "one pooled connection served every request");
}

#[tokio::test]
async fn a_client_with_another_timeout_shares_the_pool() {
    let server =
        FakeServer::start(|_| Reply::json(200, r#"{"namespaces":[]}"#).after(Duration::from_millis(300))).await;
    let quick = Client::new([&server.addr], options_with_timeout(100)).unwrap();
    assert!(matches!(quick.list_namespaces().await, Err(Error::Timeout { .. })));
    let patient = quick.with_request_timeout(Duration::from_secs(2));
    patient.list_namespaces().await.unwrap();
    patient.list_namespaces().await.unwrap();
    assert_eq!(quick.options().request_timeout, Duration::from_millis(100));
    // The two patient calls shared one pooled connection (the cut-short call may have had its own).
    assert!(server.connections() <= 2, "{} connections", server.connections());
}

#[tokio::test]
async fn the_bearer_token_goes_in_the_authorization_header() {
    let server = FakeServer::answering(200, "{}").await;
    let client = Client::new([&server.addr], Options::default().bearer("cluster-secret")).unwrap();
    client.request(Method::GET, "/internal/admin/members", Body::Empty).await.unwrap();
    assert_eq!(server.seen()[0].header("authorization"), Some("Bearer cluster-secret"));
    assert!(!format!("{client:?}").contains("cluster-secret"));
}

#[tokio::test]
async fn ready_is_true_on_200_and_false_on_503() {
    let ready = FakeServer::answering(200, "ready").await;
    let loading = FakeServer::answering(503, "loading").await;
    assert!(client(&[&ready.addr]).ready().await.unwrap());
    assert!(!client(&[&loading.addr]).ready().await.unwrap());
    // A GET: a loading node sends the question on to the next.
    assert!(client(&[&loading.addr, &ready.addr]).ready().await.unwrap());
}

#[test]
fn addresses_are_host_and_port_over_plain_http() {
    let client = Client::new(["http://n1:8848/", " n2:8848", "[::1]:8848"], Options::default()).unwrap();
    assert_eq!(client.addrs(), ["n1:8848", "n2:8848", "[::1]:8848"]);
    for bad in ["https://n1:8848", "n1:8848/v1", "", "http://"] {
        assert!(matches!(Client::new([bad], Options::default()), Err(Error::Invalid(_))), "{bad:?}");
    }
    assert!(matches!(Client::new(Vec::<String>::new(), Options::default()), Err(Error::Invalid(_))));
    assert!(matches!(Client::new(["n1:1"], Options::default().bearer("a\nb")), Err(Error::Invalid(_))));
}

#[tokio::test]
async fn a_path_must_be_absolute() {
    let server = FakeServer::answering(200, "{}").await;
    let error = client(&[&server.addr]).request(Method::GET, "health", Body::Empty).await.unwrap_err();
    assert!(matches!(error, Error::Invalid(_)), "{error:?}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn concurrent_requests_each_get_an_answer() {
    let counter = Arc::new(AtomicUsize::new(0));
    let server = {
        let counter = counter.clone();
        FakeServer::start(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Reply::json(200, r#"{"namespaces":[]}"#).after(Duration::from_millis(50))
        })
        .await
    };
    let client = client(&[&server.addr]);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.list_namespaces().await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(counter.load(Ordering::SeqCst), 8);
}
