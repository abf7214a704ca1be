//! The core of the Nacos v1 naming API under `/nacos/v1/ns/`: register,
//! deregister, update, patch, get, list and beat, with Nacos's parameter
//! spellings (query string or form body) and response field sets.
//!
//! Differences from Nacos: the namespace must exist (Janus namespaces carry a
//! mode), and an `ephemeral` flag that contradicts the namespace mode is refused
//! with 409 instead of creating a second kind of service.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use janus_api::nacos::{BeatInfo, BeatResponse, CODE_OK, CODE_RESOURCE_NOT_FOUND, Host, InstanceDetail, ServiceInfo};
use janus_core::RegistryError;
use janus_core::model::{InstancePatch, InstanceSpec};
use janus_core::name::{InstanceKey, ServiceKey};
use janus_core::validate;

pub(crate) mod console;
pub(crate) mod operator;
pub(crate) mod service;
pub(crate) mod status;
pub(crate) mod v2;

use crate::AppState;
use crate::consistency;
use crate::convert;
use crate::error::{ApiError, NacosError};
use crate::extract::Json;
use crate::list_cache::{CachedBody, ListKey, ListShape, to_json, to_raw};
use crate::watch;

/// Parameters from the query string and, for form bodies, the body; the first
/// occurrence of a name wins.
pub(crate) struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = NacosError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut pairs: Vec<(String, String)> = request
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.starts_with("application/x-www-form-urlencoded"));
        if form {
            let body = Bytes::from_request(request, state).await.map_err(|rejection| {
                NacosError::from(ApiError {
                    status: rejection.status(),
                    code: "invalid_body",
                    message: rejection.body_text(),
                })
            })?;
            pairs.extend(form_urlencoded::parse(&body).into_owned());
        }
        Ok(Self(pairs))
    }
}

