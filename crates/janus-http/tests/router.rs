//! The router against a fake [`RegistryService`]: no engines, no Raft, no
//! sockets. The fake applies writes to its own store at once, so these tests
//! check only what the front end does: routing, parsing, rendering, error
//! mapping, blocking queries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use janus_core::lease::LeaseTiming;
use janus_core::model::{
    ClusterSettings, InstancePatch, InstanceSpec, NamespaceInfo, NamespaceSpec, ServiceInfo, ServicePatch,
    ServiceSettings,
};
use janus_core::service::{NodeHealth, WriteOutcome};
use janus_core::{
    ClusterName, Command, InstanceKey, NamespaceId, RegistryConfig, RegistryError, RegistryService, RegistryStore,
    ServiceKey, StoreView,
};
use janus_http::{HttpConfig, HttpMetrics, Router};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// A registry service without engines: every write lands in the store at once.
struct Fake {
    store: RegistryStore,
}

impl Fake {
    fn write<R>(&self, f: impl FnOnce(&mut janus_core::Registry, janus_core::Millis) -> R) -> R {
        self.store.write(f)
    }

    /// The node's check before a definition write, then the write itself.
    fn define(&self, command: Command) -> Result<janus_core::CommandOutcome, RegistryError> {
        self.write(|registry, now| {
            registry.check_command(&command)?;
            registry.apply(command, now)
        })
    }

    fn outcome(&self, key: &ServiceKey, revision: Result<u64, RegistryError>) -> Result<WriteOutcome, RegistryError> {
        let mode = self.store.read(|r| r.mode_of(&key.namespace))?;
        Ok(WriteOutcome { mode, revision: revision? })
    }
}

#[async_trait]
impl RegistryService for Fake {
    fn view(&self) -> StoreView<'_> {
        StoreView::new(&self.store)
    }

    async fn create_namespace(&self, spec: NamespaceSpec) -> Result<NamespaceInfo, RegistryError> {
        self.define(Command::CreateNamespace(spec))?.into_namespace()
    }

    async fn update_namespace(
        &self,
        id: NamespaceId,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<NamespaceInfo, RegistryError> {
        self.define(Command::UpdateNamespace { id, name, description })?.into_namespace()
    }

    async fn delete_namespace(&self, id: NamespaceId) -> Result<(), RegistryError> {
        self.define(Command::DeleteNamespace { id }).map(drop)
    }

    async fn create_service(&self, key: ServiceKey, settings: ServiceSettings) -> Result<ServiceInfo, RegistryError> {
        self.define(Command::CreateService { key, settings })?.into_service()
    }

    async fn update_service(&self, key: ServiceKey, patch: ServicePatch) -> Result<ServiceInfo, RegistryError> {
        self.define(Command::UpdateService { key, patch })?.into_service()
    }

    async fn delete_service(&self, key: ServiceKey) -> Result<(), RegistryError> {
        self.define(Command::DeleteService { key }).map(drop)
    }

    async fn set_cluster(
        &self,
        key: ServiceKey,
        cluster: ClusterName,
        settings: ClusterSettings,
    ) -> Result<ServiceInfo, RegistryError> {
        self.define(Command::SetCluster { key, cluster, settings })?.into_service()
    }

    async fn register_instance(&self, key: ServiceKey, spec: InstanceSpec) -> Result<WriteOutcome, RegistryError> {
        let revision = self.write(|r, now| r.register_instance(&key, spec, now));
        self.outcome(&key, revision)
    }

    async fn update_instance(&self, key: ServiceKey, spec: InstanceSpec) -> Result<WriteOutcome, RegistryError> {
        let revision = self.write(|r, now| r.update_instance(&key, spec, now));
        self.outcome(&key, revision)
    }

    async fn patch_instance(
        &self,
        key: ServiceKey,
        instance: InstanceKey,
        patch: InstancePatch,
    ) -> Result<WriteOutcome, RegistryError> {
        let revision = self.write(|r, now| r.patch_instance(&key, &instance, patch, now));
        self.outcome(&key, revision)
    }

    async fn deregister_instance(&self, key: ServiceKey, instance: InstanceKey) -> Result<WriteOutcome, RegistryError> {
        let revision = self.write(|r, now| r.deregister_instance(&key, &instance, now));
        self.outcome(&key, revision)
    }

    async fn heartbeat(&self, key: ServiceKey, instance: InstanceKey) -> Result<LeaseTiming, RegistryError> {
        self.write(|r, now| r.heartbeat(&key, &instance, now))
    }

    fn health(&self) -> NodeHealth {
        let now = self.store.now();
        NodeHealth { ready: true, stats: self.store.read(|r| r.stats(now)) }
    }
}

