//! The transport conformance suite: what every [`PeerTransport`] must do,
//! checked the same way against each. `janus-peer` runs it against the
//! HTTP transport on a loopback listener, this crate against the in-memory
//! [`crate::net::Network`], so the fixtures' network behaves as the real
//! one does where the engines can tell.
//!
//! A transport comes with a [`Harness`] that can start a peer serving
//! given handlers and name an address where nothing answers. [`run`] then
//! starts a [`ScriptedPeer`] on both channels and checks:
//!
//! - [`round_trips`]: an empty, a small and a largest-allowed body come
//!   back intact;
//! - [`routes`]: a message reaches the handler of its channel, named by its kind;
//! - [`concurrent_calls`]: calls in flight together each get their own reply;
//! - [`limits`]: a message above the limit is refused as malformed, a reply
//!   above it is lost;
//! - [`nobody_listens`]: a peer where nothing listens is [`CallError::NotSent`], promptly;
//! - [`silent`]: a peer that never answers is [`CallError::NoReply`] once
//!   the timeout has passed, not much later;
//! - [`refusals`]: every [`RefusalKind`] arrives as [`CallError::Refused`]
//!   with the peer's kind and reason intact (a node that does not lead must
//!   read as one at the sender).
//!
//! Checks panic with the check's name on a failure; they use tokio's clock,
//! so they also run on paused time.

// A test suite: a failed expectation is a test failure, so panicking is right.
#![allow(clippy::missing_panics_doc)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use janus_core::NodeId;
use janus_core::transport::{CallError, Channel, PeerFuture, PeerHandler, PeerTransport, Refusal, RefusalKind, Route};
use tokio::time::Instant;

/// How the suite reaches the transport under test.
pub trait Harness {
    /// The transport under test.
    fn transport(&self) -> Arc<dyn PeerTransport>;

    /// The largest message, and the largest reply, the transport carries.
    fn max_body(&self) -> usize;

    /// Starts node `id` taking each channel's messages with its handler;
    /// resolves to the node's address.
    fn serve(&mut self, id: NodeId, handlers: Vec<(Channel, Arc<dyn PeerHandler>)>) -> impl Future<Output = String>;

    /// An address for node `id` where nothing listens.
    fn unreachable(&mut self, id: NodeId) -> impl Future<Output = String>;
}

/// The peer the suite talks to. By kind:
/// - `echo`: replies with the body;
/// - `later`: waits the first byte's worth of milliseconds, then echoes;
/// - `whoami`: replies `{channel}/whoami`;
/// - `refuse`: refuses with the [`RefusalKind`] the body names;
/// - `inflate`: replies with as many bytes as the body says (8 bytes, little-endian);
/// - `hang`: never answers.
#[derive(Debug, Clone, Copy)]
pub struct ScriptedPeer {
    /// The channel it serves.
    pub channel: Channel,
}

impl ScriptedPeer {
    /// The reason it refuses with, as `kind`.
    #[must_use]
    pub fn reason(channel: Channel, kind: RefusalKind) -> String {
        format!("{channel} peer refuses as asked: {kind}")
    }
}

impl PeerHandler for ScriptedPeer {
    fn handle<'a>(&'a self, kind: &'a str, body: &'a [u8]) -> PeerFuture<'a, Result<Vec<u8>, Refusal>> {
        Box::pin(async move {
            match kind {
                "echo" => Ok(body.to_vec()),
                "later" => {
                    let wait = body.first().copied().unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(u64::from(wait))).await;
                    Ok(body.to_vec())
                }
                "whoami" => Ok(format!("{}/whoami", self.channel).into_bytes()),
                "refuse" => {
                    let named = RefusalKind::ALL.into_iter().find(|k| k.as_str().as_bytes() == body);
                    let kind = named.ok_or_else(|| Refusal::new(RefusalKind::Malformed, "no such refusal"))?;
                    Err(Refusal::new(kind, Self::reason(self.channel, kind)))
                }
                "inflate" => {
                    let size = body.try_into().map(u64::from_le_bytes).unwrap_or(0);
                    let size = usize::try_from(size).map_err(|_| Refusal::new(RefusalKind::Malformed, "too big"))?;
                    Ok(vec![0x5a; size])
                }
                "hang" => std::future::pending().await,
                other => Err(Refusal::new(RefusalKind::Malformed, format!("no message kind named {other:?}"))),
            }
        })
    }
}

/// The peer [`run`] serves.
pub const PEER: NodeId = 7;

/// The node [`run`] names where nothing listens.
pub const NOBODY: NodeId = 9;

/// How much later than its timeout a call that got no answer may end.
pub const SLACK: Duration = Duration::from_millis(500);

/// Runs every check against the transport of `harness`.
pub async fn run(harness: &mut impl Harness) {
    let handlers: Vec<(Channel, Arc<dyn PeerHandler>)> =
        Channel::ALL.into_iter().map(|channel| (channel, Arc::new(ScriptedPeer { channel }) as _)).collect();
    let addr = harness.serve(PEER, handlers).await;
    let transport = harness.transport();
    let max_body = harness.max_body();
    round_trips(transport.as_ref(), &addr, max_body).await;
    routes(transport.as_ref(), &addr).await;
    concurrent_calls(transport.as_ref(), &addr).await;
    limits(transport.as_ref(), &addr, max_body).await;
    let nowhere = harness.unreachable(NOBODY).await;
    nobody_listens(transport.as_ref(), &nowhere).await;
    silent(transport.as_ref(), &addr).await;
    refusals(transport.as_ref(), &addr).await;
}

