//! Instances: register, update, patch, deregister, get, the hosts of a
//! service, beat, statuses, batch metadata updates and manual health updates.
//!
//! A list's blocking wait and read fence are the front end's (they need its
//! runtime and parameters); [`hosts`] is what every front end then answers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use janus_api::nacos::{
    BatchUpdated, BeatInfo, BeatResponse, CODE_OK, CODE_RESOURCE_NOT_FOUND, Host, InstanceDetail, ServiceInfo, Statuses,
};
use janus_core::RegistryError;
use janus_core::model::{InstancePatch, InstanceSpec, Mode};
use janus_core::name::{ClusterName, InstanceKey, ServiceKey};
use janus_core::select::Selection;
use serde::ser::Error as _;
use serde::{Serialize, Serializer};

use crate::input::{self, InstanceFields};
use crate::list_cache::{CachedBody, CachedList, ListKey, ListShape, to_raw};
use crate::{Ack, NacosContext, NacosError};

/// Registers an instance (or replaces it, as a registration does).
pub async fn register(ctx: &NacosContext, key: ServiceKey, spec: InstanceSpec) -> Result<Ack, NacosError> {
    Ack::after(ctx.registry.register_instance(key, spec).await)
}

/// Replaces an existing instance.
pub async fn update(ctx: &NacosContext, key: ServiceKey, spec: InstanceSpec) -> Result<Ack, NacosError> {
    Ack::after(ctx.registry.update_instance(key, spec).await)
}

/// Changes only the fields `patch` gives.
pub async fn patch(
    ctx: &NacosContext,
    key: ServiceKey,
    instance: InstanceKey,
    patch: InstancePatch,
) -> Result<Ack, NacosError> {
    Ack::after(ctx.registry.patch_instance(key, instance, patch).await)
}

/// Removes an instance; an unknown instance or service is no error, as in Nacos.
pub async fn deregister(ctx: &NacosContext, key: ServiceKey, instance: InstanceKey) -> Result<Ack, NacosError> {
    match ctx.registry.deregister_instance(key, instance).await {
        Ok(_) | Err(RegistryError::ServiceNotFound { .. } | RegistryError::InstanceNotFound { .. }) => Ok(Ack),
        Err(err) => Err(err.into()),
    }
}

/// One instance.
pub fn get(ctx: &NacosContext, key: &ServiceKey, instance: &InstanceKey) -> Result<InstanceDetail, NacosError> {
    let found = ctx.registry.instance(key, instance)?;
    let inst = &found.instance;
    Ok(InstanceDetail {
        service: key.grouped_name(),
        ip: inst.key.ip.to_string(),
        port: inst.key.port,
        cluster_name: inst.key.cluster.to_string(),
        weight: inst.weight,
        healthy: inst.healthy,
        instance_id: inst.instance_id(key),
        metadata: inst.metadata.clone(),
    })
}

/// Which hosts of a service a list asks for.
pub struct HostsQuery {
    /// The service.
    pub key: ServiceKey,
    /// The cluster filter as the client wrote it, echoed in the answer.
    pub clusters_text: String,
    /// The cluster filter; empty means every cluster.
    pub clusters: Vec<ClusterName>,
    /// Only healthy hosts (unless the protect threshold is reached).
    pub healthy_only: bool,
}

/// An instance list: Nacos's `ServiceInfo`, and the service's revision and
/// mode the read saw. It serializes as the `ServiceInfo`; Nacos v1 tells the
/// rest in headers.
pub struct HostList {
    /// The answer.
    pub info: ServiceInfo<CachedHosts>,
    /// The service revision it reflects.
    pub revision: u64,
    /// The mode of the service's namespace.
    pub mode: Mode,
}

impl Serialize for HostList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.info.serialize(serializer)
    }
}

