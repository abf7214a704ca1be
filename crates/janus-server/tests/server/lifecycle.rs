//! Definitions, service lifecycle and revisions across restarts, on a
//! single node with its real Raft log: a refused delete is never proposed and
//! never comes back as a real one, definitions survive, implied services
//! follow their instances, and no revision a client saw ever goes back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::support::TestApp;
use axum::http::{Method, StatusCode};
use janus_server::ServerConfig;
use serde_json::json;

#[tokio::test]
async fn a_refused_namespace_delete_is_not_proposed_and_the_namespace_survives_a_restart() {
    let app = TestApp::new().await;
    let created = app.post("/v1/namespaces", json!({"id": "team-x", "mode": "ap"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let web = "/v1/namespaces/team-x/services/web/instances";
    assert_eq!(app.post(web, json!({"ip": "10.0.0.1", "port": 80})).await.status, StatusCode::CREATED);
    let applied = app.app.cp.applied_index();
    for _ in 0..3 {
        let refused = app.call(Method::DELETE, "/v1/namespaces/team-x", None).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text());
        assert_eq!(refused.json()["code"], "not_empty");
    }
    assert_eq!(app.app.cp.applied_index(), applied, "a refused delete never enters the Raft log");

    let data = app.stop().await;
    let app = TestApp::on(data, ServerConfig::default()).await;
    let namespace = app.get("/v1/namespaces/team-x").await;
    assert_eq!(namespace.status, StatusCode::OK, "{}", namespace.text());
    assert_eq!(namespace.json()["mode"], "ap");
}

#[tokio::test]
async fn a_defined_ap_service_refused_for_its_instances_survives_a_restart() {
    let app = TestApp::new().await;
    let service = "/v1/namespaces/public/services/catalog";
    let created =
        app.post("/v1/namespaces/public/services", json!({"name": "catalog", "protect_threshold": 0.5})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let instances = format!("{service}/instances");
    assert_eq!(app.post(&instances, json!({"ip": "10.0.0.1", "port": 80})).await.status, StatusCode::CREATED);
    let refused = app.call(Method::DELETE, service, None).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text());

    let data = app.stop().await;
    let app = TestApp::on(data, ServerConfig::default()).await;
    let after = app.get(service).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text());
    assert_eq!(after.json()["protect_threshold"], 0.5, "the definition is on Raft");
    // Its instance was ephemeral: gone with the restart, so the delete goes through now, and for good.
    assert!(app.call(Method::DELETE, service, None).await.status.is_success());
    let data = app.stop().await;
    let app = TestApp::on(data, ServerConfig::default()).await;
    assert_eq!(app.get(service).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn no_revision_a_client_saw_goes_back_after_a_restart() {
    let app = TestApp::new().await;
    app.post("/v1/namespaces", json!({"id": "pay", "mode": "cp"})).await;
    let cp_list = "/v1/namespaces/pay/services/ledger/instances";
    let ap_list = "/v1/namespaces/public/services/orders/instances";
    assert_eq!(app.post(cp_list, json!({"ip": "127.0.0.1", "port": 7000})).await.status, StatusCode::CREATED);
    // Many ephemeral writes: they bump revisions but are not replayed after a restart.
    for port in 1..=50 {
        app.post(ap_list, json!({"ip": "10.0.0.1", "port": port})).await;
    }
    app.call(Method::PUT, "/v1/namespaces/pay", Some(json!({"description": "ledger team"}))).await;
    let seen = [
        app.get(cp_list).await.index(),
        app.get(ap_list).await.index(),
        app.get("/v1/namespaces/pay").await.json()["revision"].as_u64().unwrap(),
        app.get("/v1/namespaces/public").await.json()["revision"].as_u64().unwrap(),
    ];
    let data = app.stop().await;
    let app = TestApp::on(data, ServerConfig::default()).await;
    let after = [
        app.get(cp_list).await.index(),
        app.get(ap_list).await.index(),
        app.get("/v1/namespaces/pay").await.json()["revision"].as_u64().unwrap(),
        app.get("/v1/namespaces/public").await.json()["revision"].as_u64().unwrap(),
    ];
    for (name, (before, after)) in
        ["cp service", "ap service (now empty)", "cp namespace", "public"].iter().zip(seen.iter().zip(after.iter()))
    {
        assert!(after >= before, "{name}: revision went back from {before} to {after}");
        assert!(*after > 0, "{name}: revision 0");
    }
    // A blocking query with the index seen before the restart waits for a change, it does not spin.
    let started = Instant::now();
    let waited = app.get(&format!("{cp_list}?index={}&wait=1s", after[0])).await;
    assert_eq!(waited.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(900), "returned at once: {}", waited.text());
}

#[tokio::test]
async fn an_implied_service_goes_after_its_grace_period_and_a_defined_one_stays() {
    let mut config = ServerConfig::default();
    config.lease.empty_service_after_ms = 0;
    let app = TestApp::with(config).await;
    let implied = "/v1/namespaces/public/services/implied";
    let defined = "/v1/namespaces/public/services/defined";
    app.post("/v1/namespaces/public/services", json!({"name": "defined"})).await;
    for service in [implied, defined] {
        let instances = format!("{service}/instances");
        assert_eq!(app.post(&instances, json!({"ip": "10.0.0.1", "port": 80})).await.status, StatusCode::CREATED);
        let gone = app.call(Method::DELETE, &format!("{instances}/10.0.0.1/80"), None).await;
        assert_eq!(gone.status, StatusCode::OK, "{}", gone.text());
    }
    let started = Instant::now();
    while app.get(implied).await.status != StatusCode::NOT_FOUND {
        assert!(started.elapsed() < Duration::from_secs(15), "the empty implied service stayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.get(defined).await.status, StatusCode::OK, "a definition stays until deleted");
    // Deleting the namespace's services and the namespace now works, nothing was left behind.
    let listed = app.get("/v1/namespaces/public/services").await.json();
    let names: Vec<&str> = listed["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["defined"]);
}
