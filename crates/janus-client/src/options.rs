//! How a [`Client`](crate::Client) connects and how long it waits.

use std::fmt;
use std::time::Duration;

/// Timeouts, pooling and credentials of a client.
///
/// ```
/// # use std::time::Duration;
/// let options = janus_client::Options::default().request_timeout(Duration::from_secs(3));
/// assert_eq!(options.request_timeout, Duration::from_secs(3));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Options {
    /// How long one attempt (connect, send, whole answer) may take on one
    /// address; a blocking query gets its wait on top. Default 10 s.
    pub request_timeout: Duration,
    /// How long a connection may take to open; past it the address counts
    /// as unreachable and the next one is tried. Default 2 s.
    pub connect_timeout: Duration,
    /// How long an idle keep-alive connection stays in the pool. Keep it
    /// below the server's `http.header_timeout_ms` (10 s by default), after
    /// which the server closes idle connections. Default 5 s.
    pub idle_timeout: Duration,
    /// A token sent as `Authorization: Bearer …` (the cluster secret, for
    /// the membership admin API on a node's cluster address).
    pub bearer: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(5),
            bearer: None,
        }
    }
}

impl Options {
    /// With another request timeout.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// With another connect timeout.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// With another idle timeout of pooled connections.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sending `token` as `Authorization: Bearer token`.
    #[must_use]
    pub fn bearer(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }
}

/// The token is a secret: never printed.
impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let options = Options::default().bearer("s3cret-cluster-token");
        let shown = format!("{options:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(format!("{:?}", Options::default()).contains("bearer: None"));
    }
}