impl HostList {
    /// The JSON of the `ServiceInfo` in three buffers: what comes before the
    /// hosts, the hosts as the list cache holds them (shared, not copied) and
    /// what comes after. Joined they are exactly the serialized answer; a
    /// front end writes them as they are, so a list does not copy the cached
    /// hosts into each answer.
    #[must_use]
    pub fn json_parts(&self) -> [Bytes; 3] {
        let info = &self.info;
        let mut head = Vec::with_capacity(96 + info.name.len() + info.group_name.len() + info.clusters.len());
        json_field(&mut head, "{\"name\":", &info.name);
        json_field(&mut head, ",\"groupName\":", &info.group_name);
        json_field(&mut head, ",\"clusters\":", &info.clusters);
        json_field(&mut head, ",\"cacheMillis\":", &info.cache_millis);
        head.extend_from_slice(b",\"hosts\":");
        let mut tail = Vec::with_capacity(128);
        json_field(&mut tail, ",\"lastRefTime\":", &info.last_ref_time);
        json_field(&mut tail, ",\"checksum\":", &info.checksum);
        json_field(&mut tail, ",\"allIPs\":", &info.all_ips);
        json_field(&mut tail, ",\"reachProtectionThreshold\":", &info.reach_protection_threshold);
        json_field(&mut tail, ",\"valid\":", &info.valid);
        tail.push(b'}');
        [Bytes::from(head), info.hosts.shared(), Bytes::from(tail)]
    }
}

/// Appends `name` (the JSON text before a value) and `value` as JSON.
fn json_field<T: Serialize>(out: &mut Vec<u8>, name: &str, value: &T) {
    out.extend_from_slice(name.as_bytes());
    // Strings, integers and booleans always encode, and a Vec has no I/O
    // errors: this cannot fail.
    #[allow(clippy::expect_used)]
    serde_json::to_writer(out, value).expect("plain values always encode");
}

/// The `hosts` of a list as the list cache holds them: encoded once per
/// revision, embedded as they are.
pub struct CachedHosts(Arc<CachedList>);

impl CachedHosts {
    /// The hosts of `entry`, which must hold a JSON fragment: the list key
    /// names the Nacos shape, so anything else is a bug (an internal fault).
    fn new(entry: Arc<CachedList>, key: &ServiceKey) -> Result<Self, RegistryError> {
        match entry.body {
            CachedBody::Fragment(_) => Ok(Self(entry)),
            CachedBody::Whole(_) => {
                let context = format!("the list cache holds another shape for the Nacos list of {key}");
                tracing::error!(%context, "Nacos list failed on an internal fault");
                Err(RegistryError::Internal(context))
            }
        }
    }

    /// The encoded hosts, sharing the cache's allocation.
    fn shared(&self) -> Bytes {
        Bytes::from_owner(FragmentBytes(self.0.clone()))
    }
}

/// The bytes of a cached fragment, owned by its cache entry.
struct FragmentBytes(Arc<CachedList>);

impl AsRef<[u8]> for FragmentBytes {
    fn as_ref(&self) -> &[u8] {
        match &self.0.body {
            CachedBody::Fragment(hosts) => hosts.get().as_bytes(),
            // `CachedHosts::new` accepts fragments only.
            CachedBody::Whole(bytes) => bytes,
        }
    }
}

impl Serialize for CachedHosts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0.body {
            CachedBody::Fragment(hosts) => hosts.serialize(serializer),
            // `new` accepts fragments only.
            CachedBody::Whole(_) => Err(S::Error::custom("the cached Nacos hosts are not a JSON fragment")),
        }
    }
}

