//! Eureka-style self-preservation: stop deleting expired instances when too few
//! renewals arrive, because then the network, not the instances, is the likely fault.
//!
//! Expected renewals per minute are the sum of each lease's rate (60 s / its beat
//! interval). Renewals are counted over a sliding minute in one-second buckets.
//! A registration counts as one minute's worth of renewals, so a freshly
//! (re)started registry does not mistake its warm-up for a mass failure.
//! Preservation engages when `renewals < threshold × expected` and `expected` is
//! at least `min_expected_per_min` (so that one dead instance in a tiny
//! deployment is still removed, as Nacos users expect).

use crate::time::Millis;

/// Self-preservation settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreservationConfig {
    /// Whether self-preservation may engage at all.
    pub enabled: bool,
    /// Fraction of expected renewals below which it engages (Eureka: 0.85).
    pub renewal_threshold: f64,
    /// Expected renewals per minute below which it never engages.
    pub min_expected_per_min: u64,
    /// Fraction of leases that one sweep may delete (Eureka: 0.15).
    pub max_evict_fraction: f64,
}

impl Default for PreservationConfig {
    fn default() -> Self {
        Self { enabled: true, renewal_threshold: 0.85, min_expected_per_min: 240, max_evict_fraction: 0.15 }
    }
}

const BUCKETS: usize = 60;

/// Renewal accounting over a sliding minute.
#[derive(Debug, Clone)]
pub struct Preservation {
    config: PreservationConfig,
    expected_per_hour: u64,
    counts: [u64; BUCKETS],
    seconds: [u64; BUCKETS],
}

impl Preservation {
    /// Empty accounting.
    #[must_use]
    pub fn new(config: PreservationConfig) -> Self {
        Self { config, expected_per_hour: 0, counts: [0; BUCKETS], seconds: [u64::MAX; BUCKETS] }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &PreservationConfig {
        &self.config
    }

    /// A lease with this rate started.
    pub fn lease_started(&mut self, renewals_per_hour: u64, now: Millis) {
        self.expected_per_hour += renewals_per_hour;
        self.add(now, renewals_per_hour / 60);
    }

    /// A lease with this rate ended.
    pub fn lease_ended(&mut self, renewals_per_hour: u64) {
        self.expected_per_hour = self.expected_per_hour.saturating_sub(renewals_per_hour);
    }

    /// A live lease's beat interval changed.
    pub fn rate_changed(&mut self, old_per_hour: u64, new_per_hour: u64) {
        self.expected_per_hour = self.expected_per_hour.saturating_sub(old_per_hour) + new_per_hour;
    }

    /// A heartbeat arrived.
    pub fn renewed(&mut self, now: Millis) {
        self.add(now, 1);
    }

    fn add(&mut self, now: Millis, count: u64) {
        let second = now.0 / 1000;
        // The modulo keeps the index below BUCKETS, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let slot = (second % BUCKETS as u64) as usize;
        if self.seconds[slot] != u64::MAX && self.seconds[slot] > second {
            // Older than the window this bucket now holds: it no longer counts.
            return;
        }
        if self.seconds[slot] != second {
            self.seconds[slot] = second;
            self.counts[slot] = 0;
        }
        self.counts[slot] += count;
    }

    /// Renewals counted in the minute up to `now`.
    #[must_use]
    pub fn renewals_last_min(&self, now: Millis) -> u64 {
        let second = now.0 / 1000;
        self.seconds
            .iter()
            .zip(self.counts.iter())
            .filter(|(s, _)| **s != u64::MAX && **s <= second && second - **s < BUCKETS as u64)
            .map(|(_, c)| *c)
            .sum()
    }

    /// Renewals expected per minute.
    #[must_use]
    pub fn expected_per_min(&self) -> u64 {
        self.expected_per_hour / 60
    }

    /// Whether deletions are suspended now.
    #[must_use]
    pub fn active(&self, now: Millis) -> bool {
        if !self.config.enabled {
            return false;
        }
        let expected = self.expected_per_min();
        if expected == 0 || expected < self.config.min_expected_per_min {
            return false;
        }
        // Counts are far below 2^52, so the float conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        let below = (self.renewals_last_min(now) as f64) < self.config.renewal_threshold * expected as f64;
        below
    }

    /// How many of `leases` one sweep may delete: `leases - floor(leases × (1 - fraction))`, at least 1.
    #[must_use]
    pub fn eviction_cap(&self, leases: usize) -> usize {
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let kept = (leases as f64 * (1.0 - self.config.max_evict_fraction)).floor() as usize;
        leases.saturating_sub(kept).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(min: u64) -> PreservationConfig {
        PreservationConfig { min_expected_per_min: min, ..PreservationConfig::default() }
    }

    #[test]
    fn steady_beats_keep_it_off_and_silence_turns_it_on() {
        let mut p = Preservation::new(cfg(0));
        // 20 leases beating every 5 s.
        for _ in 0..20 {
            p.lease_started(720, Millis(0));
        }
        for t in (5_000..=120_000).step_by(5_000) {
            for _ in 0..20 {
                p.renewed(Millis(t));
            }
        }
        assert_eq!(p.expected_per_min(), 240);
        assert!(!p.active(Millis(120_000)));
        // Everyone goes silent: after 20 s the last minute holds only 40 s of beats.
        assert!(p.active(Millis(140_000)));
    }

    #[test]
    fn registration_credit_covers_warm_up() {
        let mut p = Preservation::new(cfg(0));
        for _ in 0..20 {
            p.lease_started(720, Millis(0));
        }
        assert!(!p.active(Millis(1_000)), "a fresh registry is not in preservation");
    }

    #[test]
    fn small_deployments_never_engage() {
        let mut p = Preservation::new(cfg(240));
        p.lease_started(720, Millis(0));
        assert!(!p.active(Millis(300_000)));
    }

    #[test]
    fn a_late_renewal_never_clears_a_newer_bucket() {
        let mut p = Preservation::new(cfg(0));
        p.renewed(Millis(125_000));
        p.renewed(Millis(65_000)); // same bucket index, a minute older
        assert_eq!(p.renewals_last_min(Millis(125_000)), 1);
    }

    #[test]
    fn eviction_cap_is_fifteen_percent() {
        let p = Preservation::new(cfg(0));
        assert_eq!(p.eviction_cap(1), 1);
        assert_eq!(p.eviction_cap(20), 3);
        assert_eq!(p.eviction_cap(100), 15);
    }
}
