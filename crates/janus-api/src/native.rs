//! Request and response bodies of the native API under `/v1/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Consistency mode of a namespace, fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Available under partition: ephemeral, heartbeat-leased instances.
    Ap,
    /// Linearizable on Raft: persistent, health-checked instances.
    Cp,
}

/// `POST /v1/namespaces`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateNamespace {
    /// Namespace id, used in every path.
    pub id: String,
    /// Display name; defaults to the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// `ap` or `cp`.
    pub mode: Mode,
    /// Whether DNS answers for its services (the DNS access rule; default
    /// `true`). DNS carries no credentials: `false` keeps the namespace out
    /// of it (queries are refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<bool>,
}

/// `PATCH /v1/namespaces/{ns}`: the mode can never change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateNamespace {
    /// New display name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// Accepted only when it is the namespace's mode already (a client sending
    /// the whole namespace back); any other mode is refused with 409.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Whether DNS answers for its services (the DNS access rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<bool>,
}

/// A namespace as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    /// Namespace id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `ap` or `cp`.
    pub mode: Mode,
    /// Whether DNS answers for its services (the DNS access rule).
    #[serde(default = "answered_over_dns")]
    pub dns: bool,
    /// Number of services in the namespace.
    pub service_count: u64,
    /// Number of instances of its services.
    #[serde(default)]
    pub instance_count: u64,
    /// Revision of the namespace: passes every change to it or its services.
    pub revision: u64,
}

/// A namespace is answered over DNS unless it says otherwise.
fn answered_over_dns() -> bool {
    true
}

/// `GET /v1/namespaces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamespaceList {
    /// All namespaces, ordered by id.
    pub namespaces: Vec<Namespace>,
}

/// `POST /v1/namespaces/{ns}/services`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateService {
    /// Service name.
    pub name: String,
    /// Group; defaults to `DEFAULT_GROUP`.
    #[serde(default)]
    pub group: Option<String>,
    /// Nacos protect threshold in `[0, 1]`; default 0.
    #[serde(default)]
    pub protect_threshold: Option<f64>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// `PUT /v1/namespaces/{ns}/services/{service}`: fields left out stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateService {
    /// New protect threshold.
    #[serde(default)]
    pub protect_threshold: Option<f64>,
    /// New metadata (replaces the old map).
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A service as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Namespace id.
    pub namespace: String,
    /// Mode of the namespace.
    pub mode: Mode,
    /// Group name.
    pub group: String,
    /// Service name.
    pub name: String,
    /// Nacos protect threshold.
    pub protect_threshold: f64,
    /// Free-form metadata.
    pub metadata: BTreeMap<String, String>,
    /// Number of instances.
    pub instance_count: u64,
    /// Enabled instances that are healthy.
    #[serde(default)]
    pub healthy_count: u64,
    /// Whether the protect threshold fires: a list shows every enabled
    /// instance, the unhealthy ones as healthy.
    #[serde(default)]
    pub reach_protection_threshold: bool,
    /// Revision of the service.
    pub revision: u64,
    /// Clusters with settings (the others have the defaults: a TCP check).
    #[serde(default)]
    pub clusters: BTreeMap<String, Cluster>,
}

/// How the server checks a cluster's persistent instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum HealthCheck {
    /// A TCP connect (the default).
    Tcp {
        /// Port; the instance's own when absent.
        #[serde(default)]
        port: Option<u16>,
    },
    /// An HTTP GET that must answer 200.
    Http {
        /// Path, default `/`.
        #[serde(default = "root_path")]
        path: String,
        /// Port; the instance's own when absent.
        #[serde(default)]
        port: Option<u16>,
    },
    /// No checks; health is set by hand.
    None,
}

fn root_path() -> String {
    "/".to_owned()
}

/// A cluster's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// How its persistent instances are checked.
    pub health_check: HealthCheck,
    /// Free-form metadata.
    pub metadata: BTreeMap<String, String>,
}

/// `PUT /v1/namespaces/{ns}/services/{service}/clusters/{cluster}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutCluster {
    /// How its persistent instances are checked; a TCP connect if absent.
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// `GET /v1/namespaces/{ns}/services`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceList {
    /// Namespace id.
    pub namespace: String,
    /// Mode of the namespace.
    pub mode: Mode,
    /// Revision of the namespace.
    pub revision: u64,
    /// Services in the namespace (all groups, or the requested one).
    pub total: u64,
    /// Page number, from 1.
    pub page: u64,
    /// Page size.
    pub page_size: u64,
    /// This page of services.
    pub services: Vec<Service>,
}

