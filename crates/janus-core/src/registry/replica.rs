//! The registry side of AP replication: versions of ephemeral instances,
//! the queue of local changes to send, tombstones, and applying records
//! that peers sent (see [`crate::replica`] for the rules).
//!
//! Who runs an instance's lease is the AP engine's call: it passes an
//! `owns` predicate (over [`crate::replica::record_hash`]) wherever it matters.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use super::bound::Binding;
use super::{InstanceSlot, Registry, ServiceCell};
use crate::change::ChangeKind;
use crate::lease::{LeaseOwner, LeaseTiming};
use crate::model::{LeaseOverrides, Mode, ServiceSettings};
use crate::name::{InstanceKey, ServiceKey};
use crate::replica::{Record, RecordBody, ReplicationConfig, ServiceRecords, Version, record_hash_with, service_hash};
use crate::time::Millis;

/// An ephemeral instance changed on this node, to be sent to peers.
pub type DirtyKey = (Arc<ServiceKey>, InstanceKey);

/// Replication state kept next to the registry.
#[derive(Debug)]
pub(super) struct Replication {
    config: ReplicationConfig,
    /// Instances changed here since the engine last took them.
    dirty: Vec<DirtyKey>,
    /// Versions of deleted instances, by service.
    tombstones: HashMap<ServiceKey, HashMap<InstanceKey, Version>>,
    /// Tombstones in the order they expire.
    expiring: VecDeque<(Millis, Arc<ServiceKey>, InstanceKey, Version)>,
}

impl Replication {
    pub(super) fn new(config: ReplicationConfig) -> Self {
        Self { config, dirty: Vec::new(), tombstones: HashMap::new(), expiring: VecDeque::new() }
    }

    fn tombstone(&self, service: &ServiceKey, instance: &InstanceKey) -> Option<Version> {
        self.tombstones.get(service).and_then(|m| m.get(instance)).copied()
    }

    fn clear_tombstone(&mut self, service: &ServiceKey, instance: &InstanceKey) {
        if let Some(instances) = self.tombstones.get_mut(service) {
            instances.remove(instance);
            if instances.is_empty() {
                self.tombstones.remove(service);
            }
        }
    }

    /// The version a local change of an instance at `current` gets: above
    /// anything seen for it, tombstones included.
    pub(super) fn next_version(&self, service: &ServiceKey, instance: &InstanceKey, current: Version) -> Version {
        let buried = self.tombstone(service, instance).unwrap_or_default();
        Version { counter: current.counter.max(buried.counter) + 1, node: self.config.node }
    }

    /// Queues a live instance changed here for peers (it has no tombstone any more).
    pub(super) fn queue(&mut self, service: &Arc<ServiceKey>, instance: &InstanceKey) {
        self.clear_tombstone(service, instance);
        self.dirty.push((service.clone(), instance.clone()));
    }

    /// Records a deletion made here and queues it for peers.
    pub(super) fn bury(&mut self, service: &Arc<ServiceKey>, instance: &InstanceKey, version: Version, now: Millis) {
        remember_tombstone(self, service, instance, version, now);
        self.dirty.push((service.clone(), instance.clone()));
    }
}

/// What applying a peer's records did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Records newer than what this node had, taken.
    pub applied: usize,
    /// Records this node already had at that version or newer.
    pub stale: usize,
    /// Records for a namespace this node does not know as `ap`.
    pub refused: usize,
    /// Deletions of instances this node keeps for a live connection, refused
    /// and answered with a newer live record.
    pub reasserted: usize,
    /// Instances this node holds a newer record of than the peer sent: the
    /// peer should get this node's record back.
    pub newer_here: Vec<DirtyKey>,
}

/// One ephemeral instance as the digest pass sees it.
#[derive(Debug, Clone, Copy)]
pub struct EphemeralView<'a> {
    /// The instance.
    pub instance: &'a InstanceKey,
    /// Its [`crate::replica::record_hash`].
    pub hash: u64,
    /// Its version.
    pub version: Version,
    /// Whether this node runs its lease.
    pub leased: bool,
    /// When its owner last vouched for it here.
    pub vouched: Millis,
    /// The connection keeping it alive, for a connection-bound instance.
    pub binding: Option<Binding>,
}

impl Registry {
    /// The version a local change of an instance gets: above anything seen for it.
    pub(super) fn next_version(&self, service: &ServiceKey, instance: &InstanceKey, current: Version) -> Version {
        self.context().next_version(service, instance, current)
    }

