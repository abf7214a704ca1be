//! Wire types of the Janus HTTP API.
//!
//! This crate owns the JSON shapes that cross the network and nothing else: no
//! behaviour, no I/O, no dependency on the server. The HTTP front end
//! (`janus-http`) maps the registry's types onto these; anything that
//! talks to a node can parse them with serde; `janus-client` (the start of
//! the Rust SDK) sends and receives them.
//!
//! # Layout
//! - [`native`]: request and response bodies of the native API under `/v1/`.
//! - [`nacos`]: response shapes of the Nacos v1 naming, console and operator
//!   APIs (the Nacos v2 routes wrap the same data in v2's envelope).
//! - [`auth`]: login, users, tokens and grants under `/v1/auth/`, and
//!   Nacos's login answer.
//! - [`ErrorBody`]: the `{code, message}` body of every native error.
#![warn(missing_docs)]

pub mod auth;
pub mod nacos;
pub mod native;

use serde::{Deserialize, Serialize};

/// Default HTTP port, the same as Nacos so existing clients find us.
pub const DEFAULT_HTTP_PORT: u16 = 8848;

/// Response header carrying the revision a read reflects (blocking queries).
pub const INDEX_HEADER: &str = "X-Janus-Index";

/// Response header carrying the mode (`ap` or `cp`) of the namespace read.
pub const MODE_HEADER: &str = "X-Janus-Mode";

/// The body of every error the native API returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable, machine-readable error code such as `invalid_argument`.
    pub code: String,
    /// A human-readable explanation naming the field or resource at fault.
    pub message: String,
}
