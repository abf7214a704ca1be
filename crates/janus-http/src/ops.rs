//! `/health`, `/ready`, `/metrics` and the JSON 404 for unknown routes.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use janus_api::native::Health;
use janus_core::status::ClusterStatus;

use crate::AppState;
use crate::error::ApiError;

pub(crate) async fn health(State(state): State<AppState>) -> Json<Health> {
    let health = state.registry.health();
    Json(Health {
        status: if health.ready { "UP" } else { "STARTING" }.to_owned(),
        self_preservation: health.stats.self_preservation,
        renewals_last_min: health.stats.renewals_last_min,
        expected_renewals_per_min: health.stats.expected_renewals_per_min,
        instances: health.stats.instances,
    })
}

pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    if state.registry.health().ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: loading state\n").into_response()
    }
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode_registry(&mut text, state.metrics.registry()).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed\n").into_response();
    }
    let health = state.registry.health();
    let stats = health.stats;
    let (watched_services, watched_namespaces) = state.registry.store().hub().waited_keys();
    let gauges: [(&str, &str, u64); 10] = [
        ("janus_ready", "1 when the node serves", u64::from(health.ready)),
        ("janus_namespaces", "namespaces held", stats.namespaces),
        ("janus_services", "services held", stats.services),
        ("janus_instances", "instances held", stats.instances),
        ("janus_leases", "live heartbeat leases (ephemeral instances)", stats.leases),
        ("janus_revision", "node-wide registry revision", stats.revision),
        ("janus_renewals_last_minute", "heartbeats and registrations in the last minute", stats.renewals_last_min),
        ("janus_expected_renewals_per_minute", "renewals expected per minute", stats.expected_renewals_per_min),
        (
            "janus_self_preservation",
            "1 while self-preservation holds deletions back",
            u64::from(stats.self_preservation),
        ),
        (
            "janus_watched_keys",
            "services and namespaces with blocked watchers",
            (watched_services + watched_namespaces) as u64,
        ),
    ];
    for (name, help, value) in gauges {
        // Writing to a String cannot fail.
        let _ = write!(text, "# HELP {name} {help}.\n# TYPE {name} gauge\n{name} {value}\n");
    }
    cluster_metrics(&mut text, &state.registry.cluster_status());
    text.push_str("# EOF\n");
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

/// `GET /v1/cluster`: the members, AP replication and Raft as this node sees them.
pub(crate) async fn cluster(State(state): State<AppState>) -> Json<ClusterStatus> {
    Json(state.registry.cluster_status())
}

/// The cluster's gauges and counters, in the OpenMetrics text format.
fn cluster_metrics(text: &mut String, status: &ClusterStatus) {
    // Writing to a String cannot fail.
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        if samples.is_empty() {
            return;
        }
        let _ = write!(text, "# HELP {name} {help}.\n# TYPE {name} {kind}\n");
        for (labels, value) in samples {
            let sample = if kind == "counter" { format!("{name}_total") } else { name.to_owned() };
            let _ = writeln!(text, "{sample}{labels} {value}");
        }
    };
    if let Some(ap) = &status.ap {
        let peer = |id: u64| format!("{{peer=\"{id}\"}}");
        let peers: Vec<_> = ap.members.iter().filter(|m| !m.this_node).collect();
        let state = |wanted: &str| peers.iter().map(|m| (peer(m.id), u64::from(m.state == wanted))).collect::<Vec<_>>();
        family("janus_ap_peer_up", "gauge", "1 while the peer answers probes", &state("up"));
        family("janus_ap_peer_suspect", "gauge", "1 while some probes of the peer failed", &state("suspect"));
        family("janus_ap_peer_down", "gauge", "1 once the peer is considered down", &state("down"));
        let in_ring: Vec<_> = ap.members.iter().map(|m| (peer(m.id), u64::from(m.in_ring))).collect();
        family("janus_ap_member_in_ring", "gauge", "1 while the member owns ephemeral instances", &in_ring);
        let queued: Vec<_> = ap.queues.iter().map(|q| (peer(q.peer), q.queued)).collect();
        family("janus_ap_queue_depth", "gauge", "instances waiting to be sent to the peer", &queued);
        let overflows: Vec<_> = ap.queues.iter().map(|q| (peer(q.peer), q.overflows)).collect();
        family(
            "janus_ap_queue_overflows",
            "counter",
            "times the queue to the peer overflowed and was dropped",
            &overflows,
        );
        for (name, value) in &ap.counters {
            family(
                &format!("janus_ap_{name}"),
                "counter",
                &format!("AP protocol: {}", name.replace('_', " ")),
                &[(String::new(), *value)],
            );
        }
    }
    if let Some(health) = &status.health {
        let none = String::new();
        family(
            "janus_health_checked",
            "gauge",
            "persistent instances this node health-checks",
            &[(none.clone(), health.checked)],
        );
        family("janus_health_probes", "counter", "health probes run", &[(none.clone(), health.probes)]);
        family(
            "janus_health_probe_failures",
            "counter",
            "health probes that failed",
            &[(none.clone(), health.probe_failures)],
        );
        family(
            "janus_health_flips",
            "counter",
            "health changes reported through Raft",
            &[(none.clone(), health.flips)],
        );
        family(
            "janus_health_refused",
            "gauge",
            "persistent instances not probed because the probe policy refuses their address",
            &[(none, health.refused)],
        );
    }
    if let Some(raft) = &status.raft {
        let none = String::new();
        family("janus_raft_term", "gauge", "current Raft term", &[(none.clone(), raft.term)]);
        family(
            "janus_raft_is_leader",
            "gauge",
            "1 while this node leads",
            &[(none.clone(), u64::from(raft.state == "leader"))],
        );
        family(
            "janus_raft_leader_id",
            "gauge",
            "the leader this node knows (0: none)",
            &[(none.clone(), raft.leader.unwrap_or(0))],
        );
        family(
            "janus_raft_last_log_index",
            "gauge",
            "index of the last log entry",
            &[(none.clone(), raft.last_log_index)],
        );
        family(
            "janus_raft_commit_index",
            "gauge",
            "index of the last committed entry",
            &[(none.clone(), raft.commit_index)],
        );
        family("janus_raft_applied_index", "gauge", "index of the last applied entry", &[(none, raft.applied_index)]);
        let lag: Vec<_> = raft.lag.iter().map(|(id, lag)| (format!("{{peer=\"{id}\"}}"), *lag)).collect();
        family("janus_raft_replication_lag", "gauge", "entries a member is behind the leader (leader only)", &lag);
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError { status: StatusCode::NOT_FOUND, code: "not_found", message: "no such route".to_owned() }
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "this route does not take that method".to_owned(),
    }
}
