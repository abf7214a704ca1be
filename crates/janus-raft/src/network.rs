//! Raft traffic between nodes, kept free of openraft's generics.
//!
//! A [`PeerTransport`] moves opaque bytes: "deliver this [`RpcKind`] message to
//! node `target` at `addr` and give me its reply". This crate encodes the
//! openraft messages (postcard) on the way out and decodes them in
//! [`crate::CpEngine::handle_peer_rpc`] on the way in, so the HTTP transport of
//! the server and the in-memory transports of tests never see openraft types.
//! [`NoPeers`] is the transport of a one-member group.

use std::fmt;
use std::future::Future;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, v2::RaftNetworkV2};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::type_config::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::{AnyError, BasicNode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::TypeConfig;

/// The least time an AppendEntries call is given (see `append_entries`).
const APPEND_TIMEOUT_FLOOR: Duration = Duration::from_secs(2);

/// Which Raft message a peer call carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpcKind {
    /// Log replication and leader heartbeats.
    AppendEntries,
    /// A vote request of a candidate.
    Vote,
    /// A pre-vote (would you vote for me?), which never changes a term.
    PreVote,
    /// A whole snapshot for a follower that lags behind the log.
    InstallSnapshot,
    /// A client write a follower forwards to the leader.
    ForwardWrite,
    /// A follower's request for a read index the leader confirmed with a quorum.
    ReadIndex,
    /// A membership change a follower forwards to the leader.
    ChangeMembers,
}

impl RpcKind {
    /// Every kind, for routing tables.
    pub const ALL: [Self; 7] = [
        Self::AppendEntries,
        Self::Vote,
        Self::PreVote,
        Self::InstallSnapshot,
        Self::ForwardWrite,
        Self::ReadIndex,
        Self::ChangeMembers,
    ];

    /// The kind's name in URLs (`/internal/raft/{name}`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AppendEntries => "append",
            Self::Vote => "vote",
            Self::PreVote => "pre-vote",
            Self::InstallSnapshot => "snapshot",
            Self::ForwardWrite => "write",
            Self::ReadIndex => "read-index",
            Self::ChangeMembers => "members",
        }
    }

    /// The kind named `name`, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for RpcKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::RpcKind;

    /// Exhaustive: a new kind does not compile until it has a place here, and
    /// the test then fails until it is in `ALL`.
    const fn ordinal(kind: RpcKind) -> usize {
        match kind {
            RpcKind::AppendEntries => 0,
            RpcKind::Vote => 1,
            RpcKind::PreVote => 2,
            RpcKind::InstallSnapshot => 3,
            RpcKind::ForwardWrite => 4,
            RpcKind::ReadIndex => 5,
            RpcKind::ChangeMembers => 6,
        }
    }

    #[test]
    fn every_kind_is_listed_and_named_once() {
        let ordinals: Vec<usize> = RpcKind::ALL.iter().map(|kind| ordinal(*kind)).collect();
        assert_eq!(ordinals, (0..=ordinal(RpcKind::ChangeMembers)).collect::<Vec<_>>());
        for kind in RpcKind::ALL {
            assert_eq!(RpcKind::from_name(kind.as_str()), Some(kind));
        }
    }
}

/// Why a peer call produced no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The peer could not be reached (refused, reset, partitioned).
    #[error("node {target} at {addr:?} is unreachable: {reason}")]
    Unreachable {
        /// The peer's id.
        target: u64,
        /// The peer's address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The call certainly did not reach the peer (no connection, cut off
    /// before sending), so it is safe to send again.
    #[error("node {target} at {addr:?} is not reachable: {reason}")]
    NotSent {
        /// The peer's id.
        target: u64,
        /// The peer's address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The peer does not lead: it did not act on a forwarded request, which
    /// may be sent again (to the new leader).
    #[error("node {target} does not lead: {reason}")]
    NotLeader {
        /// The peer's id.
        target: u64,
        /// The peer's explanation.
        reason: String,
    },
    /// The peer answered, but with an error instead of a reply.
    #[error("node {target} refused the call: {reason}")]
    Refused {
        /// The peer's id.
        target: u64,
        /// The peer's explanation.
        reason: String,
    },
}

/// Carries encoded Raft messages to peers.
pub trait PeerTransport: Send + Sync + 'static {
    /// Delivers `body` (a `kind` message) to node `target` at `addr` and
    /// returns the encoded reply; gives up after `timeout`.
    fn call(
        &self,
        target: u64,
        addr: String,
        kind: RpcKind,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>>;
}

/// The transport of a one-member group: there is nobody to call.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPeers;

impl PeerTransport for NoPeers {
    fn call(
        &self,
        target: u64,
        addr: String,
        _kind: RpcKind,
        _body: Vec<u8>,
        _timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        Box::pin(std::future::ready(Err(TransportError::NotSent {
            target,
            addr,
            reason: "this node has no peer transport configured".to_owned(),
        })))
    }
}

/// Encodes a peer message.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_stdvec(value)
}

/// Decodes a peer message.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// openraft's view of the transport: one client per peer.
#[derive(Clone)]
pub(crate) struct PeerNetwork {
    pub(crate) transport: Arc<dyn PeerTransport>,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        PeerClient { target, addr: node.addr.clone(), transport: self.transport.clone() }
    }
}

/// The connection to one peer.
pub(crate) struct PeerClient {
    target: u64,
    addr: String,
    transport: Arc<dyn PeerTransport>,
}

impl PeerClient {
    async fn call<Req: Serialize, Reply: DeserializeOwned>(
        &self,
        kind: RpcKind,
        request: &Req,
        timeout: Duration,
    ) -> Result<Reply, RPCError<TypeConfig>> {
        let body = encode(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        match self.transport.call(self.target, self.addr.clone(), kind, body, timeout).await {
            Ok(reply) => decode(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e))),
            Err(error @ (TransportError::Unreachable { .. } | TransportError::NotSent { .. })) => {
                Err(RPCError::Unreachable(Unreachable::new(&error)))
            }
            Err(error @ (TransportError::Refused { .. } | TransportError::NotLeader { .. })) => {
                Err(RPCError::Network(NetworkError::new(&error)))
            }
        }
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        // openraft gives log replication the heartbeat interval as its
        // deadline; a follower whose round trip is longer (a slow link, a
        // large batch, a disk stall) would then never get a batch through and
        // never catch up. Replication to one follower never holds up commits
        // (the majority decides), so it may take longer.
        self.call(RpcKind::AppendEntries, &rpc, option.hard_ttl().max(APPEND_TIMEOUT_FLOOR)).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(RpcKind::Vote, &rpc, option.hard_ttl()).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(RpcKind::PreVote, &rpc, option.hard_ttl()).await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, Self::SnapshotData>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let message: SnapshotMessage = (vote, snapshot.meta, snapshot.snapshot.into_inner());
        self.call(RpcKind::InstallSnapshot, &message, option.hard_ttl()).await.map_err(|error| match error {
            RPCError::Unreachable(unreachable) => StreamingError::Unreachable(unreachable),
            other => StreamingError::Network(NetworkError::new(&AnyError::error(other.to_string()))),
        })
    }
}

/// A whole snapshot on the wire: the sender's vote, the snapshot's metadata
/// and its bytes.
pub(crate) type SnapshotMessage = (VoteOf<TypeConfig>, SnapshotMetaOf<TypeConfig>, Vec<u8>);
