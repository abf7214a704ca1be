//! The Nacos HTTP endpoints both API versions serve: each parses its
//! parameters ([`Params`], with v1's names) and runs its operation
//! (`janus-nacos`'s, on [`AppState::nacos`]), answering the operation's typed answer. A route pairs an
//! endpoint with the shape of its API version (`super::v1::endpoint`,
//! `super::v2::endpoint`), which renders the answer.

use janus_api::nacos::{BatchUpdated, BeatResponse, InstanceDetail, ServiceDetail, Statuses};
use janus_nacos::namespace::{self, NamespaceLookup};
use janus_nacos::service::{self, ServicePage};
use janus_nacos::{Ack, NacosError, instance};

use super::Params;
use super::list::{self, FencedHostList};
use crate::AppState;

/// `POST …/ns/instance`.
pub(crate) async fn register(state: AppState, params: Params) -> Result<Ack, NacosError> {
    let (key, spec) = params.registration()?;
    instance::register(&state.nacos, key, spec).await
}

/// `PUT …/ns/instance`: a full update of an existing instance.
pub(crate) async fn update(state: AppState, params: Params) -> Result<Ack, NacosError> {
    let (key, spec) = params.registration()?;
    instance::update(&state.nacos, key, spec).await
}

/// `PATCH …/ns/instance`: only the given fields change.
pub(crate) async fn patch(state: AppState, params: Params) -> Result<Ack, NacosError> {
    let (key, target, patch) = params.instance_patch()?;
    instance::patch(&state.nacos, key, target, patch).await
}

/// `DELETE …/ns/instance`.
pub(crate) async fn deregister(state: AppState, params: Params) -> Result<Ack, NacosError> {
    let (key, target) = params.instance()?;
    instance::deregister(&state.nacos, key, target).await
}

/// `GET …/ns/instance`.
pub(crate) async fn get_instance(state: AppState, params: Params) -> Result<InstanceDetail, NacosError> {
    let (key, target) = params.instance()?;
    instance::get(&state.nacos, &key, &target)
}

/// `GET …/ns/instance/list` (also a blocking query with `index`/`wait`).
pub(crate) async fn list(state: AppState, params: Params) -> Result<FencedHostList, NacosError> {
    list::list(&state, params.list_query()?).await
}

/// `PUT …/ns/instance/beat`.
pub(crate) async fn beat(state: AppState, params: Params) -> Result<BeatResponse, NacosError> {
    let (key, target, beat) = params.beat()?;
    instance::beat(&state.nacos, key, target, beat).await
}

/// `GET /nacos/v1/ns/instance/statuses?key=[namespace##]group@@service`.
pub(crate) async fn statuses(state: AppState, params: Params) -> Result<Statuses, NacosError> {
    instance::statuses(&state.nacos, &params.statuses_key()?)
}

/// `PUT …/ns/instance/metadata/batch`: merges `metadata` into each instance.
pub(crate) async fn put_metadata(state: AppState, params: Params) -> Result<BatchUpdated, NacosError> {
    instance::update_metadata(&state.nacos, params.metadata_batch(false)?).await
}

/// `DELETE …/ns/instance/metadata/batch`: removes the keys of `metadata`.
pub(crate) async fn delete_metadata(state: AppState, params: Params) -> Result<BatchUpdated, NacosError> {
    instance::update_metadata(&state.nacos, params.metadata_batch(true)?).await
}

/// `PUT …/ns/health/instance`.
pub(crate) async fn health(state: AppState, params: Params) -> Result<Ack, NacosError> {
    let (key, target, healthy) = params.health_update()?;
    instance::set_health(&state.nacos, key, target, healthy).await
}

/// `POST …/ns/service`.
pub(crate) async fn create_service(state: AppState, params: Params) -> Result<Ack, NacosError> {
    let (key, settings) = params.service_settings()?;
    service::create(&state.nacos, key, settings).await
}

/// `PUT …/ns/service`.
pub(crate) async fn update_service(state: AppState, params: Params) -> Result<Ack, NacosError> {
    let (key, patch) = params.service_patch()?;
    service::update(&state.nacos, key, patch).await
}

/// `DELETE …/ns/service`.
pub(crate) async fn delete_service(state: AppState, params: Params) -> Result<Ack, NacosError> {
    service::delete(&state.nacos, params.service_key()?).await
}

/// `GET …/ns/service`.
pub(crate) async fn get_service(state: AppState, params: Params) -> Result<ServiceDetail, NacosError> {
    service::get(&state.nacos, &params.service_key()?)
}

/// `PUT /nacos/v1/ns/cluster`.
pub(crate) async fn update_cluster(state: AppState, params: Params) -> Result<Ack, NacosError> {
    let (key, cluster, settings) = params.cluster_settings()?;
    service::set_cluster(&state.nacos, key, cluster, settings).await
}

/// `GET …/ns/service/list?pageNo=1&pageSize=10`.
pub(crate) async fn list_services(state: AppState, params: Params) -> Result<ServicePage, NacosError> {
    service::list(&state.nacos, &params.service_list()?)
}

/// `GET` the console's namespaces: all, one, or whether one exists.
pub(crate) async fn lookup_namespaces(state: AppState, params: Params) -> Result<NamespaceLookup, NacosError> {
    namespace::lookup(&state.nacos, params.namespace_query()?)
}

/// `POST` a console namespace.
pub(crate) async fn create_namespace(state: AppState, params: Params) -> Result<bool, NacosError> {
    namespace::create(&state.nacos, params.namespace_spec()?).await
}

/// `PUT` a console namespace.
pub(crate) async fn update_namespace(state: AppState, params: Params) -> Result<bool, NacosError> {
    namespace::update(&state.nacos, params.namespace_update()?).await
}

/// `DELETE` a console namespace.
pub(crate) async fn delete_namespace(state: AppState, params: Params) -> Result<bool, NacosError> {
    namespace::delete(&state.nacos, params.namespace_id()?).await
}
