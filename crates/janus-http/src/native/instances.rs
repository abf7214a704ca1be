//! `/v1/namespaces/{ns}/services/{service}/instances[/{ip}/{port}[/heartbeat]]`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use janus_api::native::{HeartbeatAck, InstanceList, PatchInstance, RegisterInstance, WriteAck};
use janus_core::model::{InstancePatch, InstanceSpec};
use janus_core::name::{InstanceKey, ServiceKey};
use janus_core::service::WriteOutcome;
use janus_core::validate;
use janus_nacos::input::{self, InstanceFields};
use janus_nacos::list_cache::{CachedBody, ListKey, ListShape};
use serde::Deserialize;

use crate::AppState;
use crate::consistency;
use crate::convert;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query, to_json};
use crate::native::read_headers;
use crate::watch;

#[derive(Debug, Deserialize)]
pub(crate) struct InstanceQuery {
    group: Option<String>,
    cluster: Option<String>,
    consistency: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    group: Option<String>,
    cluster: Option<String>,
    healthy_only: Option<bool>,
    /// Every instance as stored: disabled ones too, health as checked (the
    /// protect threshold not applied), with lease times (the console's
    /// view), paged like the service list.
    all: Option<bool>,
    page: Option<u64>,
    page_size: Option<u64>,
    index: Option<u64>,
    wait: Option<String>,
    consistency: Option<String>,
}

fn ack(key: &ServiceKey, outcome: WriteOutcome) -> Json<WriteAck> {
    Json(WriteAck {
        namespace: key.namespace.to_string(),
        mode: convert::mode(outcome.mode),
        revision: outcome.revision,
    })
}

/// What a registration or full update asks for; the address must be one
/// clients can connect to ([`input::instance_spec`]).
fn spec(instance: InstanceKey, body: RegisterInstance) -> Result<InstanceSpec, ApiError> {
    let fields = InstanceFields {
        weight: body.weight,
        healthy: body.healthy.unwrap_or(true),
        enabled: body.enabled.unwrap_or(true),
        ephemeral: body.ephemeral,
        metadata: body.metadata,
        custom_id: body.instance_id,
    };
    Ok(input::instance_spec(instance, fields)?)
}

/// The instance named by the path and the `cluster` query parameter.
fn addressed(ip: &str, port: &str, cluster: Option<&str>) -> Result<InstanceKey, ApiError> {
    let port: i64 = port
        .parse()
        .map_err(|_| ApiError::invalid(format!("invalid port: must be between 1 and 65535, got {port:?}")))?;
    Ok(input::instance_key(ip, port, cluster)?)
}

