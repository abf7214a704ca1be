//! The Nacos v2 HTTP API (`/nacos/v2/ns/...`, `/nacos/v2/console/namespace...`):
//! the v1 operations with v2's parameter names, answered in the
//! `{"code": 0, "message": "success", "data": …}` envelope, errors with
//! Nacos v2's codes (parameter 10000, service 21000/21007/21008/21009, weight
//! 21001, instance 21003, namespace 22001, not found 20004, server 30000).

use axum::body::to_bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use janus_core::RegistryError;
use serde::Serialize;
use serde_json::value::RawValue;

use super::{Params, console, service, status};
use crate::AppState;
use crate::error::{ApiError, NacosError};
use crate::extract::{Json, Path, json_response};

/// Largest v1 answer re-wrapped (instance lists of big services fit easily).
const MAX_WRAPPED_BYTES: usize = 64 * 1024 * 1024;

#[derive(Serialize)]
struct Envelope<'a> {
    code: u32,
    message: &'a str,
    data: Option<&'a RawValue>,
}

fn reply(status: StatusCode, code: u32, message: &str, data: Option<&RawValue>) -> Response {
    json_response(status, &Envelope { code, message, data })
}

/// Wraps a v1 answer: JSON bodies become `data` as they are, text (`ok`) a JSON string.
async fn envelope(answer: Result<Response, NacosError>) -> Response {
    let response = match answer {
        Ok(response) => response,
        Err(error) => return failure(&error.0, error.1.as_deref()),
    };
    if let Some(error) = response.extensions().get::<ApiError>().cloned() {
        return failure(&error, response.extensions().get::<RegistryError>());
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let Ok(bytes) = to_bytes(response.into_body(), MAX_WRAPPED_BYTES).await else {
        return reply(StatusCode::INTERNAL_SERVER_ERROR, 30000, "answer too large", None);
    };
    let text = String::from_utf8_lossy(&bytes);
    let data = if is_json { text.into_owned() } else { serde_json::Value::String(text.into_owned()).to_string() };
    match RawValue::from_string(data) {
        Ok(raw) => reply(StatusCode::OK, 0, "success", Some(&raw)),
        Err(_) => reply(StatusCode::INTERNAL_SERVER_ERROR, 30000, "answer is not JSON", None),
    }
}

/// An error in the v2 envelope, with v2's code for it (from `cause`, the
/// registry error it came from, if any).
pub(crate) fn failure(error: &ApiError, cause: Option<&RegistryError>) -> Response {
    reply(error.status, error.nacos_v2_code(cause), &error.message, None)
}

/// Renames v2 parameters to their v1 spellings (only where v1 has none).
fn rename(mut params: Params, pairs: &[(&str, &str)]) -> Params {
    for (v2, v1) in pairs {
        if params.get(v1).is_none()
            && let Some(value) = params.get(v2).map(str::to_owned)
        {
            params.0.push(((*v1).to_owned(), value));
        }
    }
    params
}

pub(crate) async fn register(state: State<AppState>, params: Params) -> Response {
    envelope(super::register(state, params).await).await
}

pub(crate) async fn deregister(state: State<AppState>, params: Params) -> Response {
    envelope(super::deregister(state, params).await).await
}

pub(crate) async fn update(state: State<AppState>, params: Params) -> Response {
    envelope(super::update(state, params).await).await
}

pub(crate) async fn patch(state: State<AppState>, params: Params) -> Response {
    envelope(super::patch(state, params).await).await
}

pub(crate) async fn get_instance(state: State<AppState>, params: Params) -> Response {
    envelope(super::get_instance(state, params).await.map(IntoResponse::into_response)).await
}

/// `GET /nacos/v2/ns/instance/list`: v2 names the cluster filter `clusterName`.
pub(crate) async fn list(state: State<AppState>, params: Params) -> Response {
    envelope(super::list(state, rename(params, &[("clusterName", "clusters")])).await).await
}

pub(crate) async fn beat(state: State<AppState>, params: Params) -> Response {
    envelope(super::beat(state, params).await.map(IntoResponse::into_response)).await
}

/// `GET /nacos/v2/ns/instance/statuses/{key}`.
pub(crate) async fn statuses(state: State<AppState>, Path(key): Path<String>, mut params: Params) -> Response {
    params.0.push(("key".to_owned(), key));
    envelope(status::statuses(state, params).await.map(IntoResponse::into_response)).await
}

pub(crate) async fn put_metadata(state: State<AppState>, params: Params) -> Response {
    envelope(status::put_metadata(state, params).await.map(IntoResponse::into_response)).await
}

pub(crate) async fn delete_metadata(state: State<AppState>, params: Params) -> Response {
    envelope(status::delete_metadata(state, params).await.map(IntoResponse::into_response)).await
}

pub(crate) async fn health(state: State<AppState>, params: Params) -> Response {
    envelope(status::health(state, params).await).await
}

pub(crate) async fn create_service(state: State<AppState>, params: Params) -> Response {
    envelope(service::create(state, params).await).await
}

pub(crate) async fn update_service(state: State<AppState>, params: Params) -> Response {
    envelope(service::update(state, params).await).await
}

pub(crate) async fn delete_service(state: State<AppState>, params: Params) -> Response {
    envelope(service::delete(state, params).await).await
}

pub(crate) async fn get_service(state: State<AppState>, params: Params) -> Response {
    envelope(service::get(state, params).await.map(IntoResponse::into_response)).await
}

/// `GET /nacos/v2/ns/service/list`: `{count, services}` instead of v1's `{count, doms}`.
pub(crate) async fn list_services(state: State<AppState>, params: Params) -> Response {
    #[derive(Serialize)]
    struct Services {
        count: u64,
        services: Vec<String>,
    }
    let answer = service::list(state, params)
        .await
        .map(|names| Json(Services { count: names.0.count, services: names.0.doms }).into_response());
    envelope(answer).await
}

/// `GET /nacos/v2/console/namespace/list`: the array itself as `data`.
pub(crate) async fn namespace_list(State(state): State<AppState>) -> Response {
    let data: Vec<_> = state.registry.namespaces().into_iter().map(console::console).collect();
    envelope(Ok(Json(data).into_response())).await
}

/// `GET /nacos/v2/console/namespace?namespaceId=…`.
pub(crate) async fn namespace_get(state: State<AppState>, params: Params) -> Response {
    let mut params = params;
    params.0.push(("show".to_owned(), "all".to_owned()));
    envelope(console::get(state, params).await).await
}

/// `POST namespaceId, namespaceName, namespaceDesc[, namespaceMode]`.
pub(crate) async fn namespace_create(state: State<AppState>, params: Params) -> Response {
    let params = rename(params, &[("namespaceId", "customNamespaceId")]);
    envelope(console::create(state, params).await.map(IntoResponse::into_response)).await
}

/// `PUT namespaceId, namespaceName, namespaceDesc`.
pub(crate) async fn namespace_update(state: State<AppState>, params: Params) -> Response {
    let params = rename(params, &[("namespaceId", "namespace"), ("namespaceName", "namespaceShowName")]);
    envelope(console::update(state, params).await.map(IntoResponse::into_response)).await
}

/// `DELETE namespaceId`.
pub(crate) async fn namespace_delete(state: State<AppState>, params: Params) -> Response {
    envelope(console::delete(state, params).await.map(IntoResponse::into_response)).await
}

pub(crate) async fn switches(state: State<AppState>) -> Response {
    envelope(Ok(super::operator::switches(state).await.into_response())).await
}

pub(crate) async fn metrics(state: State<AppState>) -> Response {
    envelope(Ok(super::operator::metrics(state).await.into_response())).await
}
