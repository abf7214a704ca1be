//! `/nacos/v1/console/namespaces`: the console's namespace API.
//!
//! Differences from Nacos: namespaces created here are `ap` unless the extra
//! parameter `namespaceMode=cp` says otherwise, and a namespace that still
//! holds services is not deleted (409).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use janus_api::nacos::{ConsoleNamespace, ConsoleResult};
use janus_core::model::{Mode, NamespaceInfo, NamespaceSpec};
use janus_core::name::{NamespaceId, PUBLIC_NAMESPACE};

use super::Params;
use crate::AppState;
use crate::error::{ApiError, NacosError};
use crate::extract::Json;

pub(crate) fn console(info: NamespaceInfo) -> ConsoleNamespace {
    let public = info.spec.id.as_str() == PUBLIC_NAMESPACE;
    ConsoleNamespace {
        namespace: if public { String::new() } else { info.spec.id.to_string() },
        namespace_show_name: info.spec.name,
        namespace_desc: info.spec.description,
        quota: 200,
        config_count: 0,
        kind: if public { 0 } else { 2 },
    }
}

/// The namespace a console parameter names; empty means `public`.
fn namespace_id(text: Option<&str>) -> Result<NamespaceId, ApiError> {
    Ok(NamespaceId::new(text.filter(|t| !t.is_empty()).unwrap_or(PUBLIC_NAMESPACE))?)
}

/// `GET`: all namespaces; with `show=all&namespaceId=…` one; with
/// `checkNamespaceIdExist=true&customNamespaceId=…` whether it exists.
pub(crate) async fn get(State(state): State<AppState>, params: Params) -> Result<Response, NacosError> {
    if params.flag(&["checkNamespaceIdExist"], false)? {
        let id = params.required("customNamespaceId")?;
        let exists = NamespaceId::new(id).is_ok_and(|id| state.registry.namespace(&id).is_ok());
        return Ok(Json(exists).into_response());
    }
    if params.get("show") == Some("all") {
        let info = state.registry.namespace(&namespace_id(params.get("namespaceId"))?)?;
        return Ok(Json(console(info)).into_response());
    }
    let data = state.registry.namespaces().into_iter().map(console).collect::<Vec<_>>();
    Ok(Json(ConsoleResult { code: 200, message: None, data }).into_response())
}

/// `POST customNamespaceId, namespaceName, namespaceDesc[, namespaceMode]`.
pub(crate) async fn create(State(state): State<AppState>, params: Params) -> Result<Json<bool>, NacosError> {
    let id = NamespaceId::new(params.required("customNamespaceId")?)?;
    let mode = namespace_mode(&params)?.unwrap_or(Mode::Ap);
    let name = params.get("namespaceName").map(str::to_owned);
    let description = params.get("namespaceDesc").map(str::to_owned);
    let spec = NamespaceSpec::new(id, name, description, mode)?;
    state.registry.create_namespace(spec).await?;
    Ok(Json(true))
}

/// The `namespaceMode` extension: `ap` or `cp`.
fn namespace_mode(params: &Params) -> Result<Option<Mode>, ApiError> {
    match params.get("namespaceMode") {
        None => Ok(None),
        Some("ap") => Ok(Some(Mode::Ap)),
        Some("cp") => Ok(Some(Mode::Cp)),
        Some(other) => Err(ApiError::invalid(format!("invalid namespaceMode: ap or cp, got {other:?}"))),
    }
}

/// `PUT namespace, namespaceShowName, namespaceDesc`; a `namespaceMode` other
/// than the namespace's own is refused (409): the mode never changes.
pub(crate) async fn update(State(state): State<AppState>, params: Params) -> Result<Json<bool>, NacosError> {
    let id = namespace_id(Some(params.required("namespace")?))?;
    if let Some(mode) = namespace_mode(&params)? {
        crate::convert::check_mode_unchanged(&*state.registry, &id, mode)?;
    }
    let name = params.get("namespaceShowName").map(str::to_owned);
    let description = params.get("namespaceDesc").map(str::to_owned);
    state.registry.update_namespace(id, name, description).await?;
    Ok(Json(true))
}

/// `DELETE namespaceId`.
pub(crate) async fn delete(State(state): State<AppState>, params: Params) -> Result<Json<bool>, NacosError> {
    let id = namespace_id(Some(params.required("namespaceId")?))?;
    state.registry.delete_namespace(id).await?;
    Ok(Json(true))
}
