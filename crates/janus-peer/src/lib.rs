//! Janus cluster traffic: the Raft messages of [`janus_raft`] and the AP
//! protocol messages of [`janus_ap`] between nodes, as HTTP on each node's
//! internal cluster address.
//!
//! - [`StreamPeerTransport`]: the client side, the workspace's one
//!   [`janus_core::transport::PeerTransport`] for both engines: one
//!   long-lived peer stream per peer (an HTTP/1.1 connection upgraded to
//!   length-prefixed frames, `frame.rs`), every message a frame, many in
//!   flight, answered by id. A peer of an earlier version, which does not
//!   serve streams, gets [`HttpPeerTransport`]'s requests instead: it POSTs an
//!   encoded message to `http://{peer}/internal/raft/{kind}` or
//!   `…/internal/distro/{kind}` over pooled keep-alive connections.
//! - [`router`]: the receiving side, which hands messages to each channel's
//!   [`janus_core::transport::PeerHandler`] (the local [`janus_raft::CpEngine`]
//!   and [`janus_ap::ApEngine`]), and the membership admin API
//!   (`GET|POST /internal/admin/members`, `POST …/members/{id}/promote`,
//!   `DELETE …/members/{id}`); [`message_router`] serves any handlers.
//! - `wire`: the paths and statuses both sides agree on. A refusal travels
//!   as a status (400 malformed, 403 forbidden, 421 misdirected: the node
//!   does not lead, 503 unavailable) with the reason as the body.
//!
//! Every call carries the cluster secret (`Authorization: Bearer …`); a call
//! without it is refused before its body is read. Nothing is trusted because
//! of where it comes from or of any other header. Bodies are bounded.

mod client;
mod frame;
mod server;
mod stream_client;
mod stream_server;
mod wire;

pub use client::HttpPeerTransport;
pub use server::{message_router, router};
pub use stream_client::StreamPeerTransport;

/// The path prefix of Raft messages.
pub const RAFT_PATH: &str = "/internal/raft";

/// The path prefix of AP protocol messages.
pub const DISTRO_PATH: &str = "/internal/distro";

/// The path prefix of the membership admin API.
pub const ADMIN_PATH: &str = "/internal/admin";

/// A cluster secret: not empty, and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret(std::sync::Arc<str>);

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the cluster secret must be at least {MIN_SECRET_LEN} characters of visible ASCII")]
pub struct WeakSecret;

/// The shortest secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

impl ClusterSecret {
    /// Accepts `secret` if it is long enough and can travel in a header.
    ///
    /// # Errors
    /// Shorter than [`MIN_SECRET_LEN`], or not visible ASCII.
    pub fn new(secret: &str) -> Result<Self, WeakSecret> {
        if secret.len() < MIN_SECRET_LEN || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(WeakSecret);
        }
        Ok(Self(secret.into()))
    }

    /// Whether `presented` (an `Authorization` header value) carries this
    /// secret, compared in time independent of where the first difference is.
    fn admits(&self, presented: &[u8]) -> bool {
        let Some(token) = presented.strip_prefix(b"Bearer ") else {
            return false;
        };
        let expected = self.0.as_bytes();
        token.len() == expected.len() && token.iter().zip(expected).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }

    fn header_value(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(…)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_secret_admits_only_itself() {
        let secret = ClusterSecret::new("correct-horse-battery").unwrap();
        assert!(secret.admits(b"Bearer correct-horse-battery"));
        assert!(!secret.admits(b"Bearer correct-horse-batterx"));
        assert!(!secret.admits(b"Bearer correct-horse-batter"));
        assert!(!secret.admits(b"correct-horse-battery"));
        assert!(!secret.admits(b""));
        assert_eq!(format!("{secret:?}"), "ClusterSecret(…)");
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert_eq!(ClusterSecret::new(""), Err(WeakSecret));
        assert_eq!(ClusterSecret::new("short"), Err(WeakSecret));
        assert_eq!(ClusterSecret::new("sixteen chars ok"), Err(WeakSecret), "spaces cannot travel safely");
        assert!(ClusterSecret::new("sixteen-chars-ok").is_ok());
    }
}