/// Generous for anything that should be quick.
const TIMEOUT: Duration = Duration::from_secs(5);

async fn call(transport: &dyn PeerTransport, addr: &str, route: Route, body: Vec<u8>) -> Result<Vec<u8>, CallError> {
    transport.call(PEER, addr.to_owned(), route, body, TIMEOUT).await
}

/// `len` bytes that are not all alike, so a reordered or cut reply shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// An empty, a small and a largest-allowed body come back intact.
pub async fn round_trips(transport: &dyn PeerTransport, addr: &str, max_body: usize) {
    for channel in Channel::ALL {
        for body in [Vec::new(), b"hello".to_vec(), pattern(max_body, 0x33)] {
            let len = body.len();
            let reply = call(transport, addr, Route { channel, kind: "echo" }, body.clone()).await;
            match reply {
                Ok(reply) => assert!(reply == body, "round_trips: a {len}-byte {channel} echo came back altered"),
                Err(error) => panic!("round_trips: a {len}-byte {channel} echo failed: {error}"),
            }
        }
    }
}

/// A message reaches the handler of its channel, under its kind.
pub async fn routes(transport: &dyn PeerTransport, addr: &str) {
    for channel in Channel::ALL {
        let reply = call(transport, addr, Route { channel, kind: "whoami" }, Vec::new()).await;
        let expected = format!("{channel}/whoami").into_bytes();
        assert_eq!(reply, Ok(expected), "routes: a {channel} message went astray");
    }
}

/// Calls in flight together each get their own reply, even when they end
/// in another order than they started.
pub async fn concurrent_calls(transport: &dyn PeerTransport, addr: &str) {
    const CALLS: u8 = 48;
    let calls = (0..CALLS).map(|i| {
        let channel = Channel::ALL[usize::from(i) % Channel::ALL.len()];
        // Later calls wait less: replies come back out of order.
        let mut body = vec![(CALLS - i) % 16, i];
        body.extend(pattern(usize::from(i) * 97, i));
        let expected = body.clone();
        let reply = transport.call(PEER, addr.to_owned(), Route { channel, kind: "later" }, body, TIMEOUT);
        async move { (i, reply.await, expected) }
    });
    for (i, reply, expected) in join_all(calls).await {
        match reply {
            Ok(reply) => assert!(reply == expected, "concurrent_calls: call {i} got another call's reply"),
            Err(error) => panic!("concurrent_calls: call {i} failed: {error}"),
        }
    }
}

/// A message above the limit is refused as malformed; a reply above it is lost.
pub async fn limits(transport: &dyn PeerTransport, addr: &str, max_body: usize) {
    let refused = call(transport, addr, Route::raft("echo"), pattern(max_body + 1, 0x44)).await;
    assert!(
        matches!(&refused, Err(CallError::Refused { target: PEER, refusal }) if refusal.kind == RefusalKind::Malformed),
        "limits: a message above the limit should be refused as malformed, got {refused:?}",
    );
    let size = u64::try_from(max_body + 1).unwrap_or(u64::MAX).to_le_bytes().to_vec();
    let lost = call(transport, addr, Route::distro("inflate"), size).await;
    assert!(
        matches!(&lost, Err(CallError::NoReply { target: PEER, .. })),
        "limits: a reply above the limit should be lost, got {:?}",
        lost.map(|reply| reply.len()),
    );
}

/// A peer where nothing listens: not sent, and without waiting out the timeout.
pub async fn nobody_listens(transport: &dyn PeerTransport, nowhere: &str) {
    let started = Instant::now();
    let result = transport.call(NOBODY, nowhere.to_owned(), Route::raft("echo"), b"anyone?".to_vec(), TIMEOUT).await;
    let took = started.elapsed();
    assert!(
        matches!(&result, Err(CallError::NotSent { target: NOBODY, addr, .. }) if addr == nowhere),
        "nobody_listens: expected NotSent from node {NOBODY} at {nowhere}, got {result:?}",
    );
    assert!(took < Duration::from_secs(1), "nobody_listens: took {took:?} to give up");
}

/// A peer that never answers: no reply, once the timeout has passed.
pub async fn silent(transport: &dyn PeerTransport, addr: &str) {
    let timeout = Duration::from_millis(300);
    for channel in Channel::ALL {
        let started = Instant::now();
        let result = transport.call(PEER, addr.to_owned(), Route { channel, kind: "hang" }, vec![1], timeout).await;
        let took = started.elapsed();
        assert!(
            matches!(&result, Err(CallError::NoReply { target: PEER, .. })),
            "silent: expected NoReply from a silent {channel} peer, got {result:?}",
        );
        assert!(took >= timeout, "silent: gave up after {took:?}, before the timeout of {timeout:?}");
        assert!(took <= timeout + SLACK, "silent: gave up after {took:?}, long after the timeout of {timeout:?}");
    }
}

/// Every refusal arrives with its kind and reason.
pub async fn refusals(transport: &dyn PeerTransport, addr: &str) {
    for channel in Channel::ALL {
        for kind in RefusalKind::ALL {
            let result = call(transport, addr, Route { channel, kind: "refuse" }, kind.as_str().into()).await;
            let expected = Refusal::new(kind, ScriptedPeer::reason(channel, kind));
            assert_eq!(
                result,
                Err(CallError::Refused { target: PEER, refusal: expected }),
                "refusals: a {kind} refusal on {channel} did not arrive intact",
            );
        }
    }
}
