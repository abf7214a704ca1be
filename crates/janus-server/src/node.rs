//! [`Node`]: one server's registry service. Reads come from the local store;
//! each write goes to the engine that owns it: ephemeral instances of `ap`
//! namespaces to the AP engine; namespaces, service definitions and the
//! persistent instances of `cp` namespaces to Raft. An ephemeral registration
//! never waits for Raft, so losing Raft quorum does not touch AP traffic.

use std::sync::Arc;

use async_trait::async_trait;
use janus_ap::ApEngine;
use janus_core::lease::LeaseTiming;
use janus_core::model::{
    ClusterSettings, InstancePatch, InstanceSpec, Mode, NamespaceInfo, NamespaceSpec, ServiceInfo, ServicePatch,
    ServiceSettings,
};
use janus_core::registry::Binding;
use janus_core::service::{Consistency, NodeHealth, ReadFence, WriteOutcome};
use janus_core::{ClusterName, InstanceKey, NamespaceId, RegistryError, RegistryService, RegistryStore, ServiceKey};
use janus_core::{Command, CommandOutcome};
use janus_raft::{CpEngine, CpWriteError};
use tracing::info;

/// A node: its store and engines.
#[derive(Debug)]
pub struct Node {
    store: Arc<RegistryStore>,
    ap: ApEngine,
    cp: CpEngine,
    health: Option<janus_health::HealthChecker>,
    /// The gRPC front end's counters and subscriptions, once it serves.
    grpc: std::sync::OnceLock<janus_grpc::GrpcDirectory>,
}

/// Where the health checker's verdicts go: one Raft write per batch.
#[derive(Debug, Clone)]
pub struct RaftHealthSink(pub CpEngine);

impl janus_health::HealthSink for RaftHealthSink {
    fn report(
        &self,
        reports: Vec<janus_core::registry::HealthReport>,
    ) -> futures_util::future::BoxFuture<'static, Result<(), janus_health::SinkError>> {
        let cp = self.0.clone();
        Box::pin(async move {
            match cp.write(Command::ReportHealth(reports)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => Err(janus_health::SinkError::Refused(error)),
                Err(error) => Err(janus_health::SinkError::NotWritten(error.to_string())),
            }
        })
    }
}

impl std::fmt::Debug for CpHandle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CpHandle")
    }
}

/// The namespace and mode a Raft write is about, for error messages.
struct CpHandle<'a> {
    namespace: &'a NamespaceId,
    mode: Mode,
}

impl Node {
    /// A node over a store with its engines.
    #[must_use]
    pub fn new(store: Arc<RegistryStore>, ap: ApEngine, cp: CpEngine) -> Self {
        Self { store, ap, cp, health: None, grpc: std::sync::OnceLock::new() }
    }

    /// The node with its health checker (for status and metrics).
    #[must_use]
    pub fn with_health(mut self, health: janus_health::HealthChecker) -> Self {
        self.health = Some(health);
        self
    }

    /// Shows the gRPC front end's counters in the cluster status and its
    /// subscriptions to operators (once).
    pub fn show_grpc(&self, directory: janus_grpc::GrpcDirectory) {
        let _ = self.grpc.set(directory);
    }

    /// The CP engine (its Raft id and the leader it knows).
    #[must_use]
    pub const fn cp(&self) -> &CpEngine {
        &self.cp
    }

    /// The node's store, writable: for the server's own wiring (front ends
    /// get the read-only [`RegistryService::view`]).
    #[must_use]
    pub fn store(&self) -> &Arc<RegistryStore> {
        &self.store
    }

    /// The AP engine (its view of the cluster).
    #[must_use]
    pub const fn ap(&self) -> &ApEngine {
        &self.ap
    }

