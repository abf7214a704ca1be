//! [`Registry`]: the in-memory state machine of namespaces, services and instances.
//!
//! Every write takes `now` and bumps one node-wide revision, stamping the service
//! and namespace it touched, and queues a [`Change`]. Lookups are hash-indexed:
//! register, heartbeat and get are O(1) in the number of instances held, a list is
//! O(k) in the size of the service, and lease expiry pops a deadline queue.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::change::{Change, ChangeKind};
use crate::counter::{SpreadCounter, SpreadMax};
use crate::error::RegistryError;
use crate::lease::{Lease, LeaseDefaults, LeaseTimes, LeaseTiming, Leases, QuietRenewal};
use crate::model::{Instance, Mode, NamespaceInfo, NamespaceSpec, ServiceInfo, ServicePatch, ServiceSettings};
use crate::name::{ClusterName, GroupName, InstanceKey, NamespaceId, ServiceKey, ServiceName};
use crate::preservation::{Preservation, PreservationConfig};
use crate::replica::{ReplicationConfig, Version};
use crate::time::Millis;
use crate::validate;

/// Registry settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegistryConfig {
    /// Default lease timings.
    pub lease: LeaseDefaults,
    /// Self-preservation.
    pub preservation: PreservationConfig,
    /// Set in a cluster: ephemeral instances carry versions, local changes
    /// are queued for the AP engine to send, deletions leave tombstones.
    pub replication: Option<ReplicationConfig>,
    /// How long an implied service (one that exists only because ephemeral
    /// instances registered in it) stays after its last instance went; see
    /// [`lifecycle`].
    pub empty_service_grace_ms: u64,
}

/// Nacos's `nacos.naming.clean.empty-service.expired-time`.
pub const DEFAULT_EMPTY_SERVICE_GRACE_MS: u64 = 60_000;

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            lease: LeaseDefaults::default(),
            preservation: PreservationConfig::default(),
            replication: None,
            empty_service_grace_ms: DEFAULT_EMPTY_SERVICE_GRACE_MS,
        }
    }
}

/// How long a deletion held back (self-preservation or the eviction window's cap) waits
/// before it is tried again.
pub const DEFERRED_DELETE_RETRY_MS: u64 = 5_000;

#[derive(Debug)]
struct NamespaceEntry {
    spec: NamespaceSpec,
    /// Answered over DNS (the DNS access rule).
    dns: bool,
    /// Raised (never lowered) by writes to its services, under the shared
    /// lock too: spread over per-thread cells, so that writers to different
    /// services of one namespace do not share a cache line for it.
    revision: SpreadMax,
    services: BTreeSet<(GroupName, ServiceName)>,
}

#[derive(Debug)]
struct InstanceSlot {
    instance: Arc<Instance>,
    /// The lease, on the node that runs it (the instance's owner, or the node
    /// that took a write its owner could not). Replicas have none. Read it
    /// through [`InstanceSlot::current_lease`] or [`InstanceSlot::lease_mut`],
    /// which fold in the quiet renewals.
    lease: Option<Lease>,
    /// Renewals made under the shared lock, not yet folded into `lease`.
    quiet: QuietRenewal,
    /// Replication version of an ephemeral instance (zero when not replicated).
    version: Version,
    /// When this node last heard the instance's owner vouch for it (replicas).
    vouched: Millis,
    /// The client connection that keeps the instance alive, for instances
    /// registered over a connection (Nacos gRPC); they have no lease.
    binding: Option<Binding>,
}

impl InstanceSlot {
    fn new(instance: Arc<Instance>, lease: Option<Lease>, version: Version, vouched: Millis) -> Self {
        Self { instance, lease, quiet: QuietRenewal::default(), version, vouched, binding: None }
    }

    /// The lease with every renewal made so far, quiet ones included.
    fn current_lease(&self) -> Option<Lease> {
        self.lease.map(|lease| self.quiet.folded(lease))
    }

    /// The lease to change, with the quiet renewals folded in first.
    fn lease_mut(&mut self) -> Option<&mut Lease> {
        let lease = self.lease.as_mut()?;
        *lease = self.quiet.folded(*lease);
        Some(lease)
    }
}

