//! The bi-stream (`/BiRequestStream/requestBiStream`,
//! `docs/grpc-design.md` §2.3–§2.6, §4.6): one per connection.
//!
//! - The **reader** takes the client's `ConnectionSetupRequest` (the
//!   connection is set up) and its answers to the server's requests (pushes
//!   acknowledged, detections answered). When the stream ends, the
//!   connection closes.
//! - The **writer** sends the server's requests: a push of each subscribed
//!   service marked changed (after a few milliseconds of coalescing, reading
//!   the service's state at send time, skipping what the client already has),
//!   a `ClientDetectionRequest` when the client has been silent for
//!   `detect_idle`. A push not acknowledged in time is sent again; a client
//!   that keeps not acknowledging, that does not answer a detection, or that
//!   does not read its stream is closed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use janus_core::ServiceKey;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Streaming;
use tracing::{debug, warn};

use crate::answer::Failure;
use crate::conn::{Awaited, CloseReason, Conn, InFlight, Outbound, SetupInfo};
use crate::server::Shared;
use crate::unary::service_info;
use crate::wire::envelope::{self, Inbound, encode};
use crate::wire::json::{
    BareServerRequest, ClientAnswer, ConnectionSetupRequest, NotifySubscriberRequest, RESULT_SUCCESS,
    ServerRequestHeader, WireMessage,
};
use crate::wire::proto::Payload;
use crate::wire::types;

/// Opens the bi-stream of `conn`: starts its reader and writer and returns
/// the stream of messages to the client; `None` if the connection already
/// has a bi-stream.
pub(crate) fn open(
    conn: &Arc<Conn>,
    shared: &Arc<Shared>,
    inbound: Streaming<Payload>,
) -> Option<mpsc::Receiver<Result<Payload, tonic::Status>>> {
    let (sender, receiver) = mpsc::channel(shared.config.outbound_queue.max(1));
    if !conn.open_stream(sender.clone()) {
        return None;
    }
    shared.tasks.spawn(read(conn.clone(), shared.clone(), inbound));
    shared.tasks.spawn(write(conn.clone(), shared.clone(), sender));
    Some(receiver)
}

