//! The operator's views: switches and metrics, with the node's real settings
//! and counters. Janus is configured through its config file, so switches
//! cannot be changed here.

use janus_api::nacos::OperatorMetrics;
use serde_json::{Value, json};

use crate::{NacosContext, NacosError};

/// The switches: Nacos's, with Janus's lease and self-preservation settings.
pub fn switches(ctx: &NacosContext) -> Value {
    let config = ctx.registry.view().read(|r| *r.config());
    let preservation = config.preservation;
    json!({
        "name": "00-00---000-NACOS_SWITCH_DOMAIN-000---00-00",
        "masters": null,
        "adWeightMap": {},
        "defaultPushCacheMillis": 10000,
        "clientBeatInterval": config.lease.interval_ms,
        "defaultCacheMillis": 3000,
        "distroThreshold": 0.7,
        "healthCheckEnabled": true,
        "autoChangeHealthCheckEnabled": true,
        "distroEnabled": true,
        "enableStandalone": true,
        "pushEnabled": false,
        "checkTimes": 3,
        "httpHealthParams": {"max": 5000, "min": 500, "factor": 0.85},
        "tcpHealthParams": {"max": 5000, "min": 1000, "factor": 0.75},
        "mysqlHealthParams": {"max": 3000, "min": 2000, "factor": 0.65},
        "incrementalList": [],
        "serverStatusSynchronizationPeriodMillis": 2000,
        "serviceStatusSynchronizationPeriodMillis": 5000,
        "disableAddIP": false,
        "sendBeatOnly": false,
        "lightBeatEnabled": true,
        "limitedUrlMap": {},
        "distroServerExpiredMillis": 10000,
        "pushGoVersion": "0.1.0",
        "pushJavaVersion": "0.1.0",
        "pushPythonVersion": "0.4.3",
        "pushCVersion": "1.0.12",
        "pushCSharpVersion": "0.9.0",
        "enableAuthentication": false,
        "overriddenServerStatus": null,
        "defaultInstanceEphemeral": true,
        "healthCheckWhiteList": [],
        "checksum": null,
        // Janus's own lease and self-preservation settings, under Nacos-like names.
        "instanceHeartBeatTimeout": config.lease.unhealthy_after_ms,
        "ipDeleteTimeout": config.lease.delete_after_ms,
        "expireInstance": true,
        "selfPreservationEnabled": preservation.enabled,
        "selfPreservationRenewalThreshold": preservation.renewal_threshold,
    })
}

/// A change of the switches: refused, since Janus reads its settings from its config.
pub fn update_switches() -> NacosError {
    NacosError::invalid("switches are read-only in Janus: set them in janus.toml (see docs/config/janus.toml)")
}

/// The node's counters and the machine's load.
pub fn metrics(ctx: &NacosContext) -> OperatorMetrics {
    let health = ctx.registry.health();
    let stats = health.stats;
    let (load, cores, mem) = machine_load();
    OperatorMetrics {
        status: if health.ready { "UP" } else { "STARTING" }.to_owned(),
        service_count: stats.services,
        instance_count: stats.instances,
        subscribe_count: 0,
        raft_notify_task_count: 0,
        responsible_service_count: stats.services,
        responsible_instance_count: stats.instances,
        client_count: stats.leases,
        connection_based_client_count: 0,
        ephemeral_ip_port_client_count: stats.leases,
        persistent_ip_port_client_count: stats.instances - stats.leases,
        responsible_client_count: stats.leases,
        cpu: load / cores,
        load,
        mem,
    }
}

/// 1-minute load average, cores, and memory in use (fraction) from /proc; zeros where unavailable.
fn machine_load() -> (f64, f64, f64) {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0);
    // Core counts are small, so the float conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
    };
    let mem = match (field("MemTotal:"), field("MemAvailable:")) {
        (Some(total), Some(available)) if total > 0.0 => 1.0 - available / total,
        _ => 0.0,
    };
    (load, cores, mem)
}