fn router() -> Router {
    let fake = Arc::new(Fake { store: RegistryStore::new(RegistryConfig::default(), 64) });
    janus_http::router(fake, HttpConfig::default(), Arc::new(HttpMetrics::default()), CancellationToken::new())
}

async fn call(router: &Router, method: Method, uri: &str, json: Option<Value>) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    let body = match json {
        Some(json) => {
            request = request.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let response = router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned())))
}

#[tokio::test]
async fn native_writes_and_reads_go_through_the_service() {
    let router = router();
    let instances = "/v1/namespaces/public/services/web/instances";
    let (status, body) = call(&router, Method::POST, instances, Some(json!({"ip": "10.0.0.1", "port": 80}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["mode"], "ap");
    let (status, body) = call(&router, Method::GET, instances, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["instances"][0]["ip"], "10.0.0.1");
    let (status, body) = call(&router, Method::GET, "/v1/namespaces/ghost/services/web/instances", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["message"].as_str().unwrap().contains("namespace 'ghost' does not exist"));
}

#[tokio::test]
async fn a_namespace_holding_services_is_refused_before_any_write() {
    let router = router();
    let (status, _) = call(&router, Method::POST, "/v1/namespaces", Some(json!({"id": "team-x", "mode": "ap"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let instances = "/v1/namespaces/team-x/services/web/instances";
    call(&router, Method::POST, instances, Some(json!({"ip": "10.0.0.1", "port": 80}))).await;
    let (status, body) = call(&router, Method::DELETE, "/v1/namespaces/team-x", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "not_empty");
}

#[tokio::test]
async fn nacos_v1_registers_and_lists_through_the_same_service() {
    let router = router();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/nacos/v1/ns/instance?serviceName=pay&ip=10.0.0.9&port=9000")
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = call(&router, Method::GET, "/nacos/v1/ns/instance/list?serviceName=pay", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["hosts"][0]["port"], 9000);
    let (status, body) = call(&router, Method::GET, "/v1/namespaces/public/services/pay/instances", None).await;
    assert_eq!((status, body["instances"][0]["ip"].as_str()), (StatusCode::OK, Some("10.0.0.9")));
}

#[tokio::test]
async fn a_blocking_query_wakes_on_a_write_through_the_service() {
    let router = router();
    let instances = "/v1/namespaces/public/services/web/instances";
    call(&router, Method::POST, instances, Some(json!({"ip": "10.0.0.1", "port": 80}))).await;
    let response =
        router.clone().oneshot(Request::builder().uri(instances).body(Body::empty()).unwrap()).await.unwrap();
    let index: u64 = response.headers()["x-janus-index"].to_str().unwrap().parse().unwrap();
    let blocked = {
        let (router, uri) = (router.clone(), format!("{instances}?index={index}&wait=30s"));
        tokio::spawn(async move { call(&router, Method::GET, &uri, None).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!blocked.is_finished(), "the query blocks until a change");
    call(&router, Method::POST, instances, Some(json!({"ip": "10.0.0.2", "port": 80}))).await;
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), blocked).await.unwrap().unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["instances"].as_array().unwrap().len(), 2);
}

/// A Nacos call with its parameters as a form body.
async fn form(router: &Router, method: Method, uri: &str, params: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(params.to_owned()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned())))
}

/// Nacos v2's envelope around an answer.
fn enveloped(data: Value) -> Value {
    json!({"code": 0, "message": "success", "data": data})
}

#[tokio::test]
async fn nacos_v2_answers_what_v1_answers_in_its_envelope() {
    let router = router();
    let instance = "serviceName=pay&ip=10.0.0.1&port=80&clusterName=blue";
    for path in ["/nacos/v1/ns/instance", "/nacos/v2/ns/instance"] {
        let (status, body) = form(&router, Method::POST, path, &format!("{instance}&metadata=a%3D1")).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    form(&router, Method::POST, "/nacos/v1/ns/service", "serviceName=web&protectThreshold=0.5").await;

    let reads = [
        ("/nacos/v1/ns/instance?", "/nacos/v2/ns/instance?", instance),
        ("/nacos/v1/ns/instance/list?", "/nacos/v2/ns/instance/list?", "serviceName=pay"),
        ("/nacos/v1/ns/instance/statuses?key=", "/nacos/v2/ns/instance/statuses/", "DEFAULT_GROUP%40%40pay"),
        ("/nacos/v1/ns/service?", "/nacos/v2/ns/service?", "serviceName=web"),
        ("/nacos/v1/ns/operator/switches", "/nacos/v2/ns/operator/switches", ""),
        ("/nacos/v1/console/namespaces?show=all&", "/nacos/v2/console/namespace?", "namespaceId=public"),
    ];
    for (v1, v2, query) in reads {
        let (status, mut v1_body) = call(&router, Method::GET, &format!("{v1}{query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{v1}{query}: {v1_body}");
        let (status, mut v2_body) = call(&router, Method::GET, &format!("{v2}{query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{v2}{query}: {v2_body}");
        // A list says when it was built, which differs between the two reads.
        for body in [&mut v1_body, &mut v2_body["data"]] {
            if let Some(built) = body.get_mut("lastRefTime") {
                *built = json!(0);
            }
        }
        assert_eq!(v2_body, enveloped(v1_body), "{v2}{query}");
    }
    let (_, v1_list) = call(&router, Method::GET, "/nacos/v1/ns/instance/list?serviceName=pay", None).await;
    assert_eq!(v1_list["hosts"][0]["metadata"], json!({"a": "1"}), "the lists above are not empty");
    let (_, v1_names) = call(&router, Method::GET, "/nacos/v1/ns/service/list", None).await;
    let (_, v2_names) = call(&router, Method::GET, "/nacos/v2/ns/service/list", None).await;
    assert_eq!(v2_names, enveloped(json!({"count": v1_names["count"], "services": v1_names["doms"]})));

    let writes = [
        (Method::PATCH, "/nacos/v1/ns/instance", "/nacos/v2/ns/instance", format!("{instance}&weight=3")),
        (Method::PUT, "/nacos/v1/ns/instance/beat", "/nacos/v2/ns/instance/beat", instance.to_owned()),
        (
            Method::PUT,
            "/nacos/v1/ns/service",
            "/nacos/v2/ns/service",
            "serviceName=web&protectThreshold=0.2".to_owned(),
        ),
    ];
    for (method, v1, v2, params) in writes {
        let (status, v1_body) = form(&router, method.clone(), v1, &params).await;
        assert_eq!(status, StatusCode::OK, "{v1}: {v1_body}");
        let (status, v2_body) = form(&router, method, v2, &params).await;
        assert_eq!(status, StatusCode::OK, "{v2}: {v2_body}");
        assert_eq!(v2_body, enveloped(v1_body), "{v2}");
    }
}

#[tokio::test]
async fn nacos_v2_errors_have_v1_status_and_message_and_v2_codes() {
    let router = router();
    let cases = [
        ("/nacos/v1/ns/service?serviceName=nobody", "/nacos/v2/ns/service?serviceName=nobody", 21008),
        (
            "/nacos/v1/ns/instance/list?namespaceId=ghost&serviceName=s",
            "/nacos/v2/ns/instance/list?namespaceId=ghost&serviceName=s",
            22001,
        ),
        ("/nacos/v1/ns/service/list?pageNo=x", "/nacos/v2/ns/service/list?pageNo=x", 10000),
    ];
    for (v1, v2, code) in cases {
        let (v1_status, v1_body) = call(&router, Method::GET, v1, None).await;
        let (v2_status, v2_body) = call(&router, Method::GET, v2, None).await;
        assert_eq!(v2_status, v1_status, "{v2}");
        assert!(v2_status.is_client_error(), "{v2}: {v2_status}");
        let message = v2_body["message"].as_str().unwrap();
        assert_eq!(v1_body, Value::String(format!("caused: {message};")), "{v1}");
        assert_eq!(v2_body, json!({"code": code, "message": message, "data": null}), "{v2}");
    }
}
