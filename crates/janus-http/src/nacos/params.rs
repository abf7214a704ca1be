//! A Nacos request's parameters ([`Params`]) and their parsing into the
//! typed inputs of the shared layer (`janus-nacos`), through its builders
//! ([`janus_nacos::input`]).
//!
//! Parsing happens once for both API versions, with Nacos v1's names; a v2
//! endpoint renames its own spellings first ([`Params::renamed`]).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use janus_api::nacos::BeatInfo;
use janus_core::model::{
    ClusterSettings, HealthCheck, InstancePatch, InstanceSpec, Mode, NamespaceSpec, ServicePatch, ServiceSettings,
};
use janus_core::name::{ClusterName, GroupName, InstanceKey, NamespaceId, PUBLIC_NAMESPACE, ServiceKey};
use janus_core::{RegistryError, validate};
use janus_nacos::input::{self, InstanceFields};
use janus_nacos::instance::{HostsQuery, MetadataBatch};
use janus_nacos::namespace::{NamespaceQuery, NamespaceUpdate};
use janus_nacos::service::ServiceListQuery;
use serde::Deserialize;

use super::list::ListQuery;
use crate::error::{ApiError, NacosError, NacosHttpError};

/// Parameters from the query string and, for form bodies, the body; the first
/// occurrence of a name wins.
pub(crate) struct Params(Vec<(String, String)>);

/// Whether a request's body is read as form parameters: a form content type,
/// or none at all (as Nacos clients send it). The auth check reads a body by
/// the same rule, so it sees the parameters the endpoint will act on.
pub(crate) fn has_form_body(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// Whether a parameter's value counts: empty values, and `None`/`null`
/// (what Python and Java clients send for a missing value), are absent.
pub(crate) fn is_present(value: &str) -> bool {
    !value.is_empty() && value != "None" && value != "null"
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = NacosHttpError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut pairs: Vec<(String, String)> =
            request.uri().query().map(|q| owned_params(q.as_bytes()).collect()).unwrap_or_default();
        if has_form_body(request.headers()) {
            let body = Bytes::from_request(request, state).await.map_err(|rejection| {
                NacosHttpError(NacosError::new(rejection.status(), "invalid_body", rejection.body_text()))
            })?;
            pairs.extend(owned_params(&body));
        }
        Ok(Self(pairs))
    }
}

/// The pairs of form-encoded `input`, decoded, but the access token, which
/// the auth check has read and no endpoint uses (left out before decoding:
/// it rides on every request of a node with auth on).
fn owned_params(input: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    input
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with(b"accessToken="))
        .flat_map(form_urlencoded::parse)
        .filter(|(key, _)| key != "accessToken")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// Getting and renaming parameters, and parsing the shared pieces.
