//! [`HealthChecker`]: one task per node that keeps the list of persistent
//! instances this node checks, probes each when it is due (at most
//! `max_in_flight` at once), applies the consecutive-results rule, and sends
//! the flips it found in batches. An instance whose address the
//! [`ProbePolicy`](crate::ProbePolicy) refuses is never probed: it is
//! reported unhealthy at once and listed in [`HealthStats`].

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use janus_core::registry::{CheckTarget, HealthReport};
use janus_core::status::RefusedProbe;
use janus_core::{InstanceKey, RegistryStore, ServiceKey};
use rand::Rng as _;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::policy::ProbeRule;
use crate::streak::Streak;
use crate::{HealthConfig, HealthSink, NetProber, Prober, Responsibility};

type Key = (Arc<ServiceKey>, InstanceKey);

/// Refused instances listed in [`HealthStats::refused_targets`], at most.
pub const MAX_REFUSED_LISTED: usize = 100;

struct Checked {
    target: CheckTarget,
    streak: Streak,
    /// Its entry in the due queue, while it waits for its next probe.
    scheduled: Option<(Instant, u64)>,
    /// Why the probe policy refuses its address; it is then never probed.
    refused: Option<ProbeRule>,
}

/// Instances by when their next probe is due (the number breaks ties).
#[derive(Default)]
struct DueQueue {
    queue: std::collections::BTreeMap<(Instant, u64), Key>,
    next: u64,
}

impl DueQueue {
    fn schedule(&mut self, key: Key, at: Instant) -> (Instant, u64) {
        self.next += 1;
        let slot = (at, self.next);
        self.queue.insert(slot, key);
        slot
    }

