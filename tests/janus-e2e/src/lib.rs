//! Helpers for black-box tests: a node on free loopback ports, a plain HTTP
//! client and a small DNS client.

pub mod dns;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use janus_server::{RunningServer, ServerConfig};
use tokio_util::sync::CancellationToken;

/// The probe allow-list of every test node: loopback only, so an address
/// outside this machine is refused, never probed.
pub const LOOPBACK_ONLY: &str = "127.0.0.0/8";

/// A running node and the token that stops it.
pub struct Node {
    /// The server.
    pub server: RunningServer,
    /// Its data directory, removed on drop.
    pub data: tempfile::TempDir,
    /// Cancel to shut it down.
    pub shutdown: CancellationToken,
    /// `http://127.0.0.1:port`.
    pub base: String,
}

impl Node {
    /// Starts a node on a free loopback port; `tweak` adjusts its configuration.
    ///
    /// # Panics
    /// If the node cannot start (a test failure).
    pub async fn start(tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_in(tempfile::tempdir().expect("a temporary directory"), tweak).await
    }

    /// Starts a node over an existing data directory (a restart). Health
    /// checks may probe loopback addresses only, unless `tweak` says otherwise.
    ///
    /// # Panics
    /// If the node cannot start (a test failure).
    pub async fn start_in(data: tempfile::TempDir, tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut config = ServerConfig::default();
        config.http.addr = ([127, 0, 0, 1], 0).into();
        config.dns.addr = ([127, 0, 0, 1], 0).into();
        config.node.data_dir = data.path().to_owned();
        config.health.probe_allow = vec![LOOPBACK_ONLY.to_owned()];
        tweak(&mut config);
        let shutdown = CancellationToken::new();
        let server = match janus_server::start(config, shutdown.clone()).await {
            Ok(server) => server,
            Err(err) => panic!("node did not start: {err:#}"),
        };
        let base = format!("http://{}", server.http_addr);
        Self { server, data, shutdown, base }
    }

    /// Shuts down and waits, failing if that takes longer than `limit`.
    ///
    /// # Panics
    /// If shutdown is slow or fails.
    pub async fn stop_within(self, limit: Duration) {
        drop(self.stop_keeping_data(limit).await);
    }

    /// Shuts down like [`Self::stop_within`] and hands back the data
    /// directory, for [`Self::start_in`].
    ///
    /// # Panics
    /// If shutdown is slow or fails.
    pub async fn stop_keeping_data(self, limit: Duration) -> tempfile::TempDir {
        self.shutdown.cancel();
        match tokio::time::timeout(limit, self.server.wait()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => panic!("shutdown failed: {err:#}"),
            Err(_) => panic!("shutdown took longer than {limit:?}"),
        }
        self.data
    }
}

/// A pooled plain-HTTP client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

/// An answer: status, `X-Janus-Index` if any, body.
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// The `X-Janus-Index` header.
    pub index: Option<u64>,
    /// The `Retry-After` header.
    pub retry_after: Option<String>,
    /// Body bytes.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (null if it is not JSON).
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

impl Default for Http {
    fn default() -> Self {
        Self { client: Client::builder(TokioExecutor::new()).build_http() }
    }
}

impl Http {
    /// Sends a request; `form` bodies are sent form-encoded.
    ///
    /// # Errors
    /// A transport error.
    pub async fn send(&self, method: Method, url: &str, form: Option<&str>) -> Result<Answer, String> {
        self.request(method, url, form.map(|f| ("application/x-www-form-urlencoded", f.to_owned()))).await
    }

    /// Sends a request with an optional JSON body.
    ///
    /// # Errors
    /// A transport error.
    pub async fn send_json(
        &self,
        method: Method,
        url: &str,
        json: Option<serde_json::Value>,
    ) -> Result<Answer, String> {
        self.request(method, url, json.map(|j| ("application/json", j.to_string()))).await
    }

    async fn request(&self, method: Method, url: &str, body: Option<(&str, String)>) -> Result<Answer, String> {
        let mut builder = Request::builder().method(method).uri(url);
        let body = match body {
            Some((content_type, body)) => {
                builder = builder.header("content-type", content_type);
                body
            }
            None => String::new(),
        };
        let request = builder.body(Full::from(body)).map_err(|e| e.to_string())?;
        let response = self.client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let index = header("x-janus-index").and_then(|v| v.parse().ok());
        let retry_after = header("retry-after");
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Answer { status, index, retry_after, body })
    }
}
