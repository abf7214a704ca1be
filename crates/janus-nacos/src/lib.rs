//! Janus's shared Nacos layer: every Nacos naming and console operation over
//! a [`RegistryService`], on typed inputs, with a typed answer or a
//! [`NacosError`].
//!
//! Nothing here knows requests or responses (no axum, no tonic): the Nacos v1
//! and v2 HTTP APIs of `janus-http` parse their parameters into these inputs
//! and render these answers in their own shapes, and the Nacos gRPC front end
//! is to call the same functions. An answer is the data itself (a
//! `janus_api::nacos` type, or [`Ack`] for a write with nothing to report),
//! so each API is only a rendering of it.
//!
//! Differences from Nacos: the namespace must exist (Janus namespaces carry a
//! mode), and an `ephemeral` flag that contradicts the namespace mode is
//! refused with 409 instead of creating a second kind of service.
//!
//! # Layout
//! - [`NacosContext`]: what the operations need (the registry, the list
//!   cache, the largest page);
//! - [`instance`], [`service`], [`namespace`], [`operator`]: the operations;
//! - [`input`]: the typed-input builders every front end shares (service
//!   keys, clusters, instance addresses and specs);
//! - [`error`]: [`NacosError`] and its codes, chosen by the variant of the
//!   registry error in one place ([`NacosError::v2_code`], and the gRPC
//!   answer [`NacosError::grpc`]);
//! - [`list_cache`]: serialized list answers, checked against the service's
//!   revision (the native API of `janus-http` uses it too).

pub mod error;
pub mod input;
pub mod instance;
pub mod list_cache;
pub mod namespace;
pub mod operator;
pub mod service;

use std::sync::Arc;

use janus_core::{RegistryError, RegistryService};
use serde::{Serialize, Serializer};

pub use error::NacosError;
use list_cache::ListCache;

/// What the Nacos operations work on; a front end builds it once and shares it.
#[derive(Clone)]
pub struct NacosContext {
    /// The registry every operation reads and writes.
    pub registry: Arc<dyn RegistryService>,
    /// Instance lists encoded once per service revision.
    pub lists: Arc<ListCache>,
    /// Largest page of a service list (at least 1 is used).
    pub max_page_size: u64,
}

/// The answer of a naming write that has nothing to report: Nacos v1 says
/// `ok` as text, v2 the JSON string `"ok"` (this type's serialization).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack;

impl Ack {
    /// The answer of a write once it is done (what the write reports is not
    /// part of the answer).
    fn after<T>(written: Result<T, RegistryError>) -> Result<Self, NacosError> {
        written.map(|_| Self).map_err(NacosError::from)
    }
}

impl Serialize for Ack {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("ok")
    }
}
