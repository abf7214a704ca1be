//! The bi-stream (`/BiRequestStream/requestBiStream`,
//! `docs/grpc-design.md` §2.3–§2.6, §4.6): one per connection.
//!
//! - The **reader** takes the client's `ConnectionSetupRequest` (the
//!   connection is set up) and its answers to the server's requests (pushes
//!   acknowledged, detections answered). When the stream ends, the
//!   connection closes.
//! - The **body** towards the client (`outbox.rs`) sends the server's
//!   requests when h2 polls it: queued control messages, then a push of each
//!   subscribed service marked changed ([`next_push`]: at once on the first
//!   change after a quiet spell, then at most once per coalescing window,
//!   reading the service's state at send time, skipping what the client
//!   already has).
//! - The **watch** task keeps the clocks: a push not acknowledged in time is
//!   sent again; a `ClientDetectionRequest` goes out when the client has been
//!   silent for `detect_idle`; a client that keeps not acknowledging, that
//!   does not answer a detection, or that does not read its stream is closed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use hyper::body::Incoming;
use janus_core::ServiceKey;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::answer::Failure;
use crate::conn::{Awaited, CloseReason, Conn, InFlight, SetupInfo};
use crate::framing::{MessageReader, framed};
use crate::outbox::PushBody;
use crate::server::Shared;
use crate::unary::service_info;
use crate::wire::envelope::{self, Inbound, encode};
use crate::wire::json::{
    BareServerRequest, ClientAnswer, ConnectionSetupRequest, NotifySubscriberRequest, RESULT_SUCCESS,
    ServerRequestHeader,
};
use crate::wire::proto::Payload;
use crate::wire::types;

/// Opens the bi-stream of `conn`: starts its reader and watch task and
/// returns the body of messages to the client; `None` if the connection
/// already has a bi-stream.
pub(crate) fn open(conn: &Arc<Conn>, shared: &Arc<Shared>, inbound: Incoming) -> Option<PushBody> {
    if !conn.open_stream() {
        return None;
    }
    let reader = MessageReader::new(inbound, shared.config.max_message_bytes);
    shared.tasks.spawn(read(conn.clone(), shared.clone(), reader));
    shared.tasks.spawn(watch(conn.clone(), shared.clone()));
    Some(PushBody::new(conn.clone(), shared.clone()))
}

async fn read(conn: Arc<Conn>, shared: Arc<Shared>, mut inbound: MessageReader) {
    loop {
        let message = tokio::select! {
            message = inbound.next() => message,
            () = conn.close.cancelled() => return,
        };
        match message {
            Ok(Some(payload)) => {
                conn.touch();
                take(&conn, &shared, payload);
            }
            Ok(None) => break,
            Err(status) => {
                debug!(conn = %conn.label, %status, "gRPC bi-stream ended with an error");
                break;
            }
        }
    }
    conn.close(CloseReason::ClientGone);
}

/// One message from the client on the bi-stream.
fn take(conn: &Conn, shared: &Shared, payload: Payload) {
    let inbound = match Inbound::decode(payload) {
        Ok(inbound) => inbound,
        Err(err) => {
            debug!(conn = %conn.label, %err, "unreadable message on a gRPC bi-stream ignored");
            return;
        }
    };
    if inbound.kind() == types::CONNECTION_SETUP_REQUEST {
        let request = inbound.parse::<ConnectionSetupRequest>().unwrap_or_else(|err| {
            debug!(conn = %conn.label, %err, "ConnectionSetupRequest with an unreadable body; set up with defaults");
            ConnectionSetupRequest::default()
        });
        let app =
            request.labels.get("AppName").cloned().or_else(|| inbound.app().map(str::to_owned)).unwrap_or_default();
        let info = SetupInfo {
            client_version: request.client_version.unwrap_or_default(),
            tenant: request.tenant.unwrap_or_default(),
            app,
        };
        if conn.set_up(info) {
            shared.stats.set_up.fetch_add(1, Ordering::Relaxed);
            let info = conn.setup_info().cloned().unwrap_or_default();
            debug!(conn = %conn.label, remote = %conn.remote, client = %info.client_version, tenant = %info.tenant,
                app = %info.app, "gRPC connection set up");
        }
        return;
    }
    if inbound.kind().ends_with("Response") {
        let Ok(answer) = inbound.parse::<ClientAnswer>() else {
            debug!(conn = %conn.label, kind = inbound.kind(), "unreadable answer on a gRPC bi-stream ignored");
            return;
        };
        acknowledge(conn, shared, &answer);
        return;
    }
    debug!(conn = %conn.label, kind = inbound.kind(), "unexpected request on a gRPC bi-stream ignored");
}

