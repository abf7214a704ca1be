//! Unary requests (`/Request/request`): the checks every request passes, in
//! Nacos's order (`docs/grpc-design.md` §2.4), then the handler of its type.
//!
//! 1. the node is not ready → 300;
//! 2. `ServerCheckRequest` is answered;
//! 3. an unknown type → 302;
//! 4. a connection without setup → 301 (after a short wait if its bi-stream
//!    is open);
//! 5. the body is parsed → 502;
//! 6. the request context is built (the auth hook);
//! 7. the handler runs, within the request deadline.

use std::sync::Arc;

use janus_core::name::{GroupName, NamespaceId, PUBLIC_NAMESPACE, ServiceKey};
use janus_nacos::input::{self, InstanceFields};
use janus_nacos::instance::{HostList, HostsQuery};
use janus_nacos::service::ServiceListQuery;
use janus_nacos::{NacosError, instance as ops};

use crate::answer::{self, Failure, ResponseKind};
use crate::conn::{Conn, Subscription};
use crate::server::Shared;
use crate::wire::envelope::Inbound;
use crate::wire::json::{
    BareResponse, BatchInstanceRequest, EmptyRequest, GrpcServiceInfo, InstanceBody, InstanceRequest, InstanceResponse,
    NamingCommon, ResponseHeader, ServerCheckResponse, ServiceInfoResponse, ServiceListRequest, ServiceListResponse,
    ServiceQueryRequest, SubscribeServiceRequest,
};
use crate::wire::proto::Payload;
use crate::wire::types;

/// Who asks: what a handler and the [`Authorizer`] know of a request
/// besides its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The connection's Nacos id.
    pub connection_id: String,
    /// The `accessToken` header, if the client sent one.
    pub access_token: Option<String>,
    /// The `app` header, if the client sent one.
    pub app: Option<String>,
}

/// What a request does to a namespace, for the [`Authorizer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Queries, subscriptions, service lists.
    Read,
    /// Registrations and deregistrations.
    Write,
}

/// Decides whether a request may touch a namespace. It sees the request's
/// context (its `accessToken` header included) and answers before any
/// naming handler runs; a refusal is answered as Nacos's auth filter does
/// (the request's own response type, error code 403). Connection requests
/// (server check, setup, health check) are never checked.
pub trait Authorizer: Send + Sync + 'static {
    /// `Ok` to let the request through.
    ///
    /// # Errors
    /// [`RegistryError::Forbidden`](janus_core::RegistryError::Forbidden) saying why not.
    fn authorize(
        &self,
        context: &RequestContext,
        access: Access,
        namespace: &NamespaceId,
    ) -> Result<(), janus_core::RegistryError>;
}

/// Lets every request through (until authentication is configured).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _: &RequestContext, _: Access, _: &NamespaceId) -> Result<(), janus_core::RegistryError> {
        Ok(())
    }
}

fn authorize(
    shared: &Shared,
    context: &RequestContext,
    access: Access,
    namespace: &NamespaceId,
) -> Result<(), Failure> {
    Ok(shared.authorizer.authorize(context, access, namespace)?)
}

