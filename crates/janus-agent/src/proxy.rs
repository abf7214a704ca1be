//! The proxy: `http://127.0.0.1:15001/{service}/{path}` goes to an instance
//! of `service`, chosen by the SDK's balancer over a watched copy of the
//! service (so a call never waits on the registry once the service is
//! known).
//!
//! - Only healthy, enabled instances that are not ejected are chosen; a
//!   deregistered instance leaves the watched copy within the watch latency.
//! - A try that could not connect is made again on another instance for
//!   any method (nothing was sent). A try that broke after sending, or a 5xx
//!   answer (Envoy's `5xx` retry policy), is made again on another instance
//!   only for an idempotent method (GET, HEAD, PUT, DELETE, OPTIONS, TRACE),
//!   at most `retries` times; the last answer reaches the app when no other
//!   instance is left. A timeout is answered 504 at once.
//! - Every failed try counts against the instance for outlier ejection; a
//!   2xx-4xx answer counts as a success.
//! - The request body is kept (up to `max_body_bytes`, 413 above) so that it
//!   can be sent again; answers are streamed.
//! - Answers name the instance that served them in `x-janus-instance`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use janus_client::ServiceRef;
use janus_client::balance::Pick;
use janus_client::discovery::WatchedService;

use crate::config::ProxyConfig;
use crate::metrics::Metrics;
use crate::serve::{AnswerBody, error};
use crate::services::{Services, TooMany};

/// The header naming the instance that answered.
pub const INSTANCE_HEADER: &str = "x-janus-instance";

/// The proxy's state, shared by its connections.
pub(crate) struct Proxy {
    services: Arc<Services>,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    retries: u32,
    max_body_bytes: usize,
    metrics: Arc<Metrics>,
}

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl Proxy {
    pub(crate) fn new(services: Arc<Services>, config: &ProxyConfig, metrics: Arc<Metrics>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_millis(config.connect_timeout_ms)));
        connector.set_nodelay(true);
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(connector);
        Self {
            services,
            http,
            timeout: Duration::from_millis(config.timeout_ms),
            retries: config.retries,
            max_body_bytes: config.max_body_bytes,
            metrics,
        }
    }

    /// Answers one request of the app.
    pub(crate) async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<AnswerBody> {
        let Some((name, rest)) = split_target(request.uri()) else {
            return error(
                StatusCode::BAD_REQUEST,
                "no_service",
                "the path names no service: ask for /{service}/{path}, e.g. /hello/api/greeting",
            );
        };
        let service = match name.split_once("@@") {
            Some((group, service)) => self.services.service_ref(service, None, Some(group)),
            None => self.services.service_ref(name, None, None),
        };
        let Some(service) = service else {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_service",
                &format!("`{name}` is not a service name: use letters, digits and _ . : - (or group@@service)"),
            );
        };
        let watched = match self.services.watched(&service).await {
            Ok(watched) => watched,
            Err(TooMany(max)) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too_many_services",
                    &format!("the agent watches {max} services already (proxy.max_services)"),
                );
            }
        };
        let label = name.to_owned();
        let answer = self.forward(&service, &watched, &label, request, &rest).await;
        self.metrics.answered(&label, answer.status().as_u16());
        answer
    }

    async fn forward(
        &self,
        service: &ServiceRef,
        watched: &WatchedService,
        label: &str,
        request: Request<Incoming>,
        rest: &str,
    ) -> Response<AnswerBody> {
        let (parts, body) = request.into_parts();
        let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.max_body_bytes as u64) {
            return self.too_large();
        }
        let body = match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(cause) if cause.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                return self.too_large();
            }
            Err(cause) => {
                return error(StatusCode::BAD_REQUEST, "bad_body", &format!("reading the request body: {cause}"));
            }
        };
        let idempotent = matches!(
            parts.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
        );
        let Some(mut pick) = watched.pick() else {
            let why = watched.status().last_error.map(|e| format!(" (the registry: {e})")).unwrap_or_default();
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_instance",
                &format!("no healthy instance of {service} to send the request to{why}"),
            );
        };
        let mut tried: Vec<(String, u16)> = Vec::new();
        let mut attempt = 0;
        loop {
            let target = (pick.instance().ip.clone(), pick.instance().port);
            let authority = authority(&target.0, target.1);
            let outgoing = match build(&parts, &authority, rest, body.clone()) {
                Ok(outgoing) => outgoing,
                Err(why) => return error(StatusCode::BAD_REQUEST, "bad_request", &why),
            };
            tried.push(target);
            let failure = match tokio::time::timeout(self.timeout, self.http.request(outgoing)).await {
                Err(_) => {
                    self.failed(watched, pick, label, "timeout");
                    return error(
                        StatusCode::GATEWAY_TIMEOUT,
                        "timeout",
                        &format!("{authority} ({service}) did not answer within {} ms", self.timeout.as_millis()),
                    );
                }
                Ok(Err(cause)) => {
                    let kind = if cause.is_connect() { "connect" } else { "broken" };
                    Failure { kind, retry: kind == "connect" || idempotent, message: format!("{authority}: {cause}") }
                }
                Ok(Ok(answer)) => {
                    let status = answer.status();
                    let next = (status.is_server_error() && idempotent && attempt < self.retries)
                        .then(|| watched.balancer().pick_avoiding(&tried))
                        .flatten();
                    let Some(next) = next else {
                        if status.is_server_error() {
                            self.failed(watched, pick, label, "status");
                        } else {
                            pick.finish(true);
                        }
                        return relay(answer, &authority);
                    };
                    self.failed(watched, pick, label, "status");
                    self.metrics.retried(label);
                    attempt += 1;
                    pick = next;
                    continue;
                }
            };
            self.failed(watched, pick, label, failure.kind);
            let next =
                (failure.retry && attempt < self.retries).then(|| watched.balancer().pick_avoiding(&tried)).flatten();
            let Some(next) = next else {
                return error(
                    StatusCode::BAD_GATEWAY,
                    "upstream_failed",
                    &format!("no instance of {service} answered; the last try: {}", failure.message),
                );
            };
            self.metrics.retried(label);
            attempt += 1;
            pick = next;
        }
    }

    /// Reports a failed try (it may eject the instance).
    fn failed(&self, watched: &WatchedService, pick: Pick<'_>, label: &str, kind: &'static str) {
        pick.finish(false);
        self.metrics.upstream_failed(label, kind);
        self.metrics.set_ejected(label, watched.balancer().ejected().len());
    }

    fn too_large(&self) -> Response<AnswerBody> {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &format!("the request body is larger than {} bytes (proxy.max_body_bytes)", self.max_body_bytes),
        )
    }
}