#[derive(Debug)]
struct ServiceEntry {
    key: Arc<ServiceKey>,
    settings: ServiceSettings,
    /// A definition on Raft: every service of a `cp` namespace, and the
    /// services of `ap` namespaces created or changed through the service
    /// API. Otherwise the service is implied by its ephemeral instances (see
    /// [`lifecycle`]).
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

/// A service's lock and state, alone on its cache lines: the services' map
/// keeps its entries side by side, and writers of two services whose locks
/// shared a line would wait on each other's cache misses.
#[derive(Debug)]
#[repr(align(128))]
struct ServiceCell(RwLock<ServiceEntry>);

impl ServiceCell {
    fn new(entry: ServiceEntry) -> Self {
        Self(RwLock::new(entry))
    }

    /// The state, with `&mut` access to the registry (no lock taken).
    fn get_mut(&mut self) -> &mut ServiceEntry {
        self.0.get_mut()
    }

    /// Reads the state (a read may nest inside another of the same service).
    fn read_recursive(&self) -> RwLockReadGuard<'_, ServiceEntry> {
        self.0.read_recursive()
    }

    /// Changes the state under the registry's shared lock.
    fn write(&self) -> RwLockWriteGuard<'_, ServiceEntry> {
        self.0.write()
    }
}

/// An instance of a [`ServiceSnapshot`] with the lease timings it runs with.
#[derive(Debug, Clone)]
pub struct SnapshotInstance {
    /// The instance.
    pub instance: Arc<Instance>,
    /// Its lease timings (defaults for persistent instances).
    pub timing: LeaseTiming,
    /// When its lease started and was last renewed, where this node runs the
    /// lease; `None` for persistent instances and for replicas whose lease
    /// another node runs.
    pub lease: Option<LeaseTimes>,
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
    /// Deletions held back by self-preservation or the eviction window's cap.
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
///
/// Most writes take `&mut self` (the store's exclusive lock). The instance
/// writes that `registry::shared` serves take `&self` (the store's shared lock) and
/// the written service's own lock instead, so that writes to different
/// services run at once: the state they share besides their service (the
/// revision counters, the lease queue, the renewal accounting, the
/// replication queue, the emptied services) is atomic or behind a lock of
/// its own, taken only inside a service's lock, never the other way round.
/// With `&mut self` no lock is taken (`get_mut`). Reads under `&self` take
/// a service's lock for reading (`read_recursive`: a read may call another
/// read of the same service, as visitors' callbacks do). What writes under
/// `&self` change in place is alone on its cache lines ([`CachePadded`]):
/// next to the maps every request reads, each such write would make every
/// other core fetch those again.
#[derive(Debug)]
pub struct Registry {
    config: RegistryConfig,
    /// Node-wide revision: the revision of the latest change.
    revision: CachePadded<AtomicU64>,
    namespaces: BTreeMap<NamespaceId, NamespaceEntry>,
    services: HashMap<ServiceKey, ServiceCell>,
    leases: Leases,
    preservation: Preservation,
    instance_count: SpreadCounter,
    /// Changes of writes under `&mut self`, taken by [`Self::take_changes`];
    /// writes under `&self` publish their own (see `registry::shared`).
    changes: Vec<Change>,
    /// Services by ASCII-lowercased `namespace/group/service`, for lookups that
    /// must ignore case (DNS). The first service to claim a folded name keeps it.
    folded: HashMap<String, ServiceKey>,
    /// Versions, outgoing changes and tombstones, in a cluster.
    replication: CachePadded<Option<Mutex<replica::Replication>>>,
    /// Implied services that lost their last instance, with when a sweep
    /// first saw them empty (see [`lifecycle`]).
    emptied: CachePadded<Mutex<HashMap<ServiceKey, Option<Millis>>>>,
    /// What each live connection published, by service (see [`bound`]).
    bound: bound::BindingIndex,
}

/// The next node-wide revision. Revisions are read and raised sequentially
/// consistent: a blocking query counts itself as a waiter and then re-reads
/// one, and a write that raised it and then read no waiter skipped the wake-up
/// (see [`crate::watch`]).
fn next_revision(counter: &AtomicU64) -> u64 {
    counter.fetch_add(1, Ordering::SeqCst) + 1
}

/// Gives a change to the service `entry` (of one of `namespaces`) the next
/// node-wide revision: stamps the service and raises its namespace's
/// revision to it. [`Registry::touch`] under `&self`.
fn stamp(
    revision: &AtomicU64,
    namespaces: &BTreeMap<NamespaceId, NamespaceEntry>,
    entry: &mut ServiceEntry,
    instance: Option<InstanceKey>,
    kind: ChangeKind,
) -> Change {
    let revision = next_revision(revision);
    entry.revision = revision;
    if let Some(ns) = namespaces.get(&entry.key.namespace) {
        ns.revision.raise(revision);
    }
    Change { revision, namespace: entry.key.namespace.clone(), service: Some(entry.key.clone()), instance, kind }
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
        namespaces.insert(
            public.id.clone(),
            NamespaceEntry { spec: public, dns: true, revision: SpreadMax::new(0), services: BTreeSet::new() },
        );
        Self {
            config,
            revision: CachePadded::new(AtomicU64::new(0)),
            namespaces,
            services: HashMap::new(),
            leases: Leases::default(),
            preservation: Preservation::new(config.preservation),
            instance_count: SpreadCounter::default(),
            changes: Vec::new(),
            folded: HashMap::new(),
            replication: CachePadded::new(config.replication.map(|r| Mutex::new(replica::Replication::new(r)))),
            emptied: CachePadded::new(Mutex::new(HashMap::new())),
            bound: bound::BindingIndex::default(),
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
        self.revision.load(Ordering::SeqCst)
    }

    /// Changes made since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    fn next_revision(&self) -> u64 {
        next_revision(&self.revision)
    }