/// Completes the request `answer` answers.
fn acknowledge(conn: &Conn, shared: &Shared, answer: &ClientAnswer) {
    let Some(id) = answer.request_id.as_deref().and_then(|id| id.parse::<u64>().ok()) else { return };
    let Some(done) = conn.in_flight.lock().remove(&id) else {
        debug!(conn = %conn.label, id, "answer to a request no longer awaited");
        return;
    };
    let success = answer.result_code.unwrap_or(RESULT_SUCCESS) == RESULT_SUCCESS;
    if let Awaited::Push { service, revision } = done.awaited {
        if success {
            shared.stats.pushes_acked.fetch_add(1, Ordering::Relaxed);
            conn.push_timeouts.store(0, Ordering::Relaxed);
            if let Some(subscription) = conn.subscriptions.lock().get_mut(&service) {
                subscription.acked_revision = subscription.acked_revision.max(revision);
            }
        } else {
            conn.mark_dirty(&service);
        }
    }
    // The body waits for this answer only if something is left to push.
    if !conn.dirty.lock().is_empty() {
        conn.wake_outbox();
    }
}

/// Keeps a connection's clocks until it closes (see the module docs).
async fn watch(conn: Arc<Conn>, shared: Arc<Shared>) {
    let reason = loop {
        if let Err(reason) = expire(&conn, &shared) {
            break reason;
        }
        detect(&conn, &shared);
        let stalled = conn.stalled_since().map(|since| since + shared.config.slow_client);
        if stalled.is_some_and(|at| at <= Instant::now()) {
            break CloseReason::SlowClient;
        }
        let next = next_deadline(&conn, &shared);
        let next = stalled.map_or(next, |at| at.min(next));
        tokio::select! {
            () = conn.close.cancelled() => return,
            () = conn.watch.notified() => {}
            () = tokio::time::sleep_until(next) => {}
        }
    };
    match reason {
        CloseReason::SlowClient => shared.stats.slow_resets.fetch_add(1, Ordering::Relaxed),
        CloseReason::Undetected => shared.stats.undetected.fetch_add(1, Ordering::Relaxed),
        CloseReason::ClientGone | CloseReason::Shutdown => 0,
    };
    warn!(conn = %conn.label, remote = %conn.remote, reason = reason.as_str(), "closing gRPC connection");
    conn.close(reason);
}

/// Handles requests whose answer is overdue.
fn expire(conn: &Conn, shared: &Shared) -> Result<(), CloseReason> {
    let now = Instant::now();
    let overdue: Vec<InFlight> = {
        let mut in_flight = conn.in_flight.lock();
        let ids: Vec<u64> = in_flight.iter().filter(|(_, f)| f.deadline <= now).map(|(id, _)| *id).collect();
        ids.iter().filter_map(|id| in_flight.remove(id)).collect()
    };
    for late in overdue {
        match late.awaited {
            Awaited::Detection => {
                // Any sign of life since the detection was sent will do.
                if conn.last_active() + shared.config.detect_timeout <= now {
                    return Err(CloseReason::Undetected);
                }
            }
            Awaited::Push { service, .. } => {
                shared.stats.push_timeouts.fetch_add(1, Ordering::Relaxed);
                conn.mark_dirty(&service);
                let timeouts = conn.push_timeouts.fetch_add(1, Ordering::Relaxed) + 1;
                if timeouts >= shared.config.max_push_timeouts.max(1) {
                    return Err(CloseReason::SlowClient);
                }
            }
        }
    }
    Ok(())
}

