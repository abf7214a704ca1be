//! `/nacos/v1/ns/service` and `/nacos/v1/ns/service/list`.
//!
//! Difference from Nacos: v1 "create service" always makes a persistent
//! service in Nacos; in Janus a service takes the mode of its namespace.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::response::Response;
use janus_api::nacos::{ClusterDetail, HealthChecker, Selector, ServiceDetail, ServiceNames};
use janus_core::model::{ClusterSettings, HealthCheck, ServicePatch, ServiceSettings};
use janus_core::name::{GroupName, NamespaceId, PUBLIC_NAMESPACE};
use janus_core::{ClusterName, RegistryError, validate};

use super::{Params, ok};
use crate::AppState;
use crate::error::{ApiError, NacosError};
use crate::extract::Json;

fn threshold(params: &Params) -> Result<Option<f64>, RegistryError> {
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
pub(crate) async fn get(State(state): State<AppState>, params: Params) -> Result<Json<ServiceDetail>, NacosError> {
    let key = params.service_key()?;
    let info = state.registry.service(&key)?;
    let snapshot = state.registry.snapshot(&key)?;
    let mut clusters: BTreeSet<String> =
        snapshot.instances.iter().map(|i| i.instance.key.cluster.to_string()).collect();
    clusters.extend(info.settings.clusters.keys().map(ToString::to_string));
    let settings = &info.settings.clusters;
    let detail = |name: String| {
        let configured = ClusterName::new(&name).ok().and_then(|c| settings.get(&c).cloned()).unwrap_or_default();
        let (kind, path) = match configured.health_check {
            HealthCheck::Tcp { .. } => ("TCP", None),
            HealthCheck::Http { path, .. } => ("HTTP", Some(path)),
            HealthCheck::None => ("NONE", None),
        };
        ClusterDetail {
            name,
            health_checker: HealthChecker { kind: kind.to_owned(), path },
            metadata: configured.metadata,
        }
    };
    Ok(Json(ServiceDetail {
        namespace_id: key.namespace.to_string(),
        group_name: key.group.to_string(),
        name: key.service.to_string(),
        protect_threshold: info.settings.protect_threshold,
        metadata: info.settings.metadata.clone(),
        selector: Selector { kind: "none".to_owned() },
        clusters: clusters.into_iter().map(detail).collect(),
    }))
}

/// `PUT /nacos/v1/ns/cluster`: how a cluster's persistent instances are
/// checked. `healthChecker` is `{"type":"TCP"|"HTTP"|"NONE","path":…}`;
/// `checkPort` is used when `useInstancePort4Check` is false.
pub(crate) async fn update_cluster(State(state): State<AppState>, params: Params) -> Result<Response, NacosError> {
    let key = params.service_key()?;
    let cluster = ClusterName::new(params.required("clusterName")?)?;
    let checker: serde_json::Value = serde_json::from_str(params.get("healthChecker").unwrap_or(r#"{"type":"TCP"}"#))
        .map_err(|e| ApiError::invalid(format!("healthChecker is not JSON: {e}")))?;
    let use_instance_port = params.flag(&["useInstancePort4Check"], true)?;
    let port = match params.get("checkPort").filter(|_| !use_instance_port) {
        Some(text) => {
            let port =
                text.trim().parse::<i64>().map_err(|_| ApiError::invalid(format!("invalid checkPort: {text:?}")))?;
            Some(validate::check_port(port)?)
        }
        None => None,
    };
    if !use_instance_port && port.is_none() {
        return Err(ApiError::invalid("checkPort is required when useInstancePort4Check is false").into());
    }
    let health_check = match checker["type"].as_str().map(str::to_ascii_uppercase).as_deref() {
        Some("TCP") => HealthCheck::Tcp { port },
        Some("HTTP") => HealthCheck::Http { path: checker["path"].as_str().unwrap_or("/").to_owned(), port },
        Some("NONE") => HealthCheck::None,
        _ => return Err(ApiError::invalid("healthChecker.type must be TCP, HTTP or NONE").into()),
    };
    let settings = ClusterSettings { health_check, metadata: params.metadata()?.unwrap_or_default() };
    state.registry.set_cluster(key, cluster, settings).await?;
    Ok(ok())
}

/// `GET /nacos/v1/ns/service/list?pageNo=1&pageSize=10`.
pub(crate) async fn list(State(state): State<AppState>, params: Params) -> Result<Json<ServiceNames>, NacosError> {
    let namespace = NamespaceId::new(params.get("namespaceId").unwrap_or(PUBLIC_NAMESPACE))?;
    let group = params.get("groupName").map(GroupName::new).transpose()?;
    let page = page_param(&params, "pageNo", 1, u64::MAX)?;
    let size = page_param(&params, "pageSize", 10, state.config.max_page_size)?;
    let (count, services) = state.registry.services(&namespace, group.as_ref(), page, size)?;
    Ok(Json(ServiceNames { count, doms: services.into_iter().map(|s| s.key.service.to_string()).collect() }))
}

/// `pageNo` or `pageSize`: a whole number, clamped into `1..=max` as Nacos
/// clamps the page (a page below 1 is the first); anything else is a 400.
fn page_param(params: &Params, name: &str, default: u64, max: u64) -> Result<u64, ApiError> {
    match params.get(name) {
        None => Ok(default),
        Some(text) => {
            let n = text
                .trim()
                .parse::<i64>()
                .map_err(|_| ApiError::invalid(format!("invalid {name}: must be a whole number, got {text:?}")))?;
            Ok(u64::try_from(n).unwrap_or(0).clamp(1, max.max(1)))
        }
    }
}
