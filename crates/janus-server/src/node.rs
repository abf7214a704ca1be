//! [`Node`]: one server's registry service. Reads come from the local store;
//! each write goes to the engine that owns it: ephemeral instances of `ap`
//! namespaces to the AP engine; namespace and service definitions to the
//! local store for now (they move to Raft with the CP engine, which will also
//! own `cp` namespaces).

use std::sync::Arc;

use async_trait::async_trait;
use janus_ap::ApEngine;
use janus_core::lease::LeaseTiming;
use janus_core::model::{
    InstancePatch, InstanceSpec, Mode, NamespaceInfo, NamespaceSpec, ServiceInfo, ServicePatch, ServiceSettings,
};
use janus_core::service::{NodeHealth, WriteOutcome};
use janus_core::{InstanceKey, NamespaceId, RegistryError, RegistryService, RegistryStore, ServiceKey};

/// A node: its store and engines.
#[derive(Debug)]
pub struct Node {
    store: Arc<RegistryStore>,
    ap: ApEngine,
}

impl Node {
    /// A node over a store with its AP engine.
    #[must_use]
    pub fn new(store: Arc<RegistryStore>, ap: ApEngine) -> Self {
        Self { store, ap }
    }

    fn cp_unavailable(namespace: &NamespaceId) -> RegistryError {
        RegistryError::Unavailable {
            namespace: namespace.to_string(),
            mode: Mode::Cp,
            reason: "cp namespaces need the Raft engine, which this build does not include yet".to_owned(),
        }
    }

    /// Routes an instance write by the namespace's mode.
    fn ap_engine(&self, namespace: &NamespaceId) -> Result<&ApEngine, RegistryError> {
        match self.store.read(|r| r.mode_of(namespace))? {
            Mode::Ap => Ok(&self.ap),
            Mode::Cp => Err(Self::cp_unavailable(namespace)),
        }
    }

    fn outcome(revision: u64) -> WriteOutcome {
        WriteOutcome { mode: Mode::Ap, revision }
    }
}

#[async_trait]
impl RegistryService for Node {
    fn store(&self) -> &RegistryStore {
        &self.store
    }

    async fn create_namespace(&self, spec: NamespaceSpec) -> Result<NamespaceInfo, RegistryError> {
        if spec.mode == Mode::Cp {
            return Err(Self::cp_unavailable(&spec.id));
        }
        self.store.write(|r, _| r.create_namespace(spec))
    }

    async fn update_namespace(
        &self,
        id: NamespaceId,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<NamespaceInfo, RegistryError> {
        self.store.write(|r, _| r.update_namespace(&id, name, description))
    }

    async fn delete_namespace(&self, id: NamespaceId) -> Result<(), RegistryError> {
        self.store.write(|r, _| r.delete_namespace(&id))
    }

    async fn create_service(&self, key: ServiceKey, settings: ServiceSettings) -> Result<ServiceInfo, RegistryError> {
        self.store.write(|r, _| r.create_service(&key, settings))
    }

    async fn update_service(&self, key: ServiceKey, patch: ServicePatch) -> Result<ServiceInfo, RegistryError> {
        self.store.write(|r, _| r.update_service(&key, patch))
    }

    async fn delete_service(&self, key: ServiceKey) -> Result<(), RegistryError> {
        self.store.write(|r, _| r.delete_service(&key))
    }

    async fn register_instance(&self, key: ServiceKey, spec: InstanceSpec) -> Result<WriteOutcome, RegistryError> {
        self.ap_engine(&key.namespace)?.register(&key, spec).map(Self::outcome)
    }

    async fn update_instance(&self, key: ServiceKey, spec: InstanceSpec) -> Result<WriteOutcome, RegistryError> {
        self.ap_engine(&key.namespace)?.update(&key, spec).map(Self::outcome)
    }

    async fn patch_instance(
        &self,
        key: ServiceKey,
        instance: InstanceKey,
        patch: InstancePatch,
    ) -> Result<WriteOutcome, RegistryError> {
        self.ap_engine(&key.namespace)?.patch(&key, &instance, patch).map(Self::outcome)
    }

    async fn deregister_instance(&self, key: ServiceKey, instance: InstanceKey) -> Result<WriteOutcome, RegistryError> {
        self.ap_engine(&key.namespace)?.deregister(&key, &instance).map(Self::outcome)
    }

    async fn heartbeat(&self, key: ServiceKey, instance: InstanceKey) -> Result<LeaseTiming, RegistryError> {
        self.ap_engine(&key.namespace)?.heartbeat(&key, &instance)
    }

    fn health(&self) -> NodeHealth {
        let now = self.store.now();
        NodeHealth { ready: true, stats: self.store.read(|r| r.stats(now)) }
    }
}
