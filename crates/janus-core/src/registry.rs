//! [`Registry`]: the in-memory state machine of namespaces, services and instances.
//!
//! Every write takes `now` and bumps one node-wide revision, stamping the service
//! and namespace it touched, and queues a [`Change`]. Lookups are hash-indexed:
//! register, heartbeat and get are O(1) in the number of instances held, a list is
//! O(k) in the size of the service, and lease expiry pops a deadline queue.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::change::{Change, ChangeKind};
use crate::error::RegistryError;
use crate::lease::{Lease, LeaseDefaults, LeaseOwner, LeaseQueue, LeaseTiming};
use crate::model::{
    Instance, InstancePatch, InstanceSpec, LeaseOverrides, Mode, NamespaceInfo, NamespaceSpec, ServiceInfo,
    ServicePatch, ServiceSettings,
};
use crate::name::{ClusterName, GroupName, InstanceKey, NamespaceId, ServiceKey, ServiceName};
use crate::preservation::{Preservation, PreservationConfig};
use crate::replica::{ReplicationConfig, Version};
use crate::time::Millis;
use crate::validate;

/// Registry settings.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RegistryConfig {
    /// Default lease timings.
    pub lease: LeaseDefaults,
    /// Self-preservation.
    pub preservation: PreservationConfig,
    /// Set in a cluster: ephemeral instances carry versions, local changes
    /// are queued for the AP engine to send, deletions leave tombstones.
    pub replication: Option<ReplicationConfig>,
}

/// How long a deletion held back (self-preservation or the per-sweep cap) waits
/// before it is tried again.
pub const DEFERRED_DELETE_RETRY_MS: u64 = 5_000;

#[derive(Debug)]
struct NamespaceEntry {
    spec: NamespaceSpec,
    revision: u64,
    services: BTreeSet<(GroupName, ServiceName)>,
}

#[derive(Debug)]
struct InstanceSlot {
    instance: Arc<Instance>,
    /// The lease, on the node that runs it (the instance's owner, or the node
    /// that took a write its owner could not). Replicas have none.
    lease: Option<Lease>,
    /// Replication version of an ephemeral instance (zero when not replicated).
    version: Version,
    /// When this node last heard the instance's owner vouch for it (replicas).
    vouched: Millis,
}

#[derive(Debug)]
struct ServiceEntry {
    key: Arc<ServiceKey>,
    settings: ServiceSettings,
    /// Created or changed through the service API (a definition, replicated
    /// by Raft), rather than implied by an ephemeral registration.
    defined: bool,
    revision: u64,
    instances: HashMap<InstanceKey, InstanceSlot>,
    /// Interned cluster names with the number of instances using each.
    clusters: HashMap<ClusterName, u32>,
}

impl ServiceEntry {
    fn new(key: Arc<ServiceKey>, settings: ServiceSettings) -> Self {
        Self { key, settings, defined: false, revision: 0, instances: HashMap::new(), clusters: HashMap::new() }
    }

    /// Shares one allocation per cluster name among a service's instances.
    fn intern(&mut self, cluster: &ClusterName) -> ClusterName {
        if let Some((name, count)) = self.clusters.get_key_value(cluster) {
            let name = name.clone();
            let count = *count;
            self.clusters.insert(name.clone(), count + 1);
            name
        } else {
            self.clusters.insert(cluster.clone(), 1);
            cluster.clone()
        }
    }

    fn release(&mut self, cluster: &ClusterName) {
        if let Some(count) = self.clusters.get_mut(cluster) {
            *count -= 1;
            if *count == 0 {
                self.clusters.remove(cluster);
            }
        }
    }
}

/// An instance of a [`ServiceSnapshot`] with the lease timings it runs with.
#[derive(Debug, Clone)]
pub struct SnapshotInstance {
    /// The instance.
    pub instance: Arc<Instance>,
    /// Its lease timings (defaults for persistent instances).
    pub timing: LeaseTiming,
}

/// A consistent copy of one service, taken under the lock and read outside it.
#[derive(Debug, Clone)]
pub struct ServiceSnapshot {
    /// Which service.
    pub key: ServiceKey,
    /// Mode of its namespace.
    pub mode: Mode,
    /// Whether the service exists (an unknown service reads as empty, revision 0).
    pub exists: bool,
    /// Revision of the service.
    pub revision: u64,
    /// Nacos protect threshold.
    pub protect_threshold: f64,
    /// All instances, unfiltered.
    pub instances: Vec<SnapshotInstance>,
}