/// Queues a client detection when the client has been silent too long.
fn detect(conn: &Conn, shared: &Shared) {
    let now = Instant::now();
    if conn.last_active() + shared.config.detect_idle > now {
        return;
    }
    if conn.in_flight.lock().values().any(|f| matches!(f.awaited, Awaited::Detection)) {
        return;
    }
    let id = conn.next_request_id();
    let request = BareServerRequest {
        header: ServerRequestHeader::new(id, types::MODULE_INTERNAL),
        kind: types::CLIENT_DETECTION_REQUEST,
    };
    let message = match encode(&request) {
        Ok(payload) => framed(&payload),
        Err(err) => {
            warn!(conn = %conn.label, %err, "a client detection could not be encoded");
            return;
        }
    };
    // A full queue is a client not reading: the stall rule closes it.
    if conn.queue(message, shared.config.outbound_queue) {
        conn.in_flight
            .lock()
            .insert(id, InFlight { awaited: Awaited::Detection, deadline: now + shared.config.detect_timeout });
        shared.stats.detections.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the bi-stream's body sends next, of the pushes.
pub(crate) enum Next {
    /// This framed push.
    Push(Bytes),
    /// Nothing now; a push held back by the coalescing window is due then.
    Throttled(Instant),
    /// Nothing until a service is marked or a push answered.
    Idle,
}

/// The next push of a changed subscription, as many as may be in flight. A
/// service is pushed at once on its first change after a quiet spell, and
/// then at most once per `push_coalesce` (a burst of changes becomes few
/// pushes, each with the state of when it is sent).
pub(crate) fn next_push(conn: &Conn, shared: &Shared) -> Next {
    loop {
        let pushing = conn.in_flight.lock().values().filter(|f| matches!(f.awaited, Awaited::Push { .. })).count();
        if pushing >= shared.config.max_in_flight.max(1) {
            return Next::Idle;
        }
        // The next changed service without a push in flight (that one is
        // pushed again once answered, with the state of then) and not pushed
        // within the window.
        let now = Instant::now();
        let mut throttled: Option<Instant> = None;
        let next = {
            let in_flight = conn.in_flight.lock();
            let busy = |service: &ServiceKey| {
                in_flight.values().any(|f| matches!(&f.awaited, Awaited::Push { service: s, .. } if s == service))
            };
            let mut dirty = conn.dirty.lock();
            let subscriptions = conn.subscriptions.lock();
            let found = dirty
                .iter()
                .find(|service| {
                    if busy(service) {
                        return false;
                    }
                    let due = subscriptions
                        .get(*service)
                        .and_then(|s| s.last_push)
                        .map(|at| at + shared.config.push_coalesce)
                        .filter(|due| *due > now);
                    if let Some(due) = due {
                        throttled = Some(throttled.map_or(due, |t| t.min(due)));
                        return false;
                    }
                    true
                })
                .cloned();
            if let Some(service) = &found {
                dirty.remove(service);
            }
            found
        };
        let Some(service) = next else { return throttled.map_or(Next::Idle, Next::Throttled) };
        let Some((clusters_text, acked)) =
            conn.subscriptions.lock().get(&service).map(|s| (s.clusters_text.clone(), s.acked_revision))
        else {
            continue;
        };
        let (message, revision) = match push_message(shared, &service, &clusters_text) {
            Ok(found) => found,
            Err(failure) => {
                // The namespace went away: nothing to push.
                debug!(conn = %conn.label, %service, ?failure, "no push for a subscription that cannot be read");
                continue;
            }
        };
        if revision == acked {
            continue;
        }
        // The request id is the revision pushed: unique on the connection
        // (revisions are node-wide), and the same message serves every subscriber.
        let deadline = now + shared.config.push_ack_timeout;
        if let Some(subscription) = conn.subscriptions.lock().get_mut(&service) {
            subscription.last_push = Some(now);
        }
        conn.in_flight.lock().insert(revision, InFlight { awaited: Awaited::Push { service, revision }, deadline });
        if conn.watch_idle.swap(false, Ordering::AcqRel) {
            conn.watch.notify_one();
        }
        shared.stats.pushes_sent.fetch_add(1, Ordering::Relaxed);
        return Next::Push(message);
    }
}

/// The framed push of a service's current state to subscribers with this
/// cluster filter, and the revision it shows: encoded once per revision and
/// shared by every subscriber.
fn push_message(shared: &Shared, service: &ServiceKey, clusters_text: &str) -> Result<(Bytes, u64), Failure> {
    let current = shared.nacos.registry.view().read(|r| r.service_revision(service));
    if let Some((revision, message)) =
        shared.push_messages.lock().get(service).and_then(|by_clusters| by_clusters.get(clusters_text))
        && *revision == current
    {
        return Ok((message.clone(), current));
    }
    let (info, revision) = service_info(shared, service, clusters_text, false)?;
    let request = NotifySubscriberRequest {
        header: ServerRequestHeader::new(revision, types::MODULE_NAMING),
        namespace: service.namespace.to_string(),
        service_name: service.service.to_string(),
        group_name: service.group.to_string(),
        service_info: info,
    };
    let body = Bytes::from(serde_json::to_vec(&request).map_err(|err| {
        Failure::protocol(crate::answer::SERVER_ERROR, format!("a push could not be encoded: {err}"))
    })?);
    let message = framed(&envelope::with_body(types::NOTIFY_SUBSCRIBER_REQUEST, body));
    let mut messages = shared.push_messages.lock();
    if messages.len() >= PUSH_MESSAGES && !messages.contains_key(service) {
        // Bounded: start over (the messages of busy services come back at once).
        messages.clear();
    }
    let by_clusters = messages.entry(service.clone()).or_default();
    if by_clusters.len() >= PUSH_FILTERS && !by_clusters.contains_key(clusters_text) {
        by_clusters.clear();
    }
    by_clusters.insert(clusters_text.to_owned(), (revision, message.clone()));
    Ok((message, revision))
}

/// Services whose push messages are kept for reuse, at most.
const PUSH_MESSAGES: usize = 4096;
/// Cluster filters kept per service, at most.
const PUSH_FILTERS: usize = 64;

/// When the watch task must look again. It is not woken by each push:
/// while pushes are in flight it looks every `push_ack_timeout` (or
/// `slow_client`, if shorter), so a push is sent again between one and two
/// ack timeouts after it left; with none in flight it marks itself idle, and
/// the next push sent wakes it.
fn next_deadline(conn: &Conn, shared: &Shared) -> Instant {
    // Marked before the look: a push sent after it finds the mark and wakes the task.
    conn.watch_idle.store(true, Ordering::Release);
    let in_flight = conn.in_flight.lock();
    let pushing = in_flight.values().any(|f| matches!(f.awaited, Awaited::Push { .. }));
    let answers = in_flight.values().map(|f| f.deadline).min();
    // While a detection is out, its answer's deadline is the one to watch.
    let detecting = in_flight.values().any(|f| matches!(f.awaited, Awaited::Detection));
    let detection = (!detecting).then(|| conn.last_active() + shared.config.detect_idle);
    let tick = pushing.then(|| {
        conn.watch_idle.store(false, Ordering::Release);
        Instant::now() + shared.config.push_ack_timeout.min(shared.config.slow_client)
    });
    [answers, detection, tick].into_iter().flatten().min().unwrap_or_else(|| Instant::now() + shared.config.detect_idle)
}

/// Queues a `ConnectResetRequest` naming no server (the client picks its
/// next one); `false` if the queue is full or the stream is not open.
pub(crate) fn queue_reset(conn: &Conn, shared: &Shared) -> bool {
    let request = BareServerRequest {
        header: ServerRequestHeader::new(conn.next_request_id(), types::MODULE_INTERNAL),
        kind: types::CONNECT_RESET_REQUEST,
    };
    encode(&request).is_ok_and(|payload| conn.queue(framed(&payload), shared.config.outbound_queue))
}
