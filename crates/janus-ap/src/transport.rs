//! [`DistroTransport`]: how encoded AP protocol messages reach peers. The
//! server supplies one over HTTP (`janus-peer`); tests use in-memory ones
//! that can cut nodes off.

use std::time::Duration;

use futures_util::future::BoxFuture;
use janus_core::NodeId;
use janus_distro::MessageKind;

/// Why a peer call produced no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call certainly did not reach the peer (no connection).
    #[error("node {target} is not reachable: {reason}")]
    NotSent {
        /// The peer.
        target: NodeId,
        /// What went wrong.
        reason: String,
    },
    /// No reply in time, or the connection broke: the peer may have acted on it.
    #[error("node {target} did not answer: {reason}")]
    NoReply {
        /// The peer.
        target: NodeId,
        /// What went wrong.
        reason: String,
    },
    /// The peer answered with an error instead of a reply.
    #[error("node {target} refused the call: {reason}")]
    Refused {
        /// The peer.
        target: NodeId,
        /// Its explanation.
        reason: String,
    },
}

/// Carries encoded AP protocol messages to peers.
pub trait DistroTransport: Send + Sync + 'static {
    /// Delivers `body` (a `kind` message) to node `target` at `addr` and
    /// returns the encoded reply; gives up after `timeout`.
    fn call(
        &self,
        target: NodeId,
        addr: String,
        kind: MessageKind,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, CallError>>;
}
