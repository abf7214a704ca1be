//! Eureka instances: reading a registration into an [`InstanceSpec`] and
//! rendering a stored instance the way Eureka does.
//!
//! Eureka-only fields travel as instance metadata under `eureka.*` keys (so
//! they replicate with the instance and other APIs can see them); the lease
//! timings of `leaseInfo` become the Nacos `preserved.*` overrides.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use janus_core::model::{BEAT_INTERVAL_KEY, BEAT_TIMEOUT_KEY, DELETE_TIMEOUT_KEY, Instance, InstanceSpec, Metadata};
use janus_core::name::{ClusterName, InstanceKey, ServiceKey};
use janus_core::registry::SnapshotInstance;
use janus_core::{Millis, validate};
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// Prefix of the metadata keys that carry Eureka-only fields.
pub(crate) const PREFIX: &str = "eureka.";
const STATUS: &str = "eureka.status";
const OVERRIDDEN: &str = "eureka.overriddenstatus";
const DATA_CENTER_CLASS_DEFAULT: &str = "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo";

/// Fields copied verbatim into `eureka.<field>` metadata.
const PLAIN_FIELDS: &[&str] = &[
    "hostName",
    "vipAddress",
    "secureVipAddress",
    "homePageUrl",
    "statusPageUrl",
    "healthCheckUrl",
    "secureHealthCheckUrl",
    "countryId",
    "lastDirtyTimestamp",
    "appGroupName",
    "asgName",
];

/// A string from a JSON value that may be a string, number or bool.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        Value::Object(o) => text(o.get("$")),
        other => Some(other.to_string()),
    }
}

fn number(value: Option<&Value>) -> Option<u64> {
    text(value).and_then(|t| t.trim().parse().ok())
}

/// `{"$": 8080, "@enabled": "true"}` or a bare number.
fn port(value: Option<&Value>) -> Option<(u64, bool)> {
    let value = value?;
    let port = number(Some(value))?;
    let enabled = value.get("@enabled").and_then(|e| text(Some(e))).is_none_or(|e| e != "false");
    Some((port, enabled))
}

/// A registration body (`{"instance": {...}}`, from JSON or XML).
pub(crate) struct Registration {
    /// The app named in the body (uppercase in Eureka's convention).
    pub(crate) app: Option<String>,
    /// What to store.
    pub(crate) spec: InstanceSpec,
}

