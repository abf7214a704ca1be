//! The typed operations of the native API (`/v1/`, see `docs/api.md`):
//! each builds its path and body, and returns the `janus-api` type of the
//! answer, or [`Error::Refused`] for an error status.

use std::time::Duration;

use hyper::{Method, StatusCode};
use janus_api::native::{
    CreateNamespace, CreateService, Health, HeartbeatAck, InstanceList, Namespace, NamespaceList, RegisterInstance,
    Service, ServiceList, UpdateNamespace, UpdateService, WriteAck,
};
use serde::de::DeserializeOwned;

use crate::path::{Query, segment};
use crate::{Body, Client, Error, Request, Response};

/// A service: its namespace, its group (`DEFAULT_GROUP` when `None`) and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    /// Namespace id.
    pub namespace: String,
    /// Group; the server's default when `None`.
    pub group: Option<String>,
    /// Service name.
    pub name: String,
}

impl ServiceRef {
    /// Service `name` of `namespace`, in the default group.
    #[must_use]
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), group: None, name: name.into() }
    }

    /// In `group` instead (`None`: the default group).
    #[must_use]
    pub fn in_group(mut self, group: Option<impl Into<String>>) -> Self {
        self.group = group.map(Into::into);
        self
    }

    /// `/v1/namespaces/{ns}/services/{name}` and `tail`.
    fn path(&self, tail: &str) -> String {
        format!("/v1/namespaces/{}/services/{}{tail}", segment(&self.namespace), segment(&self.name))
    }

    /// A query naming the group, when there is one.
    fn query(&self) -> Query {
        let mut query = Query::default();
        query.push_some("group", self.group.as_deref());
        query
    }
}

/// `namespace/name`, or `namespace/group@@name` with a group.
impl std::fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.group {
            Some(group) => write!(f, "{}/{group}@@{}", self.namespace, self.name),
            None => write!(f, "{}/{}", self.namespace, self.name),
        }
    }
}

/// A registration of `ip:port` with the server's defaults for the rest
/// (cluster `DEFAULT`, weight 1, healthy, enabled, no metadata).
#[must_use]
pub fn registration(ip: impl Into<String>, port: u16) -> RegisterInstance {
    RegisterInstance {
        ip: Some(ip.into()),
        port: Some(i64::from(port)),
        cluster: None,
        weight: None,
        healthy: None,
        enabled: None,
        ephemeral: None,
        metadata: std::collections::BTreeMap::new(),
        instance_id: None,
    }
}

/// Which instances a list shows, and whether it blocks.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ListOptions {
    /// Only these clusters (all when empty).
    pub clusters: Vec<String>,
    /// Only healthy instances.
    pub healthy_only: bool,
    /// A blocking query: answer once the service's revision differs from
    /// this index (the `revision` of the previous list), or when `wait` ends.
    pub index: Option<u64>,
    /// How long a blocking query may wait (the server's default, 5 min, when
    /// `None`; its cap is 10 min).
    pub wait: Option<Duration>,
    /// A linearizable read (`cp` namespaces only; refused with 409 for `ap`).
    pub linearizable: bool,
}

impl ListOptions {
    /// A blocking query: answers once the revision is no longer `index`, or
    /// after `wait`.
    #[must_use]
    pub fn watch(mut self, index: u64, wait: Duration) -> Self {
        self.index = Some(index);
        self.wait = Some(wait);
        self
    }

    /// Only healthy instances.
    #[must_use]
    pub fn healthy_only(mut self) -> Self {
        self.healthy_only = true;
        self
    }

    /// A linearizable read.
    #[must_use]
    pub fn linearizable(mut self) -> Self {
        self.linearizable = true;
        self
    }

    /// Only the clusters named.
    #[must_use]
    pub fn clusters<I: IntoIterator<Item = S>, S: Into<String>>(mut self, clusters: I) -> Self {
        self.clusters = clusters.into_iter().map(Into::into).collect();
        self
    }
}

