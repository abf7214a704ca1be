//! The shared Nacos layer: every Nacos naming and console operation, on
//! typed inputs, with a typed answer or a [`NacosError`].
//!
//! Nothing here knows requests or responses (no axum type): the Nacos v1 and
//! v2 HTTP APIs parse their parameters into these inputs and render these
//! answers in their own shapes (`super::v1`, `super::v2`), and the Nacos gRPC
//! front end is to call the same functions. An answer is the data itself (a
//! `janus_api::nacos` type, or [`Ack`] for a write with nothing to report),
//! so each API version is only a rendering of it.
//!
//! Differences from Nacos: the namespace must exist (Janus namespaces carry a
//! mode), and an `ephemeral` flag that contradicts the namespace mode is
//! refused with 409 instead of creating a second kind of service.

pub(crate) mod instance;
pub(crate) mod namespace;
pub(crate) mod operator;
pub(crate) mod service;

use janus_core::RegistryError;
use serde::{Serialize, Serializer};

use crate::error::NacosError;

/// The answer of a naming write that has nothing to report: Nacos v1 says
/// `ok` as text, v2 the JSON string `"ok"` (this type's serialization).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ack;

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