pub(crate) async fn register(
    State(state): State<AppState>,
    Path((ns, service)): Path<(String, String)>,
    Query(query): Query<InstanceQuery>,
    Json(body): Json<RegisterInstance>,
) -> Result<Response, ApiError> {
    let key = convert::service_key(&ns, query.group.as_deref(), &service)?;
    let ip = body.ip.as_deref().ok_or_else(|| ApiError::invalid("invalid ip: required"))?;
    let port = body.port.ok_or_else(|| ApiError::invalid("invalid port: required"))?;
    let instance = input::instance_key(ip, port, body.cluster.as_deref().or(query.cluster.as_deref()))?;
    let outcome = state.registry.register_instance(key.clone(), spec(instance, body)?).await?;
    Ok((StatusCode::CREATED, ack(&key, outcome)).into_response())
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Path((ns, service)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let key = convert::service_key(&ns, query.group.as_deref(), &service)?;
    let clusters = input::cluster_filter(query.cluster.as_deref())?;
    watch::block_on_service::<ApiError>(&*state.registry, &key, query.index, query.wait.as_deref(), &state).await?;
    let fence = consistency::fence(&state, &key.namespace, query.consistency.as_deref()).await?;
    if query.all == Some(true) {
        let page = crate::native::page(query.page, query.page_size, state.config.max_page_size)?;
        return all_instances(&state, &key, &clusters, page, &fence);
    }
    let healthy_only = query.healthy_only.unwrap_or(false);
    let list_key = ListKey { service: key.clone(), clusters, healthy_only, shape: ListShape::Native };
    let entry = state.nacos.lists.get_or_build(&*state.registry, list_key, |snapshot, selection| {
        let body = InstanceList {
            namespace: key.namespace.to_string(),
            mode: convert::mode(snapshot.mode),
            group: key.group.to_string(),
            service: key.service.to_string(),
            revision: snapshot.revision,
            reach_protection_threshold: selection.reached_protect_threshold,
            total: None,
            instances: selection.instances.iter().map(|s| convert::instance(s, &key)).collect(),
        };
        CachedBody::Whole(Bytes::from(to_json(&body)))
    })?;
    let body = match &entry.body {
        CachedBody::Whole(bytes) => bytes.clone(),
        CachedBody::Fragment(raw) => Bytes::from(to_json(raw)),
    };
    let mut headers = read_headers(entry.revision, entry.mode);
    consistency::headers(&mut headers, &fence);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok((headers, body).into_response())
}

/// `?all=true`: one page of every instance of the service as stored,
/// ordered by cluster, address and port (not cached: an operator's view, not
/// a client's hot path).
fn all_instances(
    state: &AppState,
    key: &ServiceKey,
    clusters: &[janus_core::ClusterName],
    (page, page_size): (u64, u64),
    fence: &janus_core::service::ReadFence,
) -> Result<Response, ApiError> {
    let snapshot = state.registry.snapshot(key)?;
    let clock = crate::eureka::model::WallClock::read(state.registry.view());
    let selection = janus_core::select::select(&snapshot, clusters, false);
    let mut found: Vec<_> = snapshot
        .instances
        .iter()
        .filter(|found| clusters.is_empty() || clusters.contains(&found.instance.key.cluster))
        .collect();
    found.sort_by(|a, b| {
        let (a, b) = (&a.instance.key, &b.instance.key);
        (a.cluster.as_str(), a.ip, a.port).cmp(&(b.cluster.as_str(), b.ip, b.port))
    });
    let total = found.len() as u64;
    let skip = usize::try_from((page - 1).saturating_mul(page_size)).unwrap_or(usize::MAX);
    let take = usize::try_from(page_size).unwrap_or(usize::MAX);
    let instances = found
        .into_iter()
        .skip(skip)
        .take(take)
        .map(|found| {
            let selected = janus_core::select::Selected {
                instance: found.instance.clone(),
                timing: found.timing,
                healthy: found.instance.healthy,
            };
            let mut instance = convert::instance(&selected, key);
            instance.last_renew_ms = found.lease.map(|lease| clock.epoch_of(Some(lease.last_renew)));
            instance.owner = state.registry.owner_of(key, &found.instance.key);
            instance.connected_to =
                state.registry.view().read(|r| r.binding_of(key, &found.instance.key)).map(|binding| binding.node);
            instance
        })
        .collect();
    let body = InstanceList {
        namespace: key.namespace.to_string(),
        mode: convert::mode(snapshot.mode),
        group: key.group.to_string(),
        service: key.service.to_string(),
        revision: snapshot.revision,
        reach_protection_threshold: selection.reached_protect_threshold,
        total: Some(total),
        instances,
    };
    let mut headers = read_headers(snapshot.revision, snapshot.mode);
    consistency::headers(&mut headers, fence);
    Ok((headers, Json(body)).into_response())
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path((ns, service, ip, port)): Path<(String, String, String, String)>,
    Query(query): Query<InstanceQuery>,
) -> Result<Response, ApiError> {
    let key = convert::service_key(&ns, query.group.as_deref(), &service)?;
    let instance = addressed(&ip, &port, query.cluster.as_deref())?;
    let fence = consistency::fence(&state, &key.namespace, query.consistency.as_deref()).await?;
    let found = state.registry.instance(&key, &instance)?;
    let mode = state.registry.namespace(&key.namespace)?.spec.mode;
    // The instance was found, so the service exists: its revision is its own.
    let revision = state.registry.view().read(|r| r.service_revision(&key));
    let selected = janus_core::select::Selected {
        healthy: found.instance.healthy,
        instance: found.instance,
        timing: found.timing,
    };
    let mut headers = read_headers(revision, mode);
    consistency::headers(&mut headers, &fence);
    Ok((headers, Json(convert::instance(&selected, &key))).into_response())
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path((ns, service, ip, port)): Path<(String, String, String, String)>,
    Query(query): Query<InstanceQuery>,
    Json(body): Json<RegisterInstance>,
) -> Result<Json<WriteAck>, ApiError> {
    let key = convert::service_key(&ns, query.group.as_deref(), &service)?;
    let instance = addressed(&ip, &port, query.cluster.as_deref().or(body.cluster.as_deref()))?;
    let outcome = state.registry.update_instance(key.clone(), spec(instance, body)?).await?;
    Ok(ack(&key, outcome))
}

pub(crate) async fn patch(
    State(state): State<AppState>,
    Path((ns, service, ip, port)): Path<(String, String, String, String)>,
    Query(query): Query<InstanceQuery>,
    Json(body): Json<PatchInstance>,
) -> Result<Json<WriteAck>, ApiError> {
    let key = convert::service_key(&ns, query.group.as_deref(), &service)?;
    let instance = addressed(&ip, &port, query.cluster.as_deref())?;
    if let Some(weight) = body.weight {
        validate::check_weight(weight)?;
    }
    let patch = InstancePatch {
        weight: body.weight,
        healthy: body.healthy,
        enabled: body.enabled,
        metadata: body.metadata,
        remove_metadata: Vec::new(),
    };
    let outcome = state.registry.patch_instance(key.clone(), instance, patch).await?;
    Ok(ack(&key, outcome))
}

pub(crate) async fn deregister(
    State(state): State<AppState>,
    Path((ns, service, ip, port)): Path<(String, String, String, String)>,
    Query(query): Query<InstanceQuery>,
) -> Result<Json<WriteAck>, ApiError> {
    let key = convert::service_key(&ns, query.group.as_deref(), &service)?;
    let instance = addressed(&ip, &port, query.cluster.as_deref())?;
    let outcome = state.registry.deregister_instance(key.clone(), instance).await?;
    Ok(ack(&key, outcome))
}

pub(crate) async fn heartbeat(
    State(state): State<AppState>,
    Path((ns, service, ip, port)): Path<(String, String, String, String)>,
    Query(query): Query<InstanceQuery>,
) -> Result<Json<HeartbeatAck>, ApiError> {
    let key = convert::service_key(&ns, query.group.as_deref(), &service)?;
    let instance = addressed(&ip, &port, query.cluster.as_deref())?;
    let timing = state.registry.heartbeat(key.clone(), instance).await?;
    let mode = state.registry.namespace(&key.namespace)?.spec.mode;
    Ok(Json(HeartbeatAck { mode: convert::mode(mode), beat_interval_ms: timing.interval_ms }))
}
