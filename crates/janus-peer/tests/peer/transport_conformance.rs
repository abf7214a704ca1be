//! The stream transport and the HTTP transport pass the transport
//! conformance suite of `janus-testkit`, against handlers served by
//! [`janus_peer::message_router`] on a real loopback listener, secret check
//! and body limit included; the stream transport also talks to a node of an
//! earlier version (no streams) and is refused without the secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use janus_core::NodeId;
use janus_core::transport::{CallError, RefusalKind, Route};
use janus_core::transport::{Channel, PeerHandler, PeerTransport};
use janus_peer::{ClusterSecret, HttpPeerTransport, StreamPeerTransport, message_router};
use janus_testkit::transport_conformance::{self, Harness};
use tokio::net::TcpListener;

const MAX_BODY: usize = 256 << 10;

fn secret() -> ClusterSecret {
    ClusterSecret::new("conformance-secret-0123").unwrap()
}

struct Loopback {
    transport: Arc<dyn PeerTransport>,
}

impl Harness for Loopback {
    fn transport(&self) -> Arc<dyn PeerTransport> {
        self.transport.clone()
    }

    fn max_body(&self) -> usize {
        MAX_BODY
    }

    async fn serve(&mut self, _id: NodeId, handlers: Vec<(Channel, Arc<dyn PeerHandler>)>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let router = message_router(handlers, secret(), MAX_BODY);
        tokio::spawn(async move { axum::serve(listener, router).await });
        addr
    }

    async fn unreachable(&mut self, _id: NodeId) -> String {
        // A port that was just free: nothing listens there now.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_transport_conforms() {
    let transport = Arc::new(HttpPeerTransport::new(secret(), MAX_BODY));
    transport_conformance::run(&mut Loopback { transport }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_transport_conforms() {
    let transport = Arc::new(StreamPeerTransport::new(secret(), MAX_BODY));
    transport_conformance::run(&mut Loopback { transport }).await;
}

/// Serves `router` on a fresh loopback port.
async fn serve(router: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_streams_gets_http_requests() {
    // An earlier version: the message routes, no `/internal/stream`.
    let earlier = axum::Router::new().route(
        "/internal/raft/{kind}",
        axum::routing::post(|body: axum::body::Bytes| async move { [b"earlier:".as_slice(), &body].concat() }),
    );
    let addr = serve(earlier).await;
    let transport = StreamPeerTransport::new(secret(), MAX_BODY);
    for _ in 0..2 {
        let reply = transport.call(1, addr.clone(), Route::raft("append"), b"x".to_vec(), Duration::from_secs(5)).await;
        assert_eq!(reply.unwrap(), b"earlier:x");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_the_secret_is_refused() {
    let handlers: Vec<(Channel, Arc<dyn PeerHandler>)> =
        vec![(Channel::Raft, Arc::new(janus_testkit::transport_conformance::ScriptedPeer { channel: Channel::Raft }))];
    let addr = serve(message_router(handlers, secret(), MAX_BODY)).await;
    let stranger = StreamPeerTransport::new(ClusterSecret::new("some-other-secret-456").unwrap(), MAX_BODY);
    let refused = stranger.call(1, addr, Route::raft("echo"), b"hi".to_vec(), Duration::from_secs(5)).await;
    assert!(
        matches!(&refused, Err(CallError::Refused { refusal, .. }) if refusal.kind == RefusalKind::Forbidden),
        "{refused:?}"
    );
}
