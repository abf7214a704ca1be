//! Heartbeat leases of ephemeral instances and the deadline queue that expires them.
//!
//! Each lease keeps its last renewal and exactly one live entry in an ordered
//! queue of `(deadline, lease)`. A heartbeat only moves `last_renew`; it never
//! touches the queue. When an entry comes due, the registry re-reads the lease:
//! if it was renewed meanwhile, the entry is put back at the new deadline. So each
//! lease costs one queue operation per timeout period, not per beat, and expiry
//! never scans all instances.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::LeaseOverrides;
use crate::name::{InstanceKey, ServiceKey};
use crate::time::Millis;

/// Default lease timings, overridable per instance through metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseDefaults {
    /// How often clients should beat.
    pub interval_ms: u64,
    /// No beat for this long: the instance turns unhealthy.
    pub unhealthy_after_ms: u64,
    /// No beat for this long: the instance is deleted.
    pub delete_after_ms: u64,
}

impl Default for LeaseDefaults {
    fn default() -> Self {
        Self { interval_ms: 5_000, unhealthy_after_ms: 15_000, delete_after_ms: 30_000 }
    }
}

/// The timings one lease runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseTiming {
    /// Beat interval.
    pub interval_ms: u64,
    /// Unhealthy after this long without a beat.
    pub unhealthy_after_ms: u64,
    /// Deleted after this long without a beat.
    pub delete_after_ms: u64,
}

impl LeaseTiming {
    /// Defaults with an instance's overrides applied.
    #[must_use]
    pub fn resolve(defaults: LeaseDefaults, overrides: LeaseOverrides) -> Self {
        Self {
            interval_ms: overrides.interval_ms.unwrap_or(defaults.interval_ms),
            unhealthy_after_ms: overrides.unhealthy_after_ms.unwrap_or(defaults.unhealthy_after_ms),
            delete_after_ms: overrides.delete_after_ms.unwrap_or(defaults.delete_after_ms),
        }
    }

    /// Renewals this lease should produce per hour (the self-preservation budget).
    #[must_use]
    pub fn renewals_per_hour(&self) -> u64 {
        3_600_000 / self.interval_ms.max(1)
    }
}

/// Identifies a lease in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(u64);

/// The lease state kept next to an ephemeral instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Its id in the queue.
    pub id: LeaseId,
    /// When this node started the lease: the registration, or the moment this
    /// node took over the lease of a replica.
    pub started: Millis,
    /// Last heartbeat or registration.
    pub last_renew: Millis,
    /// When its one live queue entry fires.
    pub scheduled: Millis,
    /// Its timings.
    pub timing: LeaseTiming,
}

impl Lease {
    /// When the instance turns unhealthy without another beat.
    #[must_use]
    pub fn unhealthy_at(&self) -> Millis {
        self.last_renew.plus(self.timing.unhealthy_after_ms.min(self.timing.delete_after_ms))
    }

    /// When the instance is deleted without another beat.
    #[must_use]
    pub fn delete_at(&self) -> Millis {
        self.last_renew.plus(self.timing.delete_after_ms)
    }
}

/// The latest renewal of a lease made under the registry's shared lock
/// (a heartbeat that changes nothing visible; see
/// [`crate::Registry::renew_quietly`]). It lives next to the lease and is
/// folded into [`Lease::last_renew`] whenever the lease is read or changed,
/// taking the later of the two, so a quiet renewal is never lost and never
/// moves a renewal back.
#[derive(Debug, Default)]
pub struct QuietRenewal(AtomicU64);

impl QuietRenewal {
    /// Records a renewal at `now` (keeps the latest).
    pub fn record(&self, now: Millis) {
        self.0.fetch_max(now.0, Ordering::Relaxed);
    }

    /// `lease` with this renewal folded in.
    #[must_use]
    pub fn folded(&self, mut lease: Lease) -> Lease {
        lease.last_renew = lease.last_renew.max(Millis(self.0.load(Ordering::Relaxed)));
        lease
    }
}

/// When a lease started and was last renewed, on the registry's clock, as a
/// read shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimes {
    /// [`Lease::started`].
    pub started: Millis,
    /// [`Lease::last_renew`].
    pub last_renew: Millis,
}

impl From<&Lease> for LeaseTimes {
    fn from(lease: &Lease) -> Self {
        Self { started: lease.started, last_renew: lease.last_renew }
    }
}

/// Where a lease's instance lives.
#[derive(Debug, Clone)]
pub struct LeaseOwner {
    /// The service.
    pub service: Arc<ServiceKey>,
    /// The instance within it.
    pub instance: InstanceKey,
}

/// The ordered queue of lease deadlines and the index from lease to instance.
#[derive(Debug, Default)]
pub struct LeaseQueue {
    queue: BTreeSet<(Millis, LeaseId)>,
    owners: HashMap<LeaseId, LeaseOwner>,
    next_id: u64,
}

impl LeaseQueue {
    /// Starts a lease renewed at `now`, scheduled at its unhealthy deadline.
    pub fn start(&mut self, owner: LeaseOwner, timing: LeaseTiming, now: Millis) -> Lease {
        let id = LeaseId(self.next_id);
        self.next_id += 1;
        let mut lease = Lease { id, started: now, last_renew: now, scheduled: now, timing };
        lease.scheduled = lease.unhealthy_at();
        self.queue.insert((lease.scheduled, id));
        self.owners.insert(id, owner);
        lease
    }

    /// Ends a lease and drops its queue entry.
    pub fn stop(&mut self, lease: &Lease) {
        self.queue.remove(&(lease.scheduled, lease.id));
        self.owners.remove(&lease.id);
    }

    /// Moves a lease's one entry to `at` (earlier or later).
    pub fn reschedule(&mut self, lease: &mut Lease, at: Millis) {
        if lease.scheduled != at {
            self.queue.remove(&(lease.scheduled, lease.id));
            lease.scheduled = at;
            self.queue.insert((at, lease.id));
        }
    }

    /// Removes and returns every lease due at or before `now`, earliest first.
    pub fn pop_due(&mut self, now: Millis) -> Vec<(LeaseId, LeaseOwner)> {
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.queue.first() {
            if at > now {
                break;
            }
            self.queue.pop_first();
            if let Some(owner) = self.owners.get(&id) {
                due.push((id, owner.clone()));
            }
        }
        due
    }

    /// Puts a popped lease back at `at`.
    pub fn requeue(&mut self, lease: &mut Lease, at: Millis) {
        lease.scheduled = at;
        self.queue.insert((at, lease.id));
    }

    /// The earliest deadline, if any lease is live.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Millis> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Live leases.
    #[must_use]
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// True when no lease is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Entries in the queue (equals [`Self::len`] unless an entry is in flight).
    #[must_use]
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}
