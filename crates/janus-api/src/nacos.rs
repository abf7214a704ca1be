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
