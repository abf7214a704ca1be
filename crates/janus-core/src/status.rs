//! [`ClusterStatus`]: what one node knows of its cluster, for operators
//! (`GET /v1/cluster`, `/metrics`, `janus status`). The engines fill it in;
//! front ends only show it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::replica::NodeId;

/// One node's view of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node answering.
    pub node: NodeId,
    /// The AP engine (Distro), in a cluster.
    pub ap: Option<ApStatus>,
    /// The CP engine (Raft).
    pub raft: Option<RaftStatus>,
    /// This node's health checks of persistent instances.
    pub health: Option<HealthCheckStatus>,
    /// The Nacos gRPC front end, where it is served.
    #[serde(default)]
    pub grpc: Option<GrpcStatus>,
}

/// The Nacos gRPC front end of a node: its connections and pushes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrpcStatus {
    /// Client connections held now.
    pub connections: u64,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections closed at once because the cap was reached.
    pub refused: u64,
    /// Connections that completed their setup since start.
    pub set_up: u64,
    /// Subscriptions held now.
    pub subscriptions: u64,
    /// Requests answered since start.
    pub requests: u64,
    /// Pushes sent since start.
    pub pushes_sent: u64,
    /// Pushes acknowledged since start.
    pub pushes_acked: u64,
    /// Pushes not acknowledged in time.
    pub push_timeouts: u64,
    /// Client detections sent (to connections silent too long).
    pub detections: u64,
    /// Connections closed for not answering a detection.
    pub undetected: u64,
    /// Connections reset for not reading or acknowledging pushes.
    pub slow_resets: u64,
    /// Instances removed because their connection closed.
    pub released: u64,
}

/// This node's server-side health checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckStatus {
    /// Persistent instances this node checks now.
    pub checked: u64,
    /// Probes run since start.
    pub probes: u64,
    /// Probes that failed.
    pub probe_failures: u64,
    /// Health flips reported.
    pub flips: u64,
    /// Instances this node does not probe because the probe policy refuses
    /// their address (they are shown unhealthy).
    #[serde(default)]
    pub refused: u64,
    /// Some of those instances (at most 100), by service and address.
    #[serde(default)]
    pub refused_targets: Vec<RefusedProbe>,
}

/// An instance whose address the health checks' probe policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RefusedProbe {
    /// Its service (`namespace/group@@service`).
    pub service: String,
    /// Its cluster.
    pub cluster: String,
    /// The address that would have been probed.
    pub ip: std::net::IpAddr,
    /// The port that would have been probed.
    pub port: u16,
    /// The rule that refused it, e.g. `deny-list network 169.254.0.0/16`.
    pub rule: String,
}

/// The AP engine's view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApStatus {
    /// Whether this node has loaded its snapshot and takes writes.
    pub ready: bool,
    /// The members that own ephemeral instances now.
    pub ring: Vec<NodeId>,
    /// Every member (this node first) and its state.
    pub members: Vec<MemberStatus>,
    /// Replication queues, one per peer.
    pub queues: Vec<PeerQueueStatus>,
    /// Protocol counters since start (forwarded writes, verify failures, …).
    pub counters: BTreeMap<String, u64>,
}

/// A member as this node's probes see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Node id.
    pub id: NodeId,
    /// Cluster address.
    pub addr: String,
    /// `up`, `suspect` or `down`.
    pub state: String,
    /// Whether it has loaded its snapshot.
    pub ready: bool,
    /// Probes failed in a row.
    pub failures: u32,
    /// Milliseconds since it last answered.
    pub last_seen_ms_ago: Option<u64>,
    /// Whether it owns instances now.
    pub in_ring: bool,
    /// Whether this is the node answering.
    pub this_node: bool,
}

/// The replication queue to one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerQueueStatus {
    /// The peer.
    pub peer: NodeId,
    /// Instances waiting to be sent.
    pub queued: u64,
    /// Times the queue overflowed and was dropped.
    pub overflows: u64,
}

/// The CP engine's view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftStatus {
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub state: String,
    /// The current term.
    pub term: u64,
    /// The leader this node knows.
    pub leader: Option<NodeId>,
    /// Index of the last log entry.
    pub last_log_index: u64,
    /// Index of the last entry known committed.
    pub commit_index: u64,
    /// Index of the last entry applied to the registry.
    pub applied_index: u64,
    /// Voters and their cluster addresses.
    pub voters: BTreeMap<NodeId, String>,
    /// Learners and their cluster addresses.
    pub learners: BTreeMap<NodeId, String>,
    /// On the leader: how many entries each other member is behind.
    pub lag: BTreeMap<NodeId, u64>,
}

/// A gRPC subscription to a service held by a connection to this node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subscriber {
    /// The Nacos connection id.
    pub connection: String,
    /// The client's address.
    pub remote: String,
    /// The SDK's version, as it said at setup.
    pub client_version: String,
    /// The application name, as it said at setup.
    pub app: String,
    /// The cluster filter of the subscription (empty: all clusters).
    pub clusters: String,
    /// The service revision the client last acknowledged.
    pub acked_revision: u64,
}
