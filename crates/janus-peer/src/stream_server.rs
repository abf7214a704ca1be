//! The serving side of peer streams (`frame.rs`): `POST /internal/stream`
//! with `Upgrade: janus-peer/1`, behind the cluster secret like every other
//! route, turns the connection into a stream of calls; each call goes to its
//! channel's [`PeerHandler`] and is answered by id as soon as it is handled.
//!
//! Bounded: at most [`MAX_STREAMS`] streams per node, [`MAX_IN_FLIGHT`] calls
//! handled at once per stream (past that the stream is not read, so the
//! sender's TCP window fills), messages of at most the body limit (a larger
//! one is skipped and refused as malformed). Streams end when the routes are
//! dropped (the node stops serving its cluster address), when the sender
//! closes, or on a malformed frame.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use janus_core::transport::{Channel, PeerHandler, Refusal, RefusalKind};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader, BufWriter};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::debug;

use crate::frame::{self, PROTOCOL};

/// Streams a node serves at once, at most.
pub(crate) const MAX_STREAMS: usize = 256;

/// Calls of one stream handled at once, at most.
pub(crate) const MAX_IN_FLIGHT: usize = 512;

/// Replies queued for a stream's writer, at most.
const REPLY_QUEUE: usize = 1024;

/// What the stream route needs.
#[derive(Clone)]
pub(crate) struct Streams {
    handlers: Arc<[(Channel, Arc<dyn PeerHandler>)]>,
    max_body: usize,
    open: Arc<AtomicUsize>,
    /// Cancelled when the last copy of the routes is dropped.
    stop: CancellationToken,
    _stop_on_drop: Arc<DropGuard>,
}

impl Streams {
    pub(crate) fn new(handlers: Vec<(Channel, Arc<dyn PeerHandler>)>, max_body: usize) -> Self {
        let stop = CancellationToken::new();
        Self {
            handlers: handlers.into(),
            max_body,
            open: Arc::default(),
            stop: stop.clone(),
            _stop_on_drop: Arc::new(stop.drop_guard()),
        }
    }
}

/// `POST /internal/stream`: upgrades the connection to a peer stream.
pub(crate) async fn open(State(streams): State<Streams>, mut request: Request) -> Response {
    let asked = request.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !asked.eq_ignore_ascii_case(PROTOCOL) {
        return (StatusCode::BAD_REQUEST, format!("a peer stream needs `Upgrade: {PROTOCOL}`\n")).into_response();
    }
    if streams.open.fetch_add(1, Ordering::AcqRel) >= MAX_STREAMS {
        streams.open.fetch_sub(1, Ordering::AcqRel);
        return (StatusCode::SERVICE_UNAVAILABLE, "too many peer streams\n").into_response();
    }
    let upgrade = hyper::upgrade::on(&mut request);
    let task = streams.clone();
    let Streams { handlers, max_body, open, stop, .. } = task;
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => serve(TokioIo::new(upgraded), handlers, max_body, stop).await,
            Err(error) => debug!(%error, "a peer stream was not upgraded"),
        }
        open.fetch_sub(1, Ordering::AcqRel);
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static(PROTOCOL));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    response
}

/// Serves calls on `io` until the sender closes, a frame is malformed or `stop`.
async fn serve(
    io: impl AsyncRead + AsyncWrite + Send + 'static,
    handlers: Arc<[(Channel, Arc<dyn PeerHandler>)]>,
    max_body: usize,
    stop: CancellationToken,
) {
    let (read, write) = tokio::io::split(io);
    let mut reader = BufReader::with_capacity(64 << 10, read);
    let (replies, queue) = mpsc::channel(REPLY_QUEUE);
    let writer = tokio::spawn(write_frames(write, queue));
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let call = tokio::select! {
            call = frame::read_call(&mut reader, max_body) => call,
            () = stop.cancelled() => break,
        };
        let call = match call {
            Ok(Some(call)) => call,
            Ok(None) => break,
            Err(error) => {
                debug!(%error, "a peer stream ended on a bad frame");
                break;
            }
        };
        let Ok(permit) = in_flight.clone().acquire_owned().await else { break };
        let handler = call.channel.and_then(|c| handlers.iter().find(|(h, _)| *h == c)).map(|(_, h)| h.clone());
        let (replies, stop) = (replies.clone(), stop.clone());
        tokio::spawn(async move {
            let outcome = match (handler, call.body) {
                (_, Err(size)) => Err(Refusal::new(
                    RefusalKind::Malformed,
                    format!("a message of {size} bytes is over the limit of {max_body}"),
                )),
                (None, Ok(_)) => Err(Refusal::new(RefusalKind::Malformed, "a message for an unknown channel")),
                (Some(handler), Ok(body)) => {
                    tokio::select! {
                        outcome = handler.handle(&call.kind, &body) => outcome,
                        () = stop.cancelled() => return,
                    }
                }
            };
            if let Ok(frame) = frame::reply(call.id, &outcome) {
                // The stream may be gone; the sender then sees it close.
                let _ = replies.send(frame).await;
            }
            drop(permit);
        });
    }
    drop(replies);
    // The writer ends once the calls in flight have answered (or stopped).
    let _ = writer.await;
}

/// Writes frames from `queue` as they come, several per write when queued together.
pub(crate) async fn write_frames(write: impl AsyncWrite + Unpin, mut queue: mpsc::Receiver<Vec<u8>>) {
    let mut writer = BufWriter::with_capacity(64 << 10, write);
    while let Some(first) = queue.recv().await {
        if writer.write_all(&first).await.is_err() {
            return;
        }
        while let Ok(more) = queue.try_recv() {
            if writer.write_all(&more).await.is_err() {
                return;
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}
