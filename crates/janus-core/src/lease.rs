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

use parking_lot::Mutex;

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

/// One of a [`Leases`]' queues: the ordered lease deadlines of some services
/// and the index from lease to instance.
#[derive(Debug)]
struct LeaseQueue {
    queue: BTreeSet<(Millis, LeaseId)>,
    owners: HashMap<LeaseId, LeaseOwner>,
    /// The id of the next lease: the queue's index, then steps of [`LEASE_SHARDS`].
    next_id: u64,
}

impl LeaseQueue {
    fn new(shard: u64) -> Self {
        Self { queue: BTreeSet::new(), owners: HashMap::new(), next_id: shard }
    }

    /// Starts a lease renewed at `now`, scheduled at its unhealthy deadline.
    fn start(&mut self, owner: LeaseOwner, timing: LeaseTiming, now: Millis) -> Lease {
        let id = LeaseId(self.next_id);
        self.next_id += LEASE_SHARDS;
        let mut lease = Lease { id, started: now, last_renew: now, scheduled: now, timing };
        lease.scheduled = lease.unhealthy_at();
        self.queue.insert((lease.scheduled, id));
        self.owners.insert(id, owner);
        lease
    }

    /// Ends a lease and drops its queue entry.
    fn stop(&mut self, lease: &Lease) {
        self.queue.remove(&(lease.scheduled, lease.id));
        self.owners.remove(&lease.id);
    }

    /// Moves a lease's one entry to `at` (earlier or later).
    fn reschedule(&mut self, lease: &mut Lease, at: Millis) {
        if lease.scheduled != at {
            self.queue.remove(&(lease.scheduled, lease.id));
            lease.scheduled = at;
            self.queue.insert((at, lease.id));
        }
    }

    /// Removes every lease due at or before `now`, earliest first, and
    /// appends them to `due` with their deadlines.
    fn pop_due_into(&mut self, now: Millis, due: &mut Vec<(Millis, LeaseId, LeaseOwner)>) {
        while let Some(&(at, id)) = self.queue.first() {
            if at > now {
                break;
            }
            self.queue.pop_first();
            if let Some(owner) = self.owners.get(&id) {
                due.push((at, id, owner.clone()));
            }
        }
    }

    /// Puts a popped lease back at `at`.
    fn requeue(&mut self, lease: &mut Lease, at: Millis) {
        lease.scheduled = at;
        self.queue.insert((at, lease.id));
    }

    /// The earliest deadline, if any lease is live.
    #[must_use]
    fn next_deadline(&self) -> Option<Millis> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Live leases.
    #[must_use]
    fn len(&self) -> usize {
        self.owners.len()
    }

    /// True when no lease is live.
    #[must_use]
    fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Entries in the queue (equals [`Self::len`] unless an entry is in flight).
    #[must_use]
    fn queued(&self) -> usize {
        self.queue.len()
    }
}

/// How many [`LeaseQueue`]s a [`Leases`] spreads its leases over.
const LEASE_SHARDS: u64 = 16;

/// The leases of a registry, spread by service over 16 queues
/// behind locks of their own, so that writes to different services under
/// the registry's shared lock seldom meet on one (see `Registry`'s docs).
/// A lease's id names its queue. Reads and expiry see one queue: due leases
/// come out ordered by deadline, then id, whichever queue holds them.
#[derive(Debug)]
pub struct Leases {
    shards: Vec<Shard>,
    /// Each queue's earliest deadline (`u64::MAX`: none), readable without
    /// its lock: the engine asks for the earliest of all after every write.
    /// Apart from the queues' locks, so that reading them does not fetch
    /// every lock another core just took; stored only when one moves.
    firsts: Firsts,
}

/// One queue behind its lock, alone on its cache lines.
#[derive(Debug)]
#[repr(align(128))]
struct Shard {
    queue: Mutex<LeaseQueue>,
}

/// The queues' earliest deadlines, on cache lines of their own.
#[derive(Debug)]
#[repr(align(128))]
struct Firsts([AtomicU64; SHARD_COUNT]);

