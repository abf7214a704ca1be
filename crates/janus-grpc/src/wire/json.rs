//! The JSON bodies of the naming and connection messages
//! (`docs/grpc-design.md` §1.2, §1.3, §1.6).
//!
//! Inbound types are tolerant, as Nacos's Jackson settings are: every field
//! may be missing or `null`, unknown fields (`module`, Java's computed getters)
//! are ignored. Outbound types never serialize `null` and always carry
//! `resultCode`, `errorCode`, `message` and `requestId` ([`ResponseHeader`]),
//! which the Rust and Python SDKs require.

use std::collections::HashMap;

use janus_api::nacos::ServiceInfo;
use serde::{Deserialize, Deserializer, Serialize};

use super::types;

/// Reads `null` as the type's default (for collections, where `Option` would
/// only add a second way of saying "empty").
fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

// ---- inbound -------------------------------------------------------------

/// The fields of every request (§1.2). `headers` in the body are ignored:
/// they are read from `Metadata.headers`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RequestCommon {
    /// The client's id of this request; echoed in the answer.
    pub request_id: Option<String>,
}

/// The fields of every naming request (§1.2); defaults are applied later (§1.4).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NamingCommon {
    /// The client's id of this request.
    pub request_id: Option<String>,
    /// Namespace; null or `""` means `public`.
    pub namespace: Option<String>,
    /// Service name, possibly `group@@svc`.
    pub service_name: Option<String>,
    /// Group; null or `""` means `DEFAULT_GROUP`.
    pub group_name: Option<String>,
}

/// `ServerCheckRequest` and `HealthCheckRequest`: no fields of their own.
pub type EmptyRequest = RequestCommon;

/// `ConnectionSetupRequest` (client → server on the bi-stream).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConnectionSetupRequest {
    /// Common fields.
    #[serde(flatten)]
    pub common: RequestCommon,
    /// E.g. `Nacos-Java-Client:v2.3.0`.
    pub client_version: Option<String>,
    /// The client's namespace.
    pub tenant: Option<String>,
    /// Client labels (`source`, `AppName`, …).
    #[serde(deserialize_with = "null_as_default")]
    pub labels: HashMap<String, String>,
    /// Java ≥ 2.2 only; `None` when absent or null.
    pub ability_table: Option<HashMap<String, bool>>,
}

/// An instance as clients send it (`Instance.java`, the Rust SDK's `ServiceInstance`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InstanceBody {
    /// Custom id, or the Nacos default id, or none.
    pub instance_id: Option<String>,
    /// Address.
    pub ip: Option<String>,
    /// Port (validated later).
    pub port: Option<i64>,
    /// Weight, default 1.0.
    pub weight: Option<f64>,
    /// Default true.
    pub healthy: Option<bool>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Ignored: the request type decides.
    pub ephemeral: Option<bool>,
    /// Null or `""` means `DEFAULT`.
    pub cluster_name: Option<String>,
    /// Usually grouped `group@@svc`; the request's fields win.
    pub service_name: Option<String>,
    /// Instance metadata.
    #[serde(deserialize_with = "null_as_default")]
    pub metadata: HashMap<String, String>,
}

/// `InstanceRequest` and `PersistentInstanceRequest`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InstanceRequest {
    /// Common naming fields.
    #[serde(flatten)]
    pub naming: NamingCommon,
    /// [`types::REGISTER_INSTANCE`] or [`types::DEREGISTER_INSTANCE`].
    pub r#type: Option<String>,
    /// The instance.
    pub instance: Option<InstanceBody>,
}

/// `BatchInstanceRequest`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BatchInstanceRequest {
    /// Common naming fields.
    #[serde(flatten)]
    pub naming: NamingCommon,
    /// [`types::BATCH_REGISTER_INSTANCE`].
    pub r#type: Option<String>,
    /// The instances.
    #[serde(deserialize_with = "null_as_default")]
    pub instances: Vec<InstanceBody>,
}

