//! The HTTP transport passes the transport conformance suite of
//! `janus-testkit`, against handlers served by [`janus_peer::message_router`]
//! on a real loopback listener, secret check and body limit included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use janus_core::NodeId;
use janus_core::transport::{Channel, PeerHandler, PeerTransport};
use janus_peer::{ClusterSecret, HttpPeerTransport, message_router};
use janus_testkit::transport_conformance::{self, Harness};
use tokio::net::TcpListener;

const MAX_BODY: usize = 256 << 10;

fn secret() -> ClusterSecret {
    ClusterSecret::new("conformance-secret-0123").unwrap()
}

struct Http {
    transport: Arc<HttpPeerTransport>,
}

impl Harness for Http {
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
    transport_conformance::run(&mut Http { transport }).await;
}
