//! [`GrpcServer`]: the listener, one HTTP/2 connection per client, the two
//! gRPC methods, and shutdown (`docs/grpc-design.md` §2.7, §3.4, §4.3).
//!
//! - **Connections are capped** (`max_connections`); past the cap a new
//!   socket is closed at once. No connection is evicted for another: a
//!   connection holds its client's instances.
//! - Each socket is served by hyper's HTTP/2 server (h2c with prior
//!   knowledge, which every Nacos SDK speaks) with bounded streams, headers
//!   and windows; messages are bounded (`max_message_bytes`) by `framing`.
//! - `/Request/request` is answered by [`crate::unary`], the bi-stream
//!   `/BiRequestStream/requestBiStream` by [`crate::stream`]; any other path
//!   gets `UNIMPLEMENTED`.
//! - When the socket ends (the client left, detection failed, a slow client
//!   was reset) the connection's subscriptions go and its instances are
//!   released. At shutdown the node asks every client to move
//!   (`ConnectResetRequest`), waits `reset_grace`, then closes with GOAWAY;
//!   it does not release instances then (they end with the process here; in
//!   a cluster the clients' redo on another node takes them over).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use janus_core::NodeId;
use janus_core::registry::Binding;
use janus_nacos::NacosContext;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Status;
use tracing::{debug, info, warn};

use crate::config::GrpcConfig;
use crate::conn::{CloseReason, Conn, ConnTable};
use crate::push::{self, Subscribers};
use crate::{framing, stream, unary};

/// The unary method's path.
pub const UNARY_PATH: &str = "/Request/request";
/// The bi-stream method's path.
pub const BI_STREAM_PATH: &str = "/BiRequestStream/requestBiStream";

/// Counters of the gRPC front end, for `/metrics`, status pages and tests.
#[derive(Debug, Default)]
pub struct GrpcStats {
    /// Connections held now.
    pub connections: AtomicU64,
    /// The most connections held at once since a reader last reset it (with
    /// `swap`): a burst opened and closed between two readings shows here.
    pub peak_connections: AtomicU64,
    /// Connections accepted since start.
    pub accepted: AtomicU64,
    /// Connections closed at once because the cap was reached.
    pub refused: AtomicU64,
    /// Connections that completed their setup.
    pub set_up: AtomicU64,
    /// Subscriptions held now.
    pub subscriptions: AtomicI64,
    /// Unary requests answered.
    pub requests: AtomicU64,
    /// Pushes sent.
    pub pushes_sent: AtomicU64,
    /// Pushes acknowledged.
    pub pushes_acked: AtomicU64,
    /// Pushes not acknowledged in time.
    pub push_timeouts: AtomicU64,
    /// Client detections sent.
    pub detections: AtomicU64,
    /// Connections closed for not answering a detection.
    pub undetected: AtomicU64,
    /// Connections reset for not reading or acknowledging.
    pub slow_resets: AtomicU64,
    /// Instances removed because their connection closed.
    pub released: AtomicU64,
}

impl GrpcStats {
    /// The counters as operators see them.
    #[must_use]
    pub fn status(&self) -> janus_core::status::GrpcStatus {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        janus_core::status::GrpcStatus {
            connections: read(&self.connections),
            accepted: read(&self.accepted),
            refused: read(&self.refused),
            set_up: read(&self.set_up),
            subscriptions: u64::try_from(self.subscriptions.load(Ordering::Relaxed)).unwrap_or(0),
            requests: read(&self.requests),
            pushes_sent: read(&self.pushes_sent),
            pushes_acked: read(&self.pushes_acked),
            push_timeouts: read(&self.push_timeouts),
            detections: read(&self.detections),
            undetected: read(&self.undetected),
            slow_resets: read(&self.slow_resets),
            released: read(&self.released),
        }
    }

    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn subscribed(&self, delta: i64) {
        self.subscriptions.fetch_add(delta, Ordering::Relaxed);
    }
}

/// What every connection of a front end shares.
pub(crate) struct Shared {
    pub(crate) config: GrpcConfig,
    pub(crate) nacos: NacosContext,
    pub(crate) node: NodeId,
    /// Random per process: connection ids never repeat across restarts.
    incarnation: u32,
    next_conn: AtomicU32,
    pub(crate) epoch: Instant,
    pub(crate) conns: ConnTable,
    pub(crate) subscribers: Subscribers,
    pub(crate) feed: push::Feed,
    pub(crate) writes: Semaphore,
    pub(crate) authorizer: Arc<dyn crate::unary::Authorizer>,
    /// Framed push messages by service and cluster filter, with the revision each shows.
    pub(crate) push_messages: parking_lot::Mutex<PushMessages>,
    pub(crate) stats: Arc<GrpcStats>,
    pub(crate) tasks: TaskTracker,
}