    fn first(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    fn pop_due(&mut self, now: Instant) -> Option<((Instant, u64), Key)> {
        let (slot, _) = self.queue.iter().next()?;
        if slot.0 > now {
            return None;
        }
        self.queue.pop_first()
    }
}

/// Counters of one node's checker.
#[derive(Debug, Default)]
pub struct HealthStats {
    /// Instances this node checks now (those refused by the probe policy
    /// included).
    pub checked: AtomicU64,
    /// Probes run.
    pub probes: AtomicU64,
    /// Probes that failed.
    pub probe_failures: AtomicU64,
    /// Health flips reported (those of refused instances included).
    pub flips: AtomicU64,
    /// Instances checked here whose address the probe policy refuses now:
    /// never probed, reported unhealthy.
    pub refused: AtomicU64,
    /// Up to [`MAX_REFUSED_LISTED`] of them, in service and instance order.
    refused_targets: Mutex<Vec<RefusedProbe>>,
}

impl HealthStats {
    /// Up to [`MAX_REFUSED_LISTED`] of the instances the probe policy refuses
    /// now (all of them when [`refused`](Self::refused) is not larger), with
    /// the address that is not probed and the rule refusing it.
    #[must_use]
    pub fn refused_targets(&self) -> Vec<RefusedProbe> {
        self.refused_targets.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Handle to a running checker.
#[derive(Debug, Clone)]
pub struct HealthChecker {
    stats: Arc<HealthStats>,
}

impl HealthChecker {
    /// Starts the checker over `store`; it checks the instances `responsible`
    /// gives this node and sends flips to `sink`, until `shutdown`. When the
    /// config disables checks, the task returns at once. Probes are real
    /// TCP connects and HTTP GETs ([`NetProber`]).
    pub fn spawn(
        store: Arc<RegistryStore>,
        responsible: Responsibility,
        sink: Arc<dyn HealthSink>,
        config: HealthConfig,
        shutdown: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        Self::spawn_with_prober(store, responsible, sink, config, Arc::new(NetProber), shutdown)
    }

    /// [`spawn`](Self::spawn) with the probes run by `prober`. It is only
    /// handed addresses `config.probe_policy` allows.
    pub fn spawn_with_prober(
        store: Arc<RegistryStore>,
        responsible: Responsibility,
        sink: Arc<dyn HealthSink>,
        config: HealthConfig,
        prober: Arc<dyn Prober>,
        shutdown: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let stats = Arc::new(HealthStats::default());
        let parts = Parts { store, responsible, sink, prober, stats: stats.clone() };
        let task = tokio::spawn(run(parts, config, shutdown));
        (Self { stats }, task)
    }

    /// The checker's counters.
    #[must_use]
    pub fn stats(&self) -> &HealthStats {
        &self.stats
    }
}

/// A delay drawn from `interval` ± 25 %.
fn jittered(interval: Duration) -> Duration {
    let millis = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX).max(4);
    Duration::from_millis(rand::rng().random_range(millis * 3 / 4..=millis * 5 / 4))
}

/// What the checker task works with.
struct Parts {
    store: Arc<RegistryStore>,
    responsible: Responsibility,
    sink: Arc<dyn HealthSink>,
    prober: Arc<dyn Prober>,
    stats: Arc<HealthStats>,
}

async fn run(parts: Parts, config: HealthConfig, shutdown: CancellationToken) {
    let Parts { store, responsible, sink, prober, stats } = parts;
    if !config.enabled {
        return;
    }
    let mut checked: HashMap<Key, Checked> = HashMap::new();
    let mut due = DueQueue::default();
    let permits = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let (results_tx, mut results) = mpsc::channel::<(Key, bool)>(config.max_in_flight.max(1) * 2);
    let mut pending: Vec<HealthReport> = Vec::new();
    let mut rescan = tokio::time::interval(config.rescan);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flush_at: Option<Instant> = None;
    loop {
        // With every permit taken, only a result can let the next probe start.
        let next_due = if permits.available_permits() > 0 { due.first() } else { None };
        let wake = [next_due, flush_at].into_iter().flatten().min();
        tokio::select! {
            _ = rescan.tick() => {
                let refreshed = refresh(&store, &responsible, &mut checked, &mut due, &config);
                stats.checked.store(checked.len() as u64, Ordering::Relaxed);
                if refreshed.refused_changed {
                    publish_refused(&checked, &stats);
                }
                if !refreshed.unhealthy.is_empty() {
                    pending.extend(refreshed.unhealthy);
                    flush_at.get_or_insert_with(|| Instant::now() + config.report_delay);
                }
            }
            Some((key, ok)) = results.recv() => {
                stats.probes.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    stats.probe_failures.fetch_add(1, Ordering::Relaxed);
                }
                // A probe started before its address was refused says nothing.
                if let Some(entry) = checked.get_mut(&key).filter(|e| e.refused.is_none()) {
                    entry.scheduled = Some(due.schedule(key.clone(), Instant::now() + jittered(config.interval)));
                    if let Some(healthy) = entry.streak.observe(ok, entry.target.healthy, config.rise, config.fall) {
                        // Counted as done now; a failed write shows up at the next rescan.
                        entry.target.healthy = healthy;
                        pending.push(HealthReport { service: (*key.0).clone(), instance: key.1.clone(), healthy });
                        flush_at.get_or_insert_with(|| Instant::now() + config.report_delay);
                    }
                }
            }
            () = sleep_until(wake) => {}
            () = shutdown.cancelled() => return,
        }
        let now = Instant::now();
        if flush_at.is_some_and(|at| at <= now) && !pending.is_empty() {
            flush_at = None;
            let batch = std::mem::take(&mut pending);
            stats.flips.fetch_add(batch.len() as u64, Ordering::Relaxed);
            info!(flips = batch.len(), changed = %describe_flips(&batch), "health checks changed instances' health");
            let sink = sink.clone();
            tokio::spawn(async move {
                if let Err(error) = sink.report(batch).await {
                    warn!(%error, "cannot record health check results; they are found again at the next probes");
                }
            });
        }
        while permits.available_permits() > 0 {
            let Some((slot, key)) = due.pop_due(now) else { break };
            // A refused instance is never scheduled; this is the last guard.
            let Some(entry) = checked.get_mut(&key).filter(|e| e.scheduled == Some(slot) && e.refused.is_none()) else {
                continue;
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else { break };
            entry.scheduled = None;
            let addr = SocketAddr::new(entry.target.ip, entry.target.port);
            let probe = prober.probe(&entry.target.check, addr, config.timeout);
            let (tx, timeout) = (results_tx.clone(), config.timeout);
            tokio::spawn(async move {
                // The prober is asked to keep to the timeout; this holds a prober that does not.
                let ok = tokio::time::timeout(timeout, probe).await.unwrap_or(false);
                drop(permit);
                // The checker may have stopped; then nobody needs the result.
                let _ = tx.send((key, ok)).await;
            });
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What a [`refresh`] found.
#[derive(Default)]
struct Refreshed {
    /// Verdicts for refused instances the registry shows healthy.
    unhealthy: Vec<HealthReport>,
    /// Whether the set of refused instances changed.
    refused_changed: bool,
}

/// Reads the instances to check: adds new ones (first probe after a random
/// part of the interval, so a restart does not probe everything at once),
/// updates the others from the registry, drops those gone or no longer this
/// node's. Instances whose address the probe policy refuses are not
/// scheduled, and those shown healthy are reported unhealthy.
fn refresh(
    store: &RegistryStore,
    responsible: &Responsibility,
    checked: &mut HashMap<Key, Checked>,
    due: &mut DueQueue,
    config: &HealthConfig,
) -> Refreshed {
    let targets = store.read(|registry| registry.check_targets(&**responsible));
    let mut seen: HashMap<Key, CheckTarget> = HashMap::with_capacity(targets.len());
    for target in targets {
        seen.insert((target.service.clone(), target.instance.clone()), target);
    }
    let mut refreshed = Refreshed::default();
    // Entries dropped here leave stale queue slots, skipped when they come up.
    checked.retain(|key, entry| {
        let keep = seen.contains_key(key);
        refreshed.refused_changed |= !keep && entry.refused.is_some();
        keep
    });
    let interval = u64::try_from(config.interval.as_millis()).unwrap_or(u64::MAX).max(1);
    for (key, target) in seen {
        let refused = config.probe_policy.check(target.ip).err();
        let mut schedule = false;
        let entry = match checked.entry(key) {
            Entry::Occupied(entry) => {
                let entry = entry.into_mut();
                if entry.target.check != target.check {
                    entry.streak = Streak::default();
                }
                entry.target = target;
                entry
            }
            Entry::Vacant(slot) => {
                debug!(service = %target.service, instance = %target.instance, "checking a persistent instance");
                schedule = refused.is_none();
                slot.insert(Checked { target, streak: Streak::default(), scheduled: None, refused: None })
            }
        };
        if entry.refused != refused {
            refreshed.refused_changed = true;
            entry.streak = Streak::default();
            // A refused instance leaves the queue; an allowed one (again) joins it.
            entry.scheduled = None;
            schedule = refused.is_none();
            if let Some(rule) = refused {
                let address = SocketAddr::new(entry.target.ip, entry.target.port);
                warn!(
                    service = %entry.target.service,
                    instance = %entry.target.instance,
                    %address,
                    %rule,
                    "not health-checking a persistent instance: the probe policy refuses its address (health.probe_allow, health.probe_deny); it is shown unhealthy"
                );
            }
            entry.refused = refused;
        }
        if entry.refused.is_some() && entry.target.healthy {
            // Counted as done now; a failed write shows up at the next rescan.
            entry.target.healthy = false;
            refreshed.unhealthy.push(HealthReport {
                service: (*entry.target.service).clone(),
                instance: entry.target.instance.clone(),
                healthy: false,
            });
        }
        if schedule {
            let first = Duration::from_millis(rand::rng().random_range(0..interval));
            let key = (entry.target.service.clone(), entry.target.instance.clone());
            entry.scheduled = Some(due.schedule(key, Instant::now() + first));
        }
    }
    refreshed
}

/// Publishes the refused instances: their number, and the first
/// [`MAX_REFUSED_LISTED`] in service and instance order.
fn publish_refused(checked: &HashMap<Key, Checked>, stats: &HealthStats) {
    let mut refused: Vec<(&Key, &Checked, ProbeRule)> =
        checked.iter().filter_map(|(key, entry)| entry.refused.map(|rule| (key, entry, rule))).collect();
    stats.refused.store(refused.len() as u64, Ordering::Relaxed);
    refused.sort_unstable_by(|a, b| a.0.cmp(b.0));
    refused.truncate(MAX_REFUSED_LISTED);
    let listed = refused
        .into_iter()
        .map(|(key, entry, rule)| RefusedProbe {
            service: key.0.to_string(),
            cluster: key.1.cluster.to_string(),
            ip: entry.target.ip,
            port: entry.target.port,
            rule: rule.to_string(),
        })
        .collect();
    *stats.refused_targets.lock().unwrap_or_else(PoisonError::into_inner) = listed;
}

/// The first flips of a batch, for the log: `ns/group@@svc DEFAULT/10.0.0.1:80 unhealthy, …`.
fn describe_flips(batch: &[HealthReport]) -> String {
    const SHOWN: usize = 10;
    let mut text: Vec<String> = batch
        .iter()
        .take(SHOWN)
        .map(|r| format!("{} {} {}", r.service, r.instance, if r.healthy { "healthy" } else { "unhealthy" }))
        .collect();
    if batch.len() > SHOWN {
        text.push(format!("and {} more", batch.len() - SHOWN));
    }
    text.join(", ")
}
