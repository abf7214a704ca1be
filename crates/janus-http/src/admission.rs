//! Admission: every request takes a permit or is shed with 503, so load never
//! queues without bound; ordinary requests get a deadline, body read included.
//!
//! Blocking queries (`?index=`) take a permit from the separate watcher pool and
//! run until their own wait (capped) ends; event streams take their watcher
//! permit in the handler, because it must live as long as the stream.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// Whether a query string asks for a blocking query.
pub(crate) fn is_blocking_query(query: &str) -> bool {
    query.split('&').any(|pair| pair == "index" || pair.starts_with("index="))
}

pub(crate) async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.uri().path().ends_with("/events") {
        return next.run(request).await;
    }
    let blocking = request.uri().query().is_some_and(is_blocking_query);
    let (pool, limit, what) = if blocking {
        (&state.watchers, state.config.max_wait + state.config.request_timeout, "blocking queries")
    } else {
        (&state.requests, state.config.request_timeout, "requests")
    };
    let Ok(_permit) = pool.clone().try_acquire_owned() else {
        state.metrics.shed.inc();
        return ApiError::overloaded(format!("too many concurrent {what}; retry shortly")).into_response();
    };
    let response = match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "timeout",
            message: format!("request took longer than {} ms", limit.as_millis()),
        }
        .into_response(),
    };
    state.metrics.record(response.status());
    response
}

#[cfg(test)]
mod tests {
    use super::is_blocking_query;

    #[test]
    fn recognises_index_parameter() {
        assert!(is_blocking_query("index=5&wait=1s"));
        assert!(is_blocking_query("group=a&index=0"));
        assert!(!is_blocking_query("indexer=1"));
        assert!(!is_blocking_query("group=index"));
    }
}
