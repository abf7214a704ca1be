//! The native API and the Nacos v1 core, driven through the router.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::support::TestApp;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

const ORDERS: &str = "/v1/namespaces/public/services/orders/instances";

async fn register(app: &TestApp, ip: &str, port: u16) -> u64 {
    let reply = app.post(ORDERS, json!({"ip": ip, "port": port})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    reply.json()["revision"].as_u64().unwrap()
}

#[tokio::test]
async fn namespace_lifecycle() {
    let app = TestApp::new().await;
    let reply = app.post("/v1/namespaces", json!({"id": "team-a", "description": "team A", "mode": "ap"})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.json()["mode"], "ap");

    let list = app.get("/v1/namespaces").await.json();
    let ids: Vec<_> =
        list["namespaces"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, ["public", "team-a"]);

    let reply = app.call(Method::PATCH, "/v1/namespaces/team-a", Some(json!({"description": "renamed"}))).await;
    assert_eq!(reply.json()["description"], "renamed");
    assert_eq!(reply.json()["mode"], "ap");
    let reply = app.call(Method::PATCH, "/v1/namespaces/team-a", Some(json!({"mode": "cp"}))).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "the mode is fixed at creation");

    let dup = app.post("/v1/namespaces", json!({"id": "team-a", "mode": "ap"})).await;
    assert_eq!((dup.status, dup.json()["code"].as_str()), (StatusCode::CONFLICT, Some("already_exists")));

    let cp = app.post("/v1/namespaces", json!({"id": "payments", "mode": "cp"})).await;
    assert_eq!((cp.status, cp.json()["mode"].as_str()), (StatusCode::CREATED, Some("cp")), "{}", cp.text());

    let reply = app.post("/v1/namespaces/team-a/services/web/instances", json!({"ip": "10.0.0.1", "port": 80})).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let busy = app.call(Method::DELETE, "/v1/namespaces/team-a", None).await;
    assert_eq!((busy.status, busy.json()["code"].as_str()), (StatusCode::CONFLICT, Some("not_empty")));
    app.call(Method::DELETE, "/v1/namespaces/team-a/services/web/instances/10.0.0.1/80", None).await;
    assert_eq!(
        app.call(Method::DELETE, "/v1/namespaces/team-a/services/web", None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.call(Method::DELETE, "/v1/namespaces/team-a", None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/v1/namespaces/team-a").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.call(Method::DELETE, "/v1/namespaces/public", None).await.status, StatusCode::FORBIDDEN);
}

/// The DNS access rule through the native API: set at creation or later,
/// shown on every namespace, kept through Raft.
#[tokio::test]
async fn a_namespace_says_whether_dns_answers_for_it() {
    let app = TestApp::new().await;
    let public = app.get("/v1/namespaces/public").await.json();
    assert_eq!(public["dns"], true, "answered by default: {public}");
    let hidden = app.post("/v1/namespaces", json!({"id": "hidden", "mode": "cp", "dns": false})).await;
    assert_eq!(
        (hidden.status, hidden.json()["dns"].as_bool()),
        (StatusCode::CREATED, Some(false)),
        "{}",
        hidden.text()
    );
    assert!(app.app.node.store().read(|r| r.closed_to_dns(&janus_core::NamespaceId::new("hidden").unwrap())));

    let opened = app.call(Method::PATCH, "/v1/namespaces/hidden", Some(json!({"dns": true}))).await;
    assert_eq!(opened.json()["dns"], true, "{}", opened.text());
    let both = app.call(Method::PATCH, "/v1/namespaces/hidden", Some(json!({"description": "x", "dns": false}))).await;
    assert_eq!((both.json()["dns"].as_bool(), both.json()["description"].as_str()), (Some(false), Some("x")));
    let listed = app.get("/v1/namespaces").await.json();
    let hidden = listed["namespaces"].as_array().unwrap().iter().find(|n| n["id"] == "hidden").unwrap().clone();
    assert_eq!(hidden["dns"], false, "{hidden}");
    let bad = app.call(Method::PATCH, "/v1/namespaces/hidden", Some(json!({"dns": "no"}))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
    let missing = app.call(Method::PATCH, "/v1/namespaces/nowhere", Some(json!({"dns": false}))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn services_page_and_update() {
    let app = TestApp::new().await;
    for name in ["e", "d", "c", "b", "a"] {
        let reply = app.post("/v1/namespaces/public/services", json!({"name": name, "metadata": {"team": "x"}})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    }
    let page = app.get("/v1/namespaces/public/services?page=3&page_size=2").await;
    let body = page.json();
    assert_eq!(body["total"], 5);
    assert_eq!(body["mode"], "ap");
    assert_eq!(body["services"].as_array().unwrap().len(), 1);
    assert_eq!(body["services"][0]["name"], "e");
    assert_eq!(page.index(), body["revision"].as_u64().unwrap());

    let reply =
        app.call(Method::PUT, "/v1/namespaces/public/services/a", Some(json!({"protect_threshold": 0.4}))).await;
    assert_eq!(reply.json()["protect_threshold"], 0.4);
    assert_eq!(reply.json()["metadata"]["team"], "x");
    let reply =
        app.call(Method::PUT, "/v1/namespaces/public/services/a", Some(json!({"protect_threshold": 2.0}))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.json()["message"].as_str().unwrap().contains("protect_threshold"));
    assert_eq!(app.get("/v1/namespaces/public/services/zzz").await.status, StatusCode::NOT_FOUND);
    let bad = app.get("/v1/namespaces/public/services?page_size=0").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn instance_lifecycle() {
    let app = TestApp::new().await;
    let r1 = register(&app, "10.0.0.1", 8080).await;
    let reply = app
        .post(
            &format!("{ORDERS}?cluster=blue"),
            json!({"ip": "2001:db8::7", "port": 9090, "weight": 2.5, "metadata": {"zone": "b"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let r2 = reply.json()["revision"].as_u64().unwrap();
    assert!(r2 > r1);

    let list = app.get(ORDERS).await;
    assert_eq!(list.index(), r2);
    assert_eq!(list.headers["x-janus-mode"], "ap");
    let body = list.json();
    assert_eq!(body["mode"], "ap");
    assert_eq!(body["instances"].as_array().unwrap().len(), 2);

    let blue = app.get(&format!("{ORDERS}?cluster=blue")).await.json();
    assert_eq!(blue["instances"].as_array().unwrap().len(), 1);
    assert_eq!(blue["instances"][0]["ip"], "2001:db8::7");
    assert_eq!(blue["instances"][0]["instance_id"], "2001:db8::7#9090#blue#DEFAULT_GROUP@@orders");

    let one = app.get(&format!("{ORDERS}/2001:db8::7/9090?cluster=blue")).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text());
    assert_eq!(one.json()["weight"], 2.5);

    let patched = app.call(Method::PATCH, &format!("{ORDERS}/10.0.0.1/8080"), Some(json!({"enabled": false}))).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    let listed = app.get(ORDERS).await.json();
    assert_eq!(listed["instances"].as_array().unwrap().len(), 1, "disabled instances are not listed");

    let put = app.call(Method::PUT, &format!("{ORDERS}/10.0.0.1/8080"), Some(json!({"weight": 7.0}))).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    let got = app.get(&format!("{ORDERS}/10.0.0.1/8080")).await.json();
    assert_eq!((got["weight"].as_f64(), got["enabled"].as_bool()), (Some(7.0), Some(true)));
    let missing = app.call(Method::PUT, &format!("{ORDERS}/10.0.0.9/8080"), Some(json!({}))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let beat = app.call(Method::PUT, &format!("{ORDERS}/10.0.0.1/8080/heartbeat"), None).await;
    assert_eq!(beat.json(), json!({"mode": "ap", "beat_interval_ms": 5000}));
    let beat = app.call(Method::PUT, &format!("{ORDERS}/10.0.0.9/8080/heartbeat"), None).await;
    assert_eq!(beat.status, StatusCode::NOT_FOUND);

    let gone = app.call(Method::DELETE, &format!("{ORDERS}/10.0.0.1/8080"), None).await;
    assert_eq!(gone.status, StatusCode::OK);
    let again = app.call(Method::DELETE, &format!("{ORDERS}/10.0.0.1/8080"), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(ORDERS).await.json()["instances"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_service_lists_empty_and_unknown_namespace_is_404() {
    let app = TestApp::new().await;
    let reply = app.get("/v1/namespaces/public/services/nobody/instances").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.json()["instances"].as_array().unwrap().is_empty());
    // Never 0 (Consul's index rule): an unknown service reads as its namespace's revision.
    let public = app.get("/v1/namespaces/public").await.json()["revision"].as_u64().unwrap();
    assert!(reply.index() >= 1);
    assert_eq!(reply.index(), public);
    let reply = app.get("/v1/namespaces/ghost/services/nobody/instances").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.json()["message"].as_str().unwrap().contains("namespace 'ghost' does not exist"));
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx() {
    let app = TestApp::new().await;
    let big_map: serde_json::Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (json!({"port": 80}), StatusCode::BAD_REQUEST, "invalid ip: required"),
        (json!({"ip": "10.0.0.1"}), StatusCode::BAD_REQUEST, "invalid port: required"),
        (json!({"ip": "300.0.0.1", "port": 80}), StatusCode::BAD_REQUEST, "invalid ip"),
        (json!({"ip": "host.example", "port": 80}), StatusCode::BAD_REQUEST, "invalid ip"),
        (json!({"ip": "10.0.0.1", "port": 0}), StatusCode::BAD_REQUEST, "invalid port"),
        (json!({"ip": "10.0.0.1", "port": 70000}), StatusCode::BAD_REQUEST, "invalid port"),
        (json!({"ip": "10.0.0.1", "port": 80, "weight": 10001}), StatusCode::BAD_REQUEST, "invalid weight"),
        (json!({"ip": "10.0.0.1", "port": 80, "weight": -1}), StatusCode::BAD_REQUEST, "invalid weight"),
        (json!({"ip": "10.0.0.1", "port": 80, "metadata": big_map}), StatusCode::BAD_REQUEST, "invalid metadata"),
        (
            json!({"ip": "10.0.0.1", "port": 80, "metadata": {"k": "v".repeat(2000)}}),
            StatusCode::BAD_REQUEST,
            "invalid metadata",
        ),
        (
            json!({"ip": "10.0.0.1", "port": 80, "metadata": {"preserved.ip.delete.timeout": "soon"}}),
            StatusCode::BAD_REQUEST,
            "preserved.ip.delete.timeout",
        ),
        (json!({"ip": "10.0.0.1", "port": 80, "cluster": "bad cluster"}), StatusCode::BAD_REQUEST, "invalid cluster"),
        (json!({"ip": "10.0.0.1", "port": 80, "colour": "red"}), StatusCode::BAD_REQUEST, "unknown field"),
        (json!({"ip": "10.0.0.1", "port": 80, "ephemeral": false}), StatusCode::CONFLICT, "namespace 'public' is ap"),
        (json!({"ip": 5, "port": 80}), StatusCode::BAD_REQUEST, "malformed JSON"),
    ];
    for (body, status, needle) in cases {
        let reply = app.post(ORDERS, body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text());
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(needle), "{body}: {message}");
    }
    let malformed = app.raw(Method::POST, ORDERS, "application/json", "{\"ip\": ").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json()["code"], "invalid_argument");
    let not_json = app.raw(Method::POST, ORDERS, "text/plain", "ip=1").await;
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = app.raw(Method::POST, ORDERS, "application/json", vec![b' '; 2 * 1024 * 1024]).await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    let bad_name =
        app.post("/v1/namespaces/public/services/a%40%40b/instances", json!({"ip": "10.0.0.1", "port": 1})).await;
    assert_eq!(bad_name.status, StatusCode::BAD_REQUEST);
    assert!(bad_name.json()["message"].as_str().unwrap().contains("invalid service"));
    let ghost = app.post("/v1/namespaces/ghost/services/s/instances", json!({"ip": "10.0.0.1", "port": 1})).await;
    assert_eq!(ghost.status, StatusCode::NOT_FOUND);
    let flag = app.get(&format!("{ORDERS}?healthy_only=maybe")).await;
    assert_eq!(flag.status, StatusCode::BAD_REQUEST);
    let wait = app.get(&format!("{ORDERS}?index=1&wait=forever")).await;
    assert_eq!(wait.status, StatusCode::BAD_REQUEST);
    let route = app.get("/v2/nothing").await;
    assert_eq!((route.status, route.json()["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}

#[tokio::test]
async fn protect_threshold_applies_on_every_list() {
    let app = TestApp::new().await;
    app.post("/v1/namespaces/public/services", json!({"name": "orders", "protect_threshold": 0.5})).await;
    register(&app, "10.0.0.1", 1).await;
    register(&app, "10.0.0.2", 2).await;
    // One of two turns unhealthy: 1/2 <= 0.5 fires the threshold.
    app.call(Method::PATCH, &format!("{ORDERS}/10.0.0.2/2"), Some(json!({"healthy": false}))).await;
    let native = app.get(&format!("{ORDERS}?healthy_only=true")).await.json();
    assert_eq!(native["reach_protection_threshold"], true);
    assert_eq!(native["instances"].as_array().unwrap().len(), 2);
    assert!(native["instances"].as_array().unwrap().iter().all(|i| i["healthy"] == true));
    let nacos = app.get("/nacos/v1/ns/instance/list?serviceName=orders&healthyOnly=true").await.json();
    assert_eq!(nacos["reachProtectionThreshold"], true);
    assert_eq!(nacos["hosts"].as_array().unwrap().len(), 2);
    // Below the threshold no longer: healthy-only drops the sick one.
    app.call(Method::PUT, "/v1/namespaces/public/services/orders", Some(json!({"protect_threshold": 0.2}))).await;
    let native = app.get(&format!("{ORDERS}?healthy_only=true")).await.json();
    assert_eq!(native["reach_protection_threshold"], false);
    assert_eq!(native["instances"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn nacos_v1_round_trip() {
    let app = TestApp::new().await;
    let reply = app
        .nacos(
            Method::POST,
            "/nacos/v1/ns/instance",
            &[
                ("serviceName", "DEFAULT_GROUP@@nacos.test.1"),
                ("ip", "10.10.10.10"),
                ("port", "8888"),
                ("cluster", "c1"),
                ("enable", "true"),
                ("weight", "2"),
                ("metadata", "{\"k\":\"v\"}"),
            ],
        )
        .await;
    assert_eq!((reply.status, reply.text()), (StatusCode::OK, "ok".to_owned()));
    let list = app.get("/nacos/v1/ns/instance/list?serviceName=nacos.test.1&groupName=DEFAULT_GROUP").await.json();
    let keys: Vec<&str> = list.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = [
        "name",
        "groupName",
        "clusters",
        "cacheMillis",
        "hosts",
        "lastRefTime",
        "checksum",
        "allIPs",
        "reachProtectionThreshold",
        "valid",
    ];
    expected.sort_unstable();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    assert_eq!(keys_sorted, expected);
    assert_eq!(list["name"], "DEFAULT_GROUP@@nacos.test.1");
    let host = &list["hosts"][0];
    assert_eq!(
        *host,
        json!({"instanceId": "10.10.10.10#8888#c1#DEFAULT_GROUP@@nacos.test.1", "ip": "10.10.10.10", "port": 8888,
               "weight": 2.0, "healthy": true, "enabled": true, "ephemeral": true, "clusterName": "c1",
               "serviceName": "DEFAULT_GROUP@@nacos.test.1", "metadata": {"k": "v"}, "instanceHeartBeatInterval": 5000,
               "instanceIdGenerator": "simple", "instanceHeartBeatTimeOut": 15000, "ipDeleteTimeout": 30000})
    );

    let beat = app
        .nacos(
            Method::PUT,
            "/nacos/v1/ns/instance/beat",
            &[("serviceName", "nacos.test.1"), ("ip", "10.10.10.10"), ("port", "8888"), ("clusterName", "c1")],
        )
        .await;
    assert_eq!(beat.json(), json!({"clientBeatInterval": 5000, "code": 10200, "lightBeatEnabled": true}));
    let unknown = app
        .nacos(
            Method::PUT,
            "/nacos/v1/ns/instance/beat",
            &[("serviceName", "nacos.test.1"), ("ip", "10.10.10.11"), ("port", "8888")],
        )
        .await;
    assert_eq!(unknown.json()["code"], 20404);
    let beat_json = r#"{"cluster":"DEFAULT","ip":"10.10.10.12","port":7000,"metadata":{"preserved.heart.beat.interval":"3000"},"scheduled":true,"serviceName":"DEFAULT_GROUP@@nacos.test.1","weight":1.0}"#;
    let reborn = app
        .nacos(
            Method::PUT,
            "/nacos/v1/ns/instance/beat",
            &[("serviceName", "DEFAULT_GROUP@@nacos.test.1"), ("beat", beat_json)],
        )
        .await;
    assert_eq!(reborn.json(), json!({"clientBeatInterval": 3000, "code": 10200, "lightBeatEnabled": true}));
    let list = app.get("/nacos/v1/ns/instance/list?serviceName=nacos.test.1&clusters=DEFAULT").await.json();
    assert_eq!(list["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(list["clusters"], "DEFAULT");

    let one = app.get("/nacos/v1/ns/instance?serviceName=nacos.test.1&ip=10.10.10.10&port=8888&clusterName=c1").await;
    assert_eq!(one.json()["instanceId"], "10.10.10.10#8888#c1#DEFAULT_GROUP@@nacos.test.1");
    let patched = app
        .nacos(
            Method::PATCH,
            "/nacos/v1/ns/instance",
            &[
                ("serviceName", "nacos.test.1"),
                ("ip", "10.10.10.10"),
                ("port", "8888"),
                ("clusterName", "c1"),
                ("metadata", "a=1,b=2"),
            ],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    let one =
        app.get("/nacos/v1/ns/instance?serviceName=nacos.test.1&ip=10.10.10.10&port=8888&clusterName=c1").await.json();
    assert_eq!(one["metadata"], json!({"a": "1", "b": "2", "k": "v"}));

    for ip in ["10.10.10.10", "10.10.10.99"] {
        let gone = app
            .nacos(
                Method::DELETE,
                "/nacos/v1/ns/instance",
                &[("serviceName", "nacos.test.1"), ("ip", ip), ("port", "8888"), ("clusterName", "c1")],
            )
            .await;
        assert_eq!((gone.status, gone.text()), (StatusCode::OK, "ok".to_owned()));
    }
    // Query-string parameters work as well as form bodies.
    let q = app.call(Method::POST, "/nacos/v1/ns/instance?serviceName=q&ip=10.0.0.1&port=1", None).await;
    assert_eq!(q.text(), "ok");
}

#[tokio::test]
async fn nacos_bad_input() {
    let app = TestApp::new().await;
    type Case<'a> = (Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (vec![("ip", "10.0.0.1"), ("port", "1")], StatusCode::BAD_REQUEST, "serviceName"),
        (vec![("serviceName", "s"), ("port", "1")], StatusCode::BAD_REQUEST, "'ip'"),
        (vec![("serviceName", "s"), ("ip", "10.0.0.1"), ("port", "x")], StatusCode::BAD_REQUEST, "port"),
        (
            vec![("serviceName", "s"), ("ip", "10.0.0.1"), ("port", "1"), ("weight", "20000")],
            StatusCode::BAD_REQUEST,
            "weight",
        ),
        (
            vec![("serviceName", "s"), ("ip", "10.0.0.1"), ("port", "1"), ("metadata", "{oops")],
            StatusCode::BAD_REQUEST,
            "metadata",
        ),
        (
            vec![("serviceName", "s"), ("ip", "10.0.0.1"), ("port", "1"), ("healthy", "yes")],
            StatusCode::BAD_REQUEST,
            "healthy",
        ),
        (
            vec![("serviceName", "s"), ("ip", "10.0.0.1"), ("port", "1"), ("ephemeral", "false")],
            StatusCode::CONFLICT,
            "is ap",
        ),
        (
            vec![("serviceName", "s"), ("ip", "10.0.0.1"), ("port", "1"), ("namespaceId", "ghost")],
            StatusCode::NOT_FOUND,
            "ghost",
        ),
    ];
    for (params, status, needle) in cases {
        let reply = app.nacos(Method::POST, "/nacos/v1/ns/instance", &params).await;
        assert_eq!(reply.status, status, "{params:?}: {}", reply.text());
        assert!(reply.text().contains(needle), "{params:?}: {}", reply.text());
    }
    let beat =
        app.nacos(Method::PUT, "/nacos/v1/ns/instance/beat", &[("serviceName", "s"), ("beat", "{not json")]).await;
    assert_eq!(beat.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn blocking_query_returns_when_the_service_changes() {
    let app = std::sync::Arc::new(TestApp::new().await);
    let revision = register(&app, "10.0.0.1", 1).await;
    let waiter = {
        let app = app.clone();
        tokio::spawn(async move { app.get(&format!("{ORDERS}?index={revision}&wait=30s")).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "nothing changed yet");
    let newer = register(&app, "10.0.0.2", 2).await;
    let reply = tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
    assert_eq!(reply.index(), newer);
    assert_eq!(reply.json()["instances"].as_array().unwrap().len(), 2);

    // Nothing changes: the query returns the same index when its wait ends.
    let started = std::time::Instant::now();
    let reply = app.get(&format!("{ORDERS}?index={newer}&wait=200ms")).await;
    assert_eq!(reply.index(), newer);
    assert!(started.elapsed() >= Duration::from_millis(200));
    // The Nacos list blocks the same way.
    let reply = app.get(&format!("/nacos/v1/ns/instance/list?serviceName=orders&index={newer}&wait=100ms")).await;
    assert_eq!(reply.index(), newer);
}

#[tokio::test]
async fn blocking_service_list_waits_on_the_namespace() {
    let app = std::sync::Arc::new(TestApp::new().await);
    let start = app.get("/v1/namespaces/public/services").await.index();
    let waiter = {
        let app = app.clone();
        tokio::spawn(async move { app.get(&format!("/v1/namespaces/public/services?index={start}&wait=30s")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    app.post("/v1/namespaces/public/services", json!({"name": "fresh"})).await;
    let reply = tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
    assert!(reply.index() > start);
    assert_eq!(reply.json()["services"][0]["name"], "fresh");
}

#[tokio::test]
async fn event_stream_delivers_changes() {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let app = TestApp::new().await;
    let request = Request::get("/v1/namespaces/public/services/orders/events").body(Body::empty()).unwrap();
    let response = app.app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut seen = String::new();
    let mut next_frame = async || {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame()).await.unwrap().unwrap().unwrap();
        String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
    };
    seen.push_str(&next_frame().await);
    assert!(seen.contains("event: ready"), "{seen}");
    // A change to another service is filtered out; ours comes through.
    app.post("/v1/namespaces/public/services/other/instances", json!({"ip": "10.0.0.3", "port": 3})).await;
    register(&app, "10.0.0.1", 1).await;
    while !seen.contains("instance_registered") {
        seen.push_str(&next_frame().await);
    }
    assert!(seen.contains("event: change"), "{seen}");
    assert!(seen.contains("\"instance\":\"10.0.0.1:1\""), "{seen}");
    assert!(!seen.contains("other"), "{seen}");
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let app = TestApp::new().await;
    register(&app, "10.0.0.1", 1).await;
    let health = app.get("/health").await.json();
    assert_eq!(health["status"], "UP");
    assert_eq!(health["instances"], 1);
    assert_eq!(health["self_preservation"], false);
    assert_eq!(app.get("/ready").await.status, StatusCode::OK);
    let metrics = app.get("/metrics").await.text();
    assert!(metrics.contains("janus_instances 1"), "{metrics}");
    assert!(metrics.contains("janus_self_preservation 0"), "{metrics}");
    assert!(metrics.contains("janus_http_requests_total{class=\"2xx\"}"), "{metrics}");
}

#[tokio::test(start_paused = true)]
async fn cached_lists_follow_lease_expiry_without_any_write() {
    let app = TestApp::new().await;
    let reply = app
        .post(
            ORDERS,
            json!({"ip": "10.0.0.1", "port": 1, "metadata": {"preserved.heart.beat.timeout": "1000", "preserved.ip.delete.timeout": "2000"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    for _ in 0..2 {
        // Twice: the second answer comes from the cache.
        let nacos = app.get("/nacos/v1/ns/instance/list?serviceName=orders").await.json();
        assert_eq!(nacos["hosts"][0]["healthy"], true);
        assert_eq!(nacos["hosts"][0]["instanceHeartBeatTimeOut"], 1000);
        assert_eq!(app.get(ORDERS).await.json()["instances"][0]["healthy"], true);
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // The reaper turned it unhealthy: the stored flag says so, and the cached
    // lists were rebuilt (0 of 1 healthy fires the default protect threshold,
    // which shows the instance as healthy with the threshold flag set).
    assert_eq!(app.get(&format!("{ORDERS}/10.0.0.1/1")).await.json()["healthy"], false);
    let native = app.get(ORDERS).await.json();
    assert_eq!(native["reach_protection_threshold"], true, "the reaper's change is seen at once");
    let nacos = app.get("/nacos/v1/ns/instance/list?serviceName=orders").await.json();
    assert_eq!(
        (nacos["hosts"][0]["healthy"].as_bool(), nacos["reachProtectionThreshold"].as_bool()),
        (Some(true), Some(true))
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(app.get(ORDERS).await.json()["instances"].as_array().unwrap().len(), 0);
    assert_eq!(
        app.get("/nacos/v1/ns/instance/list?serviceName=orders").await.json()["hosts"].as_array().unwrap().len(),
        0
    );
}

#[tokio::test]
async fn blocking_namespace_list_waits_for_any_change() {
    let app = std::sync::Arc::new(TestApp::new().await);
    let start = app.get("/v1/namespaces").await.index();
    let waiter = {
        let app = app.clone();
        tokio::spawn(async move { app.get(&format!("/v1/namespaces?index={start}&wait=30s")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished());
    app.post("/v1/namespaces", json!({"id": "late", "mode": "ap"})).await;
    let reply = tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
    assert!(reply.index() > start);
    assert_eq!(reply.json()["namespaces"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn cp_namespaces_hold_persistent_instances_across_a_restart() {
    let app = TestApp::new().await;
    let created = app.post("/v1/namespaces", json!({"id": "payments", "mode": "cp"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let ledger = "/v1/namespaces/payments/services/ledger/instances";
    let reply = app.post(ledger, json!({"ip": "127.0.9.1", "port": 7000, "metadata": {"role": "primary"}})).await;
    assert_eq!((reply.status, reply.json()["mode"].as_str()), (StatusCode::CREATED, Some("cp")), "{}", reply.text());
    app.post(ledger, json!({"ip": "127.0.9.2", "port": 7000})).await;
    let defined =
        app.post("/v1/namespaces/public/services", json!({"name": "catalog", "protect_threshold": 0.25})).await;
    assert_eq!(defined.status, StatusCode::CREATED);
    app.post(ORDERS, json!({"ip": "10.0.0.1", "port": 1})).await;

    let list = app.get(ledger).await;
    assert_eq!(list.headers["x-janus-mode"], "cp");
    let body = list.json();
    assert_eq!(body["instances"].as_array().unwrap().len(), 2);
    assert!(body["instances"].as_array().unwrap().iter().all(|i| i["ephemeral"] == false));
    let beat = app.call(Method::PUT, &format!("{ledger}/127.0.9.1/7000/heartbeat"), None).await;
    assert_eq!(beat.status, StatusCode::CONFLICT, "cp instances are not kept alive by heartbeats");
    let ephemeral = app.post(ledger, json!({"ip": "127.0.9.3", "port": 7000, "ephemeral": true})).await;
    assert_eq!(ephemeral.status, StatusCode::CONFLICT);
    assert!(ephemeral.json()["message"].as_str().unwrap().contains("namespace 'payments' is cp"));

    // Restart on the same data directory: everything on Raft comes back; ephemeral data does not.
    let data = app.stop().await;
    let app = TestApp::on(data, janus_server::ServerConfig::default()).await;
    let list = app.get(ledger).await.json();
    let mut ips: Vec<&str> = list["instances"].as_array().unwrap().iter().map(|i| i["ip"].as_str().unwrap()).collect();
    ips.sort_unstable();
    assert_eq!(ips, ["127.0.9.1", "127.0.9.2"], "acknowledged persistent instances survive a restart");
    assert_eq!(
        list["instances"][0]["metadata"]["role"].as_str().or(list["instances"][1]["metadata"]["role"].as_str()),
        Some("primary")
    );
    assert_eq!(app.get("/v1/namespaces/payments").await.json()["mode"], "cp");
    assert_eq!(
        app.get("/v1/namespaces/public/services/catalog").await.json()["protect_threshold"],
        0.25,
        "service definitions too"
    );
    assert_eq!(
        app.get(ORDERS).await.json()["instances"].as_array().unwrap().len(),
        0,
        "ephemeral instances are not persisted"
    );

    // The data directory belongs to node 1: a node configured with another id refuses it.
    let data = app.stop().await;
    let mut other = janus_server::ServerConfig::default();
    other.node.id = 2;
    other.node.data_dir = data.path().to_owned();
    let refused = janus_server::build(&other, &tokio_util::sync::CancellationToken::new()).await.err().unwrap();
    assert!(format!("{refused:#}").contains("belongs to node 1"), "{refused:#}");
    let app = TestApp::on(data, janus_server::ServerConfig::default()).await;

    let gone = app.call(Method::DELETE, &format!("{ledger}/127.0.9.2/7000"), None).await;
    assert_eq!(gone.status, StatusCode::OK);
    let data = app.stop().await;
    let app = TestApp::on(data, janus_server::ServerConfig::default()).await;
    assert_eq!(
        app.get(ledger).await.json()["instances"].as_array().unwrap().len(),
        1,
        "a deregistration is durable too"
    );
}

#[tokio::test]
async fn reads_say_their_consistency_and_linearizable_ones_need_cp() {
    let app = TestApp::new().await;
    app.post("/v1/namespaces", json!({"id": "payments", "mode": "cp"})).await;
    let ledger = "/v1/namespaces/payments/services/ledger/instances";
    app.post(ledger, json!({"ip": "127.0.9.1", "port": 7000})).await;

    let local = app.get(ledger).await;
    assert_eq!(local.headers["x-janus-consistency"], "local");
    let applied: u64 = local.headers["x-janus-raft-index"].to_str().unwrap().parse().unwrap();
    assert!(applied >= 3, "bootstrap, namespace and instance entries are applied: {applied}");

    // A write acknowledged before a linearizable read is in it.
    app.post(ledger, json!({"ip": "127.0.9.2", "port": 7000})).await;
    let strong = app.get(&format!("{ledger}?consistency=linearizable")).await;
    assert_eq!(strong.status, StatusCode::OK, "{}", strong.text());
    assert_eq!(strong.headers["x-janus-consistency"], "linearizable");
    let read_index: u64 = strong.headers["x-janus-raft-index"].to_str().unwrap().parse().unwrap();
    assert!(read_index > applied);
    assert_eq!(strong.json()["instances"].as_array().unwrap().len(), 2);
    let one = app.get(&format!("{ledger}/127.0.9.2/7000?consistency=linearizable")).await;
    assert_eq!((one.status, one.headers["x-janus-consistency"].to_str().unwrap()), (StatusCode::OK, "linearizable"));
    let services = app.get("/v1/namespaces/payments/services?consistency=linearizable").await;
    assert_eq!(services.headers["x-janus-consistency"], "linearizable");
    let nacos =
        app.get("/nacos/v1/ns/instance/list?namespaceId=payments&serviceName=ledger&consistency=linearizable").await;
    assert_eq!(
        (nacos.headers["x-janus-consistency"].to_str().unwrap(), nacos.json()["hosts"].as_array().unwrap().len()),
        ("linearizable", 2)
    );

    let ap = app.get(&format!("{ORDERS}?consistency=linearizable")).await;
    assert_eq!(ap.status, StatusCode::CONFLICT);
    assert!(ap.json()["message"].as_str().unwrap().contains("namespace 'public' is ap"), "{}", ap.text());
    let ap_local = app.get(ORDERS).await;
    assert_eq!(ap_local.headers["x-janus-consistency"], "local");
    assert!(ap_local.headers.get("x-janus-raft-index").is_none(), "ap data is not on Raft");
    let bad = app.get(&format!("{ledger}?consistency=strongish")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn test_nodes_probe_loopback_only_and_refuse_any_other_address() {
    let app = TestApp::new().await;
    app.post("/v1/namespaces", json!({"id": "payments", "mode": "cp"})).await;
    let ledger = "/v1/namespaces/payments/services/ledger/instances";
    // 192.0.2.0/24 is for documentation (RFC 5737): a stray address, never probed here.
    for ip in ["127.0.9.1", "192.0.2.1"] {
        let reply = app.post(ledger, json!({"ip": ip, "port": 7000})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    }
    let started = std::time::Instant::now();
    let health = loop {
        let health = app.get("/v1/cluster").await.json()["health"].clone();
        let stray = app.get(&format!("{ledger}/192.0.2.1/7000")).await.json();
        if health["refused"] == 1 && stray["healthy"] == false {
            break health;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not refused within 10 s: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let refused = &health["refused_targets"][0];
    assert_eq!(
        (refused["ip"].as_str(), refused["rule"].as_str()),
        (Some("192.0.2.1"), Some("outside every allow-list network"))
    );
    assert_eq!(health["checked"], 2, "the loopback instance is checked: {health}");
}

#[tokio::test]
async fn dot_names_are_reserved_with_the_rule_named() {
    let app = TestApp::new().await;
    let reserved = |field: &str| format!("invalid {field}: '.' and '..' are reserved");
    for id in [".", ".."] {
        let reply = app.post("/v1/namespaces", json!({"id": id, "mode": "ap"})).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
        assert_eq!(reply.json()["message"], reserved("namespace"));
    }
    let reply = app.post("/v1/namespaces/public/services", json!({"name": ".."})).await;
    assert_eq!(
        (reply.status, reply.json()["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some(&*reserved("service")))
    );
    let reply = app.post("/v1/namespaces/public/services", json!({"name": "web", "group": "."})).await;
    assert_eq!((reply.status, reply.json()["message"].as_str()), (StatusCode::BAD_REQUEST, Some(&*reserved("group"))));
    // Percent-encoded in the path, the name is decoded before it is checked.
    let reply =
        app.post("/v1/namespaces/public/services/%2E%2E/instances", json!({"ip": "10.0.0.1", "port": 80})).await;
    assert_eq!(
        (reply.status, reply.json()["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some(&*reserved("service")))
    );
    let reply = app.post(ORDERS, json!({"ip": "10.0.0.1", "port": 80, "cluster": "."})).await;
    assert_eq!(
        (reply.status, reply.json()["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some(&*reserved("cluster")))
    );
    let reply = app.get("/v1/namespaces/public/services/orders/instances?group=..").await;
    assert_eq!((reply.status, reply.json()["message"].as_str()), (StatusCode::BAD_REQUEST, Some(&*reserved("group"))));
    // Names that merely contain dots are fine.
    let reply = app.post("/v1/namespaces/public/services", json!({"name": "...", "group": "a.b"})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
}

#[tokio::test]
async fn instances_must_register_at_a_unicast_address() {
    let app = TestApp::new().await;
    for ip in ["0.0.0.0", "::", "255.255.255.255", "224.0.0.1", "ff02::1", "::ffff:0.0.0.0"] {
        let reply = app.post(ORDERS, json!({"ip": ip, "port": 80})).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{ip}: {}", reply.text());
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with("invalid ip: must be a unicast address"), "{ip}: {message}");
    }
    let reply = app.post(ORDERS, json!({"ip": "0.0.0.0", "port": 80})).await;
    assert!(reply.json()["message"].as_str().unwrap().contains("got unspecified address 0.0.0.0"));
    // A full update is a registration too; lookups of such an address are plain 404s.
    register(&app, "10.0.0.1", 80).await;
    let update = app.call(Method::PUT, &format!("{ORDERS}/255.255.255.255/80"), Some(json!({"weight": 2}))).await;
    assert_eq!(update.status, StatusCode::BAD_REQUEST, "{}", update.text());
    assert!(update.json()["message"].as_str().unwrap().contains("broadcast"));
    assert_eq!(app.get(&format!("{ORDERS}/0.0.0.0/80")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.call(Method::DELETE, &format!("{ORDERS}/0.0.0.0/80"), None).await.status, StatusCode::NOT_FOUND);
    let list = app.get(ORDERS).await.json();
    assert_eq!(list["instances"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn percent_encoded_query_keys_are_decoded() {
    let mut config = janus_server::ServerConfig::default();
    config.http.request_timeout_ms = 300;
    let app = TestApp::with(config).await;
    let revision = register(&app, "10.0.0.1", 1).await;
    // `%69ndex` is `index`, `%77ait` is `wait`: a blocking query, admitted as one,
    // so its wait may outlast the request timeout of ordinary requests.
    let started = std::time::Instant::now();
    let reply = app.get(&format!("{ORDERS}?%69ndex={revision}&%77ait=600ms")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.index(), revision);
    assert!(started.elapsed() >= Duration::from_millis(600), "it blocked: {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let nacos =
        app.get(&format!("/nacos/v1/ns/instance/list?serviceNam%65=orders&%69ndex={revision}&wait=400ms")).await;
    assert_eq!(nacos.status, StatusCode::OK, "{}", nacos.text());
    assert!(started.elapsed() >= Duration::from_millis(400), "it blocked: {:?}", started.elapsed());
    // Values are decoded too.
    let reply = app.get("/v1/namespaces/public/services?%67roup=DEFAULT%5FGROUP").await.json();
    assert_eq!(reply["services"][0]["group"], "DEFAULT_GROUP");
}

#[tokio::test]
async fn page_and_page_size_out_of_range_are_both_refused() {
    let app = TestApp::new().await;
    app.post("/v1/namespaces/public/services", json!({"name": "a"})).await;
    let cases = [
        ("page=0", "invalid page: must be 1 or more, got 0"),
        ("page_size=0", "invalid page_size: must be between 1 and 1000, got 0"),
        ("page_size=1001", "invalid page_size: must be between 1 and 1000, got 1001"),
    ];
    for (query, message) in cases {
        let reply = app.get(&format!("/v1/namespaces/public/services?{query}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(reply.json()["message"], message, "{query}");
    }
    let reply = app.get("/v1/namespaces/public/services?page=1&page_size=1000").await;
    assert_eq!(reply.status, StatusCode::OK, "the bounds themselves are allowed");
}

#[tokio::test]
async fn a_wait_without_a_unit_is_seconds() {
    let app = TestApp::new().await;
    let revision = register(&app, "10.0.0.1", 1).await;
    let started = std::time::Instant::now();
    let reply = app.get(&format!("{ORDERS}?index={revision}&wait=1")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(started.elapsed() >= Duration::from_secs(1), "wait=1 is one second: {:?}", started.elapsed());
    let bad = app.get(&format!("{ORDERS}?index={revision}&wait=1d")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["message"].as_str().unwrap().contains("wait"), "{}", bad.text());
}

#[tokio::test]
async fn a_namespace_mode_change_is_refused_naming_the_namespace_and_its_mode() {
    let app = TestApp::new().await;
    app.post("/v1/namespaces", json!({"id": "team-a", "mode": "ap"})).await;
    let reply = app.call(Method::PATCH, "/v1/namespaces/team-a", Some(json!({"mode": "cp", "name": "A"}))).await;
    assert_eq!((reply.status, reply.json()["code"].as_str()), (StatusCode::CONFLICT, Some("mode_mismatch")));
    let message = reply.json()["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("namespace 'team-a' is ap: the mode cannot change (asked for cp)"), "{message}");
    assert_eq!(app.get("/v1/namespaces/team-a").await.json()["name"], "team-a", "nothing changed");
    // Sending the mode it has (the whole namespace back) is fine.
    let reply = app.call(Method::PATCH, "/v1/namespaces/team-a", Some(json!({"mode": "ap", "name": "A"}))).await;
    assert_eq!((reply.status, reply.json()["name"].as_str()), (StatusCode::OK, Some("A")), "{}", reply.text());
    let ghost = app.call(Method::PATCH, "/v1/namespaces/ghost", Some(json!({"mode": "cp"}))).await;
    assert_eq!(ghost.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_each_apis_error_shape() {
    let app = TestApp::new().await;
    let native = app.call(Method::DELETE, "/v1/cluster", None).await;
    assert_eq!(
        (native.status, native.json()["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    let v1 = app.get("/nacos/v1/ns/nothing").await;
    assert_eq!((v1.status, v1.text()), (StatusCode::NOT_FOUND, "caused: no such route;".to_owned()));
    let v1 = app.call(Method::DELETE, "/nacos/v1/ns/instance/list", None).await;
    assert_eq!(
        (v1.status, v1.text()),
        (StatusCode::METHOD_NOT_ALLOWED, "caused: this route does not take that method;".to_owned())
    );
    let config = app.get("/nacos/v1/cs/configs?dataId=app.yaml&group=DEFAULT_GROUP").await;
    assert_eq!(config.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        config.text(),
        "caused: not supported: Janus is a naming registry; the Nacos config center is not implemented;"
    );
    // Only the config center's own paths.
    assert_eq!(app.get("/nacos/v1/csx").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_json_answer_ends_with_a_newline() {
    let app = TestApp::new().await;
    register(&app, "10.0.0.1", 1).await;
    app.nacos(Method::POST, "/nacos/v1/ns/instance", &[("serviceName", "orders"), ("ip", "10.0.0.2"), ("port", "2")])
        .await;
    let eureka_json = {
        let request = axum::http::Request::builder()
            .uri("/eureka/apps")
            .header("accept", "application/json")
            .body(axum::body::Body::empty())
            .unwrap();
        app.send(request).await
    };
    let mut replies = vec![
        ("eureka", eureka_json),
        ("created", app.post("/v1/namespaces", json!({"id": "team-a", "mode": "ap"})).await),
        ("error", app.post(ORDERS, json!({"port": 1})).await),
        ("unknown route", app.get("/v2/nothing").await),
    ];
    for uri in [
        "/v1/namespaces/public",
        "/v1/namespaces",
        "/v1/namespaces/public/services",
        ORDERS,
        ORDERS,
        "/v1/namespaces/public/services/orders/instances/10.0.0.1/1",
        "/nacos/v1/ns/instance/list?serviceName=orders",
        "/nacos/v1/ns/instance/list?serviceName=orders",
        "/nacos/v1/ns/service/list",
        "/nacos/v2/ns/instance/list?serviceName=orders",
        "/nacos/v2/ns/nothing",
        "/health",
        "/v1/cluster",
    ] {
        replies.push((uri, app.get(uri).await));
    }
    for (what, reply) in replies {
        assert!(reply.headers["content-type"].to_str().unwrap().starts_with("application/json"), "{what}");
        assert!(reply.body.ends_with(b"}\n"), "{what}: {:?}", reply.text());
        assert!(!reply.body[..reply.body.len() - 1].contains(&b'\n'), "{what}: one line");
    }
}

/// What the console reads: namespace instance counts, service health counts
/// and the protect threshold, a search by name, and `all=true` lists (every
/// instance as stored, offline ones too, paged in a fixed order).
#[tokio::test]
async fn console_reads() {
    let app = TestApp::new().await;
    for name in ["cart-api", "Cart-web", "billing"] {
        let reply = app.post("/v1/namespaces/public/services", json!({"name": name})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    }
    let found = app.get("/v1/namespaces/public/services?search=CART").await.json();
    let names: Vec<&str> = found["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!((found["total"].as_u64(), names), (Some(2), vec!["Cart-web", "cart-api"]));
    let none = app.get("/v1/namespaces/public/services?search=zzz&group=DEFAULT_GROUP").await.json();
    assert_eq!((none["total"].as_u64(), none["services"].as_array().unwrap().len()), (Some(0), 0));

    for port in [3, 1, 2] {
        register(&app, "10.0.0.9", port).await;
    }
    register(&app, "10.0.0.1", 7).await;
    let path = |port: u16| format!("{ORDERS}/10.0.0.9/{port}");
    let off = app.call(Method::PATCH, &path(2), Some(json!({"enabled": false}))).await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text());
    let sick = app.call(Method::PATCH, &path(3), Some(json!({"healthy": false}))).await;
    assert_eq!(sick.status, StatusCode::OK, "{}", sick.text());
    let threshold =
        app.call(Method::PUT, "/v1/namespaces/public/services/orders", Some(json!({"protect_threshold": 0.7})));
    assert_eq!(threshold.await.status, StatusCode::OK);

    // Three enabled, two of them healthy: 2/3 <= 0.7, so the threshold fires.
    let service = app.get("/v1/namespaces/public/services/orders").await.json();
    assert_eq!(
        (
            service["instance_count"].as_u64(),
            service["healthy_count"].as_u64(),
            service["reach_protection_threshold"].as_bool()
        ),
        (Some(4), Some(2), Some(true)),
        "{service}"
    );
    let namespace = app.get("/v1/namespaces/public").await.json();
    assert_eq!(namespace["instance_count"], 4, "{namespace}");

    // A client's list: the disabled instance is left out, the unhealthy one shown healthy.
    let listed = app.get(ORDERS).await.json();
    assert_eq!(listed["instances"].as_array().unwrap().len(), 3);
    assert!(listed.get("total").is_none(), "{listed}");
    // The console's: all four, as stored, in order, paged.
    let first = app.get(&format!("{ORDERS}?all=true&page=1&page_size=3")).await.json();
    let shown: Vec<(String, bool, bool)> = first["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                format!("{}:{}", i["ip"].as_str().unwrap(), i["port"]),
                i["enabled"].as_bool().unwrap(),
                i["healthy"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            ("10.0.0.1:7".to_owned(), true, true),
            ("10.0.0.9:1".to_owned(), true, true),
            ("10.0.0.9:2".to_owned(), false, true),
        ]
    );
    assert_eq!((first["total"].as_u64(), first["reach_protection_threshold"].as_bool()), (Some(4), Some(true)));
    assert!(first["instances"][0]["last_renew_ms"].as_u64().is_some_and(|ms| ms > 1_700_000_000_000), "{first}");
    let second = app.get(&format!("{ORDERS}?all=true&page=2&page_size=3")).await.json();
    assert_eq!(second["instances"].as_array().unwrap().len(), 1);
    assert_eq!(
        (second["instances"][0]["port"].as_u64(), second["instances"][0]["healthy"].as_bool()),
        (Some(3), Some(false))
    );
    let bad = app.get(&format!("{ORDERS}?all=true&page=0")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
}

/// `/` leads to the console, whose files are served with their types and
/// a policy that keeps them to this origin.
#[tokio::test]
async fn console_is_served() {
    let app = TestApp::new().await;
    let root = app.get("/").await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.headers["location"], "/console/");
    let index = app.get("/console/").await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(index.text().contains(r#"<script type="module" src="app.js">"#), "{}", index.text());
    assert!(index.headers["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    let module = app.get("/console/app.js").await;
    assert_eq!(module.headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(app.get("/console/secrets.txt").await.status, StatusCode::NOT_FOUND);
}
