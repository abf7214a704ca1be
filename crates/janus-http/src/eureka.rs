//! Eureka REST under `/eureka/`: what Spring Cloud and py-eureka-client use.
//!
//! Eureka applications are the services of one `ap` namespace and group
//! (`HttpConfig::eureka_namespace`/`eureka_group`); app names match without
//! regard to case, so a Nacos client and a Eureka client see each other's
//! instances. Answers are XML unless the client accepts JSON, gzipped when asked.
//! `/apps/delta` answers an empty delta with the current `apps__hashcode`:
//! clients whose merged registry then disagrees fetch the full one.

pub(crate) mod model;
pub(crate) mod xml;

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use janus_core::model::InstancePatch;
use janus_core::name::{GroupName, NamespaceId, ServiceKey, ServiceName};
use janus_core::registry::SnapshotInstance;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Path, Query, json_response};

/// The answer format a client asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Xml,
    Json,
}

fn format(headers: &HeaderMap) -> Format {
    let json =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"));
    if json { Format::Json } else { Format::Xml }
}

fn respond(format: Format, root: &str, value: Value) -> Response {
    match format {
        Format::Json => json_response(StatusCode::OK, &json!({ root: value })),
        Format::Xml => {
            let body = xml::render(root, &value);
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"))], body).into_response()
        }
    }
}

fn eureka_scope(state: &AppState) -> Result<(NamespaceId, GroupName), ApiError> {
    Ok((NamespaceId::new(&state.config.eureka_namespace)?, GroupName::new(&state.config.eureka_group)?))
}

/// The service of an app (matched without regard to case), if it exists.
fn existing_app(state: &AppState, app: &str) -> Result<Option<ServiceKey>, ApiError> {
    let (namespace, group) = eureka_scope(state)?;
    Ok(state.registry.view().read(|r| r.resolve_service(namespace.as_str(), group.as_str(), app)))
}

fn app_not_found(app: &str) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: format!("application {app} is not registered"),
    }
}

/// The service and instance an app and instance id name.
fn find_instance(state: &AppState, app: &str, id: &str) -> Result<(ServiceKey, SnapshotInstance), ApiError> {
    let key = existing_app(state, app)?.ok_or_else(|| app_not_found(app))?;
    let snapshot = state.registry.snapshot(&key)?;
    snapshot.instances.into_iter().find(|i| model::instance_id(&i.instance, &key) == id).map(|i| (key, i)).ok_or_else(
        || ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: format!("instance {id} of application {app} is not registered"),
        },
    )
}