async fn read(conn: Arc<Conn>, shared: Arc<Shared>, mut inbound: Streaming<Payload>) {
    loop {
        let message = tokio::select! {
            message = inbound.message() => message,
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
    // The writer waits for this answer only if something is left to push.
    if !conn.dirty.lock().is_empty() {
        conn.wake.notify_one();
    }
}

async fn write(conn: Arc<Conn>, shared: Arc<Shared>, sender: Outbound) {
    let reason = loop {
        if let Err(reason) = expire(&conn, &shared) {
            break reason;
        }
        if let Err(reason) = detect(&conn, &shared, &sender).await {
            break reason;
        }
        let throttled = match push(&conn, &shared, &sender).await {
            Ok(throttled) => throttled,
            Err(reason) => break reason,
        };
        let next = next_deadline(&conn, &shared);
        let next = throttled.map_or(next, |at| at.min(next));
        tokio::select! {
            () = conn.close.cancelled() => return,
            () = conn.wake.notified() => {}
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

/// Sends a client detection when the client has been silent too long.
async fn detect(conn: &Conn, shared: &Shared, sender: &Outbound) -> Result<(), CloseReason> {
    let now = Instant::now();
    if conn.last_active() + shared.config.detect_idle > now {
        return Ok(());
    }
    if conn.in_flight.lock().values().any(|f| matches!(f.awaited, Awaited::Detection)) {
        return Ok(());
    }
    let id = conn.next_request_id();
    let request = BareServerRequest {
        header: ServerRequestHeader::new(id, types::MODULE_INTERNAL),
        kind: types::CLIENT_DETECTION_REQUEST,
    };
    conn.in_flight
        .lock()
        .insert(id, InFlight { awaited: Awaited::Detection, deadline: now + shared.config.detect_timeout });
    shared.stats.detections.fetch_add(1, Ordering::Relaxed);
    send(conn, shared, sender, &request).await
}

/// Pushes the changed subscriptions, as many as may be in flight. A service
/// is pushed at once on its first change after a quiet spell, and then at
/// most once per `push_coalesce` (a burst of changes becomes few pushes, each
/// with the state of when it is sent); returns when the next throttled push
/// is due, if one is waiting.
async fn push(conn: &Conn, shared: &Shared, sender: &Outbound) -> Result<Option<Instant>, CloseReason> {
    loop {
        let pushing = conn.in_flight.lock().values().filter(|f| matches!(f.awaited, Awaited::Push { .. })).count();
        if pushing >= shared.config.max_in_flight.max(1) {
            return Ok(None);
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
        let Some(service) = next else { return Ok(throttled) };
        let Some((clusters_text, acked)) =
            conn.subscriptions.lock().get(&service).map(|s| (s.clusters_text.clone(), s.acked_revision))
        else {
            continue;
        };
        let (body, revision) = match push_body(shared, &service, &clusters_text) {
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
        // (revisions are node-wide), and the same body serves every subscriber.
        let deadline = Instant::now() + shared.config.push_ack_timeout;
        if let Some(subscription) = conn.subscriptions.lock().get_mut(&service) {
            subscription.last_push = Some(now);
        }
        conn.in_flight.lock().insert(revision, InFlight { awaited: Awaited::Push { service, revision }, deadline });
        shared.stats.pushes_sent.fetch_add(1, Ordering::Relaxed);
        let payload = envelope::with_body(types::NOTIFY_SUBSCRIBER_REQUEST, body);
        send_payload(shared, sender, payload).await?;
    }
}

/// The body of the push of a service's current state to subscribers with
/// this cluster filter, and the revision it shows: encoded once per
/// revision and shared by every subscriber.
fn push_body(shared: &Shared, service: &ServiceKey, clusters_text: &str) -> Result<(Bytes, u64), Failure> {
    let key = (service.clone(), clusters_text.to_owned());
    let current = shared.nacos.registry.view().read(|r| r.service_revision(service));
    if let Some((revision, body)) = shared.push_bodies.lock().get(&key)
        && *revision == current
    {
        return Ok((body.clone(), current));
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
    let mut bodies = shared.push_bodies.lock();
    if bodies.len() >= PUSH_BODIES {
        // Bounded: start over (the bodies of busy services come back at once).
        bodies.clear();
    }
    bodies.insert(key, (revision, body.clone()));
    Ok((body, revision))
}

/// Push bodies kept for reuse, at most.
const PUSH_BODIES: usize = 4096;

/// Queues a message to the client; a client that leaves its queue full for
/// `slow_client` is closed.
async fn send<M: WireMessage>(conn: &Conn, shared: &Shared, sender: &Outbound, message: &M) -> Result<(), CloseReason> {
    let payload = match encode(message) {
        Ok(payload) => payload,
        Err(err) => {
            warn!(conn = %conn.label, %err, "a message to a gRPC client could not be encoded");
            return Ok(());
        }
    };
    send_payload(shared, sender, payload).await
}

async fn send_payload(shared: &Shared, sender: &Outbound, payload: Payload) -> Result<(), CloseReason> {
    match tokio::time::timeout(shared.config.slow_client, sender.send(Ok(payload))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(CloseReason::ClientGone),
        Err(_) => Err(CloseReason::SlowClient),
    }
}

/// When the writer must look again without being woken.
fn next_deadline(conn: &Conn, shared: &Shared) -> Instant {
    let in_flight = conn.in_flight.lock();
    let answers = in_flight.values().map(|f| f.deadline).min();
    // While a detection is out, its answer's deadline is the one to watch.
    let detecting = in_flight.values().any(|f| matches!(f.awaited, Awaited::Detection));
    let detection = (!detecting).then(|| conn.last_active() + shared.config.detect_idle);
    match (answers, detection) {
        (Some(a), Some(d)) => a.min(d),
        (Some(at), None) | (None, Some(at)) => at,
        (None, None) => Instant::now() + shared.config.detect_idle,
    }
}

/// Queues a `ConnectResetRequest` naming no server (the client picks its
/// next one); `false` if the queue is full or the stream is gone.
pub(crate) fn queue_reset(conn: &Conn) -> bool {
    let Some(sender) = conn.outbound() else { return false };
    let request = BareServerRequest {
        header: ServerRequestHeader::new(conn.next_request_id(), types::MODULE_INTERNAL),
        kind: types::CONNECT_RESET_REQUEST,
    };
    encode(&request).is_ok_and(|payload| sender.try_send(Ok(payload)).is_ok())
}
