//! The `consistency` parameter of reads and the headers saying what a read had.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use janus_core::name::NamespaceId;
use janus_core::service::{Consistency, ReadFence};

use crate::AppState;
use janus_core::RegistryError;

/// Parses `consistency`: `local` (default) or `linearizable`.
fn parse(requested: Option<&str>) -> Result<Consistency, RegistryError> {
    match requested {
        None | Some("" | "local" | "default" | "stale") => Ok(Consistency::Local),
        Some("linearizable" | "consistent") => Ok(Consistency::Linearizable),
        Some(other) => Err(RegistryError::invalid("consistency", format!("local or linearizable, got {other:?}"))),
    }
}

/// Fences a read of `namespace` as asked.
pub(crate) async fn fence(
    state: &AppState,
    namespace: &NamespaceId,
    requested: Option<&str>,
) -> Result<ReadFence, RegistryError> {
    state.registry.read_fence(namespace, parse(requested)?).await
}

/// `X-Janus-Consistency`, and `X-Janus-Raft-Index` for `cp` namespaces.
pub(crate) fn headers(headers: &mut HeaderMap, fence: &ReadFence) {
    headers
        .insert(HeaderName::from_static("x-janus-consistency"), HeaderValue::from_static(fence.consistency.as_str()));
    if let Some(index) = fence.raft_index {
        headers.insert(HeaderName::from_static("x-janus-raft-index"), HeaderValue::from(index));
    }
}
