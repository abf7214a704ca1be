//! The Nacos APIs: v1 (`/nacos/v1/ns/`, the console's `/nacos/v1/console/`)
//! and v2 (`/nacos/v2/ns/`, `/nacos/v2/console/`), two response shapes of the
//! same typed operations.
//!
//! # Layers
//! - `params`: a request's parameters ([`Params`]) parsed into typed inputs,
//!   once for both versions, with v1's names (v2 renames its own first),
//!   through the shared builders of `janus_nacos::input`;
//! - the operations are the shared Nacos layer, `janus-nacos`: every
//!   operation on typed inputs with a typed answer, free of axum, so the Nacos
//!   gRPC front end calls it too;
//! - `list`: an instance list's blocking wait and read fence, around the
//!   shared hosts;
//! - `endpoints`: each HTTP endpoint as parse, then operation;
//! - `v1`, `v2`: the shapes. v1 renders an answer as JSON, or as the text
//!   `ok`; v2 serializes it into its `{code, message, data}` envelope, with
//!   v2's error codes. No answer is rendered in one shape to be re-read in
//!   another.
//!
//! [`routes`] pairs each path and method with an endpoint and a shape
//! ([`Endpoint`]).

mod endpoints;
mod list;
mod params;
mod v1;
pub(crate) mod v2;

use std::marker::PhantomData;
use std::pin::Pin;

use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};

use params::Params;
pub(crate) use params::{has_form_body, is_present};

use crate::AppState;
use crate::error::NacosError;

/// How an API version renders an operation's answer of type `T`, or its error.
pub(crate) trait Shape<T> {
    fn render(answer: Result<T, NacosError>) -> Response;
}

/// An axum handler: reads the request's [`Params`], runs `call` (an endpoint:
/// parse, then operation) and renders its answer in the shape `R`.
pub(crate) struct Endpoint<R, F> {
    call: F,
    shape: PhantomData<fn() -> R>,
}

impl<R, F> Endpoint<R, F> {
    const fn new(call: F) -> Self {
        Self { call, shape: PhantomData }
    }
}

impl<R, F: Clone> Clone for Endpoint<R, F> {
    fn clone(&self) -> Self {
        Self::new(self.call.clone())
    }
}

impl<R, F, Fut, T> Handler<(R, T), AppState> for Endpoint<R, F>
where
    R: Shape<T> + 'static,
    F: FnOnce(AppState, Params) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T, NacosError>> + Send,
{
    type Future = Pin<Box<dyn Future<Output = Response> + Send>>;

    fn call(self, request: Request, state: AppState) -> Self::Future {
        Box::pin(async move {
            match Params::from_request(request, &state).await {
                Ok(params) => R::render((self.call)(state, params).await),
                // Unreadable parameters (a body over the limit): the
                // extractor's answer, in v1's text on v2 routes too.
                Err(rejection) => rejection.into_response(),
            }
        })
    }
}

/// The Nacos routes of both versions.
pub(crate) fn routes() -> Router<AppState> {
    // `v1(…)`, `v2(…)`: a shared endpoint in that version's shape;
    // `v1::…`, `v2::…`: the version's own handlers.
    use endpoints as ep;
    use v1::endpoint as v1;
    use v2::endpoint as v2;
    Router::new()
        .route(
            "/nacos/v1/ns/instance",
            get(v1(ep::get_instance))
                .post(v1(ep::register))
                .put(v1(ep::update))
                .patch(v1(ep::patch))
                .delete(v1(ep::deregister)),
        )
        .route("/nacos/v1/ns/instance/list", get(v1(ep::list)))
        .route("/nacos/v1/ns/instance/beat", put(v1(ep::beat)))
        .route("/nacos/v1/ns/instance/statuses", get(v1(ep::statuses)))
        .route("/nacos/v1/ns/instance/metadata/batch", put(v1(ep::put_metadata)).delete(v1(ep::delete_metadata)))
        .route("/nacos/v1/ns/health/instance", put(v1(ep::health)))
        .route(
            "/nacos/v1/ns/service",
            get(v1(ep::get_service))
                .post(v1(ep::create_service))
                .put(v1(ep::update_service))
                .delete(v1(ep::delete_service)),
        )
        .route("/nacos/v1/ns/service/list", get(v1(ep::list_services)))
        .route("/nacos/v1/ns/cluster", put(v1(ep::update_cluster)))
        .route("/nacos/v1/ns/operator/switches", get(v1::switches).put(v1::update_switches))
        .route("/nacos/v1/ns/operator/metrics", get(v1::metrics))
        .route(
            "/nacos/v1/console/namespaces",
            get(v1(ep::lookup_namespaces))
                .post(v1(ep::create_namespace))
                .put(v1(ep::update_namespace))
                .delete(v1(ep::delete_namespace)),
        )
        .route(
            "/nacos/v2/ns/instance",
            get(v2(ep::get_instance))
                .post(v2(ep::register))
                .put(v2(ep::update))
                .patch(v2(ep::patch))
                .delete(v2(ep::deregister)),
        )
        .route("/nacos/v2/ns/instance/list", get(v2(v2::list)))
        .route("/nacos/v2/ns/instance/beat", put(v2(ep::beat)))
        .route("/nacos/v2/ns/instance/statuses/{key}", get(v2::statuses))
        .route("/nacos/v2/ns/instance/metadata/batch", put(v2(ep::put_metadata)).delete(v2(ep::delete_metadata)))
        .route("/nacos/v2/ns/health/instance", put(v2(ep::health)))
        .route(
            "/nacos/v2/ns/service",
            get(v2(ep::get_service))
                .post(v2(ep::create_service))
                .put(v2(ep::update_service))
                .delete(v2(ep::delete_service)),
        )
        .route("/nacos/v2/ns/service/list", get(v2(ep::list_services)))
        .route("/nacos/v2/ns/operator/switches", get(v2::switches))
        .route("/nacos/v2/ns/operator/metrics", get(v2::metrics))
        .route(
            "/nacos/v2/console/namespace",
            get(v2(v2::get_namespace))
                .post(v2(v2::create_namespace))
                .put(v2(v2::update_namespace))
                .delete(v2(ep::delete_namespace)),
        )
        .route("/nacos/v2/console/namespace/list", get(v2::list_namespaces))
}
