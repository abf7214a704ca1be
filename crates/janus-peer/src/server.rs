//! The receiving side: `POST /internal/{channel}/{kind}` into the channel's
//! [`PeerHandler`] (the local CP engine for `raft`, the AP engine for
//! `distro`), the same messages on peer streams (`POST /internal/stream`,
//! `stream_server.rs`), and the membership admin API under
//! `/internal/admin/members`.
//! Everything is behind the cluster secret.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use janus_ap::ApEngine;
use janus_core::transport::{Channel, PeerHandler};
use janus_raft::{CpEngine, MembershipChange};
use serde::Deserialize;

use crate::{ADMIN_PATH, ClusterSecret, wire};

/// The routes of the cluster address: Raft messages for `engine`, AP
/// protocol messages for `ap`, the membership admin API, each admitted only
/// with `secret`, bodies of at most `max_body` bytes (a whole snapshot
/// travels in one body).
pub fn router(engine: CpEngine, ap: ApEngine, secret: ClusterSecret, max_body: usize) -> Router {
    let admin = Router::new()
        .route(&format!("{ADMIN_PATH}/members"), get(list_members).post(add_learner))
        .route(&format!("{ADMIN_PATH}/members/{{id}}"), axum::routing::delete(remove_member))
        .route(&format!("{ADMIN_PATH}/members/{{id}}/promote"), post(promote))
        .with_state(engine.clone());
    let handlers: [(Channel, Arc<dyn PeerHandler>); 2] =
        [(Channel::Raft, Arc::new(engine)), (Channel::Distro, Arc::new(ap))];
    guarded(messages(handlers, max_body).merge(admin), secret, max_body)
}

/// The message routes alone: `POST /internal/{channel}/{kind}` into each
/// channel's handler, behind `secret`, bodies of at most `max_body` bytes.
/// [`router`] serves the engines this way; tests serve their own handlers.
pub fn message_router(
    handlers: impl IntoIterator<Item = (Channel, Arc<dyn PeerHandler>)>,
    secret: ClusterSecret,
    max_body: usize,
) -> Router {
    guarded(messages(handlers, max_body), secret, max_body)
}

/// `POST /internal/{channel}/{kind}` for each handler, and the peer stream
/// (`POST /internal/stream`) carrying the same messages.
fn messages(handlers: impl IntoIterator<Item = (Channel, Arc<dyn PeerHandler>)>, max_body: usize) -> Router {
    let handlers: Vec<(Channel, Arc<dyn PeerHandler>)> = handlers.into_iter().collect();
    let streams = Router::new()
        .route(crate::frame::STREAM_PATH, post(crate::stream_server::open))
        .with_state(crate::stream_server::Streams::new(handlers.clone(), max_body));
    handlers.into_iter().fold(streams, |routes, (channel, handler)| {
        let path = format!("{}/{{kind}}", wire::channel_path(channel));
        routes.merge(Router::new().route(&path, post(handle)).with_state(handler))
    })
}

fn guarded(routes: Router, secret: ClusterSecret, max_body: usize) -> Router {
    routes
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

async fn handle(State(handler): State<Arc<dyn PeerHandler>>, Path(kind): Path<String>, body: Bytes) -> Response {
    match handler.handle(&kind, &body).await {
        Ok(reply) => ([(header::CONTENT_TYPE, "application/octet-stream")], reply).into_response(),
        Err(refusal) => (wire::status(refusal.kind), refusal.reason).into_response(),
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
