//! The access-administration API under `/v1/auth/` (global admins only while
//! auth is on, see `rules`): users, their passwords and grants, API tokens,
//! and `whoami`. Every change is a Raft write, so it holds on every node once
//! committed.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use janus_api::auth::{
    CreateToken, CreateUser, Grant, IssuedToken as IssuedTokenBody, SetPassword, Token, User, WhoAmI,
};
use janus_auth::{
    AuthCommand, AuthError, AuthOutcome, PasswordHash, Principal, Role, Scope, TokenId, TokenKind, UserName,
};
use janus_core::RegistryError;
use serde::Deserialize;

use super::login::mint;
use super::unix_millis;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::json_response;

type Answer = Result<Response, ApiError>;

fn auth_error(error: AuthError) -> ApiError {
    ApiError::from(RegistryError::Auth(error))
}

fn user_name(text: &str) -> Result<UserName, ApiError> {
    UserName::parse(text).map_err(auth_error)
}

/// `*` is every namespace (and the cluster); anything else one namespace.
fn scope(namespace: &str) -> Scope {
    if namespace == "*" { Scope::Global } else { Scope::Namespace(namespace.to_owned()) }
}

fn grant_body((scope, role): &(Scope, Role)) -> Grant {
    let namespace = match scope {
        Scope::Global => "*".to_owned(),
        Scope::Namespace(id) => id.clone(),
    };
    Grant { namespace, role: role.as_str().to_owned() }
}

fn user_body(info: janus_auth::UserInfo) -> User {
    User {
        name: info.name.to_string(),
        has_password: info.has_password,
        created_at_ms: info.created_unix_ms,
        grants: info.grants.iter().map(grant_body).collect(),
        tokens: info.tokens,
    }
}

fn token_body(info: janus_auth::TokenInfo) -> Token {
    let (kind, name) = match info.kind {
        TokenKind::Api { name } => ("api", Some(name)),
        TokenKind::Login => ("login", None),
        TokenKind::Bootstrap => ("bootstrap", None),
    };
    Token {
        id: info.id.to_string(),
        user: info.user.to_string(),
        kind: kind.to_owned(),
        name,
        created_at_ms: info.created_unix_ms,
        expires_at_ms: info.expires_unix_ms,
    }
}

/// Hashes a password off the async threads, with a fresh salt (global
/// admins only, so not bounded beyond the write pool).
async fn hash(password: String) -> Result<PasswordHash, ApiError> {
    let mut salt = [0u8; 16];
    rand::Rng::fill(&mut rand::rng(), &mut salt[..]);
    tokio::task::spawn_blocking(move || PasswordHash::new(&password, salt))
        .await
        .map_err(|_| ApiError::from(RegistryError::Internal("password hashing stopped".to_owned())))?
        .map_err(auth_error)
}

async fn write(state: &AppState, command: AuthCommand) -> Result<AuthOutcome, ApiError> {
    state.registry.auth_write(command).await.map_err(ApiError::from)
}

