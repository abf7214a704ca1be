//! Bodies of the login and the access-administration API under `/v1/auth/`
//! and of Nacos's login (`docs/auth.md`).

use serde::{Deserialize, Serialize};

/// `POST /v1/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The user.
    pub username: String,
    /// Its password.
    pub password: String,
}

/// A token as issued: its text is shown this once and never again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedToken {
    /// The token to send (`Authorization: Bearer <token>`).
    pub token: String,
    /// Its id, for listings and revocation.
    pub id: String,
    /// Its user.
    pub user: String,
    /// When it stops working (Unix milliseconds), if ever.
    pub expires_at_ms: Option<u64>,
}

/// Nacos's login answer (`POST /nacos/v1/auth/login`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NacosLogin {
    /// The token Nacos clients send as `accessToken`.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub token_ttl: u64,
    /// Whether the user is a global admin.
    pub global_admin: bool,
    /// The user.
    pub username: String,
}

/// A grant: a role in a namespace, or everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The namespace id, or `*` for every namespace and the cluster.
    pub namespace: String,
    /// `read`, `write` or `admin`.
    pub role: String,
}

/// A user (never its password).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// The name.
    pub name: String,
    /// Whether it can log in with a password.
    pub has_password: bool,
    /// When it was created (Unix milliseconds).
    pub created_at_ms: u64,
    /// Its grants.
    pub grants: Vec<Grant>,
    /// How many tokens it holds.
    pub tokens: usize,
}

/// `POST /v1/auth/users`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// The name.
    pub name: String,
    /// A password to log in with; without one the user works by API tokens only.
    #[serde(default)]
    pub password: Option<String>,
}

/// `PUT /v1/auth/users/{user}/password`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// The new password.
    pub password: String,
}

/// `POST /v1/auth/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Whose token (the caller's if absent).
    #[serde(default)]
    pub user: Option<String>,
    /// What it is for.
    pub name: String,
    /// Its lifetime in seconds; none: until revoked.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    /// Its id.
    pub id: String,
    /// Its user.
    pub user: String,
    /// `api`, `login` or `bootstrap`.
    pub kind: String,
    /// An API token's name.
    pub name: Option<String>,
    /// When it was issued (Unix milliseconds).
    pub created_at_ms: u64,
    /// When it stops working (Unix milliseconds), if ever.
    pub expires_at_ms: Option<u64>,
}

/// `GET /v1/auth/whoami`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The caller, or none when auth is off.
    pub user: Option<String>,
    /// The token it presented.
    pub token: Option<String>,
    /// Its grants.
    pub grants: Vec<Grant>,
    /// Whether this node checks requests.
    pub auth_enabled: bool,
}
