//! Logins: `POST /v1/auth/login` (JSON) and Nacos's `POST /nacos/v1/auth/login`
//! and `/nacos/v1/auth/users/login` (`username`, `password` as query or form
//! parameters). A good password gets a new token with the login lifetime
//! (`auth.login_token_ttl_ms`), written through Raft so every node accepts
//! it; failures are counted per user and per source address and throttled.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use janus_api::auth::{IssuedToken as IssuedTokenBody, LoginRequest, NacosLogin};
use janus_auth::{AuthCommand, AuthError, IssuedToken, Role, Scope, TokenKind, UserName};
use janus_core::RegistryError;

use super::{monotonic_millis, refusal, unix_millis, verify_password};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::json_response;

/// The address a connection came from, set by the server loop on login
/// requests (throttling by source).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub(crate) SocketAddr);

/// A login's new token, its lifetime, and whether its user is a global admin.
struct LoggedIn {
    token: IssuedToken,
    user: UserName,
    expires_unix_ms: u64,
    global_admin: bool,
}

async fn log_in(
    state: &AppState,
    peer: Option<PeerAddr>,
    user: &str,
    password: String,
) -> Result<LoggedIn, RegistryError> {
    let guard = &state.auth;
    let name = UserName::parse(user).map_err(|_| RegistryError::Auth(AuthError::BadCredentials))?;
    let user_key = format!("user:{name}");
    let peer_key = peer.map(|p| format!("addr:{}", p.0.ip()));
    let keys: Vec<&str> = std::iter::once(user_key.as_str()).chain(peer_key.as_deref()).collect();
    guard.limiter.lock().check(&keys, monotonic_millis()).map_err(RegistryError::Auth)?;
    let hash = guard.store.read(|s| s.password_of(&name));
    if !verify_password(hash, password).await {
        guard.limiter.lock().failed(&keys, monotonic_millis());
        tracing::info!(target: "janus::audit", user = %name, peer = ?peer.map(|p| p.0), "login refused");
        return Err(RegistryError::Auth(AuthError::BadCredentials));
    }
    guard.limiter.lock().succeeded(&user_key);
    let now = unix_millis();
    let ttl = u64::try_from(state.config.login_token_ttl.as_millis()).unwrap_or(u64::MAX);
    let expires_unix_ms = now.saturating_add(ttl);
    let token = mint();
    state
        .registry
        .auth_write(AuthCommand::IssueToken {
            id: token.id.clone(),
            hash: token.hash.clone(),
            user: name.clone(),
            kind: TokenKind::Login,
            at_unix_ms: now,
            expires_unix_ms: Some(expires_unix_ms),
        })
        .await?;
    let global_admin = guard.store.read(|s| s.authorize(&name, Role::Admin, &Scope::Global).is_ok());
    tracing::info!(target: "janus::audit", user = %name, token = %token.id, "login");
    Ok(LoggedIn { token, user: name, expires_unix_ms, global_admin })
}

/// A token from a cryptographic random source (`rand`'s thread generator,
/// ChaCha seeded by the operating system).
pub(crate) fn mint() -> IssuedToken {
    let mut random = [0u8; 40];
    rand::Rng::fill(&mut rand::rng(), &mut random[..]);
    IssuedToken::mint(random)
}

/// `POST /v1/auth/login`.
pub(crate) async fn native(State(state): State<AppState>, request: Request) -> Response {
    let peer = request.extensions().get::<PeerAddr>().copied();
    let Ok(body) = axum::body::to_bytes(request.into_body(), state.config.max_body_bytes).await else {
        return ApiError::invalid("the request body could not be read (or is over the size limit)").into_response();
    };
    let login: LoginRequest = match serde_json::from_slice(&body) {
        Ok(login) => login,
        Err(error) => {
            return ApiError::invalid(format!("a login is {{\"username\": …, \"password\": …}}: {error}"))
                .into_response();
        }
    };
    match log_in(&state, peer, &login.username, login.password).await {
        Ok(done) => json_response(
            axum::http::StatusCode::OK,
            &IssuedTokenBody {
                token: done.token.text().to_owned(),
                id: done.token.id.to_string(),
                user: done.user.to_string(),
                expires_at_ms: Some(done.expires_unix_ms),
            },
        ),
        Err(error) => refusal("/v1/auth/login", error),
    }
}

/// `POST /nacos/v1/auth/login` and `/nacos/v1/auth/users/login`.
pub(crate) async fn nacos(State(state): State<AppState>, request: Request) -> Response {
    let peer = request.extensions().get::<PeerAddr>().copied();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let Ok(body) = axum::body::to_bytes(request.into_body(), state.config.max_body_bytes).await else {
        let error = RegistryError::invalid("body", "could not be read (or is over the size limit)");
        return refusal("/nacos/v1/auth/login", error);
    };
    let param = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .chain(form_urlencoded::parse(&body))
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    let (Some(user), Some(password)) = (param("username"), param("password")) else {
        return refusal(
            "/nacos/v1/auth/login",
            RegistryError::invalid("username", "username and password are required"),
        );
    };
    match log_in(&state, peer, &user, password).await {
        Ok(done) => json_response(
            axum::http::StatusCode::OK,
            &NacosLogin {
                access_token: done.token.text().to_owned(),
                token_ttl: state.config.login_token_ttl.as_secs(),
                global_admin: done.global_admin,
                username: done.user.to_string(),
            },
        ),
        Err(error) => refusal("/nacos/v1/auth/login", error),
    }
}
