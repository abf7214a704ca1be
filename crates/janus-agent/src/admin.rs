//! The agent's own endpoints: `GET /health` (JSON: the agent is up, and how
//! its app and proxy are doing) and `GET /metrics` (Prometheus text).

use std::sync::{Arc, Mutex, PoisonError};

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::app::AppStatus;
use crate::metrics::Metrics;
use crate::serve::{AnswerBody, bytes, error};

/// What the admin endpoints read.
pub(crate) struct Admin {
    pub(crate) app: Option<Arc<Mutex<AppStatus>>>,
    pub(crate) proxy: Option<std::net::SocketAddr>,
    pub(crate) dns: Option<std::net::SocketAddr>,
    pub(crate) registry: Vec<String>,
    pub(crate) metrics: Arc<Metrics>,
}

impl Admin {
    pub(crate) fn handle(&self, request: &Request<Incoming>) -> Response<AnswerBody> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "the agent's endpoints take GET");
        }
        match request.uri().path() {
            "/health" => {
                let app = self.app.as_ref().map(|status| status.lock().unwrap_or_else(PoisonError::into_inner).clone());
                let body = json!({
                    "status": "UP",
                    "app": app,
                    "proxy": self.proxy.map(|addr| addr.to_string()),
                    "dns": self.dns.map(|addr| addr.to_string()),
                    "registry": self.registry,
                });
                bytes(StatusCode::OK, "application/json", (body.to_string() + "\n").into_bytes())
            }
            "/metrics" => bytes(StatusCode::OK, "text/plain; version=0.0.4", self.metrics.render().into_bytes()),
            other => error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no such endpoint `{other}`: the agent serves /health and /metrics"),
            ),
        }
    }
}
