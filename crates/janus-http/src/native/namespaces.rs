//! `/v1/namespaces[/{ns}]`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use janus_api::native::{CreateNamespace, Namespace, NamespaceList, UpdateNamespace};
use janus_core::model::NamespaceSpec;
use janus_core::name::NamespaceId;

use crate::AppState;
use crate::convert;
use crate::error::ApiError;
use serde::Deserialize;

use crate::extract::{Json, Path, Query};
use crate::watch;

pub(crate) async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreateNamespace>,
) -> Result<Response, ApiError> {
    let spec =
        NamespaceSpec::new(NamespaceId::new(&body.id)?, body.name, body.description, convert::core_mode(body.mode))?;
    let mut info = state.registry.create_namespace(spec).await?;
    if body.dns == Some(false) {
        // A second write: until it commits, the new namespace is answered
        // over DNS like any other.
        info = state.registry.set_namespace_dns(info.spec.id.clone(), false).await?;
    }
    Ok((StatusCode::CREATED, Json(with_count(&state, info))).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    index: Option<u64>,
    wait: Option<String>,
}

/// Lists namespaces; a blocking query waits on the node-wide revision, since
/// every change shows in some namespace's revision or service count.
pub(crate) async fn list(State(state): State<AppState>, Query(query): Query<ListQuery>) -> Result<Response, ApiError> {
    if let Some(index) = query.index {
        let wait = watch::wait_for(query.wait.as_deref(), state.config.default_wait, state.config.max_wait)?;
        tokio::select! {
            _ = state.registry.view().wait_any(index, wait) => {}
            () = state.shutdown.cancelled() => {}
        }
    }
    let (revision, namespaces) = state.registry.view().read(|r| {
        let counted = r.namespaces().into_iter().map(|info| {
            let instances = r.namespace_instance_count(&info.spec.id);
            convert::namespace(info, instances)
        });
        (r.revision(), counted.collect())
    });
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("x-janus-index"), HeaderValue::from(revision));
    let body = NamespaceList { namespaces };
    Ok((headers, Json(body)).into_response())
}

pub(crate) async fn get(State(state): State<AppState>, Path(ns): Path<String>) -> Result<Json<Namespace>, ApiError> {
    let info = state.registry.namespace(&NamespaceId::new(&ns)?)?;
    Ok(Json(with_count(&state, info)))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(ns): Path<String>,
    Json(body): Json<UpdateNamespace>,
) -> Result<Json<Namespace>, ApiError> {
    let id = NamespaceId::new(&ns)?;
    if let Some(mode) = body.mode {
        janus_nacos::namespace::check_mode_unchanged(&*state.registry, &id, convert::core_mode(mode))?;
    }
    let dns_only = body.dns.is_some() && body.name.is_none() && body.description.is_none();
    let mut info = match dns_only {
        true => None,
        false => Some(state.registry.update_namespace(id.clone(), body.name, body.description).await?),
    };
    // Written even when this node reads it as set already: its copy may lag.
    if let Some(dns) = body.dns {
        info = Some(state.registry.set_namespace_dns(id.clone(), dns).await?);
    }
    let info = match info {
        Some(info) => info,
        None => state.registry.namespace(&id)?,
    };
    Ok(Json(with_count(&state, info)))
}

pub(crate) async fn delete(State(state): State<AppState>, Path(ns): Path<String>) -> Result<StatusCode, ApiError> {
    state.registry.delete_namespace(NamespaceId::new(&ns)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The namespace as the API shows it, with its instances counted (a walk over
/// its services: namespace answers only, never on a request's hot path).
fn with_count(state: &AppState, info: janus_core::model::NamespaceInfo) -> Namespace {
    let instances = state.registry.view().read(|r| r.namespace_instance_count(&info.spec.id));
    convert::namespace(info, instances)
}
