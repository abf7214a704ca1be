//! Response rate limiting (RRL) of UDP answers per source prefix, after
//! Knot DNS's and BIND's.
//!
//! A UDP answer can be much larger than its query and the source address of a
//! UDP query can be forged, so a DNS server can be used to flood a victim.
//! With RRL on, sources are grouped by /24 (IPv4) and /56 (IPv6) prefix, and
//! each prefix has a token bucket refilled at `responses_per_second` that holds
//! at most one second's worth. A response without a token is *limited*: every
//! `slip`-th limited response of a prefix is sent as a truncated, empty answer
//! (TC=1), so that a real client behind the prefix asks again over TCP (which
//! is never limited: it cannot be forged), and the others are dropped.
//!
//! The table of prefixes is bounded: when it holds `max_prefixes` prefixes and
//! a new one arrives, the prefix tracked longest is forgotten (its next query
//! starts a full bucket again).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The default bound of the prefix table.
pub const DEFAULT_MAX_PREFIXES: usize = 65_536;

/// Settings of response rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrlConfig {
    /// Answers per second and source prefix; 0 turns rate limiting off.
    pub responses_per_second: u32,
    /// Every `slip`-th limited response is sent truncated and empty (TC=1);
    /// the others are dropped. 0 drops them all, 1 sends them all truncated.
    pub slip: u32,
    /// Most prefixes tracked at once (at least 1).
    pub max_prefixes: usize,
}

impl Default for RrlConfig {
    /// Off, slip 2, at most [`DEFAULT_MAX_PREFIXES`] prefixes.
    fn default() -> Self {
        Self { responses_per_second: 0, slip: 2, max_prefixes: DEFAULT_MAX_PREFIXES }
    }
}

/// Counters of the rate limiter since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RrlStats {
    /// Responses limited (`dropped + slipped`).
    pub limited: u64,
    /// Limited responses not sent at all.
    pub dropped: u64,
    /// Limited responses sent as a truncated, empty answer.
    pub slipped: u64,
    /// Prefixes tracked now.
    pub prefixes: u64,
}

/// The limiter's counters, shared with [`crate::DnsHandle`].
#[derive(Debug, Default)]
pub(crate) struct RrlCounters {
    dropped: AtomicU64,
    slipped: AtomicU64,
    prefixes: AtomicU64,
}

impl RrlCounters {
    pub(crate) fn snapshot(&self) -> RrlStats {
        let dropped = self.dropped.load(Ordering::Relaxed);
        let slipped = self.slipped.load(Ordering::Relaxed);
        RrlStats { limited: dropped + slipped, dropped, slipped, prefixes: self.prefixes.load(Ordering::Relaxed) }
    }
}

/// What to do with one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Answer normally.
    Answer,
    /// Send a truncated, empty answer instead.
    Slip,
    /// Send nothing.
    Drop,
}

/// A source prefix: the top 24 bits of an IPv4 address, the top 56 of an IPv6 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Prefix {
    V4(u32),
    V6(u64),
}

impl Prefix {
    fn of(ip: IpAddr) -> Self {
        // IPv4-mapped IPv6 sources (a dual-stack socket) count as IPv4.
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(u32::from(v4) >> 8),
            // 128 - 72 = 56 bits always fit a u64.
            IpAddr::V6(v6) => Self::V6(u64::try_from(u128::from(v6) >> 72).unwrap_or(u64::MAX)),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// Limited responses of this prefix so far, for the slip.
    limited: u32,
}

/// Token buckets per source prefix in a bounded table. Owned by the UDP loop,
/// so it needs no lock.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    slip: u32,
    max_prefixes: usize,
    buckets: HashMap<Prefix, Bucket>,
    /// The tracked prefixes, oldest first.
    order: VecDeque<Prefix>,
    counters: Arc<RrlCounters>,
}

impl RateLimiter {
    /// A limiter, or `None` when `config` turns rate limiting off.
    pub(crate) fn new(config: &RrlConfig, counters: Arc<RrlCounters>) -> Option<Self> {
        (config.responses_per_second > 0).then(|| Self {
            rate: f64::from(config.responses_per_second),
            slip: config.slip,
            max_prefixes: config.max_prefixes.max(1),
            buckets: HashMap::new(),
            order: VecDeque::new(),
            counters,
        })
    }

