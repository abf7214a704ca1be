//! The calling side of peer streams (`frame.rs`): [`PeerTransport`] over one
//! long-lived stream per peer address, many calls in flight on it, instead
//! of an HTTP request per message.
//!
//! - A stream is opened on the first call to an address (connect, upgrade,
//!   within a second) and kept; when it ends (the peer closed it or a frame
//!   could not be sent), the next call opens another.
//! - A call that could not be queued on a live stream, or whose stream could
//!   not be opened, is [`CallError::NotSent`]; once queued, a stream that
//!   ends or a reply that does not come within the call's timeout is
//!   [`CallError::NoReply`]. A timed-out call closes its stream if nothing
//!   at all came on it while the call waited (a peer that stopped reading
//!   should not hold later calls).
//! - A peer that does not know streams (an older version answers the upgrade
//!   with 404) is sent HTTP requests, one per message, through
//!   [`HttpPeerTransport`]; it is asked again a minute later.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use janus_core::NodeId;
use janus_core::transport::{CallError, CallFuture, PeerTransport, Refusal, RefusalKind, Route};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::debug;

use crate::frame::{self, PROTOCOL, STREAM_PATH};
use crate::stream_server::write_frames;
use crate::{ClusterSecret, HttpPeerTransport};

/// How long opening a stream may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a peer that does not know streams is sent HTTP before it is asked again.
const HTTP_FOR: Duration = Duration::from_secs(60);

/// Calls queued for a stream's writer, at most (a full queue makes callers wait).
const CALL_QUEUE: usize = 1024;

/// The longest upgrade answer read.
const MAX_ANSWER_HEAD: usize = 16 << 10;

/// Sends engine messages to peers over peer streams (see the module docs).
#[derive(Clone)]
pub struct StreamPeerTransport {
    inner: Arc<Inner>,
}

struct Inner {
    secret: ClusterSecret,
    max_reply: usize,
    http: HttpPeerTransport,
    peers: Mutex<HashMap<String, Arc<Slot>>>,
}

/// One peer address: its stream, or since when it is sent HTTP.
#[derive(Default)]
struct Slot {
    state: tokio::sync::Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    link: Option<Arc<Link>>,
    http_until: Option<Instant>,
}

type Pending = Mutex<HashMap<u64, oneshot::Sender<Result<Result<Vec<u8>, Refusal>, usize>>>>;

/// An open stream.
struct Link {
    queue: mpsc::Sender<Vec<u8>>,
    pending: Arc<Pending>,
    closed: Arc<AtomicBool>,
    /// Replies read so far (a call that times out with none come since is a dead stream's).
    heard: Arc<AtomicU64>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for StreamPeerTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamPeerTransport").field("max_reply", &self.inner.max_reply).finish_non_exhaustive()
    }
}

enum Way {
    Stream(Arc<Link>),
    Http,
}

impl StreamPeerTransport {
    /// A transport presenting `secret`, reading replies of at most `max_reply` bytes.
    #[must_use]
    pub fn new(secret: ClusterSecret, max_reply: usize) -> Self {
        let http = HttpPeerTransport::new(secret.clone(), max_reply);
        Self { inner: Arc::new(Inner { secret, max_reply, http, peers: Mutex::default() }) }
    }
}

impl Inner {
    /// The live stream to `addr`, opened now if there is none; or HTTP for a
    /// peer that does not know streams.
    async fn route(&self, target: NodeId, addr: &str) -> Result<Way, CallError> {
        let slot = self.peers.lock().entry(addr.to_owned()).or_default().clone();
        let mut state = slot.state.lock().await;
        if let Some(link) = &state.link
            && !link.closed.load(Ordering::Acquire)
        {
            return Ok(Way::Stream(link.clone()));
        }
        state.link = None;
        if state.http_until.is_some_and(|until| Instant::now() < until) {
            return Ok(Way::Http);
        }
        let not_sent = |reason: String| CallError::NotSent { target, addr: addr.to_owned(), reason };
        match tokio::time::timeout(OPEN_TIMEOUT, self.open(addr)).await {
            Err(_) => Err(not_sent(format!("no peer stream within {} ms", OPEN_TIMEOUT.as_millis()))),
            Ok(Err(Opened::Failed(reason))) => Err(not_sent(reason)),
            Ok(Err(Opened::Refused(refusal))) => Err(CallError::Refused { target, refusal }),
            Ok(Err(Opened::NoStreams)) => {
                debug!(addr, "the peer does not serve peer streams; sending it HTTP requests");
                state.http_until = Some(Instant::now() + HTTP_FOR);
                Ok(Way::Http)
            }
            Ok(Ok(link)) => {
                state.http_until = None;
                state.link = Some(link.clone());
                Ok(Way::Stream(link))
            }
        }
    }

