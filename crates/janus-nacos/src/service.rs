//! Services: define, change, delete, describe and list them, and set how a
//! cluster's persistent instances are checked.
//!
//! Difference from Nacos: "create service" always makes a persistent service
//! in Nacos; in Janus a service takes the mode of its namespace.

use std::collections::BTreeSet;

use janus_api::nacos::{ClusterDetail, HealthChecker, Selector, ServiceDetail};
use janus_core::model::{ClusterSettings, HealthCheck, ServicePatch, ServiceSettings};
use janus_core::name::{ClusterName, GroupName, NamespaceId, ServiceKey};
use serde::Serialize;

use crate::{Ack, NacosContext, NacosError};

/// Defines a service.
pub async fn create(ctx: &NacosContext, key: ServiceKey, settings: ServiceSettings) -> Result<Ack, NacosError> {
    Ack::after(ctx.registry.create_service(key, settings).await)
}

/// Changes a service's settings.
pub async fn update(ctx: &NacosContext, key: ServiceKey, patch: ServicePatch) -> Result<Ack, NacosError> {
    Ack::after(ctx.registry.update_service(key, patch).await)
}

/// Deletes a service; refused while instances remain, as in Nacos.
pub async fn delete(ctx: &NacosContext, key: ServiceKey) -> Result<Ack, NacosError> {
    Ack::after(ctx.registry.delete_service(key).await)
}

/// Sets how a cluster's persistent instances are checked.
pub async fn set_cluster(
    ctx: &NacosContext,
    key: ServiceKey,
    cluster: ClusterName,
    settings: ClusterSettings,
) -> Result<Ack, NacosError> {
    Ack::after(ctx.registry.set_cluster(key, cluster, settings).await)
}

/// A service with its settings and clusters: those configured and those its
/// instances are in.
pub fn get(ctx: &NacosContext, key: &ServiceKey) -> Result<ServiceDetail, NacosError> {
    let info = ctx.registry.service(key)?;
    let snapshot = ctx.registry.snapshot(key)?;
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
    Ok(ServiceDetail {
        namespace_id: key.namespace.to_string(),
        group_name: key.group.to_string(),
        name: key.service.to_string(),
        protect_threshold: info.settings.protect_threshold,
        metadata: info.settings.metadata.clone(),
        selector: Selector { kind: "none".to_owned() },
        clusters: clusters.into_iter().map(detail).collect(),
    })
}

/// Which page of service names to list.
pub struct ServiceListQuery {
    pub namespace: NamespaceId,
    /// Only this group's services; `None`: every group's.
    pub group: Option<GroupName>,
    /// The page, from 1.
    pub page: u64,
    /// Names per page, at least 1; more than the largest page
    /// ([`NacosContext::max_page_size`]) gets the largest page.
    pub size: u64,
}

/// A page of service names and how many services there are in all
/// (Nacos v1 names the list `doms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePage {
    pub count: u64,
    pub services: Vec<String>,
}

/// A page of service names.
pub fn list(ctx: &NacosContext, query: &ServiceListQuery) -> Result<ServicePage, NacosError> {
    let size = query.size.min(ctx.max_page_size.max(1));
    let (count, services) = ctx.registry.services(&query.namespace, query.group.as_ref(), None, query.page, size)?;
    Ok(ServicePage { count, services: services.into_iter().map(|s| s.key.service.to_string()).collect() })
}
