//! A bounded HTTP/1.1 server for the proxy and the admin endpoints: at most
//! `max_connections` at once (the next waits in the listen backlog), a
//! header-read timeout, and a graceful end on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// The body of every answer: an instance's streamed body or our own bytes.
pub(crate) type AnswerBody = BoxBody<Bytes, hyper::Error>;

/// How long a client may take to send a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// An answer made here: `status` with a JSON `{code, message}` body.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response<AnswerBody> {
    let body = serde_json::json!({ "code": code, "message": message }).to_string() + "\n";
    bytes(status, "application/json", body.into_bytes())
}

/// An answer made here: `status` with `body`.
pub(crate) fn bytes(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<AnswerBody> {
    let mut response = Response::new(Full::new(Bytes::from(body)).map_err(|never: Infallible| match never {}).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    response
}

/// A listener that holds at most `max` connections: the next is accepted
/// once one of them ends (it waits in the backlog meanwhile).
pub(crate) struct Accepting {
    listener: TcpListener,
    permits: Arc<Semaphore>,
}

impl Accepting {
    pub(crate) fn new(listener: TcpListener, max: usize) -> Self {
        Self { listener, permits: Arc::new(Semaphore::new(max)) }
    }

    /// The next connection and its slot (free it by dropping the permit),
    /// or `None` once `shutdown` fires.
    pub(crate) async fn next(&mut self, shutdown: &CancellationToken) -> Option<(TcpStream, OwnedSemaphorePermit)> {
        let permit = tokio::select! {
            () = shutdown.cancelled() => return None,
            // The semaphore is never closed.
            permit = self.permits.clone().acquire_owned() => permit.ok()?,
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return None,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => return Some((stream, permit)),
                    Err(error) => {
                        // Out of file descriptors, most likely: wait instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }
}

/// Serves `listener` with `handler` until `shutdown`.
pub(crate) async fn serve<H, F>(listener: TcpListener, max_connections: usize, shutdown: CancellationToken, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<AnswerBody>> + Send + 'static,
{
    let mut accepting = Accepting::new(listener, max_connections);
    while let Some((stream, permit)) = accepting.next(&shutdown).await {
        let _ = stream.set_nodelay(true);
        let (handler, shutdown) = (handler.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |request| {
                let answer = handler(request);
                async move { Ok::<_, Infallible>(answer.await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}