/// [`LEASE_SHARDS`] as an array length.
// 16 fits in usize.
#[allow(clippy::cast_possible_truncation)]
const SHARD_COUNT: usize = LEASE_SHARDS as usize;

impl Default for Leases {
    fn default() -> Self {
        let shards = (0..LEASE_SHARDS).map(|shard| Shard { queue: Mutex::new(LeaseQueue::new(shard)) }).collect();
        Self { shards, firsts: Firsts(std::array::from_fn(|_| AtomicU64::new(u64::MAX))) }
    }
}

impl Leases {
    /// The queue of a service's leases, by a hash of its names (FNV-1a: the
    /// same on every run, so expiry's order is too).
    fn shard_of(service: &ServiceKey) -> usize {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for part in [service.namespace.as_str(), service.group.as_str(), service.service.as_str()] {
            for byte in part.bytes().chain(std::iter::once(0)) {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        // Below LEASE_SHARDS, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let index = (hash % LEASE_SHARDS) as usize;
        index
    }

    /// The queue holding a lease: its id names it.
    fn shard_of_lease(id: LeaseId) -> usize {
        // Below LEASE_SHARDS, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let index = (id.0 % LEASE_SHARDS) as usize;
        index
    }

    /// Runs `f` on queue `index` and then notes its earliest deadline.
    fn with<R>(&self, index: usize, f: impl FnOnce(&mut LeaseQueue) -> R) -> R {
        let mut queue = self.shards[index].queue.lock();
        let result = f(&mut queue);
        let first = queue.next_deadline().map_or(u64::MAX, |at| at.0);
        let slot = &self.firsts.0[index];
        if slot.load(Ordering::Relaxed) != first {
            slot.store(first, Ordering::Relaxed);
        }
        result
    }

    /// Starts a lease renewed at `now`, scheduled at its unhealthy deadline.
    pub fn start(&self, owner: LeaseOwner, timing: LeaseTiming, now: Millis) -> Lease {
        self.with(Self::shard_of(&owner.service), |queue| queue.start(owner, timing, now))
    }

    /// Ends a lease and drops its queue entry.
    pub fn stop(&self, lease: &Lease) {
        self.with(Self::shard_of_lease(lease.id), |queue| queue.stop(lease));
    }

    /// Moves a lease's one entry to `at` (earlier or later).
    pub fn reschedule(&self, lease: &mut Lease, at: Millis) {
        if lease.scheduled != at {
            self.with(Self::shard_of_lease(lease.id), |queue| queue.reschedule(lease, at));
        }
    }

    /// Puts a popped lease back at `at`.
    pub fn requeue(&self, lease: &mut Lease, at: Millis) {
        self.with(Self::shard_of_lease(lease.id), |queue| queue.requeue(lease, at));
    }

    /// Removes and returns every lease due at or before `now`, by deadline, then id.
    pub fn pop_due(&self, now: Millis) -> Vec<(LeaseId, LeaseOwner)> {
        let mut due = Vec::new();
        for index in 0..SHARD_COUNT {
            self.with(index, |queue| queue.pop_due_into(now, &mut due));
        }
        due.sort_by_key(|(at, id, _)| (*at, *id));
        due.into_iter().map(|(_, id, owner)| (id, owner)).collect()
    }

    /// The earliest deadline, if any lease is live (no lock taken).
    #[must_use]
    pub fn next_deadline(&self) -> Option<Millis> {
        let first = self.firsts.0.iter().map(|first| first.load(Ordering::Relaxed)).min()?;
        (first != u64::MAX).then_some(Millis(first))
    }

    /// Live leases.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.queue.lock().len()).sum()
    }

    /// True when no lease is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|shard| shard.queue.lock().is_empty())
    }

    /// Entries in the queues (equals [`Self::len`] unless an entry is in flight).
    #[must_use]
    pub fn queued(&self) -> usize {
        self.shards.iter().map(|shard| shard.queue.lock().queued()).sum()
    }
}