/// Answers one unary request.
pub(crate) async fn handle(conn: &Arc<Conn>, shared: &Arc<Shared>, payload: Payload) -> Payload {
    conn.touch();
    shared.stats.count_request();
    let inbound = match Inbound::decode(payload) {
        Ok(inbound) => inbound,
        Err(err) => return answer::failure(Failure::protocol(answer::NO_HANDLER, err.to_string()), None, None),
    };
    if !shared.nacos.registry.is_ready() {
        let message = "Server is starting, please try later: this node is still loading the registry";
        return answer::failure(Failure::protocol(answer::SERVER_NOT_READY, message), None, None);
    }
    let kind = inbound.kind();
    if kind == types::SERVER_CHECK_REQUEST {
        let request_id = inbound.parse::<EmptyRequest>().ok().and_then(|r| r.request_id);
        return answer::success(&ServerCheckResponse {
            header: ResponseHeader::ok(request_id.as_deref()),
            connection_id: conn.label.clone(),
            support_ability_negotiation: false,
        });
    }
    let Some(handler) = Handler::of(kind) else {
        let message = format!("RequestHandler Not Found: no handler for request type '{kind}'");
        return answer::failure(Failure::protocol(answer::NO_HANDLER, message), None, None);
    };
    if !conn.wait_set_up(shared.config.setup_wait).await {
        let message = "Connection is unregistered: open the bi-stream and send ConnectionSetupRequest first";
        return answer::failure(Failure::protocol(answer::UNREGISTERED, message), None, None);
    }
    let context = RequestContext {
        connection_id: conn.label.clone(),
        access_token: inbound.access_token().map(str::to_owned),
        app: inbound.app().map(str::to_owned),
    };
    match tokio::time::timeout(shared.config.request_timeout, handler.run(conn, shared, &inbound, &context)).await {
        Ok(payload) => payload,
        Err(_) => {
            let message = format!("{kind} timed out after {:?}", shared.config.request_timeout);
            answer::failure(Failure::protocol(answer::SERVER_ERROR, message), None, None)
        }
    }
}

/// The request types served, one handler each.
#[derive(Debug, Clone, Copy)]
enum Handler {
    HealthCheck,
    Instance,
    BatchInstance,
    PersistentInstance,
    ServiceQuery,
    Subscribe,
    ServiceList,
}

impl Handler {
    fn of(kind: &str) -> Option<Self> {
        Some(match kind {
            types::HEALTH_CHECK_REQUEST => Self::HealthCheck,
            types::INSTANCE_REQUEST => Self::Instance,
            types::BATCH_INSTANCE_REQUEST => Self::BatchInstance,
            types::PERSISTENT_INSTANCE_REQUEST => Self::PersistentInstance,
            types::SERVICE_QUERY_REQUEST => Self::ServiceQuery,
            types::SUBSCRIBE_SERVICE_REQUEST => Self::Subscribe,
            types::SERVICE_LIST_REQUEST => Self::ServiceList,
            _ => return None,
        })
    }

    /// The response type, for failures in the typed style.
    fn response_kind(self) -> ResponseKind {
        let (kind, instance_type) = match self {
            Self::HealthCheck => (types::HEALTH_CHECK_RESPONSE, None),
            Self::Instance | Self::PersistentInstance => (types::INSTANCE_RESPONSE, Some(types::REGISTER_INSTANCE)),
            Self::BatchInstance => (types::BATCH_INSTANCE_RESPONSE, Some(types::BATCH_REGISTER_INSTANCE)),
            Self::ServiceQuery => (types::QUERY_SERVICE_RESPONSE, None),
            Self::Subscribe => (types::SUBSCRIBE_SERVICE_RESPONSE, None),
            Self::ServiceList => (types::SERVICE_LIST_RESPONSE, None),
        };
        ResponseKind { kind, instance_type }
    }

    async fn run(self, conn: &Arc<Conn>, shared: &Arc<Shared>, inbound: &Inbound, context: &RequestContext) -> Payload {
        let kind = self.response_kind();
        // The write handlers' futures are boxed: the registry's calls make
        // them large, and every request's future would otherwise be as large
        // (and be moved as a whole) whatever its type.
        macro_rules! parsed {
            ($t:ty) => {
                match inbound.parse::<$t>() {
                    Ok(request) => request,
                    Err(err) => {
                        return answer::failure(Failure::protocol(answer::BAD_BODY, err.to_string()), Some(kind), None);
                    }
                }
            };
        }
        match self {
            Self::HealthCheck => {
                let request = parsed!(EmptyRequest);
                answer::success(&BareResponse::health_check(ResponseHeader::ok(request.request_id.as_deref())))
            }
            Self::Instance => {
                let request = parsed!(InstanceRequest);
                let id = request.naming.request_id.clone();
                respond(Box::pin(instance(conn, shared, request, context)).await, kind, id)
            }
            Self::BatchInstance => {
                let request = parsed!(BatchInstanceRequest);
                let id = request.naming.request_id.clone();
                respond(Box::pin(batch(conn, shared, request, context)).await, kind, id)
            }
            Self::PersistentInstance => {
                let request = parsed!(InstanceRequest);
                let id = request.naming.request_id.clone();
                respond(Box::pin(persistent(shared, request, context)).await, kind, id)
            }
            Self::ServiceQuery => {
                let request = parsed!(ServiceQueryRequest);
                let id = request.naming.request_id.clone();
                respond(query(shared, request, context), kind, id)
            }
            Self::Subscribe => {
                let request = parsed!(SubscribeServiceRequest);
                let id = request.naming.request_id.clone();
                respond(subscribe(conn, shared, request, context), kind, id)
            }
            Self::ServiceList => {
                let request = parsed!(ServiceListRequest);
                let id = request.naming.request_id.clone();
                respond(service_list(shared, request, context), kind, id)
            }
        }
    }
}