/// The hosts of a service, from the list cache while the service's revision
/// is unchanged (encoded once per revision for every front end).
///
/// # Errors
/// The registry's (an unknown namespace), or an internal fault.
pub fn hosts(ctx: &NacosContext, query: HostsQuery) -> Result<HostList, NacosError> {
    let HostsQuery { key, clusters_text, clusters, healthy_only } = query;
    let grouped = key.grouped_name();
    let list_key = ListKey { service: key.clone(), clusters, healthy_only, shape: ListShape::NacosHosts };
    let entry = ctx.lists.get_or_build(&*ctx.registry, list_key, |_, selection| {
        CachedBody::Fragment(to_raw(&selected_hosts(selection, &key, &grouped)))
    })?;
    let (revision, mode, reached_protect_threshold) = (entry.revision, entry.mode, entry.reached_protect_threshold);
    let info = ServiceInfo {
        name: grouped,
        group_name: key.group.to_string(),
        clusters: clusters_text,
        cache_millis: 10_000,
        hosts: CachedHosts::new(entry, &key)?,
        last_ref_time: epoch_millis(),
        checksum: String::new(),
        all_ips: false,
        reach_protection_threshold: reached_protect_threshold,
        valid: true,
    };
    Ok(HostList { info, revision, mode })
}

fn selected_hosts(selection: &Selection, key: &ServiceKey, grouped: &str) -> Vec<Host> {
    selection
        .instances
        .iter()
        .map(|s| Host {
            instance_id: s.instance.instance_id(key),
            ip: s.instance.key.ip.to_string(),
            port: s.instance.key.port,
            weight: s.instance.weight,
            healthy: s.healthy,
            enabled: s.instance.enabled,
            ephemeral: s.instance.ephemeral,
            cluster_name: s.instance.key.cluster.to_string(),
            service_name: grouped.to_owned(),
            metadata: s.instance.metadata.clone(),
            instance_heart_beat_interval: s.timing.interval_ms,
            instance_id_generator: "simple".to_owned(),
            instance_heart_beat_time_out: s.timing.unhealthy_after_ms,
            ip_delete_timeout: s.timing.delete_after_ms,
        })
        .collect()
}

fn epoch_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A heartbeat: renews the lease; for an unknown instance registers it again
/// from `beat` if given, else answers 20404 so the client registers again.
pub async fn beat(
    ctx: &NacosContext,
    key: ServiceKey,
    instance: InstanceKey,
    beat: Option<BeatInfo>,
) -> Result<BeatResponse, NacosError> {
    let answer =
        |interval: u64, code: i32| BeatResponse { client_beat_interval: interval, code, light_beat_enabled: true };
    match ctx.registry.heartbeat(key.clone(), instance.clone()).await {
        Ok(timing) => Ok(answer(timing.interval_ms, CODE_OK)),
        Err(RegistryError::ServiceNotFound { .. } | RegistryError::InstanceNotFound { .. }) => {
            let default_interval = ctx.registry.view().read(|r| r.config().lease.interval_ms);
            let Some(beat) = beat else {
                return Ok(answer(default_interval, CODE_RESOURCE_NOT_FOUND));
            };
            let fields = InstanceFields { weight: beat.weight, metadata: beat.metadata, ..InstanceFields::default() };
            let spec = input::instance_spec(instance.clone(), fields)?;
            ctx.registry.register_instance(key.clone(), spec).await?;
            let timing = ctx.registry.instance(&key, &instance)?.timing;
            Ok(answer(timing.interval_ms, CODE_OK))
        }
        Err(err) => Err(err.into()),
    }
}

/// Every instance of a service as `ip:port_healthy`.
pub fn statuses(ctx: &NacosContext, key: &ServiceKey) -> Result<Statuses, NacosError> {
    let snapshot = ctx.registry.snapshot(key)?;
    let ips = snapshot
        .instances
        .iter()
        .map(|i| {
            format!("{}_{}", std::net::SocketAddr::new(i.instance.key.ip, i.instance.key.port), i.instance.healthy)
        })
        .collect();
    Ok(Statuses { ips })
}

/// A metadata update of several instances of one service.
pub struct MetadataBatch {
    pub key: ServiceKey,
    pub metadata: BTreeMap<String, String>,
    /// The instances to change; `None`: all of the service's.
    pub instances: Option<Vec<InstanceKey>>,
    /// Remove the keys of `metadata` instead of merging it in.
    pub remove: bool,
}

