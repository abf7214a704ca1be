//! Replicated writes: [`Command`]s applied by [`Registry::apply`], and the
//! [`CpState`] a snapshot carries.
//!
//! What lives on Raft: namespaces, service definitions (every service of a
//! `cp` namespace, and services created or changed through the service API in
//! `ap` namespaces), and persistent instances. Services that only exist
//! because an ephemeral instance registered stay local to the AP engine, so
//! losing Raft quorum never blocks an AP registration.
//!
//! **Applying a command depends only on the log.** [`Registry::apply`] reads
//! and refuses on the replicated state alone (namespaces, definitions,
//! persistent instances), never on ephemeral instances or implied services,
//! which differ from node to node and are not replayed: so a restart, a
//! follower that has not seen an AP write yet, and a node installing a
//! snapshot all decide exactly as the first apply did. Refusals that depend
//! on local state are made before proposing ([`Registry::check_command`]).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{Registry, ServiceCell};
use crate::change::ChangeKind;
use crate::error::RegistryError;
use crate::model::{
    ClusterSettings, Instance, InstancePatch, InstanceSpec, Mode, NamespaceInfo, NamespaceSpec, ServiceInfo,
    ServicePatch, ServiceSettings,
};
use crate::name::{ClusterName, InstanceKey, NamespaceId, ServiceKey};
use crate::registry::HealthReport;
use crate::time::Millis;

/// A write as it travels through a replicated log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Create a namespace.
    CreateNamespace(NamespaceSpec),
    /// Change a namespace's name or description.
    UpdateNamespace {
        /// Which namespace.
        id: NamespaceId,
        /// New display name.
        name: Option<String>,
        /// New description.
        description: Option<String>,
    },
    /// Delete an empty namespace.
    DeleteNamespace {
        /// Which namespace.
        id: NamespaceId,
    },
    /// Define a service.
    CreateService {
        /// Which service.
        key: ServiceKey,
        /// Its settings.
        settings: ServiceSettings,
    },
    /// Change a service's settings.
    UpdateService {
        /// Which service.
        key: ServiceKey,
        /// The change.
        patch: ServicePatch,
    },
    /// Delete a service without instances.
    DeleteService {
        /// Which service.
        key: ServiceKey,
    },
    /// Register a persistent instance.
    RegisterInstance {
        /// Its service.
        key: ServiceKey,
        /// The instance.
        spec: InstanceSpec,
    },
    /// Replace an existing persistent instance.
    UpdateInstance {
        /// Its service.
        key: ServiceKey,
        /// The instance.
        spec: InstanceSpec,
    },
    /// Change some fields of a persistent instance (health checks use this).
    PatchInstance {
        /// Its service.
        key: ServiceKey,
        /// Which instance.
        instance: InstanceKey,
        /// The change.
        patch: InstancePatch,
    },
    /// Remove a persistent instance.
    DeregisterInstance {
        /// Its service.
        key: ServiceKey,
        /// Which instance.
        instance: InstanceKey,
    },
    /// Set how a cluster of a service is checked.
    SetCluster {
        /// The service.
        key: ServiceKey,
        /// The cluster.
        cluster: ClusterName,
        /// Its settings.
        settings: ClusterSettings,
    },
    /// Health checkers' verdicts, batched.
    ReportHealth(Vec<HealthReport>),
    /// A change of users, tokens or grants. Raft's state machine applies it
    /// to the node's auth state (`janus_auth::AuthStore`) beside the
    /// registry; [`Registry::apply`] never sees it.
    Auth(janus_auth::AuthCommand),
    /// Whether a namespace is answered over DNS (the DNS access rule: DNS
    /// carries no credentials, so a namespace may keep out of it). Last, so
    /// that logs written before it existed still decode.
    SetNamespaceDns {
        /// Which namespace.
        id: NamespaceId,
        /// `true`: answered (the default); `false`: DNS queries for its
        /// services are refused.
        answered: bool,
    },
}

