//! A raw request (any method, path and body) and its answer: the escape
//! hatch for what the typed operations do not cover.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderMap, RETRY_AFTER};
use hyper::{Method, StatusCode};
use janus_api::INDEX_HEADER;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// The body of a request.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// A JSON document (`application/json`).
    Json(Bytes),
    /// Form fields (`application/x-www-form-urlencoded`), as the Nacos
    /// routes take them.
    Form(String),
}

impl Body {
    /// `value` as JSON.
    ///
    /// # Errors
    /// [`Error::Invalid`] if it does not serialize.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        serde_json::to_vec(value).map(|bytes| Self::Json(bytes.into())).map_err(|e| Error::Invalid(e.to_string()))
    }

    /// Form fields, already encoded (`a=1&b=2`).
    #[must_use]
    pub fn form(fields: impl Into<String>) -> Self {
        Self::Form(fields.into())
    }

    pub(crate) fn content_type(&self) -> Option<&'static str> {
        match self {
            Self::Empty => None,
            Self::Json(_) => Some("application/json"),
            Self::Form(_) => Some("application/x-www-form-urlencoded"),
        }
    }

    pub(crate) fn bytes(&self) -> Bytes {
        match self {
            Self::Empty => Bytes::new(),
            Self::Json(bytes) => bytes.clone(),
            Self::Form(text) => Bytes::from(text.clone()),
        }
    }
}

impl From<serde_json::Value> for Body {
    fn from(value: serde_json::Value) -> Self {
        // A `Value` always serializes: its map keys are strings.
        Self::Json(Bytes::from(value.to_string()))
    }
}

/// A request: method, path with query, body, and how it may be retried.
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) body: Body,
    pub(crate) retry_safe: Option<bool>,
    pub(crate) timeout: Option<Duration>,
}

impl Request {
    /// `method` on `path` (with its query string, starting with `/`).
    #[must_use]
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self { method, path: path.into(), body: Body::Empty, retry_safe: None, timeout: None }
    }

    /// With `body`.
    #[must_use]
    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    /// Whether the request may be sent again to the next address after it
    /// may have reached a server (a timeout, a broken connection, a 503 other
    /// than `overloaded`). By default only idempotent methods are; see the
    /// crate docs for the rule.
    #[must_use]
    pub fn retry_safe(mut self, safe: bool) -> Self {
        self.retry_safe = Some(safe);
        self
    }

    /// With a timeout of its own instead of the client's request timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The method.
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path with its query.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether it may be sent again after it may have reached a server.
    pub(crate) fn may_repeat(&self) -> bool {
        let idempotent =
            matches!(self.method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS);
        self.retry_safe.unwrap_or(idempotent)
    }
}

/// An answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// The address that answered.
    pub addr: String,
}

impl Response {
    /// The `X-Janus-Index` header: the revision a read reflects.
    #[must_use]
    pub fn index(&self) -> Option<u64> {
        self.header(INDEX_HEADER).and_then(|v| v.parse().ok())
    }

    /// The `Retry-After` header (a shed request).
    #[must_use]
    pub fn retry_after(&self) -> Option<&str> {
        self.header(RETRY_AFTER.as_str())
    }

    /// A header as text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (invalid UTF-8 replaced).
    #[must_use]
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body parsed as JSON into `T`.
    ///
    /// # Errors
    /// [`Error::Malformed`] if it is not JSON of that shape.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::Malformed { addr: self.addr.clone(), reason: e.to_string() })
    }

    /// The answer itself when its status is a success, else
    /// [`Error::Refused`] with the server's error code and message.
    ///
    /// # Errors
    /// [`Error::Refused`] for a status outside 2xx.
    pub fn error_for_status(self) -> Result<Self, Error> {
        if self.status.is_success() { Ok(self) } else { Err(Error::refused(&self.addr, self.status, &self.body)) }
    }

    /// Whether the server shed the request before handling it (503 with
    /// code `overloaded`), so that sending it elsewhere is always safe.
    pub(crate) fn shed(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE
            && Error::refused(&self.addr, self.status, &self.body).code() == Some("overloaded")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: StatusCode, body: &'static str) -> Response {
        Response {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
            addr: "n:1".to_owned(),
        }
    }

    #[test]
    fn idempotent_methods_repeat_unless_told_otherwise() {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            assert!(Request::new(method.clone(), "/").may_repeat(), "{method}");
            assert!(!Request::new(method, "/").retry_safe(false).may_repeat());
        }
        for method in [Method::POST, Method::PATCH] {
            assert!(!Request::new(method.clone(), "/").may_repeat(), "{method}");
            assert!(Request::new(method, "/").retry_safe(true).may_repeat());
        }
    }

    #[test]
    fn bodies_carry_their_content_type() {
        let json = Body::from(serde_json::json!({"id": "x"}));
        assert_eq!((json.content_type(), &json.bytes()[..]), (Some("application/json"), &br#"{"id":"x"}"#[..]));
        let form = Body::form("a=1");
        assert_eq!(form.content_type(), Some("application/x-www-form-urlencoded"));
        assert_eq!(Body::Empty.content_type(), None);
    }

    #[test]
    fn only_an_overloaded_503_counts_as_shed() {
        assert!(response(StatusCode::SERVICE_UNAVAILABLE, r#"{"code":"overloaded","message":"m"}"#).shed());
        assert!(!response(StatusCode::SERVICE_UNAVAILABLE, r#"{"code":"unavailable","message":"m"}"#).shed());
        assert!(!response(StatusCode::SERVICE_UNAVAILABLE, "busy").shed());
        assert!(!response(StatusCode::TOO_MANY_REQUESTS, r#"{"code":"overloaded","message":"m"}"#).shed());
    }

    #[test]
    fn an_error_status_becomes_a_refusal_and_bad_json_malformed() {
        let refused = response(StatusCode::NOT_FOUND, r#"{"code":"not_found","message":"no such namespace"}"#)
            .error_for_status()
            .unwrap_err();
        assert_eq!(refused.code(), Some("not_found"));
        assert!(response(StatusCode::OK, "{}").error_for_status().is_ok());
        let malformed = response(StatusCode::OK, "<html>").json::<serde_json::Value>().unwrap_err();
        assert!(matches!(malformed, Error::Malformed { .. }), "{malformed:?}");
    }
}