impl Params {
    /// A parameter's value; empty values, and `None`/`null` (what Python and Java
    /// clients send for a missing value), count as absent.
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| is_present(v))
    }

    fn any(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.get(n))
    }

    /// Adds a parameter after the request's own, which win over it.
    pub(crate) fn with(mut self, name: &str, value: String) -> Self {
        self.0.push((name.to_owned(), value));
        self
    }

    /// Renames parameters `(from, to)`: each `from` is read as `to`, unless
    /// the request gives `to` itself.
    pub(crate) fn renamed(mut self, pairs: &[(&str, &str)]) -> Self {
        for (from, to) in pairs {
            if self.get(to).is_none()
                && let Some(value) = self.get(from).map(str::to_owned)
            {
                self = self.with(to, value);
            }
        }
        self
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

    /// A flag that is `None` when none of `names` is given.
    fn optional_flag(&self, names: &[&str]) -> Result<Option<bool>, ApiError> {
        self.any(names).map(|_| self.flag(names, true)).transpose()
    }

    fn number(&self, name: &str) -> Result<Option<f64>, RegistryError> {
        self.get(name)
            .map(|v| v.trim().parse::<f64>().map_err(|_| RegistryError::invalid(name, format!("not a number: {v:?}"))))
            .transpose()
    }

    /// `namespaceId` (default `public`) and `serviceName` (`group@@name`, or with `groupName`).
    pub(super) fn service_key(&self) -> Result<ServiceKey, NacosError> {
        let namespace = self.get("namespaceId");
        let name = self.required("serviceName")?;
        let (group, service) = match name.split_once("@@") {
            Some((group, service)) => (Some(group), service),
            None => (self.get("groupName"), name),
        };
        Ok(input::service_key(namespace, group, service)?)
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
        Ok(input::instance_key(ip, port, cluster)?)
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

    /// `pageNo` or `pageSize`: a whole number, at least 1 (a page below 1 is
    /// the first, as Nacos clamps it); anything else is a 400.
    fn page(&self, name: &str, default: u64) -> Result<u64, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => {
                let n = text
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| ApiError::invalid(format!("invalid {name}: must be a whole number, got {text:?}")))?;
                Ok(u64::try_from(n).unwrap_or(0).max(1))
            }
        }
    }

    /// The namespace a console parameter names; the parameter is required.
    fn console_namespace(&self, name: &str) -> Result<NamespaceId, ApiError> {
        Ok(NamespaceId::new(self.required(name)?)?)
    }

    /// The `namespaceMode` extension: `ap` or `cp`.
    fn namespace_mode(&self) -> Result<Option<Mode>, ApiError> {
        match self.get("namespaceMode") {
            None => Ok(None),
            Some("ap") => Ok(Some(Mode::Ap)),
            Some("cp") => Ok(Some(Mode::Cp)),
            Some(other) => Err(ApiError::invalid(format!("invalid namespaceMode: ap or cp, got {other:?}"))),
        }
    }
}

/// Instances: the inputs of [`janus_nacos::instance`].
impl Params {
    /// A registration or full update: the service and what the instance
    /// should be ([`input::instance_spec`]: the address must be one clients
    /// can connect to).
    pub(super) fn registration(&self) -> Result<(ServiceKey, InstanceSpec), NacosError> {
        let key = self.service_key()?;
        let instance = self.instance_key(None)?;
        let fields = InstanceFields {
            ephemeral: self.optional_flag(&["ephemeral"])?,
            weight: self.number("weight")?,
            healthy: self.flag(&["healthy"], true)?,
            enabled: self.flag(&["enabled", "enable"], true)?,
            metadata: self.metadata()?.unwrap_or_default(),
            custom_id: None,
        };
        Ok((key, input::instance_spec(instance, fields)?))
    }

    /// The service and the instance named.
    pub(super) fn instance(&self) -> Result<(ServiceKey, InstanceKey), NacosError> {
        Ok((self.service_key()?, self.instance_key(None)?))
    }

    /// An instance and the fields given, which alone change.
    pub(super) fn instance_patch(&self) -> Result<(ServiceKey, InstanceKey, InstancePatch), NacosError> {
        let (key, instance) = self.instance()?;
        let weight = self.number("weight")?;
        if let Some(weight) = weight {
            validate::check_weight(weight)?;
        }
        let patch = InstancePatch {
            weight,
            healthy: self.optional_flag(&["healthy"])?,
            enabled: self.optional_flag(&["enabled", "enable"])?,
            metadata: self.metadata()?,
            remove_metadata: Vec::new(),
        };
        Ok((key, instance, patch))
    }

    /// An instance list: service, `clusters`, `healthyOnly`, and a blocking
    /// query's `index`/`wait`, and `consistency`.
    pub(super) fn list_query(&self) -> Result<ListQuery, NacosError> {
        let key = self.service_key()?;
        let clusters_text = self.get("clusters").unwrap_or_default().to_owned();
        let clusters = input::cluster_filter(Some(&clusters_text))?;
        let healthy_only = self.flag(&["healthyOnly"], false)?;
        let index = self
            .get("index")
            .map(|v| v.parse::<u64>().map_err(|_| ApiError::invalid(format!("invalid index: {v:?}"))))
            .transpose()?;
        Ok(ListQuery {
            hosts: HostsQuery { key, clusters_text, clusters, healthy_only },
            index,
            wait: self.get("wait").map(str::to_owned),
            consistency: self.get("consistency").map(str::to_owned),
        })
    }

