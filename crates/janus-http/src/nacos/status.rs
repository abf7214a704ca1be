//! Instance statuses, batch metadata updates and manual health updates.

use axum::extract::State;
use axum::response::Response;
use janus_api::nacos::{BatchUpdated, Statuses};
use janus_core::model::InstancePatch;
use janus_core::name::{InstanceKey, ServiceKey};
use janus_core::{Mode, RegistryError, validate};
use serde::Deserialize;

use super::Params;
use crate::AppState;
use crate::convert;
use crate::error::{ApiError, NacosError};
use crate::extract::Json;

/// `GET /nacos/v1/ns/instance/statuses?key=[namespace##]group@@service`.
pub(crate) async fn statuses(State(state): State<AppState>, params: Params) -> Result<Json<Statuses>, NacosError> {
    let key = params.required("key")?;
    let (namespace, service) = key.split_once("##").unwrap_or((janus_core::name::PUBLIC_NAMESPACE, key));
    let (group, service) = service.split_once("@@").map_or((None, service), |(g, s)| (Some(g), s));
    let key = convert::service_key(namespace, group, service)?;
    let snapshot = state.registry.snapshot(&key)?;
    let ips = snapshot
        .instances
        .iter()
        .map(|i| {
            format!("{}_{}", std::net::SocketAddr::new(i.instance.key.ip, i.instance.key.port), i.instance.healthy)
        })
        .collect();
    Ok(Json(Statuses { ips }))
}

/// One entry of the `instances` parameter of a batch update.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstanceRef {
    ip: String,
    port: i64,
    #[serde(default)]
    cluster_name: Option<String>,
}

/// The instances a batch names: those listed in `instances` (JSON), or all.
fn batch_targets(params: &Params, key: &ServiceKey, state: &AppState) -> Result<Vec<InstanceKey>, NacosError> {
    match params.get("instances") {
        Some(text) if text.trim() != "[]" => {
            let refs: Vec<InstanceRef> = serde_json::from_str(text).map_err(|e| {
                ApiError::invalid(format!("invalid instances: expected [{{\"ip\",\"port\",\"clusterName\"}}]: {e}"))
            })?;
            refs.into_iter()
                .map(|r| {
                    let cluster = convert::cluster(r.cluster_name.as_deref())?;
                    Ok(InstanceKey::new(cluster, validate::parse_ip(&r.ip)?, validate::check_port(r.port)?))
                })
                .collect()
        }
        _ => Ok(state.registry.snapshot(key)?.instances.iter().map(|i| i.instance.key.clone()).collect()),
    }
}

async fn batch(state: &AppState, params: &Params, remove: bool) -> Result<Json<BatchUpdated>, NacosError> {
    let key = params.service_key()?;
    let metadata = params.metadata()?.ok_or_else(|| ApiError::invalid("Param 'metadata' is required."))?;
    let mut updated = Vec::new();
    for instance in batch_targets(params, &key, state)? {
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
    Ok(Json(BatchUpdated { updated }))
}

/// `PUT /nacos/v1/ns/instance/metadata/batch`: merges `metadata` into each instance.
pub(crate) async fn put_metadata(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<BatchUpdated>, NacosError> {
    batch(&state, &params, false).await
}

/// `DELETE /nacos/v1/ns/instance/metadata/batch`: removes the keys of `metadata`.
pub(crate) async fn delete_metadata(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<BatchUpdated>, NacosError> {
    batch(&state, &params, true).await
}

/// `PUT /nacos/v1/ns/health/instance`: as in Nacos, only for instances that are
/// not kept alive by heartbeats; in an `ap` namespace health follows heartbeats.
pub(crate) async fn health(State(state): State<AppState>, params: Params) -> Result<Response, NacosError> {
    let key = params.service_key()?;
    let instance = params.instance_key(None)?;
    let healthy = params.flag(&["healthy"], true)?;
    if params.get("healthy").is_none() {
        return Err(ApiError::invalid("Param 'healthy' is required.").into());
    }
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
    state.registry.patch_instance(key, instance, patch).await?;
    Ok(super::ok())
}
