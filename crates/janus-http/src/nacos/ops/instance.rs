//! Instances: register, update, patch, deregister, get, list (also as a
//! blocking query), beat, statuses, batch metadata updates and manual health
//! updates.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use janus_api::nacos::{
    BatchUpdated, BeatInfo, BeatResponse, CODE_OK, CODE_RESOURCE_NOT_FOUND, Host, InstanceDetail, ServiceInfo, Statuses,
};
use janus_core::model::{InstancePatch, InstanceSpec, Mode};
use janus_core::name::{ClusterName, InstanceKey, ServiceKey};
use janus_core::select::Selection;
use janus_core::service::ReadFence;
use janus_core::{RegistryError, validate};
use serde::ser::Error as _;
use serde::{Serialize, Serializer};

use super::Ack;
use crate::AppState;
use crate::error::NacosError;
use crate::list_cache::{CachedBody, CachedList, ListKey, ListShape, to_raw};
use crate::{consistency, watch};

/// Registers an instance (or replaces it, as a registration does).
pub(crate) async fn register(state: &AppState, key: ServiceKey, spec: InstanceSpec) -> Result<Ack, NacosError> {
    Ack::after(state.registry.register_instance(key, spec).await)
}

/// Replaces an existing instance.
pub(crate) async fn update(state: &AppState, key: ServiceKey, spec: InstanceSpec) -> Result<Ack, NacosError> {
    Ack::after(state.registry.update_instance(key, spec).await)
}

/// Changes only the fields `patch` gives.
pub(crate) async fn patch(
    state: &AppState,
    key: ServiceKey,
    instance: InstanceKey,
    patch: InstancePatch,
) -> Result<Ack, NacosError> {
    Ack::after(state.registry.patch_instance(key, instance, patch).await)
}

/// Removes an instance; an unknown instance or service is no error, as in Nacos.
pub(crate) async fn deregister(state: &AppState, key: ServiceKey, instance: InstanceKey) -> Result<Ack, NacosError> {
    match state.registry.deregister_instance(key, instance).await {
        Ok(_) | Err(RegistryError::ServiceNotFound { .. } | RegistryError::InstanceNotFound { .. }) => Ok(Ack),
        Err(err) => Err(err.into()),
    }
}

/// One instance.
pub(crate) fn get(state: &AppState, key: &ServiceKey, instance: &InstanceKey) -> Result<InstanceDetail, NacosError> {
    let found = state.registry.instance(key, instance)?;
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

/// What an instance list asks for.
pub(crate) struct ListQuery {
    pub(crate) key: ServiceKey,
    /// The cluster filter as the client wrote it, echoed in the answer.
    pub(crate) clusters_text: String,
    /// The cluster filter; empty means every cluster.
    pub(crate) clusters: Vec<ClusterName>,
    pub(crate) healthy_only: bool,
    /// A blocking query: answer once the service's revision is not this one,
    /// or when the wait ends.
    pub(crate) index: Option<u64>,
    /// The wait of a blocking query as written (`30s`; see [`watch::wait_for`]).
    pub(crate) wait: Option<String>,
    /// `local` or `linearizable` as written (see [`consistency::fence`]).
    pub(crate) consistency: Option<String>,
}

/// An instance list: Nacos's `ServiceInfo`, and what the read saw (the
/// service's revision and mode, and the read's fence). It serializes as the
/// `ServiceInfo`; Nacos v1 tells the rest in headers.
pub(crate) struct HostList {
    pub(crate) info: ServiceInfo<CachedHosts>,
    pub(crate) revision: u64,
    pub(crate) mode: Mode,
    pub(crate) fence: ReadFence,
}

impl Serialize for HostList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.info.serialize(serializer)
    }
}

/// The `hosts` of a list as the list cache holds them: encoded once per
/// revision, embedded as they are.
pub(crate) struct CachedHosts(Arc<CachedList>);

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

