//! The sending side: one pooled HTTP/1.1 client for every peer, carrying
//! both engines' messages as the workspace's one [`PeerTransport`].

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use janus_core::NodeId;
use janus_core::transport::{CallError, CallFuture, PeerTransport, Route};

use crate::{ClusterSecret, wire};

/// Sends engine messages to peers over HTTP (see the crate docs).
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
    /// POSTs `body` to `http://{addr}/internal/{channel}/{kind}` with the
    /// secret; the reply body, read up to the reply limit, if the peer
    /// answered 200 within `timeout`.
    fn call(&self, target: NodeId, addr: String, route: Route, body: Vec<u8>, timeout: Duration) -> CallFuture {
        let client = self.client.clone();
        let max_reply = self.max_reply;
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{addr}{}", wire::path(route)))
            .header(header::AUTHORIZATION, self.secret.header_value())
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Full::new(Bytes::from(body)));
        Box::pin(async move {
            let not_sent = |reason: String| CallError::NotSent { target, addr: addr.clone(), reason };
            let no_reply = |reason: String| CallError::NoReply { target, addr: addr.clone(), reason };
            let request = request.map_err(|e| not_sent(format!("bad peer address: {e}")))?;
            let exchange = async {
                let response = client.request(request).await.map_err(|e| {
                    // A failed connect never sent the request; anything later may have.
                    if e.is_connect() { not_sent(with_causes(&e)) } else { no_reply(with_causes(&e)) }
                })?;
                let status = response.status();
                let body = Limited::new(response.into_body(), max_reply)
                    .collect()
                    .await
                    .map_err(|e| no_reply(format!("reading the reply: {e}")))?
                    .to_bytes();
                if status == StatusCode::OK {
                    Ok(body.to_vec())
                } else {
                    Err(CallError::Refused { target, refusal: wire::refusal(status, &body) })
                }
            };
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| Err(no_reply(format!("no reply within {} ms", timeout.as_millis()))))
        })
    }
}

/// `error` and what caused it ("client error (Connect): tcp connect error: …").
fn with_causes(error: &hyper_util::client::legacy::Error) -> String {
    let chain = std::iter::successors(Some(error as &dyn std::error::Error), |e| e.source());
    chain.map(ToString::to_string).collect::<Vec<_>>().join(": ")
}