/// `ServiceQueryRequest`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceQueryRequest {
    /// Common naming fields.
    #[serde(flatten)]
    pub naming: NamingCommon,
    /// Comma-separated clusters (singular field name on the wire).
    pub cluster: Option<String>,
    /// Only healthy instances.
    pub healthy_only: Option<bool>,
    /// Ignored.
    pub udp_port: Option<i64>,
}

/// `SubscribeServiceRequest`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SubscribeServiceRequest {
    /// Common naming fields.
    #[serde(flatten)]
    pub naming: NamingCommon,
    /// `false` means unsubscribe.
    pub subscribe: Option<bool>,
    /// Comma-separated clusters.
    pub clusters: Option<String>,
}

/// `ServiceListRequest`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceListRequest {
    /// Common naming fields.
    #[serde(flatten)]
    pub naming: NamingCommon,
    /// Page number, from 1.
    pub page_no: Option<i64>,
    /// Page size.
    pub page_size: Option<i64>,
    /// JSON of a label selector, or none.
    pub selector: Option<String>,
}

/// A client's answer on the bi-stream (`NotifySubscriberResponse`,
/// `ClientDetectionResponse`, `ConnectResetResponse`, `SetupAckResponse`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClientAnswer {
    /// The correlation key: the id of the server's request.
    pub request_id: Option<String>,
    /// 200 on success.
    pub result_code: Option<i32>,
    /// 0 on success.
    pub error_code: Option<i32>,
    /// Text, if any.
    pub message: Option<String>,
}

// ---- outbound ------------------------------------------------------------

/// `ResponseCode.SUCCESS`.
pub const RESULT_SUCCESS: i32 = 200;
/// `ResponseCode.FAIL`.
pub const RESULT_FAIL: i32 = 500;

/// The fields of every response (§1.2). Success is `200/0`; a failure has
/// `resultCode != 200` and `errorCode != 0` (§1.6).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseHeader {
    /// 200 or the failure code.
    pub result_code: i32,
    /// 0 or the Nacos error code.
    pub error_code: i32,
    /// Never null: `""` or text.
    pub message: String,
    /// Never null: the request's id, or `""`.
    pub request_id: String,
    /// `resultCode == 200`, as Java's `isSuccess()` getter.
    pub success: bool,
}

impl ResponseHeader {
    /// A success answer to the request with this id.
    pub fn ok(request_id: Option<&str>) -> Self {
        Self::new(RESULT_SUCCESS, 0, String::new(), request_id)
    }

    /// A failure answer (`error_code` must not be 0).
    pub fn fail(result_code: i32, error_code: i32, message: impl Into<String>, request_id: Option<&str>) -> Self {
        Self::new(result_code, error_code, message.into(), request_id)
    }

    fn new(result_code: i32, error_code: i32, message: String, request_id: Option<&str>) -> Self {
        Self {
            result_code,
            error_code,
            message,
            request_id: request_id.unwrap_or_default().to_owned(),
            success: result_code == RESULT_SUCCESS,
        }
    }
}

/// An outbound message: its JSON body and its `Metadata.type`.
pub trait WireMessage: Serialize {
    /// The `type` string sent in `Metadata.type`.
    fn wire_type(&self) -> &'static str;
}

/// A response with no fields of its own (`HealthCheckResponse`,
/// `ErrorResponse`), named by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BareResponse {
    /// The common fields.
    #[serde(flatten)]
    pub header: ResponseHeader,
    /// The `type` string; not part of the JSON.
    #[serde(skip)]
    pub kind: &'static str,
}

impl BareResponse {
    /// `HealthCheckResponse`.
    pub fn health_check(header: ResponseHeader) -> Self {
        Self { header, kind: types::HEALTH_CHECK_RESPONSE }
    }

    /// `ErrorResponse` (§1.6).
    pub fn error(header: ResponseHeader) -> Self {
        Self { header, kind: types::ERROR_RESPONSE }
    }
}

impl WireMessage for BareResponse {
    fn wire_type(&self) -> &'static str {
        self.kind
    }
}

