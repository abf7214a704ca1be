//! Response shapes of the Nacos v1 naming API (field sets as Nacos 2.x emits them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Beat answer code: the instance is known and its lease renewed.
pub const CODE_OK: i32 = 10200;
/// Beat answer code: the instance is unknown; the client should register again.
pub const CODE_RESOURCE_NOT_FOUND: i32 = 20404;

/// `GET /nacos/v1/ns/instance/list`. `H` is the hosts list: [`Host`]s when
/// parsing, any serializable list (e.g. pre-encoded JSON) when answering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInfo<H = Vec<Host>> {
    /// Grouped name, `group@@service`.
    pub name: String,
    /// Group name.
    pub group_name: String,
    /// The `clusters` parameter as given.
    pub clusters: String,
    /// How long clients may cache the answer.
    pub cache_millis: u64,
    /// The instances.
    pub hosts: H,
    /// Milliseconds since the epoch when this answer was built.
    pub last_ref_time: u64,
    /// Always empty, as in Nacos 2.x.
    pub checksum: String,
    /// Always false.
    #[serde(rename = "allIPs")]
    pub all_ips: bool,
    /// True when the protect threshold fired.
    pub reach_protection_threshold: bool,
    /// Always true.
    pub valid: bool,
}

/// One host of [`ServiceInfo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    /// Instance id.
    pub instance_id: String,
    /// Address.
    pub ip: String,
    /// Port.
    pub port: u16,
    /// Weight.
    pub weight: f64,
    /// Health as shown (protect threshold may force `true`).
    pub healthy: bool,
    /// Enabled flag.
    pub enabled: bool,
    /// Ephemeral flag.
    pub ephemeral: bool,
    /// Cluster name.
    pub cluster_name: String,
    /// Grouped service name.
    pub service_name: String,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Beat interval in milliseconds.
    pub instance_heart_beat_interval: u64,
    /// Always `simple`.
    pub instance_id_generator: String,
    /// Unhealthy-after in milliseconds.
    #[serde(rename = "instanceHeartBeatTimeOut")]
    pub instance_heart_beat_time_out: u64,
    /// Delete-after in milliseconds.
    pub ip_delete_timeout: u64,
}

/// `GET /nacos/v1/ns/instance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDetail {
    /// Grouped service name.
    pub service: String,
    /// Address.
    pub ip: String,
    /// Port.
    pub port: u16,
    /// Cluster name.
    pub cluster_name: String,
    /// Weight.
    pub weight: f64,
    /// Health.
    pub healthy: bool,
    /// Instance id.
    pub instance_id: String,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
}

/// `PUT /nacos/v1/ns/instance/beat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BeatResponse {
    /// Interval the client should adopt, in milliseconds.
    pub client_beat_interval: u64,
    /// [`CODE_OK`] or [`CODE_RESOURCE_NOT_FOUND`].
    pub code: i32,
    /// Always true: beats may omit the instance body.
    pub light_beat_enabled: bool,
}

/// The `beat` parameter of a beat request (URL-encoded JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BeatInfo {
    /// Cluster name.
    pub cluster: Option<String>,
    /// Address.
    pub ip: Option<String>,
    /// Port.
    pub port: Option<u32>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Grouped or plain service name.
    pub service_name: Option<String>,
    /// Weight.
    pub weight: Option<f64>,
    /// Whether the client beats on a schedule (ignored).
    pub scheduled: Option<bool>,
    /// Beat period the client uses (ignored; metadata carries overrides).
    pub period: Option<u64>,
    /// Whether the instance is stopped (ignored).
    pub stopped: Option<bool>,
}

/// `GET /nacos/v1/ns/service`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDetail {
    /// Namespace id (`public` for the default namespace).
    pub namespace_id: String,
    /// Group name.
    pub group_name: String,
    /// Service name (without the group).
    pub name: String,
    /// Protect threshold.
    pub protect_threshold: f64,
    /// Service metadata.
    pub metadata: BTreeMap<String, String>,
    /// Instance selector; always `{"type":"none"}`.
    pub selector: Selector,
    /// The clusters that hold instances.
    pub clusters: Vec<ClusterDetail>,
}

/// A selector (`{"type":"none"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selector {
    /// Selector type.
    #[serde(rename = "type")]
    pub kind: String,
}

/// A cluster's health checker as Nacos shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthChecker {
    /// `TCP`, `HTTP` or `NONE`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The path of an HTTP check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// One cluster of a [`ServiceDetail`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDetail {
    /// Cluster name.
    pub name: String,
    /// Health checker (`{"type":"TCP"}` as Nacos's default; ephemeral instances use heartbeats).
    pub health_checker: HealthChecker,
    /// Cluster metadata.
    pub metadata: BTreeMap<String, String>,
}

/// `GET /nacos/v1/ns/service/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceNames {
    /// Services in the namespace (and group, when given).
    pub count: u64,
    /// This page of service names, without group.
    pub doms: Vec<String>,
}

/// `GET /nacos/v1/ns/instance/statuses`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statuses {
    /// `ip:port_healthy` per instance.
    pub ips: Vec<String>,
}

/// `PUT`/`DELETE /nacos/v1/ns/instance/metadata/batch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchUpdated {
    /// Ids of the instances changed.
    pub updated: Vec<String>,
}

/// The envelope of the console API: `{"code":200,"message":null,"data":…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsoleResult<T> {
    /// 200 on success.
    pub code: u16,
    /// Always null on success.
    pub message: Option<String>,
    /// The payload.
    pub data: T,
}

/// A namespace as the Nacos console API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleNamespace {
    /// Id; empty for the default namespace, as Nacos shows it.
    pub namespace: String,
    /// Display name.
    pub namespace_show_name: String,
    /// Description.
    pub namespace_desc: String,
    /// Config quota (Janus keeps no configs; Nacos's default 200).
    pub quota: u32,
    /// Always 0: Janus keeps no configs.
    pub config_count: u32,
    /// 0 for the default namespace, 2 for custom ones.
    #[serde(rename = "type")]
    pub kind: u8,
}

/// `GET /nacos/v1/ns/operator/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorMetrics {
    /// `UP`.
    pub status: String,
    /// Services held.
    pub service_count: u64,
    /// Instances held.
    pub instance_count: u64,
    /// Subscribers (Janus has no push subscribers: 0).
    pub subscribe_count: u64,
    /// Pending Raft notifications (0).
    pub raft_notify_task_count: u64,
    /// Services this node is responsible for.
    pub responsible_service_count: u64,
    /// Instances this node is responsible for.
    pub responsible_instance_count: u64,
    /// Clients (one per ephemeral instance, as Nacos counts HTTP clients).
    pub client_count: u64,
    /// Connection-based (gRPC) clients: 0.
    pub connection_based_client_count: u64,
    /// Ephemeral ip:port clients.
    pub ephemeral_ip_port_client_count: u64,
    /// Persistent ip:port clients.
    pub persistent_ip_port_client_count: u64,
    /// Clients this node is responsible for.
    pub responsible_client_count: u64,
    /// CPU load (1-minute load average per core).
    pub cpu: f64,
    /// 1-minute load average.
    pub load: f64,
    /// Memory in use, as a fraction of the machine's.
    pub mem: f64,
}
