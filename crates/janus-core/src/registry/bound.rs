//! Connection-bound instances: what a Nacos 2.x gRPC client registers over its
//! connection. They have no lease and need no heartbeats: they live while the
//! connection lives, and the front end releases them when it closes.
//!
//! Nacos keeps one published set per (connection, service): a register
//! replaces it, a batch register replaces it, a deregister withdraws it. The
//! registry keeps that set in a binding index; every instance slot also
//! names the [`Binding`] it belongs to. The index may hold stale entries (an
//! instance since deregistered over HTTP, or re-registered by another
//! connection), so every removal here is conditional: it deletes a slot only
//! while the slot is still bound to the binding being cleaned. A late cleanup
//! of a dead connection therefore never undoes a newer registration.
//!
//! Re-registering a bound instance over HTTP unbinds it (it gets a lease, as
//! any HTTP registration); a heartbeat on a bound instance answers without
//! starting a lease.
//!
//! In a cluster the binding travels in the instance's record. A node that
//! receives the deletion of an instance it still holds for a live connection
//! writes it again above the deletion (see `replica.rs`); the AP engine
//! removes the instances of connections gone for good with
//! [`Registry::clear_orphan`] (`docs/ap-protocol.md`, "Connection-bound
//! instances").

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{InstanceSlot, Registry, ServiceCell};
use crate::change::ChangeKind;
use crate::error::RegistryError;
use crate::model::{InstanceSpec, ServiceSettings};
use crate::name::{InstanceKey, ServiceKey};
use crate::replica::{NodeId, Version};
use crate::time::Millis;

/// The client connection an instance is bound to: the node holding it and
/// the connection's id there (unique within the node's process lifetime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Binding {
    /// The node the client is connected to.
    pub node: NodeId,
    /// The connection on that node.
    pub conn: u64,
}

/// What each live binding published, by service.
#[derive(Debug, Default)]
pub(super) struct BindingIndex {
    published: HashMap<Binding, HashMap<ServiceKey, Vec<InstanceKey>>>,
}

impl BindingIndex {
    /// Makes `instances` the binding's set for `service`; returns the set it replaces.
    fn replace(&mut self, binding: Binding, service: &ServiceKey, instances: Vec<InstanceKey>) -> Vec<InstanceKey> {
        let services = self.published.entry(binding).or_default();
        services.insert(service.clone(), instances).unwrap_or_default()
    }

    /// Takes the binding's set for `service` out of the index.
    fn withdraw(&mut self, binding: Binding, service: &ServiceKey) -> Vec<InstanceKey> {
        let Some(services) = self.published.get_mut(&binding) else { return Vec::new() };
        let taken = services.remove(service).unwrap_or_default();
        if services.is_empty() {
            self.published.remove(&binding);
        }
        taken
    }

    /// Whether the binding published `instance` in `service`.
    pub(super) fn holds(&self, binding: Binding, service: &ServiceKey, instance: &InstanceKey) -> bool {
        self.published.get(&binding).and_then(|s| s.get(service)).is_some_and(|i| i.contains(instance))
    }

    /// Whether a connection of this node is live (has published something).
    fn is_live(&self, binding: Binding) -> bool {
        self.published.contains_key(&binding)
    }

    /// Takes everything the binding published out of the index.
    fn release(&mut self, binding: Binding) -> HashMap<ServiceKey, Vec<InstanceKey>> {
        self.published.remove(&binding).unwrap_or_default()
    }
}