    /// A heartbeat: the service, the instance (from the `beat` JSON first),
    /// and the beat itself, which can register the instance again.
    pub(super) fn beat(&self) -> Result<(ServiceKey, InstanceKey, Option<BeatInfo>), NacosError> {
        let key = self.service_key()?;
        let beat = self
            .get("beat")
            .map(|text| {
                serde_json::from_str::<BeatInfo>(text)
                    .map_err(|e| ApiError::invalid(format!("invalid beat: not beat JSON: {e}")))
            })
            .transpose()?;
        let instance = self.instance_key(beat.as_ref())?;
        Ok((key, instance, beat))
    }

    /// The service of `key=[namespace##]group@@service`.
    pub(super) fn statuses_key(&self) -> Result<ServiceKey, NacosError> {
        let key = self.required("key")?;
        let (namespace, service) = key.split_once("##").map_or((None, key), |(n, s)| (Some(n), s));
        let (group, service) = service.split_once("@@").map_or((None, service), |(g, s)| (Some(g), s));
        Ok(input::service_key(namespace, group, service)?)
    }

    /// A batch metadata update: `metadata` for the instances listed in
    /// `instances` (JSON), or all of the service's.
    pub(super) fn metadata_batch(&self, remove: bool) -> Result<MetadataBatch, NacosError> {
        /// One entry of the `instances` parameter.
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct InstanceRef {
            ip: String,
            port: i64,
            #[serde(default)]
            cluster_name: Option<String>,
        }
        let key = self.service_key()?;
        let metadata = self.metadata()?.ok_or_else(|| ApiError::invalid("Param 'metadata' is required."))?;
        let instances = match self.get("instances") {
            Some(text) if text.trim() != "[]" => {
                let refs: Vec<InstanceRef> = serde_json::from_str(text).map_err(|e| {
                    ApiError::invalid(format!("invalid instances: expected [{{\"ip\",\"port\",\"clusterName\"}}]: {e}"))
                })?;
                let keys = refs
                    .into_iter()
                    .map(|r| input::instance_key(&r.ip, r.port, r.cluster_name.as_deref()))
                    .collect::<Result<_, RegistryError>>()?;
                Some(keys)
            }
            _ => None,
        };
        Ok(MetadataBatch { key, metadata, instances, remove })
    }

    /// A manual health update: the instance and `healthy`, which is required.
    pub(super) fn health_update(&self) -> Result<(ServiceKey, InstanceKey, bool), NacosError> {
        let (key, instance) = self.instance()?;
        let healthy = self.flag(&["healthy"], true)?;
        if self.get("healthy").is_none() {
            return Err(ApiError::invalid("Param 'healthy' is required.").into());
        }
        Ok((key, instance, healthy))
    }
}

/// Services: the inputs of [`janus_nacos::service`].
impl Params {
    /// A service definition: `protectThreshold` and `metadata`, validated.
    pub(super) fn service_settings(&self) -> Result<(ServiceKey, ServiceSettings), NacosError> {
        let key = self.service_key()?;
        let settings = ServiceSettings::new(self.number("protectThreshold")?, self.metadata()?.unwrap_or_default())?;
        Ok((key, settings))
    }

    /// A change of a service's settings; absent fields stay.
    pub(super) fn service_patch(&self) -> Result<(ServiceKey, ServicePatch), NacosError> {
        let key = self.service_key()?;
        let patch = ServicePatch { protect_threshold: self.number("protectThreshold")?, metadata: self.metadata()? };
        Ok((key, patch))
    }