    /// The namespace's mode. A namespace this node does not know may have
    /// been created through another node a moment ago: before answering "not
    /// found", catch up with the Raft leader (a read fence) and look again.
    /// Used by writes and linearizable reads; local reads use [`Self::local_mode`].
    async fn mode(&self, namespace: &NamespaceId) -> Result<Mode, RegistryError> {
        match self.local_mode(namespace) {
            Err(RegistryError::NamespaceNotFound(_)) if self.cp.linearize().await.is_ok() => self.local_mode(namespace),
            known_or_unconfirmed => known_or_unconfirmed,
        }
    }

    /// The namespace's mode as this node knows it.
    fn local_mode(&self, namespace: &NamespaceId) -> Result<Mode, RegistryError> {
        self.store.read(|r| r.mode_of(namespace))
    }

    /// Checks `command` on this node's whole state before it is proposed
    /// (see [`janus_core::Registry::check_command`]): a refused command never
    /// enters the Raft log. A refusal may come from this node lagging the
    /// leader (a service created through another node a moment ago), so
    /// before answering it, catch up with the leader (a read fence) and check
    /// again; without a quorum the local answer stands.
    async fn check(&self, command: &Command) -> Result<(), RegistryError> {
        match self.store.read(|r| r.check_command(command)) {
            Err(RegistryError::Invalid { field, rule }) => Err(RegistryError::Invalid { field, rule }),
            Err(refused) => match self.cp.linearize().await {
                Ok(_) => self.store.read(|r| r.check_command(command)),
                Err(_) => Err(refused),
            },
            Ok(()) => Ok(()),
        }
    }

    /// Writes through Raft once [`Self::check`] passes; a write that cannot
    /// commit names the namespace and mode.
    async fn replicate(&self, about: CpHandle<'_>, command: Command) -> Result<CommandOutcome, RegistryError> {
        self.check(&command).await?;
        match self.cp.write(command).await {
            Ok(outcome) => outcome,
            Err(error) => Err(cp_failed(&about, error)),
        }
    }

    async fn replicate_instance(&self, key: &ServiceKey, command: Command) -> Result<WriteOutcome, RegistryError> {
        let about = CpHandle { namespace: &key.namespace, mode: Mode::Cp };
        let revision = self.replicate(about, command).await?.into_revision().inspect_err(log_fault)?;
        Ok(WriteOutcome { mode: Mode::Cp, revision })
    }

    async fn replicate_service(&self, key: &ServiceKey, command: Command) -> Result<ServiceInfo, RegistryError> {
        let mode = self.mode(&key.namespace).await?;
        self.replicate(CpHandle { namespace: &key.namespace, mode }, command)
            .await?
            .into_service()
            .inspect_err(log_fault)
    }

    async fn replicate_namespace(
        &self,
        id: &NamespaceId,
        mode: Mode,
        command: Command,
    ) -> Result<CommandOutcome, RegistryError> {
        self.replicate(CpHandle { namespace: id, mode }, command).await
    }

    fn outcome(revision: u64) -> WriteOutcome {
        WriteOutcome { mode: Mode::Ap, revision }
    }
}

/// Logs a command answered with the wrong kind of outcome (the
/// [`CommandOutcome`] accessors turn it into an internal error, 500): a bug.
fn log_fault(error: &RegistryError) {
    tracing::error!(%error, "Raft write failed on an internal fault");
}

/// A Raft write or read fence about `about` that did not complete: no
/// quorum, a refusal or an unreachable leader leave the namespace
/// unavailable (503); a malformed message is an internal fault (500).
fn cp_failed(about: &CpHandle<'_>, error: CpWriteError) -> RegistryError {
    match error {
        CpWriteError::Malformed(reason) => {
            tracing::error!(namespace = %about.namespace, %reason, "Raft write failed on an internal fault");
            RegistryError::Internal(format!("namespace '{}' ({}): {reason}", about.namespace, about.mode))
        }
        error @ (CpWriteError::NoQuorum { .. } | CpWriteError::Refused(_) | CpWriteError::Unreachable { .. }) => {
            RegistryError::Unavailable {
                namespace: about.namespace.to_string(),
                mode: about.mode,
                reason: error.to_string(),
            }
        }
    }
}

