//! `/health`, `/ready`, `/metrics`, and the 404/405 (501 for the Nacos config
//! center) for unknown routes and methods, in each API's error shape.

use std::fmt::Write as _;

use crate::extract::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use janus_api::native::Health;
use janus_core::status::ClusterStatus;

use crate::AppState;
use crate::error::{ApiError, NacosError, NacosHttpError};

pub(crate) async fn health(State(state): State<AppState>) -> Json<Health> {
    let health = state.registry.health();
    Json(Health {
        status: if health.ready { "UP" } else { "STARTING" }.to_owned(),
        self_preservation: health.stats.self_preservation,
        renewals_last_min: health.stats.renewals_last_min,
        expected_renewals_per_min: health.stats.expected_renewals_per_min,
        instances: health.stats.instances,
        leases: health.stats.leases,
    })
}

pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    if state.registry.is_ready() {
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
    let (watched_services, watched_namespaces) = state.registry.view().waited_keys();
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
    let serve = &state.metrics.serve;
    let read = |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
    let connections: [(&str, &str, &str, u64); 4] = [
        ("janus_http_connections", "gauge", "HTTP connections open", read(&serve.open)),
        ("janus_http_connections_accepted", "counter", "HTTP connections accepted", read(&serve.accepted)),
        (
            "janus_http_connections_evicted",
            "counter",
            "idle HTTP connections closed to make room under the connection cap",
            read(&serve.evicted),
        ),
        (
            "janus_http_connections_refused",
            "counter",
            "new HTTP connections closed at once: the cap was reached and every connection was busy",
            read(&serve.refused),
        ),
    ];
    for (name, kind, help, value) in connections {
        let sample = if kind == "counter" { format!("{name}_total") } else { name.to_owned() };
        // Writing to a String cannot fail.
        let _ = write!(text, "# HELP {name} {help}.\n# TYPE {name} {kind}\n{sample} {value}\n");
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
    if let Some(grpc) = &status.grpc {
        let none = String::new();
        let gauges = [
            ("connections", "Nacos gRPC client connections held", grpc.connections),
            ("subscriptions", "Nacos gRPC subscriptions held", grpc.subscriptions),
        ];
        for (name, help, value) in gauges {
            family(&format!("janus_grpc_{name}"), "gauge", help, &[(none.clone(), value)]);
        }
        let counters = [
            ("accepted", "Nacos gRPC connections accepted", grpc.accepted),
            ("refused", "Nacos gRPC connections refused at the cap", grpc.refused),
            ("requests", "Nacos gRPC requests answered", grpc.requests),
            ("pushes_sent", "pushes sent to Nacos gRPC subscribers", grpc.pushes_sent),
            ("pushes_acked", "pushes acknowledged by Nacos gRPC subscribers", grpc.pushes_acked),
            ("push_timeouts", "pushes not acknowledged in time", grpc.push_timeouts),
            ("detections", "client detections sent to silent connections", grpc.detections),
            ("undetected", "connections closed for not answering a detection", grpc.undetected),
            ("slow_resets", "connections reset for not reading or acknowledging", grpc.slow_resets),
            ("released", "instances removed because their connection closed", grpc.released),
        ];
        for (name, help, value) in counters {
            family(&format!("janus_grpc_{name}"), "counter", help, &[(none.clone(), value)]);
        }
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

/// The router's fallback for unknown routes: 404, or 501 under the Nacos
/// config center, in the error shape of the API the path belongs to.
pub(crate) async fn not_found(uri: Uri) -> Response {
    let path = uri.path();
    let error = if is_nacos_config_center(path) {
        ApiError {
            status: StatusCode::NOT_IMPLEMENTED,
            code: "not_implemented",
            message: "not supported: Janus is a naming registry; the Nacos config center is not implemented".to_owned(),
        }
    } else {
        ApiError { status: StatusCode::NOT_FOUND, code: "not_found", message: "no such route".to_owned() }
    };
    error_for_path(path, error)
}

/// The router's fallback for a known route called with another method: 405,
/// in the error shape of the API the path belongs to. The body is not read.
pub(crate) async fn method_not_allowed(uri: Uri) -> Response {
    let error = ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "this route does not take that method".to_owned(),
    };
    error_for_path(uri.path(), error)
}

/// `/nacos/v1/cs/…` and `/nacos/v2/cs/…`: the Nacos configuration center.
fn is_nacos_config_center(path: &str) -> bool {
    ["/nacos/v1/cs", "/nacos/v2/cs"]
        .iter()
        .any(|prefix| path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
}

/// An error as the API under `path` answers errors: the Nacos v2 envelope
/// under `/nacos/v2/`, Nacos v1's text under `/nacos/v1/`, JSON elsewhere.
fn error_for_path(path: &str, error: ApiError) -> Response {
    if path == "/nacos/v2" || path.starts_with("/nacos/v2/") {
        crate::nacos::v2::failure(&NacosError::from(error))
    } else if path == "/nacos/v1" || path.starts_with("/nacos/v1/") {
        NacosHttpError(NacosError::from(error)).into_response()
    } else {
        error.into_response()
    }
}
