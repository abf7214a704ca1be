//! Instance operations of the [`Registry`]: register, update, patch,
//! deregister and heartbeat, and reads of single instances and services.

use std::sync::Arc;

use super::{InstanceSlot, Registry, ServiceSnapshot, SnapshotInstance, folded_name};
use crate::change::ChangeKind;
use crate::error::RegistryError;
use crate::lease::{LeaseOwner, LeaseTimes, LeaseTiming};
use crate::model::{InstancePatch, InstanceSpec, LeaseOverrides, Mode, ServiceSettings};
use crate::name::{GroupName, InstanceKey, NamespaceId, ServiceKey, ServiceName};
use crate::replica::Version;
use crate::time::Millis;

impl Registry {
    pub(super) fn check_mode(&self, namespace: &NamespaceId, spec: &InstanceSpec) -> Result<Mode, RegistryError> {
        let mode = self.mode_of(namespace)?;
        if let Some(ephemeral) = spec.ephemeral
            && ephemeral != mode.is_ephemeral()
        {
            let detail = if ephemeral {
                "ephemeral instances need an ap namespace; register without ephemeral=true or use an ap namespace"
            } else {
                "persistent instances need a cp namespace; register without ephemeral=false or use a cp namespace"
            };
            return Err(RegistryError::ModeMismatch {
                namespace: namespace.to_string(),
                mode,
                detail: detail.to_owned(),
            });
        }
        Ok(mode)
    }

    pub(super) fn instance_not_found(key: &ServiceKey, instance: &InstanceKey) -> RegistryError {
        RegistryError::InstanceNotFound {
            namespace: key.namespace.to_string(),
            service: key.grouped_name(),
            instance: instance.to_string(),
        }
    }

    /// Registers an instance, creating its service if needed. Registering an
    /// instance that exists replaces its fields and renews its lease; when nothing
    /// changed the revision stays as it was.
    ///
    /// # Errors
    /// Invalid fields, namespace not found, or a mode mismatch.
    pub fn register_instance(
        &mut self,
        key: &ServiceKey,
        spec: InstanceSpec,
        now: Millis,
    ) -> Result<u64, RegistryError> {
        spec.validate()?;
        let mode = self.check_mode(&key.namespace, &spec)?;
        self.ensure_service(key, ServiceSettings::default())?;
        let timing = LeaseTiming::resolve(self.config.lease, LeaseOverrides::from_metadata(&spec.metadata)?);
        let (context, entry, changes) = self.split(key);
        let entry = entry.ok_or_else(|| Self::service_not_found(key))?;
        Ok(context.register(entry, spec, mode, timing, now, changes))
    }

    /// Replaces the fields of an existing instance (Nacos `PUT /instance`).
    ///
    /// # Errors
    /// Invalid fields, mode mismatch, or the instance does not exist.
    pub fn update_instance(&mut self, key: &ServiceKey, spec: InstanceSpec, now: Millis) -> Result<u64, RegistryError> {
        spec.validate()?;
        self.check_mode(&key.namespace, &spec)?;
        let exists = self.services.get_mut(key).is_some_and(|e| e.get_mut().instances.contains_key(&spec.key));
        if !exists {
            return Err(Self::instance_not_found(key, &spec.key));
        }
        self.register_instance(key, spec, now)
    }

    /// Changes some fields of an existing instance; metadata entries are merged.
    ///
    /// # Errors
    /// Invalid fields, or the instance does not exist.
    pub fn patch_instance(
        &mut self,
        key: &ServiceKey,
        instance: &InstanceKey,
        patch: InstancePatch,
        now: Millis,
    ) -> Result<u64, RegistryError> {
        self.mode_of(&key.namespace)?;
        let current = self
            .services
            .get_mut(key)
            .and_then(|e| e.get_mut().instances.get(instance))
            .map(|slot| slot.instance.clone())
            .ok_or_else(|| Self::instance_not_found(key, instance))?;
        if patch.healthy.is_some() && !current.ephemeral {
            let check = self.health_check(key, &current.key.cluster);
            if check != crate::model::HealthCheck::None {
                return Err(RegistryError::invalid(
                    "healthy",
                    format!(
                        "cluster '{}' of service '{}' is health-checked by {}; set its health_check to none to set \
                         health by hand",
                        current.key.cluster,
                        key.grouped_name(),
                        check.kind()
                    ),
                ));
            }
        }
        let mut metadata = current.metadata.clone();
        if let Some(extra) = patch.metadata {
            metadata.extend(extra);
        }
        for key in &patch.remove_metadata {
            metadata.remove(key);
        }
        let spec = InstanceSpec {
            key: current.key.clone(),
            weight: patch.weight.unwrap_or(current.weight),
            healthy: patch.healthy.unwrap_or(current.healthy),
            enabled: patch.enabled.unwrap_or(current.enabled),
            ephemeral: None,
            metadata,
            custom_id: current.custom_id.as_deref().map(str::to_owned),
        };
        let renewed_at = self
            .services
            .get_mut(key)
            .and_then(|e| e.get_mut().instances.get(instance))
            .and_then(InstanceSlot::current_lease)
            .map_or(now, |l| l.last_renew);
        // A patch is not a heartbeat: keep the lease's last renewal.
        self.register_instance(key, spec, renewed_at)
    }

