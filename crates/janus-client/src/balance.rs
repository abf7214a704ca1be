//! Client-side load balancing over a service's instances, with outlier
//! ejection ([`crate::outlier`]) and an optional preference for the caller's
//! zone.
//!
//! A [`Balancer`] holds the instances of one service (replaced with
//! [`Balancer::update`] whenever the service changes) and hands out one per
//! call with [`Balancer::pick`]. The caller reports how the call went with
//! [`Pick::finish`]; instances that keep failing are ejected for a while.
//!
//! Which instances a pick may choose: healthy and enabled ones with a weight
//! above 0, not ejected (unless every one of them is: then the ejected ones,
//! as Envoy's panic routing does); of those, the ones whose `zone` metadata
//! matches the caller's zone when there are any (else all of them). The eligible set is
//! computed when the instances change or an ejection starts or ends, not on
//! every pick, so a pick is a binary search (weighted random), a counter
//! (round robin) or two random draws (least outstanding).
//!
//! Ejections survive updates: an instance keeps its call history while its
//! address and cluster stay in the list.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use janus_api::native::Instance;
use rand::Rng as _;
use tokio::time::Instant;

use crate::outlier::{Health, OutlierConfig, Verdict};

/// How a pick chooses among the eligible instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// At random, in proportion to each instance's weight (Nacos's choice).
    #[default]
    WeightedRandom,
    /// Each in turn, ignoring weights.
    RoundRobin,
    /// Of two instances drawn at random (weighted), the one with fewer calls
    /// in flight ("power of two choices").
    LeastOutstanding,
}

/// A balancer's settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BalancerConfig {
    /// How to choose.
    pub strategy: Strategy,
    /// The caller's zone: instances whose `zone` metadata matches it are
    /// preferred while any of them is eligible.
    pub zone: Option<String>,
    /// When instances are ejected.
    pub outlier: OutlierConfig,
}

/// The metadata key naming an instance's zone.
pub const ZONE_KEY: &str = "zone";

/// The call history of one instance, kept across updates.
#[derive(Debug, Default)]
struct Tracked {
    health: Health,
    outstanding: AtomicU32,
}

#[derive(Debug)]
struct Endpoint {
    instance: Instance,
    tracked: Arc<Tracked>,
}

/// The eligible instances as of their last change.
#[derive(Debug)]
struct Eligible {
    /// Indices into the pool's endpoints.
    members: Vec<usize>,
    /// Running sums of their weights, for weighted draws.
    cumulative: Vec<f64>,
    /// The earliest end of an ejection: the set must be computed again then.
    next_return: Option<Instant>,
    /// The balancer's count of ejections when the set was computed: an
    /// ejection since (through a pick of an earlier pool) computes it again.
    ejections: u64,
}

#[derive(Debug)]
struct Pool {
    endpoints: Vec<Endpoint>,
    eligible: RwLock<Arc<Eligible>>,
}

/// Load balancing over one service's instances (see the module docs).
#[derive(Debug)]
pub struct Balancer {
    config: BalancerConfig,
    pool: RwLock<Arc<Pool>>,
    turn: AtomicUsize,
    /// Ejections so far (see [`Eligible::ejections`]).
    ejections: AtomicU64,
}

/// One instance chosen for one call; report the outcome with [`Pick::finish`].
/// Dropping it unfinished counts the call as neither a success nor a failure.
#[derive(Debug)]
pub struct Pick<'a> {
    balancer: &'a Balancer,
    pool: Arc<Pool>,
    index: usize,
    finished: bool,
}

impl Balancer {
    /// A balancer with no instances yet.
    #[must_use]
    pub fn new(config: BalancerConfig) -> Self {
        let pool = Pool::build(Vec::new(), &config, Instant::now(), 0);
        Self { config, pool: RwLock::new(Arc::new(pool)), turn: AtomicUsize::new(0), ejections: AtomicU64::new(0) }
    }

