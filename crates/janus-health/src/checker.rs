//! [`HealthChecker`]: one task per node that keeps the list of persistent
//! instances this node checks, probes each when it is due (at most
//! `max_in_flight` at once), applies the consecutive-results rule, and sends
//! the flips it found in batches.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use janus_core::registry::{CheckTarget, HealthReport};
use janus_core::{InstanceKey, RegistryStore, ServiceKey};
use rand::Rng as _;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::streak::Streak;
use crate::{HealthConfig, HealthSink, Responsibility};

type Key = (Arc<ServiceKey>, InstanceKey);

struct Checked {
    target: CheckTarget,
    streak: Streak,
    /// Its entry in the due queue, while it waits for its next probe.
    scheduled: Option<(Instant, u64)>,
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
    /// Instances this node checks now.
    pub checked: AtomicU64,
    /// Probes run.
    pub probes: AtomicU64,
    /// Probes that failed.
    pub probe_failures: AtomicU64,
    /// Health flips reported.
    pub flips: AtomicU64,
}

/// Handle to a running checker.
#[derive(Debug, Clone)]
pub struct HealthChecker {
    stats: Arc<HealthStats>,
}

impl HealthChecker {
    /// Starts the checker over `store`; it checks the instances `responsible`
    /// gives this node and sends flips to `sink`, until `shutdown`. When the
    /// config disables checks, the task returns at once.
    pub fn spawn(
        store: Arc<RegistryStore>,
        responsible: Responsibility,
        sink: Arc<dyn HealthSink>,
        config: HealthConfig,
        shutdown: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let stats = Arc::new(HealthStats::default());
        let task = tokio::spawn(run(store, responsible, sink, config, shutdown, stats.clone()));
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

async fn run(
    store: Arc<RegistryStore>,
    responsible: Responsibility,
    sink: Arc<dyn HealthSink>,
    config: HealthConfig,
    shutdown: CancellationToken,
    stats: Arc<HealthStats>,
) {
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
                refresh(&store, &responsible, &mut checked, &mut due, &config);
                stats.checked.store(checked.len() as u64, Ordering::Relaxed);
            }
            Some((key, ok)) = results.recv() => {
                stats.probes.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    stats.probe_failures.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(entry) = checked.get_mut(&key) {
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
            info!(flips = batch.len(), "health checks changed instances' health");
            let sink = sink.clone();
            tokio::spawn(async move {
                if let Err(error) = sink.report(batch).await {
                    warn!(%error, "cannot record health check results; they are found again at the next probes");
                }
            });
        }
        while permits.available_permits() > 0 {
            let Some((slot, key)) = due.pop_due(now) else { break };
            let Some(entry) = checked.get_mut(&key).filter(|e| e.scheduled == Some(slot)) else { continue };
            let Ok(permit) = permits.clone().try_acquire_owned() else { break };
            entry.scheduled = None;
            let (target, tx, timeout) = (entry.target.clone(), results_tx.clone(), config.timeout);
            tokio::spawn(async move {
                let ok = crate::probe::probe(&target.check, target.ip, target.port, timeout).await;
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

/// Reads the instances to check: adds new ones (first probe after a random
/// part of the interval, so a restart does not probe everything at once),
/// updates the others from the registry, drops those gone or no longer this
/// node's.
fn refresh(
    store: &RegistryStore,
    responsible: &Responsibility,
    checked: &mut HashMap<Key, Checked>,
    due: &mut DueQueue,
    config: &HealthConfig,
) {
    let targets = store.read(|registry| registry.check_targets(&**responsible));
    let mut seen: HashMap<Key, CheckTarget> = HashMap::with_capacity(targets.len());
    for target in targets {
        seen.insert((target.service.clone(), target.instance.clone()), target);
    }
    // Entries dropped here leave stale queue slots, skipped when they come up.
    checked.retain(|key, _| seen.contains_key(key));
    let interval = u64::try_from(config.interval.as_millis()).unwrap_or(u64::MAX).max(1);
    for (key, target) in seen {
        match checked.get_mut(&key) {
            Some(entry) => {
                if entry.target.check != target.check {
                    entry.streak = Streak::default();
                }
                entry.target = target;
            }
            None => {
                let first = Duration::from_millis(rand::rng().random_range(0..interval));
                debug!(service = %key.0, instance = %key.1, "checking a persistent instance");
                let scheduled = Some(due.schedule(key.clone(), Instant::now() + first));
                checked.insert(key, Checked { target, streak: Streak::default(), scheduled });
            }
        }
    }
}
