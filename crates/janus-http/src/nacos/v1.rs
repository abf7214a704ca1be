//! Nacos v1's shape of the typed answers: JSON as they are, a write's
//! [`Ack`] as the text `ok`, an instance list with headers saying what the
//! read saw; errors as text with their status ([`NacosHttpError`]).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use janus_api::nacos::{
    BatchUpdated, BeatResponse, InstanceDetail, OperatorMetrics, ServiceDetail, ServiceNames, Statuses,
};
use serde::Serialize;
use serde_json::Value;

use janus_nacos::namespace::NamespaceLookup;
use janus_nacos::operator;
use janus_nacos::service::ServicePage;
use janus_nacos::{Ack, NacosError};

use super::list::FencedHostList;
use super::{Endpoint, Shape};
use crate::AppState;
use crate::consistency;
use crate::error::NacosHttpError;
use crate::extract::{Json, json_parts_response};

/// Nacos v1's shape.
pub(crate) enum V1 {}

/// A Nacos v1 route of `call` (see [`super::endpoints`]).
pub(crate) const fn endpoint<F>(call: F) -> Endpoint<V1, F> {
    Endpoint::new(call)
}

impl<T: Answer> Shape<T> for V1 {
    fn render(answer: Result<T, NacosError>) -> Response {
        match answer {
            Ok(answer) => answer.render(),
            Err(error) => NacosHttpError(error).into_response(),
        }
    }
}

/// A typed answer as Nacos v1 renders it: JSON unless it says otherwise.
pub(crate) trait Answer: Serialize + Sized {
    fn render(self) -> Response {
        Json(self).into_response()
    }
}

impl Answer for InstanceDetail {}
impl Answer for BeatResponse {}
impl Answer for Statuses {}
impl Answer for BatchUpdated {}
impl Answer for ServiceDetail {}
impl Answer for NamespaceLookup {}
/// The console's answer to a write.
impl Answer for bool {}

impl Answer for Ack {
    fn render(self) -> Response {
        "ok".into_response()
    }
}

/// v1 names the services `doms`.
impl Answer for ServicePage {
    fn render(self) -> Response {
        Json(ServiceNames { count: self.count, doms: self.services }).into_response()
    }
}

/// The `ServiceInfo`, with the revision and mode it reflects and the read's
/// consistency in headers, as native reads have them.
impl Answer for FencedHostList {
    fn render(self) -> Response {
        // The cached hosts are written from the cache, not copied into the answer.
        let mut response = json_parts_response(self.hosts.json_parts());
        let headers = response.headers_mut();
        headers.extend(crate::native::read_headers(self.hosts.revision, self.hosts.mode));
        consistency::headers(headers, &self.fence);
        response
    }
}

/// `GET /nacos/v1/ns/operator/switches`.
pub(crate) async fn switches(State(state): State<AppState>) -> Json<Value> {
    Json(operator::switches(&state.nacos))
}

/// `PUT /nacos/v1/ns/operator/switches`: refused.
pub(crate) async fn update_switches() -> NacosHttpError {
    NacosHttpError(operator::update_switches())
}

/// `GET /nacos/v1/ns/operator/metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Json<OperatorMetrics> {
    Json(operator::metrics(&state.nacos))
}