    /// Replaces the instances (a new list of the service), keeping the call
    /// history of those still in it.
    pub fn update(&self, instances: &[Instance]) {
        let previous = self.current();
        let mut history: HashMap<(&str, u16, &str), &Arc<Tracked>> = previous
            .endpoints
            .iter()
            .map(|e| ((e.instance.ip.as_str(), e.instance.port, e.instance.cluster.as_str()), &e.tracked))
            .collect();
        let endpoints = instances
            .iter()
            .map(|instance| {
                let key = (instance.ip.as_str(), instance.port, instance.cluster.as_str());
                let tracked = history.remove(&key).cloned().unwrap_or_default();
                Endpoint { instance: instance.clone(), tracked }
            })
            .collect();
        // Read before the instances' health: an ejection after it computes the set again.
        let ejections = self.ejections.load(Ordering::Acquire);
        let pool = Pool::build(endpoints, &self.config, Instant::now(), ejections);
        *self.pool.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(pool);
    }

    /// Chooses an instance for one call; `None` when no instance is eligible.
    #[must_use]
    pub fn pick(&self) -> Option<Pick<'_>> {
        let pool = self.current();
        let eligible = self.eligible(&pool);
        let index = match self.config.strategy {
            Strategy::WeightedRandom => eligible.draw()?,
            Strategy::RoundRobin => {
                let turn = self.turn.fetch_add(1, Ordering::Relaxed);
                *eligible.members.get(turn % eligible.members.len().max(1))?
            }
            Strategy::LeastOutstanding => {
                let (a, b) = (eligible.draw()?, eligible.draw()?);
                let load = |i: usize| pool.endpoints[i].tracked.outstanding.load(Ordering::Relaxed);
                if load(b) < load(a) { b } else { a }
            }
        };
        pool.endpoints[index].tracked.outstanding.fetch_add(1, Ordering::Relaxed);
        Some(Pick { balancer: self, pool, index, finished: false })
    }

    /// Chooses an instance for a retry: one that is not in `tried` (as
    /// `(ip, port)`), drawn in proportion to weight among the eligible rest;
    /// `None` when every eligible instance was tried. The strategy is not
    /// followed here: a retry is rare, and any other instance will do.
    #[must_use]
    pub fn pick_avoiding(&self, tried: &[(String, u16)]) -> Option<Pick<'_>> {
        let pool = self.current();
        let eligible = self.eligible(&pool);
        let untried = |index: &&usize| {
            let instance = &pool.endpoints[**index].instance;
            !tried.iter().any(|(ip, port)| *ip == instance.ip && *port == instance.port)
        };
        let total: f64 = eligible.members.iter().filter(untried).map(|i| pool.endpoints[*i].instance.weight).sum();
        let mut point = rand::rng().random::<f64>() * total;
        let mut chosen = None;
        for index in eligible.members.iter().filter(untried) {
            chosen = Some(*index);
            point -= pool.endpoints[*index].instance.weight;
            if point < 0.0 {
                break;
            }
        }
        let index = chosen?;
        pool.endpoints[index].tracked.outstanding.fetch_add(1, Ordering::Relaxed);
        Some(Pick { balancer: self, pool, index, finished: false })
    }

    /// The instances a pick may choose now (the eligible set: healthy,
    /// enabled, weighted, not ejected, in the caller's zone when it has
    /// any), in list order. For answers that name instances instead of
    /// choosing one, such as the agent's local DNS.
    #[must_use]
    pub fn eligible_instances(&self) -> Vec<Instance> {
        let pool = self.current();
        let eligible = self.eligible(&pool);
        eligible.members.iter().map(|index| pool.endpoints[*index].instance.clone()).collect()
    }

    /// The instances currently ejected.
    #[must_use]
    pub fn ejected(&self) -> Vec<Instance> {
        let now = Instant::now();
        let pool = self.current();
        pool.endpoints
            .iter()
            .filter(|e| e.tracked.health.ejected_until(now).is_some())
            .map(|e| e.instance.clone())
            .collect()
    }

    fn eligible(&self, pool: &Pool) -> Arc<Eligible> {
        pool.eligible(&self.config, Instant::now(), self.ejections.load(Ordering::Acquire))
    }

    fn current(&self) -> Arc<Pool> {
        self.pool.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl Pick<'_> {
    /// The chosen instance.
    #[must_use]
    pub fn instance(&self) -> &Instance {
        &self.pool.endpoints[self.index].instance
    }

    /// Reports how the call went (`ok`: the instance answered as it should).
    /// A failure may eject the instance (never more than the configured share
    /// of the service).
    pub fn finish(mut self, ok: bool) {
        self.finished = true;
        let now = Instant::now();
        let config = &self.balancer.config.outlier;
        let tracked = &self.pool.endpoints[self.index].tracked;
        tracked.outstanding.fetch_sub(1, Ordering::Relaxed);
        if tracked.health.record(ok, now, config) == Verdict::Eject {
            self.pool.try_eject(self.index, self.balancer, now);
        }
    }
}