/// The instances of a service (also a blocking query), from the list cache
/// while the service's revision is unchanged.
pub(crate) async fn list(state: &AppState, query: ListQuery) -> Result<HostList, NacosError> {
    let ListQuery { key, clusters_text, clusters, healthy_only, index, wait, consistency } = query;
    watch::block_on_service::<NacosError>(&*state.registry, &key, index, wait.as_deref(), state).await?;
    let fence = consistency::fence(state, &key.namespace, consistency.as_deref()).await?;
    let grouped = key.grouped_name();
    let list_key = ListKey { service: key.clone(), clusters, healthy_only, shape: ListShape::NacosHosts };
    let entry = state.lists.get_or_build(&*state.registry, list_key, |_, selection| {
        CachedBody::Fragment(to_raw(&hosts(selection, &key, &grouped)))
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
    Ok(HostList { info, revision, mode, fence })
}

fn hosts(selection: &Selection, key: &ServiceKey, grouped: &str) -> Vec<Host> {
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
pub(crate) async fn beat(
    state: &AppState,
    key: ServiceKey,
    instance: InstanceKey,
    beat: Option<BeatInfo>,
) -> Result<BeatResponse, NacosError> {
    let answer =
        |interval: u64, code: i32| BeatResponse { client_beat_interval: interval, code, light_beat_enabled: true };
    match state.registry.heartbeat(key.clone(), instance.clone()).await {
        Ok(timing) => Ok(answer(timing.interval_ms, CODE_OK)),
        Err(RegistryError::ServiceNotFound { .. } | RegistryError::InstanceNotFound { .. }) => {
            let default_interval = state.registry.view().read(|r| r.config().lease.interval_ms);
            let Some(beat) = beat else {
                return Ok(answer(default_interval, CODE_RESOURCE_NOT_FOUND));
            };
            validate::check_instance_ip("ip", instance.ip)?;
            let mut spec = InstanceSpec::new(instance.clone());
            spec.weight = beat.weight.unwrap_or(1.0);
            spec.metadata = beat.metadata;
            state.registry.register_instance(key.clone(), spec).await?;
            let timing = state.registry.instance(&key, &instance)?.timing;
            Ok(answer(timing.interval_ms, CODE_OK))
        }
        Err(err) => Err(err.into()),
    }
}

/// Every instance of a service as `ip:port_healthy`.
pub(crate) fn statuses(state: &AppState, key: &ServiceKey) -> Result<Statuses, NacosError> {
    let snapshot = state.registry.snapshot(key)?;
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
pub(crate) struct MetadataBatch {
    pub(crate) key: ServiceKey,
    pub(crate) metadata: BTreeMap<String, String>,
    /// The instances to change; `None`: all of the service's.
    pub(crate) instances: Option<Vec<InstanceKey>>,
    /// Remove the keys of `metadata` instead of merging it in.
    pub(crate) remove: bool,
}

/// Merges `metadata` into each instance of the batch, or removes its keys;
/// answers the ids of the instances changed (unknown ones are skipped).
pub(crate) async fn update_metadata(state: &AppState, batch: MetadataBatch) -> Result<BatchUpdated, NacosError> {
    let MetadataBatch { key, metadata, instances, remove } = batch;
    let instances = match instances {
        Some(instances) => instances,
        None => state.registry.snapshot(&key)?.instances.iter().map(|i| i.instance.key.clone()).collect(),
    };
    let mut updated = Vec::new();
    for instance in instances {
        let patch = if remove {
            InstancePatch { remove_metadata: metadata.keys().cloned().collect(), ..InstancePatch::default() }
        } else {
            InstancePatch { metadata: Some(metadata.clone()), ..InstancePatch::default() }
        };
        match state.registry.patch_instance(key.clone(), instance.clone(), patch).await {
            Ok(_) => updated.push(instance.default_instance_id(&key)),
            Err(RegistryError::InstanceNotFound { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(BatchUpdated { updated })
}

/// Sets an instance's health by hand: as in Nacos, only for instances not
/// kept alive by heartbeats; in an `ap` namespace health follows heartbeats.
pub(crate) async fn set_health(
    state: &AppState,
    key: ServiceKey,
    instance: InstanceKey,
    healthy: bool,
) -> Result<Ack, NacosError> {
    let mode = state.registry.namespace(&key.namespace)?.spec.mode;
    if mode == Mode::Ap {
        return Err(RegistryError::ModeMismatch {
            namespace: key.namespace.to_string(),
            mode,
            detail: "the health of ephemeral instances follows their heartbeats and cannot be set by hand".to_owned(),
        }
        .into());
    }
    let patch = InstancePatch { healthy: Some(healthy), ..InstancePatch::default() };
    Ack::after(state.registry.patch_instance(key, instance, patch).await)
}
