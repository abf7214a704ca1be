//! The agent's counters, rendered for Prometheus by `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Counters of the checks, the registration and the proxy.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    checks_passed: AtomicU64,
    checks_failed: AtomicU64,
    registered: AtomicBool,
    /// Per service: answers by status class, retries, upstream failures.
    services: Mutex<BTreeMap<String, ServiceCounters>>,
}

#[derive(Debug, Default, Clone)]
struct ServiceCounters {
    /// Answers to the app, by status class (`2xx` … `5xx`).
    answers: BTreeMap<&'static str, u64>,
    retries: u64,
    /// Failed tries on an instance, by kind (`connect`, `broken`, `timeout`, `status`).
    upstream_failures: BTreeMap<&'static str, u64>,
    ejected: u64,
}

/// `2xx` for 204, …
fn class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl Metrics {
    pub(crate) fn check_ran(&self, passed: bool) {
        let counter = if passed { &self.checks_passed } else { &self.checks_failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_registered(&self, registered: bool) {
        self.registered.store(registered, Ordering::Relaxed);
    }

    fn with(&self, service: &str, change: impl FnOnce(&mut ServiceCounters)) {
        let mut services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(counters) = services.get_mut(service) {
            change(counters);
        } else {
            let mut counters = ServiceCounters::default();
            change(&mut counters);
            services.insert(service.to_owned(), counters);
        }
    }

    /// An answer of the proxy to the app (a service name is counted only
    /// once the proxy watches it, so the map is bounded by `max_services`).
    pub(crate) fn answered(&self, service: &str, status: u16) {
        self.with(service, |c| *c.answers.entry(class(status)).or_default() += 1);
    }

    pub(crate) fn retried(&self, service: &str) {
        self.with(service, |c| c.retries += 1);
    }

    pub(crate) fn upstream_failed(&self, service: &str, kind: &'static str) {
        self.with(service, |c| *c.upstream_failures.entry(kind).or_default() += 1);
    }

    pub(crate) fn set_ejected(&self, service: &str, ejected: usize) {
        self.with(service, |c| c.ejected = ejected as u64);
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let passed = self.checks_passed.load(Ordering::Relaxed);
        let failed = self.checks_failed.load(Ordering::Relaxed);
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP janus_agent_checks_total Health checks of the local app, by result.");
        let _ = writeln!(out, "# TYPE janus_agent_checks_total counter");
        let _ = writeln!(out, "janus_agent_checks_total{{result=\"pass\"}} {passed}");
        let _ = writeln!(out, "janus_agent_checks_total{{result=\"fail\"}} {failed}");
        let _ = writeln!(out, "# HELP janus_agent_app_registered Whether the local app is registered (1) or not (0).");
        let _ = writeln!(out, "# TYPE janus_agent_app_registered gauge");
        let _ = writeln!(out, "janus_agent_app_registered {}", u8::from(self.registered.load(Ordering::Relaxed)));
        let services = self.services.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let _ = writeln!(
            out,
            "# HELP janus_agent_proxy_answers_total Answers of the proxy to the app, by service and status class."
        );
        let _ = writeln!(out, "# TYPE janus_agent_proxy_answers_total counter");
        for (service, counters) in &services {
            for (class, count) in &counters.answers {
                let _ =
                    writeln!(out, "janus_agent_proxy_answers_total{{service=\"{service}\",class=\"{class}\"}} {count}");
            }
        }
        let _ = writeln!(out, "# HELP janus_agent_proxy_retries_total Requests tried again on another instance.");
        let _ = writeln!(out, "# TYPE janus_agent_proxy_retries_total counter");
        for (service, counters) in &services {
            let _ = writeln!(out, "janus_agent_proxy_retries_total{{service=\"{service}\"}} {}", counters.retries);
        }
        let _ = writeln!(out, "# HELP janus_agent_proxy_upstream_failures_total Failed tries on an instance, by kind.");
        let _ = writeln!(out, "# TYPE janus_agent_proxy_upstream_failures_total counter");
        for (service, counters) in &services {
            for (kind, count) in &counters.upstream_failures {
                let _ = writeln!(
                    out,
                    "janus_agent_proxy_upstream_failures_total{{service=\"{service}\",kind=\"{kind}\"}} {count}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP janus_agent_proxy_ejected_instances Instances skipped for failing (outlier ejection)."
        );
        let _ = writeln!(out, "# TYPE janus_agent_proxy_ejected_instances gauge");
        for (service, counters) in &services {
            let _ = writeln!(out, "janus_agent_proxy_ejected_instances{{service=\"{service}\"}} {}", counters.ejected);
        }
        out
    }
}
