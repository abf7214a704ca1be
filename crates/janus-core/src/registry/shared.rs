//! Instance writes that hold one service's lock instead of the whole
//! registry's (see [`Registry`]'s docs): registering an instance in a
//! service that exists, and removing one.
//!
//! [`Registry::register_instance_shared`] and
//! [`Registry::deregister_instance_shared`] run under the store's shared
//! lock. They decline (hand their input back) what would change the
//! registry's structure or another index — a new service, an instance bound
//! to a client connection — and writes of `cp` namespaces (Raft applies),
//! and the caller then makes the same write under the exclusive lock. Both paths run the one set of rules below
//! ([`Context::register`], [`Context::delete_local`]), so a write has the same
//! outcome whichever lock it took. A write under the shared lock publishes
//! its changes itself, while it still holds the service's lock, so every
//! change of a service is published in revision order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::Mutex;

use super::replica::Replication;
use super::{InstanceSlot, NamespaceEntry, Registry, ServiceCell, ServiceEntry, stamp};
use crate::change::{Change, ChangeKind};
use crate::counter::SpreadCounter;
use crate::error::RegistryError;
use crate::lease::{LeaseOwner, LeaseTiming, Leases};
use crate::model::{InstanceSpec, LeaseOverrides, Mode};
use crate::name::{InstanceKey, NamespaceId, ServiceKey};
use crate::preservation::Preservation;
use crate::replica::Version;
use crate::time::Millis;

/// What an instance write reaches besides its own service: the parts of the
/// registry that are atomic or behind locks of their own.
pub(super) struct Context<'a> {
    pub(super) revision: &'a AtomicU64,
    pub(super) namespaces: &'a BTreeMap<NamespaceId, NamespaceEntry>,
    pub(super) leases: &'a Leases,
    pub(super) preservation: &'a Preservation,
    pub(super) instance_count: &'a SpreadCounter,
    pub(super) replication: Option<&'a Mutex<Replication>>,
    pub(super) emptied: &'a Mutex<HashMap<ServiceKey, Option<Millis>>>,
}