    /// Stamps a live instance changed here and queues it for peers.
    pub(super) fn set_version(&mut self, service: &Arc<ServiceKey>, instance: &InstanceKey, version: Version) {
        if let Some(slot) =
            self.services.get_mut(&**service).map(ServiceCell::get_mut).and_then(|e| e.instances.get_mut(instance))
        {
            slot.version = version;
        }
        if let Some(replication) = self.replication.as_mut().map(Mutex::get_mut) {
            replication.queue(service, instance);
        }
    }

    /// Takes the instances changed here since the last call (empty unless
    /// replicating). Takes `&self`: writes under the shared lock queue too.
    pub fn take_dirty(&self) -> Vec<DirtyKey> {
        self.replication.as_ref().map(|r| std::mem::take(&mut r.lock().dirty)).unwrap_or_default()
    }

    /// Forgets tombstones older than their time to live.
    pub fn prune_tombstones(&mut self, now: Millis) -> usize {
        let Some(replication) = self.replication.as_mut().map(Mutex::get_mut) else { return 0 };
        let mut pruned = 0;
        while let Some((at, _, _, _)) = replication.expiring.front() {
            if *at > now {
                break;
            }
            let Some((_, service, instance, version)) = replication.expiring.pop_front() else { break };
            if replication.tombstone(&service, &instance) == Some(version) {
                replication.clear_tombstone(&service, &instance);
                pruned += 1;
            }
        }
        pruned
    }

    /// Shows `f` every tombstone: service, instance, the record's hash.
    pub fn visit_tombstones(&self, mut f: impl FnMut(&ServiceKey, &InstanceKey, u64)) {
        let Some(replication) = &*self.replication else { return };
        for (service, instances) in &replication.lock().tombstones {
            let hash = service_hash(service);
            for instance in instances.keys() {
                f(service, instance, record_hash_with(hash, instance));
            }
        }
    }

    /// Tombstones held.
    #[must_use]
    pub fn tombstones(&self) -> usize {
        self.replication.as_ref().map_or(0, |r| r.lock().tombstones.values().map(HashMap::len).sum())
    }

