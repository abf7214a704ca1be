//! The receiving side: `POST /internal/raft/{kind}` into the local CP
//! engine, `POST /internal/distro/{kind}` into the local AP engine, and the
//! membership admin API under `/internal/admin/members`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use janus_ap::{ApEngine, MessageKind, PeerMessageError};
use janus_raft::{CpEngine, MembershipChange, PeerRpcError, RpcKind};
use serde::Deserialize;

use crate::{ADMIN_PATH, ClusterSecret, DISTRO_PATH, RAFT_PATH};

/// The routes of the cluster address: Raft messages for `engine`, AP
/// protocol messages for `ap`, each admitted only with `secret`, bodies of
/// at most `max_body` bytes (a whole snapshot travels in one body).
pub fn router(engine: CpEngine, ap: ApEngine, secret: ClusterSecret, max_body: usize) -> Router {
    let distro = Router::new().route(&format!("{DISTRO_PATH}/{{kind}}"), post(handle_distro)).with_state(ap);
    Router::new()
        .route(&format!("{RAFT_PATH}/{{kind}}"), post(handle))
        .route(&format!("{ADMIN_PATH}/members"), get(list_members).post(add_learner))
        .route(&format!("{ADMIN_PATH}/members/{{id}}"), axum::routing::delete(remove_member))
        .route(&format!("{ADMIN_PATH}/members/{{id}}/promote"), post(promote))
        .with_state(engine)
        .merge(distro)
        .layer(DefaultBodyLimit::max(max_body))
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
        // 421: "sent to a server that cannot answer it"; the sender retries at the leader.
        Err(error @ PeerRpcError::NotLeader(_)) => (StatusCode::MISDIRECTED_REQUEST, error.to_string()).into_response(),
    }
}

async fn handle_distro(State(engine): State<ApEngine>, Path(kind): Path<String>, body: Bytes) -> Response {
    let Some(kind) = MessageKind::from_name(&kind) else {
        return (StatusCode::NOT_FOUND, format!("no AP protocol message named {kind:?}\n")).into_response();
    };
    match engine.handle_peer_message(kind, &body).await {
        Ok(reply) => ([(header::CONTENT_TYPE, "application/octet-stream")], reply).into_response(),
        Err(error @ PeerMessageError::Malformed { .. }) => (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
        Err(error @ PeerMessageError::NotClustered) => (StatusCode::CONFLICT, error.to_string()).into_response(),
        Err(error @ PeerMessageError::NotAMember { .. }) => (StatusCode::FORBIDDEN, error.to_string()).into_response(),
    }
}

/// `POST /internal/admin/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMember {
    id: u64,
    addr: String,
}

async fn list_members(State(engine): State<CpEngine>) -> Response {
    Json(engine.members()).into_response()
}

async fn add_learner(State(engine): State<CpEngine>, Json(member): Json<NewMember>) -> Response {
    if member.addr.trim().is_empty() {
        return (StatusCode::BAD_REQUEST, "addr must be the new member's cluster address (host:port)\n")
            .into_response();
    }
    change(&engine, MembershipChange::AddLearner { id: member.id, addr: member.addr }).await
}

async fn promote(State(engine): State<CpEngine>, Path(id): Path<u64>) -> Response {
    change(&engine, MembershipChange::Promote { id }).await
}

async fn remove_member(State(engine): State<CpEngine>, Path(id): Path<u64>) -> Response {
    change(&engine, MembershipChange::Remove { id }).await
}

async fn change(engine: &CpEngine, change: MembershipChange) -> Response {
    match engine.change_members(change).await {
        Ok(members) => Json(members).into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")).into_response(),
    }
}