/// `POST /v1/namespaces/{ns}/services/{service}/instances` and the full update
/// `PUT .../instances/{ip}/{port}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterInstance {
    /// IPv4 or IPv6 address (ignored on PUT, where the path names it).
    #[serde(default)]
    pub ip: Option<String>,
    /// Port, 1..=65535 (ignored on PUT, where the path names it).
    #[serde(default)]
    pub port: Option<i64>,
    /// Cluster; defaults to `DEFAULT` (on PUT the `cluster` query parameter names it).
    #[serde(default)]
    pub cluster: Option<String>,
    /// Weight in `[0, 10000]`; default 1.
    #[serde(default)]
    pub weight: Option<f64>,
    /// Default true.
    #[serde(default)]
    pub healthy: Option<bool>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Must match the namespace mode when given (`true` for `ap`).
    #[serde(default)]
    pub ephemeral: Option<bool>,
    /// Metadata; `preserved.heart.beat.*` keys override lease timings.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Custom instance id; default `ip#port#cluster#group@@service`.
    #[serde(default)]
    pub instance_id: Option<String>,
}

/// `PATCH .../instances/{ip}/{port}`: only the fields given change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchInstance {
    /// New weight.
    #[serde(default)]
    pub weight: Option<f64>,
    /// New health flag.
    #[serde(default)]
    pub healthy: Option<bool>,
    /// New enabled flag.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Metadata entries to set (merged into the existing map).
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// An instance as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Instance id.
    pub instance_id: String,
    /// Address.
    pub ip: String,
    /// Port.
    pub port: u16,
    /// Cluster name.
    pub cluster: String,
    /// Weight.
    pub weight: f64,
    /// Health as shown to this reader (protect threshold may force `true`).
    pub healthy: bool,
    /// Whether the instance takes traffic.
    pub enabled: bool,
    /// True in `ap` namespaces.
    pub ephemeral: bool,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Epoch milliseconds of the last heartbeat or registration, where this
    /// node runs the instance's lease (`all=true` lists only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_renew_ms: Option<u64>,
    /// In a cluster, the node owning the instance in this node's view of the
    /// ring: it runs the lease of an ephemeral instance and probes a
    /// persistent one (`all=true` lists only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<u64>,
    /// For an instance a Nacos gRPC client registered over its connection
    /// (it lives as long as that connection, with no heartbeats): the node
    /// holding the connection (`all=true` lists only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_to: Option<u64>,
}

/// `GET .../instances`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceList {
    /// Namespace id.
    pub namespace: String,
    /// Mode of the namespace.
    pub mode: Mode,
    /// Group name.
    pub group: String,
    /// Service name.
    pub service: String,
    /// Revision of the service this list reflects.
    pub revision: u64,
    /// True when the protect threshold fired and unhealthy instances are shown healthy.
    pub reach_protection_threshold: bool,
    /// With `all=true`: how many instances the service has (in the selected
    /// clusters); `instances` is one page of them, ordered by cluster,
    /// address and port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// The selected instances.
    pub instances: Vec<Instance>,
}

/// `GET .../services/{service}/subscribers`: the Nacos gRPC subscriptions to
/// a service held by connections to the node answering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriberList {
    /// Namespace id.
    pub namespace: String,
    /// Group name.
    pub group: String,
    /// Service name.
    pub service: String,
    /// The node answering: subscribers on other nodes are not listed.
    pub node: u64,
    /// One per subscribed connection.
    pub subscribers: Vec<Subscriber>,
}

/// One gRPC subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscriber {
    /// The Nacos connection id.
    pub connection: String,
    /// The client's address.
    pub remote: String,
    /// The SDK's version, as it said at setup.
    pub client_version: String,
    /// The application name, as it said at setup.
    pub app: String,
    /// The cluster filter (empty: all clusters).
    pub clusters: String,
    /// The service revision the client last acknowledged.
    pub acked_revision: u64,
}

/// Answer to a write: the revision it produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteAck {
    /// Namespace id.
    pub namespace: String,
    /// Mode of the namespace.
    pub mode: Mode,
    /// Revision of the service after the write.
    pub revision: u64,
}

/// Answer to `PUT .../heartbeat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// Mode of the namespace.
    pub mode: Mode,
    /// The interval at which the client should beat, in milliseconds.
    pub beat_interval_ms: u64,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// `UP` while the node serves.
    pub status: String,
    /// Whether self-preservation currently stops lease deletions.
    pub self_preservation: bool,
    /// Heartbeats and registrations received in the last minute.
    pub renewals_last_min: u64,
    /// Renewals expected per minute from the registered ephemeral instances.
    pub expected_renewals_per_min: u64,
    /// Instances held by this node.
    pub instances: u64,
    /// Leases this node runs: the ephemeral instances it owns (in a cluster,
    /// its share of them), or took over from an owner it could not reach.
    #[serde(default)]
    pub leases: u64,
}

/// One item of the Server-Sent Events stream (`event: change`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// Node-wide revision of the change.
    pub revision: u64,
    /// Namespace id.
    pub namespace: String,
    /// Group of the service, when the change concerns a service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Service name, when the change concerns a service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// What happened, e.g. `instance_registered`.
    pub kind: String,
    /// `ip:port` of the instance, when the change concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Cluster of the instance, when the change concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}
