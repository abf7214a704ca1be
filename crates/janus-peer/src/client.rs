//! The sending side: one pooled HTTP/1.1 client for every peer, carrying
//! both engines' messages.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use janus_ap::{CallError, DistroTransport, MessageKind};
use janus_core::NodeId;
use janus_raft::{PeerTransport, RpcKind, TransportError};

use crate::{ClusterSecret, DISTRO_PATH, RAFT_PATH};

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

/// Why a POST to a peer produced no reply.
enum PostError {
    /// Certainly not delivered (no connection).
    NotSent(String),
    /// No reply: timed out or the connection broke after sending.
    NoReply(String),
    /// The peer answered 421: it does not lead and did not act on the request.
    NotLeader(String),
    /// The peer answered with another error status.
    Refused(String),
}

impl HttpPeerTransport {
    /// POSTs `body` to `http://{addr}{path}` with the secret; the reply body,
    /// read up to the reply limit, if the peer answered 200 within `timeout`.
    fn post(
        &self,
        addr: &str,
        path: String,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, PostError>> {
        let client = self.client.clone();
        let authorization = self.secret.header_value();
        let max_reply = self.max_reply;
        let uri = format!("http://{addr}{path}");
        Box::pin(async move {
            let request = Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header(header::AUTHORIZATION, authorization)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| PostError::NotSent(format!("bad peer address: {e}")))?;
            let exchange = async {
                let response = client.request(request).await.map_err(|e| {
                    // A failed connect never sent the request; anything later may have.
                    if e.is_connect() { PostError::NotSent(e.to_string()) } else { PostError::NoReply(e.to_string()) }
                })?;
                let status = response.status();
                let body = Limited::new(response.into_body(), max_reply)
                    .collect()
                    .await
                    .map_err(|e| PostError::NoReply(format!("reading the reply: {e}")))?
                    .to_bytes();
                if status == StatusCode::OK {
                    Ok(body.to_vec())
                } else if status == StatusCode::MISDIRECTED_REQUEST {
                    Err(PostError::NotLeader(String::from_utf8_lossy(&body).trim().to_owned()))
                } else {
                    Err(PostError::Refused(format!("{status}: {}", String::from_utf8_lossy(&body).trim())))
                }
            };
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| Err(PostError::NoReply(format!("no reply within {} ms", timeout.as_millis()))))
        })
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
        let posted = self.post(&addr, format!("{RAFT_PATH}/{kind}"), body, timeout);
        Box::pin(async move {
            posted.await.map_err(|error| match error {
                PostError::NotSent(reason) => TransportError::NotSent { target, addr, reason },
                PostError::NoReply(reason) => TransportError::Unreachable { target, addr, reason },
                PostError::NotLeader(reason) => TransportError::NotLeader { target, reason },
                PostError::Refused(reason) => TransportError::Refused { target, reason },
            })
        })
    }
}

impl DistroTransport for HttpPeerTransport {
    fn call(
        &self,
        target: NodeId,
        addr: String,
        kind: MessageKind,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, CallError>> {
        let posted = self.post(&addr, format!("{DISTRO_PATH}/{kind}"), body, timeout);
        Box::pin(async move {
            posted.await.map_err(|error| match error {
                PostError::NotSent(reason) => CallError::NotSent { target, reason },
                PostError::NoReply(reason) => CallError::NoReply { target, reason },
                PostError::NotLeader(reason) | PostError::Refused(reason) => CallError::Refused { target, reason },
            })
        })
    }
}
