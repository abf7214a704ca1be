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

fn unexpected(outcome: janus_core::CommandOutcome) -> RegistryError {
    RegistryError::invalid("outcome", format!("unexpected {outcome:?}"))
}

#[async_trait]
impl RegistryService for Fake {
    fn view(&self) -> StoreView<'_> {
        StoreView::new(&self.store)
    }

    async fn create_namespace(&self, spec: NamespaceSpec) -> Result<NamespaceInfo, RegistryError> {
        match self.define(Command::CreateNamespace(spec))? {
            janus_core::CommandOutcome::Namespace(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    async fn update_namespace(
        &self,
        id: NamespaceId,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<NamespaceInfo, RegistryError> {
        match self.define(Command::UpdateNamespace { id, name, description })? {
            janus_core::CommandOutcome::Namespace(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    async fn delete_namespace(&self, id: NamespaceId) -> Result<(), RegistryError> {
        self.define(Command::DeleteNamespace { id }).map(drop)
    }

    async fn create_service(&self, key: ServiceKey, settings: ServiceSettings) -> Result<ServiceInfo, RegistryError> {
        match self.define(Command::CreateService { key, settings })? {
            janus_core::CommandOutcome::Service(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    async fn update_service(&self, key: ServiceKey, patch: ServicePatch) -> Result<ServiceInfo, RegistryError> {
        match self.define(Command::UpdateService { key, patch })? {
            janus_core::CommandOutcome::Service(info) => Ok(info),
            other => Err(unexpected(other)),
        }
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
        match self.define(Command::SetCluster { key, cluster, settings })? {
            janus_core::CommandOutcome::Service(info) => Ok(info),
            other => Err(unexpected(other)),
        }
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
