//! `/v1/namespaces[/{ns}]`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use janus_api::native::{CreateNamespace, Namespace, NamespaceList, UpdateNamespace};
use janus_core::model::NamespaceSpec;
use janus_core::name::NamespaceId;

use crate::AppState;
use crate::convert;
use crate::error::ApiError;
use crate::extract::{Json, Path};

pub(crate) async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreateNamespace>,
) -> Result<Response, ApiError> {
    let spec =
        NamespaceSpec::new(NamespaceId::new(&body.id)?, body.name, body.description, convert::core_mode(body.mode))?;
    let info = state.registry.create_namespace(spec).await?;
    Ok((StatusCode::CREATED, axum::Json(convert::namespace(info))).into_response())
}

pub(crate) async fn list(State(state): State<AppState>) -> axum::Json<NamespaceList> {
    axum::Json(NamespaceList { namespaces: state.registry.namespaces().into_iter().map(convert::namespace).collect() })
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(ns): Path<String>,
) -> Result<axum::Json<Namespace>, ApiError> {
    let info = state.registry.namespace(&NamespaceId::new(&ns)?)?;
    Ok(axum::Json(convert::namespace(info)))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(ns): Path<String>,
    Json(body): Json<UpdateNamespace>,
) -> Result<axum::Json<Namespace>, ApiError> {
    let info = state.registry.update_namespace(NamespaceId::new(&ns)?, body.name, body.description).await?;
    Ok(axum::Json(convert::namespace(info)))
}

pub(crate) async fn delete(State(state): State<AppState>, Path(ns): Path<String>) -> Result<StatusCode, ApiError> {
    state.registry.delete_namespace(NamespaceId::new(&ns)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
