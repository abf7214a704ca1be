//! The messages nodes exchange, each a request with one reply, encoded with
//! postcard. [`MessageKind`] names the route (`/internal/distro/{kind}`).

use janus_core::lease::LeaseTiming;
use janus_core::model::{InstancePatch, InstanceSpec};
use janus_core::{InstanceKey, NodeId, RegistryError, ServiceKey, ServiceRecords};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Which message a peer call carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// [`Ping`] → [`Pong`].
    Ping,
    /// [`Sync`] → [`SyncAck`].
    Sync,
    /// [`Verify`] → [`VerifyReply`].
    Verify,
    /// [`Repair`] → [`SyncAck`].
    Repair,
    /// [`SnapshotRequest`] → [`SnapshotPage`].
    Snapshot,
    /// [`Forward`] → [`ForwardReply`].
    Forward,
}

impl MessageKind {
    /// Every kind, for routing tables.
    pub const ALL: [Self; 6] = [Self::Ping, Self::Sync, Self::Verify, Self::Repair, Self::Snapshot, Self::Forward];

    /// The kind's name in URLs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Sync => "sync",
            Self::Verify => "verify",
            Self::Repair => "repair",
            Self::Snapshot => "snapshot",
            Self::Forward => "forward",
        }
    }

    /// The kind named `name`, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A liveness probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// The prober.
    pub from: NodeId,
    /// Whether the prober has loaded its snapshot.
    pub ready: bool,
}

/// The answer to a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The answering node.
    pub from: NodeId,
    /// Whether it has loaded its snapshot.
    pub ready: bool,
}

/// Changed instances, read when sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sync {
    /// The sender.
    pub from: NodeId,
    /// The records, grouped by service.
    pub batches: Vec<ServiceRecords>,
}

/// How records were taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncAck {
    /// Newer than what the receiver had.
    pub applied: u64,
    /// Not newer.
    pub stale: u64,
    /// For a namespace the receiver does not know as `ap` (yet).
    pub refused: u64,
}

/// An owner's digest of what it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verify {
    /// The owner.
    pub from: NodeId,
    /// The epoch of the owner's ring; a receiver with another ring skips the round.
    pub epoch: u64,
    /// One checksum per bucket.
    pub sums: Vec<u64>,
}

/// Which buckets differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReply {
    /// False when the receiver's ring differs (nothing was compared).
    pub compared: bool,
    /// Buckets to repair.
    pub mismatched: Vec<u16>,
}

/// Everything an owner owns in some buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repair {
    /// The owner.
    pub from: NodeId,
    /// The epoch of the owner's ring.
    pub epoch: u64,
    /// The buckets covered (complete: what is not listed, the owner does not have).
    pub buckets: Vec<u16>,
    /// The records.
    pub batches: Vec<ServiceRecords>,
}

/// A page of a peer's ephemeral instances, for a node that is starting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRequest {
    /// The starting node.
    pub from: NodeId,
    /// Continue after this service (`None`: from the start).
    pub after: Option<ServiceKey>,
    /// Instances wanted in the page (a service is never split).
    pub limit: u32,
}

/// One page of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotPage {
    /// False if the answering node has not loaded its own snapshot yet (the page is then empty).
    pub ready: bool,
    /// The records.
    pub batches: Vec<ServiceRecords>,
    /// Where the next page starts (`None`: this was the last).
    pub next: Option<ServiceKey>,
}

/// A client write that reached a node that does not own the instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ForwardOp {
    /// Register or re-register.
    Register {
        /// Its service.
        service: ServiceKey,
        /// The instance.
        spec: InstanceSpec,
    },
    /// Replace an existing instance.
    Update {
        /// Its service.
        service: ServiceKey,
        /// The instance.
        spec: InstanceSpec,
    },
    /// Change some fields.
    Patch {
        /// Its service.
        service: ServiceKey,
        /// Which instance.
        instance: InstanceKey,
        /// The change.
        patch: InstancePatch,
    },
    /// Remove.
    Deregister {
        /// Its service.
        service: ServiceKey,
        /// Which instance.
        instance: InstanceKey,
    },
    /// Renew the lease.
    Heartbeat {
        /// Its service.
        service: ServiceKey,
        /// Which instance.
        instance: InstanceKey,
    },
}

/// What a forwarded write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardOutcome {
    /// The service revision after a write.
    Revision(u64),
    /// The lease timings after a heartbeat.
    Lease(LeaseTiming),
}

/// Client writes forwarded together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forward {
    /// The forwarding node.
    pub from: NodeId,
    /// The writes, applied in order.
    pub ops: Vec<ForwardOp>,
}

/// One result per forwarded write, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardReply {
    /// The results.
    pub results: Vec<Result<ForwardOutcome, RegistryError>>,
}

/// A message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed distro message: {0}")]
pub struct Malformed(pub String);

/// Encodes a message.
///
/// # Errors
/// Never for these types in practice (postcard refuses only unsupported shapes).
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, Malformed> {
    postcard::to_stdvec(message).map_err(|e| Malformed(e.to_string()))
}

/// Decodes a message.
///
/// # Errors
/// The bytes are not a `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Malformed> {
    postcard::from_bytes(bytes).map_err(|e| Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use janus_core::{ClusterName, GroupName, NamespaceId, Record, RecordBody, ServiceName, Version};

    use super::*;

    #[test]
    fn every_kind_is_named_once_and_found_by_name() {
        for kind in MessageKind::ALL {
            assert_eq!(MessageKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(MessageKind::from_name("nope"), None);
    }

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let service =
            ServiceKey::new(NamespaceId::public(), GroupName::default_group(), ServiceName::new("s").unwrap());
        let instance = InstanceKey::new(ClusterName::default_cluster(), "10.0.0.1".parse().unwrap(), 80);
        let sync = Sync {
            from: 1,
            batches: vec![ServiceRecords {
                service,
                records: vec![Record {
                    instance,
                    version: Version { counter: 3, node: 1 },
                    body: Some(RecordBody {
                        weight: 1.0,
                        healthy: true,
                        enabled: true,
                        metadata: Default::default(),
                        custom_id: None,
                        binding: Some(janus_core::registry::Binding { node: 1, conn: 7 }),
                    }),
                }],
            }],
        };
        assert_eq!(decode::<Sync>(&encode(&sync).unwrap()).unwrap(), sync);
        assert!(decode::<Sync>(&[0xff, 0xff, 0xff]).is_err());
        let reply = ForwardReply {
            results: vec![Ok(ForwardOutcome::Revision(4)), Err(RegistryError::NamespaceNotFound("x".to_owned()))],
        };
        assert_eq!(decode::<ForwardReply>(&encode(&reply).unwrap()).unwrap(), reply);
    }
}