/// What applying a command produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandOutcome {
    /// The namespace after the write.
    Namespace(NamespaceInfo),
    /// The service after the write.
    Service(ServiceInfo),
    /// The service revision after an instance write.
    Revision(u64),
    /// A deletion.
    Done,
    /// What an auth command did, or its deterministic refusal.
    Auth(Result<janus_auth::AuthOutcome, janus_auth::AuthError>),
}

impl CommandOutcome {
    /// The namespace a namespace write produced.
    ///
    /// # Errors
    /// [`RegistryError::Internal`] naming the outcome when it is of another
    /// kind: the command was answered with the wrong kind of outcome, a bug.
    pub fn into_namespace(self) -> Result<NamespaceInfo, RegistryError> {
        match self {
            Self::Namespace(info) => Ok(info),
            other => Err(other.unexpected()),
        }
    }

    /// The service a service write produced.
    ///
    /// # Errors
    /// [`RegistryError::Internal`] for another kind of outcome, as
    /// [`Self::into_namespace`].
    pub fn into_service(self) -> Result<ServiceInfo, RegistryError> {
        match self {
            Self::Service(info) => Ok(info),
            other => Err(other.unexpected()),
        }
    }

    /// The service revision an instance write produced.
    ///
    /// # Errors
    /// [`RegistryError::Internal`] for another kind of outcome, as
    /// [`Self::into_namespace`].
    pub fn into_revision(self) -> Result<u64, RegistryError> {
        match self {
            Self::Revision(revision) => Ok(revision),
            other => Err(other.unexpected()),
        }
    }

    fn unexpected(&self) -> RegistryError {
        RegistryError::Internal(format!("unexpected Raft outcome {self:?}"))
    }
}

/// Everything Raft replicates, as a snapshot carries it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpState {
    /// Every namespace.
    pub namespaces: Vec<NamespaceSpec>,
    /// Defined services (see the module docs) with their settings.
    pub services: Vec<(ServiceKey, ServiceSettings)>,
    /// Persistent instances.
    pub instances: Vec<(ServiceKey, Instance)>,
    /// Namespaces not answered over DNS (see [`Command::SetNamespaceDns`]).
    pub dns_closed: Vec<NamespaceId>,
}

impl Registry {
    /// Applies a replicated command. `at` is the time stamped in the log entry,
    /// so that every node applies it alike. A refusal (say, a name taken) is a
    /// deterministic outcome too: every node refuses it the same way, since it
    /// is decided on the replicated state only (see the module docs).
    ///
    /// # Errors
    /// Whatever the corresponding direct call refuses.
    pub fn apply(&mut self, command: Command, at: Millis) -> Result<CommandOutcome, RegistryError> {
        Ok(match command {
            Command::CreateNamespace(spec) => CommandOutcome::Namespace(self.create_namespace(spec)?),
            Command::UpdateNamespace { id, name, description } => {
                CommandOutcome::Namespace(self.update_namespace(&id, name, description)?)
            }
            Command::DeleteNamespace { id } => {
                self.delete_namespace(&id)?;
                CommandOutcome::Done
            }
            Command::CreateService { key, settings } => CommandOutcome::Service(self.create_service(&key, settings)?),
            Command::UpdateService { key, patch } => CommandOutcome::Service(self.update_service(&key, patch)?),
            Command::DeleteService { key } => {
                self.delete_service(&key)?;
                CommandOutcome::Done
            }
            Command::RegisterInstance { key, spec } => {
                self.require_cp(&key.namespace)?;
                CommandOutcome::Revision(self.register_instance(&key, spec, at)?)
            }
            Command::UpdateInstance { key, spec } => {
                self.require_cp(&key.namespace)?;
                CommandOutcome::Revision(self.update_instance(&key, spec, at)?)
            }
            Command::PatchInstance { key, instance, patch } => {
                self.require_cp(&key.namespace)?;
                CommandOutcome::Revision(self.patch_instance(&key, &instance, patch, at)?)
            }
            Command::DeregisterInstance { key, instance } => {
                self.require_cp(&key.namespace)?;
                CommandOutcome::Revision(self.deregister_instance(&key, &instance, at)?)
            }
            Command::SetCluster { key, cluster, settings } => {
                CommandOutcome::Service(self.set_cluster(&key, &cluster, settings)?)
            }
            Command::Auth(_) => {
                return Err(RegistryError::Internal(
                    "an auth command reached the registry; the state machine applies it to the auth state".to_owned(),
                ));
            }
            Command::ReportHealth(reports) => {
                self.report_health(&reports);
                CommandOutcome::Done
            }
            Command::SetNamespaceDns { id, answered } => {
                CommandOutcome::Namespace(self.set_namespace_dns(&id, answered)?)
            }
        })
    }

