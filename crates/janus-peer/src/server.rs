//! The receiving side: `POST /internal/raft/{kind}` into the local engine.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use janus_raft::{CpEngine, PeerRpcError, RpcKind};

use crate::{ClusterSecret, RAFT_PATH};

/// The routes of the cluster address: Raft messages for `engine`, each
/// admitted only with `secret`, bodies of at most `max_body` bytes (a whole
/// snapshot travels in one body).
pub fn router(engine: CpEngine, secret: ClusterSecret, max_body: usize) -> Router {
    Router::new()
        .route(&format!("{RAFT_PATH}/{{kind}}"), post(handle))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(engine)
        // Outermost: a caller without the secret is refused before its body is read.
        .layer(from_fn_with_state(secret, authenticate))
}

async fn authenticate(State(secret): State<ClusterSecret>, request: Request, next: Next) -> Response {
    let presented = request.headers().get(header::AUTHORIZATION).map_or(&[][..], |value| value.as_bytes());
    if secret.admits(presented) {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, "cluster traffic needs the cluster secret\n").into_response()
    }
}

async fn handle(State(engine): State<CpEngine>, Path(kind): Path<String>, body: Bytes) -> Response {
    let Some(kind) = RpcKind::from_name(&kind) else {
        return (StatusCode::NOT_FOUND, format!("no Raft message kind named {kind:?}\n")).into_response();
    };
    match engine.handle_peer_rpc(kind, &body).await {
        Ok(reply) => ([(header::CONTENT_TYPE, "application/octet-stream")], reply).into_response(),
        Err(error @ PeerRpcError::Malformed { .. }) => (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
        Err(error @ PeerRpcError::Raft(_)) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}
