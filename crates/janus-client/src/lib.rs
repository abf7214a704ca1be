//! The Rust SDK of Janus: an async client of the native JSON API under
//! `/v1/`, instances kept registered, client-side discovery (watched
//! services, load balancing, outlier ejection, a failover cache) and a DNS
//! query helper.
//!
//! The operator CLI (`janus status`, `janus instances …`), the end-to-end
//! tests, the fault-injection driver and the load generator all talk to
//! Janus through this crate. It shares only the wire types of `janus-api`
//! with the server.
//!
//! # Layout
//! - [`Client`]: one or more server addresses, pooled keep-alive HTTP/1.1
//!   connections, a connect and a request timeout, failover from one address
//!   to the next; [`Client::send`] and [`Client::request`] are the raw escape
//!   hatch (any method and path, the answer's status, headers and body).
//! - The typed operations are methods of [`Client`] (module `native`):
//!   namespaces, services, instances (register, deregister, heartbeat, list
//!   with blocking queries), health and the cluster status. They return the
//!   `janus-api` types and turn an error status into [`Error::Refused`].
//! - [`Error`]: unreachable, timeout, broken connection, refused, malformed.
//! - [`dns`]: queries over UDP or TCP returning hickory's `Message`.
//! - [`balance`]: client-side load balancing over a service's instances
//!   (weighted random, round robin, least outstanding; zone preference),
//!   with [`outlier`] ejection of instances that keep failing.
//! - [`discovery`]: a watched, in-memory copy of each service a caller uses
//!   (blocking queries), a balancer over it, and a failover cache on disk.
//! - [`mod@registration`]: an instance kept registered ([`Client::keep_registered`]):
//!   heartbeats at the server's interval, registered again after a lost
//!   lease, deregistered when the [`Registration`] ends.
//!
//! # Failover: which requests are tried on the next address
//! A request goes to the addresses in the order given, each at most once,
//! and stops at the first answer. It moves on to the next address:
//! - always when no connection could be made (refused, unresolvable, the
//!   connect timeout): nothing was sent;
//! - always on a 503 whose code is `overloaded`: the server shed the request
//!   before handling it;
//! - on a timeout, a connection that broke after sending, or any other 503
//!   (e.g. `unavailable`: a Raft write without quorum, which may still
//!   commit) only when the request is safe to repeat. GET, HEAD, PUT,
//!   DELETE and OPTIONS are (HTTP's idempotent methods); POST and PATCH are
//!   not, unless the caller says so with [`Request::retry_safe`]. Of the
//!   typed operations, a registration is marked safe: it is an upsert, and
//!   sending it twice leaves the same instance. Creating a namespace or a
//!   service is not (the second try would answer 409).
//!
//! When every address has been tried, the last answer or error is returned;
//! [`Error::Unreachable`] names every address and why it refused.
//!
//! # Example
//! ```no_run
//! # async fn example() -> Result<(), janus_client::Error> {
//! use janus_client::{Client, ListOptions, Options, ServiceRef, registration};
//!
//! let client = Client::new(["10.0.0.1:8848", "10.0.0.2:8848"], Options::default())?;
//! let web = ServiceRef::new("public", "web");
//! client.register_instance(&web, &registration("10.0.0.7", 8080)).await?;
//! let list = client.list_instances(&web, &ListOptions::default()).await?;
//! println!("{} instances at revision {}", list.instances.len(), list.revision);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod access;
pub mod balance;
mod client;
pub mod discovery;
pub mod dns;
mod error;
mod native;
mod options;
pub mod outlier;
mod path;
pub mod registration;
mod request;
#[cfg(test)]
mod testing;

pub use client::Client;
pub use error::{Error, Unreached};
pub use janus_api as api;
pub use native::{ListOptions, ServiceRef, registration};
pub use options::Options;
pub use path::segment;
pub use registration::{Registration, RegistrationStatus};
pub use request::{Body, Request, Response};

/// The HTTP method type requests take (hyper's).
pub use hyper::Method;
/// The HTTP status type answers carry (hyper's).
pub use hyper::StatusCode;
