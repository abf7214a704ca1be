//! [`RegistryService`]: the one trait front ends (HTTP, DNS) talk to.
//!
//! A node implements it by routing each write to the engine that owns the
//! namespace's mode (the AP engine for `ap`, Raft for `cp` and for definitions)
//! and by serving reads from its local store, which front ends see only as
//! a read-only [`StoreView`]. Front ends never see the engines, so new
//! engines plug in without touching them.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::RegistryError;
use crate::lease::LeaseTiming;
use crate::model::{
    InstancePatch, InstanceSpec, Mode, NamespaceInfo, NamespaceSpec, ServiceInfo, ServicePatch, ServiceSettings,
};
use crate::name::{GroupName, InstanceKey, NamespaceId, ServiceKey};
use crate::registry::{Binding, RegistryStats, ServiceSnapshot, SnapshotInstance};
use crate::store::StoreView;

/// What a successful instance write returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Mode of the namespace written.
    pub mode: Mode,
    /// Revision of the service after the write.
    pub revision: u64,
}

/// How a read wants to see the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// From this node's registry as it is (the default; Consul's `stale`).
    #[default]
    Local,
    /// After a Raft ReadIndex round: reflects every write acknowledged before it.
    Linearizable,
}

impl Consistency {
    /// `local` or `linearizable`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Linearizable => "linearizable",
        }
    }
}

/// What a read was served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadFence {
    /// The consistency the read had.
    pub consistency: Consistency,
    /// The Raft log index the registry reflects, for `cp` namespaces.
    pub raft_index: Option<u64>,
}

/// Node health for `/health` and `/ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeHealth {
    /// Whether the node serves reads and writes (false while it loads state).
    pub ready: bool,
    /// Registry counters.
    pub stats: RegistryStats,
}

fn bound_unsupported() -> RegistryError {
    RegistryError::Internal("this registry does not keep connection-bound instances".to_owned())
}

