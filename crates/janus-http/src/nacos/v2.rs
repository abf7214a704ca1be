//! Nacos v2's shape of the typed answers: `{"code": 0, "message":
//! "success", "data": …}` with the answer itself as `data` (a write's
//! [`Ack`] is the string `"ok"`); an error has its status, Nacos v2's code
//! for it ([`NacosError::v2_code`]: parameter 10000, service
//! 21000/21007/21008/21009, weight 21001, instance 21003, namespace 22001,
//! not found 20004, server 30000) and `data` null.
//!
//! The endpoints here are those whose v2 parameters differ from v1's: they
//! rename v2's spellings to v1's, then parse as v1 does.
//!
//! [`Ack`]: janus_nacos::Ack

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use janus_nacos::NacosError;
use janus_nacos::namespace::{self, NamespaceLookup};
use janus_nacos::operator;

use super::list::FencedHostList;
use super::{Endpoint, Params, Shape, endpoints};
use crate::AppState;
use crate::extract::{Path, json_response};

/// Nacos v2's shape.
pub(crate) enum V2 {}

/// A Nacos v2 route of `call` (see [`super::endpoints`]).
pub(crate) const fn endpoint<F>(call: F) -> Endpoint<V2, F> {
    Endpoint::new(call)
}

impl<T: Serialize> Shape<T> for V2 {
    fn render(answer: Result<T, NacosError>) -> Response {
        match answer {
            Ok(data) => success(&data),
            Err(error) => failure(&error),
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    code: u32,
    message: &'a str,
    data: Option<&'a T>,
}

/// An answer in the envelope.
fn success<T: Serialize>(data: &T) -> Response {
    json_response(StatusCode::OK, &Envelope { code: 0, message: "success", data: Some(data) })
}

/// An error in the envelope: its status, message and v2 code.
pub(crate) fn failure(error: &NacosError) -> Response {
    let envelope = Envelope::<()> { code: error.v2_code(), message: error.message(), data: None };
    json_response(error.http_status(), &envelope)
}

/// `GET /nacos/v2/ns/instance/list`: v2 names the cluster filter `clusterName`.
pub(crate) async fn list(state: AppState, params: Params) -> Result<FencedHostList, NacosError> {
    endpoints::list(state, params.renamed(&[("clusterName", "clusters")])).await
}

/// `GET /nacos/v2/ns/instance/statuses/{key}`.
pub(crate) async fn statuses(State(state): State<AppState>, Path(key): Path<String>, params: Params) -> Response {
    V2::render(endpoints::statuses(state, params.with("key", key)).await)
}

/// `GET /nacos/v2/console/namespace?namespaceId=…`: one namespace (`public`
/// when none is named).
pub(crate) async fn get_namespace(state: AppState, params: Params) -> Result<NamespaceLookup, NacosError> {
    endpoints::lookup_namespaces(state, params.with("show", "all".to_owned())).await
}

/// `POST namespaceId, namespaceName, namespaceDesc[, namespaceMode]`.
pub(crate) async fn create_namespace(state: AppState, params: Params) -> Result<bool, NacosError> {
    endpoints::create_namespace(state, params.renamed(&[("namespaceId", "customNamespaceId")])).await
}

/// `PUT namespaceId, namespaceName, namespaceDesc`.
pub(crate) async fn update_namespace(state: AppState, params: Params) -> Result<bool, NacosError> {
    let renames = [("namespaceId", "namespace"), ("namespaceName", "namespaceShowName")];
    endpoints::update_namespace(state, params.renamed(&renames)).await
}

/// `GET /nacos/v2/console/namespace/list`: the array itself as `data`.
pub(crate) async fn list_namespaces(State(state): State<AppState>) -> Response {
    success(&namespace::list(&state.nacos))
}

/// `GET /nacos/v2/ns/operator/switches`.
pub(crate) async fn switches(State(state): State<AppState>) -> Response {
    success(&operator::switches(&state.nacos))
}

/// `GET /nacos/v2/ns/operator/metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    success(&operator::metrics(&state.nacos))
}
