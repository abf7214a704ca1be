//! Peer calls: the one transport both engines talk to other nodes through.
//!
//! A call is "deliver these bytes, a message of this [`Route`], to node
//! `target` at `addr` and give me the reply, within `timeout`". The engines
//! encode and decode their own messages, so a [`PeerTransport`] moves opaque
//! bytes and never sees an engine's types. A [`Route`] names the engine's
//! [`Channel`] and the message kind's wire name: the HTTP transport of
//! `janus-peer` builds its path from it (`/internal/{channel}/{kind}`), and
//! the in-memory network of `janus-testkit` routes and counts by it.
//!
//! A failed call is a [`CallError`] with exactly three meanings, which the
//! engines read to decide whether to send again: [`CallError::NotSent`] (it
//! certainly never arrived), [`CallError::NoReply`] (it may have been acted
//! on) and [`CallError::Refused`] (the peer answered with a [`Refusal`]).
//!
//! The receiving side is a [`PeerHandler`] per channel: the engine that
//! takes the channel's messages. Transports hand it the kind's name and the
//! body and carry its reply or refusal back.
//!
//! Only the contract lives here (no I/O): the HTTP transport is in
//! `janus-peer`, the in-memory one and the conformance suite both pass are
//! in `janus-testkit`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::replica::NodeId;

/// A boxed, sendable future, as the transport traits return them.
pub type PeerFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What [`PeerTransport::call`] returns: the encoded reply, or why there is none.
pub type CallFuture = PeerFuture<'static, Result<Vec<u8>, CallError>>;

/// Which engine's protocol a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// The CP engine's Raft messages (`janus-raft`).
    Raft,
    /// The AP engine's Distro messages (`janus-ap`).
    Distro,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Self; 2] = [Self::Raft, Self::Distro];

    /// The channel's name on the wire (`/internal/{name}/…`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Raft => "raft",
            Self::Distro => "distro",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a message goes on a peer: its engine's channel and its kind's wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route {
    /// The engine.
    pub channel: Channel,
    /// The message kind's name on the wire (`append`, `sync`, …).
    pub kind: &'static str,
}

impl Route {
    /// A Raft message of kind `kind`.
    #[must_use]
    pub const fn raft(kind: &'static str) -> Self {
        Self { channel: Channel::Raft, kind }
    }

    /// A Distro message of kind `kind`.
    #[must_use]
    pub const fn distro(kind: &'static str) -> Self {
        Self { channel: Channel::Distro, kind }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.channel, self.kind)
    }
}

/// Why a peer refused a message; decides what the sender may do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalKind {
    /// Not understood: an unknown kind, a body that does not decode, or one
    /// too large. A bug or mismatched versions; sending it again is useless.
    Malformed,
    /// This sender may not send it: no cluster secret, or not a member.
    Forbidden,
    /// The peer did not act on it because another node takes it (it does
    /// not lead); the sender may send it again to that node.
    Misdirected,
    /// The peer cannot take it now (it is stopping, not clustered, or its
    /// engine failed).
    Unavailable,
}

impl RefusalKind {
    /// Every kind.
    pub const ALL: [Self; 4] = [Self::Malformed, Self::Forbidden, Self::Misdirected, Self::Unavailable];

    /// The kind's name (in messages).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Forbidden => "forbidden",
            Self::Misdirected => "misdirected",
            Self::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for RefusalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A peer's answer that is an error instead of a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({kind})")]
pub struct Refusal {
    /// What kind of refusal.
    pub kind: RefusalKind,
    /// The peer's explanation.
    pub reason: String,
}

impl Refusal {
    /// A refusal of `kind` because of `reason`.
    #[must_use]
    pub fn new(kind: RefusalKind, reason: impl Into<String>) -> Self {
        Self { kind, reason: reason.into() }
    }
}

/// Why a peer call produced no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call certainly did not reach the peer (no connection, cut off
    /// before sending), so it is safe to send again.
    #[error("node {target} at {addr:?} is not reachable: {reason}")]
    NotSent {
        /// The peer's id.
        target: NodeId,
        /// The peer's address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// No reply in time, or the connection broke after sending: the peer
    /// may have acted on it.
    #[error("node {target} at {addr:?} did not answer: {reason}")]
    NoReply {
        /// The peer's id.
        target: NodeId,
        /// The peer's address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The peer answered with an error instead of a reply.
    #[error("node {target} refused the call: {refusal}")]
    Refused {
        /// The peer's id.
        target: NodeId,
        /// Its refusal.
        refusal: Refusal,
    },
}

/// Carries encoded engine messages to peers.
pub trait PeerTransport: Send + Sync + 'static {
    /// Delivers `body` (a message of `route`) to node `target` at `addr`
    /// and returns the encoded reply; gives up after `timeout`.
    fn call(&self, target: NodeId, addr: String, route: Route, body: Vec<u8>, timeout: Duration) -> CallFuture;
}

/// Takes the messages of one channel on the receiving node.
pub trait PeerHandler: Send + Sync + 'static {
    /// Handles `body`, a message of the kind named `kind`, and returns the
    /// encoded reply.
    ///
    /// # Errors
    /// A [`Refusal`]: an unknown kind or a malformed body, a sender that may
    /// not send it, or a node that cannot take it now.
    fn handle<'a>(&'a self, kind: &'a str, body: &'a [u8]) -> PeerFuture<'a, Result<Vec<u8>, Refusal>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_who_and_why() {
        let refused = CallError::Refused { target: 2, refusal: Refusal::new(RefusalKind::Misdirected, "node 3 leads") };
        assert_eq!(refused.to_string(), "node 2 refused the call: node 3 leads (misdirected)");
        let lost = CallError::NoReply { target: 3, addr: "10.0.0.3:7848".to_owned(), reason: "timed out".to_owned() };
        assert_eq!(lost.to_string(), "node 3 at \"10.0.0.3:7848\" did not answer: timed out");
        assert_eq!(Route::distro("sync").to_string(), "distro/sync");
        assert_eq!(Route::raft("append"), Route { channel: Channel::Raft, kind: "append" });
    }

    #[test]
    fn names_are_distinct() {
        let channels: std::collections::HashSet<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(channels.len(), Channel::ALL.len());
        let kinds: std::collections::HashSet<&str> = RefusalKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(kinds.len(), RefusalKind::ALL.len());
    }
}
