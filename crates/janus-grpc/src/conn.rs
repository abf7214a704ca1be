//! Connections: one per accepted TCP socket (`docs/grpc-design.md` §2.1,
//! §4.4). A connection is what Nacos clients are known by: its unary calls
//! and its bi-stream share it, its instances are bound to it, and it ends
//! when the socket does.
//!
//! Everything a connection holds is bounded: its subscriptions (a cap), the
//! services to push (a subset of those), its pushes in flight (a cap) and
//! its outbound queue (a bounded channel).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use janus_core::name::ServiceKey;
use janus_core::registry::Binding;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::wire::proto::Payload;

/// What a connection's client said in its `ConnectionSetupRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SetupInfo {
    pub(crate) client_version: String,
    pub(crate) tenant: String,
    pub(crate) app: String,
}

/// One subscription of a connection.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    /// The cluster filter as the client wrote it, echoed in pushes.
    pub(crate) clusters_text: String,
    /// The revision the client last acknowledged (or was answered with).
    pub(crate) acked_revision: u64,
    /// When the service was last pushed to the client.
    pub(crate) last_push: Option<Instant>,
}

/// What a request sent on the bi-stream waits for.
#[derive(Debug, Clone)]
pub(crate) enum Awaited {
    /// A push of this service at this revision.
    Push { service: ServiceKey, revision: u64 },
    /// An answer to a client detection.
    Detection,
}

#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) awaited: Awaited,
    pub(crate) deadline: Instant,
}

/// The outbound side of a bi-stream: what the writer sends to the client.
pub(crate) type Outbound = mpsc::Sender<Result<Payload, tonic::Status>>;

/// Why a connection ended, for logs and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The client closed the socket or the bi-stream.
    ClientGone,
    /// The client did not answer a detection in time.
    Undetected,
    /// The client did not read or acknowledge pushes.
    SlowClient,
    /// The node is shutting down.
    Shutdown,
}

impl CloseReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::ClientGone => "client gone",
            Self::Undetected => "no answer to client detection",
            Self::SlowClient => "slow client",
            Self::Shutdown => "node shutting down",
        }
    }
}

/// One client connection.
pub(crate) struct Conn {
    pub(crate) id: u64,
    /// The Nacos connection id: `{accept ms}_{ip}_{port}`.
    pub(crate) label: String,
    pub(crate) remote: SocketAddr,
    pub(crate) binding: Binding,
    setup: OnceLock<SetupInfo>,
    setup_notify: Notify,
    stream_open: AtomicBool,
    /// Milliseconds since the front end's epoch of the last client activity.
    last_active: AtomicU64,
    epoch: Instant,
    outbound: Mutex<Option<Outbound>>,
    pub(crate) subscriptions: Mutex<HashMap<ServiceKey, Subscription>>,
    /// Subscribed services to push.
    pub(crate) dirty: Mutex<HashSet<ServiceKey>>,
    pub(crate) in_flight: Mutex<HashMap<u64, InFlight>>,
    /// Consecutive pushes not acknowledged in time.
    pub(crate) push_timeouts: AtomicU32,
    next_request_id: AtomicU64,
    /// Wakes the writer: something to push, an answer arrived.
    pub(crate) wake: Notify,
    /// Cancelled to close the connection.
    pub(crate) close: CancellationToken,
    close_reason: OnceLock<CloseReason>,
}

impl Conn {
    pub(crate) fn new(id: u64, remote: SocketAddr, binding: Binding, epoch: Instant, accepted_ms: u64) -> Self {
        let conn = Self {
            id,
            label: format!("{accepted_ms}_{}_{}", remote.ip(), remote.port()),
            remote,
            binding,
            setup: OnceLock::new(),
            setup_notify: Notify::new(),
            stream_open: AtomicBool::new(false),
            last_active: AtomicU64::new(0),
            epoch,
            outbound: Mutex::new(None),
            subscriptions: Mutex::new(HashMap::new()),
            dirty: Mutex::new(HashSet::new()),
            in_flight: Mutex::new(HashMap::new()),
            push_timeouts: AtomicU32::new(0),
            // Pushes use the revision they carry as their id; the others count from far above.
            next_request_id: AtomicU64::new(1 << 62),
            wake: Notify::new(),
            close: CancellationToken::new(),
            close_reason: OnceLock::new(),
        };
        conn.touch();
        conn
    }