    /// Raises the node-wide revision to at least `floor`, so that revisions
    /// handed out after a restart are above every revision handed out
    /// before it (the server persists the floor; see `janus-server`'s
    /// `revision_floor`). Revisions never go down.
    pub fn raise_revision_floor(&mut self, floor: u64) {
        let revision = self.revision.get_mut();
        *revision = (*revision).max(floor);
        // What exists already (the built-in `public`) reads at least the floor too.
        for namespace in self.namespaces.values_mut() {
            namespace.revision.raise_mut(floor);
        }
        for service in self.services.values_mut() {
            let service = service.get_mut();
            service.revision = service.revision.max(floor);
        }
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
        self.namespaces.insert(
            id.clone(),
            NamespaceEntry { spec, dns: true, revision: SpreadMax::new(revision), services: BTreeSet::new() },
        );
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
        self.change_namespace(id, |entry| {
            if let Some(name) = name {
                entry.spec.name = name;
            }
            if let Some(description) = description {
                entry.spec.description = description;
            }
        })
    }

    /// Sets whether a namespace is answered over DNS.
    ///
    /// # Errors
    /// Not found.
    pub fn set_namespace_dns(&mut self, id: &NamespaceId, answered: bool) -> Result<NamespaceInfo, RegistryError> {
        self.change_namespace(id, |entry| entry.dns = answered)
    }

    /// Applies `change` to an existing namespace under a new revision, with
    /// a `NamespaceUpdated` event.
    fn change_namespace(
        &mut self,
        id: &NamespaceId,
        change: impl FnOnce(&mut NamespaceEntry),
    ) -> Result<NamespaceInfo, RegistryError> {
        if !self.namespaces.contains_key(id) {
            return Err(RegistryError::NamespaceNotFound(id.to_string()));
        }
        let revision = self.next_revision();
        let entry = self.namespaces.get_mut(id).ok_or_else(|| RegistryError::NamespaceNotFound(id.to_string()))?;
        change(entry);
        entry.revision.raise_mut(revision);
        self.changes.push(Change {
            revision,
            namespace: id.clone(),
            service: None,
            instance: None,
            kind: ChangeKind::NamespaceUpdated,
        });
        self.namespace(id)
    }

