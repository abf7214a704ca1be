//! The Nacos v1 naming and console APIs beyond the instance core: exact
//! response shapes (golden) and behaviour.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::TestApp;
use axum::http::{Method, StatusCode};
use serde_json::json;

fn keys(value: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

async fn register(app: &TestApp, service: &str, ip: &str, port: &str) {
    let reply =
        app.nacos(Method::POST, "/nacos/v1/ns/instance", &[("serviceName", service), ("ip", ip), ("port", port)]).await;
    assert_eq!(reply.text(), "ok");
}

#[tokio::test]
async fn service_crud_and_list() {
    let app = TestApp::new().await;
    let created = app
        .nacos(
            Method::POST,
            "/nacos/v1/ns/service",
            &[("serviceName", "orders"), ("protectThreshold", "0.3"), ("metadata", "team=a")],
        )
        .await;
    assert_eq!((created.status, created.text()), (StatusCode::OK, "ok".to_owned()));
    let again = app.nacos(Method::POST, "/nacos/v1/ns/service", &[("serviceName", "orders")]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    register(&app, "orders", "10.0.0.1", "80").await;
    app.nacos(
        Method::POST,
        "/nacos/v1/ns/instance",
        &[("serviceName", "orders"), ("ip", "10.0.0.2"), ("port", "80"), ("clusterName", "blue")],
    )
    .await;

    let detail = app.get("/nacos/v1/ns/service?serviceName=orders").await.json();
    assert_eq!(
        keys(&detail),
        ["clusters", "groupName", "metadata", "name", "namespaceId", "protectThreshold", "selector"]
    );
    assert_eq!(
        detail,
        json!({"namespaceId": "public", "groupName": "DEFAULT_GROUP", "name": "orders", "protectThreshold": 0.3,
               "metadata": {"team": "a"}, "selector": {"type": "none"},
               "clusters": [{"name": "DEFAULT", "healthChecker": {"type": "TCP"}, "metadata": {}},
                            {"name": "blue", "healthChecker": {"type": "TCP"}, "metadata": {}}]})
    );
    let updated =
        app.nacos(Method::PUT, "/nacos/v1/ns/service", &[("serviceName", "orders"), ("protectThreshold", "0.8")]).await;
    assert_eq!(updated.text(), "ok");
    assert_eq!(app.get("/nacos/v1/ns/service?serviceName=orders").await.json()["protectThreshold"], 0.8);

    for name in ["b", "c", "d"] {
        app.nacos(Method::POST, "/nacos/v1/ns/service", &[("serviceName", name)]).await;
    }
    let page = app.get("/nacos/v1/ns/service/list?pageNo=2&pageSize=3").await.json();
    assert_eq!(page, json!({"count": 4, "doms": ["orders"]}));
    // As Nacos: a page below 1 is the first page.
    let first = app.get("/nacos/v1/ns/service/list?pageNo=0&pageSize=3").await;
    assert_eq!((first.status, first.json()["doms"].as_array().unwrap().len()), (StatusCode::OK, 3));

    let busy = app.nacos(Method::DELETE, "/nacos/v1/ns/service", &[("serviceName", "orders")]).await;
    assert_eq!(busy.status, StatusCode::CONFLICT, "a service with instances is not deleted");
    let gone = app.nacos(Method::DELETE, "/nacos/v1/ns/service", &[("serviceName", "b")]).await;
    assert_eq!(gone.text(), "ok");
    assert_eq!(app.get("/nacos/v1/ns/service?serviceName=b").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn statuses_and_metadata_batches() {
    let app = TestApp::new().await;
    register(&app, "orders", "10.0.0.1", "80").await;
    register(&app, "orders", "10.0.0.2", "80").await;
    for key in ["DEFAULT_GROUP@@orders", "public##DEFAULT_GROUP@@orders", "orders"] {
        let mut ips =
            app.get(&format!("/nacos/v1/ns/instance/statuses?key={}", crate::support::encode(key))).await.json()["ips"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect::<Vec<_>>();
        ips.sort();
        assert_eq!(ips, ["10.0.0.1:80_true", "10.0.0.2:80_true"], "{key}");
    }

    let one = r#"[{"ip":"10.0.0.1","port":80,"clusterName":"DEFAULT"}]"#;
    let put = app
        .nacos(
            Method::PUT,
            "/nacos/v1/ns/instance/metadata/batch",
            &[("serviceName", "DEFAULT_GROUP@@orders"), ("instances", one), ("metadata", r#"{"zone":"a","v":"2"}"#)],
        )
        .await;
    assert_eq!(put.json(), json!({"updated": ["10.0.0.1#80#DEFAULT#DEFAULT_GROUP@@orders"]}));
    let all = app
        .nacos(
            Method::PUT,
            "/nacos/v1/ns/instance/metadata/batch",
            &[("serviceName", "orders"), ("metadata", r#"{"team":"x"}"#)],
        )
        .await;
    assert_eq!(all.json()["updated"].as_array().unwrap().len(), 2, "no instances listed: all of them");
    let removed = app
        .nacos(
            Method::DELETE,
            "/nacos/v1/ns/instance/metadata/batch",
            &[("serviceName", "orders"), ("instances", one), ("metadata", r#"{"v":""}"#)],
        )
        .await;
    assert_eq!(removed.json()["updated"].as_array().unwrap().len(), 1);
    let got = app.get("/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.1&port=80").await.json();
    assert_eq!(got["metadata"], json!({"team": "x", "zone": "a"}));
    let missing = app.nacos(Method::PUT, "/nacos/v1/ns/instance/metadata/batch", &[("serviceName", "orders")]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);

    let health = app
        .nacos(
            Method::PUT,
            "/nacos/v1/ns/health/instance",
            &[("serviceName", "orders"), ("ip", "10.0.0.1"), ("port", "80"), ("healthy", "false")],
        )
        .await;
    assert_eq!(health.status, StatusCode::CONFLICT);
    assert!(health.text().contains("namespace 'public' is ap"), "{}", health.text());
}

#[tokio::test]
async fn operator_switches_and_metrics_show_real_values() {
    let app = TestApp::new().await;
    register(&app, "orders", "10.0.0.1", "80").await;
    let switches = app.get("/nacos/v1/ns/operator/switches").await.json();
    assert_eq!(switches["clientBeatInterval"], 5000);
    assert_eq!(switches["ipDeleteTimeout"], 30000);
    assert_eq!(switches["lightBeatEnabled"], true);
    let put = app
        .nacos(Method::PUT, "/nacos/v1/ns/operator/switches", &[("entry", "clientBeatInterval"), ("value", "1000")])
        .await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);
    let metrics = app.get("/nacos/v1/ns/operator/metrics").await.json();
    assert_eq!(
        keys(&metrics),
        [
            "clientCount",
            "connectionBasedClientCount",
            "cpu",
            "ephemeralIpPortClientCount",
            "instanceCount",
            "load",
            "mem",
            "persistentIpPortClientCount",
            "raftNotifyTaskCount",
            "responsibleClientCount",
            "responsibleInstanceCount",
            "responsibleServiceCount",
            "serviceCount",
            "status",
            "subscribeCount"
        ]
    );
    assert_eq!(
        (metrics["status"].as_str(), metrics["serviceCount"].as_u64(), metrics["instanceCount"].as_u64()),
        (Some("UP"), Some(1), Some(1))
    );
    assert!(metrics["mem"].as_f64().unwrap() > 0.0, "memory use is read from the machine");
}

#[tokio::test]
async fn console_namespaces() {
    let app = TestApp::new().await;
    let list = app.get("/nacos/v1/console/namespaces").await.json();
    assert_eq!(
        list,
        json!({"code": 200, "message": null, "data": [{"namespace": "", "namespaceShowName": "public",
               "namespaceDesc": "default namespace", "quota": 200, "configCount": 0, "type": 0}]})
    );
    let created = app
        .nacos(
            Method::POST,
            "/nacos/v1/console/namespaces",
            &[("customNamespaceId", "dev"), ("namespaceName", "Development"), ("namespaceDesc", "dev services")],
        )
        .await;
    assert_eq!(created.text(), "true\n");
    assert_eq!(app.get("/v1/namespaces/dev").await.json()["mode"], "ap", "console namespaces are ap by default");
    let exists = app.get("/nacos/v1/console/namespaces?checkNamespaceIdExist=true&customNamespaceId=dev").await;
    assert_eq!(exists.text(), "true\n");
    let absent = app.get("/nacos/v1/console/namespaces?checkNamespaceIdExist=true&customNamespaceId=nope").await;
    assert_eq!(absent.text(), "false\n");
    let one = app.get("/nacos/v1/console/namespaces?show=all&namespaceId=dev").await.json();
    assert_eq!(one["namespaceShowName"], "Development");
    assert_eq!(one["type"], 2);
    let renamed = app
        .nacos(
            Method::PUT,
            "/nacos/v1/console/namespaces",
            &[("namespace", "dev"), ("namespaceShowName", "Dev"), ("namespaceDesc", "renamed")],
        )
        .await;
    assert_eq!(renamed.text(), "true\n");
    assert_eq!(
        app.get("/nacos/v1/console/namespaces?show=all&namespaceId=dev").await.json()["namespaceDesc"],
        "renamed"
    );
    // Registrations in it through the naming API, then deletion is refused until it is empty.
    let reg = app
        .nacos(
            Method::POST,
            "/nacos/v1/ns/instance",
            &[("namespaceId", "dev"), ("serviceName", "s"), ("ip", "10.0.0.1"), ("port", "1")],
        )
        .await;
    assert_eq!(reg.text(), "ok");
    let busy = app.nacos(Method::DELETE, "/nacos/v1/console/namespaces", &[("namespaceId", "dev")]).await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    app.nacos(
        Method::DELETE,
        "/nacos/v1/ns/instance",
        &[("namespaceId", "dev"), ("serviceName", "s"), ("ip", "10.0.0.1"), ("port", "1")],
    )
    .await;
    app.nacos(Method::DELETE, "/nacos/v1/ns/service", &[("namespaceId", "dev"), ("serviceName", "s")]).await;
    let deleted = app.nacos(Method::DELETE, "/nacos/v1/console/namespaces", &[("namespaceId", "dev")]).await;
    assert_eq!(deleted.text(), "true\n");
    let cp = app
        .nacos(
            Method::POST,
            "/nacos/v1/console/namespaces",
            &[("customNamespaceId", "ledger"), ("namespaceMode", "cp")],
        )
        .await;
    assert_eq!(cp.text(), "true\n");
    assert_eq!(app.get("/v1/namespaces/ledger").await.json()["mode"], "cp");
}

#[tokio::test]
async fn full_update_replaces_an_existing_instance() {
    let app = TestApp::new().await;
    register(&app, "orders", "10.0.0.1", "80").await;
    let put = app
        .nacos(
            Method::PUT,
            "/nacos/v1/ns/instance",
            &[("serviceName", "orders"), ("ip", "10.0.0.1"), ("port", "80"), ("weight", "4"), ("metadata", "v=2")],
        )
        .await;
    assert_eq!((put.status, put.text()), (StatusCode::OK, "ok".to_owned()));
    let got = app.get("/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.1&port=80").await.json();
    assert_eq!(
        got,
        json!({"service": "DEFAULT_GROUP@@orders", "ip": "10.0.0.1", "port": 80, "clusterName": "DEFAULT", "weight": 4.0,
               "healthy": true, "instanceId": "10.0.0.1#80#DEFAULT#DEFAULT_GROUP@@orders", "metadata": {"v": "2"}})
    );
    let missing = app
        .nacos(Method::PUT, "/nacos/v1/ns/instance", &[("serviceName", "orders"), ("ip", "10.0.0.9"), ("port", "80")])
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn page_no_and_page_size_are_clamped_alike_as_nacos_does() {
    let app = TestApp::new().await;
    for name in ["a", "b", "c"] {
        app.nacos(Method::POST, "/nacos/v1/ns/service", &[("serviceName", name)]).await;
    }
    let doms = |reply: &crate::support::Reply| reply.json()["doms"].clone();
    let cases = [
        ("pageNo=0&pageSize=2", json!(["a", "b"])),
        ("pageNo=-3&pageSize=2", json!(["a", "b"])),
        ("pageNo=2&pageSize=0", json!(["b"])),
        ("pageNo=1&pageSize=-1", json!(["a"])),
        ("pageNo=1&pageSize=100000", json!(["a", "b", "c"])),
    ];
    for (query, expected) in cases {
        let reply = app.get(&format!("/nacos/v1/ns/service/list?{query}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text());
        assert_eq!((doms(&reply), reply.json()["count"].as_u64()), (expected, Some(3)), "{query}");
    }
    for query in ["pageNo=x", "pageSize=1.5"] {
        let reply = app.get(&format!("/nacos/v1/ns/service/list?{query}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(reply.text().contains("must be a whole number"), "{query}: {}", reply.text());
    }
}

#[tokio::test]
async fn dot_names_and_non_unicast_addresses_are_refused() {
    let app = TestApp::new().await;
    let base = [("serviceName", "orders"), ("ip", "10.0.0.1"), ("port", "80")];
    let cases = [
        (("serviceName", "."), "caused: invalid service: '.' and '..' are reserved;"),
        (("groupName", ".."), "caused: invalid group: '.' and '..' are reserved;"),
        (("namespaceId", "."), "caused: invalid namespace: '.' and '..' are reserved;"),
        (("clusterName", ".."), "caused: invalid cluster: '.' and '..' are reserved;"),
    ];
    for ((name, value), expected) in cases {
        let mut params: Vec<(&str, &str)> = base.iter().copied().filter(|(k, _)| *k != name).collect();
        params.push((name, value));
        let reply = app.nacos(Method::POST, "/nacos/v1/ns/instance", &params).await;
        assert_eq!((reply.status, reply.text()), (StatusCode::BAD_REQUEST, expected.to_owned()), "{name}={value}");
    }
    for ip in ["0.0.0.0", "::", "255.255.255.255", "239.1.1.1"] {
        let reply = app
            .nacos(Method::POST, "/nacos/v1/ns/instance", &[("serviceName", "orders"), ("ip", ip), ("port", "80")])
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{ip}");
        assert!(reply.text().starts_with("caused: invalid ip: must be a unicast address"), "{ip}: {}", reply.text());
    }
    register(&app, "orders", "10.0.0.1", "80").await;
    let update = app
        .nacos(Method::PUT, "/nacos/v1/ns/instance", &[("serviceName", "orders"), ("ip", "0.0.0.0"), ("port", "80")])
        .await;
    assert_eq!(update.status, StatusCode::BAD_REQUEST, "{}", update.text());
    // A beat that would register the instance again is a registration.
    let beat = app
        .nacos(
            Method::PUT,
            "/nacos/v1/ns/instance/beat",
            &[("serviceName", "orders"), ("beat", r#"{"ip":"0.0.0.0","port":80,"cluster":"DEFAULT"}"#)],
        )
        .await;
    assert_eq!(beat.status, StatusCode::BAD_REQUEST, "{}", beat.text());
    assert!(beat.text().contains("unspecified"), "{}", beat.text());
    // Deregistering such an address is not a registration: Nacos's "ok".
    let gone = app
        .nacos(Method::DELETE, "/nacos/v1/ns/instance", &[("serviceName", "orders"), ("ip", "0.0.0.0"), ("port", "80")])
        .await;
    assert_eq!(gone.text(), "ok");
}

#[tokio::test]
async fn the_console_refuses_a_namespace_mode_change() {
    let app = TestApp::new().await;
    app.nacos(Method::POST, "/nacos/v1/console/namespaces", &[("customNamespaceId", "dev")]).await;
    let update = |mode: &'static str| {
        let app = &app;
        async move {
            app.nacos(
                Method::PUT,
                "/nacos/v1/console/namespaces",
                &[("namespace", "dev"), ("namespaceShowName", "Dev"), ("namespaceMode", mode)],
            )
            .await
        }
    };
    let changed = update("cp").await;
    assert_eq!(changed.status, StatusCode::CONFLICT);
    assert!(
        changed.text().starts_with("caused: namespace 'dev' is ap: the mode cannot change (asked for cp)"),
        "{}",
        changed.text()
    );
    assert_eq!(app.get("/v1/namespaces/dev").await.json()["name"], "dev", "nothing changed");
    let same = update("ap").await;
    assert_eq!((same.status, same.text()), (StatusCode::OK, "true\n".to_owned()));
    assert_eq!(app.get("/v1/namespaces/dev").await.json()["name"], "Dev");
    assert_eq!(update("xx").await.status, StatusCode::BAD_REQUEST);
}