/// What a handler answers: a success (given the request id to echo) or a failure.
type Answer = Result<Box<dyn FnOnce(Option<&str>) -> Payload + Send>, Failure>;

fn respond(answer: Answer, kind: ResponseKind, request_id: Option<String>) -> Payload {
    match answer {
        Ok(render) => render(request_id.as_deref()),
        Err(failure) => answer::failure(failure, Some(kind), request_id.as_deref()),
    }
}

fn instance_answer(instance_type: String, kind: &'static str) -> Answer {
    Ok(Box::new(move |id| {
        answer::success(&InstanceResponse { header: ResponseHeader::ok(id), r#type: instance_type, kind })
    }))
}

/// The service a naming request names (`docs/grpc-design.md` §1.4): an empty
/// namespace is `public`, an empty group `DEFAULT_GROUP`, and a name of the
/// form `group@@service` carries its group.
fn service_key(naming: &NamingCommon) -> Result<ServiceKey, Failure> {
    let non_empty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    let name = non_empty(&naming.service_name)
        .ok_or_else(|| NacosError::invalid("serviceName is required and must not be empty"))?;
    let (group, service) = match name.split_once("@@") {
        Some((group, service)) if non_empty(&naming.group_name).is_none() => (Some(group.to_owned()), service),
        Some((_, service)) => (non_empty(&naming.group_name), service),
        None => (non_empty(&naming.group_name), name.as_str()),
    };
    Ok(input::service_key(non_empty(&naming.namespace).as_deref(), group.as_deref(), service)?)
}

/// An instance spec from a client's instance; `ephemeral` is the request
/// type's (the body's flag is ignored, as Nacos does).
fn instance_spec(
    body: &InstanceBody,
    ephemeral: bool,
    key: &ServiceKey,
) -> Result<janus_core::model::InstanceSpec, Failure> {
    let ip =
        body.ip.as_deref().filter(|ip| !ip.is_empty()).ok_or_else(|| NacosError::invalid("instance.ip is required"))?;
    let port = body.port.ok_or_else(|| NacosError::invalid("instance.port is required"))?;
    let instance = input::instance_key(ip, port, body.cluster_name.as_deref())?;
    // Clients fill instanceId with Nacos's default id; only another one is custom.
    let custom_id = body
        .instance_id
        .as_deref()
        .filter(|id| !id.is_empty() && *id != instance.default_instance_id(key))
        .map(str::to_owned);
    let fields = InstanceFields {
        weight: body.weight,
        healthy: body.healthy.unwrap_or(true),
        enabled: body.enabled.unwrap_or(true),
        ephemeral: Some(ephemeral),
        metadata: body.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        custom_id,
    };
    Ok(input::instance_spec(instance, fields)?)
}

fn write_permit(shared: &Shared) -> Result<tokio::sync::SemaphorePermit<'_>, Failure> {
    shared.writes.try_acquire().map_err(|_| {
        Failure::protocol(answer::OVERLOADED, "too many instance writes in progress on this node; retry in a moment")
    })
}

async fn instance(
    conn: &Arc<Conn>,
    shared: &Arc<Shared>,
    request: InstanceRequest,
    context: &RequestContext,
) -> Answer {
    let key = service_key(&request.naming)?;
    authorize(shared, context, Access::Write, &key.namespace)?;
    let registry = &shared.nacos.registry;
    match request.r#type.as_deref() {
        Some(types::REGISTER_INSTANCE) => {
            let body = request.instance.ok_or_else(|| NacosError::invalid("instance is required"))?;
            let spec = instance_spec(&body, true, &key)?;
            let _permit = write_permit(shared)?;
            registry.publish_bound(key, vec![spec], conn.binding).await?;
            instance_answer(types::REGISTER_INSTANCE.to_owned(), types::INSTANCE_RESPONSE)
        }
        Some(types::DEREGISTER_INSTANCE) => {
            let _permit = write_permit(shared)?;
            registry.unpublish_bound(key, conn.binding).await?;
            instance_answer(types::DEREGISTER_INSTANCE.to_owned(), types::INSTANCE_RESPONSE)
        }
        other => Err(unsupported_type(other, &[types::REGISTER_INSTANCE, types::DEREGISTER_INSTANCE])),
    }
}