impl Registry {
    /// Makes `specs` the instances connection `binding` publishes in service
    /// `key` (Nacos register and batch register): each is registered (or
    /// updated) bound to the connection, without a lease, and the instances
    /// the connection published there before and no longer lists are removed.
    /// Returns the service's revision.
    ///
    /// # Errors
    /// Invalid fields, namespace not found, or a `cp` namespace (bound
    /// instances are ephemeral).
    pub fn publish_bound(
        &mut self,
        key: &ServiceKey,
        specs: Vec<InstanceSpec>,
        binding: Binding,
        now: Millis,
    ) -> Result<u64, RegistryError> {
        let mode = self.mode_of(&key.namespace)?;
        if !mode.is_ephemeral() {
            return Err(RegistryError::ModeMismatch {
                namespace: key.namespace.to_string(),
                mode,
                detail: "instances registered over a client connection are ephemeral and need an ap namespace; \
                         register a persistent instance (ephemeral=false) in a cp namespace"
                    .to_owned(),
            });
        }
        for spec in &specs {
            spec.validate()?;
        }
        self.ensure_service(key, ServiceSettings::default())?;
        let mut published = Vec::with_capacity(specs.len());
        let mut seen = HashSet::with_capacity(specs.len());
        for spec in specs {
            let instance = self.bind_instance(key, spec, binding)?;
            if seen.insert(instance.clone()) {
                published.push(instance);
            }
        }
        let previous = self.bound.replace(binding, key, published);
        for instance in previous.into_iter().filter(|i| !seen.contains(i)) {
            self.remove_if_bound(key, &instance, binding, ChangeKind::InstanceDeregistered, now);
        }
        Ok(self.service_revision(key))
    }

    /// Withdraws what connection `binding` published in service `key` (Nacos
    /// deregister: the connection's set goes, whatever instance was named).
    /// Returns the service's revision; withdrawing nothing is not an error.
    ///
    /// # Errors
    /// Namespace not found.
    pub fn unpublish_bound(&mut self, key: &ServiceKey, binding: Binding, now: Millis) -> Result<u64, RegistryError> {
        self.mode_of(&key.namespace)?;
        for instance in self.bound.withdraw(binding, key) {
            self.remove_if_bound(key, &instance, binding, ChangeKind::InstanceDeregistered, now);
        }
        Ok(self.service_revision(key))
    }