fn user_answer(status: StatusCode, outcome: AuthOutcome) -> Answer {
    match outcome {
        AuthOutcome::User(info) => Ok(json_response(status, &user_body(info))),
        _ => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// `GET /v1/auth/whoami`.
pub(crate) async fn whoami(State(state): State<AppState>, principal: Option<Extension<Principal>>) -> Response {
    let principal = principal.map(|Extension(p)| p);
    let grants = principal
        .as_ref()
        .map(|p| state.auth.store.read(|s| s.grants_of(&p.user)).iter().map(grant_body).collect())
        .unwrap_or_default();
    json_response(
        StatusCode::OK,
        &WhoAmI {
            user: principal.as_ref().map(|p| p.user.to_string()),
            token: principal.as_ref().and_then(|p| p.token.as_ref().map(ToString::to_string)),
            grants,
            auth_enabled: state.auth.enabled,
        },
    )
}

/// `GET /v1/auth/users`.
pub(crate) async fn list_users(State(state): State<AppState>) -> Response {
    let users: Vec<User> = state.auth.store.read(|s| s.users()).into_iter().map(user_body).collect();
    json_response(StatusCode::OK, &users)
}

/// `GET /v1/auth/users/{user}`.
pub(crate) async fn get_user(State(state): State<AppState>, Path(user): Path<String>) -> Answer {
    let name = user_name(&user)?;
    let info = state.auth.store.read(|s| s.user(&name)).ok_or_else(|| auth_error(AuthError::NoSuchUser(name)))?;
    Ok(json_response(StatusCode::OK, &user_body(info)))
}

/// `POST /v1/auth/users`.
pub(crate) async fn create_user(State(state): State<AppState>, body: crate::extract::Json<CreateUser>) -> Answer {
    let request = body.0;
    let name = user_name(&request.name)?;
    let password = match request.password {
        Some(password) => Some(hash(password).await?),
        None => None,
    };
    let outcome = write(&state, AuthCommand::CreateUser { name, password, at_unix_ms: unix_millis() }).await?;
    user_answer(StatusCode::CREATED, outcome)
}

/// `DELETE /v1/auth/users/{user}`.
pub(crate) async fn delete_user(State(state): State<AppState>, Path(user): Path<String>) -> Answer {
    write(&state, AuthCommand::DeleteUser { name: user_name(&user)? }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /v1/auth/users/{user}/password`.
pub(crate) async fn set_password(
    State(state): State<AppState>,
    Path(user): Path<String>,
    body: crate::extract::Json<SetPassword>,
) -> Answer {
    let name = user_name(&user)?;
    let password = hash(body.0.password).await?;
    let outcome = write(&state, AuthCommand::SetPassword { name, password }).await?;
    user_answer(StatusCode::OK, outcome)
}

/// `PUT /v1/auth/users/{user}/grants`: `{"namespace": "team-a" | "*", "role": "read" | "write" | "admin"}`.
pub(crate) async fn grant(
    State(state): State<AppState>,
    Path(user): Path<String>,
    body: crate::extract::Json<Grant>,
) -> Answer {
    let role = Role::parse(&body.0.role).map_err(auth_error)?;
    let command = AuthCommand::Grant { user: user_name(&user)?, scope: scope(&body.0.namespace), role };
    let outcome = write(&state, command).await?;
    user_answer(StatusCode::OK, outcome)
}

/// `DELETE /v1/auth/users/{user}/grants/{namespace}` (`*`: the global grant).
pub(crate) async fn revoke_grant(
    State(state): State<AppState>,
    Path((user, namespace)): Path<(String, String)>,
) -> Answer {
    let outcome = write(&state, AuthCommand::RevokeGrant { user: user_name(&user)?, scope: scope(&namespace) }).await?;
    user_answer(StatusCode::OK, outcome)
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenFilter {
    user: Option<String>,
}

/// `GET /v1/auth/tokens[?user=]`.
pub(crate) async fn list_tokens(State(state): State<AppState>, Query(filter): Query<TokenFilter>) -> Answer {
    let user = filter.user.as_deref().map(user_name).transpose()?;
    let tokens: Vec<Token> = state.auth.store.read(|s| s.tokens(user.as_ref())).into_iter().map(token_body).collect();
    Ok(json_response(StatusCode::OK, &tokens))
}

/// `POST /v1/auth/tokens`: the token's text is in this answer and nowhere else.
pub(crate) async fn create_token(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    body: crate::extract::Json<CreateToken>,
) -> Answer {
    let request = body.0;
    let user = match (request.user, principal) {
        (Some(user), _) => user_name(&user)?,
        (None, Some(Extension(principal))) => principal.user,
        (None, None) => return Err(ApiError::invalid("name the token's user (\"user\"): this request has no caller")),
    };
    let now = unix_millis();
    let expires_unix_ms = request.ttl_seconds.map(|ttl| now.saturating_add(ttl.saturating_mul(1000)));
    let token = mint();
    let command = AuthCommand::IssueToken {
        id: token.id.clone(),
        hash: token.hash.clone(),
        user: user.clone(),
        kind: TokenKind::Api { name: request.name },
        at_unix_ms: now,
        expires_unix_ms,
    };
    write(&state, command).await?;
    let body = IssuedTokenBody {
        token: token.text().to_owned(),
        id: token.id.to_string(),
        user: user.to_string(),
        expires_at_ms: expires_unix_ms,
    };
    Ok(json_response(StatusCode::CREATED, &body))
}

/// `DELETE /v1/auth/tokens/{id}`.
pub(crate) async fn revoke_token(State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    let id = TokenId::parse(&id).map_err(auth_error)?;
    write(&state, AuthCommand::RevokeToken { id }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