async fn batch(
    conn: &Arc<Conn>,
    shared: &Arc<Shared>,
    request: BatchInstanceRequest,
    context: &RequestContext,
) -> Answer {
    let key = service_key(&request.naming)?;
    authorize(shared, context, Access::Write, &key.namespace)?;
    if request.r#type.as_deref() != Some(types::BATCH_REGISTER_INSTANCE) {
        return Err(unsupported_type(request.r#type.as_deref(), &[types::BATCH_REGISTER_INSTANCE]));
    }
    let max = shared.config.max_batch;
    if request.instances.len() > max {
        let message =
            format!("a batch register holds at most {max} instances; this one has {}", request.instances.len());
        return Err(NacosError::invalid(message).into());
    }
    let specs = request.instances.iter().map(|body| instance_spec(body, true, &key)).collect::<Result<Vec<_>, _>>()?;
    let _permit = write_permit(shared)?;
    shared.nacos.registry.publish_bound(key, specs, conn.binding).await?;
    instance_answer(types::BATCH_REGISTER_INSTANCE.to_owned(), types::BATCH_INSTANCE_RESPONSE)
}

async fn persistent(shared: &Arc<Shared>, request: InstanceRequest, context: &RequestContext) -> Answer {
    let key = service_key(&request.naming)?;
    authorize(shared, context, Access::Write, &key.namespace)?;
    let body = request.instance.ok_or_else(|| NacosError::invalid("instance is required"))?;
    let spec = instance_spec(&body, false, &key)?;
    let _permit = write_permit(shared)?;
    match request.r#type.as_deref() {
        Some(types::REGISTER_INSTANCE) => {
            ops::register(&shared.nacos, key, spec).await?;
            instance_answer(types::REGISTER_INSTANCE.to_owned(), types::INSTANCE_RESPONSE)
        }
        Some(types::DEREGISTER_INSTANCE) => {
            ops::deregister(&shared.nacos, key, spec.key).await?;
            instance_answer(types::DEREGISTER_INSTANCE.to_owned(), types::INSTANCE_RESPONSE)
        }
        other => Err(unsupported_type(other, &[types::REGISTER_INSTANCE, types::DEREGISTER_INSTANCE])),
    }
}

fn unsupported_type(given: Option<&str>, supported: &[&str]) -> Failure {
    let given = given.unwrap_or("(none)");
    NacosError::invalid(format!("unsupported request type '{given}'; expected one of: {}", supported.join(", "))).into()
}

/// The hosts of a service as gRPC sends them: with the plain service name.
pub(crate) fn service_info(
    shared: &Shared,
    key: &ServiceKey,
    clusters_text: &str,
    healthy_only: bool,
) -> Result<(GrpcServiceInfo<janus_nacos::instance::CachedHosts>, u64), Failure> {
    let query = HostsQuery {
        key: key.clone(),
        clusters_text: clusters_text.to_owned(),
        clusters: input::cluster_filter(Some(clusters_text))?,
        healthy_only,
    };
    let HostList { mut info, revision, .. } = ops::hosts(&shared.nacos, query)?;
    info.name = key.service.to_string();
    Ok((GrpcServiceInfo::from(info), revision))
}