/// Where an instance is: its address and cluster (`DEFAULT` when `None`).
fn instance_path(service: &ServiceRef, ip: &str, port: u16, cluster: Option<&str>, tail: &str) -> String {
    let mut query = service.query();
    query.push_some("cluster", cluster);
    format!("{}{}", service.path(&format!("/instances/{}/{port}{tail}", segment(ip))), query.as_str())
}

impl Client {
    /// Sends `request` and parses a successful answer as `T`.
    pub(crate) async fn typed<T: DeserializeOwned>(&self, request: Request) -> Result<T, Error> {
        self.send(request).await?.error_for_status()?.json()
    }

    /// `GET /health`: the node's lease and preservation counters.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] for an error status.
    pub async fn health(&self) -> Result<Health, Error> {
        self.typed(Request::new(Method::GET, "/health")).await
    }

    /// `GET /ready`: true when a server answered 200, false when it (and
    /// every other address) answered 503 (a cluster node still loading).
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] for another status.
    pub async fn ready(&self) -> Result<bool, Error> {
        let answer: Response = self.send(Request::new(Method::GET, "/ready")).await?;
        match answer.status {
            StatusCode::OK => Ok(true),
            StatusCode::SERVICE_UNAVAILABLE => Ok(false),
            status if status.is_success() => {
                Err(Error::Malformed { addr: answer.addr, reason: format!("/ready answered {status}") })
            }
            status => Err(Error::refused(&answer.addr, status, &answer.body)),
        }
    }

    /// `GET /v1/cluster`: the node's view of the cluster (members, ring,
    /// replication queues, Raft, health checks), as JSON. `janus-api` does
    /// not define this shape (it is the server's status report), so it is
    /// not typed here either.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] for an error status.
    pub async fn cluster_status(&self) -> Result<serde_json::Value, Error> {
        self.typed(Request::new(Method::GET, "/v1/cluster")).await
    }

    /// `GET /v1/namespaces`.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] for an error status.
    pub async fn list_namespaces(&self) -> Result<NamespaceList, Error> {
        self.typed(Request::new(Method::GET, "/v1/namespaces")).await
    }

    /// `GET /v1/namespaces/{id}`.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (404 `not_found`, …).
    pub async fn namespace(&self, id: &str) -> Result<Namespace, Error> {
        self.typed(Request::new(Method::GET, format!("/v1/namespaces/{}", segment(id)))).await
    }

    /// `PATCH /v1/namespaces/{id}`: its name, description or DNS access
    /// rule (the mode never changes).
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (404, 409 for another mode, …).
    pub async fn update_namespace(&self, id: &str, update: &UpdateNamespace) -> Result<Namespace, Error> {
        let path = format!("/v1/namespaces/{}", segment(id));
        self.typed(Request::new(Method::PATCH, path).body(Body::json(update)?)).await
    }

    /// `POST /v1/namespaces`. Not sent again after it may have reached a
    /// server (a repeat would answer 409 `already_exists`).
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (409 when it exists, …).
    pub async fn create_namespace(&self, namespace: &CreateNamespace) -> Result<Namespace, Error> {
        self.typed(Request::new(Method::POST, "/v1/namespaces").body(Body::json(namespace)?)).await
    }

    /// `GET /v1/namespaces/{ns}/services`, the first page of up to 100
    /// services (of `group` only, when given).
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] for an error status.
    pub async fn list_services(&self, namespace: &str, group: Option<&str>) -> Result<ServiceList, Error> {
        let mut query = Query::default();
        query.push_some("group", group);
        let path = format!("/v1/namespaces/{}/services{}", segment(namespace), query.as_str());
        self.typed(Request::new(Method::GET, path)).await
    }

    /// `POST /v1/namespaces/{ns}/services`: defines a service. Not sent
    /// again after it may have reached a server.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (409 when it exists, …).
    pub async fn create_service(&self, namespace: &str, service: &CreateService) -> Result<Service, Error> {
        let path = format!("/v1/namespaces/{}/services", segment(namespace));
        self.typed(Request::new(Method::POST, path).body(Body::json(service)?)).await
    }

    /// `GET /v1/namespaces/{ns}/services/{service}`.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (404 `not_found`, …).
    pub async fn service(&self, service: &ServiceRef) -> Result<Service, Error> {
        self.typed(Request::new(Method::GET, format!("{}{}", service.path(""), service.query().as_str()))).await
    }

    /// `PUT /v1/namespaces/{ns}/services/{service}`: fields left `None` stay.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] for an error status.
    pub async fn update_service(&self, service: &ServiceRef, update: &UpdateService) -> Result<Service, Error> {
        let path = format!("{}{}", service.path(""), service.query().as_str());
        self.typed(Request::new(Method::PUT, path).body(Body::json(update)?)).await
    }

    /// `POST .../instances`: registers an instance (ephemeral in an `ap`
    /// namespace, persistent in a `cp` one), or registers it again. Safe to
    /// send again to the next address: a registration is an upsert.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (400 for a bad field,
    /// 503 `unavailable` for a `cp` write without quorum, …).
    pub async fn register_instance(
        &self,
        service: &ServiceRef,
        instance: &RegisterInstance,
    ) -> Result<WriteAck, Error> {
        let path = format!("{}{}", service.path("/instances"), service.query().as_str());
        self.typed(Request::new(Method::POST, path).body(Body::json(instance)?).retry_safe(true)).await
    }

    /// `DELETE .../instances/{ip}/{port}`. Sent again to the next address
    /// after a timeout (DELETE is idempotent): if the first try went
    /// through, the second answers 404.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (404 when unknown, …).
    pub async fn deregister_instance(
        &self,
        service: &ServiceRef,
        ip: &str,
        port: u16,
        cluster: Option<&str>,
    ) -> Result<WriteAck, Error> {
        self.typed(Request::new(Method::DELETE, instance_path(service, ip, port, cluster, ""))).await
    }

    /// `PUT .../instances/{ip}/{port}/heartbeat`: renews an ephemeral
    /// instance's lease; the answer says how often to beat.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (404 when the instance is
    /// unknown, e.g. expired: register it again).
    pub async fn heartbeat(
        &self,
        service: &ServiceRef,
        ip: &str,
        port: u16,
        cluster: Option<&str>,
    ) -> Result<HeartbeatAck, Error> {
        self.typed(Request::new(Method::PUT, instance_path(service, ip, port, cluster, "/heartbeat"))).await
    }

    /// `GET .../instances`: the service's instances as `options` select
    /// them. The list's `revision` is the index of the next blocking query;
    /// a blocking query may take its `wait` (plus the server's jitter of up
    /// to 1/16) on top of the request timeout.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (404 for an unknown
    /// namespace, …).
    pub async fn list_instances(&self, service: &ServiceRef, options: &ListOptions) -> Result<InstanceList, Error> {
        let mut query = service.query();
        if !options.clusters.is_empty() {
            query.push("cluster", &options.clusters.join(","));
        }
        if options.healthy_only {
            query.push("healthy_only", "true");
        }
        if options.linearizable {
            query.push("consistency", "linearizable");
        }
        let mut request_timeout = self.options().request_timeout;
        if let Some(index) = options.index {
            query.push("index", &index.to_string());
            // The server's default wait when none is given.
            let wait = options.wait.unwrap_or(Duration::from_secs(300));
            query.push("wait", &format!("{}ms", wait.as_millis()));
            request_timeout += wait + wait / 16;
        }
        let path = format!("{}{}", service.path("/instances"), query.as_str());
        self.typed(Request::new(Method::GET, path).timeout(request_timeout)).await
    }
}