impl Context<'_> {
    /// Stamps the service with a new revision and queues the change.
    fn touch(
        &self,
        entry: &mut ServiceEntry,
        instance: Option<InstanceKey>,
        kind: ChangeKind,
        changes: &mut Vec<Change>,
    ) -> u64 {
        let change = stamp(self.revision, self.namespaces, entry, instance, kind);
        let revision = change.revision;
        changes.push(change);
        revision
    }

    /// The version a local change of an instance gets: above anything seen for it.
    pub(super) fn next_version(&self, service: &ServiceKey, instance: &InstanceKey, current: Version) -> Version {
        match self.replication {
            Some(replication) => replication.lock().next_version(service, instance, current),
            None => Version { counter: current.counter + 1, node: 0 },
        }
    }

    /// Stamps `slot` (a live instance changed here) with its next version and
    /// queues it for peers.
    fn restamp(&self, slot: &mut InstanceSlot, service: &Arc<ServiceKey>, instance: &InstanceKey) {
        slot.version = self.next_version(service, instance, slot.version);
        if let Some(replication) = self.replication {
            replication.lock().queue(service, instance);
        }
    }

    /// Registers `spec` in the existing service `entry` (of a namespace of
    /// `mode`), with lease `timing`; returns the service's revision. See
    /// [`Registry::register_instance`].
    pub(super) fn register(
        &self,
        entry: &mut ServiceEntry,
        spec: InstanceSpec,
        mode: Mode,
        timing: LeaseTiming,
        now: Millis,
        changes: &mut Vec<Change>,
    ) -> u64 {
        let service = entry.key.clone();
        let mut instance_key = spec.key.clone();
        if let Some(slot) = entry.instances.get_mut(&instance_key) {
            instance_key.cluster = slot.instance.key.cluster.clone();
            let updated = spec.into_instance(instance_key.clone(), mode.is_ephemeral());
            // A registration over HTTP takes a bound instance off its
            // connection: from now on a lease keeps it (see [`super::bound`]).
            slot.binding = None;
            if slot.lease.is_none() && mode.is_ephemeral() {
                // A replica written here: this node runs its lease from now on.
                self.preservation.lease_started(timing.renewals_per_hour(), now);
                let owner = LeaseOwner { service: service.clone(), instance: instance_key.clone() };
                slot.lease = Some(self.leases.start(owner, timing, now));
            }
            if let Some(lease) = slot.lease_mut() {
                if lease.timing != timing {
                    self.preservation.rate_changed(lease.timing.renewals_per_hour(), timing.renewals_per_hour());
                }
                if now > lease.last_renew {
                    // A re-registration is a sign of life (a patch passes the old renewal time).
                    self.preservation.renewed(now);
                }
                lease.last_renew = now;
                lease.timing = timing;
                let at = lease.unhealthy_at();
                self.leases.reschedule(lease, at);
            }
            if *slot.instance == updated {
                return entry.revision;
            }
            slot.instance = Arc::new(updated);
            if mode.is_ephemeral() {
                self.restamp(slot, &service, &instance_key);
            }
            return self.touch(entry, Some(instance_key), ChangeKind::InstanceUpdated, changes);
        }
        instance_key.cluster = entry.intern(&spec.key.cluster);
        let instance = spec.into_instance(instance_key.clone(), mode.is_ephemeral());
        let lease = mode.is_ephemeral().then(|| {
            self.preservation.lease_started(timing.renewals_per_hour(), now);
            let owner = LeaseOwner { service: service.clone(), instance: instance_key.clone() };
            self.leases.start(owner, timing, now)
        });
        let mut slot = InstanceSlot::new(Arc::new(instance), lease, Version::default(), now);
        if mode.is_ephemeral() {
            self.restamp(&mut slot, &service, &instance_key);
        }
        entry.instances.insert(instance_key.clone(), slot);
        self.instance_count.add(1);
        self.touch(entry, Some(instance_key), ChangeKind::InstanceRegistered, changes)
    }

    /// Removes an instance of `entry` because of a change made on this node:
    /// an ephemeral one is stamped with a new version and leaves a tombstone.
    /// `None` if the service does not hold it.
    pub(super) fn delete_local(
        &self,
        entry: &mut ServiceEntry,
        instance: &InstanceKey,
        kind: ChangeKind,
        now: Millis,
        changes: &mut Vec<Change>,
    ) -> Option<u64> {
        let slot = entry.instances.get(instance)?;
        if slot.instance.ephemeral {
            let version = self.next_version(&entry.key, instance, slot.version);
            if let Some(replication) = self.replication {
                replication.lock().bury(&entry.key, instance, version, now);
            }
        }
        self.remove(entry, instance, kind, changes)
    }

    /// Removes an instance of `entry` (see [`Registry::remove_instance`]).
    pub(super) fn remove(
        &self,
        entry: &mut ServiceEntry,
        instance: &InstanceKey,
        kind: ChangeKind,
        changes: &mut Vec<Change>,
    ) -> Option<u64> {
        let slot = entry.instances.remove(instance)?;
        entry.release(&instance.cluster);
        if let Some(lease) = slot.lease {
            self.leases.stop(&lease);
            self.preservation.lease_ended(lease.timing.renewals_per_hour());
        }
        self.instance_count.sub(1);
        if !entry.defined && entry.instances.is_empty() {
            self.emptied.lock().insert((*entry.key).clone(), None);
        }
        Some(self.touch(entry, Some(instance.clone()), kind, changes))
    }
}

