//! The sending side: one pooled HTTP/1.1 client for every peer.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use janus_raft::{PeerTransport, RpcKind, TransportError};

use crate::{ClusterSecret, RAFT_PATH};

/// Sends Raft messages to peers over HTTP (see the crate docs).
#[derive(Clone)]
pub struct HttpPeerTransport {
    client: Client<HttpConnector, Full<Bytes>>,
    secret: ClusterSecret,
    max_reply: usize,
}

impl std::fmt::Debug for HttpPeerTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPeerTransport").field("max_reply", &self.max_reply).finish_non_exhaustive()
    }
}

impl HttpPeerTransport {
    /// A transport presenting `secret`, reading replies of at most `max_reply` bytes.
    #[must_use]
    pub fn new(secret: ClusterSecret, max_reply: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector);
        Self { client, secret, max_reply }
    }
}

impl PeerTransport for HttpPeerTransport {
    fn call(
        &self,
        target: u64,
        addr: String,
        kind: RpcKind,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let client = self.client.clone();
        let authorization = self.secret.header_value();
        let max_reply = self.max_reply;
        Box::pin(async move {
            let unreachable = |reason: String| TransportError::Unreachable { target, addr: addr.clone(), reason };
            let not_sent = |reason: String| TransportError::NotSent { target, addr: addr.clone(), reason };
            let request = Request::builder()
                .method(Method::POST)
                .uri(format!("http://{addr}{RAFT_PATH}/{kind}"))
                .header(header::AUTHORIZATION, authorization)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| not_sent(format!("bad peer address: {e}")))?;
            let exchange = async {
                let response = client.request(request).await.map_err(|e| {
                    // A failed connect never sent the request; anything later may have.
                    if e.is_connect() { not_sent(e.to_string()) } else { unreachable(e.to_string()) }
                })?;
                let status = response.status();
                let body = Limited::new(response.into_body(), max_reply)
                    .collect()
                    .await
                    .map_err(|e| unreachable(format!("reading the reply: {e}")))?
                    .to_bytes();
                if status == StatusCode::OK {
                    Ok(body.to_vec())
                } else {
                    let reason = format!("{status}: {}", String::from_utf8_lossy(&body).trim());
                    Err(TransportError::Refused { target, reason })
                }
            };
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| Err(unreachable(format!("no reply within {} ms", timeout.as_millis()))))
        })
    }
}
