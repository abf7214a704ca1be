//! The client: its addresses, the pool of keep-alive connections shared by
//! its clones, and the walk over the addresses that the crate docs' failover
//! rule describes.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::{Body, Error, Options, Request, Response, Unreached};

/// hyper's pooling client over plain TCP.
type Pool = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// A client of one or more Janus servers (the nodes of one cluster).
///
/// Cheap to clone: clones share the addresses and the connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// `host:port` of each server, in the order they are tried.
    addrs: Vec<String>,
    pool: Pool,
    options: Options,
    /// `Bearer …`, marked sensitive.
    authorization: Option<HeaderValue>,
}

/// What one attempt on one address came to.
enum Attempt {
    /// No connection: nothing was sent.
    NotConnected(Unreached),
    /// An answer, whatever its status.
    Answered(Response),
    /// No answer: timed out or broken; the request may have reached the server.
    Lost(Error),
}

impl Client {
    /// A client of the servers at `addrs` (`host:port`, or `http://host:port`),
    /// tried in this order.
    ///
    /// Building a client does no I/O and needs no runtime; its requests are
    /// sent from within a Tokio runtime.
    ///
    /// # Errors
    /// [`Error::Invalid`] for no address, an address that is not
    /// `host:port` (or asks for TLS), or a bearer token that cannot be a header.
    pub fn new<I>(addrs: I, options: Options) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let addrs = addrs.into_iter().map(|addr| authority(addr.as_ref())).collect::<Result<Vec<_>, _>>()?;
        if addrs.is_empty() {
            return Err(Error::Invalid("no server address given".to_owned()));
        }
        let authorization = match options.bearer.as_deref() {
            Some(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| Error::Invalid("the bearer token is not a valid header value".to_owned()))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(options.connect_timeout));
        let pool = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(options.idle_timeout)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Self { inner: Arc::new(Inner { addrs, pool, options, authorization }) })
    }

    /// The servers' addresses, in the order they are tried.
    #[must_use]
    pub fn addrs(&self) -> &[String] {
        &self.inner.addrs
    }

    /// The same servers and connection pool with another request timeout
    /// (for the odd slow call, such as a write that may wait for an election).
    #[must_use]
    pub fn with_request_timeout(&self, timeout: Duration) -> Self {
        let inner = Inner {
            addrs: self.inner.addrs.clone(),
            pool: self.inner.pool.clone(),
            options: self.inner.options.clone().request_timeout(timeout),
            authorization: self.inner.authorization.clone(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The options the client was built with.
    #[must_use]
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Sends `method path` with `body`; the answer whatever its status.
    ///
    /// # Errors
    /// No answer: see [`Client::send`].
    pub async fn request(&self, method: Method, path: &str, body: Body) -> Result<Response, Error> {
        self.send(Request::new(method, path).body(body)).await
    }

    /// Sends `request` to the first address that answers, following the
    /// failover rule of the crate docs; the answer whatever its status
    /// (after a 503 that was tried elsewhere, the last 503).
    ///
    /// # Errors
    /// [`Error::Unreachable`] when no address took a connection;
    /// [`Error::Timeout`] or [`Error::Broken`] when the last address tried
    /// gave no answer; [`Error::Invalid`] for a path that is not one.
    pub async fn send(&self, request: Request) -> Result<Response, Error> {
        let repeat = request.may_repeat();
        let timeout = request.timeout.unwrap_or(self.inner.options.request_timeout);
        let mut unreached = Vec::new();
        let mut last = None;
        for addr in &self.inner.addrs {
            match self.attempt(addr, &request, timeout).await? {
                Attempt::NotConnected(why) => unreached.push(why),
                Attempt::Answered(response)
                    if response.shed() || (repeat && response.status == StatusCode::SERVICE_UNAVAILABLE) =>
                {
                    last = Some(Ok(response));
                }
                Attempt::Answered(response) => return Ok(response),
                Attempt::Lost(error) if repeat => last = Some(Err(error)),
                Attempt::Lost(error) => return Err(error),
            }
        }
        last.unwrap_or(Err(Error::Unreachable { tried: unreached }))
    }

    /// One try of `request` on `addr` within `timeout`.
    async fn attempt(&self, addr: &str, request: &Request, timeout: Duration) -> Result<Attempt, Error> {
        if !request.path.starts_with('/') {
            return Err(Error::Invalid(format!("a path starts with '/': {:?}", request.path)));
        }
        let uri: Uri = format!("http://{addr}{}", request.path)
            .parse()
            .map_err(|e| Error::Invalid(format!("{}: {e}", request.path)))?;
        let mut builder = hyper::Request::builder().method(request.method.clone()).uri(uri);
        if let Some(content_type) = request.body.content_type() {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        if let Some(authorization) = &self.inner.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        let outgoing = builder.body(Full::new(request.body.bytes())).map_err(|e| Error::Invalid(e.to_string()))?;
        let exchange = async {
            let answer = match self.inner.pool.request(outgoing).await {
                Ok(answer) => answer,
                Err(error) if error.is_connect() => {
                    let reason = connect_failure(&error);
                    return Attempt::NotConnected(Unreached { addr: addr.to_owned(), reason });
                }
                Err(error) => return Attempt::Lost(Error::Broken { addr: addr.to_owned(), reason: causes(&error) }),
            };
            let (head, body) = answer.into_parts();
            match body.collect().await {
                Ok(collected) => Attempt::Answered(Response {
                    status: head.status,
                    headers: head.headers,
                    body: collected.to_bytes(),
                    addr: addr.to_owned(),
                }),
                Err(error) => Attempt::Lost(Error::Broken {
                    addr: addr.to_owned(),
                    reason: format!("reading the answer: {}", causes(&error)),
                }),
            }
        };
        Ok(tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Attempt::Lost(Error::Timeout { addr: addr.to_owned(), after: timeout })))
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("addrs", &self.inner.addrs).field("options", &self.inner.options).finish()
    }
}

/// `host:port` out of `host:port` or `http://host:port[/]`.
fn authority(addr: &str) -> Result<String, Error> {
    let bare = addr.trim();
    if bare.starts_with("https://") {
        return Err(Error::Invalid(format!("{addr}: the client speaks plain HTTP only")));
    }
    let bare = bare.strip_prefix("http://").unwrap_or(bare).trim_end_matches('/');
    let valid = !bare.is_empty()
        && !bare.contains('/')
        && format!("http://{bare}/").parse::<Uri>().is_ok_and(|uri| uri.authority().is_some());
    if valid { Ok(bare.to_owned()) } else { Err(Error::Invalid(format!("{addr:?} is not a host:port address"))) }
}

/// Why a connection could not be made, as a short phrase: `connection
/// refused` rather than `Connection refused (os error 111)`.
fn connect_failure(error: &(dyn StdError + 'static)) -> String {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return if io.raw_os_error().is_some() || io.kind() == std::io::ErrorKind::TimedOut {
                io.kind().to_string()
            } else {
                io.to_string()
            };
        }
        cause = current.source();
    }
    causes(error)
}

/// An error and its causes, innermost last: `a: b: c`.
fn causes(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        text.push_str(": ");
        text.push_str(&current.to_string());
        cause = current.source();
    }
    text
}

#[cfg(test)]
mod tests;
