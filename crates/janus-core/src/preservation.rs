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
//!
//! Short of that, deletions are capped (Eureka's eviction limit): within any
//! `eviction_window_ms` (60 s, Eureka's eviction interval), at most
//! `max_evict_fraction` of the leases are deleted, however often the registry
//! sweeps. The window slides: every deletion counts until it is
//! `eviction_window_ms` old. The cap does not depend on `enabled`, but the
//! small-deployment rule applies to it too: while fewer than
//! `min_expected_per_min` renewals are expected, expired leases are all deleted.

use std::cmp::Ordering as CmpOrdering;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::counter::{CELLS, SpreadCounter, cell};
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
    /// Fraction of leases that may be deleted within one eviction window
    /// (Eureka: 0.15). Not applied while fewer than `min_expected_per_min`
    /// renewals are expected, like self-preservation itself.
    pub max_evict_fraction: f64,
    /// Length of the eviction window, in milliseconds (Eureka's eviction
    /// interval: 60 s). Every deletion counts against the cap until it is this
    /// old. Zero turns the cap into a per-sweep one.
    pub eviction_window_ms: u64,
}

impl Default for PreservationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            renewal_threshold: 0.85,
            min_expected_per_min: 240,
            max_evict_fraction: 0.15,
            eviction_window_ms: 60_000,
        }
    }
}

const BUCKETS: usize = 60;
/// The low half of a bucket: its count.
const COUNT_MASK: u64 = 0xFFFF_FFFF;

/// The high half of a bucket: the second it counts, plus one (0: unused),
/// within 32 bits (136 years of a process's clock).
fn bucket_tag(second: u64) -> u64 {
    second.saturating_add(1).min(COUNT_MASK)
}

/// One thread cell's buckets, alone on its cache lines.
#[derive(Debug)]
#[repr(align(128))]
struct BucketRow([AtomicU64; BUCKETS]);

/// Renewal accounting over a sliding minute, and the deletions of the current
/// eviction window.
#[derive(Debug)]
pub struct Preservation {
    config: PreservationConfig,
    /// Renewals expected per hour from the live leases; changed under the
    /// registry's shared lock too (see `Registry`'s docs), hence atomic.
    expected_per_hour: SpreadCounter,
    /// Renewals by second, one bucket per second of the minute: the second
    /// it counts in the high 32 bits ([`bucket_tag`]), the count in the low
    /// ones, so that one compare-and-swap moves a bucket on. One row of
    /// buckets per thread cell (see `crate::counter`), so that threads
    /// counting at once do not share a cache line; a read sums the rows.
    buckets: Box<[BucketRow; CELLS]>,
    /// Deletions younger than the eviction window, oldest first: when, and how many.
    evictions: VecDeque<(Millis, usize)>,
    /// The sum of the counts in `evictions`.
    window_total: usize,
}

