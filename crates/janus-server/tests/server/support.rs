//! A node with its router for in-process tests: requests go through `oneshot`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use janus_server::{App, ServerConfig};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The probe allow-list of every test node: loopback only.
pub const LOOPBACK_ONLY: &str = "127.0.0.0/8";

pub struct TestApp {
    pub app: App,
    pub shutdown: CancellationToken,
    /// The node's data directory (Raft log and snapshots), removed on drop.
    pub data: Option<tempfile::TempDir>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn index(&self) -> u64 {
        self.headers["x-janus-index"].to_str().unwrap().parse().unwrap()
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with(ServerConfig::default()).await
    }

    pub async fn with(config: ServerConfig) -> Self {
        Self::on(tempfile::tempdir().unwrap(), config).await
    }

    /// A node over an existing data directory (a restart). Unless the test
    /// chose its own, the probe allow-list is loopback only: health checks
    /// never connect to an address outside this machine.
    pub async fn on(data: tempfile::TempDir, mut config: ServerConfig) -> Self {
        config.node.data_dir = data.path().to_owned();
        if config.health.probe_allow == janus_server::config::HealthSection::default().probe_allow {
            config.health.probe_allow = vec![LOOPBACK_ONLY.to_owned()];
        }
        let shutdown = CancellationToken::new();
        let app = janus_server::build(&config, &shutdown).await.unwrap();
        Self { app, shutdown, data: Some(data) }
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.app.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply { status, headers, body }
    }

    pub async fn call(&self, method: Method, uri: &str, json: Option<Value>) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        let body = match json {
            Some(json) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.send(builder.body(body).unwrap()).await
    }

    pub async fn raw(&self, method: Method, uri: &str, content_type: &str, body: impl Into<Body>) -> Reply {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(body.into())
            .unwrap();
        self.send(request).await
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.call(Method::GET, uri, None).await
    }

    pub async fn post(&self, uri: &str, json: Value) -> Reply {
        self.call(Method::POST, uri, Some(json)).await
    }

    /// A Nacos v1 call with form-encoded parameters in the body.
    pub async fn nacos(&self, method: Method, path: &str, params: &[(&str, &str)]) -> Reply {
        let body: String = form_encode(params);
        self.raw(method, path, "application/x-www-form-urlencoded", body).await
    }
}

impl TestApp {
    /// Stops the node (Raft included) and hands back its data directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.shutdown.cancel();
        self.app.cp.shutdown().await;
        self.data.take().unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn form_encode(params: &[(&str, &str)]) -> String {
    params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
