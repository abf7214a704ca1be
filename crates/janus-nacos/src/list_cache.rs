//! Serialized list answers, cached per service and filter and checked against
//! the service's revision on every hit.
//!
//! Any change to a service (an instance, its health, the protect threshold)
//! bumps its revision, so a cached answer is served only while it is exactly
//! what a fresh one would be; a change is visible on the very next list. The
//! cache is bounded in bytes (moka, weighed by body size).
//!
//! One cache serves every front end: the Nacos hosts of a service revision
//! are encoded once, for Nacos over HTTP and gRPC alike, and `janus-http`'s
//! native API keeps whole bodies in it ([`CachedBody::Whole`]).

use std::sync::Arc;

use bytes::Bytes;
use janus_core::model::Mode;
use janus_core::name::{ClusterName, ServiceKey};
use janus_core::registry::ServiceSnapshot;
use janus_core::select::{Selection, select};
use janus_core::{RegistryError, RegistryService};
use serde_json::value::RawValue;

/// Which response shape an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListShape {
    /// The whole native `InstanceList` body.
    Native,
    /// The `hosts` array of a Nacos `ServiceInfo` (the envelope carries the time).
    NacosHosts,
}

/// What a list is for: service, cluster filter, health filter, shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListKey {
    /// The service listed.
    pub service: ServiceKey,
    /// The cluster filter; empty means every cluster.
    pub clusters: Vec<ClusterName>,
    /// Only healthy instances (before the protect threshold).
    pub healthy_only: bool,
    /// The shape the body is in.
    pub shape: ListShape,
}

/// A cached body.
#[derive(Debug)]
pub enum CachedBody {
    /// A complete response body.
    Whole(Bytes),
    /// A JSON fragment to embed in a response built per request.
    Fragment(Box<RawValue>),
}

impl CachedBody {
    fn len(&self) -> usize {
        match self {
            Self::Whole(bytes) => bytes.len(),
            Self::Fragment(raw) => raw.get().len(),
        }
    }
}

/// One cached answer.
#[derive(Debug)]
pub struct CachedList {
    /// The service revision the answer reflects.
    pub revision: u64,
    /// The mode of the service's namespace.
    pub mode: Mode,
    /// Whether selection fell back to every instance (protect threshold).
    pub reached_protect_threshold: bool,
    /// The encoded answer.
    pub body: CachedBody,
}

/// Encodes a wire value as a raw JSON fragment, to embed in an answer.
pub fn to_raw<T: serde::Serialize>(value: &T) -> Box<RawValue> {
    // Our wire types have string keys and derived serializers only, so they
    // always encode, and serde_json's output is valid JSON: neither step can
    // fail.
    #[allow(clippy::expect_used)]
    let json = serde_json::to_string(value).expect("wire types always encode");
    #[allow(clippy::expect_used)]
    RawValue::from_string(json).expect("serde_json output is valid JSON")
}

/// The cache.
pub struct ListCache {
    entries: moka::sync::Cache<ListKey, Arc<CachedList>>,
}

impl ListCache {
    /// A cache holding at most about `max_bytes` of encoded answers.
    #[must_use]
    pub fn new(max_bytes: u64) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &ListKey, value: &Arc<CachedList>| {
                let size = value.body.len() + key.clusters.len() * 16 + 128;
                u32::try_from(size).unwrap_or(u32::MAX)
            })
            .build();
        Self { entries }
    }

    /// The answer for `key`, from the cache when its revision is current,
    /// otherwise built by `encode` from a fresh snapshot and cached.
    ///
    /// # Errors
    /// The registry's, when the snapshot cannot be taken (unknown namespace).
    pub fn get_or_build(
        &self,
        registry: &dyn RegistryService,
        key: ListKey,
        encode: impl FnOnce(&ServiceSnapshot, &Selection) -> CachedBody,
    ) -> Result<Arc<CachedList>, RegistryError> {
        let current = registry.view().read(|r| r.service_revision(&key.service));
        if current != 0
            && let Some(hit) = self.entries.get(&key)
            && hit.revision == current
        {
            return Ok(hit);
        }
        let snapshot = registry.snapshot(&key.service)?;
        let selection = select(&snapshot, &key.clusters, key.healthy_only);
        let entry = Arc::new(CachedList {
            revision: snapshot.revision,
            mode: snapshot.mode,
            reached_protect_threshold: selection.reached_protect_threshold,
            body: encode(&snapshot, &selection),
        });
        if snapshot.exists {
            self.entries.insert(key, entry.clone());
        }
        Ok(entry)
    }
}