impl Preservation {
    /// Empty accounting.
    #[must_use]
    pub fn new(config: PreservationConfig) -> Self {
        Self {
            config,
            expected_per_hour: SpreadCounter::default(),
            buckets: Box::new(std::array::from_fn(|_| BucketRow(std::array::from_fn(|_| AtomicU64::new(0))))),
            evictions: VecDeque::new(),
            window_total: 0,
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &PreservationConfig {
        &self.config
    }

    /// A lease with this rate started.
    pub fn lease_started(&self, renewals_per_hour: u64, now: Millis) {
        self.expected_per_hour.add(renewals_per_hour);
        self.add(now, renewals_per_hour / 60);
    }

    /// A lease with this rate ended.
    pub fn lease_ended(&self, renewals_per_hour: u64) {
        self.expected_per_hour.sub(renewals_per_hour);
    }

    /// A live lease's beat interval changed.
    pub fn rate_changed(&self, old_per_hour: u64, new_per_hour: u64) {
        self.expected_per_hour.sub(old_per_hour);
        self.expected_per_hour.add(new_per_hour);
    }

    /// A heartbeat arrived. Takes `&self`: a heartbeat that changes nothing
    /// else counts under the registry's shared lock.
    pub fn renewed(&self, now: Millis) {
        self.add(now, 1);
    }

    fn add(&self, now: Millis, count: u64) {
        let second = now.0 / 1000;
        let tag = bucket_tag(second);
        // The modulo keeps the index below BUCKETS, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let bucket = &self.buckets[cell()].0[(second % BUCKETS as u64) as usize];
        let mut current = bucket.load(Ordering::Relaxed);
        loop {
            let next = match (current >> 32).cmp(&tag) {
                // Older than the second this bucket now holds: it no longer counts.
                CmpOrdering::Greater => return,
                CmpOrdering::Equal => (tag << 32) | ((current & COUNT_MASK).saturating_add(count).min(COUNT_MASK)),
                CmpOrdering::Less => (tag << 32) | count.min(COUNT_MASK),
            };
            match bucket.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// Renewals counted in the minute up to `now`.
    #[must_use]
    pub fn renewals_last_min(&self, now: Millis) -> u64 {
        let tag = bucket_tag(now.0 / 1000);
        self.buckets
            .iter()
            .flat_map(|row| row.0.iter())
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .filter(|packed| {
                let held = packed >> 32;
                held != 0 && held <= tag && tag - held < BUCKETS as u64
            })
            .map(|packed| packed & COUNT_MASK)
            .sum()
    }

    /// Renewals expected per minute.
    #[must_use]
    pub fn expected_per_min(&self) -> u64 {
        self.expected_per_hour.get() / 60
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

    /// The cap for `leases` leases: `leases - floor(leases × (1 - fraction))`, at least 1.
    #[must_use]
    pub fn eviction_cap(&self, leases: usize) -> usize {
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let kept = (leases as f64 * (1.0 - self.config.max_evict_fraction)).floor() as usize;
        leases.saturating_sub(kept).max(1)
    }

    /// Whether the deletion cap applies: not in a small deployment, where
    /// fewer than `min_expected_per_min` renewals are expected per minute
    /// (the rule that keeps self-preservation off there). With
    /// `min_expected_per_min = 0` it always applies.
    #[must_use]
    pub fn cap_applies(&self) -> bool {
        self.expected_per_min() >= self.config.min_expected_per_min
    }

    /// How many expired leases may be deleted at `now`, with `leases` live
    /// (counting the expired ones): [`Self::eviction_cap`] of the leases at the
    /// start of the window (the live ones plus those the window deleted) less
    /// the deletions the window holds; `usize::MAX` while the cap does not
    /// apply. Self-preservation is the caller's to check first: while it is
    /// engaged, nothing may be deleted.
    pub fn eviction_allowance(&mut self, leases: usize, now: Millis) -> usize {
        self.forget_old_evictions(now);
        if !self.cap_applies() {
            return usize::MAX;
        }
        let at_window_start = leases.saturating_add(self.window_total);
        self.eviction_cap(at_window_start).saturating_sub(self.window_total)
    }

    /// `count` expired leases were deleted at `now`.
    pub fn evicted(&mut self, count: usize, now: Millis) {
        if count == 0 {
            return;
        }
        self.forget_old_evictions(now);
        match self.evictions.back_mut() {
            Some((at, n)) if *at == now => *n += count,
            _ => self.evictions.push_back((now, count)),
        }
        self.window_total += count;
    }

    /// Deletions counted in the eviction window that ends at `now`.
    #[must_use]
    pub fn evicted_in_window(&self, now: Millis) -> usize {
        self.evictions.iter().filter(|(at, _)| self.in_window(*at, now)).map(|(_, n)| n).sum()
    }

    fn in_window(&self, at: Millis, now: Millis) -> bool {
        at.plus(self.config.eviction_window_ms) > now
    }

    fn forget_old_evictions(&mut self, now: Millis) {
        while let Some(&(at, n)) = self.evictions.front() {
            if self.in_window(at, now) {
                break;
            }
            self.evictions.pop_front();
            self.window_total -= n;
        }
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
        let p = Preservation::new(cfg(0));
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
        let p = Preservation::new(cfg(0));
        for _ in 0..20 {
            p.lease_started(720, Millis(0));
        }
        assert!(!p.active(Millis(1_000)), "a fresh registry is not in preservation");
    }

    #[test]
    fn small_deployments_never_engage() {
        let p = Preservation::new(cfg(240));
        p.lease_started(720, Millis(0));
        assert!(!p.active(Millis(300_000)));
    }

    #[test]
    fn a_late_renewal_never_clears_a_newer_bucket() {
        let p = Preservation::new(cfg(0));
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

    #[test]
    fn the_cap_holds_for_a_whole_window_and_frees_as_deletions_age_out() {
        let mut p = Preservation::new(cfg(0));
        assert_eq!(p.eviction_allowance(1_000, Millis(0)), 150);
        p.evicted(100, Millis(0));
        // However often it is asked, the window has 50 left.
        assert_eq!(p.eviction_allowance(900, Millis(250)), 50);
        p.evicted(50, Millis(1_000));
        assert_eq!(p.eviction_allowance(850, Millis(1_250)), 0);
        assert_eq!(p.eviction_allowance(850, Millis(59_999)), 0);
        assert_eq!(p.evicted_in_window(Millis(59_999)), 150);
        // The first 100 leave the window at 60 s; the window started with 900.
        assert_eq!(p.evicted_in_window(Millis(60_000)), 50);
        assert_eq!(p.eviction_allowance(850, Millis(60_000)), 900 - 765 - 50);
        assert_eq!(p.eviction_allowance(850, Millis(61_000)), 850 - 722);
        assert_eq!(p.evicted_in_window(Millis(61_000)), 0);
    }

    #[test]
    fn small_deployments_are_not_capped_unless_the_minimum_is_zero() {
        let mut p = Preservation::new(cfg(240));
        for _ in 0..19 {
            p.lease_started(720, Millis(0));
        }
        assert!(!p.cap_applies());
        assert_eq!(p.eviction_allowance(19, Millis(30_000)), usize::MAX);
        p.lease_started(720, Millis(0));
        assert!(p.cap_applies(), "20 instances beating every 5 s are 240 a minute");
        assert_eq!(p.eviction_allowance(20, Millis(30_000)), 3);

        let mut strict = Preservation::new(cfg(0));
        strict.lease_started(720, Millis(0));
        assert!(strict.cap_applies());
        assert_eq!(strict.eviction_allowance(1, Millis(30_000)), 1, "at least one");
        strict.evicted(1, Millis(30_000));
        assert_eq!(strict.eviction_allowance(4, Millis(89_999)), 0);
    }
}