/// What one expiry pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryReport {
    /// Instances turned unhealthy.
    pub marked_unhealthy: usize,
    /// Instances deleted.
    pub deleted: usize,
    /// Deletions held back by self-preservation or the per-sweep cap.
    pub deferred: usize,
    /// Leases this node ran without owning the instance, handed back (the
    /// instance stays as a replica of its owner).
    pub released: usize,
    /// Whether self-preservation was engaged during the pass.
    pub preservation_active: bool,
}

/// Counters for `/health` and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistryStats {
    /// Namespaces.
    pub namespaces: u64,
    /// Services.
    pub services: u64,
    /// Instances.
    pub instances: u64,
    /// Live leases (ephemeral instances).
    pub leases: u64,
    /// Node-wide revision.
    pub revision: u64,
    /// Renewals in the last minute.
    pub renewals_last_min: u64,
    /// Renewals expected per minute.
    pub expected_renewals_per_min: u64,
    /// Whether self-preservation is engaged.
    pub self_preservation: bool,
}

/// The registry state machine.
#[derive(Debug)]
pub struct Registry {
    config: RegistryConfig,
    revision: u64,
    namespaces: BTreeMap<NamespaceId, NamespaceEntry>,
    services: HashMap<ServiceKey, ServiceEntry>,
    leases: LeaseQueue,
    preservation: Preservation,
    instance_count: u64,
    changes: Vec<Change>,
    /// Services by ASCII-lowercased `namespace/group/service`, for lookups that
    /// must ignore case (DNS). The first service to claim a folded name keeps it.
    folded: HashMap<String, ServiceKey>,
    /// Versions, outgoing changes and tombstones, in a cluster.
    replication: Option<replica::Replication>,
}

fn folded_name(namespace: &str, group: &str, service: &str) -> String {
    let mut name = String::with_capacity(namespace.len() + group.len() + service.len() + 2);
    for (i, part) in [namespace, group, service].into_iter().enumerate() {
        if i > 0 {
            name.push('/');
        }
        name.extend(part.chars().map(|c| c.to_ascii_lowercase()));
    }
    name
}