    /// The current records of some instances of a service, read when they are
    /// sent: live ones with their fields, deleted ones as tombstones; an
    /// instance this node knows nothing of is left out.
    #[must_use]
    pub fn records<'a>(
        &self,
        service: &ServiceKey,
        instances: impl IntoIterator<Item = &'a InstanceKey>,
    ) -> ServiceRecords {
        let entry = self.services.get(service).map(|e| e.read_recursive());
        let replication = self.replication.as_ref().map(|r| r.lock());
        let tombstones = replication.as_ref().and_then(|r| r.tombstones.get(service));
        let records = instances
            .into_iter()
            .filter_map(|instance| {
                if let Some(slot) =
                    entry.as_ref().and_then(|e| e.instances.get(instance)).filter(|s| s.instance.ephemeral)
                {
                    return Some(Record {
                        instance: instance.clone(),
                        version: slot.version,
                        body: Some(RecordBody::of(&slot.instance, slot.binding)),
                    });
                }
                let version = *tombstones?.get(instance)?;
                Some(Record { instance: instance.clone(), version, body: None })
            })
            .collect();
        ServiceRecords { service: service.clone(), records }
    }

    /// Applies records a peer sent: each replaces what this node has only if
    /// it supersedes it ([`supersedes`]). A new live instance starts a lease
    /// here when `owns` says this node owns it, and is a replica otherwise.
    /// A taken record is queued for peers again only on its owner. A record
    /// found current marks the replica vouched for now.
    pub fn apply_records(&mut self, batch: ServiceRecords, now: Millis, owns: &dyn Fn(u64) -> bool) -> ApplyReport {
        let mut report = ApplyReport::default();
        let service = batch.service;
        if self.mode_of(&service.namespace) != Ok(Mode::Ap) {
            report.refused = batch.records.len();
            return report;
        }
        let hash = service_hash(&service);
        for record in batch.records {
            let current = self
                .services
                .get_mut(&service)
                .and_then(|e| e.get_mut().instances.get(&record.instance))
                .map(|s| s.version);
            let known = match current {
                Some(version) => Some((version, false)),
                None => self
                    .replication
                    .as_mut()
                    .and_then(|r| r.get_mut().tombstone(&service, &record.instance))
                    .map(|v| (v, true)),
            };
            let incoming = (record.version, record.body.is_none());
            if let Some(known) = known
                && !supersedes(incoming, known)
            {
                if known == incoming {
                    if let Some(slot) = self.slot_mut(&service, &record.instance) {
                        slot.vouched = now;
                    }
                } else {
                    report.newer_here.push((Arc::new(service.clone()), record.instance.clone()));
                }
                report.stale += 1;
                continue;
            }
            if record.body.is_none() && self.reassert_bound(&service, &record.instance, record.version) {
                report.reasserted += 1;
                continue;
            }
            report.applied += 1;
            // A connection-bound instance is its binder's; the rest as `owns` says.
            let binding = record.body.as_ref().and_then(|b| b.binding);
            let owned = match (binding, &*self.replication) {
                (Some(binding), Some(replication)) => binding.node == replication.lock().config.node,
                _ => owns(record_hash_with(hash, &record.instance)),
            };
            let instance = record.instance.clone();
            match record.body {
                Some(body) => self.put_replica(&service, record.instance, record.version, body, now, owned),
                None => {
                    if current.is_some() {
                        self.remove_instance(&service, &record.instance, ChangeKind::InstanceDeregistered);
                    }
                    if let Some(replication) = self.replication.as_mut().map(Mutex::get_mut) {
                        let shared = Arc::new(service.clone());
                        remember_tombstone(replication, &shared, &record.instance, record.version, now);
                    }
                }
            }
            // The owner passes on what changed its copy (a write that landed
            // elsewhere while it was out of reach), so every replica hears it.
            if owned && let Some(replication) = self.replication.as_mut().map(Mutex::get_mut) {
                replication.dirty.push((Arc::new(service.clone()), instance));
            }
        }
        report
    }

    /// A peer deleted an instance this node keeps for a live connection (an
    /// orphan cleanup made while this node was out of reach): the connection
    /// still holds it, so it is written again above the deletion and sent to
    /// every peer (`docs/ap-protocol.md`, "Connection-bound instances").
    /// Returns whether it was.
    fn reassert_bound(&mut self, service: &ServiceKey, instance: &InstanceKey, deleted: Version) -> bool {
        let Some(me) = self.replication.as_mut().map(|r| r.get_mut().config.node) else { return false };
        let Some(entry) = self.services.get_mut(service).map(ServiceCell::get_mut) else { return false };
        let Some(slot) = entry.instances.get(instance) else { return false };
        let Some(binding) = slot.binding.filter(|b| b.node == me) else { return false };
        if !self.bound.holds(binding, service, instance) {
            return false;
        }
        let shared = entry.key.clone();
        let version = Version { counter: slot.version.counter.max(deleted.counter) + 1, node: me };
        self.set_version(&shared, instance, version);
        true
    }

    fn slot_mut(&mut self, service: &ServiceKey, instance: &InstanceKey) -> Option<&mut InstanceSlot> {
        self.services.get_mut(service).map(ServiceCell::get_mut).and_then(|e| e.instances.get_mut(instance))
    }

    /// Inserts or replaces a live instance from a peer's record.
    fn put_replica(
        &mut self,
        service: &ServiceKey,
        instance: InstanceKey,
        version: Version,
        body: RecordBody,
        now: Millis,
        owned: bool,
    ) {
        if self.ensure_service(service, ServiceSettings::default()).is_err() {
            return;
        }
        let timing =
            LeaseTiming::resolve(self.config.lease, LeaseOverrides::from_metadata(&body.metadata).unwrap_or_default());
        if let Some(replication) = self.replication.as_mut().map(Mutex::get_mut) {
            replication.clear_tombstone(service, &instance);
        }
        let binding = body.binding;
        let Some(entry) = self.services.get_mut(service).map(ServiceCell::get_mut) else { return };
        let shared = entry.key.clone();
        if let Some(slot) = entry.instances.get_mut(&instance) {
            slot.binding = binding;
            if binding.is_some()
                && let Some(lease) = slot.lease.take()
            {
                // Its connection keeps it alive now, wherever that is.
                self.leases.stop(&lease);
                self.preservation.lease_ended(lease.timing.renewals_per_hour());
            }
            let key = slot.instance.key.clone();
            let updated = Arc::new(body.into_instance(key.clone()));
            let mut before = RecordBody::of(&slot.instance, None);
            before.healthy = updated.healthy;
            let kind = if slot.instance.healthy != updated.healthy && before == RecordBody::of(&updated, None) {
                ChangeKind::InstanceHealthChanged
            } else {
                ChangeKind::InstanceUpdated
            };
            let changed = *slot.instance != *updated;
            slot.instance = updated;
            slot.version = version;
            slot.vouched = now;
            if let Some(lease) = slot.lease_mut()
                && lease.timing != timing
            {
                self.preservation.rate_changed(lease.timing.renewals_per_hour(), timing.renewals_per_hour());
                lease.timing = timing;
                let at = lease.unhealthy_at();
                self.leases.reschedule(lease, at);
            }
            if changed {
                self.touch(&shared, Some(key), kind);
            }
            return;
        }
        let mut key = instance;
        key.cluster = entry.intern(&key.cluster);
        let lease = (owned && binding.is_none()).then(|| {
            self.preservation.lease_started(timing.renewals_per_hour(), now);
            self.leases.start(LeaseOwner { service: shared.clone(), instance: key.clone() }, timing, now)
        });
        let slot = InstanceSlot {
            binding,
            ..InstanceSlot::new(Arc::new(body.into_instance(key.clone())), lease, version, now)
        };
        entry.instances.insert(key.clone(), slot);
        self.instance_count.add(1);
        self.touch(&shared, Some(key), ChangeKind::InstanceRegistered);
    }

    /// After the set of live members changed: starts leases here for the
    /// ephemeral instances `owns` now gives this node, and releases the
    /// leases of those it gives to others (they become replicas vouched for
    /// now). Returns the released instances, so the engine can hand them to
    /// their new owners.
    pub fn rebalance(&mut self, now: Millis, owns: &dyn Fn(u64) -> bool) -> Vec<DirtyKey> {
        let mut released = Vec::new();
        let mut adopt = Vec::new();
        for (key, entry) in &mut self.services {
            let hash = service_hash(key);
            let entry = entry.get_mut();
            for (instance, slot) in &entry.instances {
                if !slot.instance.ephemeral {
                    continue;
                }
                match (owns(record_hash_with(hash, instance)), slot.lease.is_some()) {
                    (true, false) => adopt.push((entry.key.clone(), instance.clone())),
                    (false, true) => released.push((entry.key.clone(), instance.clone())),
                    _ => {}
                }
            }
        }
        for (service, instance) in &adopt {
            self.start_lease(service, instance, now);
        }
        for (service, instance) in &released {
            self.release_lease(service, instance, now);
        }
        released
    }

    /// Starts running the lease of an instance this node owns (renewed `now`).
    pub fn adopt(&mut self, service: &Arc<ServiceKey>, instance: &InstanceKey, now: Millis) {
        self.start_lease(service, instance, now);
    }

    /// Starts a lease renewed `now` for a replica.
    pub(super) fn start_lease(&mut self, service: &Arc<ServiceKey>, instance: &InstanceKey, now: Millis) {
        let Some(slot) =
            self.services.get_mut(&**service).map(ServiceCell::get_mut).and_then(|e| e.instances.get_mut(instance))
        else {
            return;
        };
        if slot.lease.is_some() || slot.binding.is_some() {
            return;
        }
        let overrides = LeaseOverrides::from_metadata(&slot.instance.metadata).unwrap_or_default();
        let timing = LeaseTiming::resolve(self.config.lease, overrides);
        self.preservation.lease_started(timing.renewals_per_hour(), now);
        let owner = LeaseOwner { service: service.clone(), instance: instance.clone() };
        slot.lease = Some(self.leases.start(owner, timing, now));
    }

    /// Stops running an instance's lease here: it becomes a replica, vouched for now.
    pub(super) fn release_lease(&mut self, service: &ServiceKey, instance: &InstanceKey, now: Millis) {
        let Some(slot) =
            self.services.get_mut(service).map(ServiceCell::get_mut).and_then(|e| e.instances.get_mut(instance))
        else {
            return;
        };
        if let Some(lease) = slot.lease.take() {
            self.leases.stop(&lease);
            self.preservation.lease_ended(lease.timing.renewals_per_hour());
        }
        slot.vouched = now;
    }

    /// The services of `ap` namespaces, for a pass over every ephemeral instance.
    #[must_use]
    pub fn ap_services(&self) -> Vec<Arc<ServiceKey>> {
        self.services
            .values()
            .map(|e| e.read_recursive().key.clone())
            .filter(|key| self.namespaces.get(&key.namespace).is_some_and(|n| n.spec.mode == Mode::Ap))
            .collect()
    }

    /// Shows `f` every ephemeral instance of a service.
    pub fn visit_ephemeral(&self, service: &ServiceKey, mut f: impl FnMut(EphemeralView<'_>)) {
        let Some(entry) = self.services.get(service) else { return };
        let hash = service_hash(service);
        for (instance, slot) in &entry.read_recursive().instances {
            if slot.instance.ephemeral {
                f(EphemeralView {
                    instance,
                    hash: record_hash_with(hash, instance),
                    version: slot.version,
                    // A bound instance is vouched for by its connection.
                    leased: slot.lease.is_some() || slot.binding.is_some(),
                    vouched: slot.vouched,
                    binding: slot.binding,
                });
            }
        }
    }

    /// Marks replicas as vouched for by their owner now.
    pub fn vouch<'a>(
        &mut self,
        service: &ServiceKey,
        instances: impl IntoIterator<Item = &'a InstanceKey>,
        now: Millis,
    ) {
        let Some(entry) = self.services.get_mut(service).map(ServiceCell::get_mut) else { return };
        for instance in instances {
            if let Some(slot) = entry.instances.get_mut(instance) {
                slot.vouched = now;
            }
        }
    }

    /// Removes replicas (instances whose lease this node does not run) that
    /// their owner stopped vouching for; returns how many went.
    pub fn drop_replicas<'a>(
        &mut self,
        service: &ServiceKey,
        instances: impl IntoIterator<Item = &'a InstanceKey>,
    ) -> usize {
        let mut dropped = 0;
        for instance in instances {
            let replica = self
                .services
                .get_mut(service)
                .and_then(|e| e.get_mut().instances.get(instance))
                .is_some_and(|s| s.instance.ephemeral && s.lease.is_none() && s.binding.is_none());
            if replica && self.remove_instance(service, instance, ChangeKind::InstanceExpired).is_some() {
                dropped += 1;
            }
        }
        dropped
    }

    /// Removes a replica its owner says it no longer has, if it is still the
    /// state the owner was asked about (`version`): a newer record that
    /// arrived meanwhile stays. Returns whether it went.
    pub fn drop_replica_at(&mut self, service: &ServiceKey, instance: &InstanceKey, version: Version) -> bool {
        let unchanged =
            self.services.get_mut(service).and_then(|e| e.get_mut().instances.get(instance)).is_some_and(|s| {
                s.instance.ephemeral && s.lease.is_none() && s.binding.is_none() && s.version == version
            });
        unchanged && self.remove_instance(service, instance, ChangeKind::InstanceExpired).is_some()
    }

    /// Up to `limit` instances' records of the `ap` services after `after` (in
    /// service order), for a joining node's snapshot; the cursor to continue
    /// from, or `None` at the end. Tombstones are not included.
    #[must_use]
    pub fn snapshot_page(&self, after: Option<&ServiceKey>, limit: usize) -> (Vec<ServiceRecords>, Option<ServiceKey>) {
        let mut page = Vec::new();
        let mut taken = 0;
        for (id, namespace) in &self.namespaces {
            if namespace.spec.mode != Mode::Ap {
                continue;
            }
            if after.is_some_and(|a| *id < a.namespace) {
                continue;
            }
            for (group, name) in &namespace.services {
                let key = ServiceKey::new(id.clone(), group.clone(), name.clone());
                if after.is_some_and(|a| key <= *a) {
                    continue;
                }
                if taken >= limit {
                    let last = page.last().map(|p: &ServiceRecords| p.service.clone());
                    return (page, last);
                }
                let Some(entry) = self.services.get(&key) else { continue };
                let records: Vec<Record> = entry
                    .read_recursive()
                    .instances
                    .values()
                    .filter(|s| s.instance.ephemeral)
                    .map(|s| Record {
                        instance: s.instance.key.clone(),
                        version: s.version,
                        body: Some(RecordBody::of(&s.instance, s.binding)),
                    })
                    .collect();
                taken += records.len().max(1);
                page.push(ServiceRecords { service: key, records });
            }
        }
        (page, None)
    }
}

/// Whether a record (version, deleted) replaces what a node holds: a higher
/// counter wins; on equal counters (concurrent changes on two sides of a
/// partition) a deletion beats a live state, then the higher node id wins.
#[must_use]
pub fn supersedes(incoming: (Version, bool), current: (Version, bool)) -> bool {
    let rank = |(version, deleted): (Version, bool)| (version.counter, deleted, version.node);
    rank(incoming) > rank(current)
}

fn remember_tombstone(
    replication: &mut Replication,
    service: &Arc<ServiceKey>,
    instance: &InstanceKey,
    version: Version,
    now: Millis,
) {
    replication.tombstones.entry((**service).clone()).or_default().insert(instance.clone(), version);
    let expires = now.plus(replication.config.tombstone_ttl_ms);
    replication.expiring.push_back((expires, service.clone(), instance.clone(), version));
}
