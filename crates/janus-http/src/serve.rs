//! [`serve`]: the HTTP/1.1 server loop, bounded on every path.
//!
//! - **Connections are capped** (`max_connections`). When the cap is reached,
//!   a new connection evicts the oldest connection that has no request in
//!   flight (idle keep-alive, or one that never completed a request header);
//!   if every connection is busy, the new one is closed at once. So a flood
//!   of idle or slow connections cannot lock out `/health` or real clients.
//! - **Headers must arrive in time** (`header_timeout`): from the moment a
//!   connection opens, and again from the end of each response, the client has
//!   that long to deliver a complete request header, or the connection is
//!   closed (a slowloris defence that also bounds idle keep-alive; hyper's
//!   header read timer covers both).
//! - **Bounded buffers**: at most 64 KiB of request head is buffered.
//! - **Accept errors** (out of file descriptors) are logged once a second and
//!   the loop backs off briefly instead of spinning.
//!
//! A connection counts as busy from the moment a request is handed to the
//! router until its response body has been sent or dropped; streaming
//! responses (Server-Sent Events) therefore keep their connection busy.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

/// Limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections held at once, at most.
    pub max_connections: usize,
    /// A connection must deliver a complete request header within this time
    /// of opening, and of the end of its previous response.
    pub header_timeout: Duration,
    /// Whether a request may take its connection over (`101 Switching
    /// Protocols`): only the cluster address, whose peer streams are
    /// connections taken over (janus-peer); the client port never does.
    pub upgrades: bool,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self { max_connections: 10_000, header_timeout: Duration::from_secs(10), upgrades: false }
    }
}

/// How long an evicted connection may take to flush what it has sent.
const EVICTION_GRACE: Duration = Duration::from_millis(100);

/// Largest request head buffered (hyper's minimum buffer is 8 KiB).
const MAX_HEAD_BUFFER: usize = 64 * 1024;

/// Counters of a listener, for metrics and tests.
#[derive(Debug, Default)]
pub struct ServeStats {
    /// Connections held now (evicted ones no longer count while they close).
    pub open: AtomicU64,
    /// The most connections held at once since a reader last reset it (with
    /// `swap`): a burst opened and closed between two readings shows here.
    pub peak_open: AtomicU64,
    /// Connections accepted since start.
    pub accepted: AtomicU64,
    /// Idle connections closed to make room for a new one.
    pub evicted: AtomicU64,
    /// New connections closed at once because every held one was busy.
    pub refused: AtomicU64,
}

/// One connection as the accept loop sees it.
struct Connection {
    /// Requests handed to the router whose response body is not done yet.
    busy: AtomicU32,
    /// Cancelled to close the connection (gracefully: after a response in
    /// flight): when it is evicted, or by the listener's shutdown (a child
    /// of its token). The connection's task waits on this token only, not
    /// on the shared one as well: waiting polls a token's lock and its
    /// wait list on every wake-up of the task, and the shared token's would
    /// be taken by every connection on every request, from every core.
    close: CancellationToken,
}

/// The connections of one listener, oldest first.
#[derive(Default)]
struct Connections {
    by_age: Mutex<BTreeMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
}

