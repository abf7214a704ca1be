//! Who may do what in Janus: users, API tokens and namespace grants
//! (`docs/auth-design.md`).
//!
//! This crate owns the model, the replicated state and every check. Like
//! `janus-core` it does no I/O: randomness, wall-clock time and the results
//! of password hashing are passed in, so the state changes only by
//! [`AuthCommand`]s applied in log order and is the same on every node.
//!
//! - [`model`]: user names, roles, scopes and what a principal is;
//! - [`token`]: the token format (`jns_<id>_<secret>`); only a SHA-256 of
//!   the secret is ever stored, and presented secrets are compared in
//!   constant time;
//! - [`password`]: argon2id password hashes, computed on the node taking the
//!   request before the command is proposed (the log carries the hash);
//! - [`state`]: [`AuthState`], the commands that change it, and the two
//!   checks every front end makes: [`AuthState::authenticate`] (who is this
//!   token?) and [`AuthState::authorize`] (may they do this here?);
//! - [`limiter`]: failed logins counted per user and per source address;
//! - [`AuthStore`]: a node's state behind a lock, applied to by Raft and
//!   read by the front ends.

mod error;
pub mod limiter;
pub mod model;
pub mod password;
pub mod state;
mod store;
pub mod token;

pub use error::AuthError;
pub use limiter::LoginLimiter;
pub use model::{Principal, Role, Scope, UserName};
pub use password::PasswordHash;
pub use state::{AuthCommand, AuthOutcome, AuthState, TokenInfo, TokenKind, UserInfo};
pub use store::AuthStore;
pub use token::{IssuedToken, SecretHash, TokenId};