#[async_trait]
impl RegistryService for Node {
    fn view(&self) -> janus_core::StoreView<'_> {
        janus_core::StoreView::new(&self.store)
    }

    async fn create_namespace(&self, spec: NamespaceSpec) -> Result<NamespaceInfo, RegistryError> {
        let (id, mode) = (spec.id.clone(), spec.mode);
        let outcome = self.replicate_namespace(&id, mode, Command::CreateNamespace(spec)).await?;
        let info = outcome.into_namespace().inspect_err(log_fault)?;
        info!(namespace = %id, %mode, "namespace created");
        Ok(info)
    }

    async fn update_namespace(
        &self,
        id: NamespaceId,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<NamespaceInfo, RegistryError> {
        let mode = self.mode(&id).await?;
        let command = Command::UpdateNamespace { id: id.clone(), name, description };
        let info = self.replicate_namespace(&id, mode, command).await?.into_namespace().inspect_err(log_fault)?;
        info!(namespace = %id, "namespace updated");
        Ok(info)
    }

    async fn set_namespace_dns(&self, id: NamespaceId, answered: bool) -> Result<NamespaceInfo, RegistryError> {
        let mode = self.mode(&id).await?;
        let command = Command::SetNamespaceDns { id: id.clone(), answered };
        let info = self.replicate_namespace(&id, mode, command).await?.into_namespace().inspect_err(log_fault)?;
        info!(namespace = %id, answered, "namespace DNS access rule set");
        Ok(info)
    }

    async fn delete_namespace(&self, id: NamespaceId) -> Result<(), RegistryError> {
        let mode = self.mode(&id).await?;
        self.replicate_namespace(&id, mode, Command::DeleteNamespace { id: id.clone() }).await.map(|_| ())?;
        info!(namespace = %id, "namespace deleted");
        Ok(())
    }

    async fn create_service(&self, key: ServiceKey, settings: ServiceSettings) -> Result<ServiceInfo, RegistryError> {
        let service = key.clone();
        self.replicate_service(&service, Command::CreateService { key, settings })
            .await
            .inspect(|_| info!(%service, "service defined"))
    }

    async fn update_service(&self, key: ServiceKey, patch: ServicePatch) -> Result<ServiceInfo, RegistryError> {
        let service = key.clone();
        self.replicate_service(&service, Command::UpdateService { key, patch })
            .await
            .inspect(|_| info!(%service, "service updated"))
    }

    async fn delete_service(&self, key: ServiceKey) -> Result<(), RegistryError> {
        let mode = self.mode(&key.namespace).await?;
        let command = Command::DeleteService { key: key.clone() };
        self.replicate(CpHandle { namespace: &key.namespace, mode }, command).await.map(|_| ())?;
        info!(service = %key, "service deleted");
        Ok(())
    }

    async fn set_cluster(
        &self,
        key: ServiceKey,
        cluster: ClusterName,
        settings: ClusterSettings,
    ) -> Result<ServiceInfo, RegistryError> {
        let (service, name) = (key.clone(), cluster.clone());
        self.replicate_service(&service, Command::SetCluster { key, cluster, settings })
            .await
            .inspect(|_| info!(%service, cluster = %name, "cluster settings set"))
    }

    async fn register_instance(&self, key: ServiceKey, spec: InstanceSpec) -> Result<WriteOutcome, RegistryError> {
        match self.mode(&key.namespace).await? {
            Mode::Ap => self.ap.register(&key, spec).await.map(Self::outcome),
            Mode::Cp => self.replicate_instance(&key.clone(), Command::RegisterInstance { key, spec }).await,
        }
    }

    async fn update_instance(&self, key: ServiceKey, spec: InstanceSpec) -> Result<WriteOutcome, RegistryError> {
        match self.mode(&key.namespace).await? {
            Mode::Ap => self.ap.update(&key, spec).await.map(Self::outcome),
            Mode::Cp => self.replicate_instance(&key.clone(), Command::UpdateInstance { key, spec }).await,
        }
    }

    async fn patch_instance(
        &self,
        key: ServiceKey,
        instance: InstanceKey,
        patch: InstancePatch,
    ) -> Result<WriteOutcome, RegistryError> {
        match self.mode(&key.namespace).await? {
            Mode::Ap => self.ap.patch(&key, &instance, patch).await.map(Self::outcome),
            Mode::Cp => self.replicate_instance(&key.clone(), Command::PatchInstance { key, instance, patch }).await,
        }
    }

    async fn deregister_instance(&self, key: ServiceKey, instance: InstanceKey) -> Result<WriteOutcome, RegistryError> {
        match self.mode(&key.namespace).await? {
            Mode::Ap => self.ap.deregister(&key, &instance).await.map(Self::outcome),
            Mode::Cp => self.replicate_instance(&key.clone(), Command::DeregisterInstance { key, instance }).await,
        }
    }

    async fn heartbeat(&self, key: ServiceKey, instance: InstanceKey) -> Result<LeaseTiming, RegistryError> {
        // The registry refuses heartbeats for cp namespaces with a clear message.
        self.ap.heartbeat(&key, &instance).await
    }

    async fn publish_bound(
        &self,
        key: ServiceKey,
        specs: Vec<InstanceSpec>,
        binding: Binding,
    ) -> Result<WriteOutcome, RegistryError> {
        // The registry refuses cp namespaces with a message naming the mode.
        self.mode(&key.namespace).await?;
        self.ap.publish_bound(&key, specs, binding).map(Self::outcome)
    }

    async fn unpublish_bound(&self, key: ServiceKey, binding: Binding) -> Result<WriteOutcome, RegistryError> {
        self.mode(&key.namespace).await?;
        self.ap.unpublish_bound(&key, binding).map(Self::outcome)
    }

    async fn release_binding(&self, binding: Binding) -> Result<u64, RegistryError> {
        Ok(u64::try_from(self.ap.release_binding(binding)).unwrap_or(u64::MAX))
    }

    async fn read_fence(&self, namespace: &NamespaceId, consistency: Consistency) -> Result<ReadFence, RegistryError> {
        // A local read answers from this node's state, an unknown namespace included.
        let mode = match consistency {
            Consistency::Local => self.local_mode(namespace)?,
            Consistency::Linearizable => self.mode(namespace).await?,
        };
        match (mode, consistency) {
            (Mode::Cp, Consistency::Local) => Ok(ReadFence { consistency, raft_index: Some(self.cp.applied_index()) }),
            (Mode::Cp, Consistency::Linearizable) => match self.cp.linearize().await {
                Ok(index) => Ok(ReadFence { consistency, raft_index: Some(index) }),
                Err(error) => Err(cp_failed(&CpHandle { namespace, mode }, error)),
            },
            (Mode::Ap, Consistency::Local) => Ok(ReadFence { consistency, raft_index: None }),
            (Mode::Ap, Consistency::Linearizable) => Err(RegistryError::ModeMismatch {
                namespace: namespace.to_string(),
                mode,
                detail: "linearizable reads are for cp namespaces; ap reads are always local".to_owned(),
            }),
        }
    }

    fn cluster_status(&self) -> janus_core::status::ClusterStatus {
        let health = self.health.as_ref().map(|checker| {
            let stats = checker.stats();
            let read = |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
            janus_core::status::HealthCheckStatus {
                checked: read(&stats.checked),
                probes: read(&stats.probes),
                probe_failures: read(&stats.probe_failures),
                flips: read(&stats.flips),
                refused: read(&stats.refused),
                refused_targets: stats.refused_targets(),
            }
        });
        janus_core::status::ClusterStatus {
            node: self.cp.node_id(),
            ap: self.ap.status(),
            raft: Some(self.cp.status()),
            health,
            grpc: self.grpc.get().map(janus_grpc::GrpcDirectory::status),
        }
    }

    fn owner_of(&self, key: &ServiceKey, instance: &InstanceKey) -> Option<janus_core::NodeId> {
        self.ap.owner_of(key, instance)
    }

    fn subscribers(&self, key: &ServiceKey) -> Vec<janus_core::status::Subscriber> {
        self.grpc.get().map(|directory| directory.subscribers(key)).unwrap_or_default()
    }

    fn auth_state(&self) -> Option<Arc<janus_auth::AuthStore>> {
        Some(self.cp.auth().clone())
    }

    async fn auth_write(&self, command: janus_auth::AuthCommand) -> Result<janus_auth::AuthOutcome, RegistryError> {
        // Checked here first, as registry commands are: a refusal that may
        // come from lagging the leader is checked again after a read fence.
        let check = || self.cp.auth().read(|state| state.check(&command));
        if let Err(refused) = check() {
            if self.cp.linearize().await.is_err() {
                return Err(RegistryError::Auth(refused));
            }
            check().map_err(RegistryError::Auth)?;
        }
        match self.cp.write(Command::Auth(command)).await {
            Ok(Ok(CommandOutcome::Auth(outcome))) => outcome.map_err(RegistryError::Auth),
            Ok(Ok(other)) => {
                let error = RegistryError::Internal(format!("unexpected Raft outcome {other:?} of an auth command"));
                log_fault(&error);
                Err(error)
            }
            Ok(Err(error)) => Err(error),
            Err(error) => Err(RegistryError::Auth(janus_auth::AuthError::Unavailable(error.to_string()))),
        }
    }

    fn health(&self) -> NodeHealth {
        let now = self.store.now();
        NodeHealth { ready: self.is_ready(), stats: self.store.read(|r| r.stats(now)) }
    }

    fn is_ready(&self) -> bool {
        self.ap.is_ready()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use janus_core::{CommandOutcome, Mode, NamespaceId, RegistryError};
    use janus_http::error::ApiError;
    use janus_raft::{CpOperation, CpWriteError};

    use super::{CpHandle, cp_failed};

    #[test]
    fn an_unexpected_raft_outcome_is_an_internal_fault_answered_500() {
        assert_eq!(CommandOutcome::Revision(7).into_revision(), Ok(7));
        let wrong = [
            CommandOutcome::Done.into_service().err(),
            CommandOutcome::Done.into_namespace().err(),
            CommandOutcome::Done.into_revision().err(),
        ];
        for error in wrong {
            assert!(matches!(&error, Some(RegistryError::Internal(context)) if context.contains("Done")), "{error:?}");
            let api = ApiError::from(error.unwrap_or_else(|| RegistryError::invalid("test", "no error")));
            assert_eq!((api.status, api.code), (StatusCode::INTERNAL_SERVER_ERROR, "internal"));
        }
    }

    #[test]
    fn a_failed_raft_write_is_unavailable_unless_a_message_was_malformed() {
        let namespace = NamespaceId::new("pay").unwrap_or_else(|_| NamespaceId::public());
        let about = || CpHandle { namespace: &namespace, mode: Mode::Cp };
        let no_quorum = CpWriteError::NoQuorum { during: CpOperation::Write, waited_ms: 1600 };
        let refused = CpWriteError::Refused("Raft refused the write: stopping".to_owned());
        for error in [no_quorum, refused] {
            let reason = error.to_string();
            assert_eq!(
                cp_failed(&about(), error),
                RegistryError::Unavailable { namespace: "pay".to_owned(), mode: Mode::Cp, reason }
            );
        }
        let malformed =
            cp_failed(&about(), CpWriteError::Malformed("the Raft leader sent a malformed reply".to_owned()));
        assert!(matches!(&malformed, RegistryError::Internal(context) if context.contains("pay")), "{malformed:?}");
    }

    #[test]
    fn a_no_quorum_error_says_how_long_it_waited() {
        let error = CpWriteError::NoQuorum { during: CpOperation::Write, waited_ms: 1600 };
        assert_eq!(error.to_string(), "the write was not committed within 1600 ms: no Raft quorum");
    }
}