impl Params {
    /// A parameter's value; empty values, and `None`/`null` (what Python and Java
    /// clients send for a missing value), count as absent.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty() && *v != "None" && *v != "null")
    }

    fn any(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.get(n))
    }

    fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| ApiError::invalid(format!("Param '{name}' is required.")))
    }

    fn flag(&self, names: &[&str], default: bool) -> Result<bool, ApiError> {
        match self.any(names) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::invalid(format!("invalid {}: must be true or false, got {v:?}", names[0]))),
        }
    }

    fn number(&self, name: &str) -> Result<Option<f64>, RegistryError> {
        self.get(name)
            .map(|v| v.trim().parse::<f64>().map_err(|_| RegistryError::invalid(name, format!("not a number: {v:?}"))))
            .transpose()
    }

    /// `namespaceId` (default `public`) and `serviceName` (`group@@name`, or with `groupName`).
    fn service_key(&self) -> Result<ServiceKey, NacosError> {
        let namespace = self.get("namespaceId").unwrap_or(janus_core::name::PUBLIC_NAMESPACE);
        let name = self.required("serviceName")?;
        let (group, service) = match name.split_once("@@") {
            Some((group, service)) => (Some(group), service),
            None => (self.get("groupName"), name),
        };
        Ok(convert::service_key(namespace, group, service)?)
    }

    /// `ip`, `port` and `clusterName` (or `cluster`), optionally taken from a beat body first.
    fn instance_key(&self, beat: Option<&BeatInfo>) -> Result<InstanceKey, ApiError> {
        let ip = match beat.and_then(|b| b.ip.as_deref()) {
            Some(ip) => ip,
            None => self.required("ip")?,
        };
        let port = match beat.and_then(|b| b.port) {
            Some(port) => i64::from(port),
            None => {
                let text = self.required("port")?;
                text.trim().parse().map_err(|_| {
                    ApiError::invalid(format!("invalid port: must be between 1 and 65535, got {text:?}"))
                })?
            }
        };
        let cluster = beat.and_then(|b| b.cluster.as_deref()).or_else(|| self.any(&["clusterName", "cluster"]));
        Ok(InstanceKey::new(convert::cluster(cluster)?, validate::parse_ip(ip)?, validate::check_port(port)?))
    }

    /// `metadata` as a JSON object or as Nacos's `k1=v1,k2=v2`.
    fn metadata(&self) -> Result<Option<BTreeMap<String, String>>, ApiError> {
        let Some(text) = self.get("metadata") else {
            return Ok(None);
        };
        let text = text.trim();
        if text.starts_with('{') {
            let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(text)
                .map_err(|e| ApiError::invalid(format!("invalid metadata: not a JSON object: {e}")))?;
            let map = map
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect();
            return Ok(Some(map));
        }
        text.split(',')
            .filter(|pair| !pair.trim().is_empty())
            .map(|pair| {
                pair.split_once('=').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).ok_or_else(|| {
                    ApiError::invalid(format!("invalid metadata: expected JSON or k=v pairs, got {pair:?}"))
                })
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// What a registration or full update asks for; the address must be one
    /// clients can connect to ([`validate::check_instance_ip`]).
    fn spec(&self, instance: InstanceKey) -> Result<InstanceSpec, NacosError> {
        validate::check_instance_ip("ip", instance.ip)?;
        let ephemeral = self.get("ephemeral").map(|_| self.flag(&["ephemeral"], true)).transpose()?;
        Ok(InstanceSpec {
            key: instance,
            weight: self.number("weight")?.unwrap_or(1.0),
            healthy: self.flag(&["healthy"], true)?,
            enabled: self.flag(&["enabled", "enable"], true)?,
            ephemeral,
            metadata: self.metadata()?.unwrap_or_default(),
            custom_id: None,
        })
    }
}

fn ok() -> Response {
    "ok".into_response()
}

/// `POST /nacos/v1/ns/instance`.
pub(crate) async fn register(State(state): State<AppState>, params: Params) -> Result<Response, NacosError> {
    let key = params.service_key()?;
    let spec = params.spec(params.instance_key(None)?)?;
    state.registry.register_instance(key, spec).await?;
    Ok(ok())
}

/// `DELETE /nacos/v1/ns/instance`: answers `ok` for an unknown instance, as Nacos does.
pub(crate) async fn deregister(State(state): State<AppState>, params: Params) -> Result<Response, NacosError> {
    let key = params.service_key()?;
    let instance = params.instance_key(None)?;
    match state.registry.deregister_instance(key, instance).await {
        Ok(_) | Err(RegistryError::ServiceNotFound { .. } | RegistryError::InstanceNotFound { .. }) => Ok(ok()),
        Err(err) => Err(err.into()),
    }
}

/// `PUT /nacos/v1/ns/instance`: full update of an existing instance.
pub(crate) async fn update(State(state): State<AppState>, params: Params) -> Result<Response, NacosError> {
    let key = params.service_key()?;
    let spec = params.spec(params.instance_key(None)?)?;
    state.registry.update_instance(key, spec).await?;
    Ok(ok())
}

/// `PATCH /nacos/v1/ns/instance`: only the given fields change.
pub(crate) async fn patch(State(state): State<AppState>, params: Params) -> Result<Response, NacosError> {
    let key = params.service_key()?;
    let instance = params.instance_key(None)?;
    let weight = params.number("weight")?;
    if let Some(weight) = weight {
        validate::check_weight(weight)?;
    }
    let patch = InstancePatch {
        weight,
        healthy: params.get("healthy").map(|_| params.flag(&["healthy"], true)).transpose()?,
        enabled: params.any(&["enabled", "enable"]).map(|_| params.flag(&["enabled", "enable"], true)).transpose()?,
        metadata: params.metadata()?,
        remove_metadata: Vec::new(),
    };
    state.registry.patch_instance(key, instance, patch).await?;
    Ok(ok())
}

/// `GET /nacos/v1/ns/instance`.
pub(crate) async fn get_instance(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<InstanceDetail>, NacosError> {
    let key = params.service_key()?;
    let found = state.registry.instance(&key, &params.instance_key(None)?)?;
    let inst = &found.instance;
    Ok(Json(InstanceDetail {
        service: key.grouped_name(),
        ip: inst.key.ip.to_string(),
        port: inst.key.port,
        cluster_name: inst.key.cluster.to_string(),
        weight: inst.weight,
        healthy: inst.healthy,
        instance_id: inst.instance_id(&key),
        metadata: inst.metadata.clone(),
    }))
}

/// `GET /nacos/v1/ns/instance/list` (also a blocking query with `index`/`wait`).
pub(crate) async fn list(State(state): State<AppState>, params: Params) -> Result<Response, NacosError> {
    let key = params.service_key()?;
    let clusters_param = params.get("clusters").unwrap_or_default().to_owned();
    let clusters = convert::cluster_filter(Some(&clusters_param))?;
    let healthy_only = params.flag(&["healthyOnly"], false)?;
    let index = params
        .get("index")
        .map(|v| v.parse::<u64>().map_err(|_| ApiError::invalid(format!("invalid index: {v:?}"))))
        .transpose()?;
    watch::block_on_service::<NacosError>(&*state.registry, &key, index, params.get("wait"), &state).await?;
    let fence = consistency::fence(&state, &key.namespace, params.get("consistency")).await?;
    let grouped = key.grouped_name();
    let list_key = ListKey { service: key.clone(), clusters, healthy_only, shape: ListShape::NacosHosts };
    let entry = state.lists.get_or_build(&*state.registry, list_key, |_, selection| {
        let hosts: Vec<Host> = selection
            .instances
            .iter()
            .map(|s| Host {
                instance_id: s.instance.instance_id(&key),
                ip: s.instance.key.ip.to_string(),
                port: s.instance.key.port,
                weight: s.instance.weight,
                healthy: s.healthy,
                enabled: s.instance.enabled,
                ephemeral: s.instance.ephemeral,
                cluster_name: s.instance.key.cluster.to_string(),
                service_name: grouped.clone(),
                metadata: s.instance.metadata.clone(),
                instance_heart_beat_interval: s.timing.interval_ms,
                instance_id_generator: "simple".to_owned(),
                instance_heart_beat_time_out: s.timing.unhealthy_after_ms,
                ip_delete_timeout: s.timing.delete_after_ms,
            })
            .collect();
        CachedBody::Fragment(to_raw(&hosts))
    })?;
    let hosts = match &entry.body {
        CachedBody::Fragment(raw) => raw.as_ref(),
        CachedBody::Whole(_) => {
            // The key names the Nacos shape, so this is a bug: an internal fault, not the client's.
            let context = format!("the list cache holds another shape for the Nacos list of {key}");
            tracing::error!(%context, "Nacos list failed on an internal fault");
            return Err(RegistryError::Internal(context).into());
        }
    };
    let body = ServiceInfo {
        name: grouped,
        group_name: key.group.to_string(),
        clusters: clusters_param,
        cache_millis: 10_000,
        hosts,
        last_ref_time: epoch_millis(),
        checksum: String::new(),
        all_ips: false,
        reach_protection_threshold: entry.reached_protect_threshold,
        valid: true,
    };
    let mut headers = crate::native::read_headers(entry.revision, entry.mode);
    consistency::headers(&mut headers, &fence);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok((headers, to_json(&body)).into_response())
}

/// `PUT /nacos/v1/ns/instance/beat`: renews, or re-registers from the `beat`
/// body, or answers 20404 so the client registers again.
pub(crate) async fn beat(State(state): State<AppState>, params: Params) -> Result<Json<BeatResponse>, NacosError> {
    let key = params.service_key()?;
    let beat = params
        .get("beat")
        .map(|text| {
            serde_json::from_str::<BeatInfo>(text)
                .map_err(|e| ApiError::invalid(format!("invalid beat: not beat JSON: {e}")))
        })
        .transpose()?;
    let instance = params.instance_key(beat.as_ref())?;
    let answer = |interval: u64, code: i32| {
        Json(BeatResponse { client_beat_interval: interval, code, light_beat_enabled: true })
    };
    match state.registry.heartbeat(key.clone(), instance.clone()).await {
        Ok(timing) => Ok(answer(timing.interval_ms, CODE_OK)),
        Err(RegistryError::ServiceNotFound { .. } | RegistryError::InstanceNotFound { .. }) => {
            let default_interval = state.registry.view().read(|r| r.config().lease.interval_ms);
            let Some(beat) = beat else {
                return Ok(answer(default_interval, CODE_RESOURCE_NOT_FOUND));
            };
            validate::check_instance_ip("ip", instance.ip)?;
            let mut spec = InstanceSpec::new(instance.clone());
            spec.weight = beat.weight.unwrap_or(1.0);
            spec.metadata = beat.metadata;
            state.registry.register_instance(key.clone(), spec).await?;
            let timing = state.registry.instance(&key, &instance)?.timing;
            Ok(answer(timing.interval_ms, CODE_OK))
        }
        Err(err) => Err(err.into()),
    }
}

fn epoch_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
