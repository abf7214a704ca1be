//! Connections: one per accepted TCP socket (`docs/grpc-design.md` §2.1,
//! §4.4). A connection is what Nacos clients are known by: its unary calls
//! and its bi-stream share it, its instances are bound to it, and it ends
//! when the socket does.
//!
//! Everything a connection holds is bounded: its subscriptions (a cap), the
//! services to push (a subset of those), its pushes in flight (a cap) and
//! its queue of control messages (a cap).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Waker;
use std::time::Duration;

use bytes::Bytes;
use janus_core::name::ServiceKey;
use janus_core::registry::Binding;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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

/// The way out of a bi-stream: the control messages waiting to be sent and
/// the task of the body that sends them and the pushes (`outbox.rs`).
#[derive(Default)]
pub(crate) struct Outbox {
    /// The bi-stream is open.
    open: bool,
    /// The stream towards the client ends once `queued` is sent.
    pub(crate) ended: bool,
    /// Framed messages to send before any push (detections, a reset).
    pub(crate) queued: VecDeque<Bytes>,
    /// The body's task, woken when there is something to send.
    pub(crate) waker: Option<Waker>,
    /// Since when the body has had something to send without being polled:
    /// h2 polls it only while the client's flow-control window has room.
    pub(crate) waiting_since: Option<Instant>,
}

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
    pub(crate) outbox: Mutex<Outbox>,
    pub(crate) subscriptions: Mutex<HashMap<ServiceKey, Subscription>>,
    /// Subscribed services to push.
    pub(crate) dirty: Mutex<HashSet<ServiceKey>>,
    pub(crate) in_flight: Mutex<HashMap<u64, InFlight>>,
    /// Consecutive pushes not acknowledged in time.
    pub(crate) push_timeouts: AtomicU32,
    /// The watch task sleeps with no push in flight to time: the first push
    /// sent then wakes it (`watch`).
    pub(crate) watch_idle: AtomicBool,
    pub(crate) watch: Notify,
    next_request_id: AtomicU64,
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
            outbox: Mutex::default(),
            subscriptions: Mutex::new(HashMap::new()),
            dirty: Mutex::new(HashSet::new()),
            in_flight: Mutex::new(HashMap::new()),
            push_timeouts: AtomicU32::new(0),
            watch_idle: AtomicBool::new(false),
            watch: Notify::new(),
            // Pushes use the revision they carry as their id; the others count from far above.
            next_request_id: AtomicU64::new(1 << 62),
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
    pub(crate) fn open_stream(&self) -> bool {
        let mut outbox = self.outbox.lock();
        if outbox.open {
            return false;
        }
        outbox.open = true;
        self.stream_open.store(true, Ordering::Release);
        true
    }

    /// Ends the bi-stream towards the client, after what is queued.
    pub(crate) fn end_stream(&self) {
        let mut outbox = self.outbox.lock();
        outbox.ended = true;
        wake(&mut outbox);
    }

    /// Queues a framed message to send before any push; `false` if the
    /// stream is not open, ends, or already holds `max` messages.
    pub(crate) fn queue(&self, message: Bytes, max: usize) -> bool {
        let mut outbox = self.outbox.lock();
        if !outbox.open || outbox.ended || outbox.queued.len() >= max.max(1) {
            return false;
        }
        outbox.queued.push_back(message);
        wake(&mut outbox);
        true
    }

    /// Wakes the bi-stream's body: something may be ready to push.
    pub(crate) fn wake_outbox(&self) {
        wake(&mut self.outbox.lock());
    }

    /// How long the body has had something to send without being polled.
    pub(crate) fn stalled_since(&self) -> Option<Instant> {
        self.outbox.lock().waiting_since
    }

    /// A new id for a request sent to the client.
    pub(crate) fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Marks a subscribed service to push and wakes the bi-stream's body.
    pub(crate) fn mark_dirty(&self, service: &ServiceKey) {
        if !self.subscriptions.lock().contains_key(service) {
            return;
        }
        if self.dirty.lock().insert(service.clone()) {
            self.wake_outbox();
        }
    }

    /// Marks every subscription to push (after missed change events).
    pub(crate) fn mark_all_dirty(&self) {
        let services: Vec<ServiceKey> = self.subscriptions.lock().keys().cloned().collect();
        let mut dirty = self.dirty.lock();
        dirty.extend(services);
        let marked = !dirty.is_empty();
        drop(dirty);
        if marked {
            self.wake_outbox();
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

/// Wakes the body of `outbox` (once: it registers again when next polled)
/// and notes since when it has had something to do.
fn wake(outbox: &mut Outbox) {
    outbox.waiting_since.get_or_insert_with(Instant::now);
    if let Some(waker) = outbox.waker.take() {
        waker.wake();
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