    /// Takes a token for one response to `source` at `now`, or says how to limit it.
    pub(crate) fn check(&mut self, source: IpAddr, now: Instant) -> Verdict {
        let prefix = Prefix::of(source);
        if !self.buckets.contains_key(&prefix) {
            while self.buckets.len() >= self.max_prefixes {
                let Some(oldest) = self.order.pop_front() else { break };
                self.buckets.remove(&oldest);
            }
            self.order.push_back(prefix);
            self.buckets.insert(prefix, Bucket { tokens: self.rate, last: now, limited: 0 });
            self.counters.prefixes.store(self.buckets.len() as u64, Ordering::Relaxed);
        }
        let Some(bucket) = self.buckets.get_mut(&prefix) else { return Verdict::Answer };
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = elapsed.mul_add(self.rate, bucket.tokens).min(self.rate);
        bucket.last = bucket.last.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Answer;
        }
        bucket.limited = bucket.limited.wrapping_add(1);
        if self.slip > 0 && bucket.limited % self.slip == 0 {
            self.counters.slipped.fetch_add(1, Ordering::Relaxed);
            Verdict::Slip
        } else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(rate: u32, slip: u32, max_prefixes: usize) -> (RateLimiter, Arc<RrlCounters>) {
        let counters = Arc::new(RrlCounters::default());
        let config = RrlConfig { responses_per_second: rate, slip, max_prefixes };
        (RateLimiter::new(&config, counters.clone()).expect("enabled"), counters)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn off_by_default() {
        let config = RrlConfig::default();
        assert_eq!((config.responses_per_second, config.slip, config.max_prefixes), (0, 2, 65_536));
        assert!(RateLimiter::new(&config, Arc::default()).is_none());
    }

    #[test]
    fn a_bucket_per_prefix_refills_at_the_rate() {
        let (mut rrl, counters) = limiter(10, 0, 100);
        let start = Instant::now();
        // A burst of one second's worth, then nothing.
        for i in 0..10 {
            assert_eq!(rrl.check(ip(&format!("192.0.2.{i}")), start), Verdict::Answer, "response {i}");
        }
        assert_eq!(rrl.check(ip("192.0.2.200"), start), Verdict::Drop, "the same /24");
        // Other prefixes have their own buckets.
        assert_eq!(rrl.check(ip("192.0.3.1"), start), Verdict::Answer, "another /24");
        assert_eq!(rrl.check(ip("2001:db8:0:1::1"), start), Verdict::Answer);
        for _ in 0..9 {
            assert_eq!(rrl.check(ip("2001:db8:0:ff::2"), start), Verdict::Answer, "2001:db8:0:00xx::/56");
        }
        assert_eq!(rrl.check(ip("2001:db8:0:ff::3"), start), Verdict::Drop, "the same /56, empty");
        assert_eq!(rrl.check(ip("2001:db8:0:100::1"), start), Verdict::Answer, "another /56");
        // 100 ms refill one token; the bucket never holds more than one second's worth.
        assert_eq!(rrl.check(ip("192.0.2.1"), start + Duration::from_millis(100)), Verdict::Answer);
        assert_eq!(rrl.check(ip("192.0.2.1"), start + Duration::from_millis(100)), Verdict::Drop);
        let later = start + Duration::from_secs(60);
        let answered = (0..20).filter(|_| rrl.check(ip("192.0.2.1"), later) == Verdict::Answer).count();
        assert_eq!(answered, 10);
        let stats = counters.snapshot();
        assert_eq!((stats.limited, stats.dropped, stats.slipped, stats.prefixes), (13, 13, 0, 4));
    }

    #[test]
    fn every_slip_th_limited_response_is_slipped() {
        let (mut rrl, counters) = limiter(1, 2, 100);
        let now = Instant::now();
        assert_eq!(rrl.check(ip("198.51.100.7"), now), Verdict::Answer);
        let verdicts: Vec<Verdict> = (0..6).map(|_| rrl.check(ip("198.51.100.7"), now)).collect();
        use Verdict::{Drop, Slip};
        assert_eq!(verdicts, [Drop, Slip, Drop, Slip, Drop, Slip]);
        let stats = counters.snapshot();
        assert_eq!((stats.limited, stats.dropped, stats.slipped), (6, 3, 3));

        let (mut all, _) = limiter(1, 1, 100);
        all.check(ip("198.51.100.7"), now);
        assert!((0..4).all(|_| all.check(ip("198.51.100.7"), now) == Slip), "slip 1: every one");
        let (mut none, _) = limiter(1, 0, 100);
        none.check(ip("198.51.100.7"), now);
        assert!((0..4).all(|_| none.check(ip("198.51.100.7"), now) == Drop), "slip 0: none");
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_oldest_prefix() {
        let (mut rrl, counters) = limiter(1, 0, 3);
        let now = Instant::now();
        for source in ["10.0.1.1", "10.0.2.1", "10.0.3.1"] {
            assert_eq!(rrl.check(ip(source), now), Verdict::Answer);
            assert_eq!(rrl.check(ip(source), now), Verdict::Drop);
        }
        // A fourth prefix pushes out the first, whose next query starts afresh.
        assert_eq!(rrl.check(ip("10.0.4.1"), now), Verdict::Answer);
        assert_eq!(rrl.buckets.len(), 3);
        assert_eq!(rrl.check(ip("10.0.2.1"), now), Verdict::Drop, "still tracked");
        assert_eq!(rrl.check(ip("10.0.1.1"), now), Verdict::Answer, "forgotten, so a full bucket");
        assert!(!rrl.buckets.contains_key(&Prefix::of(ip("10.0.2.1"))), "…which pushed out the next oldest");
        // Many sources never grow the table past its bound.
        for i in 0..10_000u32 {
            rrl.check(IpAddr::from((i << 8).to_be_bytes()), now);
            assert!(rrl.buckets.len() <= 3 && rrl.order.len() <= 3);
        }
        assert_eq!(counters.snapshot().prefixes, 3);
    }

    #[test]
    fn mapped_ipv4_sources_share_the_ipv4_prefix() {
        assert_eq!(Prefix::of(ip("::ffff:192.0.2.1")), Prefix::of(ip("192.0.2.99")));
        assert_ne!(Prefix::of(ip("192.0.2.1")), Prefix::of(ip("192.0.3.1")));
        assert_eq!(Prefix::of(ip("2001:db8:0:ab::1")), Prefix::of(ip("2001:db8:0:ff:1::")));
        assert_ne!(Prefix::of(ip("2001:db8:0:ab::1")), Prefix::of(ip("2001:db8:0:1ab::1")));
    }
}