    /// Removes an instance; a replicated one leaves a tombstone stamped `now`.
    ///
    /// # Errors
    /// Namespace, service or instance not found.
    pub fn deregister_instance(
        &mut self,
        key: &ServiceKey,
        instance: &InstanceKey,
        now: Millis,
    ) -> Result<u64, RegistryError> {
        self.mode_of(&key.namespace)?;
        self.delete_local(key, instance, ChangeKind::InstanceDeregistered, now)
            .ok_or_else(|| Self::instance_not_found(key, instance))
    }

    /// Removes an instance because of a change made on this node: an
    /// ephemeral one is stamped with a new version and leaves a tombstone.
    pub(super) fn delete_local(
        &mut self,
        key: &ServiceKey,
        instance: &InstanceKey,
        kind: ChangeKind,
        now: Millis,
    ) -> Option<u64> {
        let (context, entry, changes) = self.split(key);
        context.delete_local(entry?, instance, kind, now, changes)
    }

    pub(super) fn remove_instance(
        &mut self,
        key: &ServiceKey,
        instance: &InstanceKey,
        kind: ChangeKind,
    ) -> Option<u64> {
        let (context, entry, changes) = self.split(key);
        context.remove(entry?, instance, kind, changes)
    }

    /// Renews an ephemeral instance's lease, turning it healthy if it was not.
    /// Returns the lease timings, so the caller can tell the client its interval.
    ///
    /// # Errors
    /// Namespace, service or instance not found; mode mismatch for persistent instances.
    pub fn heartbeat(
        &mut self,
        key: &ServiceKey,
        instance: &InstanceKey,
        now: Millis,
    ) -> Result<LeaseTiming, RegistryError> {
        let mode = self.mode_of(&key.namespace)?;
        if !mode.is_ephemeral() {
            return Err(RegistryError::ModeMismatch {
                namespace: key.namespace.to_string(),
                mode,
                detail: "instances of cp namespaces are health-checked by the server, not kept alive by heartbeats"
                    .to_owned(),
            });
        }
        let entry =
            self.services.get_mut(key).map(|e| e.get_mut()).ok_or_else(|| Self::instance_not_found(key, instance))?;
        let slot = entry.instances.get_mut(instance).ok_or_else(|| Self::instance_not_found(key, instance))?;
        if slot.binding.is_some() {
            // Its connection keeps it alive; a beat has nothing to renew.
            let overrides = LeaseOverrides::from_metadata(&slot.instance.metadata)?;
            return Ok(LeaseTiming::resolve(self.config.lease, overrides));
        }
        if slot.lease.is_none() {
            // A replica beaten here (its owner is this node now, or cannot be
            // reached): this node runs its lease from now on.
            let timing =
                LeaseTiming::resolve(self.config.lease, LeaseOverrides::from_metadata(&slot.instance.metadata)?);
            self.preservation.lease_started(timing.renewals_per_hour(), now);
            let owner = LeaseOwner { service: entry.key.clone(), instance: instance.clone() };
            slot.lease = Some(self.leases.start(owner, timing, now));
        }
        let was_healthy = slot.instance.healthy;
        let Some(lease) = slot.lease_mut() else {
            return Err(Self::instance_not_found(key, instance));
        };
        lease.last_renew = now;
        let timing = lease.timing;
        self.preservation.renewed(now);
        if was_healthy {
            return Ok(timing);
        }
        // Back from unhealthy: its queue entry may sit at the delete deadline,
        // later than the new unhealthy deadline, so move it.
        let at = lease.unhealthy_at();
        self.leases.reschedule(lease, at);
        let mut healthy = (*slot.instance).clone();
        healthy.healthy = true;
        slot.instance = Arc::new(healthy);
        let (shared, previous) = (entry.key.clone(), slot.version);
        let version = self.next_version(&shared, instance, previous);
        self.set_version(&shared, instance, version);
        self.touch(&shared, Some(instance.clone()), ChangeKind::InstanceHealthChanged);
        Ok(timing)
    }

    /// A heartbeat that changes nothing visible, under the shared lock: the
    /// instance is alive, healthy and leased here (not bound to a
    /// connection), so the beat only moves its renewal time and counts for
    /// self-preservation, both through atomics. Returns the lease timings,
    /// or `None` when the beat needs [`Self::heartbeat`] under the exclusive
    /// lock (it would change something, start a lease, or fail). Either way
    /// the outcome is the same as [`Self::heartbeat`]'s.
    #[must_use]
    pub fn renew_quietly(&self, key: &ServiceKey, instance: &InstanceKey, now: Millis) -> Option<LeaseTiming> {
        if !self.namespaces.get(&key.namespace)?.spec.mode.is_ephemeral() {
            return None;
        }
        let entry = self.services.get(key)?.read_recursive();
        let slot = entry.instances.get(instance)?;
        if slot.binding.is_some() || !slot.instance.healthy {
            return None;
        }
        let timing = slot.lease.as_ref()?.timing;
        slot.quiet.record(now);
        self.preservation.renewed(now);
        Some(timing)
    }

