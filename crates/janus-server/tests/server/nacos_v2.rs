//! The Nacos v2 HTTP API: the `{code, message, data}` envelope, v2 parameter
//! names and v2 error codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::TestApp;
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn instances_in_the_v2_envelope() {
    let app = TestApp::new().await;
    let params = [
        ("serviceName", "orders"),
        ("groupName", "DEFAULT_GROUP"),
        ("ip", "10.0.0.1"),
        ("port", "80"),
        ("clusterName", "blue"),
    ];
    let reply = app.nacos(Method::POST, "/nacos/v2/ns/instance", &params).await;
    assert_eq!(reply.json(), json!({"code": 0, "message": "success", "data": "ok"}));
    app.nacos(Method::POST, "/nacos/v2/ns/instance", &[("serviceName", "orders"), ("ip", "10.0.0.2"), ("port", "80")])
        .await;

    let list = app.get("/nacos/v2/ns/instance/list?serviceName=orders&clusterName=blue").await.json();
    assert_eq!((list["code"].as_i64(), list["message"].as_str()), (Some(0), Some("success")));
    assert_eq!(list["data"]["name"], "DEFAULT_GROUP@@orders");
    assert_eq!(list["data"]["hosts"].as_array().unwrap().len(), 1, "v2 filters with clusterName");
    assert_eq!(list["data"]["hosts"][0]["clusterName"], "blue");

    let one = app.get("/nacos/v2/ns/instance?serviceName=orders&ip=10.0.0.1&port=80&clusterName=blue").await.json();
    assert_eq!(one["data"]["instanceId"], "10.0.0.1#80#blue#DEFAULT_GROUP@@orders");
    let beat = app
        .nacos(
            Method::PUT,
            "/nacos/v2/ns/instance/beat",
            &[("serviceName", "orders"), ("ip", "10.0.0.2"), ("port", "80")],
        )
        .await;
    assert_eq!(beat.json()["data"]["code"], 10200);
    let patch = app
        .nacos(
            Method::PATCH,
            "/nacos/v2/ns/instance",
            &[("serviceName", "orders"), ("ip", "10.0.0.2"), ("port", "80"), ("weight", "3")],
        )
        .await;
    assert_eq!(patch.json()["data"], "ok");
    let statuses = app.get("/nacos/v2/ns/instance/statuses/DEFAULT_GROUP@@orders").await.json();
    assert_eq!(statuses["data"]["ips"].as_array().unwrap().len(), 2);
    let batch = app
        .nacos(
            Method::PUT,
            "/nacos/v2/ns/instance/metadata/batch",
            &[("serviceName", "orders"), ("metadata", r#"{"zone":"a"}"#)],
        )
        .await;
    assert_eq!(batch.json()["data"]["updated"].as_array().unwrap().len(), 2);
    let gone = app
        .nacos(
            Method::DELETE,
            "/nacos/v2/ns/instance",
            &[("serviceName", "orders"), ("ip", "10.0.0.2"), ("port", "80")],
        )
        .await;
    assert_eq!(gone.json()["data"], "ok");
}

#[tokio::test]
async fn services_namespaces_and_operator_in_the_v2_envelope() {
    let app = TestApp::new().await;
    let created =
        app.nacos(Method::POST, "/nacos/v2/ns/service", &[("serviceName", "web"), ("protectThreshold", "0.5")]).await;
    assert_eq!(created.json()["data"], "ok");
    let detail = app.get("/nacos/v2/ns/service?serviceName=web").await.json();
    assert_eq!(detail["data"]["protectThreshold"], 0.5);
    let list = app.get("/nacos/v2/ns/service/list?pageNo=1&pageSize=10").await.json();
    assert_eq!(list["data"], json!({"count": 1, "services": ["web"]}), "v2 says services where v1 says doms");
    assert_eq!(app.nacos(Method::DELETE, "/nacos/v2/ns/service", &[("serviceName", "web")]).await.json()["data"], "ok");

    let created = app
        .nacos(
            Method::POST,
            "/nacos/v2/console/namespace",
            &[("namespaceId", "dev"), ("namespaceName", "Dev"), ("namespaceDesc", "d")],
        )
        .await;
    assert_eq!(created.json(), json!({"code": 0, "message": "success", "data": true}));
    let one = app.get("/nacos/v2/console/namespace?namespaceId=dev").await.json();
    assert_eq!(
        (one["data"]["namespace"].as_str(), one["data"]["namespaceShowName"].as_str()),
        (Some("dev"), Some("Dev"))
    );
    let renamed = app
        .nacos(Method::PUT, "/nacos/v2/console/namespace", &[("namespaceId", "dev"), ("namespaceName", "Development")])
        .await;
    assert_eq!(renamed.json()["data"], true);
    let all = app.get("/nacos/v2/console/namespace/list").await.json();
    let names: Vec<&str> =
        all["data"].as_array().unwrap().iter().map(|n| n["namespaceShowName"].as_str().unwrap()).collect();
    assert_eq!(names, ["Development", "public"]);
    assert_eq!(
        app.nacos(Method::DELETE, "/nacos/v2/console/namespace", &[("namespaceId", "dev")]).await.json()["data"],
        true
    );

    assert_eq!(app.get("/nacos/v2/ns/operator/switches").await.json()["data"]["clientBeatInterval"], 5000);
    assert_eq!(app.get("/nacos/v2/ns/operator/metrics").await.json()["data"]["status"], "UP");
}

#[tokio::test]
async fn errors_carry_nacos_v2_codes() {
    let app = TestApp::new().await;
    type Case<'a> = (Method, &'a str, Vec<(&'a str, &'a str)>, StatusCode, u32);
    let cases: Vec<Case<'_>> = vec![
        (
            Method::POST,
            "/nacos/v2/ns/instance",
            vec![("ip", "10.0.0.1"), ("port", "1")],
            StatusCode::BAD_REQUEST,
            10000,
        ),
        (
            Method::POST,
            "/nacos/v2/ns/instance",
            vec![("serviceName", "s"), ("ip", "10.0.0.1"), ("port", "1"), ("weight", "-1")],
            StatusCode::BAD_REQUEST,
            21001,
        ),
        (
            Method::POST,
            "/nacos/v2/ns/instance",
            vec![("serviceName", "a b"), ("ip", "10.0.0.1"), ("port", "1")],
            StatusCode::BAD_REQUEST,
            21000,
        ),
        (
            Method::POST,
            "/nacos/v2/ns/instance",
            vec![("namespaceId", "ghost"), ("serviceName", "s"), ("ip", "10.0.0.1"), ("port", "1")],
            StatusCode::NOT_FOUND,
            22001,
        ),
        (
            Method::PUT,
            "/nacos/v2/ns/instance",
            vec![("serviceName", "s"), ("ip", "10.0.0.9"), ("port", "1")],
            StatusCode::NOT_FOUND,
            21003,
        ),
        (Method::GET, "/nacos/v2/ns/service", vec![("serviceName", "nobody")], StatusCode::NOT_FOUND, 21008),
    ];
    app.nacos(Method::POST, "/nacos/v2/ns/instance", &[("serviceName", "s"), ("ip", "10.0.0.1"), ("port", "1")]).await;
    for (method, path, params, status, code) in cases {
        let reply = if method == Method::GET {
            app.get(&format!("{path}?{}", crate::support::form_encode(&params))).await
        } else {
            app.nacos(method.clone(), path, &params).await
        };
        let body = reply.json();
        assert_eq!(
            (reply.status, body["code"].as_u64()),
            (status, Some(u64::from(code))),
            "{method} {path} {params:?}: {body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(body["data"].is_null());
    }
    let dup = app.nacos(Method::POST, "/nacos/v2/ns/service", &[("serviceName", "s")]).await;
    assert_eq!(dup.json()["code"], 21007);
    let busy = app.nacos(Method::DELETE, "/nacos/v2/ns/service", &[("serviceName", "s")]).await;
    assert_eq!(busy.json()["code"], 21009);
}

#[tokio::test]
async fn update_metadata_removal_and_health_in_v2() {
    let app = TestApp::new().await;
    let id = [("serviceName", "orders"), ("ip", "10.0.0.1"), ("port", "80")];
    app.nacos(Method::POST, "/nacos/v2/ns/instance", &[id[0], id[1], id[2], ("metadata", r#"{"a":"1","b":"2"}"#)])
        .await;
    let put = app
        .nacos(
            Method::PUT,
            "/nacos/v2/ns/instance",
            &[id[0], id[1], id[2], ("weight", "7"), ("metadata", r#"{"a":"1","b":"2"}"#)],
        )
        .await;
    assert_eq!(put.json(), json!({"code": 0, "message": "success", "data": "ok"}));
    let removed =
        app.nacos(Method::DELETE, "/nacos/v2/ns/instance/metadata/batch", &[id[0], ("metadata", r#"{"a":""}"#)]).await;
    assert_eq!(removed.json()["data"]["updated"].as_array().unwrap().len(), 1);
    let got = app.get("/nacos/v2/ns/instance?serviceName=orders&ip=10.0.0.1&port=80").await.json();
    assert_eq!((got["data"]["weight"].as_f64(), &got["data"]["metadata"]), (Some(7.0), &json!({"b": "2"})));
    let health =
        app.nacos(Method::PUT, "/nacos/v2/ns/health/instance", &[id[0], id[1], id[2], ("healthy", "false")]).await;
    assert_eq!(
        (health.status, health.json()["code"].as_u64()),
        (StatusCode::CONFLICT, Some(10000)),
        "ap health follows heartbeats"
    );
}

#[tokio::test]
async fn unknown_v2_routes_methods_and_the_config_center_answer_in_the_envelope() {
    let app = TestApp::new().await;
    let wrong_method = app.call(Method::DELETE, "/nacos/v2/ns/instance/list", None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        wrong_method.json(),
        json!({"code": 20004, "message": "this route does not take that method", "data": null})
    );
    let unknown = app.get("/nacos/v2/ns/nothing").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json(), json!({"code": 20004, "message": "no such route", "data": null}));
    let config = app.nacos(Method::POST, "/nacos/v2/cs/config", &[("dataId", "app.yaml"), ("content", "x")]).await;
    assert_eq!(config.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        config.json(),
        json!({"code": 30000, "data": null,
               "message": "not supported: Janus is a naming registry; the Nacos config center is not implemented"})
    );
}

#[tokio::test]
async fn v2_refuses_dot_names_non_unicast_addresses_and_mode_changes() {
    let app = TestApp::new().await;
    let reply = app
        .nacos(Method::POST, "/nacos/v2/ns/instance", &[("serviceName", ".."), ("ip", "10.0.0.1"), ("port", "80")])
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json(),
        json!({"code": 21000, "message": "invalid service: '.' and '..' are reserved", "data": null})
    );
    let reply = app
        .nacos(
            Method::POST,
            "/nacos/v2/ns/instance",
            &[("serviceName", "orders"), ("ip", "255.255.255.255"), ("port", "80")],
        )
        .await;
    assert_eq!((reply.status, reply.json()["code"].as_i64()), (StatusCode::BAD_REQUEST, Some(10000)));
    assert!(reply.json()["message"].as_str().unwrap().contains("broadcast"), "{}", reply.text());

    app.nacos(Method::POST, "/nacos/v2/console/namespace", &[("namespaceId", "dev"), ("namespaceMode", "cp")]).await;
    let reply = app
        .nacos(
            Method::PUT,
            "/nacos/v2/console/namespace",
            &[("namespaceId", "dev"), ("namespaceName", "Dev"), ("namespaceMode", "ap")],
        )
        .await;
    assert_eq!((reply.status, reply.json()["code"].as_i64()), (StatusCode::CONFLICT, Some(10000)));
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("namespace 'dev' is cp: the mode cannot change (asked for ap)"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn v2_service_list_clamps_the_page_as_v1() {
    let app = TestApp::new().await;
    for name in ["a", "b"] {
        app.nacos(Method::POST, "/nacos/v2/ns/service", &[("serviceName", name)]).await;
    }
    let list = app.get("/nacos/v2/ns/service/list?pageNo=0&pageSize=0").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    assert_eq!(list.json()["data"], json!({"count": 2, "services": ["a"]}));
}