impl Connections {
    /// Registers a new connection, closed when `stop` is cancelled, evicting
    /// the oldest idle one if `max` are held; `None` if every held
    /// connection is busy.
    fn admit(&self, max: usize, stats: &ServeStats, stop: &CancellationToken) -> Option<(u64, Arc<Connection>)> {
        let mut by_age = self.by_age.lock();
        if by_age.len() >= max.max(1) {
            let idle = by_age.iter().find(|(_, c)| c.busy.load(Ordering::Acquire) == 0).map(|(id, _)| *id);
            match idle.and_then(|id| by_age.remove(&id)) {
                Some(evicted) => {
                    evicted.close.cancel();
                    stats.evicted.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection { busy: AtomicU32::new(0), close: stop.child_token() });
        by_age.insert(id, connection.clone());
        stats.open.store(by_age.len() as u64, Ordering::Relaxed);
        stats.peak_open.fetch_max(by_age.len() as u64, Ordering::Relaxed);
        Some((id, connection))
    }

    fn forget(&self, id: u64, stats: &ServeStats) {
        let mut by_age = self.by_age.lock();
        by_age.remove(&id);
        stats.open.store(by_age.len() as u64, Ordering::Relaxed);
    }
}

/// Serves `router` on `listener` with the default [`ServeLimits`] until
/// `shutdown` completes, then drains in-flight requests.
///
/// # Errors
/// Never in practice: accept errors are logged and retried.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, ServeLimits::default(), Arc::default(), shutdown).await
}

/// [`serve`] with explicit limits, counting into `stats`.
///
/// # Errors
/// Never in practice: accept errors are logged and retried.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    stats: Arc<ServeStats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let connections = Arc::new(Connections::default());
    let tasks = TaskTracker::new();
    let stop = CancellationToken::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(MAX_HEAD_BUFFER);
    let builder = Arc::new(builder);
    let mut last_accept_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, mostly: say so once a second and back off.
                if last_accept_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    warn!(%error, "cannot accept HTTP connections");
                    last_accept_warning = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let Some((id, connection)) = connections.admit(limits.max_connections, &stats, &stop) else {
            debug!("connection cap reached with every connection busy; closing a new one");
            drop(stream);
            continue;
        };
        let (router, builder, stop) = (router.clone(), builder.clone(), stop.clone());
        let (connections, stats) = (connections.clone(), stats.clone());
        // The connection's future is made inside the task's, so that the
        // task holds it once (a future moved into an `.await` would also
        // keep its first place).
        tasks.spawn(async move {
            serve_connection(stream, peer, router, builder, connection, stop, limits.upgrades).await;
            connections.forget(id, &stats);
        });
    }
    // Stop accepting; let every connection finish the response it is on.
    drop(listener);
    stop.cancel();
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// Serves `$serving` (a hyper HTTP/1.1 connection, with or without
/// upgrades) until it ends, or its connection is evicted or the listener
/// stops; either connection type has `graceful_shutdown` but no common trait.
macro_rules! drive {
    ($serving:expr, $connection:expr, $stop:expr) => {{
        let (serving, connection, stop) = ($serving, &$connection, &$stop);
        tokio::pin!(serving);
        tokio::select! {
            result = serving.as_mut() => result,
            () = connection.close.cancelled() => {
                if stop.is_cancelled() {
                    // Shutting down: finish the response in flight, if any
                    // (requests have deadlines and watches end with the
                    // shutdown); a connection with none, a half-sent header
                    // included, closes at once.
                    serving.as_mut().graceful_shutdown();
                    loop {
                        match tokio::time::timeout(EVICTION_GRACE, serving.as_mut()).await {
                            Ok(result) => break result,
                            Err(_) if connection.busy.load(Ordering::Acquire) == 0 => break Ok(()),
                            Err(_) => {}
                        }
                    }
                } else {
                    // Evicted with no request in flight: let a response still
                    // being flushed leave, and close whatever else (a half-sent
                    // header) at once.
                    serving.as_mut().graceful_shutdown();
                    match tokio::time::timeout(EVICTION_GRACE, serving).await {
                        Ok(result) => result,
                        Err(_) => Ok(()),
                    }
                }
            }
        }
    }};
}

async fn serve_connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    router: Router,
    builder: Arc<hyper::server::conn::http1::Builder>,
    connection: Arc<Connection>,
    stop: CancellationToken,
    upgrades: bool,
) {
    // Small answers should leave at once; errors only mean the peer is gone.
    let _ = stream.set_nodelay(true);
    let tracked = connection.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let guard = BusyGuard::new(tracked.clone());
        // Logins are throttled by source address too; only they are told it.
        if request.uri().path().ends_with("/login") {
            request.extensions_mut().insert(crate::auth::login::PeerAddr(peer));
        }
        // Routed now rather than in the future: the request then lives in
        // the route's future only, not in this one as well (a held blocking
        // query keeps this future for minutes). A Router is always ready.
        let routed = tower::Service::call(&mut router.clone(), request.map(Body::new));
        async move {
            let response = routed.await?;
            Ok::<_, std::convert::Infallible>(response.map(|body| Body::new(Guarded { body, _guard: guard })))
        }
    });
    let serving = builder.serve_connection(TokioIo::new(stream), service);
    let result =
        if upgrades { drive!(serving.with_upgrades(), connection, stop) } else { drive!(serving, connection, stop) };
    if let Err(error) = result {
        // Header timeouts, resets, malformed requests: the client's doing.
        debug!(%error, "HTTP connection ended with an error");
    }
}

/// Marks a connection busy from a request's arrival until its response body
/// is done (sent, or dropped with the connection).
struct BusyGuard(Arc<Connection>);

impl BusyGuard {
    fn new(connection: Arc<Connection>) -> Self {
        connection.busy.fetch_add(1, Ordering::AcqRel);
        Self(connection)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection marked busy while it lives.
struct Guarded {
    body: Body,
    _guard: BusyGuard,
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_evicts_the_oldest_idle_connection_or_refuses_and_shutdown_closes_all() {
        let (connections, stats) = (Connections::default(), ServeStats::default());
        let stop = CancellationToken::new();
        let (_, first) = connections.admit(2, &stats, &stop).expect("room");
        let (_, second) = connections.admit(2, &stats, &stop).expect("room");
        first.busy.store(1, Ordering::Release);
        let (_, third) = connections.admit(2, &stats, &stop).expect("the idle second one makes room");
        assert!(second.close.is_cancelled() && !first.close.is_cancelled());
        third.busy.store(1, Ordering::Release);
        assert!(connections.admit(2, &stats, &stop).is_none(), "every connection busy: the new one is refused");
        assert_eq!((stats.evicted.load(Ordering::Relaxed), stats.refused.load(Ordering::Relaxed)), (1, 1));
        // The listener's shutdown closes every connection it holds.
        assert!(!third.close.is_cancelled());
        stop.cancel();
        assert!(first.close.is_cancelled() && third.close.is_cancelled());
    }
}