/// `ServerCheckResponse`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerCheckResponse {
    /// The common fields.
    #[serde(flatten)]
    pub header: ResponseHeader,
    /// The id of the new connection.
    pub connection_id: String,
    /// Janus answers `false` (§2.3).
    pub support_ability_negotiation: bool,
}

impl WireMessage for ServerCheckResponse {
    fn wire_type(&self) -> &'static str {
        types::SERVER_CHECK_RESPONSE
    }
}

/// `InstanceResponse` or `BatchInstanceResponse`, named by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceResponse {
    /// The common fields.
    #[serde(flatten)]
    pub header: ResponseHeader,
    /// The request's `type` value, echoed.
    pub r#type: String,
    /// The `type` string; not part of the JSON.
    #[serde(skip)]
    pub kind: &'static str,
}

impl WireMessage for InstanceResponse {
    fn wire_type(&self) -> &'static str {
        self.kind
    }
}

/// `ServiceInfo` as Nacos sends it over gRPC (§1.3): the HTTP API's
/// [`ServiceInfo`] (with the plain service name in `name`, not the grouped
/// one) plus `allIps`, the Nacos 3 and Python spelling of `allIPs`. `H` is
/// the hosts array: a `Vec` of hosts or a prebuilt JSON fragment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcServiceInfo<H> {
    /// The fields the HTTP API has too.
    #[serde(flatten)]
    pub info: ServiceInfo<H>,
    /// The same as `info.all_ips` (`allIPs`).
    pub all_ips: bool,
}

impl<H> From<ServiceInfo<H>> for GrpcServiceInfo<H> {
    fn from(info: ServiceInfo<H>) -> Self {
        let all_ips = info.all_ips;
        Self { info, all_ips }
    }
}

/// `QueryServiceResponse` or `SubscribeServiceResponse`, named by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInfoResponse<H> {
    /// The common fields.
    #[serde(flatten)]
    pub header: ResponseHeader,
    /// The service; required by the Rust SDK, so omitted only on failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_info: Option<GrpcServiceInfo<H>>,
    /// The `type` string; not part of the JSON.
    #[serde(skip)]
    pub kind: &'static str,
}

impl<H: Serialize> WireMessage for ServiceInfoResponse<H> {
    fn wire_type(&self) -> &'static str {
        self.kind
    }
}

/// `ServiceListResponse`: plain names (§1.3).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceListResponse {
    /// The common fields.
    #[serde(flatten)]
    pub header: ResponseHeader,
    /// Total number of services in the group.
    pub count: u64,
    /// This page's plain names.
    pub service_names: Vec<String>,
}

impl WireMessage for ServiceListResponse {
    fn wire_type(&self) -> &'static str {
        types::SERVICE_LIST_RESPONSE
    }
}

/// A failure in the request's own response type (§1.6, the typed style):
/// the common fields, and `type` for `InstanceResponse`, whose decoders
/// require it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypedFailure {
    /// The common fields (a failure).
    #[serde(flatten)]
    pub header: ResponseHeader,
    /// The request's `type` value, for instance responses.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// The response's `type` string; not part of the JSON.
    #[serde(skip)]
    pub kind: &'static str,
}

impl WireMessage for TypedFailure {
    fn wire_type(&self) -> &'static str {
        self.kind
    }
}

/// The fields of every request the server sends on the bi-stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerRequestHeader {
    /// Always `{}`.
    pub headers: HashMap<String, String>,
    /// The server's id of this request; the client's answer carries it.
    pub request_id: String,
    /// `naming` or `internal`.
    pub module: &'static str,
}

impl ServerRequestHeader {
    /// The header of request `id` of `module`.
    pub fn new(id: u64, module: &'static str) -> Self {
        Self { headers: HashMap::new(), request_id: id.to_string(), module }
    }
}

/// A server request with no fields of its own (`ClientDetectionRequest`,
/// `ConnectResetRequest` naming no server), named by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BareServerRequest {
    /// The common fields.
    #[serde(flatten)]
    pub header: ServerRequestHeader,
    /// The `type` string; not part of the JSON.
    #[serde(skip)]
    pub kind: &'static str,
}

