//! The native JSON API under `/v1/`, one module per resource.

pub(crate) mod instances;
pub(crate) mod namespaces;
pub(crate) mod services;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use janus_core::Mode;

/// Headers every read carries: the revision it reflects and the namespace mode.
pub(crate) fn read_headers(revision: u64, mode: Mode) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("x-janus-index"), HeaderValue::from(revision));
    headers.insert(HeaderName::from_static("x-janus-mode"), HeaderValue::from_static(mode.as_str()));
    headers
}
