//! The bi-stream's body towards the client ([`PushBody`]): the server's
//! requests, pulled by h2 when the client's flow-control window has room.
//!
//! Nothing is queued per push. A change marks the service dirty on each
//! subscribed connection and wakes that connection's body; when h2 polls it,
//! the body sends, in order: the control messages queued on the connection
//! (client detection, connect reset), then the next push the rules of
//! `stream::next_push` allow, already framed and shared by every subscriber
//! of that service revision. It ends with `grpc-status: 0` once the
//! connection ends its stream.
//!
//! A client that stops reading stops being polled once its window and h2's
//! send buffer for the stream (`max_send_buf_size`, 256 KiB) are full: its
//! pushes stay marks in its dirty set (bounded by its subscriptions), and the
//! connection's watch task resets it once the body has waited `slow_client`
//! (`stream.rs`); one that reads but does not acknowledge is reset by the ack
//! timeouts.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::time::{Instant, Sleep};

use crate::conn::Conn;
use crate::framing::ok_trailers;
use crate::server::Shared;
use crate::stream::{Next, next_push};

/// The server-to-client half of one bi-stream.
pub(crate) struct PushBody {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
    /// Wakes the body when a throttled push is due.
    throttle: Option<Pin<Box<Sleep>>>,
    /// The trailers went out.
    done: bool,
}

impl PushBody {
    pub(crate) fn new(conn: Arc<Conn>, shared: Arc<Shared>) -> Self {
        Self { conn, shared, throttle: None, done: false }
    }

    /// Arms the throttle timer for `at`; `true` if `at` already passed.
    fn throttle_until(&mut self, at: Instant, cx: &mut Context<'_>) -> bool {
        let sleep = match &mut self.throttle {
            Some(sleep) => {
                sleep.as_mut().reset(at);
                sleep
            }
            None => self.throttle.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        sleep.as_mut().poll(cx).is_ready()
    }
}

impl Body for PushBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.done {
            return Poll::Ready(None);
        }
        {
            let mut outbox = self.conn.outbox.lock();
            outbox.waiting_since = None;
            if let Some(message) = outbox.queued.pop_front() {
                outbox.waiting_since = Some(Instant::now());
                return Poll::Ready(Some(Ok(Frame::data(message))));
            }
            if outbox.ended || self.conn.close.is_cancelled() {
                drop(outbox);
                self.done = true;
                return Poll::Ready(Some(Ok(Frame::trailers(ok_trailers()))));
            }
            // Registered before looking for a push: a service marked after the
            // look wakes the body again.
            if !outbox.waker.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
                outbox.waker = Some(cx.waker().clone());
            }
        }
        match next_push(&self.conn, &self.shared) {
            Next::Push(message) => {
                self.conn.outbox.lock().waiting_since = Some(Instant::now());
                Poll::Ready(Some(Ok(Frame::data(message))))
            }
            Next::Throttled(at) => {
                if self.throttle_until(at, cx) {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
            Next::Idle => Poll::Pending,
        }
    }
}