    /// Whether `namespace` exists and is closed to DNS (its services are
    /// not answered there).
    #[must_use]
    pub fn closed_to_dns(&self, namespace: &NamespaceId) -> bool {
        self.namespaces.get(namespace).is_some_and(|e| !e.dns)
    }

    /// Whether a namespace named `namespace`, compared without regard to
    /// ASCII case (as DNS names are), is closed to DNS. Looks at every
    /// namespace: for answers that found no service.
    #[must_use]
    pub fn closed_to_dns_ignoring_case(&self, namespace: &str) -> bool {
        self.namespaces.values().any(|e| !e.dns && e.spec.id.as_str().eq_ignore_ascii_case(namespace))
    }

    /// Deletes a namespace that holds no definitions: no defined service and
    /// no persistent instance (only the replicated state decides, so every
    /// node and every replay of the Raft log decides alike). Implied services
    /// and their ephemeral instances go with it. `public` cannot be deleted.
    /// [`Registry::check_command`] refuses, before proposing, a namespace
    /// holding any service at all.
    ///
    /// # Errors
    /// Not found, `public`, or still holding definitions.
    pub fn delete_namespace(&mut self, id: &NamespaceId) -> Result<(), RegistryError> {
        if *id == NamespaceId::public() {
            return Err(RegistryError::Forbidden("namespace 'public' is built in and cannot be deleted".to_owned()));
        }
        let entry = self.namespaces.get(id).ok_or_else(|| RegistryError::NamespaceNotFound(id.to_string()))?;
        let keys: Vec<ServiceKey> = entry
            .services
            .iter()
            .map(|(group, service)| ServiceKey::new(id.clone(), group.clone(), service.clone()))
            .collect();
        let defined = keys.iter().filter(|k| self.services.get(*k).is_some_and(|e| e.read_recursive().defined)).count();
        if defined > 0 {
            return Err(RegistryError::NotEmpty {
                what: "namespace".to_owned(),
                name: id.to_string(),
                detail: format!("it holds {defined} service(s); delete them first"),
            });
        }
        for key in keys {
            self.drop_service(&key);
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
        Ok(Self::namespace_info(entry))
    }

    /// All namespaces, ordered by id.
    #[must_use]
    pub fn namespaces(&self) -> Vec<NamespaceInfo> {
        self.namespaces.values().map(Self::namespace_info).collect()
    }

    fn namespace_info(entry: &NamespaceEntry) -> NamespaceInfo {
        NamespaceInfo {
            spec: entry.spec.clone(),
            dns: entry.dns,
            service_count: entry.services.len() as u64,
            revision: entry.revision.get(),
        }
    }

    /// How many instances the services of a namespace hold (0 for an unknown
    /// namespace). It visits every service of the namespace: for operators'
    /// views, not for request paths ([`Registry::namespace`] stays O(1)).
    #[must_use]
    pub fn namespace_instance_count(&self, id: &NamespaceId) -> u64 {
        let Some(entry) = self.namespaces.get(id) else { return 0 };
        entry
            .services
            .iter()
            .filter_map(|(group, service)| {
                let key = ServiceKey::new(id.clone(), group.clone(), service.clone());
                self.services.get(&key).map(|s| s.read_recursive().instances.len() as u64)
            })
            .sum()
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
        let (enabled, healthy) = entry.instances.values().fold((0, 0), |(enabled, healthy), slot| {
            let i = &slot.instance;
            (enabled + usize::from(i.enabled), healthy + usize::from(i.enabled && i.healthy))
        });
        ServiceInfo {
            key: (*entry.key).clone(),
            mode,
            settings: entry.settings.clone(),
            instance_count: entry.instances.len() as u64,
            healthy_count: healthy as u64,
            reach_protection_threshold: crate::select::protection_reached(
                healthy,
                enabled,
                entry.settings.protect_threshold,
            ),
            revision: entry.revision,
        }
    }

    /// Stamps a service and its namespace with a new revision and queues the change.
    fn touch(&mut self, key: &Arc<ServiceKey>, instance: Option<InstanceKey>, kind: ChangeKind) -> u64 {
        let revision = self.next_revision();
        if let Some(entry) = self.services.get_mut(&**key) {
            entry.get_mut().revision = revision;
        }
        if let Some(ns) = self.namespaces.get_mut(&key.namespace) {
            ns.revision.raise_mut(revision);
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
        let cp = ns.spec.mode == Mode::Cp;
        let shared = Arc::new(key.clone());
        let mut entry = ServiceEntry::new(shared.clone(), settings);
        // Every service of a cp namespace comes from the Raft log.
        entry.defined = cp;
        self.services.insert(key.clone(), ServiceCell::new(entry));
        self.touch(&shared, None, ChangeKind::ServiceCreated);
        Ok(true)
    }

    /// Defines a service. An implied service of the same name (one that
    /// exists here because ephemeral instances registered in it) becomes
    /// defined with these settings; only an existing definition refuses, so
    /// the outcome depends on the replicated state alone.
    ///
    /// # Errors
    /// Namespace not found, or the service is defined already.
    pub fn create_service(
        &mut self,
        key: &ServiceKey,
        settings: ServiceSettings,
    ) -> Result<ServiceInfo, RegistryError> {
        self.mode_of(&key.namespace)?;
        if let Some(entry) = self.services.get_mut(key).map(ServiceCell::get_mut) {
            if entry.defined {
                return Err(RegistryError::AlreadyExists { what: "service".to_owned(), name: key.to_string() });
            }
            entry.defined = true;
            entry.settings = settings;
            let shared = entry.key.clone();
            self.forget_emptied(key);
            self.touch(&shared, None, ChangeKind::ServiceUpdated);
        } else {
            self.ensure_service(key, settings)?;
            if let Some(entry) = self.services.get_mut(key) {
                entry.get_mut().defined = true;
            }
        }
        self.service(key)
    }

    /// The entry a definition change applies to: the existing definition;
    /// in an `ap` namespace, otherwise a new definition with the default
    /// settings (over an implied service of that name, if this node has one).
    /// A `cp` namespace has definitions only, so a missing one is not found.
    fn definition_mut(&mut self, key: &ServiceKey) -> Result<&mut ServiceEntry, RegistryError> {
        let mode = self.mode_of(&key.namespace)?;
        let defined = self.services.get_mut(key).is_some_and(|e| e.get_mut().defined);
        if !defined {
            if mode == Mode::Cp {
                return Err(Self::service_not_found(key));
            }
            self.ensure_service(key, ServiceSettings::default())?;
            self.forget_emptied(key);
        }
        let entry = self.services.get_mut(key).map(ServiceCell::get_mut).ok_or_else(|| Self::service_not_found(key))?;
        if !entry.defined {
            entry.defined = true;
            entry.settings = ServiceSettings::default();
        }
        Ok(entry)
    }

    /// Changes a service's settings. In an `ap` namespace a service without a
    /// definition gets one (the default settings with the change), so the
    /// outcome depends on the replicated state alone; [`Registry::check_command`]
    /// refuses, before proposing, a service this node does not know at all.
    ///
    /// # Errors
    /// Not found (in a `cp` namespace), or invalid settings.
    pub fn update_service(&mut self, key: &ServiceKey, patch: ServicePatch) -> Result<ServiceInfo, RegistryError> {
        if let Some(threshold) = patch.protect_threshold {
            validate::check_protect_threshold(threshold)?;
        }
        if let Some(metadata) = &patch.metadata {
            validate::check_metadata(metadata)?;
        }
        let entry = self.definition_mut(key)?;
        if let Some(threshold) = patch.protect_threshold {
            entry.settings.protect_threshold = threshold;
        }
        if let Some(metadata) = patch.metadata {
            entry.settings.metadata = metadata;
        }
        let shared = entry.key.clone();
        self.touch(&shared, None, ChangeKind::ServiceUpdated);
        self.service(key)
    }

    /// Deletes a service's definition. Refused while persistent instances
    /// remain (replicated state); ephemeral instances this node holds keep
    /// the service as an implied one with the default settings (the
    /// definition is gone and never comes back by itself), and a service
    /// left without instances goes at once. Deleting a service that has no
    /// definition here is not an error (the outcome may not depend on local
    /// state): [`Registry::check_command`] refuses, before proposing, a
    /// service this node does not know or that holds any instance.
    ///
    /// # Errors
    /// Namespace not found, or persistent instances remain.
    pub fn delete_service(&mut self, key: &ServiceKey) -> Result<(), RegistryError> {
        self.mode_of(&key.namespace)?;
        let Some(entry) = self.services.get_mut(key).map(ServiceCell::get_mut) else { return Ok(()) };
        let persistent = entry.instances.values().filter(|slot| !slot.instance.ephemeral).count();
        if persistent > 0 {
            return Err(RegistryError::NotEmpty {
                what: "service".to_owned(),
                name: key.to_string(),
                detail: format!("it holds {persistent} instance(s); deregister them first"),
            });
        }
        if entry.instances.is_empty() {
            self.drop_service(key);
        } else if entry.defined {
            entry.defined = false;
            entry.settings = ServiceSettings::default();
            let shared = entry.key.clone();
            self.touch(&shared, None, ChangeKind::ServiceUpdated);
        }
        Ok(())
    }

    /// Reads one service.
    ///
    /// # Errors
    /// Namespace or service not found.
    pub fn service(&self, key: &ServiceKey) -> Result<ServiceInfo, RegistryError> {
        self.mode_of(&key.namespace)?;
        let entry = self.services.get(key).ok_or_else(|| Self::service_not_found(key))?;
        Ok(self.service_info(&entry.read_recursive()))
    }

    /// One page (from 1) of a namespace's services ordered by group and name,
    /// optionally one group only and only names containing `search` (ASCII
    /// case ignored); returns the total of the selection with the page.
    ///
    /// # Errors
    /// Namespace not found.
    pub fn services(
        &self,
        namespace: &NamespaceId,
        group: Option<&GroupName>,
        search: Option<&str>,
        page: u64,
        page_size: u64,
    ) -> Result<(u64, Vec<ServiceInfo>), RegistryError> {
        let ns =
            self.namespaces.get(namespace).ok_or_else(|| RegistryError::NamespaceNotFound(namespace.to_string()))?;
        let skip = usize::try_from(page.saturating_sub(1).saturating_mul(page_size)).unwrap_or(usize::MAX);
        let take = usize::try_from(page_size).unwrap_or(usize::MAX);
        let lookup = |(g, s): &(GroupName, ServiceName)| {
            let key = ServiceKey::new(namespace.clone(), g.clone(), s.clone());
            self.services.get(&key).map(|e| self.service_info(&e.read_recursive()))
        };
        let search = search.filter(|s| !s.is_empty()).map(str::to_ascii_lowercase);
        let selected = |(g, s): &&(GroupName, ServiceName)| {
            group.is_none_or(|group| g == group)
                && search.as_deref().is_none_or(|search| s.as_str().to_ascii_lowercase().contains(search))
        };
        if group.is_none() && search.is_none() {
            let total = ns.services.len() as u64;
            return Ok((total, ns.services.iter().skip(skip).take(take).filter_map(lookup).collect()));
        }
        let range = ns.services.iter().filter(selected);
        let total = range.clone().count() as u64;
        Ok((total, range.skip(skip).take(take).filter_map(lookup).collect()))
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
            instances: self.instance_count.get(),
            leases: self.leases.len() as u64,
            revision: self.revision(),
            renewals_last_min: self.preservation.renewals_last_min(now),
            expected_renewals_per_min: self.preservation.expected_per_min(),
            self_preservation: self.preservation.active(now),
        }
    }
}

pub mod bound;
mod check;
pub mod cp;
mod expiry;
mod health;
mod instances;
pub mod lifecycle;
mod replica;
mod shared;

pub use bound::Binding;
pub use health::{CheckTarget, HealthReport};

pub use replica::{ApplyReport, DirtyKey, EphemeralView, supersedes};
#[cfg(test)]
mod determinism_tests;
#[cfg(test)]
mod quiet_tests;
#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod shared_tests;
#[cfg(test)]
mod tests;
