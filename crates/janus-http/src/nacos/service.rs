//! `/nacos/v1/ns/service` and `/nacos/v1/ns/service/list`.
//!
//! Difference from Nacos: v1 "create service" always makes a persistent
//! service in Nacos; in Janus a service takes the mode of its namespace.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::response::Response;
use janus_api::nacos::{ClusterDetail, Selector, ServiceDetail, ServiceNames};
use janus_core::model::{ServicePatch, ServiceSettings};
use janus_core::name::{GroupName, NamespaceId, PUBLIC_NAMESPACE};

use super::{Params, ok};
use crate::AppState;
use crate::error::{ApiError, NacosError};

fn threshold(params: &Params) -> Result<Option<f64>, ApiError> {
    params.number("protectThreshold")
}

/// `POST /nacos/v1/ns/service`.
pub(crate) async fn create(State(state): State<AppState>, params: Params) -> Result<Response, NacosError> {
    let key = params.service_key()?;
    let settings = ServiceSettings::new(threshold(&params)?, params.metadata()?.unwrap_or_default())?;
    state.registry.create_service(key, settings).await?;
    Ok(ok())
}

/// `PUT /nacos/v1/ns/service`.
pub(crate) async fn update(State(state): State<AppState>, params: Params) -> Result<Response, NacosError> {
    let key = params.service_key()?;
    let patch = ServicePatch { protect_threshold: threshold(&params)?, metadata: params.metadata()? };
    state.registry.update_service(key, patch).await?;
    Ok(ok())
}

/// `DELETE /nacos/v1/ns/service`: refused while instances remain, as in Nacos.
pub(crate) async fn delete(State(state): State<AppState>, params: Params) -> Result<Response, NacosError> {
    let key = params.service_key()?;
    state.registry.delete_service(key).await?;
    Ok(ok())
}

/// `GET /nacos/v1/ns/service`.
pub(crate) async fn get(
    State(state): State<AppState>,
    params: Params,
) -> Result<axum::Json<ServiceDetail>, NacosError> {
    let key = params.service_key()?;
    let info = state.registry.service(&key)?;
    let snapshot = state.registry.snapshot(&key)?;
    let clusters: BTreeSet<String> = snapshot.instances.iter().map(|i| i.instance.key.cluster.to_string()).collect();
    Ok(axum::Json(ServiceDetail {
        namespace_id: key.namespace.to_string(),
        group_name: key.group.to_string(),
        name: key.service.to_string(),
        protect_threshold: info.settings.protect_threshold,
        metadata: info.settings.metadata,
        selector: Selector { kind: "none".to_owned() },
        clusters: clusters
            .into_iter()
            .map(|name| ClusterDetail {
                name,
                health_checker: Selector { kind: "TCP".to_owned() },
                metadata: Default::default(),
            })
            .collect(),
    }))
}

/// `GET /nacos/v1/ns/service/list?pageNo=1&pageSize=10`.
pub(crate) async fn list(
    State(state): State<AppState>,
    params: Params,
) -> Result<axum::Json<ServiceNames>, NacosError> {
    let namespace = NamespaceId::new(params.get("namespaceId").unwrap_or(PUBLIC_NAMESPACE)).map_err(ApiError::from)?;
    let group = params.get("groupName").map(GroupName::new).transpose().map_err(ApiError::from)?;
    let page = page_param(&params, "pageNo", 1)?;
    let size = page_param(&params, "pageSize", 10)?.min(state.config.max_page_size);
    let (count, services) = state.registry.services(&namespace, group.as_ref(), page, size)?;
    Ok(axum::Json(ServiceNames { count, doms: services.into_iter().map(|s| s.key.service.to_string()).collect() }))
}

fn page_param(params: &Params, name: &str, default: u64) -> Result<u64, ApiError> {
    match params.get(name) {
        None => Ok(default),
        Some(text) => {
            text.trim().parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ApiError::invalid(format!("invalid {name}: must be a positive whole number, got {text:?}"))
            })
        }
    }
}