fn info_answer(info: GrpcServiceInfo<janus_nacos::instance::CachedHosts>, kind: &'static str) -> Answer {
    Ok(Box::new(move |id| {
        answer::success(&ServiceInfoResponse { header: ResponseHeader::ok(id), service_info: Some(info), kind })
    }))
}

fn query(shared: &Arc<Shared>, request: ServiceQueryRequest, context: &RequestContext) -> Answer {
    let key = service_key(&request.naming)?;
    authorize(shared, context, Access::Read, &key.namespace)?;
    let clusters = request.cluster.unwrap_or_default();
    let (info, _) = service_info(shared, &key, &clusters, request.healthy_only.unwrap_or(false))?;
    info_answer(info, types::QUERY_SERVICE_RESPONSE)
}

fn subscribe(
    conn: &Arc<Conn>,
    shared: &Arc<Shared>,
    request: SubscribeServiceRequest,
    context: &RequestContext,
) -> Answer {
    let key = service_key(&request.naming)?;
    authorize(shared, context, Access::Read, &key.namespace)?;
    let clusters_text = request.clusters.unwrap_or_default();
    input::cluster_filter(Some(&clusters_text))?;
    // The namespace must exist before anything is recorded.
    shared.nacos.registry.namespace(&key.namespace)?;
    if request.subscribe.unwrap_or(true) {
        {
            let mut subscriptions = conn.subscriptions.lock();
            let max = shared.config.max_subscriptions_per_connection;
            if !subscriptions.contains_key(&key) && subscriptions.len() >= max {
                let message = format!("a connection subscribes to at most {max} services");
                return Err(NacosError::invalid(message).into());
            }
            let subscription =
                Subscription { clusters_text: clusters_text.clone(), acked_revision: 0, last_push: None };
            if subscriptions.insert(key.clone(), subscription).is_none() {
                shared.stats.subscribed(1);
            }
        }
        // Indexed (and the change feed open) before the read: a change after
        // it is pushed, one before it is in the answer.
        shared.subscribers.add(&key, conn);
        shared.feed.ensure_open(shared);
        let (info, revision) = service_info(shared, &key, &clusters_text, false)?;
        if let Some(subscription) = conn.subscriptions.lock().get_mut(&key) {
            subscription.acked_revision = subscription.acked_revision.max(revision);
        }
        info_answer(info, types::SUBSCRIBE_SERVICE_RESPONSE)
    } else {
        if conn.subscriptions.lock().remove(&key).is_some() {
            shared.stats.subscribed(-1);
        }
        conn.dirty.lock().remove(&key);
        shared.subscribers.remove(&key, conn.id);
        let (info, _) = service_info(shared, &key, &clusters_text, false)?;
        info_answer(info, types::SUBSCRIBE_SERVICE_RESPONSE)
    }
}

fn service_list(shared: &Arc<Shared>, request: ServiceListRequest, context: &RequestContext) -> Answer {
    let naming = &request.naming;
    let namespace = naming.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(PUBLIC_NAMESPACE);
    let group = naming.group_name.as_deref().filter(|g| !g.is_empty());
    let namespace = NamespaceId::new(namespace)?;
    authorize(shared, context, Access::Read, &namespace)?;
    let query = ServiceListQuery {
        namespace,
        group: Some(group.map(GroupName::new).transpose()?.unwrap_or_else(GroupName::default_group)),
        page: u64::try_from(request.page_no.unwrap_or(1)).unwrap_or(1).max(1),
        size: u64::try_from(request.page_size.unwrap_or(10)).unwrap_or(10).max(1),
    };
    let page = janus_nacos::service::list(&shared.nacos, &query)?;
    Ok(Box::new(move |id| {
        answer::success(&ServiceListResponse {
            header: ResponseHeader::ok(id),
            count: page.count,
            service_names: page.services,
        })
    }))
}
