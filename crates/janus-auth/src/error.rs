//! What authentication and authorization refuse, by kind. Front ends map a
//! variant to their protocol once: the `unauthenticated` ones to 401 (or
//! their protocol's equivalent), [`AuthError::Forbidden`] to 403.

use crate::model::{Role, Scope, UserName};

/// A refusal of the auth layer. Messages never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum AuthError {
    /// No credentials came with a request that needs them.
    #[error("authentication required: send an API token (Authorization: Bearer <token>) or log in")]
    Missing,
    /// The presented text is not a Janus token.
    #[error("the token is malformed: Janus tokens look like jns_<16 hex>_<64 hex>")]
    MalformedToken,
    /// No such token: never issued, revoked, or its user deleted.
    #[error("the token is not valid (unknown or revoked)")]
    UnknownToken,
    /// The token's expiry has passed.
    #[error("the token expired; log in again or create a new one")]
    Expired,
    /// A login with a wrong user name or password (which one is not said).
    #[error("wrong user name or password")]
    BadCredentials,
    /// Too many failed logins for this user or from this address.
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    Throttled {
        /// Seconds until a login is accepted again.
        retry_after_secs: u64,
    },
    /// The principal is known but lacks the role the action needs.
    #[error("user {user} may not {needed} {scope}: it needs the {needed} role there")]
    Forbidden {
        /// Who asked.
        user: UserName,
        /// The role the action needs.
        needed: Role,
        /// Where.
        scope: Scope,
    },
    /// A name, password or setting that breaks a rule; says which.
    #[error("{0}")]
    Invalid(String),
    /// The user name is taken.
    #[error("user {0} already exists")]
    UserExists(UserName),
    /// No such user.
    #[error("no user {0}")]
    NoSuchUser(UserName),
    /// No such token (for revocation).
    #[error("no token {0}")]
    NoSuchToken(String),
    /// A bound on the number of users or tokens.
    #[error("{0}")]
    Limit(String),
    /// Users, tokens and grants cannot be changed now (no Raft quorum).
    #[error("users, tokens and grants cannot be changed now: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// Whether this says "who are you?" (401) rather than "not you" (403) or
    /// a bad request.
    #[must_use]
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, Self::Missing | Self::MalformedToken | Self::UnknownToken | Self::Expired | Self::BadCredentials)
    }
}