impl WireMessage for BareServerRequest {
    fn wire_type(&self) -> &'static str {
        self.kind
    }
}

/// `NotifySubscriberRequest`: a push of a subscribed service's new state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifySubscriberRequest<H> {
    /// The common fields (module `naming`).
    #[serde(flatten)]
    pub header: ServerRequestHeader,
    /// The service's namespace.
    pub namespace: String,
    /// The plain service name.
    pub service_name: String,
    /// The group.
    pub group_name: String,
    /// The service as a query answers it.
    pub service_info: GrpcServiceInfo<H>,
}

impl<H: Serialize> WireMessage for NotifySubscriberRequest<H> {
    fn wire_type(&self) -> &'static str {
        types::NOTIFY_SUBSCRIBER_REQUEST
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn tolerant_request_parsing() {
        let body = br#"{"requestId":null,"module":"naming","serviceName":"svc","instance":{"ip":"10.0.0.1","port":8080,"metadata":null,"instanceHeartBeatInterval":5000}}"#;
        let req: InstanceRequest = serde_json::from_slice(body).unwrap();
        assert_eq!(req.naming.request_id, None);
        assert_eq!(req.naming.namespace, None);
        assert_eq!(req.naming.service_name.as_deref(), Some("svc"));
        assert_eq!(req.r#type, None);
        let inst = req.instance.unwrap();
        assert_eq!(inst.ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(inst.port, Some(8080));
        assert!(inst.metadata.is_empty());
        assert_eq!(inst.weight, None);
    }

    #[test]
    fn empty_and_null_bodies_parse() {
        let q: ServiceQueryRequest = serde_json::from_slice(b"{}").unwrap();
        assert_eq!(q, ServiceQueryRequest::default());
        let b: BatchInstanceRequest = serde_json::from_slice(br#"{"instances":null,"groupName":null}"#).unwrap();
        assert!(b.instances.is_empty());
        let s: ConnectionSetupRequest =
            serde_json::from_slice(br#"{"labels":null,"abilities":{"x":{}},"clientVersion":"v"}"#).unwrap();
        assert!(s.labels.is_empty());
        assert_eq!(s.ability_table, None);
        assert_eq!(s.client_version.as_deref(), Some("v"));
        let e: EmptyRequest = serde_json::from_slice(br#"{"requestId":"7","headers":{}}"#).unwrap();
        assert_eq!(e.request_id.as_deref(), Some("7"));
    }

    #[test]
    fn response_field_names() {
        let r = ServerCheckResponse {
            header: ResponseHeader::ok(Some("1")),
            connection_id: "c1".to_owned(),
            support_ability_negotiation: false,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"resultCode":200,"errorCode":0,"message":"","requestId":"1","success":true,
                   "connectionId":"c1","supportAbilityNegotiation":false})
        );
        assert_eq!(r.wire_type(), "ServerCheckResponse");
    }

    #[test]
    fn failures_never_serialize_null() {
        let r: ServiceInfoResponse<Vec<String>> = ServiceInfoResponse {
            header: ResponseHeader::fail(RESULT_FAIL, 22001, "no ns", None),
            service_info: None,
            kind: types::QUERY_SERVICE_RESPONSE,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"resultCode":500,"errorCode":22001,"message":"no ns","requestId":"","success":false})
        );
    }

    #[test]
    fn service_info_field_names() {
        let info = GrpcServiceInfo::from(ServiceInfo {
            name: "svc".to_owned(),
            group_name: "DEFAULT_GROUP".to_owned(),
            clusters: String::new(),
            cache_millis: 10_000,
            hosts: Vec::<String>::new(),
            last_ref_time: 5,
            checksum: String::new(),
            all_ips: false,
            reach_protection_threshold: false,
            valid: true,
        });
        assert_eq!(
            serde_json::to_value(&info).unwrap(),
            json!({"name":"svc","groupName":"DEFAULT_GROUP","clusters":"","cacheMillis":10000,"hosts":[],
                   "lastRefTime":5,"checksum":"","allIPs":false,"allIps":false,
                   "reachProtectionThreshold":false,"valid":true})
        );
    }
}