impl Drop for Pick<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.pool.endpoints[self.index].tracked.outstanding.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Pool {
    fn build(endpoints: Vec<Endpoint>, config: &BalancerConfig, now: Instant, ejections: u64) -> Self {
        let eligible = Eligible::compute(&endpoints, config, now, ejections);
        Self { endpoints, eligible: RwLock::new(Arc::new(eligible)) }
    }

    /// The eligible set, computed again first if an ejection has ended or
    /// one has started since (`ejections`: the balancer's count).
    fn eligible(&self, config: &BalancerConfig, now: Instant, ejections: u64) -> Arc<Eligible> {
        let current = self.eligible.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if current.ejections == ejections && current.next_return.is_none_or(|at| at > now) {
            return current;
        }
        let fresh = Arc::new(Eligible::compute(&self.endpoints, config, now, ejections));
        *self.eligible.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh.clone();
        fresh
    }

    /// Ejects an instance unless that would take out more than the allowed
    /// share of the service. The balancer's count of ejections goes up, so
    /// that whichever pool is current computes its set again.
    fn try_eject(&self, index: usize, balancer: &Balancer, now: Instant) {
        let config = &balancer.config;
        let ejected = self.endpoints.iter().filter(|e| e.tracked.health.ejected_until(now).is_some()).count();
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let allowed = (config.outlier.max_ejected_share.clamp(0.0, 1.0) * self.endpoints.len() as f64).floor() as usize;
        if ejected < allowed {
            self.endpoints[index].tracked.health.eject(now, &config.outlier);
            balancer.ejections.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Eligible {
    fn compute(endpoints: &[Endpoint], config: &BalancerConfig, now: Instant, ejections: u64) -> Self {
        let mut next_return: Option<Instant> = None;
        let mut members: Vec<usize> = Vec::with_capacity(endpoints.len());
        let mut ejected: Vec<usize> = Vec::new();
        for (index, endpoint) in endpoints.iter().enumerate() {
            let i = &endpoint.instance;
            if !(i.healthy && i.enabled && i.weight > 0.0) {
                continue;
            }
            if let Some(until) = endpoint.tracked.health.ejected_until(now) {
                next_return = Some(next_return.map_or(until, |at| at.min(until)));
                ejected.push(index);
                continue;
            }
            members.push(index);
        }
        // Every usable instance ejected (the service shrank after the
        // ejections): a call to one that failed beats no call (Envoy's
        // panic routing).
        if members.is_empty() {
            members = ejected;
        }
        if let Some(zone) = &config.zone {
            let in_zone = |index: &usize| endpoints[*index].instance.metadata.get(ZONE_KEY) == Some(zone);
            if members.iter().any(in_zone) {
                members.retain(in_zone);
            }
        }
        let mut total = 0.0;
        let cumulative = members
            .iter()
            .map(|index| {
                total += endpoints[*index].instance.weight;
                total
            })
            .collect();
        Self { members, cumulative, next_return, ejections }
    }

    /// A member drawn at random in proportion to its weight.
    fn draw(&self) -> Option<usize> {
        let total = *self.cumulative.last()?;
        let point = rand::rng().random::<f64>() * total;
        let at = self.cumulative.partition_point(|sum| *sum <= point).min(self.members.len() - 1);
        Some(self.members[at])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;

    fn instance(port: u16, weight: f64) -> Instance {
        Instance {
            instance_id: format!("10.0.0.1#{port}"),
            ip: "10.0.0.1".to_owned(),
            port,
            cluster: "DEFAULT".to_owned(),
            weight,
            healthy: true,
            enabled: true,
            ephemeral: true,
            metadata: BTreeMap::new(),
            last_renew_ms: None,
            owner: None,
            connected_to: None,
        }
    }

    fn counts(balancer: &Balancer, picks: usize) -> BTreeMap<u16, usize> {
        let mut seen = BTreeMap::new();
        for _ in 0..picks {
            let pick = balancer.pick().expect("an eligible instance");
            *seen.entry(pick.instance().port).or_default() += 1;
            pick.finish(true);
        }
        seen
    }

    #[test]
    fn weighted_random_follows_the_weights_within_statistical_bounds() {
        let balancer = Balancer::new(BalancerConfig::default());
        balancer.update(&[instance(1, 1.0), instance(2, 2.0), instance(3, 7.0), instance(4, 0.0)]);
        let picks = 100_000;
        let seen = counts(&balancer, picks);
        assert_eq!(seen.get(&4), None, "weight 0 takes no traffic");
        for (port, share) in [(1, 0.1), (2, 0.2), (3, 0.7)] {
            // Five standard deviations of a binomial count: fails by chance about once in 3.5 million runs.
            let expected = share * picks as f64;
            let bound = 5.0 * (picks as f64 * share * (1.0 - share)).sqrt();
            let got = seen[&port] as f64;
            assert!((got - expected).abs() < bound, "port {port}: {got} picks, expected {expected} ± {bound}");
        }
    }

    #[test]
    fn a_retry_goes_to_an_instance_not_tried_yet() {
        let balancer = Balancer::new(BalancerConfig::default());
        balancer.update(&[instance(1, 1.0), instance(2, 5.0), instance(3, 1.0)]);
        let tried = vec![("10.0.0.1".to_owned(), 2)];
        let mut seen = BTreeMap::new();
        for _ in 0..2_000 {
            let pick = balancer.pick_avoiding(&tried).expect("two untried instances");
            *seen.entry(pick.instance().port).or_insert(0) += 1;
        }
        assert_eq!(seen.keys().copied().collect::<Vec<u16>>(), [1, 3], "{seen:?}");
        let everything: Vec<(String, u16)> = (1..=3).map(|port| ("10.0.0.1".to_owned(), port)).collect();
        assert!(balancer.pick_avoiding(&everything).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_eligible_instances_leave_out_the_unhealthy_and_the_ejected() {
        let balancer = Balancer::new(BalancerConfig::default());
        let mut sick = instance(3, 1.0);
        sick.healthy = false;
        balancer.update(&[instance(1, 1.0), instance(2, 1.0), sick]);
        let ports = |b: &Balancer| b.eligible_instances().iter().map(|i| i.port).collect::<Vec<u16>>();
        assert_eq!(ports(&balancer), [1, 2]);
        for _ in 0..20 {
            let pick = balancer.pick().unwrap();
            let ok = pick.instance().port != 2;
            pick.finish(ok);
        }
        assert_eq!(ports(&balancer), [1]);
    }

    #[test]
    fn round_robin_takes_each_in_turn_and_skips_the_unhealthy_and_offline() {
        let balancer = Balancer::new(BalancerConfig { strategy: Strategy::RoundRobin, ..BalancerConfig::default() });
        let mut sick = instance(3, 1.0);
        sick.healthy = false;
        let mut offline = instance(4, 1.0);
        offline.enabled = false;
        balancer.update(&[instance(1, 1.0), instance(2, 5.0), sick, offline]);
        let order: Vec<u16> = (0..6).map(|_| balancer.pick().unwrap().instance().port).collect();
        assert_eq!(order, [1, 2, 1, 2, 1, 2]);
    }

    #[test]
    fn least_outstanding_avoids_the_instance_with_calls_in_flight() {
        let balancer =
            Balancer::new(BalancerConfig { strategy: Strategy::LeastOutstanding, ..BalancerConfig::default() });
        balancer.update(&[instance(1, 1.0), instance(2, 1.0)]);
        // Hold 10 calls on whichever comes first; the other must then win every draw that sees both.
        let first = balancer.pick().unwrap();
        let busy = first.instance().port;
        let held: Vec<_> = (0..9).filter_map(|_| balancer.pick()).filter(|p| p.instance().port == busy).collect();
        let seen = counts(&balancer, 1000);
        let idle = if busy == 1 { 2 } else { 1 };
        // A draw picks the busy one only when both draws land on it (1 in 4).
        assert!(seen[&idle] > 650, "{seen:?} with {} calls held on {busy}", held.len() + 1);
        drop(first);
    }

    #[test]
    fn the_callers_zone_is_preferred_while_it_has_an_eligible_instance() {
        let config = BalancerConfig { zone: Some("b".to_owned()), ..BalancerConfig::default() };
        let balancer = Balancer::new(config);
        let mut near = instance(2, 1.0);
        near.metadata.insert(ZONE_KEY.to_owned(), "b".to_owned());
        let mut far = instance(1, 1.0);
        far.metadata.insert(ZONE_KEY.to_owned(), "a".to_owned());
        balancer.update(&[far.clone(), near.clone()]);
        assert_eq!(counts(&balancer, 200).keys().copied().collect::<Vec<_>>(), [2]);
        near.healthy = false;
        balancer.update(&[far, near]);
        assert_eq!(counts(&balancer, 200).keys().copied().collect::<Vec<_>>(), [1], "no eligible instance in b");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_instance_is_ejected_then_comes_back() {
        let config = BalancerConfig {
            strategy: Strategy::RoundRobin,
            outlier: OutlierConfig { error_rate: None, ..OutlierConfig::default() },
            ..BalancerConfig::default()
        };
        let balancer = Balancer::new(config);
        balancer.update(&[instance(1, 1.0), instance(2, 1.0), instance(3, 1.0), instance(4, 1.0)]);
        // Port 3 fails every call: after 5 in a row it is out.
        let mut failed = 0;
        while failed < 5 {
            let pick = balancer.pick().unwrap();
            let ok = pick.instance().port != 3;
            failed += usize::from(!ok);
            pick.finish(ok);
        }
        assert_eq!(balancer.ejected().iter().map(|i| i.port).collect::<Vec<_>>(), [3]);
        assert!(!counts(&balancer, 100).contains_key(&3), "an ejected instance gets no calls");
        // Still out just before 30 s, back after; the list may be refreshed meanwhile.
        tokio::time::advance(Duration::from_secs(29)).await;
        balancer.update(&[instance(1, 1.0), instance(2, 1.0), instance(3, 1.0), instance(4, 1.0)]);
        assert!(!counts(&balancer, 100).contains_key(&3), "the ejection survives an update");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(counts(&balancer, 100).contains_key(&3), "back after the ejection");
        assert!(balancer.ejected().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_allowed_share_is_ejected() {
        let config = BalancerConfig {
            strategy: Strategy::RoundRobin,
            outlier: OutlierConfig { error_rate: None, max_ejected_share: 0.5, ..OutlierConfig::default() },
            ..BalancerConfig::default()
        };
        let balancer = Balancer::new(config);
        balancer.update(&[instance(1, 1.0), instance(2, 1.0), instance(3, 1.0)]);
        // Everything fails: with 3 instances and a share of 0.5, one at most is ejected.
        for _ in 0..60 {
            balancer.pick().unwrap().finish(false);
        }
        assert_eq!(balancer.ejected().len(), 1);
        assert_eq!(counts(&balancer, 100).len(), 2, "the other two keep serving");
        // A lone instance is never ejected.
        let alone = Balancer::new(BalancerConfig::default());
        alone.update(&[instance(9, 1.0)]);
        for _ in 0..60 {
            alone.pick().unwrap().finish(false);
        }
        assert!(alone.ejected().is_empty());
        assert!(alone.pick().is_some());
        // The service shrinks to its ejected instances: they are chosen
        // (a call to them beats none), and an unhealthy one still is not.
        let ejected = balancer.ejected()[0].clone();
        let mut sick = instance(4, 1.0);
        sick.healthy = false;
        balancer.update(&[ejected.clone(), sick]);
        assert_eq!(balancer.ejected().len(), 1);
        assert_eq!(counts(&balancer, 20).keys().copied().collect::<Vec<u16>>(), [ejected.port]);
    }

    #[test]
    fn no_eligible_instance_is_no_pick() {
        let balancer = Balancer::new(BalancerConfig::default());
        assert!(balancer.pick().is_none());
        let mut sick = instance(1, 1.0);
        sick.healthy = false;
        balancer.update(&[sick]);
        assert!(balancer.pick().is_none());
    }
}