    /// Connects to `addr` and upgrades the connection to a peer stream.
    async fn open(&self, addr: &str) -> Result<Arc<Link>, Opened> {
        let failed = |what: &str, error: std::io::Error| Opened::Failed(format!("{what}: {error}"));
        let mut stream = TcpStream::connect(addr).await.map_err(|e| failed("tcp connect error", e))?;
        let _ = stream.set_nodelay(true);
        let request = format!(
            "POST {STREAM_PATH} HTTP/1.1\r\nhost: {addr}\r\nauthorization: {}\r\nconnection: upgrade\r\n\
             upgrade: {PROTOCOL}\r\ncontent-length: 0\r\n\r\n",
            self.secret.header_value()
        );
        stream.write_all(request.as_bytes()).await.map_err(|e| failed("sending the stream upgrade", e))?;
        let (head, rest) = read_head(&mut stream).await.map_err(|e| failed("reading the stream upgrade answer", e))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| Opened::Failed(format!("an unreadable answer to the stream upgrade: {head:?}")))?;
        match status {
            101 => {}
            404 | 405 => return Err(Opened::NoStreams),
            401 | 403 => {
                return Err(Opened::Refused(Refusal::new(
                    RefusalKind::Forbidden,
                    format!("{status}: the peer refused the cluster secret"),
                )));
            }
            other => return Err(Opened::Failed(format!("the peer answered the stream upgrade with {other}"))),
        }
        let (read, write) = stream.into_split();
        let (queue, outgoing) = mpsc::channel(CALL_QUEUE);
        let link = Arc::new(Link {
            queue,
            pending: Arc::default(),
            closed: Arc::default(),
            heard: Arc::default(),
            next_id: AtomicU64::new(1),
        });
        let closed = link.closed.clone();
        tokio::spawn(async move {
            write_frames(write, outgoing).await;
            closed.store(true, Ordering::Release);
        });
        let (pending, closed, heard, max_reply) =
            (link.pending.clone(), link.closed.clone(), link.heard.clone(), self.max_reply);
        tokio::spawn(async move {
            let mut reader = BufReader::with_capacity(64 << 10, std::io::Cursor::new(rest).chain(read));
            loop {
                match frame::read_reply(&mut reader, max_reply).await {
                    Ok(Some(reply)) => {
                        heard.fetch_add(1, Ordering::Release);
                        if let Some(waiter) = pending.lock().remove(&reply.id) {
                            let _ = waiter.send(reply.outcome);
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        debug!(%error, "a peer stream ended");
                        break;
                    }
                }
            }
            closed.store(true, Ordering::Release);
            // Every call still waiting learns the stream is gone (its sender drops).
            pending.lock().clear();
        });
        Ok(link)
    }
}

/// Why a stream could not be opened.
enum Opened {
    Failed(String),
    Refused(Refusal),
    NoStreams,
}

/// Reads an HTTP answer's head; returns it and any bytes read past it.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buffer = Vec::with_capacity(256);
    let mut chunk = [0; 1024];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&buffer).into_owned(), rest));
        }
        if buffer.len() > MAX_ANSWER_HEAD {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "an answer head over 16 KiB"));
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

impl Link {
    async fn call(
        &self,
        target: NodeId,
        addr: &str,
        route: Route,
        body: &[u8],
        deadline: Instant,
    ) -> Result<Vec<u8>, CallError> {
        let not_sent = |reason: String| CallError::NotSent { target, addr: addr.to_owned(), reason };
        let no_reply = |reason: String| CallError::NoReply { target, addr: addr.to_owned(), reason };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = frame::call(id, route.channel, route.kind, body).map_err(|e| not_sent(e.to_string()))?;
        let (done, answered) = oneshot::channel();
        self.pending.lock().insert(id, done);
        let heard = self.heard.load(Ordering::Acquire);
        let queued = tokio::time::timeout_at(deadline, self.queue.send(frame)).await;
        // Queued on a stream whose reader already ended (and dropped every waiter): the peer closed it and
        // reads no more.
        let abandoned = self.closed.load(Ordering::Acquire) && !self.pending.lock().contains_key(&id);
        if !matches!(queued, Ok(Ok(()))) || abandoned {
            self.pending.lock().remove(&id);
            return Err(not_sent("the peer stream closed before the message was queued".to_owned()));
        }
        match tokio::time::timeout_at(deadline, answered).await {
            Ok(Ok(Ok(Ok(reply)))) => Ok(reply),
            Ok(Ok(Ok(Err(refusal)))) => Err(CallError::Refused { target, refusal }),
            Ok(Ok(Err(size))) => Err(no_reply(format!("a reply of {size} bytes is over the limit"))),
            Ok(Err(_)) => Err(no_reply("the peer stream closed".to_owned())),
            Err(_) => {
                self.pending.lock().remove(&id);
                if self.heard.load(Ordering::Acquire) == heard {
                    // Nothing came while the call waited: do not send more down this stream.
                    self.closed.store(true, Ordering::Release);
                }
                Err(no_reply("no reply in time".to_owned()))
            }
        }
    }
}

impl PeerTransport for StreamPeerTransport {
    fn call(&self, target: NodeId, addr: String, route: Route, body: Vec<u8>, timeout: Duration) -> CallFuture {
        let inner = self.inner.clone();
        Box::pin(async move {
            let deadline = Instant::now() + timeout;
            let routed = match tokio::time::timeout_at(deadline, inner.route(target, &addr)).await {
                Ok(routed) => routed?,
                Err(_) => {
                    return Err(CallError::NotSent { target, addr, reason: "no peer stream in time".to_owned() });
                }
            };
            match routed {
                Way::Stream(link) => link.call(target, &addr, route, &body, deadline).await,
                Way::Http => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    inner.http.call(target, addr, route, body, left).await
                }
            }
        })
    }
}