/// Framed push messages by service, then by cluster filter, with the
/// revision each shows (`stream::push_message`).
pub(crate) type PushMessages =
    std::collections::HashMap<janus_core::ServiceKey, std::collections::HashMap<String, (u64, bytes::Bytes)>>;

/// The connections and subscriptions of a [`GrpcServer`], for operators.
#[derive(Clone)]
pub struct GrpcDirectory(Arc<Shared>);

impl std::fmt::Debug for GrpcDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcDirectory").field("node", &self.0.node).finish_non_exhaustive()
    }
}

impl GrpcDirectory {
    /// The counters.
    #[must_use]
    pub fn status(&self) -> janus_core::status::GrpcStatus {
        self.0.stats.status()
    }

    /// The subscriptions to a service held by this node's connections.
    #[must_use]
    pub fn subscribers(&self, service: &janus_core::ServiceKey) -> Vec<janus_core::status::Subscriber> {
        self.0.subscribers.describe(service)
    }
}

/// The Nacos gRPC front end of one node, bound and ready to serve.
pub struct GrpcServer {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl GrpcServer {
    /// A front end serving `nacos` on `listener`; instances registered through
    /// it are bound to connections of node `node`.
    #[must_use]
    pub fn new(listener: TcpListener, nacos: NacosContext, node: NodeId, config: GrpcConfig) -> Self {
        let shared = Arc::new(Shared {
            config,
            nacos,
            node,
            incarnation: rand_incarnation(),
            next_conn: AtomicU32::new(1),
            epoch: Instant::now(),
            conns: ConnTable::default(),
            subscribers: Subscribers::default(),
            feed: push::Feed::default(),
            writes: Semaphore::new(config.max_concurrent_writes.max(1)),
            authorizer: Arc::new(crate::unary::AllowAll),
            push_messages: parking_lot::Mutex::default(),
            stats: Arc::default(),
            tasks: TaskTracker::new(),
        });
        Self { listener, shared }
    }

    /// The front end with `authorizer` deciding every naming request.
    ///
    /// # Panics
    /// Never: called before serving, while the front end is not shared.
    #[must_use]
    pub fn with_authorizer(mut self, authorizer: Arc<dyn crate::unary::Authorizer>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.authorizer = authorizer;
        }
        self
    }

    /// The address it listens on.
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Its counters.
    #[must_use]
    pub fn stats(&self) -> Arc<GrpcStats> {
        self.shared.stats.clone()
    }

    /// What operators may read of the connections while the server runs.
    #[must_use]
    pub fn directory(&self) -> GrpcDirectory {
        GrpcDirectory(self.shared.clone())
    }

    /// Serves until `shutdown` completes, then asks clients to move, waits
    /// `reset_grace`, and closes every connection.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let Self { listener, shared } = self;
        let stop = CancellationToken::new();
        shared.tasks.spawn(push::dispatch(shared.clone(), stop.clone()));
        let builder = Arc::new(http2_builder(&shared.config));
        let mut last_accept_warning: Option<Instant> = None;
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let (socket, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, mostly: say so once a second and back off.
                    if last_accept_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                        warn!(%error, "cannot accept gRPC connections");
                        last_accept_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
            let conn = Arc::new(shared.new_conn(remote));
            if !shared.conns.admit(conn.clone(), shared.config.max_connections) {
                shared.stats.refused.fetch_add(1, Ordering::Relaxed);
                debug!(%remote, "gRPC connection cap reached; closing a new connection");
                drop(socket);
                continue;
            }
            let held = shared.conns.len() as u64;
            shared.stats.connections.store(held, Ordering::Relaxed);
            shared.stats.peak_connections.fetch_max(held, Ordering::Relaxed);
            shared.tasks.spawn(serve_connection(shared.clone(), conn, socket, builder.clone()));
        }
        drop(listener);
        shut_down(&shared).await;
        stop.cancel();
        shared.tasks.close();
        shared.tasks.wait().await;
    }
}

impl Shared {
    fn new_conn(&self, remote: SocketAddr) -> Conn {
        let seq = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let id = (u64::from(self.incarnation) << 32) | u64::from(seq);
        let accepted_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
        Conn::new(id, remote, Binding { node: self.node, conn: id }, self.epoch, accepted_ms)
    }
}