/// Reads a registration; the instance id, app, address and data centre are required, as in Eureka.
pub(crate) fn registration(body: &Value) -> Result<Registration, ApiError> {
    let instance = body
        .get("instance")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::invalid("invalid body: expected {\"instance\": {...}}"))?;
    let field = |name: &str| text(instance.get(name));
    let instance_id = field("instanceId").ok_or_else(|| ApiError::invalid("invalid instanceId: required"))?;
    let ip_text = field("ipAddr").ok_or_else(|| ApiError::invalid("invalid ipAddr: required"))?;
    field("hostName").ok_or_else(|| ApiError::invalid("invalid hostName: required"))?;
    let data_center =
        instance.get("dataCenterInfo").ok_or_else(|| ApiError::invalid("invalid dataCenterInfo: required"))?;
    let ip = validate::parse_ip(&ip_text)
        .map_err(|_| ApiError::invalid(format!("invalid ipAddr: must be an IPv4 or IPv6 address, got {ip_text:?}")))?;
    validate::check_instance_ip("ipAddr", ip)?;
    let (port_number, _) = match port(instance.get("port")) {
        Some((p, true)) => (p, true),
        _ => port(instance.get("securePort")).ok_or_else(|| ApiError::invalid("invalid port: required"))?,
    };
    let port_number = validate::check_port(i64::try_from(port_number).unwrap_or(0))?;

    let mut metadata = Metadata::new();
    if let Some(Value::Object(user)) = instance.get("metadata") {
        for (key, value) in user {
            // Eureka's XML codec sends a class marker element; it is not metadata.
            if key.starts_with('@') {
                continue;
            }
            if let Some(value) = text(Some(value)) {
                metadata.insert(key.clone(), value);
            }
        }
    }
    for name in PLAIN_FIELDS {
        if let Some(value) = field(name) {
            metadata.insert(format!("{PREFIX}{name}"), value);
        }
    }
    let status = field("status").unwrap_or_else(|| "UP".to_owned()).to_ascii_uppercase();
    metadata.insert(STATUS.to_owned(), status.clone());
    if let Some(overridden) = field("overriddenstatus").or_else(|| field("overriddenStatus")).filter(|s| s != "UNKNOWN")
    {
        metadata.insert(OVERRIDDEN.to_owned(), overridden.to_ascii_uppercase());
    }
    if let Some((secure, enabled)) = port(instance.get("securePort")) {
        metadata.insert(format!("{PREFIX}securePort"), format!("{secure}:{enabled}"));
    }
    if let Some(class) = data_center.get("@class").and_then(|c| text(Some(c))) {
        metadata.insert(format!("{PREFIX}dataCenterInfo.class"), class);
    }
    if let Some(name) = text(data_center.get("name")) {
        metadata.insert(format!("{PREFIX}dataCenterInfo.name"), name);
    }
    let lease = instance.get("leaseInfo");
    let renewal = lease.and_then(|l| number(l.get("renewalIntervalInSecs"))).unwrap_or(30).clamp(1, 86_400);
    let duration = lease.and_then(|l| number(l.get("durationInSecs"))).unwrap_or(90).clamp(renewal, 86_400);
    metadata.insert(BEAT_INTERVAL_KEY.to_owned(), (renewal * 1000).to_string());
    metadata.insert(BEAT_TIMEOUT_KEY.to_owned(), (duration * 1000).to_string());
    metadata.insert(DELETE_TIMEOUT_KEY.to_owned(), (duration * 1000).to_string());

    let mut spec = InstanceSpec::new(InstanceKey::new(ClusterName::default_cluster(), ip, port_number));
    spec.enabled = effective_status(&metadata) == "UP";
    spec.metadata = metadata;
    spec.custom_id = Some(instance_id);
    spec.ephemeral = Some(true);
    Ok(Registration { app: field("app"), spec })
}

/// The status Eureka clients see before health is considered: the override, else the reported one.
pub(crate) fn effective_status(metadata: &Metadata) -> String {
    metadata.get(OVERRIDDEN).or_else(|| metadata.get(STATUS)).cloned().unwrap_or_else(|| "UP".to_owned())
}

/// Metadata changes for a status override (`None` removes it).
pub(crate) fn status_override(status: Option<&str>) -> (Metadata, Vec<String>) {
    match status {
        Some(status) => (Metadata::from([(OVERRIDDEN.to_owned(), status.to_ascii_uppercase())]), Vec::new()),
        None => (Metadata::new(), vec![OVERRIDDEN.to_owned()]),
    }
}

/// The id Eureka clients address an instance by.
pub(crate) fn instance_id(instance: &Instance, key: &ServiceKey) -> String {
    instance.instance_id(key)
}

/// Turns registry times (a monotonic clock) into the epoch milliseconds
/// Eureka shows, as of one read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    /// The registry's clock at the read.
    now: Millis,
    /// Epoch milliseconds at the read.
    epoch_ms: u64,
}

impl WallClock {
    /// The clocks now.
    pub(crate) fn read(store: janus_core::StoreView<'_>) -> Self {
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self { now: store.now(), epoch_ms }
    }

    /// Epoch milliseconds of a registry time; `None` (no lease here) is the read itself.
    pub(crate) fn epoch_of(self, at: Option<Millis>) -> u64 {
        at.map_or(self.epoch_ms, |at| self.epoch_ms.saturating_sub(self.now.since(at)))
    }
}