impl Registry {
    /// A registry holding only the `public` namespace (mode `ap`).
    #[must_use]
    pub fn new(config: RegistryConfig) -> Self {
        let mut namespaces = BTreeMap::new();
        let public = NamespaceSpec {
            id: NamespaceId::public(),
            name: NamespaceId::public().to_string(),
            description: "default namespace".to_owned(),
            mode: Mode::Ap,
        };
        namespaces.insert(public.id.clone(), NamespaceEntry { spec: public, revision: 0, services: BTreeSet::new() });
        Self {
            config,
            revision: 0,
            namespaces,
            services: HashMap::new(),
            leases: LeaseQueue::default(),
            preservation: Preservation::new(config.preservation),
            instance_count: 0,
            changes: Vec::new(),
            folded: HashMap::new(),
            replication: config.replication.map(replica::Replication::new),
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Node-wide revision: the revision of the latest change.
    #[must_use]
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Changes made since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    fn next_revision(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    // === namespaces ===

    /// Creates a namespace.
    ///
    /// # Errors
    /// [`RegistryError::AlreadyExists`] if the id is taken.
    pub fn create_namespace(&mut self, spec: NamespaceSpec) -> Result<NamespaceInfo, RegistryError> {
        if self.namespaces.contains_key(&spec.id) {
            return Err(RegistryError::AlreadyExists { what: "namespace".to_owned(), name: spec.id.to_string() });
        }
        let revision = self.next_revision();
        let id = spec.id.clone();
        self.namespaces.insert(id.clone(), NamespaceEntry { spec, revision, services: BTreeSet::new() });
        self.changes.push(Change {
            revision,
            namespace: id.clone(),
            service: None,
            instance: None,
            kind: ChangeKind::NamespaceCreated,
        });
        self.namespace(&id)
    }

    /// Changes a namespace's display name or description (never its mode).
    ///
    /// # Errors
    /// Not found, or invalid text.
    pub fn update_namespace(
        &mut self,
        id: &NamespaceId,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<NamespaceInfo, RegistryError> {
        if let Some(name) = &name {
            validate::check_text("name", name, validate::MAX_DISPLAY_NAME)?;
        }
        if let Some(description) = &description {
            validate::check_text("description", description, validate::MAX_DESCRIPTION)?;
        }
        if !self.namespaces.contains_key(id) {
            return Err(RegistryError::NamespaceNotFound(id.to_string()));
        }
        let revision = self.next_revision();
        let entry = self.namespaces.get_mut(id).ok_or_else(|| RegistryError::NamespaceNotFound(id.to_string()))?;
        if let Some(name) = name {
            entry.spec.name = name;
        }
        if let Some(description) = description {
            entry.spec.description = description;
        }
        entry.revision = revision;
        self.changes.push(Change {
            revision,
            namespace: id.clone(),
            service: None,
            instance: None,
            kind: ChangeKind::NamespaceUpdated,
        });
        self.namespace(id)
    }

    /// Deletes an empty namespace; `public` cannot be deleted.
    ///
    /// # Errors
    /// Not found, `public`, or still holding services.
    pub fn delete_namespace(&mut self, id: &NamespaceId) -> Result<(), RegistryError> {
        if *id == NamespaceId::public() {
            return Err(RegistryError::Forbidden("namespace 'public' is built in and cannot be deleted".to_owned()));
        }
        let entry = self.namespaces.get(id).ok_or_else(|| RegistryError::NamespaceNotFound(id.to_string()))?;
        if !entry.services.is_empty() {
            return Err(RegistryError::NotEmpty {
                what: "namespace".to_owned(),
                name: id.to_string(),
                detail: format!("it holds {} service(s); delete them first", entry.services.len()),
            });
        }
        self.namespaces.remove(id);
        let revision = self.next_revision();
        self.changes.push(Change {
            revision,
            namespace: id.clone(),
            service: None,
            instance: None,
            kind: ChangeKind::NamespaceDeleted,
        });
        Ok(())
    }

    /// Reads one namespace.
    ///
    /// # Errors
    /// [`RegistryError::NamespaceNotFound`].
    pub fn namespace(&self, id: &NamespaceId) -> Result<NamespaceInfo, RegistryError> {
        let entry = self.namespaces.get(id).ok_or_else(|| RegistryError::NamespaceNotFound(id.to_string()))?;
        Ok(NamespaceInfo {
            spec: entry.spec.clone(),
            service_count: entry.services.len() as u64,
            revision: entry.revision,
        })
    }

    /// All namespaces, ordered by id.
    #[must_use]
    pub fn namespaces(&self) -> Vec<NamespaceInfo> {
        self.namespaces
            .values()
            .map(|e| NamespaceInfo {
                spec: e.spec.clone(),
                service_count: e.services.len() as u64,
                revision: e.revision,
            })
            .collect()
    }

    /// The mode of a namespace.
    ///
    /// # Errors
    /// [`RegistryError::NamespaceNotFound`].
    pub fn mode_of(&self, id: &NamespaceId) -> Result<Mode, RegistryError> {
        self.namespaces.get(id).map(|e| e.spec.mode).ok_or_else(|| RegistryError::NamespaceNotFound(id.to_string()))
    }

    // === services ===

    fn service_not_found(key: &ServiceKey) -> RegistryError {
        RegistryError::ServiceNotFound {
            namespace: key.namespace.to_string(),
            group: key.group.to_string(),
            service: key.service.to_string(),
        }
    }

    fn service_info(&self, entry: &ServiceEntry) -> ServiceInfo {
        let mode = self.namespaces.get(&entry.key.namespace).map_or(Mode::Ap, |n| n.spec.mode);
        ServiceInfo {
            key: (*entry.key).clone(),
            mode,
            settings: entry.settings.clone(),
            instance_count: entry.instances.len() as u64,
            revision: entry.revision,
        }
    }

    /// Stamps a service and its namespace with a new revision and queues the change.
    fn touch(&mut self, key: &Arc<ServiceKey>, instance: Option<InstanceKey>, kind: ChangeKind) -> u64 {
        let revision = self.next_revision();
        if let Some(entry) = self.services.get_mut(&**key) {
            entry.revision = revision;
        }
        if let Some(ns) = self.namespaces.get_mut(&key.namespace) {
            ns.revision = revision;
        }
        self.changes.push(Change {
            revision,
            namespace: key.namespace.clone(),
            service: Some(key.clone()),
            instance,
            kind,
        });
        revision
    }

    /// Creates the service entry if absent; returns whether it was created.
    fn ensure_service(&mut self, key: &ServiceKey, settings: ServiceSettings) -> Result<bool, RegistryError> {
        if self.services.contains_key(key) {
            return Ok(false);
        }
        let ns = self
            .namespaces
            .get_mut(&key.namespace)
            .ok_or_else(|| RegistryError::NamespaceNotFound(key.namespace.to_string()))?;
        ns.services.insert((key.group.clone(), key.service.clone()));
        self.folded
            .entry(folded_name(key.namespace.as_str(), key.group.as_str(), key.service.as_str()))
            .or_insert_with(|| key.clone());
        let shared = Arc::new(key.clone());
        self.services.insert(key.clone(), ServiceEntry::new(shared.clone(), settings));
        self.touch(&shared, None, ChangeKind::ServiceCreated);
        Ok(true)
    }

    /// Creates a service explicitly.
    ///
    /// # Errors
    /// Namespace not found, or the service exists.
    pub fn create_service(
        &mut self,
        key: &ServiceKey,
        settings: ServiceSettings,
    ) -> Result<ServiceInfo, RegistryError> {
        if self.services.contains_key(key) {
            return Err(RegistryError::AlreadyExists { what: "service".to_owned(), name: key.to_string() });
        }
        self.ensure_service(key, settings)?;
        if let Some(entry) = self.services.get_mut(key) {
            entry.defined = true;
        }
        self.service(key)
    }

    /// Changes a service's settings.
    ///
    /// # Errors
    /// Not found, or invalid settings.
    pub fn update_service(&mut self, key: &ServiceKey, patch: ServicePatch) -> Result<ServiceInfo, RegistryError> {
        if let Some(threshold) = patch.protect_threshold {
            validate::check_protect_threshold(threshold)?;
        }
        if let Some(metadata) = &patch.metadata {
            validate::check_metadata(metadata)?;
        }
        self.mode_of(&key.namespace)?;
        let entry = self.services.get_mut(key).ok_or_else(|| Self::service_not_found(key))?;
        if let Some(threshold) = patch.protect_threshold {
            entry.settings.protect_threshold = threshold;
        }
        if let Some(metadata) = patch.metadata {
            entry.settings.metadata = metadata;
        }
        entry.defined = true;
        let shared = entry.key.clone();
        self.touch(&shared, None, ChangeKind::ServiceUpdated);
        self.service(key)
    }

    /// Deletes a service that holds no instances (as Nacos does).
    ///
    /// # Errors
    /// Not found, or instances remain.
    pub fn delete_service(&mut self, key: &ServiceKey) -> Result<(), RegistryError> {
        self.mode_of(&key.namespace)?;
        let entry = self.services.get(key).ok_or_else(|| Self::service_not_found(key))?;
        if !entry.instances.is_empty() {
            return Err(RegistryError::NotEmpty {
                what: "service".to_owned(),
                name: key.to_string(),
                detail: format!("it holds {} instance(s); deregister them first", entry.instances.len()),
            });
        }
        self.drop_service(key);
        Ok(())
    }

    /// Reads one service.
    ///
    /// # Errors
    /// Namespace or service not found.
    pub fn service(&self, key: &ServiceKey) -> Result<ServiceInfo, RegistryError> {
        self.mode_of(&key.namespace)?;
        let entry = self.services.get(key).ok_or_else(|| Self::service_not_found(key))?;
        Ok(self.service_info(entry))
    }

    /// One page (from 1) of a namespace's services ordered by group and name,
    /// optionally one group only; returns the total with the page.
    ///
    /// # Errors
    /// Namespace not found.
    pub fn services(
        &self,
        namespace: &NamespaceId,
        group: Option<&GroupName>,
        page: u64,
        page_size: u64,
    ) -> Result<(u64, Vec<ServiceInfo>), RegistryError> {
        let ns =
            self.namespaces.get(namespace).ok_or_else(|| RegistryError::NamespaceNotFound(namespace.to_string()))?;
        let skip = usize::try_from(page.saturating_sub(1).saturating_mul(page_size)).unwrap_or(usize::MAX);
        let take = usize::try_from(page_size).unwrap_or(usize::MAX);
        let lookup = |(g, s): &(GroupName, ServiceName)| {
            let key = ServiceKey::new(namespace.clone(), g.clone(), s.clone());
            self.services.get(&key).map(|e| self.service_info(e))
        };
        Ok(match group {
            Some(group) => {
                let range = ns.services.iter().filter(|(g, _)| g == group);
                let total = range.clone().count() as u64;
                (total, range.skip(skip).take(take).filter_map(lookup).collect())
            }
            None => {
                let total = ns.services.len() as u64;
                (total, ns.services.iter().skip(skip).take(take).filter_map(lookup).collect())
            }
        })
    }

    // === instances ===

    fn check_mode(&self, namespace: &NamespaceId, spec: &InstanceSpec) -> Result<Mode, RegistryError> {
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

    fn instance_not_found(key: &ServiceKey, instance: &InstanceKey) -> RegistryError {
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
        let entry = self.services.get_mut(key).ok_or_else(|| Self::service_not_found(key))?;
        let shared = entry.key.clone();
        let mut instance_key = spec.key.clone();
        if let Some(slot) = entry.instances.get_mut(&instance_key) {
            instance_key.cluster = slot.instance.key.cluster.clone();
            let updated = spec.into_instance(instance_key.clone(), mode.is_ephemeral());
            if slot.lease.is_none() && mode.is_ephemeral() {
                // A replica written here: this node runs its lease from now on.
                self.preservation.lease_started(timing.renewals_per_hour(), now);
                let owner = LeaseOwner { service: shared.clone(), instance: instance_key.clone() };
                slot.lease = Some(self.leases.start(owner, timing, now));
            }
            if let Some(lease) = &mut slot.lease {
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
                return Ok(entry.revision);
            }
            slot.instance = Arc::new(updated);
            let previous = slot.version;
            if mode.is_ephemeral() {
                let version = self.next_version(&shared, &instance_key, previous);
                self.set_version(&shared, &instance_key, version);
            }
            return Ok(self.touch(&shared, Some(instance_key), ChangeKind::InstanceUpdated));
        }
        instance_key.cluster = entry.intern(&spec.key.cluster);
        let instance = spec.into_instance(instance_key.clone(), mode.is_ephemeral());
        let lease = mode.is_ephemeral().then(|| {
            self.preservation.lease_started(timing.renewals_per_hour(), now);
            self.leases.start(LeaseOwner { service: shared.clone(), instance: instance_key.clone() }, timing, now)
        });
        let slot = InstanceSlot { instance: Arc::new(instance), lease, version: Version::default(), vouched: now };
        entry.instances.insert(instance_key.clone(), slot);
        self.instance_count += 1;
        if mode.is_ephemeral() {
            let version = self.next_version(&shared, &instance_key, Version::default());
            self.set_version(&shared, &instance_key, version);
        }
        Ok(self.touch(&shared, Some(instance_key), ChangeKind::InstanceRegistered))
    }

    /// Replaces the fields of an existing instance (Nacos `PUT /instance`).
    ///
    /// # Errors
    /// Invalid fields, mode mismatch, or the instance does not exist.
    pub fn update_instance(&mut self, key: &ServiceKey, spec: InstanceSpec, now: Millis) -> Result<u64, RegistryError> {
        spec.validate()?;
        self.check_mode(&key.namespace, &spec)?;
        let exists = self.services.get(key).is_some_and(|e| e.instances.contains_key(&spec.key));
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
            .get(key)
            .and_then(|e| e.instances.get(instance))
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
            .get(key)
            .and_then(|e| e.instances.get(instance))
            .and_then(|s| s.lease)
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
    fn delete_local(&mut self, key: &ServiceKey, instance: &InstanceKey, kind: ChangeKind, now: Millis) -> Option<u64> {
        let (shared, previous, ephemeral) = {
            let entry = self.services.get(key)?;
            let slot = entry.instances.get(instance)?;
            (entry.key.clone(), slot.version, slot.instance.ephemeral)
        };
        if ephemeral {
            let version = self.next_version(&shared, instance, previous);
            self.bury(&shared, instance, version, now);
        }
        self.remove_instance(key, instance, kind)
    }

    fn remove_instance(&mut self, key: &ServiceKey, instance: &InstanceKey, kind: ChangeKind) -> Option<u64> {
        let entry = self.services.get_mut(key)?;
        let slot = entry.instances.remove(instance)?;
        entry.release(&instance.cluster);
        let shared = entry.key.clone();
        if let Some(lease) = slot.lease {
            self.leases.stop(&lease);
            self.preservation.lease_ended(lease.timing.renewals_per_hour());
        }
        self.instance_count -= 1;
        Some(self.touch(&shared, Some(instance.clone()), kind))
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
        let entry = self.services.get_mut(key).ok_or_else(|| Self::instance_not_found(key, instance))?;
        let slot = entry.instances.get_mut(instance).ok_or_else(|| Self::instance_not_found(key, instance))?;
        if slot.lease.is_none() {
            // A replica beaten here (its owner is this node now, or cannot be
            // reached): this node runs its lease from now on.
            let timing =
                LeaseTiming::resolve(self.config.lease, LeaseOverrides::from_metadata(&slot.instance.metadata)?);
            self.preservation.lease_started(timing.renewals_per_hour(), now);
            let owner = LeaseOwner { service: entry.key.clone(), instance: instance.clone() };
            slot.lease = Some(self.leases.start(owner, timing, now));
        }
        let Some(lease) = &mut slot.lease else {
            return Err(Self::instance_not_found(key, instance));
        };
        lease.last_renew = now;
        let timing = lease.timing;
        self.preservation.renewed(now);
        if slot.instance.healthy {
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

    /// Reads one instance with its lease timings.
    ///
    /// # Errors
    /// Namespace, service or instance not found.
    pub fn instance(&self, key: &ServiceKey, instance: &InstanceKey) -> Result<SnapshotInstance, RegistryError> {
        self.mode_of(&key.namespace)?;
        let slot = self
            .services
            .get(key)
            .and_then(|e| e.instances.get(instance))
            .ok_or_else(|| Self::instance_not_found(key, instance))?;
        Ok(self.snapshot_instance(slot))
    }

    fn snapshot_instance(&self, slot: &InstanceSlot) -> SnapshotInstance {
        let timing = slot
            .lease
            .map_or_else(|| LeaseTiming::resolve(self.config.lease, LeaseOverrides::default()), |lease| lease.timing);
        SnapshotInstance { instance: slot.instance.clone(), timing }
    }

    /// Copies a service for a list. An unknown service in a known namespace
    /// reads as empty with revision 0, so a watch can wait for it to appear.
    ///
    /// # Errors
    /// Namespace not found.
    pub fn snapshot(&self, key: &ServiceKey) -> Result<ServiceSnapshot, RegistryError> {
        let mode = self.mode_of(&key.namespace)?;
        Ok(match self.services.get(key) {
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
                revision: 0,
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

    /// Revision of a service (0 if absent), for blocking queries.
    #[must_use]
    pub fn service_revision(&self, key: &ServiceKey) -> u64 {
        self.services.get(key).map_or(0, |e| e.revision)
    }

    /// Revision of a namespace (0 if absent), for blocking queries.
    #[must_use]
    pub fn namespace_revision(&self, id: &NamespaceId) -> u64 {
        self.namespaces.get(id).map_or(0, |e| e.revision)
    }

    // === leases ===

    /// The earliest lease deadline, for the reaper to sleep until.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Millis> {
        self.leases.next_deadline()
    }

    /// Counters for health and metrics.
    #[must_use]
    pub fn stats(&self, now: Millis) -> RegistryStats {
        RegistryStats {
            namespaces: self.namespaces.len() as u64,
            services: self.services.len() as u64,
            instances: self.instance_count,
            leases: self.leases.len() as u64,
            revision: self.revision,
            renewals_last_min: self.preservation.renewals_last_min(now),
            expected_renewals_per_min: self.preservation.expected_per_min(),
            self_preservation: self.preservation.active(now),
        }
    }
}

pub mod cp;
mod expiry;
mod health;
mod replica;

pub use health::{CheckTarget, HealthReport};

pub use replica::{ApplyReport, DirtyKey, EphemeralView, supersedes};
#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod tests;
