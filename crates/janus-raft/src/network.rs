//! Raft traffic between nodes, kept free of openraft's generics.
//!
//! Messages travel through the workspace's one [`PeerTransport`]
//! (`janus_core::transport`) on the [`Channel::Raft`](janus_core::transport::Channel)
//! channel, named by [`RpcKind`]. This crate encodes the openraft messages
//! (postcard) on the way out and decodes them on the way in ([`CpEngine`] is
//! the channel's [`PeerHandler`]), so the HTTP transport of the server and
//! the in-memory network of tests never see openraft types. A failed call
//! is read here only, as a [`Failure`]; [`NoPeers`] is the transport of a
//! one-member group.

use std::collections::HashMap;
use std::fmt;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use janus_core::transport::{
    CallError, CallFuture, PeerFuture, PeerHandler, PeerTransport, Refusal, RefusalKind, Route,
};
use openraft::base::{BoxFuture, BoxStream};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, v2::RaftNetworkV2};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::type_config::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::{AnyError, BasicNode, OptionalSend};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::TypeConfig;
use crate::coalesce;
use crate::engine::{CpEngine, PeerRpcError};

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
    /// A client write a follower forwards to the leader: the request, then
    /// the follower's id (which earlier leaders ignore); the reply is the
    /// outcome, then the entry's log index (which earlier followers ignore).
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

    /// Where the kind's messages go on a peer.
    #[must_use]
    pub const fn route(self) -> Route {
        Route::raft(self.as_str())
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

/// The transport of a one-member group: there is nobody to call.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPeers;

impl PeerTransport for NoPeers {
    fn call(&self, target: u64, addr: String, _route: Route, _body: Vec<u8>, _timeout: Duration) -> CallFuture {
        let reason = "this node has no peer transport configured".to_owned();
        Box::pin(std::future::ready(Err(CallError::NotSent { target, addr, reason })))
    }
}

/// What a failed peer call means to Raft: the one place a [`CallError`] is read.
pub(crate) enum Failure {
    /// Certainly not acted on: it never left, or the peer refused it because
    /// it does not lead. It may be sent again (to the leader known by then).
    Resend(CallError),
    /// The peer refused it for another reason: sending it again will not help.
    Refused(CallError),
    /// No reply: the peer may have acted on it.
    Lost(CallError),
}

impl From<CallError> for Failure {
    fn from(error: CallError) -> Self {
        match &error {
            CallError::NotSent { .. } => Self::Resend(error),
            CallError::Refused { refusal, .. } if refusal.kind == RefusalKind::Misdirected => Self::Resend(error),
            CallError::Refused { .. } => Self::Refused(error),
            CallError::NoReply { .. } => Self::Lost(error),
        }
    }
}

impl From<Failure> for RPCError<TypeConfig> {
    /// openraft backs off from a peer it cannot reach and retries on other errors.
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Resend(error) | Failure::Lost(error) => RPCError::Unreachable(Unreachable::new(&error)),
            Failure::Refused(error) => RPCError::Network(NetworkError::new(&error)),
        }
    }
}

impl From<&PeerRpcError> for RefusalKind {
    fn from(error: &PeerRpcError) -> Self {
        match error {
            PeerRpcError::Malformed { .. } => Self::Malformed,
            PeerRpcError::Raft(_) => Self::Unavailable,
            // Nothing was proposed: the sender tries again at the leader.
            PeerRpcError::NotLeader(_) => Self::Misdirected,
        }
    }
}

/// The receiving end of the Raft channel: the kind named on the wire, then
/// [`CpEngine::handle_peer_rpc`].
impl PeerHandler for CpEngine {
    fn handle<'a>(&'a self, kind: &'a str, body: &'a [u8]) -> PeerFuture<'a, Result<Vec<u8>, Refusal>> {
        Box::pin(async move {
            let Some(kind) = RpcKind::from_name(kind) else {
                return Err(Refusal::new(RefusalKind::Malformed, format!("no Raft message kind named {kind:?}")));
            };
            self.handle_peer_rpc(kind, body)
                .await
                .map_err(|error| Refusal::new(RefusalKind::from(&error), error.to_string()))
        })
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
    pub(crate) flushes: Arc<CommitFlushes>,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        PeerClient {
            target,
            addr: node.addr.clone(),
            transport: self.transport.clone(),
            flush: self.flushes.of(target),
        }
    }
}

/// What the leader asks of the replication stream to each peer (see
/// [`coalesce`]): a follower that forwarded a write waits to apply it before
/// answering its client, so while such a write is in progress its commits
/// are sent at once instead of being held.
#[derive(Default)]
pub(crate) struct CommitFlushes(parking_lot::Mutex<HashMap<u64, Arc<coalesce::Flush>>>);

impl CommitFlushes {
    fn of(&self, target: u64) -> Arc<coalesce::Flush> {
        self.0.lock().entry(target).or_default().clone()
    }

    /// A write forwarded by `origin` is in progress until the guard drops; a
    /// commit held for it goes now. `None` if this node replicates to no
    /// such peer.
    pub(crate) fn forwarded(&self, origin: u64) -> Option<coalesce::FlushGuard> {
        let flush = self.0.lock().get(&origin).cloned()?;
        Some(coalesce::FlushGuard::new(flush))
    }
}

/// The connection to one peer.
pub(crate) struct PeerClient {
    target: u64,
    addr: String,
    transport: Arc<dyn PeerTransport>,
    flush: Arc<coalesce::Flush>,
}

impl PeerClient {
    async fn call<Req: Serialize, Reply: DeserializeOwned>(
        &self,
        kind: RpcKind,
        request: &Req,
        timeout: Duration,
    ) -> Result<Reply, RPCError<TypeConfig>> {
        call_peer(&*self.transport, self.target, self.addr.clone(), kind, request, timeout).await
    }

    /// Sends one AppendEntries at a time for a replication stream, which
    /// outlives the borrow of the client.
    fn append_sender(
        &self,
        timeout: Duration,
    ) -> impl FnMut(AppendEntriesRequest<TypeConfig>) -> BoxFuture<'static, coalesce::Reply> + Send + 'static {
        let (target, addr, transport) = (self.target, self.addr.clone(), self.transport.clone());
        move |rpc| {
            let (addr, transport) = (addr.clone(), transport.clone());
            Box::pin(async move { call_peer(&*transport, target, addr, RpcKind::AppendEntries, &rpc, timeout).await })
        }
    }
}

/// One call to peer `target` at `addr`: the request encoded, the reply decoded.
async fn call_peer<Req: Serialize, Reply: DeserializeOwned>(
    transport: &dyn PeerTransport,
    target: u64,
    addr: String,
    kind: RpcKind,
    request: &Req,
    timeout: Duration,
) -> Result<Reply, RPCError<TypeConfig>> {
    let body = encode(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
    let reply = transport
        .call(target, addr, kind.route(), body, timeout)
        .await
        .map_err(|error| RPCError::from(Failure::from(error)))?;
    decode(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))
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

    /// Replication and heartbeats: one request at a time, as openraft's
    /// default, with commit-only requests riding on the next one where one
    /// follows within [`coalesce::COMMIT_HOLD`] (see [`coalesce`]).
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, coalesce::Answer>, RPCError<TypeConfig>>>
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + OptionalSend + Unpin + 'static,
    {
        // As `append_entries`: replication may take longer than a heartbeat.
        let send = self.append_sender(option.hard_ttl().max(APPEND_TIMEOUT_FLOOR));
        let flush = self.flush.clone();
        Box::pin(std::future::ready(Ok(coalesce::coalesced(input, coalesce::COMMIT_HOLD, flush, send))))
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
