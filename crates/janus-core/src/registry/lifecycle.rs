//! The lifecycle of services, one rule for every node and every restart:
//!
//! - A **defined** service (created or changed through the service API, or
//!   any service of a `cp` namespace) lives on Raft: it survives restarts and
//!   goes only when it is deleted, which Raft replicates.
//! - An **implied** service exists because ephemeral instances registered in
//!   it (Nacos creates services the same way). It lives while it has
//!   instances; once its last instance is gone it stays for a grace period
//!   ([`super::RegistryConfig::empty_service_grace_ms`], 60 s by default as
//!   Nacos's empty-service cleaner), so that an instance that restarts does
//!   not make its service flicker, and then it goes. Each node runs the
//!   grace period on its own clock. Implied services are not on Raft: after a
//!   restart they come back with their instances (from the peers' snapshot,
//!   or as clients register again).
//!
//! Deleting a definition while ephemeral instances live leaves an implied
//! service with the default settings; defining an implied service keeps its
//! instances.

use super::{Registry, ServiceCell};
use crate::name::ServiceKey;
use crate::time::Millis;

/// How often the reaper should call [`Registry::sweep_empty_services`]: a
/// service goes between its grace period and the grace period plus two of these.
pub const EMPTY_SERVICE_SWEEP_MS: u64 = 5_000;

impl Registry {
    /// Removes the implied services that have been empty for the grace
    /// period; returns how many went. A service seen empty for the first time
    /// is stamped now. Cost: the services emptied since, not all services.
    pub fn sweep_empty_services(&mut self, now: Millis) -> usize {
        if self.emptied.get_mut().is_empty() {
            return 0;
        }
        let grace = self.config.empty_service_grace_ms;
        let mut due: Vec<ServiceKey> = Vec::new();
        self.emptied.get_mut().retain(|key, since| {
            let Some(entry) = self.services.get_mut(key).map(ServiceCell::get_mut) else { return false };
            if entry.defined || !entry.instances.is_empty() {
                return false;
            }
            let since = *since.get_or_insert(now);
            if now.0.saturating_sub(since.0) >= grace {
                due.push(key.clone());
                return false;
            }
            true
        });
        for key in &due {
            self.drop_service(key);
        }
        due.len()
    }

    /// Forgets that a service was seen empty (it was defined, or got instances).
    pub(super) fn forget_emptied(&mut self, key: &ServiceKey) {
        self.emptied.get_mut().remove(key);
    }

    /// Implied services waiting out their grace period.
    #[must_use]
    pub fn empty_services_pending(&self) -> usize {
        self.emptied.lock().len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::model::{InstanceSpec, ServiceSettings};
    use crate::name::{ClusterName, GroupName, InstanceKey, NamespaceId, ServiceName};
    use crate::registry::RegistryConfig;

    fn key(name: &str) -> ServiceKey {
        ServiceKey::new(NamespaceId::public(), GroupName::default_group(), ServiceName::new(name).unwrap())
    }

    fn instance(port: u16) -> InstanceKey {
        InstanceKey::new(ClusterName::default_cluster(), "127.0.0.1".parse().unwrap(), port)
    }

    #[test]
    fn an_implied_service_goes_a_grace_period_after_its_last_instance_and_a_defined_one_stays() {
        let mut reg = Registry::new(RegistryConfig { empty_service_grace_ms: 60_000, ..RegistryConfig::default() });
        reg.register_instance(&key("implied"), InstanceSpec::new(instance(1)), Millis(0)).unwrap();
        reg.create_service(&key("defined"), ServiceSettings::default()).unwrap();
        reg.register_instance(&key("defined"), InstanceSpec::new(instance(2)), Millis(0)).unwrap();
        reg.deregister_instance(&key("implied"), &instance(1), Millis(1_000)).unwrap();
        reg.deregister_instance(&key("defined"), &instance(2), Millis(1_000)).unwrap();
        assert_eq!(reg.sweep_empty_services(Millis(5_000)), 0, "first seen empty now");
        assert_eq!(reg.sweep_empty_services(Millis(64_000)), 0, "still within the grace period");
        assert!(reg.service(&key("implied")).is_ok());
        assert_eq!(reg.sweep_empty_services(Millis(65_000)), 1);
        assert!(reg.service(&key("implied")).is_err(), "the implied service went");
        assert!(reg.service(&key("defined")).is_ok(), "a definition stays until deleted");
        assert_eq!(reg.empty_services_pending(), 0);
    }

    #[test]
    fn an_instance_coming_back_within_the_grace_period_keeps_the_service() {
        let mut reg = Registry::new(RegistryConfig::default());
        reg.register_instance(&key("web"), InstanceSpec::new(instance(1)), Millis(0)).unwrap();
        reg.deregister_instance(&key("web"), &instance(1), Millis(0)).unwrap();
        reg.sweep_empty_services(Millis(1_000));
        reg.register_instance(&key("web"), InstanceSpec::new(instance(1)), Millis(2_000)).unwrap();
        assert_eq!(reg.sweep_empty_services(Millis(120_000)), 0);
        assert_eq!(reg.service(&key("web")).unwrap().instance_count, 1);
    }

    #[test]
    fn a_deleted_definition_with_live_instances_leaves_an_implied_service() {
        let mut reg = Registry::new(RegistryConfig::default());
        reg.create_service(&key("web"), ServiceSettings::new(Some(0.5), crate::model::Metadata::new()).unwrap())
            .unwrap();
        reg.register_instance(&key("web"), InstanceSpec::new(instance(1)), Millis(0)).unwrap();
        reg.delete_service(&key("web")).unwrap();
        let info = reg.service(&key("web")).unwrap();
        assert_eq!(info.instance_count, 1, "the live instance is not orphaned");
        assert_eq!(info.settings, ServiceSettings::default(), "the deleted definition does not come back");
        assert!(reg.export_cp().services.is_empty(), "and it is not on Raft");
        reg.deregister_instance(&key("web"), &instance(1), Millis(1)).unwrap();
        reg.sweep_empty_services(Millis(2));
        assert_eq!(reg.sweep_empty_services(Millis(70_000)), 1, "then it follows the implied lifecycle");
    }

    #[test]
    fn revisions_of_a_deleted_service_never_go_back() {
        let mut reg = Registry::new(RegistryConfig { empty_service_grace_ms: 0, ..RegistryConfig::default() });
        reg.register_instance(&key("web"), InstanceSpec::new(instance(1)), Millis(0)).unwrap();
        let before = reg.service_revision(&key("web"));
        reg.deregister_instance(&key("web"), &instance(1), Millis(0)).unwrap();
        let emptied = reg.service_revision(&key("web"));
        assert!(emptied > before);
        reg.sweep_empty_services(Millis(1));
        assert!(reg.service(&key("web")).is_err());
        assert!(reg.service_revision(&key("web")) > emptied, "the deletion is a newer revision, not 0");
        assert!(reg.service_revision(&key("never-existed")) >= 1, "never 0");
    }
}
