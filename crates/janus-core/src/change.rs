//! Change events: what the registry emits after every write, for watches and
//! (later) replication.

use std::sync::Arc;

use crate::name::{InstanceKey, NamespaceId, ServiceKey};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A namespace was created.
    NamespaceCreated,
    /// A namespace's name or description changed.
    NamespaceUpdated,
    /// A namespace was deleted.
    NamespaceDeleted,
    /// A service was created (explicitly or by its first registration).
    ServiceCreated,
    /// A service's settings changed.
    ServiceUpdated,
    /// A service was deleted.
    ServiceDeleted,
    /// An instance was registered.
    InstanceRegistered,
    /// An instance's fields changed.
    InstanceUpdated,
    /// An instance's health flipped (lease or check).
    InstanceHealthChanged,
    /// An instance was deregistered by a client.
    InstanceDeregistered,
    /// An instance's lease ran out and it was deleted.
    InstanceExpired,
}

impl ChangeKind {
    /// Snake-case name used on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NamespaceCreated => "namespace_created",
            Self::NamespaceUpdated => "namespace_updated",
            Self::NamespaceDeleted => "namespace_deleted",
            Self::ServiceCreated => "service_created",
            Self::ServiceUpdated => "service_updated",
            Self::ServiceDeleted => "service_deleted",
            Self::InstanceRegistered => "instance_registered",
            Self::InstanceUpdated => "instance_updated",
            Self::InstanceHealthChanged => "instance_health_changed",
            Self::InstanceDeregistered => "instance_deregistered",
            Self::InstanceExpired => "instance_expired",
        }
    }
}

/// One change, stamped with the node-wide revision it produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Node-wide revision after this change.
    pub revision: u64,
    /// Namespace concerned.
    pub namespace: NamespaceId,
    /// Service concerned, if any.
    pub service: Option<Arc<ServiceKey>>,
    /// Instance concerned, if any.
    pub instance: Option<InstanceKey>,
    /// What happened.
    pub kind: ChangeKind,
}
