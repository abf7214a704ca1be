//! `/v1/namespaces/{ns}/services[/{service}]`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use janus_api::native::{CreateService, Service, ServiceList, UpdateService};
use janus_core::model::{ServicePatch, ServiceSettings};
use janus_core::name::{GroupName, NamespaceId};
use serde::Deserialize;

use crate::AppState;
use crate::consistency;
use crate::convert;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::native::read_headers;
use crate::watch;

#[derive(Debug, Deserialize)]
pub(crate) struct GroupQuery {
    group: Option<String>,
    consistency: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    group: Option<String>,
    /// Only services whose name contains this (ASCII case ignored).
    search: Option<String>,
    page: Option<u64>,
    page_size: Option<u64>,
    index: Option<u64>,
    wait: Option<String>,
    consistency: Option<String>,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Path(ns): Path<String>,
    Json(body): Json<CreateService>,
) -> Result<Response, ApiError> {
    let key = convert::service_key(&ns, body.group.as_deref(), &body.name)?;
    let settings = ServiceSettings::new(body.protect_threshold, body.metadata)?;
    let info = state.registry.create_service(key, settings).await?;
    Ok((StatusCode::CREATED, Json(convert::service(info))).into_response())
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Path(ns): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let namespace = NamespaceId::new(&ns)?;
    let group = query.group.as_deref().map(GroupName::new).transpose()?;
    let (page, page_size) = crate::native::page(query.page, query.page_size, state.config.max_page_size)?;
    if let Some(index) = query.index {
        let wait = watch::wait_for(query.wait.as_deref(), state.config.default_wait, state.config.max_wait)?;
        state.registry.namespace(&namespace)?;
        tokio::select! {
            _ = state.registry.wait_namespace(&namespace, index, wait) => {}
            () = state.shutdown.cancelled() => {}
        }
    }
    let fence = consistency::fence(&state, &namespace, query.consistency.as_deref()).await?;
    let info = state.registry.namespace(&namespace)?;
    let (total, services) =
        state.registry.services(&namespace, group.as_ref(), query.search.as_deref(), page, page_size)?;
    let body = ServiceList {
        namespace: namespace.to_string(),
        mode: convert::mode(info.spec.mode),
        revision: info.revision,
        total,
        page,
        page_size,
        services: services.into_iter().map(convert::service).collect(),
    };
    let mut headers = read_headers(info.revision, info.spec.mode);
    consistency::headers(&mut headers, &fence);
    Ok((headers, Json(body)).into_response())
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path((ns, service)): Path<(String, String)>,
    Query(query): Query<GroupQuery>,
) -> Result<Response, ApiError> {
    let key = convert::service_key(&ns, query.group.as_deref(), &service)?;
    let fence = consistency::fence(&state, &key.namespace, query.consistency.as_deref()).await?;
    let info = state.registry.service(&key)?;
    let mut headers = read_headers(info.revision, info.mode);
    consistency::headers(&mut headers, &fence);
    Ok((headers, Json(convert::service(info))).into_response())
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path((ns, service)): Path<(String, String)>,
    Query(query): Query<GroupQuery>,
    Json(body): Json<UpdateService>,
) -> Result<Json<Service>, ApiError> {
    let key = convert::service_key(&ns, query.group.as_deref(), &service)?;
    let patch = ServicePatch { protect_threshold: body.protect_threshold, metadata: body.metadata };
    Ok(Json(convert::service(state.registry.update_service(key, patch).await?)))
}

/// `PUT /v1/namespaces/{ns}/services/{service}/clusters/{cluster}`.
pub(crate) async fn put_cluster(
    State(state): State<AppState>,
    Path((ns, service, cluster)): Path<(String, String, String)>,
    Query(query): Query<GroupQuery>,
    Json(body): Json<janus_api::native::PutCluster>,
) -> Result<Json<Service>, ApiError> {
    let key = convert::service_key(&ns, query.group.as_deref(), &service)?;
    let cluster = janus_core::ClusterName::new(&cluster)?;
    let settings = janus_core::model::ClusterSettings {
        health_check: body.health_check.map(convert::health_check_in).unwrap_or_default(),
        metadata: body.metadata,
    };
    Ok(Json(convert::service(state.registry.set_cluster(key, cluster, settings).await?)))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((ns, service)): Path<(String, String)>,
    Query(query): Query<GroupQuery>,
) -> Result<StatusCode, ApiError> {
    let key = convert::service_key(&ns, query.group.as_deref(), &service)?;
    state.registry.delete_service(key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/namespaces/{ns}/services/{service}/subscribers`: this node's
/// gRPC subscriptions to the service (the console shows them).
pub(crate) async fn subscribers(
    State(state): State<AppState>,
    Path((ns, service)): Path<(String, String)>,
    Query(query): Query<GroupQuery>,
) -> Result<Json<janus_api::native::SubscriberList>, ApiError> {
    let key = convert::service_key(&ns, query.group.as_deref(), &service)?;
    state.registry.namespace(&key.namespace)?;
    let subscribers = state
        .registry
        .subscribers(&key)
        .into_iter()
        .map(|s| janus_api::native::Subscriber {
            connection: s.connection,
            remote: s.remote,
            client_version: s.client_version,
            app: s.app,
            clusters: s.clusters,
            acked_revision: s.acked_revision,
        })
        .collect();
    Ok(Json(janus_api::native::SubscriberList {
        namespace: key.namespace.to_string(),
        group: key.group.to_string(),
        service: key.service.to_string(),
        node: state.registry.cluster_status().node,
        subscribers,
    }))
}
