//! Helpers for black-box tests: a node on free loopback ports with a
//! `janus-client` of its HTTP address. DNS questions go through
//! `janus_client::dns`.

use std::time::Duration;

use janus_client::{Body, Client, Method, Options, Response};
use janus_server::{RunningServer, ServerConfig};
use serde_json::Value;
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
    /// A client of its HTTP address (and of it only: no failover).
    pub client: Client,
}

/// The options of the tests' clients: a minute per request, so that a
/// blocking query of a few seconds fits and a hang still fails the test.
#[must_use]
pub fn options() -> Options {
    Options::default().request_timeout(Duration::from_secs(60))
}

/// A client of every node in `nodes`, in order (failover from one to the next).
///
/// # Panics
/// If `nodes` is empty.
#[must_use]
pub fn client_of(nodes: &[&Node]) -> Client {
    let addrs: Vec<String> = nodes.iter().map(|node| node.server.http_addr.to_string()).collect();
    Client::new(addrs, options()).unwrap_or_else(|e| panic!("a client of {} nodes: {e}", nodes.len()))
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
        let client = Client::new([server.http_addr.to_string()], options())
            .unwrap_or_else(|e| panic!("a client of {}: {e}", server.http_addr));
        Self { server, data, shutdown, client }
    }

    /// Sends `method path` with an optional JSON body; the answer whatever its status.
    ///
    /// # Panics
    /// If the node gives no answer (a test failure).
    pub async fn call(&self, method: Method, path: &str, json: Option<Value>) -> Response {
        let body = json.map_or(Body::Empty, Body::from);
        self.client.request(method, path, body).await.unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// `GET path`; the answer whatever its status.
    ///
    /// # Panics
    /// If the node gives no answer (a test failure).
    pub async fn get(&self, path: &str) -> Response {
        self.call(Method::GET, path, None).await
    }

    /// Sends form fields (as Nacos clients do); the answer whatever its status.
    ///
    /// # Panics
    /// If the node gives no answer (a test failure).
    pub async fn form(&self, method: Method, path: &str, fields: &str) -> Response {
        self.client.request(method, path, Body::form(fields)).await.unwrap_or_else(|e| panic!("{path}: {e}"))
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

/// An answer's body as JSON.
///
/// # Panics
/// If it is not JSON (a test failure).
#[must_use]
pub fn json(answer: &Response) -> Value {
    answer.json().unwrap_or_else(|e| panic!("{e}: {}", answer.text()))
}