    /// The replicated part of the registry.
    #[must_use]
    pub fn export_cp(&self) -> CpState {
        let mut state = CpState {
            namespaces: self.namespaces.values().map(|n| n.spec.clone()).collect(),
            dns_closed: self.namespaces.values().filter(|n| !n.dns).map(|n| n.spec.id.clone()).collect(),
            ..CpState::default()
        };
        let mut keys: Vec<&ServiceKey> = self.services.keys().collect();
        keys.sort();
        for key in keys {
            let entry = self.services[key].read_recursive();
            let cp = self.namespaces.get(&key.namespace).is_some_and(|n| n.spec.mode == Mode::Cp);
            if entry.defined || cp {
                state.services.push((key.clone(), entry.settings.clone()));
            }
            let mut persistent: Vec<&Instance> =
                entry.instances.values().map(|slot| &*slot.instance).filter(|i| !i.ephemeral).collect();
            persistent.sort_by(|a, b| a.key.cmp(&b.key));
            state.instances.extend(persistent.into_iter().map(|i| (key.clone(), i.clone())));
        }
        state
    }

    /// Replaces the replicated part of the registry with `state` (a snapshot
    /// installed from the leader), rebuilding every index. Ephemeral instances
    /// stay, unless their namespace is gone.
    pub fn import_cp(&mut self, state: CpState) {
        let wanted: HashSet<NamespaceId> = state.namespaces.iter().map(|n| n.id.clone()).collect();
        // Namespaces the snapshot no longer has go, with everything in them.
        let stale: Vec<NamespaceId> = self.namespaces.keys().filter(|id| !wanted.contains(*id)).cloned().collect();
        for id in stale {
            let services: Vec<ServiceKey> = self.services.keys().filter(|k| k.namespace == id).cloned().collect();
            for key in services {
                self.drop_service(&key);
            }
            self.namespaces.remove(&id);
            let revision = self.next_revision();
            self.changes.push(crate::change::Change {
                revision,
                namespace: id,
                service: None,
                instance: None,
                kind: ChangeKind::NamespaceDeleted,
            });
        }
        let closed: HashSet<&NamespaceId> = state.dns_closed.iter().collect();
        let dns_changed: Vec<NamespaceId> = state
            .namespaces
            .iter()
            .filter(|spec| self.namespaces.get(&spec.id).is_some_and(|e| e.dns == closed.contains(&spec.id)))
            .map(|spec| spec.id.clone())
            .collect();
        for id in dns_changed {
            // Cannot fail: the namespace is here.
            let _ = self.set_namespace_dns(&id, !closed.contains(&id));
        }
        for spec in state.namespaces {
            let answered = !closed.contains(&spec.id);
            match self.namespaces.get_mut(&spec.id) {
                Some(entry) if entry.spec != spec => {
                    // The mode never changes; name and description may.
                    entry.spec.name = spec.name;
                    entry.spec.description = spec.description;
                    let id = entry.spec.id.clone();
                    let revision = self.next_revision();
                    if let Some(entry) = self.namespaces.get_mut(&id) {
                        entry.revision.raise_mut(revision);
                    }
                    self.changes.push(crate::change::Change {
                        revision,
                        namespace: id,
                        service: None,
                        instance: None,
                        kind: ChangeKind::NamespaceUpdated,
                    });
                }
                Some(_) => {}
                None => {
                    let id = spec.id.clone();
                    // Cannot fail: the id is free, and then the namespace is here.
                    let _ = self.create_namespace(spec);
                    if !answered {
                        let _ = self.set_namespace_dns(&id, false);
                    }
                }
            }
        }
        // Service definitions: take the snapshot's, forget the ones it lacks.
        let defined: HashSet<&ServiceKey> = state.services.iter().map(|(k, _)| k).collect();
        let undefined: Vec<ServiceKey> = self
            .services
            .iter()
            .filter(|(k, e)| e.read_recursive().defined && !defined.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in undefined {
            let empty = self
                .services
                .get(&key)
                .is_some_and(|e| e.read_recursive().instances.values().all(|s| !s.instance.ephemeral));
            if empty {
                self.drop_service(&key);
            } else if let Some(entry) = self.services.get_mut(&key).map(ServiceCell::get_mut) {
                // Its ephemeral instances keep it, as an implied service.
                entry.defined = false;
                entry.settings = ServiceSettings::default();
                let shared = entry.key.clone();
                self.touch(&shared, None, ChangeKind::ServiceUpdated);
            }
        }
        for (key, settings) in state.services {
            match self.services.get_mut(&key).map(ServiceCell::get_mut) {
                Some(entry) if entry.defined && entry.settings == settings => {}
                Some(entry) => {
                    entry.defined = true;
                    entry.settings = settings;
                    let shared = entry.key.clone();
                    self.forget_emptied(&key);
                    self.touch(&shared, None, ChangeKind::ServiceUpdated);
                }
                None => {
                    if self.ensure_service(&key, settings).is_ok()
                        && let Some(entry) = self.services.get_mut(&key).map(ServiceCell::get_mut)
                    {
                        entry.defined = true;
                    }
                }
            }
        }
        // Persistent instances: exactly the snapshot's.
        let keep: HashSet<(&ServiceKey, &InstanceKey)> = state.instances.iter().map(|(k, i)| (k, &i.key)).collect();
        let gone: Vec<(ServiceKey, InstanceKey)> = self
            .services
            .iter_mut()
            .flat_map(|(k, e)| {
                e.get_mut()
                    .instances
                    .values()
                    .filter(|s| !s.instance.ephemeral)
                    .map(move |s| (k.clone(), s.instance.key.clone()))
            })
            .filter(|(k, i)| !keep.contains(&(k, i)))
            .collect();
        for (key, instance) in gone {
            let _ = self.deregister_instance(&key, &instance, Millis::default());
        }
        for (key, instance) in state.instances {
            let spec = InstanceSpec {
                key: instance.key.clone(),
                weight: instance.weight,
                healthy: instance.healthy,
                enabled: instance.enabled,
                ephemeral: Some(false),
                metadata: instance.metadata.clone(),
                custom_id: instance.custom_id.as_deref().map(str::to_owned),
            };
            // The snapshot came from a registry that accepted it.
            let _ = self.register_instance(&key, spec, Millis::default());
        }
    }

    /// Removes a service and all its instances, whatever they are.
    pub(super) fn drop_service(&mut self, key: &ServiceKey) {
        let instances: Vec<InstanceKey> =
            self.services.get(key).map(|e| e.read_recursive().instances.keys().cloned().collect()).unwrap_or_default();
        for instance in instances {
            let _ = self.remove_instance(key, &instance, ChangeKind::InstanceDeregistered);
        }
        if let Some(entry) = self.services.get(key) {
            let shared = entry.read_recursive().key.clone();
            self.touch(&shared, None, ChangeKind::ServiceDeleted);
        }
        self.services.remove(key);
        self.emptied.get_mut().remove(key);
        if let Some(ns) = self.namespaces.get_mut(&key.namespace) {
            ns.services.remove(&(key.group.clone(), key.service.clone()));
        }
        let folded = super::folded_name(key.namespace.as_str(), key.group.as_str(), key.service.as_str());
        if self.folded.get(&folded) == Some(key) {
            self.folded.remove(&folded);
        }
    }
}