/// Everything a front end may ask of a node.
#[async_trait]
pub trait RegistryService: Send + Sync + 'static {
    /// The node's local registry, read-only: reads, watches and the clock.
    /// Writes go through the methods below, never to the store directly.
    fn view(&self) -> StoreView<'_>;

    /// Creates a namespace.
    async fn create_namespace(&self, spec: NamespaceSpec) -> Result<NamespaceInfo, RegistryError>;
    /// Changes a namespace's name or description.
    async fn update_namespace(
        &self,
        id: NamespaceId,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<NamespaceInfo, RegistryError>;
    /// Deletes an empty namespace.
    async fn delete_namespace(&self, id: NamespaceId) -> Result<(), RegistryError>;
    /// Sets whether a namespace is answered over DNS (the DNS access rule).
    async fn set_namespace_dns(&self, id: NamespaceId, answered: bool) -> Result<NamespaceInfo, RegistryError> {
        let _ = (id, answered);
        Err(RegistryError::Internal("this registry keeps no DNS access rule".to_owned()))
    }

    /// Creates a service.
    async fn create_service(&self, key: ServiceKey, settings: ServiceSettings) -> Result<ServiceInfo, RegistryError>;
    /// Changes a service's settings.
    async fn update_service(&self, key: ServiceKey, patch: ServicePatch) -> Result<ServiceInfo, RegistryError>;
    /// Deletes a service without instances.
    async fn delete_service(&self, key: ServiceKey) -> Result<(), RegistryError>;
    /// Sets how a cluster of a service is checked (and its metadata).
    async fn set_cluster(
        &self,
        key: ServiceKey,
        cluster: crate::name::ClusterName,
        settings: crate::model::ClusterSettings,
    ) -> Result<ServiceInfo, RegistryError>;

    /// Registers (or re-registers) an instance.
    async fn register_instance(&self, key: ServiceKey, spec: InstanceSpec) -> Result<WriteOutcome, RegistryError>;
    /// Replaces an existing instance's fields.
    async fn update_instance(&self, key: ServiceKey, spec: InstanceSpec) -> Result<WriteOutcome, RegistryError>;
    /// Changes some of an existing instance's fields.
    async fn patch_instance(
        &self,
        key: ServiceKey,
        instance: InstanceKey,
        patch: InstancePatch,
    ) -> Result<WriteOutcome, RegistryError>;
    /// Removes an instance.
    async fn deregister_instance(&self, key: ServiceKey, instance: InstanceKey) -> Result<WriteOutcome, RegistryError>;
    /// Renews an ephemeral instance's lease.
    async fn heartbeat(&self, key: ServiceKey, instance: InstanceKey) -> Result<LeaseTiming, RegistryError>;

    /// Makes `specs` the instances client connection `binding` publishes in
    /// service `key` (Nacos 2.x register and batch register): they are
    /// ephemeral, have no lease, and live until the connection withdraws them
    /// or is released (see [`crate::registry::bound`]).
    async fn publish_bound(
        &self,
        key: ServiceKey,
        specs: Vec<InstanceSpec>,
        binding: Binding,
    ) -> Result<WriteOutcome, RegistryError> {
        let _ = (key, specs, binding);
        Err(bound_unsupported())
    }

    /// Withdraws what connection `binding` published in service `key`.
    async fn unpublish_bound(&self, key: ServiceKey, binding: Binding) -> Result<WriteOutcome, RegistryError> {
        let _ = (key, binding);
        Err(bound_unsupported())
    }

    /// Connection `binding` is gone: removes the instances still bound to it;
    /// returns how many went.
    async fn release_binding(&self, binding: Binding) -> Result<u64, RegistryError> {
        let _ = binding;
        Err(bound_unsupported())
    }

    /// The node's users, tokens and grants as committed; `None` where this
    /// registry keeps none (the front ends' test fakes).
    fn auth_state(&self) -> Option<std::sync::Arc<janus_auth::AuthStore>> {
        None
    }

    /// Changes users, tokens or grants through Raft, once this node's state
    /// accepts the command ([`janus_auth::AuthState::check`]).
    async fn auth_write(&self, command: janus_auth::AuthCommand) -> Result<janus_auth::AuthOutcome, RegistryError> {
        let _ = command;
        Err(RegistryError::Auth(janus_auth::AuthError::Unavailable("this registry keeps no users".to_owned())))
    }

    /// Whether the node is ready, and its counters.
    fn health(&self) -> NodeHealth;

    /// Whether the node is ready ([`NodeHealth::ready`]) without counting
    /// anything: asked on every gRPC request and by `/ready`.
    fn is_ready(&self) -> bool {
        self.health().ready
    }

    /// What this node knows of its cluster (engines, members, replication).
    fn cluster_status(&self) -> crate::status::ClusterStatus {
        crate::status::ClusterStatus::default()
    }

    /// The node owning an instance in this node's view of the AP ring (it
    /// runs the lease, or probes a persistent instance); `None` on a single
    /// node.
    fn owner_of(&self, _key: &ServiceKey, _instance: &InstanceKey) -> Option<crate::NodeId> {
        None
    }

    /// The gRPC subscriptions to a service held by connections to this node.
    fn subscribers(&self, _key: &ServiceKey) -> Vec<crate::status::Subscriber> {
        Vec::new()
    }

    /// Prepares a read of `namespace` with the asked consistency. Linearizable
    /// reads exist for `cp` namespaces only.
    async fn read_fence(&self, namespace: &NamespaceId, consistency: Consistency) -> Result<ReadFence, RegistryError> {
        let mode = self.view().read(|r| r.mode_of(namespace))?;
        match consistency {
            Consistency::Local => Ok(ReadFence { consistency, raft_index: None }),
            Consistency::Linearizable => Err(RegistryError::ModeMismatch {
                namespace: namespace.to_string(),
                mode,
                detail: "linearizable reads are for cp namespaces; ap reads are always local".to_owned(),
            }),
        }
    }

    /// Reads a namespace.
    fn namespace(&self, id: &NamespaceId) -> Result<NamespaceInfo, RegistryError> {
        self.view().read(|r| r.namespace(id))
    }

    /// All namespaces.
    fn namespaces(&self) -> Vec<NamespaceInfo> {
        self.view().read(crate::registry::Registry::namespaces)
    }

    /// Reads a service.
    fn service(&self, key: &ServiceKey) -> Result<ServiceInfo, RegistryError> {
        self.view().read(|r| r.service(key))
    }

    /// One page of a namespace's services (one group, names containing
    /// `search`, when given) and the total.
    fn services(
        &self,
        namespace: &NamespaceId,
        group: Option<&GroupName>,
        search: Option<&str>,
        page: u64,
        page_size: u64,
    ) -> Result<(u64, Vec<ServiceInfo>), RegistryError> {
        self.view().read(|r| r.services(namespace, group, search, page, page_size))
    }

    /// Reads an instance.
    fn instance(&self, key: &ServiceKey, instance: &InstanceKey) -> Result<SnapshotInstance, RegistryError> {
        self.view().read(|r| r.instance(key, instance))
    }

    /// Copies a service's instances for a list.
    fn snapshot(&self, key: &ServiceKey) -> Result<ServiceSnapshot, RegistryError> {
        self.view().read(|r| r.snapshot(key))
    }

    /// Blocks until the service's revision differs from `after` or `timeout` passes.
    async fn wait_service(&self, key: &ServiceKey, after: u64, timeout: Duration) -> u64 {
        self.view().wait_service(key, after, timeout).await
    }

    /// Blocks until the namespace's revision differs from `after` or `timeout` passes.
    async fn wait_namespace(&self, id: &NamespaceId, after: u64, timeout: Duration) -> u64 {
        self.view().wait_namespace(id, after, timeout).await
    }

    /// Every change from now on (bounded; a slow subscriber is told it lagged).
    fn subscribe(&self) -> crate::watch::ChangeReceiver {
        self.view().events()
    }
}