/// Renders an instance the way Eureka's JSON codec does; XML output flips `overriddenStatus`.
///
/// Lease timestamps come from the lease where this node runs it:
/// `registrationTimestamp` when it started, `lastRenewalTimestamp` its last
/// renewal, `serviceUpTimestamp` the registration if the instance registered
/// `UP` (0 otherwise), `lastUpdatedTimestamp` the registration. Without a
/// lease here (a replica of another node's instance) they are the time of
/// the read. `evictionTimestamp` is 0: a listed instance was not evicted.
pub(crate) fn render(
    found: &SnapshotInstance,
    clock: WallClock,
    key: &ServiceKey,
    app: &str,
    action: Option<&str>,
) -> Value {
    let instance = &*found.instance;
    let timing = found.timing;
    let registered = clock.epoch_of(found.lease.map(|l| l.started));
    let renewed = clock.epoch_of(found.lease.map(|l| l.last_renew));
    let meta = &instance.metadata;
    let service_up = if meta.get(STATUS).is_none_or(|s| s == "UP") { registered } else { 0 };
    let get = |name: &str| meta.get(&format!("{PREFIX}{name}")).cloned();
    let ip = match instance.key.ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6.to_string(),
    };
    let status = if !instance.enabled {
        match effective_status(meta).as_str() {
            "UP" => "OUT_OF_SERVICE".to_owned(),
            other => other.to_owned(),
        }
    } else if !instance.healthy {
        "DOWN".to_owned()
    } else {
        effective_status(meta)
    };
    let (secure_port, secure_enabled) = get("securePort")
        .and_then(|s| s.split_once(':').map(|(p, e)| (p.parse::<u64>().unwrap_or(443), e == "true")))
        .unwrap_or((443, false));
    let user: BTreeMap<&String, &String> =
        meta.iter().filter(|(k, _)| !k.starts_with(PREFIX) && !k.starts_with("preserved.")).collect();
    let mut metadata = Map::new();
    if user.is_empty() {
        metadata.insert("@class".to_owned(), json!("java.util.Collections$EmptyMap"));
    }
    for (k, v) in user {
        metadata.insert(k.clone(), json!(v));
    }
    let dirty = get("lastDirtyTimestamp").unwrap_or_else(|| "0".to_owned());
    let mut value = json!({
        "instanceId": instance_id(instance, key),
        "hostName": get("hostName").unwrap_or_else(|| ip.clone()),
        "app": app,
        "ipAddr": ip,
        "status": status,
        "overriddenStatus": meta.get(OVERRIDDEN).cloned().unwrap_or_else(|| "UNKNOWN".to_owned()),
        "port": {"$": instance.key.port, "@enabled": "true"},
        "securePort": {"$": secure_port, "@enabled": secure_enabled.to_string()},
        "countryId": get("countryId").and_then(|c| c.parse::<u64>().ok()).unwrap_or(1),
        "dataCenterInfo": {
            "@class": get("dataCenterInfo.class").unwrap_or_else(|| DATA_CENTER_CLASS_DEFAULT.to_owned()),
            "name": get("dataCenterInfo.name").unwrap_or_else(|| "MyOwn".to_owned()),
        },
        "leaseInfo": {
            "renewalIntervalInSecs": timing.interval_ms / 1000,
            "durationInSecs": timing.unhealthy_after_ms / 1000,
            "registrationTimestamp": registered,
            "lastRenewalTimestamp": renewed,
            "evictionTimestamp": 0,
            "serviceUpTimestamp": service_up,
        },
        "metadata": Value::Object(metadata),
        "homePageUrl": get("homePageUrl").unwrap_or_default(),
        "statusPageUrl": get("statusPageUrl").unwrap_or_default(),
        "healthCheckUrl": get("healthCheckUrl").unwrap_or_default(),
        "vipAddress": get("vipAddress").unwrap_or_else(|| key.service.to_string()),
        "secureVipAddress": get("secureVipAddress").unwrap_or_else(|| key.service.to_string()),
        "isCoordinatingDiscoveryServer": "false",
        "lastUpdatedTimestamp": registered.to_string(),
        "lastDirtyTimestamp": dirty,
    });
    if let (Some(action), Value::Object(map)) = (action, &mut value) {
        map.insert("actionType".to_owned(), json!(action));
    }
    value
}
