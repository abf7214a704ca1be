//! What the AP engine replicates between nodes: one [`Record`] per ephemeral
//! instance, ordered by its [`Version`].
//!
//! Every local change of an ephemeral instance (registration, update, health
//! flip, deregistration, expiry) stamps it with a new version: one more than
//! any version the node has seen for that instance, and the node's id. A
//! replica takes a record only if its version is higher than the one it has,
//! so every node ends with the same state whatever order records arrive in,
//! and concurrent writes on two sides of a partition resolve the same way
//! everywhere: the higher counter wins; on equal counters a deletion wins,
//! then the higher node id. A deletion is a record without a body (a
//! tombstone), kept for a while so that an older copy arriving late cannot
//! bring the instance back.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::{Instance, Metadata};
use crate::name::{ClusterName, InstanceKey, ServiceKey};
use crate::registry::Binding;

/// A node id, as in `[node] id`.
pub type NodeId = u64;

/// Orders the states of one ephemeral instance across nodes: by `counter`,
/// then by `node` (the node that made the change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Version {
    /// One more than the highest counter the writing node had seen for the instance.
    pub counter: u64,
    /// The node that made the change.
    pub node: NodeId,
}

/// The fields of a live instance as they travel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordBody {
    /// Weight.
    pub weight: f64,
    /// Health.
    pub healthy: bool,
    /// Whether it takes traffic.
    pub enabled: bool,
    /// Metadata (lease overrides included).
    pub metadata: Metadata,
    /// Custom instance id.
    pub custom_id: Option<Box<str>>,
    /// The client connection keeping a connection-bound instance alive
    /// (`docs/ap-protocol.md`, "Connection-bound instances"); `None` for
    /// instances kept by heartbeats.
    pub binding: Option<Binding>,
}

impl RecordBody {
    /// The body of a stored instance bound to `binding`, if any.
    #[must_use]
    pub fn of(instance: &Instance, binding: Option<Binding>) -> Self {
        Self {
            weight: instance.weight,
            healthy: instance.healthy,
            enabled: instance.enabled,
            metadata: instance.metadata.clone(),
            custom_id: instance.custom_id.clone(),
            binding,
        }
    }

    /// The ephemeral instance this body describes.
    #[must_use]
    pub fn into_instance(self, key: InstanceKey) -> Instance {
        Instance {
            key,
            weight: self.weight,
            healthy: self.healthy,
            enabled: self.enabled,
            ephemeral: true,
            metadata: self.metadata,
            custom_id: self.custom_id,
        }
    }
}

/// One ephemeral instance's replicated state; no body means deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Which instance of the service.
    pub instance: InstanceKey,
    /// Its version.
    pub version: Version,
    /// Its fields, or `None` for a deletion.
    pub body: Option<RecordBody>,
}

/// Records of one service (records travel grouped, so a service key is sent once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecords {
    /// The service.
    pub service: ServiceKey,
    /// Its records.
    pub records: Vec<Record>,
}

/// A stable 64-bit hash of an instance's identity, the same on every node and
/// every build (it decides ownership and digest buckets, with the binding of
/// a connection-bound instance: see [`owner`]).
#[must_use]
pub fn record_hash(service: &ServiceKey, instance: &InstanceKey) -> u64 {
    record_hash_with(service_hash(service), instance)
}

/// Who owns an instance, given the ring's owner of its hash (`ring_owner`)
/// and whether a node is in the ring: the node holding the connection of a
/// connection-bound instance while that node is in the ring, else the ring's
/// owner.
#[must_use]
pub fn owner(ring_owner: NodeId, binding: Option<&Binding>, in_ring: impl Fn(NodeId) -> bool) -> NodeId {
    match binding {
        Some(binding) if in_ring(binding.node) => binding.node,
        _ => ring_owner,
    }
}

/// The service part of [`record_hash`], computed once per service.
#[must_use]
pub fn service_hash(service: &ServiceKey) -> u64 {
    let mut bytes = Vec::with_capacity(64);
    for part in [service.namespace.as_str(), service.group.as_str(), service.service.as_str()] {
        bytes.extend_from_slice(part.as_bytes());
        bytes.push(0);
    }
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// [`record_hash`] from a precomputed [`service_hash`].
#[must_use]
pub fn record_hash_with(service_hash: u64, instance: &InstanceKey) -> u64 {
    let mut bytes = [0u8; 18];
    match instance.ip {
        IpAddr::V4(ip) => bytes[..4].copy_from_slice(&ip.octets()),
        IpAddr::V6(ip) => bytes[..16].copy_from_slice(&ip.octets()),
    }
    bytes[16..].copy_from_slice(&instance.port.to_be_bytes());
    let address = xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, service_hash);
    cluster_mix(address, &instance.cluster)
}

fn cluster_mix(address: u64, cluster: &ClusterName) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(cluster.as_str().as_bytes(), address)
}

/// Settings of a registry whose ephemeral instances are replicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// This node's id, stamped into the versions it makes.
    pub node: NodeId,
    /// How long a deletion is remembered.
    pub tombstone_ttl_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::{GroupName, NamespaceId, ServiceName};

    #[test]
    fn versions_order_by_counter_then_node() {
        let v = |counter, node| Version { counter, node };
        assert!(v(2, 1) > v(1, 3));
        assert!(v(2, 3) > v(2, 1));
        assert_eq!(v(0, 0), Version::default());
    }

    #[test]
    fn record_hashes_are_stable_and_tell_instances_apart() {
        let service =
            ServiceKey::new(NamespaceId::public(), GroupName::default_group(), ServiceName::new("orders").unwrap());
        let a = InstanceKey::new(ClusterName::default_cluster(), "10.0.0.1".parse().unwrap(), 80);
        let b = InstanceKey::new(ClusterName::default_cluster(), "10.0.0.1".parse().unwrap(), 81);
        assert_ne!(record_hash(&service, &a), record_hash(&service, &b));
        assert_eq!(record_hash(&service, &a), record_hash_with(service_hash(&service), &a));
        assert_eq!(record_hash(&service, &a), 0xd714_591d_85ea_61e3, "the hash must not change between builds");
    }
}
