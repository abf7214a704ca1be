//! What can go wrong talking to Janus, each kind saying whether the request
//! may have reached a server.

use std::fmt;
use std::time::Duration;

use hyper::StatusCode;
use serde::Deserialize;

/// An address the client could not connect to, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreached {
    /// The address, `host:port`.
    pub addr: String,
    /// Why, e.g. `connection refused`.
    pub reason: String,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No address took a connection: the request was sent nowhere.
    #[error("cannot reach {}", Tried(tried))]
    Unreachable {
        /// Every address tried, in order.
        tried: Vec<Unreached>,
    },
    /// No whole answer within the request's timeout; the request may have
    /// reached the server.
    #[error("{addr} did not answer within {}", Span(*after))]
    Timeout {
        /// The address that did not answer.
        addr: String,
        /// The timeout.
        after: Duration,
    },
    /// The connection broke after the request was sent; it may have reached
    /// the server.
    #[error("the request to {addr} failed: {reason}")]
    Broken {
        /// The address.
        addr: String,
        /// What broke.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{}", Refusal { addr, status: *status, message })]
    Refused {
        /// The address that answered.
        addr: String,
        /// The HTTP status.
        status: StatusCode,
        /// The `code` of the native `{code, message}` error body, when there is one.
        code: Option<String>,
        /// The `message` of the error body, else the body's text (may be empty).
        message: String,
    },
    /// The answer is not what the API defines (not JSON, or another shape).
    #[error("the answer of {addr} is not what the API defines: {reason}")]
    Malformed {
        /// The address that answered.
        addr: String,
        /// What did not fit.
        reason: String,
    },
    /// The request could not be built: an address, path or header that is
    /// not valid, or a body that does not serialize.
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// The part of an error body the client reads: any JSON object with a
/// string `message` (the native `{code, message}`, the admin API's errors).
#[derive(Deserialize)]
struct ErrorFields {
    #[serde(default)]
    code: Option<String>,
    message: String,
}

impl Error {
    /// The refusal of `status` with `body`: the `code` and `message` of a
    /// JSON error body, else the body's trimmed text as the message.
    #[must_use]
    pub fn refused(addr: &str, status: StatusCode, body: &[u8]) -> Self {
        let (code, message) = match serde_json::from_slice::<ErrorFields>(body) {
            Ok(fields) => (fields.code, fields.message),
            Err(_) => (None, String::from_utf8_lossy(body).trim().to_owned()),
        };
        Self::Refused { addr: addr.to_owned(), status, code, message }
    }

    /// The HTTP status of a refusal.
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error code of a refusal (`not_found`, `unavailable`, …).
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// `a (why), b (why)`.
struct Tried<'a>(&'a [Unreached]);

impl fmt::Display for Tried<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("any server: no address was given");
        }
        for (n, unreached) in self.0.iter().enumerate() {
            let separator = if n == 0 { "" } else { ", " };
            write!(f, "{separator}{} ({})", unreached.addr, unreached.reason)?;
        }
        Ok(())
    }
}

/// `10 s` for whole seconds, `250 ms` otherwise.
struct Span(Duration);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.subsec_nanos() == 0 {
            write!(f, "{} s", self.0.as_secs())
        } else {
            write!(f, "{} ms", self.0.as_millis())
        }
    }
}

/// `message (HTTP 409)`, or what the status was when the body said nothing.
struct Refusal<'a> {
    addr: &'a str,
    status: StatusCode,
    message: &'a str,
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{} answered {} and no reason", self.addr, self.status)
        } else {
            write!(f, "{} (HTTP {})", self.message, self.status.as_u16())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_the_error_body_or_the_text() {
        let body = br#"{"code":"already_exists","message":"namespace 'team' already exists"}"#;
        let error = Error::refused("n1:8848", StatusCode::CONFLICT, body);
        assert_eq!(error.to_string(), "namespace 'team' already exists (HTTP 409)");
        assert_eq!((error.status(), error.code()), (Some(StatusCode::CONFLICT), Some("already_exists")));

        let error = Error::refused("n1:8848", StatusCode::UNAUTHORIZED, b"needs the secret\n");
        assert_eq!(error.to_string(), "needs the secret (HTTP 401)");
        assert_eq!(error.code(), None);

        let error = Error::refused("n1:8848", StatusCode::BAD_GATEWAY, b"");
        assert_eq!(error.to_string(), "n1:8848 answered 502 Bad Gateway and no reason");
    }

    #[test]
    fn unreachable_names_every_address_and_timeouts_their_span() {
        let tried = vec![
            Unreached { addr: "a:1".to_owned(), reason: "connection refused".to_owned() },
            Unreached { addr: "b:2".to_owned(), reason: "timed out".to_owned() },
        ];
        assert_eq!(Error::Unreachable { tried }.to_string(), "cannot reach a:1 (connection refused), b:2 (timed out)");
        let timeout = Error::Timeout { addr: "a:1".to_owned(), after: Duration::from_secs(10) };
        assert_eq!(timeout.to_string(), "a:1 did not answer within 10 s");
        let timeout = Error::Timeout { addr: "a:1".to_owned(), after: Duration::from_millis(1500) };
        assert_eq!(timeout.to_string(), "a:1 did not answer within 1500 ms");
    }
}
