//! Admission: every request is classified, bounded and given a permit, or
//! refused at once; nothing queues without bound.
//!
//! - A declared body larger than `max_body_bytes` is refused with 413 before
//!   a byte of it is read (bodies without a declared length are cut at the
//!   same limit while they are read).
//! - **Watches** are recognised by route *and* method: `GET` of an event
//!   stream (`/v1/namespaces/{ns}/events`, `.../services/{service}/events`)
//!   or a `GET` carrying `index` (a blocking query; keys are percent-decoded).
//!   They take no request body (400 if one is declared), take a permit from
//!   the watcher pool, and run until their own wait ends (a blocking query
//!   gets its capped wait plus the request timeout; an event stream takes its
//!   permit in the handler, for as long as the stream lives).
//! - **Reads** (`GET`, `HEAD`) and **writes** (every other method) have a pool
//!   each, so a write flood never sheds reads, and a watch flood neither.
//!   Both get the request deadline, body read included: 408 when it passes.

use std::future::Future;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;

use crate::AppState;
use crate::error::ApiError;

/// What kind of request this is, for admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// A Server-Sent Events stream.
    EventStream,
    /// A blocking query.
    BlockingQuery,
    /// Any other `GET` or `HEAD`.
    Read,
    /// Everything else.
    Write,
}

/// Whether a query string asks for a blocking query (an `index` key, also
/// percent-encoded).
pub(crate) fn is_blocking_query(query: &str) -> bool {
    form_urlencoded::parse(query.as_bytes()).any(|(key, _)| key == "index")
}

/// Whether `path` is one of the event-stream routes.
fn is_event_stream_path(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(
        segments.as_slice(),
        ["v1", "namespaces", ns, "events"] | ["v1", "namespaces", ns, "services", _, "events"] if !ns.is_empty()
    )
}

/// Classifies a request by its method, route and query.
pub(crate) fn classify(method: &Method, path: &str, query: Option<&str>) -> Class {
    let read = method == Method::GET || method == Method::HEAD;
    if method == Method::GET && is_event_stream_path(path) {
        Class::EventStream
    } else if method == Method::GET && query.is_some_and(is_blocking_query) {
        Class::BlockingQuery
    } else if read {
        Class::Read
    } else {
        Class::Write
    }
}

/// The body length a request declares: its `Content-Length`, or `None`
/// (then `Some(u64::MAX)` for a chunked body, which has no declared end).
fn declared_body(request: &Request) -> Option<u64> {
    let headers = request.headers();
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Some(u64::MAX);
    }
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}

fn refuse(status: StatusCode, code: &'static str, message: String) -> Response {
    ApiError { status, code, message }.into_response()
}

pub(crate) fn admit(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> impl Future<Output = Response> + Send + 'static {
    // Not an `async fn`: the checks run now and the future keeps only what
    // the wait needs (a held blocking query keeps it for minutes), not the
    // request a second time.
    let class = classify(request.method(), request.uri().path(), request.uri().query());
    let declared = declared_body(&request);
    let limit = state.config.max_body_bytes as u64;
    if let Some(length) = declared.filter(|length| *length > limit && *length != u64::MAX) {
        state.metrics.record(StatusCode::PAYLOAD_TOO_LARGE);
        return Either::Left(std::future::ready(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body declares {length} bytes; the limit is {limit} bytes"),
        )));
    }
    if matches!(class, Class::EventStream | Class::BlockingQuery) && declared.is_some_and(|length| length > 0) {
        state.metrics.record(StatusCode::BAD_REQUEST);
        return Either::Left(std::future::ready(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "a watch takes no request body".to_owned(),
        )));
    }
    let (pool, deadline, what) = match class {
        // Its permit is taken in the handler and lives as long as the stream.
        Class::EventStream => {
            return Either::Right(Either::Left(crate::auth::checked(state.auth.clone(), request, next)));
        }
        Class::BlockingQuery => {
            (&state.watchers, state.config.max_wait + state.config.request_timeout, "blocking queries")
        }
        Class::Read => (&state.reads, state.config.request_timeout, "reads"),
        Class::Write => (&state.writes, state.config.request_timeout, "writes"),
    };
    let Ok(permit) = pool.clone().try_acquire_owned() else {
        state.metrics.shed.inc();
        return Either::Left(std::future::ready(
            ApiError::overloaded(format!("too many concurrent {what}; retry shortly")).into_response(),
        ));
    };
    let checked = tokio::time::timeout(deadline, crate::auth::checked(state.auth.clone(), request, next));
    Either::Right(Either::Right(async move {
        let response = match checked.await {
            Ok(response) => response,
            Err(_) => refuse(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!("request took longer than {} ms", deadline.as_millis()),
            ),
        };
        drop(permit);
        state.metrics.record(response.status());
        response
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_index_parameter_also_percent_encoded() {
        assert!(is_blocking_query("index=5&wait=1s"));
        assert!(is_blocking_query("group=a&index=0"));
        assert!(is_blocking_query("%69ndex=5"));
        assert!(!is_blocking_query("indexer=1"));
        assert!(!is_blocking_query("group=index"));
    }

    #[test]
    fn watches_are_recognised_by_route_and_method() {
        let get = Method::GET;
        assert_eq!(classify(&get, "/v1/namespaces/public/events", None), Class::EventStream);
        assert_eq!(classify(&get, "/v1/namespaces/public/services/web/events", None), Class::EventStream);
        assert_eq!(
            classify(&get, "/v1/namespaces/public/services/web/instances", Some("index=3")),
            Class::BlockingQuery
        );
        // Paths that merely end in /events, or other methods, are ordinary requests.
        assert_eq!(classify(&Method::POST, "/eureka/apps/events", None), Class::Write);
        assert_eq!(classify(&Method::PUT, "/v1/namespaces/public/services/events", None), Class::Write);
        assert_eq!(classify(&get, "/v1/namespaces/public/services/events", None), Class::Read);
        assert_eq!(classify(&Method::POST, "/v1/namespaces/public/events", None), Class::Write);
        assert_eq!(
            classify(&Method::POST, "/v1/namespaces/public/services/web/instances", Some("index=3")),
            Class::Write
        );
        assert_eq!(classify(&Method::HEAD, "/health", None), Class::Read);
    }
}