/// A failed try that did not produce an answer.
struct Failure {
    kind: &'static str,
    retry: bool,
    message: String,
}

/// `/{service}/{rest}` → (`service`, `/{rest}?{query}`).
fn split_target(uri: &hyper::Uri) -> Option<(&str, String)> {
    let path = uri.path().strip_prefix('/')?;
    let (name, rest) = path.find('/').map_or((path, ""), |at| (&path[..at], &path[at..]));
    if name.is_empty() {
        return None;
    }
    let rest = if rest.is_empty() { "/" } else { rest };
    Some((name, uri.query().map_or_else(|| rest.to_owned(), |query| format!("{rest}?{query}"))))
}

/// `ip:port`, with brackets for IPv6.
fn authority(ip: &str, port: u16) -> String {
    if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") }
}

/// The request to send to `authority`: the app's method and headers (less
/// the hop-by-hop ones), `Host` set to the instance.
fn build(
    parts: &hyper::http::request::Parts,
    authority: &str,
    rest: &str,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, String> {
    let uri: hyper::Uri = format!("http://{authority}{rest}").parse().map_err(|e| format!("the path `{rest}`: {e}"))?;
    let mut outgoing = Request::new(Full::new(body));
    *outgoing.method_mut() = parts.method.clone();
    *outgoing.uri_mut() = uri;
    let headers = outgoing.headers_mut();
    for (name, value) in &parts.headers {
        if name != header::HOST && !is_hop_by_hop(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let host = HeaderValue::from_str(authority).map_err(|e| format!("the instance address `{authority}`: {e}"))?;
    headers.insert(header::HOST, host);
    Ok(outgoing)
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// The instance's answer, streamed back, naming the instance.
fn relay(answer: Response<Incoming>, authority: &str) -> Response<AnswerBody> {
    let (mut parts, body) = answer.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    if let Ok(value) = HeaderValue::from_str(authority) {
        parts.headers.insert(HeaderName::from_static(INSTANCE_HEADER), value);
    }
    Response::from_parts(parts, body.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_the_service_and_the_rest() {
        let split = |target: &str| {
            let uri: hyper::Uri = target.parse().unwrap();
            split_target(&uri).map(|(name, rest)| (name.to_owned(), rest))
        };
        assert_eq!(split("/hello/api/greet?x=1"), Some(("hello".to_owned(), "/api/greet?x=1".to_owned())));
        assert_eq!(split("/hello"), Some(("hello".to_owned(), "/".to_owned())));
        assert_eq!(split("/hello?x=1"), Some(("hello".to_owned(), "/?x=1".to_owned())));
        assert_eq!(split("/"), None);
        assert_eq!(authority("::1", 80), "[::1]:80");
    }
}
