//! The native JSON API under `/v1/`, one module per resource.

pub(crate) mod instances;
pub(crate) mod namespaces;
pub(crate) mod services;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use janus_core::Mode;

use crate::error::ApiError;

/// Headers every read carries: the revision it reflects and the namespace mode.
pub(crate) fn read_headers(revision: u64, mode: Mode) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("x-janus-index"), HeaderValue::from(revision));
    headers.insert(HeaderName::from_static("x-janus-mode"), HeaderValue::from_static(mode.as_str()));
    headers
}

/// A page request (`page` from 1, `page_size` up to `max`, default 1 and
/// 100). Out of range is refused, for both alike (the Nacos routes clamp
/// instead, as Nacos does).
pub(crate) fn page(page: Option<u64>, page_size: Option<u64>, max: u64) -> Result<(u64, u64), ApiError> {
    let page = page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::invalid("invalid page: must be 1 or more, got 0"));
    }
    let page_size = page_size.unwrap_or(100);
    if page_size == 0 || page_size > max {
        return Err(ApiError::invalid(format!("invalid page_size: must be between 1 and {max}, got {page_size}")));
    }
    Ok((page, page_size))
}