/// Merges `metadata` into each instance of the batch, or removes its keys;
/// answers the ids of the instances changed (unknown ones are skipped).
pub async fn update_metadata(ctx: &NacosContext, batch: MetadataBatch) -> Result<BatchUpdated, NacosError> {
    let MetadataBatch { key, metadata, instances, remove } = batch;
    let instances = match instances {
        Some(instances) => instances,
        None => ctx.registry.snapshot(&key)?.instances.iter().map(|i| i.instance.key.clone()).collect(),
    };
    let mut updated = Vec::new();
    for instance in instances {
        let patch = if remove {
            InstancePatch { remove_metadata: metadata.keys().cloned().collect(), ..InstancePatch::default() }
        } else {
            InstancePatch { metadata: Some(metadata.clone()), ..InstancePatch::default() }
        };
        match ctx.registry.patch_instance(key.clone(), instance.clone(), patch).await {
            Ok(_) => updated.push(instance.default_instance_id(&key)),
            Err(RegistryError::InstanceNotFound { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(BatchUpdated { updated })
}

/// Sets an instance's health by hand: as in Nacos, only for instances not
/// kept alive by heartbeats; in an `ap` namespace health follows heartbeats.
pub async fn set_health(
    ctx: &NacosContext,
    key: ServiceKey,
    instance: InstanceKey,
    healthy: bool,
) -> Result<Ack, NacosError> {
    let mode = ctx.registry.namespace(&key.namespace)?.spec.mode;
    if mode == Mode::Ap {
        return Err(RegistryError::ModeMismatch {
            namespace: key.namespace.to_string(),
            mode,
            detail: "the health of ephemeral instances follows their heartbeats and cannot be set by hand".to_owned(),
        }
        .into());
    }
    let patch = InstancePatch { healthy: Some(healthy), ..InstancePatch::default() };
    Ack::after(ctx.registry.patch_instance(key, instance, patch).await)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn host(ip: &str) -> Host {
        Host {
            instance_id: format!("{ip}#8080#DEFAULT#g@@s"),
            ip: ip.to_owned(),
            port: 8080,
            weight: 1.5,
            healthy: true,
            enabled: true,
            ephemeral: true,
            cluster_name: "DEFAULT".to_owned(),
            service_name: "g@@s".to_owned(),
            metadata: BTreeMap::from([("zone".to_owned(), "a \"quoted\" \u{e9}".to_owned())]),
            instance_heart_beat_interval: 5_000,
            instance_id_generator: "simple".to_owned(),
            instance_heart_beat_time_out: 15_000,
            ip_delete_timeout: 30_000,
        }
    }

    /// The three buffers a list is written as join into exactly what
    /// serializing the answer gives, escapes included.
    #[test]
    fn the_parts_of_a_list_join_into_its_json() {
        for (hosts, clusters, reached) in
            [(vec![host("10.0.0.1"), host("10.0.0.2")], "a\"b,\u{e9}", true), (Vec::new(), "", false)]
        {
            let entry = Arc::new(CachedList {
                revision: 7,
                mode: Mode::Ap,
                reached_protect_threshold: reached,
                body: CachedBody::Fragment(to_raw(&hosts)),
            });
            let list = HostList {
                info: ServiceInfo {
                    name: "g@@s\\x".to_owned(),
                    group_name: "g".to_owned(),
                    clusters: clusters.to_owned(),
                    cache_millis: 10_000,
                    hosts: CachedHosts(entry),
                    last_ref_time: 1_764_000_000_123,
                    checksum: String::new(),
                    all_ips: false,
                    reach_protection_threshold: reached,
                    valid: true,
                },
                revision: 7,
                mode: Mode::Ap,
            };
            let joined: Vec<u8> = list.json_parts().iter().flat_map(|part| part.iter().copied()).collect();
            assert_eq!(String::from_utf8(joined).unwrap(), serde_json::to_string(&list).unwrap());
        }
    }
}
