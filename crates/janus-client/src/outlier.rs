//! Outlier ejection: an instance that keeps failing calls is skipped for a
//! while, as Envoy's outlier detection and Hystrix-style circuit breakers do.
//!
//! Each instance has a [`Health`] fed with the outcome of every call made to
//! it. It is ejected when either
//! - `consecutive_failures` calls in a row failed, or
//! - over a window of `error_window`, at least `error_min_calls` calls were
//!   made and the share that failed reached `error_rate`.
//!
//! An ejection lasts `base_ejection` × the number of times the instance was
//! ejected before in a row (so an instance that fails again right after it
//! comes back stays out longer), capped at `max_ejection`; an instance that
//! serves well for a whole `max_ejection` after coming back starts over from
//! `base_ejection`. The share cap ([`OutlierConfig::max_ejected_share`]) is
//! checked by the balancer, which knows the service's size: an ejection that
//! would take more than that share of the instances out does not happen (a
//! lone instance is never ejected).
//!
//! Time is `tokio::time::Instant`, so tests run on paused time.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// When an instance is ejected and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierConfig {
    /// Failed calls in a row that eject an instance (0: never on this rule).
    pub consecutive_failures: u32,
    /// Share of failed calls in a window that ejects (`None`: never on this rule).
    pub error_rate: Option<f64>,
    /// The window the error rate is computed over.
    pub error_window: Duration,
    /// Calls a window needs before its error rate counts.
    pub error_min_calls: u32,
    /// The first ejection's length; each further one in a row adds as much.
    pub base_ejection: Duration,
    /// The longest ejection.
    pub max_ejection: Duration,
    /// The largest share of a service's instances ejected at once, in `[0, 1]`.
    pub max_ejected_share: f64,
}

impl Default for OutlierConfig {
    /// Envoy's defaults: 5 failures in a row, 30 s growing to 300 s, at most
    /// half of a service out; an error rate of 50 % over 10 s with at least 20
    /// calls.
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            error_rate: Some(0.5),
            error_window: Duration::from_secs(10),
            error_min_calls: 20,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejected_share: 0.5,
        }
    }
}

/// What the outcomes of an instance's calls have made of it.
#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    window_start: Option<Instant>,
    window_calls: u32,
    window_failures: u32,
    /// Ejections in a row (reset after a long enough good spell).
    ejections: u32,
    ejected_until: Option<Instant>,
}

/// What [`Health::record`] concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do.
    Keep,
    /// The instance should be ejected (if the share cap allows).
    Eject,
}

impl Health {
    /// Records the outcome of one call at `now`.
    pub fn record(&self, ok: bool, now: Instant, config: &OutlierConfig) -> Verdict {
        let mut state = self.lock();
        if state.ejected_until.is_some_and(|until| until <= now) {
            // Back after an ejection: a long good spell forgives the past ones.
            let until = state.ejected_until.take();
            if until.is_some_and(|until| now.saturating_duration_since(until) >= config.max_ejection) {
                state.ejections = 0;
            }
        }
        let window_over =
            state.window_start.is_none_or(|start| now.saturating_duration_since(start) >= config.error_window);
        if window_over {
            state.window_start = Some(now);
            state.window_calls = 0;
            state.window_failures = 0;
        }
        state.window_calls += 1;
        if ok {
            state.consecutive_failures = 0;
            return Verdict::Keep;
        }
        state.consecutive_failures += 1;
        state.window_failures += 1;
        if state.ejected_until.is_some() {
            return Verdict::Keep;
        }
        let in_a_row = config.consecutive_failures > 0 && state.consecutive_failures >= config.consecutive_failures;
        let by_rate = config.error_rate.is_some_and(|rate| {
            state.window_calls >= config.error_min_calls.max(1)
                && f64::from(state.window_failures) >= rate * f64::from(state.window_calls)
        });
        if in_a_row || by_rate { Verdict::Eject } else { Verdict::Keep }
    }

    /// Ejects the instance from `now`; returns until when.
    pub fn eject(&self, now: Instant, config: &OutlierConfig) -> Instant {
        let mut state = self.lock();
        state.ejections = state.ejections.saturating_add(1);
        let length = config.base_ejection.saturating_mul(state.ejections).min(config.max_ejection);
        let until = now + length;
        state.ejected_until = Some(until);
        state.consecutive_failures = 0;
        state.window_start = None;
        until
    }

    /// Until when the instance is ejected, if it is at `now`.
    #[must_use]
    pub fn ejected_until(&self, now: Instant) -> Option<Instant> {
        self.lock().ejected_until.filter(|until| *until > now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves only counters behind: go on.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OutlierConfig {
        OutlierConfig { error_rate: None, ..OutlierConfig::default() }
    }

    #[test]
    fn five_failures_in_a_row_eject_and_a_success_resets_the_count() {
        let (health, config, now) = (Health::default(), config(), Instant::now());
        for _ in 0..4 {
            assert_eq!(health.record(false, now, &config), Verdict::Keep);
        }
        assert_eq!(health.record(true, now, &config), Verdict::Keep);
        for _ in 0..4 {
            assert_eq!(health.record(false, now, &config), Verdict::Keep);
        }
        assert_eq!(health.record(false, now, &config), Verdict::Eject);
    }

    #[test]
    fn ejections_grow_while_it_keeps_failing_and_are_capped() {
        let (health, config, start) = (Health::default(), config(), Instant::now());
        let mut now = start;
        let mut lengths = Vec::new();
        for _ in 0..12 {
            let until = health.eject(now, &config);
            lengths.push(until - now);
            assert!(health.ejected_until(now).is_some());
            now = until;
            assert!(health.ejected_until(now).is_none(), "back when the ejection ends");
        }
        let secs: Vec<u64> = lengths.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300]);
    }

    #[test]
    fn a_long_good_spell_after_an_ejection_starts_over() {
        let (health, config, start) = (Health::default(), config(), Instant::now());
        let back = health.eject(start, &config);
        let later = health.eject(back, &config);
        assert_eq!(later - back, Duration::from_secs(60));
        // Good for max_ejection after coming back: the next ejection is short again.
        let quiet = later + config.max_ejection;
        assert_eq!(health.record(true, quiet, &config), Verdict::Keep);
        assert_eq!(health.eject(quiet, &config) - quiet, Duration::from_secs(30));
    }

    #[test]
    fn an_error_rate_over_the_window_ejects_once_enough_calls_were_made() {
        let config = OutlierConfig { consecutive_failures: 0, ..OutlierConfig::default() };
        let (health, now) = (Health::default(), Instant::now());
        // Alternating outcomes: 50 % failures, but only from the 20th call on.
        let mut verdicts = Vec::new();
        for call in 0..20 {
            verdicts.push(health.record(call % 2 == 1, now, &config));
        }
        assert!(verdicts[..19].iter().all(|v| *v == Verdict::Keep), "{verdicts:?}");
        assert_eq!(verdicts[19], Verdict::Keep, "the 20th call succeeded");
        assert_eq!(health.record(false, now, &config), Verdict::Eject);
        // A new window starts from nothing.
        let next = now + config.error_window;
        assert_eq!(health.record(false, next, &config), Verdict::Keep);
    }
}