    /// Connection `binding` is gone: removes every instance still bound to
    /// it (those since re-registered elsewhere stay). Returns how many went.
    pub fn release_binding(&mut self, binding: Binding, now: Millis) -> usize {
        let mut removed = 0;
        for (service, instances) in self.bound.release(binding) {
            for instance in &instances {
                if self.remove_if_bound(&service, instance, binding, ChangeKind::InstanceExpired, now) {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Removes an instance whose connection is gone for good (its node left
    /// the ring for longer than the grace, or it is a connection of an
    /// earlier run of this node) if it is still bound to that connection.
    /// Returns whether it went.
    pub fn clear_orphan(&mut self, key: &ServiceKey, instance: &InstanceKey, binding: Binding, now: Millis) -> bool {
        self.remove_if_bound(key, instance, binding, ChangeKind::InstanceExpired, now)
    }

    /// Whether `binding` is a live connection of this node.
    #[must_use]
    pub fn is_live_binding(&self, binding: Binding) -> bool {
        self.bound.is_live(binding)
    }

    /// The binding of an instance, if it is bound.
    #[must_use]
    pub fn binding_of(&self, key: &ServiceKey, instance: &InstanceKey) -> Option<Binding> {
        self.services.get(key).and_then(|e| e.read_recursive().instances.get(instance).and_then(|slot| slot.binding))
    }

    /// Registers or updates one instance bound to `binding`, stopping its
    /// lease if it had one; returns its key.
    fn bind_instance(
        &mut self,
        key: &ServiceKey,
        spec: InstanceSpec,
        binding: Binding,
    ) -> Result<InstanceKey, RegistryError> {
        let entry = self.services.get_mut(key).map(ServiceCell::get_mut).ok_or_else(|| Self::service_not_found(key))?;
        let shared = entry.key.clone();
        let mut instance_key = spec.key.clone();
        let Some(slot) = entry.instances.get_mut(&instance_key) else {
            instance_key.cluster = entry.intern(&spec.key.cluster);
            let instance = spec.into_instance(instance_key.clone(), true);
            let slot = InstanceSlot {
                binding: Some(binding),
                ..InstanceSlot::new(Arc::new(instance), None, Version::default(), Millis(0))
            };
            entry.instances.insert(instance_key.clone(), slot);
            self.instance_count.add(1);
            let version = self.next_version(&shared, &instance_key, Version::default());
            self.set_version(&shared, &instance_key, version);
            self.touch(&shared, Some(instance_key.clone()), ChangeKind::InstanceRegistered);
            return Ok(instance_key);
        };
        instance_key.cluster = slot.instance.key.cluster.clone();
        let updated = spec.into_instance(instance_key.clone(), true);
        let rebound = slot.binding != Some(binding);
        slot.binding = Some(binding);
        let lease = slot.lease.take();
        let unchanged = *slot.instance == updated;
        if !unchanged {
            slot.instance = Arc::new(updated);
        }
        let previous = slot.version;
        if let Some(lease) = lease {
            self.leases.stop(&lease);
            self.preservation.lease_ended(lease.timing.renewals_per_hour());
        }
        if !unchanged || rebound {
            // A new binding travels to the peers too (a redo on this node
            // takes the instance over from a dead connection elsewhere).
            let version = self.next_version(&shared, &instance_key, previous);
            self.set_version(&shared, &instance_key, version);
        }
        if !unchanged {
            self.touch(&shared, Some(instance_key.clone()), ChangeKind::InstanceUpdated);
        }
        Ok(instance_key)
    }

    /// Deletes an instance if it is still bound to `binding`; returns whether it went.
    fn remove_if_bound(
        &mut self,
        key: &ServiceKey,
        instance: &InstanceKey,
        binding: Binding,
        kind: ChangeKind,
        now: Millis,
    ) -> bool {
        if self.binding_of(key, instance) != Some(binding) {
            return false;
        }
        self.delete_local(key, instance, kind, now).is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::model::{Mode, NamespaceSpec};
    use crate::name::{GroupName, NamespaceId, ServiceName};
    use crate::registry::RegistryConfig;

    const T: Millis = Millis(1_000);

    fn key(service: &str) -> ServiceKey {
        ServiceKey::new(NamespaceId::public(), GroupName::default_group(), ServiceName::new(service).unwrap())
    }

    fn spec(ip: &str, port: u16) -> InstanceSpec {
        InstanceSpec::new(InstanceKey::new(crate::name::ClusterName::default_cluster(), ip.parse().unwrap(), port))
    }

    fn ips(registry: &Registry, key: &ServiceKey) -> Vec<String> {
        let mut ips: Vec<String> = registry
            .snapshot(key)
            .unwrap()
            .instances
            .iter()
            .map(|i| format!("{}:{}", i.instance.key.ip, i.instance.key.port))
            .collect();
        ips.sort();
        ips
    }

    const A: Binding = Binding { node: 1, conn: 10 };
    const B: Binding = Binding { node: 1, conn: 11 };

    #[test]
    fn a_register_replaces_the_connections_set_and_leaves_no_lease() {
        let mut r = Registry::new(RegistryConfig::default());
        let svc = key("orders");
        r.publish_bound(&svc, vec![spec("10.0.0.1", 80), spec("10.0.0.2", 80)], A, T).unwrap();
        assert_eq!(ips(&r, &svc), ["10.0.0.1:80", "10.0.0.2:80"]);
        r.publish_bound(&svc, vec![spec("10.0.0.3", 80)], A, T).unwrap();
        assert_eq!(ips(&r, &svc), ["10.0.0.3:80"]);
        assert_eq!(r.stats(T).leases, 0, "bound instances run no lease");
        let snap = r.snapshot(&svc).unwrap();
        assert!(snap.instances[0].lease.is_none());
        assert!(snap.instances[0].instance.ephemeral);
    }

    #[test]
    fn an_unchanged_republish_keeps_the_revision() {
        let mut r = Registry::new(RegistryConfig::default());
        let svc = key("orders");
        let first = r.publish_bound(&svc, vec![spec("10.0.0.1", 80)], A, T).unwrap();
        let again = r.publish_bound(&svc, vec![spec("10.0.0.1", 80)], A, T).unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn unpublish_withdraws_only_this_connections_set() {
        let mut r = Registry::new(RegistryConfig::default());
        let svc = key("orders");
        r.publish_bound(&svc, vec![spec("10.0.0.1", 80)], A, T).unwrap();
        r.publish_bound(&svc, vec![spec("10.0.0.2", 80)], B, T).unwrap();
        r.unpublish_bound(&svc, A, T).unwrap();
        assert_eq!(ips(&r, &svc), ["10.0.0.2:80"]);
        // Withdrawing again, or from a service never published, is fine.
        r.unpublish_bound(&svc, A, T).unwrap();
        r.unpublish_bound(&key("other"), A, T).unwrap();
    }

    #[test]
    fn release_removes_only_what_is_still_bound_to_the_connection() {
        let mut r = Registry::new(RegistryConfig::default());
        let (orders, users) = (key("orders"), key("users"));
        r.publish_bound(&orders, vec![spec("10.0.0.1", 80), spec("10.0.0.2", 80)], A, T).unwrap();
        r.publish_bound(&users, vec![spec("10.0.0.1", 90)], A, T).unwrap();
        // The client moved 10.0.0.2 to a new connection before the old one was released.
        r.publish_bound(&orders, vec![spec("10.0.0.2", 80)], B, T).unwrap();
        assert_eq!(r.release_binding(A, T), 2);
        assert_eq!(ips(&r, &orders), ["10.0.0.2:80"]);
        assert!(ips(&r, &users).is_empty());
        assert_eq!(r.binding_of(&orders, &spec("10.0.0.2", 80).key), Some(B));
        assert_eq!(r.release_binding(A, T), 0, "a second release finds nothing");
    }

    #[test]
    fn an_http_registration_unbinds_and_a_heartbeat_does_not_lease() {
        let mut r = Registry::new(RegistryConfig::default());
        let svc = key("orders");
        r.publish_bound(&svc, vec![spec("10.0.0.1", 80)], A, T).unwrap();
        let instance = spec("10.0.0.1", 80).key;
        r.heartbeat(&svc, &instance, T).unwrap();
        assert_eq!(r.stats(T).leases, 0, "a heartbeat on a bound instance starts no lease");
        r.register_instance(&svc, spec("10.0.0.1", 80), T).unwrap();
        assert_eq!(r.binding_of(&svc, &instance), None);
        assert_eq!(r.stats(T).leases, 1);
        assert_eq!(r.release_binding(A, T), 0, "the old connection no longer owns it");
        assert_eq!(ips(&r, &svc), ["10.0.0.1:80"]);
    }

    #[test]
    fn publishing_a_leased_instance_stops_its_lease() {
        let mut r = Registry::new(RegistryConfig::default());
        let svc = key("orders");
        r.register_instance(&svc, spec("10.0.0.1", 80), T).unwrap();
        assert_eq!(r.stats(T).leases, 1);
        r.publish_bound(&svc, vec![spec("10.0.0.1", 80)], A, T).unwrap();
        assert_eq!(r.stats(T).leases, 0);
        // No expiry removes it, however long the client stays silent.
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
        let report = r.expire(Millis(10_000_000), &mut rng);
        assert_eq!(report.deleted, 0);
        assert_eq!(ips(&r, &svc), ["10.0.0.1:80"]);
    }

    #[test]
    fn cp_namespaces_refuse_bound_instances() {
        let mut r = Registry::new(RegistryConfig::default());
        let ns = NamespaceId::new("prod").unwrap();
        let spec_ns = NamespaceSpec::new(ns.clone(), None, None, Mode::Cp).unwrap();
        r.apply(crate::Command::CreateNamespace(spec_ns), T).unwrap();
        let svc = ServiceKey::new(ns, GroupName::default_group(), ServiceName::new("db").unwrap());
        let err = r.publish_bound(&svc, vec![spec("10.0.0.1", 80)], A, T).unwrap_err();
        assert!(matches!(err, RegistryError::ModeMismatch { mode: Mode::Cp, .. }), "{err}");
        assert!(err.to_string().contains("prod"), "{err}");
    }

    #[test]
    fn invalid_specs_change_nothing() {
        let mut r = Registry::new(RegistryConfig::default());
        let svc = key("orders");
        let mut bad = spec("10.0.0.2", 80);
        bad.weight = -1.0;
        assert!(r.publish_bound(&svc, vec![spec("10.0.0.1", 80), bad], A, T).is_err());
        assert!(ips(&r, &svc).is_empty());
    }
}