    /// How a cluster's persistent instances are checked: `healthChecker` is
    /// `{"type":"TCP"|"HTTP"|"NONE","path":…}`; `checkPort` is used when
    /// `useInstancePort4Check` is false.
    pub(super) fn cluster_settings(&self) -> Result<(ServiceKey, ClusterName, ClusterSettings), NacosError> {
        let key = self.service_key()?;
        let cluster = ClusterName::new(self.required("clusterName")?)?;
        let checker: serde_json::Value = serde_json::from_str(self.get("healthChecker").unwrap_or(r#"{"type":"TCP"}"#))
            .map_err(|e| ApiError::invalid(format!("healthChecker is not JSON: {e}")))?;
        let use_instance_port = self.flag(&["useInstancePort4Check"], true)?;
        let port = match self.get("checkPort").filter(|_| !use_instance_port) {
            Some(text) => {
                let port = text
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| ApiError::invalid(format!("invalid checkPort: {text:?}")))?;
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
        let settings = ClusterSettings { health_check, metadata: self.metadata()?.unwrap_or_default() };
        Ok((key, cluster, settings))
    }

    /// A page of service names: `namespaceId`, `groupName`, `pageNo`, `pageSize`.
    pub(super) fn service_list(&self) -> Result<ServiceListQuery, NacosError> {
        let namespace = NamespaceId::new(self.get("namespaceId").unwrap_or(PUBLIC_NAMESPACE))?;
        let group = self.get("groupName").map(GroupName::new).transpose()?;
        let page = self.page("pageNo", 1)?;
        let size = self.page("pageSize", 10)?;
        Ok(ServiceListQuery { namespace, group, page, size })
    }
}

/// Console namespaces: the inputs of [`janus_nacos::namespace`].
impl Params {
    /// With `checkNamespaceIdExist=true&customNamespaceId=…` whether a
    /// namespace exists; with `show=all&namespaceId=…` one (empty: `public`);
    /// else all.
    pub(super) fn namespace_query(&self) -> Result<NamespaceQuery, NacosError> {
        if self.flag(&["checkNamespaceIdExist"], false)? {
            return Ok(NamespaceQuery::Exists(self.required("customNamespaceId")?.to_owned()));
        }
        if self.get("show") == Some("all") {
            let id = NamespaceId::new(self.get("namespaceId").unwrap_or(PUBLIC_NAMESPACE))?;
            return Ok(NamespaceQuery::One(id));
        }
        Ok(NamespaceQuery::All)
    }

    /// `customNamespaceId, namespaceName, namespaceDesc[, namespaceMode]`
    /// (`ap` unless asked otherwise).
    pub(super) fn namespace_spec(&self) -> Result<NamespaceSpec, NacosError> {
        let id = NamespaceId::new(self.required("customNamespaceId")?)?;
        let mode = self.namespace_mode()?.unwrap_or(Mode::Ap);
        let name = self.get("namespaceName").map(str::to_owned);
        let description = self.get("namespaceDesc").map(str::to_owned);
        Ok(NamespaceSpec::new(id, name, description, mode)?)
    }

    /// `namespace, namespaceShowName, namespaceDesc[, namespaceMode]`.
    pub(super) fn namespace_update(&self) -> Result<NamespaceUpdate, NacosError> {
        Ok(NamespaceUpdate {
            id: self.console_namespace("namespace")?,
            mode: self.namespace_mode()?,
            name: self.get("namespaceShowName").map(str::to_owned),
            description: self.get("namespaceDesc").map(str::to_owned),
        })
    }

    /// `namespaceId`.
    pub(super) fn namespace_id(&self) -> Result<NamespaceId, NacosError> {
        Ok(self.console_namespace("namespaceId")?)
    }
}

#[cfg(test)]
mod tests {
    use super::Params;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn v2_spellings_are_read_as_v1_names_unless_the_v1_name_is_given() {
        let renames = [("clusterName", "clusters"), ("namespaceId", "customNamespaceId")];
        let renamed = params(&[("clusterName", "blue"), ("namespaceId", "dev")]).renamed(&renames);
        assert_eq!((renamed.get("clusters"), renamed.get("customNamespaceId")), (Some("blue"), Some("dev")));
        let both = params(&[("clusterName", "blue"), ("clusters", "green")]).renamed(&renames);
        assert_eq!(both.get("clusters"), Some("green"));
        let empty = params(&[("clusterName", "")]).renamed(&renames);
        assert_eq!(empty.get("clusters"), None, "an empty value counts as absent");
    }

    #[test]
    fn an_added_parameter_gives_way_to_the_requests_own() {
        let added = params(&[("key", "from-query")]).with("key", "from-path".to_owned());
        assert_eq!(added.get("key"), Some("from-query"));
        assert_eq!(params(&[]).with("key", "from-path".to_owned()).get("key"), Some("from-path"));
    }
}
