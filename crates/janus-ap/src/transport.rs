//! How AP protocol messages travel: through the workspace's one
//! [`PeerTransport`](janus_core::transport::PeerTransport) on the Distro channel. The
//! server supplies an HTTP transport (`janus-peer`); tests use the
//! in-memory network of `janus-testkit`, which can cut nodes off.
//!
//! The sending tasks read a failed call (a [`janus_core::transport::CallError`])
//! only to log it and fall back: a later round, another peer, or a write
//! applied where it landed. The receiving end is [`ApEngine`] as the
//! channel's [`PeerHandler`], whose refusals are mapped here.

use janus_core::transport::{PeerFuture, PeerHandler, Refusal, RefusalKind, Route};
use janus_distro::MessageKind;

use crate::ApEngine;
use crate::inbound::PeerMessageError;

/// Where messages of `kind` go on a peer.
#[must_use]
pub fn route(kind: MessageKind) -> Route {
    Route::distro(kind.as_str())
}

/// How a sender learns why a message was not taken.
fn refusal(error: &PeerMessageError) -> Refusal {
    let kind = match error {
        PeerMessageError::Malformed { .. } => RefusalKind::Malformed,
        PeerMessageError::NotClustered => RefusalKind::Unavailable,
        PeerMessageError::NotAMember { .. } => RefusalKind::Forbidden,
    };
    Refusal::new(kind, error.to_string())
}

/// The receiving end of the Distro channel: the kind named on the wire,
/// then [`ApEngine::handle_peer_message`].
impl PeerHandler for ApEngine {
    fn handle<'a>(&'a self, kind: &'a str, body: &'a [u8]) -> PeerFuture<'a, Result<Vec<u8>, Refusal>> {
        Box::pin(async move {
            match MessageKind::from_name(kind) {
                Some(kind) => self.handle_peer_message(kind, body).await.map_err(|error| refusal(&error)),
                None => Err(Refusal::new(RefusalKind::Malformed, format!("no AP protocol message named {kind:?}"))),
            }
        })
    }
}
