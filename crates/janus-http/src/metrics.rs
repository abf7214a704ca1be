//! Prometheus metrics of the HTTP front end, in an explicit (non-global)
//! registry so that several nodes can live in one test process.

use axum::http::StatusCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Label set of the request counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    class: &'static str,
}

/// Counters the front end keeps; gauges are read from the registry at scrape time.
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Family<StatusLabel, Counter>,
    pub(crate) shed: Counter,
    registry: Registry,
    /// The listener's connection counters (handed to [`crate::serve_with`]).
    pub serve: std::sync::Arc<crate::ServeStats>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        let requests = Family::<StatusLabel, Counter>::default();
        let shed = Counter::default();
        let mut registry = Registry::default();
        registry.register("janus_http_requests", "HTTP requests answered, by status class", requests.clone());
        registry.register(
            "janus_http_shed",
            "HTTP requests refused with 503 because of the concurrency limit",
            shed.clone(),
        );
        Self { requests, shed, registry, serve: std::sync::Arc::default() }
    }
}

impl HttpMetrics {
    pub(crate) fn record(&self, status: StatusCode) {
        let class = match status.as_u16() {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests.get_or_create(&StatusLabel { class }).inc();
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }
}
