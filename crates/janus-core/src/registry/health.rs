//! Server-side health of persistent instances: cluster settings (how a
//! cluster is checked), the list of what a checker should probe, and the
//! batched health reports a checker writes through Raft.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Registry, ServiceCell};
use crate::change::ChangeKind;
use crate::error::RegistryError;
use crate::model::{ClusterSettings, HealthCheck, Mode, ServiceInfo};
use crate::name::{ClusterName, InstanceKey, ServiceKey};
use crate::replica::record_hash_with;

/// A checker's verdict on one persistent instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Its service.
    pub service: ServiceKey,
    /// The instance.
    pub instance: InstanceKey,
    /// Healthy or not.
    pub healthy: bool,
}

/// A persistent instance a checker should probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckTarget {
    /// Its service.
    pub service: Arc<ServiceKey>,
    /// The instance.
    pub instance: InstanceKey,
    /// Stable hash of the instance (who checks it is decided by it).
    pub hash: u64,
    /// Address to probe.
    pub ip: IpAddr,
    /// Port to probe.
    pub port: u16,
    /// How.
    pub check: HealthCheck,
    /// Its health now.
    pub healthy: bool,
}

impl Registry {
    /// Sets how a cluster of a service is checked (and its metadata). Like
    /// [`Registry::update_service`], this defines a service of an `ap`
    /// namespace that had no definition.
    ///
    /// # Errors
    /// Namespace not found, service not found in a `cp` namespace, or invalid settings.
    pub fn set_cluster(
        &mut self,
        key: &ServiceKey,
        cluster: &ClusterName,
        settings: ClusterSettings,
    ) -> Result<ServiceInfo, RegistryError> {
        settings.health_check.validate()?;
        crate::validate::check_metadata(&settings.metadata)?;
        // Like a service update: a definition, created in an `ap` namespace if missing.
        let entry = self.definition_mut(key)?;
        entry.settings.clusters.insert(cluster.clone(), settings);
        let shared = entry.key.clone();
        self.touch(&shared, None, ChangeKind::ServiceUpdated);
        self.service(key)
    }

    /// How a cluster of a service is checked (the default, a TCP connect, if unset).
    #[must_use]
    pub fn health_check(&self, key: &ServiceKey, cluster: &ClusterName) -> HealthCheck {
        self.services
            .get(key)
            .and_then(|e| e.read_recursive().settings.clusters.get(cluster).map(|c| c.health_check.clone()))
            .unwrap_or_default()
    }

    /// Applies checkers' verdicts to persistent instances; an instance that
    /// is gone, ephemeral, or already in that state is skipped. Returns how
    /// many changed.
    pub fn report_health(&mut self, reports: &[HealthReport]) -> usize {
        let mut changed = 0;
        for report in reports {
            let Some(entry) = self.services.get_mut(&report.service).map(ServiceCell::get_mut) else { continue };
            let Some(slot) = entry.instances.get_mut(&report.instance) else { continue };
            if slot.instance.ephemeral || slot.instance.healthy == report.healthy {
                continue;
            }
            let mut updated = (*slot.instance).clone();
            updated.healthy = report.healthy;
            slot.instance = Arc::new(updated);
            let shared = entry.key.clone();
            self.touch(&shared, Some(report.instance.clone()), ChangeKind::InstanceHealthChanged);
            changed += 1;
        }
        changed
    }

    /// Every persistent instance of a `cp` namespace whose cluster is checked
    /// (not `none`) and whose hash `mine` accepts, with where and how to probe it.
    #[must_use]
    pub fn check_targets(&self, mine: &dyn Fn(u64) -> bool) -> Vec<CheckTarget> {
        let mut targets = Vec::new();
        for (key, entry) in &self.services {
            if self.namespaces.get(&key.namespace).is_none_or(|n| n.spec.mode != Mode::Cp) {
                continue;
            }
            let service_hash = crate::replica::service_hash(key);
            let entry = entry.read_recursive();
            for (instance, slot) in &entry.instances {
                if slot.instance.ephemeral {
                    continue;
                }
                let hash = record_hash_with(service_hash, instance);
                if !mine(hash) {
                    continue;
                }
                let check =
                    entry.settings.clusters.get(&instance.cluster).map(|c| c.health_check.clone()).unwrap_or_default();
                let port = match &check {
                    HealthCheck::None => continue,
                    HealthCheck::Tcp { port } | HealthCheck::Http { port, .. } => port.unwrap_or(instance.port),
                };
                targets.push(CheckTarget {
                    service: entry.key.clone(),
                    instance: instance.clone(),
                    hash,
                    ip: instance.ip,
                    port,
                    check,
                    healthy: slot.instance.healthy,
                });
            }
        }
        targets
    }
}
