//! One keep-alive HTTP/1.1 connection per worker, on hyper's low-level client.

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A connection to the target.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
}

/// A request to send: method, path with query, optional body and content type.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) body: Option<(&'static str, String)>,
}

impl Call {
    pub(crate) fn get(path: String) -> Self {
        Self { method: Method::GET, path, body: None }
    }
}

impl Conn {
    /// Connects to `http://host:port`.
    pub(crate) async fn open(base: &str) -> anyhow::Result<Self> {
        let authority = base.strip_prefix("http://").ok_or_else(|| anyhow!("target must be http://host:port"))?;
        let authority = authority.trim_end_matches('/').to_owned();
        let stream = TcpStream::connect(&authority).await.with_context(|| format!("connecting to {authority}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // The connection ends with the worker; its error, if any, shows up on the next send.
            let _ = connection.await;
        });
        Ok(Self { sender, authority })
    }

    /// Sends a call and reads the whole answer; also returns the `X-Janus-Index` header if any.
    pub(crate) async fn send(&mut self, call: &Call) -> anyhow::Result<(StatusCode, Bytes, Option<u64>)> {
        self.sender.ready().await?;
        let mut builder =
            Request::builder().method(call.method.clone()).uri(&call.path).header("host", &self.authority);
        let body = match &call.body {
            Some((content_type, body)) => {
                builder = builder.header("content-type", *content_type);
                Full::from(body.clone())
            }
            None => Full::default(),
        };
        let response = self.sender.send_request(builder.body(body)?).await?;
        let status = response.status();
        let index = response.headers().get("x-janus-index").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes, index))
    }
}