impl Registry {
    /// The parts of the registry an instance write reaches besides its service.
    pub(super) fn context(&self) -> Context<'_> {
        Context {
            revision: &self.revision,
            namespaces: &self.namespaces,
            leases: &self.leases,
            preservation: &self.preservation,
            instance_count: &self.instance_count,
            replication: self.replication.as_ref(),
            emptied: &self.emptied,
        }
    }

    /// [`Self::context`], the service `key` (if it exists) and the change
    /// queue, for a write under `&mut self`.
    pub(super) fn split(&mut self, key: &ServiceKey) -> (Context<'_>, Option<&mut ServiceEntry>, &mut Vec<Change>) {
        let Self {
            revision,
            namespaces,
            services,
            leases,
            preservation,
            instance_count,
            changes,
            replication,
            emptied,
            ..
        } = self;
        let context = Context {
            revision,
            namespaces,
            leases,
            preservation,
            instance_count,
            replication: replication.as_ref(),
            emptied,
        };
        (context, services.get_mut(key).map(ServiceCell::get_mut), changes)
    }

    /// [`Self::register_instance`] under the shared lock, holding only the
    /// service's lock, for a service that exists and an instance not bound
    /// to a connection; `publish` gets the changes before the service's lock
    /// is released. `Err(spec)`: the write needs the exclusive lock.
    ///
    /// # Errors
    /// The inner error is [`Self::register_instance`]'s.
    pub fn register_instance_shared(
        &self,
        key: &ServiceKey,
        spec: InstanceSpec,
        now: Millis,
        publish: impl FnOnce(&[Change]),
    ) -> Result<Result<u64, RegistryError>, InstanceSpec> {
        let Some(service) = self.services.get(key) else { return Err(spec) };
        if let Err(error) = spec.validate() {
            return Ok(Err(error));
        }
        let mode = match self.check_mode(&key.namespace, &spec) {
            // Persistent instances change only by Raft applies, under the exclusive lock.
            Ok(Mode::Cp) => return Err(spec),
            Ok(mode) => mode,
            Err(error) => return Ok(Err(error)),
        };
        let timing = match LeaseOverrides::from_metadata(&spec.metadata) {
            Ok(overrides) => LeaseTiming::resolve(self.config.lease, overrides),
            Err(error) => return Ok(Err(error)),
        };
        let mut entry = service.write();
        if entry.instances.get(&spec.key).is_some_and(|slot| slot.binding.is_some()) {
            return Err(spec);
        }
        let mut changes = Vec::new();
        let revision = self.context().register(&mut entry, spec, mode, timing, now, &mut changes);
        publish(&changes);
        Ok(Ok(revision))
    }

    /// [`Self::deregister_instance`] under the shared lock, holding only the
    /// service's lock, for an instance not bound to a connection; `publish`
    /// gets the changes before the service's lock is released. `None`: the
    /// write needs the exclusive lock.
    ///
    /// # Errors
    /// The inner error is [`Self::deregister_instance`]'s.
    pub fn deregister_instance_shared(
        &self,
        key: &ServiceKey,
        instance: &InstanceKey,
        now: Millis,
        publish: impl FnOnce(&[Change]),
    ) -> Option<Result<u64, RegistryError>> {
        match self.mode_of(&key.namespace) {
            Err(error) => return Some(Err(error)),
            // Persistent instances change only by Raft applies, under the exclusive lock.
            Ok(Mode::Cp) => return None,
            Ok(Mode::Ap) => {}
        }
        let Some(service) = self.services.get(key) else {
            return Some(Err(Self::instance_not_found(key, instance)));
        };
        let mut entry = service.write();
        match entry.instances.get(instance) {
            None => return Some(Err(Self::instance_not_found(key, instance))),
            Some(slot) if slot.binding.is_some() => return None,
            Some(_) => {}
        }
        let mut changes = Vec::new();
        let revision =
            self.context().delete_local(&mut entry, instance, ChangeKind::InstanceDeregistered, now, &mut changes);
        publish(&changes);
        Some(revision.ok_or_else(|| Self::instance_not_found(key, instance)))
    }
}