    /// Records client activity now.
    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active.store(ms, Ordering::Relaxed);
    }

    /// When the client was last heard from.
    pub(crate) fn last_active(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_active.load(Ordering::Relaxed))
    }

    /// Whether the connection finished its setup.
    pub(crate) fn is_set_up(&self) -> bool {
        self.setup.get().is_some()
    }

    pub(crate) fn setup_info(&self) -> Option<&SetupInfo> {
        self.setup.get()
    }

    /// Records the setup (the first one counts) and wakes requests waiting for it.
    pub(crate) fn set_up(&self, info: SetupInfo) -> bool {
        let first = self.setup.set(info).is_ok();
        self.setup_notify.notify_waiters();
        first
    }

    /// Waits up to `wait` for the setup if the bi-stream is open; a
    /// connection without one is not set up (`docs/grpc-design.md` §2.2).
    pub(crate) async fn wait_set_up(&self, wait: Duration) -> bool {
        if self.is_set_up() {
            return true;
        }
        if !self.stream_open.load(Ordering::Acquire) {
            return false;
        }
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.setup_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_set_up() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.is_set_up();
            }
        }
    }

    /// Opens the bi-stream; `false` if the connection already has one.
    pub(crate) fn open_stream(&self, outbound: Outbound) -> bool {
        let mut slot = self.outbound.lock();
        if slot.is_some() {
            return false;
        }
        *slot = Some(outbound);
        self.stream_open.store(true, Ordering::Release);
        true
    }

    /// Ends the bi-stream towards the client (once the writer is gone too).
    pub(crate) fn end_stream(&self) {
        self.outbound.lock().take();
    }

    /// The bi-stream's sender, once it is open.
    pub(crate) fn outbound(&self) -> Option<Outbound> {
        self.outbound.lock().clone()
    }

    /// A new id for a request sent to the client.
    pub(crate) fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Marks a subscribed service to push and wakes the writer.
    pub(crate) fn mark_dirty(&self, service: &ServiceKey) {
        if !self.subscriptions.lock().contains_key(service) {
            return;
        }
        if self.dirty.lock().insert(service.clone()) {
            self.wake.notify_one();
        }
    }

    /// Marks every subscription to push (after missed change events).
    pub(crate) fn mark_all_dirty(&self) {
        let services: Vec<ServiceKey> = self.subscriptions.lock().keys().cloned().collect();
        let mut dirty = self.dirty.lock();
        dirty.extend(services);
        if !dirty.is_empty() {
            self.wake.notify_one();
        }
    }

    /// Closes the connection (the first reason given is kept).
    pub(crate) fn close(&self, reason: CloseReason) {
        let _ = self.close_reason.set(reason);
        self.close.cancel();
    }

    pub(crate) fn close_reason(&self) -> CloseReason {
        self.close_reason.get().copied().unwrap_or(CloseReason::ClientGone)
    }
}

/// The live connections of a front end.
#[derive(Default)]
pub(crate) struct ConnTable {
    conns: RwLock<HashMap<u64, Arc<Conn>>>,
}

impl ConnTable {
    /// Adds a connection unless `max` are held.
    pub(crate) fn admit(&self, conn: Arc<Conn>, max: usize) -> bool {
        let mut conns = self.conns.write();
        if conns.len() >= max.max(1) {
            return false;
        }
        conns.insert(conn.id, conn);
        true
    }

    pub(crate) fn remove(&self, id: u64) {
        self.conns.write().remove(&id);
    }

    pub(crate) fn len(&self) -> usize {
        self.conns.read().len()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Conn>> {
        self.conns.read().values().cloned().collect()
    }
}
