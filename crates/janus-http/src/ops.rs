//! `/health`, `/ready`, `/metrics` and the JSON 404 for unknown routes.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use janus_api::native::Health;

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
    text.push_str("# EOF\n");
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
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