    /// The lease timings a heartbeat of a healthy **replica** would get (an
    /// ephemeral instance whose lease another node runs, not bound to a
    /// connection), with the replica's version; `None` for anything else.
    /// The AP engine answers such a beat at once and passes it on to the
    /// owner in a batch.
    #[must_use]
    pub fn replica_beat_timing(&self, key: &ServiceKey, instance: &InstanceKey) -> Option<(LeaseTiming, Version)> {
        if !self.namespaces.get(&key.namespace)?.spec.mode.is_ephemeral() {
            return None;
        }
        let entry = self.services.get(key)?.read_recursive();
        let slot = entry.instances.get(instance)?;
        if slot.binding.is_some() || slot.lease.is_some() || !slot.instance.healthy {
            return None;
        }
        let overrides = LeaseOverrides::from_metadata(&slot.instance.metadata).ok()?;
        Some((LeaseTiming::resolve(self.config.lease, overrides), slot.version))
    }

    /// Reads one instance with its lease timings.
    ///
    /// # Errors
    /// Namespace, service or instance not found.
    pub fn instance(&self, key: &ServiceKey, instance: &InstanceKey) -> Result<SnapshotInstance, RegistryError> {
        self.mode_of(&key.namespace)?;
        let entry = self.services.get(key).ok_or_else(|| Self::instance_not_found(key, instance))?.read_recursive();
        let slot = entry.instances.get(instance).ok_or_else(|| Self::instance_not_found(key, instance))?;
        Ok(self.snapshot_instance(slot))
    }

    pub(super) fn snapshot_instance(&self, slot: &InstanceSlot) -> SnapshotInstance {
        let current = slot.current_lease();
        let timing = current
            .map_or_else(|| LeaseTiming::resolve(self.config.lease, LeaseOverrides::default()), |lease| lease.timing);
        let lease = current.as_ref().map(LeaseTimes::from);
        SnapshotInstance { instance: slot.instance.clone(), timing, lease }
    }

    /// Copies a service for a list. An unknown service in a known namespace
    /// reads as empty with the namespace's revision (see
    /// [`Registry::service_revision`]), so a watch can wait for it to appear.
    ///
    /// # Errors
    /// Namespace not found.
    pub fn snapshot(&self, key: &ServiceKey) -> Result<ServiceSnapshot, RegistryError> {
        let mode = self.mode_of(&key.namespace)?;
        Ok(match self.services.get(key).map(|e| e.read_recursive()) {
            Some(entry) => ServiceSnapshot {
                key: key.clone(),
                mode,
                exists: true,
                revision: entry.revision,
                protect_threshold: entry.settings.protect_threshold,
                instances: entry.instances.values().map(|slot| self.snapshot_instance(slot)).collect(),
            },
            None => ServiceSnapshot {
                key: key.clone(),
                mode,
                exists: false,
                revision: self.absent_service_revision(&key.namespace),
                protect_threshold: 0.0,
                instances: Vec::new(),
            },
        })
    }

    /// Finds a service by names as a client spelled them: exactly, or else
    /// ignoring ASCII case. `None` if no such service exists.
    #[must_use]
    pub fn resolve_service(&self, namespace: &str, group: &str, service: &str) -> Option<ServiceKey> {
        let exact = (|| {
            Some(ServiceKey::new(
                NamespaceId::new(namespace).ok()?,
                GroupName::new(group).ok()?,
                ServiceName::new(service).ok()?,
            ))
        })();
        if let Some(key) = exact.filter(|k| self.services.contains_key(k)) {
            return Some(key);
        }
        self.folded.get(&folded_name(namespace, group, service)).cloned()
    }

    /// Revision of a service, for blocking queries. Revisions never go back
    /// and are never 0 (Consul's index rules): an absent service reads as its
    /// namespace's revision, which is at least that of the service's deletion
    /// (a deletion stamps the namespace too).
    #[must_use]
    pub fn service_revision(&self, key: &ServiceKey) -> u64 {
        self.services
            .get(key)
            .map_or_else(|| self.absent_service_revision(&key.namespace), |e| e.read_recursive().revision)
    }

    /// What an absent service of `namespace` reads as (see [`Self::service_revision`]).
    fn absent_service_revision(&self, namespace: &NamespaceId) -> u64 {
        self.namespace_revision(namespace)
    }

    /// Revision of a namespace, for blocking queries; never 0. An absent
    /// namespace reads as the node-wide revision (at least that of its deletion).
    #[must_use]
    pub fn namespace_revision(&self, id: &NamespaceId) -> u64 {
        self.namespaces.get(id).map_or_else(|| self.revision(), |e| e.revision.get()).max(1)
    }
}
