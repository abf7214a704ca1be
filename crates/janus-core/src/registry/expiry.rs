//! Lease expiry: turning silent instances unhealthy and deleting expired
//! ones, with self-preservation and the deletion cap of the eviction window
//! (see [`crate::preservation`]).

use std::sync::Arc;

use rand::Rng;
use rand::seq::SliceRandom;

use super::{DEFERRED_DELETE_RETRY_MS, ExpiryReport, Registry, ServiceCell};
use crate::change::ChangeKind;
use crate::lease::LeaseOwner;
use crate::time::Millis;

impl Registry {
    /// Processes every lease due at `now`: marks silent instances unhealthy and
    /// deletes those past their delete timeout, unless self-preservation holds
    /// deletions back. Deletions stay within the cap of the eviction window
    /// (whatever the number of passes in it), chosen at random among the due
    /// ones; those it refuses stay, unhealthy, and are tried again
    /// [`DEFERRED_DELETE_RETRY_MS`] later.
    pub fn expire<R: Rng>(&mut self, now: Millis, rng: &mut R) -> ExpiryReport {
        self.expire_owned(now, rng, &|_| true)
    }

    /// [`Self::expire`] on a node of a cluster: only the owner of an instance
    /// (as `owns` tells from its [`crate::replica::record_hash`]) expires it.
    /// A due lease this node runs without owning the instance (it took a
    /// write whose owner it could not reach) is released instead: the
    /// instance stays, as a replica of its owner.
    pub fn expire_owned<R: Rng>(&mut self, now: Millis, rng: &mut R, owns: &dyn Fn(u64) -> bool) -> ExpiryReport {
        let mut report = ExpiryReport { preservation_active: self.preservation.active(now), ..ExpiryReport::default() };
        let mut doomed = Vec::new();
        for (_, owner) in self.leases.pop_due(now) {
            if self.replication.is_some() && !owns(crate::replica::record_hash(&owner.service, &owner.instance)) {
                self.release_popped(&owner, now);
                report.released += 1;
                continue;
            }
            let Some(entry) = self.services.get_mut(&*owner.service).map(ServiceCell::get_mut) else {
                continue;
            };
            let Some(slot) = entry.instances.get_mut(&owner.instance) else {
                continue;
            };
            let Some(lease) = slot.lease_mut() else {
                continue;
            };
            if now >= lease.delete_at() {
                doomed.push(owner);
                continue;
            }
            if now >= lease.unhealthy_at() {
                let at = lease.delete_at();
                self.leases.requeue(lease, at);
                if slot.instance.healthy {
                    let mut sick = (*slot.instance).clone();
                    sick.healthy = false;
                    slot.instance = Arc::new(sick);
                    report.marked_unhealthy += 1;
                    let (shared, previous) = (entry.key.clone(), slot.version);
                    let version = self.next_version(&shared, &owner.instance, previous);
                    self.set_version(&shared, &owner.instance, version);
                    self.touch(&shared, Some(owner.instance), ChangeKind::InstanceHealthChanged);
                }
            } else {
                // Renewed since it was queued.
                let at = lease.unhealthy_at();
                self.leases.requeue(lease, at);
            }
        }
        if doomed.is_empty() {
            return report;
        }
        let cap = if report.preservation_active {
            0
        } else {
            // `leases` still counts the doomed: they are live until deleted below.
            self.preservation.eviction_allowance(self.leases.len(), now)
        };
        doomed.shuffle(rng);
        let deferred = doomed.split_off(cap.min(doomed.len()));
        for owner in doomed {
            if self.delete_local(&owner.service, &owner.instance, ChangeKind::InstanceExpired, now).is_some() {
                report.deleted += 1;
            }
        }
        self.preservation.evicted(report.deleted, now);
        for owner in deferred {
            report.deferred += 1;
            self.defer_deletion(&owner, now);
        }
        report
    }

    /// Keeps a doomed instance, unhealthy, and tries again later.
    fn defer_deletion(&mut self, owner: &LeaseOwner, now: Millis) {
        let Some(entry) = self.services.get_mut(&*owner.service).map(ServiceCell::get_mut) else {
            return;
        };
        let Some(slot) = entry.instances.get_mut(&owner.instance) else {
            return;
        };
        let Some(lease) = slot.lease_mut() else { return };
        self.leases.requeue(lease, now.plus(DEFERRED_DELETE_RETRY_MS));
        if slot.instance.healthy {
            let mut sick = (*slot.instance).clone();
            sick.healthy = false;
            slot.instance = Arc::new(sick);
            let (shared, previous) = (entry.key.clone(), slot.version);
            let version = self.next_version(&shared, &owner.instance, previous);
            self.set_version(&shared, &owner.instance, version);
            self.touch(&shared, Some(owner.instance.clone()), ChangeKind::InstanceHealthChanged);
        }
    }

    /// Drops a popped lease (its queue entry is gone already) and keeps the
    /// instance as a replica vouched for now.
    fn release_popped(&mut self, owner: &LeaseOwner, now: Millis) {
        let Some(slot) = self
            .services
            .get_mut(&*owner.service)
            .map(ServiceCell::get_mut)
            .and_then(|e| e.instances.get_mut(&owner.instance))
        else {
            return;
        };
        if let Some(lease) = slot.lease.take() {
            // Popped already: stopping only forgets its owner entry.
            self.leases.stop(&lease);
            self.preservation.lease_ended(lease.timing.renewals_per_hour());
        }
        slot.vouched = now;
    }
}