fn rand_incarnation() -> u32 {
    rand::random()
}

fn http2_builder(config: &GrpcConfig) -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    let window = u32::try_from(config.max_message_bytes.clamp(64 * 1024, 1024 * 1024)).unwrap_or(1024 * 1024);
    builder
        .timer(TokioTimer::new())
        // gRPC has no use for a `date` header; leaving it out saves encoding one per answer.
        .auto_date_header(false)
        .max_concurrent_streams(128)
        .max_header_list_size(16 * 1024)
        .max_send_buf_size(256 * 1024)
        .initial_stream_window_size(window)
        .initial_connection_window_size(window);
    builder
}

async fn serve_connection(
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    socket: TcpStream,
    builder: Arc<hyper::server::conn::http2::Builder<TokioExecutor>>,
) {
    // Small answers and pushes should leave at once; errors only mean the peer is gone.
    let _ = socket.set_nodelay(true);
    let (routed_conn, routed_shared) = (conn.clone(), shared.clone());
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let (conn, shared) = (routed_conn.clone(), routed_shared.clone());
        // Boxed: tonic's unary and streaming futures are large, and hyper
        // keeps the service future inline in each stream's task.
        async move { Ok::<_, Infallible>(Box::pin(route(conn, shared, request)).await) }
    });
    let serving = builder.serve_connection(TokioIo::new(socket), service);
    tokio::pin!(serving);
    let result = tokio::select! {
        result = serving.as_mut() => result,
        () = conn.close.cancelled() => {
            conn.end_stream();
            serving.as_mut().graceful_shutdown();
            tokio::time::timeout(shared.config.reset_grace, serving).await.unwrap_or(Ok(()))
        }
    };
    if let Err(error) = result {
        debug!(conn = %conn.label, %error, "gRPC connection ended with an error");
    }
    conn.close(CloseReason::ClientGone);
    release(&shared, &conn).await;
}

/// Forgets a closed connection: its subscriptions go, and its instances
/// unless the node is shutting down.
async fn release(shared: &Shared, conn: &Conn) {
    shared.conns.remove(conn.id);
    shared.stats.connections.store(shared.conns.len() as u64, Ordering::Relaxed);
    let services: Vec<_> = conn.subscriptions.lock().drain().map(|(service, _)| service).collect();
    shared.stats.subscribed(-i64::try_from(services.len()).unwrap_or(0));
    for service in &services {
        shared.subscribers.remove(service, conn.id);
    }
    let reason = conn.close_reason();
    if reason == CloseReason::Shutdown {
        return;
    }
    match shared.nacos.registry.release_binding(conn.binding).await {
        Ok(released) => {
            shared.stats.released.fetch_add(released, Ordering::Relaxed);
            if released > 0 {
                info!(conn = %conn.label, remote = %conn.remote, released, reason = reason.as_str(),
                    "gRPC connection closed; its instances were removed");
            }
        }
        Err(error) => warn!(conn = %conn.label, %error, "could not remove a closed gRPC connection's instances"),
    }
}

/// Asks every client to move, waits for them, then closes what is left.
async fn shut_down(shared: &Shared) {
    let conns = shared.conns.all();
    let asked = conns.iter().filter(|conn| stream::queue_reset(conn, shared)).count();
    if asked > 0 {
        debug!(asked, "asked gRPC clients to reconnect elsewhere");
        let deadline = Instant::now() + shared.config.reset_grace;
        while shared.conns.len() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for conn in shared.conns.all() {
        conn.close(CloseReason::Shutdown);
    }
}

async fn route(
    conn: Arc<Conn>,
    shared: Arc<Shared>,
    request: http::Request<Incoming>,
) -> http::Response<tonic::body::Body> {
    let limit = shared.config.max_message_bytes;
    match request.uri().path() {
        UNARY_PATH => match framing::read_request(request.into_body(), limit).await {
            Ok(payload) => framing::respond(&unary::handle(&conn, &shared, payload).await, limit),
            Err(status) => status.into_http(),
        },
        BI_STREAM_PATH => match stream::open(&conn, &shared, request.into_body()) {
            Some(body) => framing::grpc_response(tonic::body::Body::new(body)),
            None => Status::failed_precondition("this connection already has a bi-stream").into_http(),
        },
        path => Status::unimplemented(format!(
            "no gRPC method {path}; Nacos clients call {UNARY_PATH} and {BI_STREAM_PATH}"
        ))
        .into_http(),
    }
}
