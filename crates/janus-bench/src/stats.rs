//! Latency histograms and the result record every run produces.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::{Api, Scenario};

/// Latencies in microseconds, 1 µs to 60 s, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy the constructor's rules.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

pub(crate) fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).clamp(1, 60_000_000);
    // Clamped into the histogram's range, so recording cannot fail.
    let _ = histogram.record(micros);
}

/// One run's outcome, written as JSON and read back by `report`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BenchResult {
    /// The report section (a heading) the run belongs to.
    #[serde(default)]
    pub(crate) section: String,
    pub(crate) label: String,
    pub(crate) api: Api,
    pub(crate) scenario: Scenario,
    pub(crate) target: String,
    pub(crate) connections: usize,
    pub(crate) instances: usize,
    pub(crate) duration_s: f64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) throughput: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) rss_bytes: Option<u64>,
    pub(crate) first_error: Option<String>,
}

impl BenchResult {
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn from_histogram(
        args: &crate::RunArgs,
        histogram: &Histogram<u64>,
        errors: u64,
        elapsed: Duration,
        first_error: Option<String>,
    ) -> Self {
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        let requests = histogram.len();
        let duration_s = elapsed.as_secs_f64();
        Self {
            section: args.section.clone(),
            label: args.label.clone(),
            api: args.api,
            scenario: args.scenario,
            target: args.target.clone(),
            connections: args.connections,
            instances: args.instances,
            duration_s,
            requests,
            errors,
            throughput: if duration_s > 0.0 { requests as f64 / duration_s } else { 0.0 },
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            max_ms: histogram.max() as f64 / 1000.0,
            rss_bytes: None,
            first_error,
        }
    }

    pub(crate) fn summary_line(&self) -> String {
        let mut line = format!(
            "{label} {scenario:?} api={api:?} conns={conns} instances={inst}: {req} ok, {err} errors in {dur:.1}s = {tput:.0} req/s; p50 {p50:.3} ms, p90 {p90:.3} ms, p99 {p99:.3} ms, max {max:.3} ms",
            label = self.label,
            scenario = self.scenario,
            api = self.api,
            conns = self.connections,
            inst = self.instances,
            req = self.requests,
            err = self.errors,
            dur = self.duration_s,
            tput = self.throughput,
            p50 = self.p50_ms,
            p90 = self.p90_ms,
            p99 = self.p99_ms,
            max = self.max_ms,
        );
        if let Some(rss) = self.rss_bytes {
            #[allow(clippy::cast_precision_loss)]
            let mib = rss as f64 / (1024.0 * 1024.0);
            line.push_str(&format!("; server RSS {mib:.0} MiB"));
        }
        if let Some(err) = &self.first_error {
            line.push_str(&format!("; first error: {err}"));
        }
        line
    }
}