/// `POST /eureka/apps/{app}`: JSON or XML body → 204.
pub(crate) async fn register(
    State(state): State<AppState>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::invalid("invalid body: not UTF-8"))?;
    let is_xml = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("xml"))
        || text.trim_start().starts_with('<');
    let value = if is_xml {
        xml::parse(text).map_err(|e| ApiError::invalid(format!("invalid body: {e}")))?
    } else {
        serde_json::from_str(text).map_err(|e| ApiError::invalid(format!("invalid body: malformed JSON: {e}")))?
    };
    let registration = model::registration(&value)?;
    if registration.app.as_deref().is_some_and(|a| !a.eq_ignore_ascii_case(&app)) {
        return Err(ApiError::invalid(format!("invalid app: the body names {:?}, the path {app:?}", registration.app)));
    }
    let key = match existing_app(&state, &app)? {
        Some(key) => key,
        None => {
            let (namespace, group) = eureka_scope(&state)?;
            ServiceKey::new(namespace, group, ServiceName::new(&app.to_ascii_lowercase())?)
        }
    };
    state.registry.register_instance(key, registration.spec).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /eureka/apps/{app}/{id}`: renew; 404 tells the client to register again.
pub(crate) async fn renew(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (key, found) = find_instance(&state, &app, &id)?;
    state.registry.heartbeat(key, found.instance.key.clone()).await?;
    Ok(StatusCode::OK)
}

/// `DELETE /eureka/apps/{app}/{id}`.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (key, found) = find_instance(&state, &app, &id)?;
    state.registry.deregister_instance(key, found.instance.key.clone()).await?;
    Ok(StatusCode::OK)
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatusQuery {
    value: Option<String>,
}

async fn set_status(state: &AppState, app: &str, id: &str, status: Option<&str>) -> Result<StatusCode, ApiError> {
    let (key, found) = find_instance(state, app, id)?;
    let (metadata, remove_metadata) = model::status_override(status);
    let mut after = found.instance.metadata.clone();
    after.extend(metadata.clone());
    for k in &remove_metadata {
        after.remove(k);
    }
    let patch = InstancePatch {
        enabled: Some(model::effective_status(&after) == "UP"),
        metadata: Some(metadata),
        remove_metadata,
        ..InstancePatch::default()
    };
    state.registry.patch_instance(key, found.instance.key.clone(), patch).await?;
    Ok(StatusCode::OK)
}

/// `PUT /eureka/apps/{app}/{id}/status?value=OUT_OF_SERVICE`.
pub(crate) async fn put_status(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    Query(query): Query<StatusQuery>,
) -> Result<StatusCode, ApiError> {
    let value =
        query.value.ok_or_else(|| ApiError::invalid("invalid value: required (UP, DOWN, OUT_OF_SERVICE, …)"))?;
    const STATUSES: [&str; 5] = ["UP", "DOWN", "STARTING", "OUT_OF_SERVICE", "UNKNOWN"];
    let value = value.to_ascii_uppercase();
    if !STATUSES.contains(&value.as_str()) {
        return Err(ApiError::invalid(format!("invalid value: one of {STATUSES:?}, got {value:?}")));
    }
    set_status(&state, &app, &id, Some(&value)).await
}

/// `DELETE /eureka/apps/{app}/{id}/status`: removes the override.
pub(crate) async fn delete_status(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    set_status(&state, &app, &id, None).await
}

/// `PUT /eureka/apps/{app}/{id}/metadata?key=value…`.
pub(crate) async fn put_metadata(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    Query(pairs): Query<BTreeMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    if pairs.keys().any(|k| k.starts_with(model::PREFIX) || k.starts_with("preserved.")) {
        return Err(ApiError::invalid("invalid metadata: eureka.* and preserved.* keys are reserved"));
    }
    let (key, found) = find_instance(&state, &app, &id)?;
    let patch = InstancePatch { metadata: Some(pairs), ..InstancePatch::default() };
    state.registry.patch_instance(key, found.instance.key.clone(), patch).await?;
    Ok(StatusCode::OK)
}

/// One application: its Eureka name and rendered instances.
fn application(state: &AppState, key: &ServiceKey) -> Result<Option<(String, Vec<Value>)>, ApiError> {
    let snapshot = state.registry.snapshot(key)?;
    if snapshot.instances.is_empty() {
        return Ok(None);
    }
    let app = key.service.as_str().to_ascii_uppercase();
    let clock = model::WallClock::read(state.registry.view());
    let instances = snapshot.instances.iter().map(|i| model::render(i, clock, key, &app, None)).collect();
    Ok(Some((app, instances)))
}

/// Every application of the Eureka scope, optionally only instances matching `keep`.
fn applications(state: &AppState, keep: impl Fn(&Value) -> bool) -> Result<Value, ApiError> {
    let (namespace, group) = eureka_scope(state)?;
    let (total, _) = state.registry.services(&namespace, Some(&group), None, 1, 1)?;
    let (_, services) = state.registry.services(&namespace, Some(&group), None, 1, total.max(1))?;
    let mut apps = Vec::new();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for service in services {
        let Some((name, instances)) = application(state, &service.key)? else { continue };
        let instances: Vec<Value> = instances.into_iter().filter(|i| keep(i)).collect();
        if instances.is_empty() {
            continue;
        }
        for instance in &instances {
            *statuses.entry(instance["status"].as_str().unwrap_or("UNKNOWN").to_owned()).or_default() += 1;
        }
        apps.push(json!({"name": name, "instance": instances}));
    }
    let hashcode: String = statuses.iter().map(|(status, count)| format!("{status}_{count}_")).collect();
    let revision = state.registry.view().read(janus_core::Registry::revision);
    Ok(json!({"versions__delta": revision.to_string(), "apps__hashcode": hashcode, "application": apps}))
}

/// `GET /eureka/apps`.
pub(crate) async fn apps(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    Ok(respond(format(&headers), "applications", applications(&state, |_| true)?))
}

/// `GET /eureka/apps/delta`: no changes listed, but the current hash code.
pub(crate) async fn delta(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let mut full = applications(&state, |_| true)?;
    full["application"] = json!([]);
    Ok(respond(format(&headers), "applications", full))
}

/// `GET /eureka/apps/{app}`.
pub(crate) async fn app(
    State(state): State<AppState>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = existing_app(&state, &app)?.ok_or_else(|| app_not_found(&app))?;
    let (name, instances) = application(&state, &key)?.ok_or_else(|| app_not_found(&app))?;
    Ok(respond(format(&headers), "application", json!({"name": name, "instance": instances})))
}

/// `GET /eureka/apps/{app}/{id}`.
pub(crate) async fn instance(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (key, found) = find_instance(&state, &app, &id)?;
    let name = key.service.as_str().to_ascii_uppercase();
    let clock = model::WallClock::read(state.registry.view());
    Ok(respond(format(&headers), "instance", model::render(&found, clock, &key, &name, None)))
}

/// `GET /eureka/instances/{id}`: searched across every application.
pub(crate) async fn instance_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let all = applications(&state, |i| i["instanceId"] == id.as_str())?;
    let found = all["application"]
        .as_array()
        .and_then(|apps| apps.first())
        .and_then(|a| a["instance"].as_array()?.first().cloned());
    let found = found.ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: format!("instance {id} is not registered"),
    })?;
    Ok(respond(format(&headers), "instance", found))
}

/// `GET /eureka/vips/{vip}`.
pub(crate) async fn vips(
    State(state): State<AppState>,
    Path(vip): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Ok(respond(format(&headers), "applications", applications(&state, |i| i["vipAddress"] == vip.as_str())?))
}

/// `GET /eureka/svips/{svip}`.
pub(crate) async fn svips(
    State(state): State<AppState>,
    Path(svip): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Ok(respond(format(&headers), "applications", applications(&state, |i| i["secureVipAddress"] == svip.as_str())?))
}
