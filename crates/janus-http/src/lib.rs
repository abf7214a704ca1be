//! The Janus HTTP front end.
//!
//! One axum router serves the native JSON API under `/v1/` (with
//! `GET /v1/cluster`), the Nacos v1 API (`/nacos/v1/ns/`, the console's
//! namespaces), the Nacos v2 API (`/nacos/v2/`), Eureka REST under `/eureka/`
//! (XML or JSON), watches (blocking queries and Server-Sent Events), and
//! `/health`, `/ready`, `/metrics`, and the web console (`/console/`,
//! embedded files; `console`). Handlers see only a [`RegistryService`];
//! every [`janus_core::RegistryError`] becomes a response in one place
//! ([`error`]).
//!
//! # Layout
//! - [`HttpConfig`], [`router`], [`serve`] / [`serve_with`], [`HttpMetrics`]:
//!   the public surface.
//! - `serve`: the bounded server loop: connection cap (evicting idle
//!   connections first), header deadline, bounded buffers.
//! - `admission`: body limits, load shedding in separate pools for reads,
//!   writes and watches, and request deadlines (watches have their own).
//! - `native/`: `/v1/` handlers per resource; `nacos/`: the Nacos v1 and v2
//!   APIs over the shared typed layer of Nacos operations (`janus-nacos`),
//!   each version a rendering of its answers; `eureka/`: Eureka REST and its
//!   XML codec.
//! - `consistency`: the `consistency` parameter of reads (`local` or
//!   `linearizable`) and the headers saying what a read had.
//! - the list cache (serialized list answers, checked against the service's
//!   revision) is `janus_nacos::list_cache`, shared with the native API.
//! - `watch`: blocking-query parameters and the event stream.
//! - `ops`: health, readiness, metrics, the cluster view, and the answers to
//!   unknown routes.

mod admission;
mod auth;
mod consistency;
mod console;
mod convert;
pub mod error;
mod eureka;
mod extract;
mod metrics;
mod nacos;
mod native;
mod ops;
mod serve;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use janus_core::RegistryService;
use janus_nacos::NacosContext;
use janus_nacos::list_cache::ListCache;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use auth::rules::{Need as AccessNeed, Scoped as AccessScope, TABLE as ACCESS_TABLE};
pub use axum::Router;
pub use metrics::HttpMetrics;
pub use serve::{ServeLimits, ServeStats, serve, serve_with};

/// HTTP front-end settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Longest a non-watch request may take, body read included.
    pub request_timeout: Duration,
    /// Reads (GET, HEAD) served at once; beyond it new ones are shed with 503.
    pub max_concurrent_reads: usize,
    /// Writes (every other method) served at once; beyond it new ones are
    /// shed with 503. Apart from reads, so a write flood never sheds reads.
    pub max_concurrent_writes: usize,
    /// Blocking queries and event streams open at once; beyond it, 503.
    pub max_watchers: usize,
    /// Connections held at once (see [`ServeLimits`]).
    pub max_connections: usize,
    /// Time a connection has to deliver a request header (see [`ServeLimits`]).
    pub header_timeout: Duration,
    /// Wait of a blocking query that names none.
    pub default_wait: Duration,
    /// Longest wait a blocking query may ask for.
    pub max_wait: Duration,
    /// Largest page of a service list.
    pub max_page_size: u64,
    /// Bytes of serialized list answers kept for reuse.
    pub list_cache_bytes: u64,
    /// The `ap` namespace whose services are the Eureka applications.
    pub eureka_namespace: String,
    /// The group whose services are the Eureka applications.
    pub eureka_group: String,
    /// Whether every request is checked against the node's users, tokens
    /// and grants (`docs/auth.md`); logins and the access API work either way.
    pub auth_enabled: bool,
    /// Whether `/metrics` is served without a token while auth is on.
    pub metrics_open: bool,
    /// Lifetime of a token issued by a login.
    pub login_token_ttl: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            max_concurrent_reads: 4096,
            max_concurrent_writes: 4096,
            max_watchers: 16_384,
            max_connections: 20_000,
            header_timeout: Duration::from_secs(10),
            default_wait: Duration::from_secs(300),
            max_wait: Duration::from_secs(600),
            max_page_size: 1000,
            list_cache_bytes: 64 * 1024 * 1024,
            eureka_namespace: janus_core::name::PUBLIC_NAMESPACE.to_owned(),
            eureka_group: janus_core::name::DEFAULT_GROUP.to_owned(),
            auth_enabled: false,
            metrics_open: true,
            // Nacos's default `tokenTtl`.
            login_token_ttl: Duration::from_secs(18_000),
        }
    }
}

impl HttpConfig {
    /// The limits of the listener serving this front end.
    #[must_use]
    pub fn serve_limits(&self) -> ServeLimits {
        ServeLimits { max_connections: self.max_connections, header_timeout: self.header_timeout, upgrades: false }
    }
}

/// What every handler gets: one shared allocation, so the per-request
/// clones axum makes cost one reference count, not one per field.
#[derive(Clone)]
pub(crate) struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The fields of [`AppState`].
pub(crate) struct SharedState {
    pub(crate) registry: Arc<dyn RegistryService>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) config: Arc<HttpConfig>,
    pub(crate) metrics: Arc<HttpMetrics>,
    pub(crate) reads: Arc<Semaphore>,
    pub(crate) writes: Arc<Semaphore>,
    pub(crate) watchers: Arc<Semaphore>,
    /// The Nacos layer's context; its list cache serves native lists too.
    pub(crate) nacos: NacosContext,
    /// Authentication and authorization (checks only while enabled).
    pub(crate) auth: Arc<auth::Guard>,
}

/// Builds the router over a registry.
///
/// When `shutdown` is cancelled, blocking queries return at once with the
/// current state and event streams end, so a graceful shutdown never waits
/// for a watch.
pub fn router(
    registry: Arc<dyn RegistryService>,
    config: HttpConfig,
    metrics: Arc<HttpMetrics>,
    shutdown: CancellationToken,
) -> Router {
    router_with(nacos_context(registry, &config), config, metrics, shutdown)
}

/// The Nacos layer's context for `config`: another front end (gRPC) that is
/// handed the same context shares its list cache with HTTP.
#[must_use]
pub fn nacos_context(registry: Arc<dyn RegistryService>, config: &HttpConfig) -> NacosContext {
    NacosContext {
        registry,
        lists: Arc::new(ListCache::new(config.list_cache_bytes)),
        max_page_size: config.max_page_size,
    }
}

/// [`router`] over a Nacos context built by [`nacos_context`].
pub fn router_with(
    nacos: NacosContext,
    config: HttpConfig,
    metrics: Arc<HttpMetrics>,
    shutdown: CancellationToken,
) -> Router {
    let auth_store = nacos.registry.auth_state().unwrap_or_default();
    let state = AppState(Arc::new(SharedState {
        auth: Arc::new(auth::Guard::new(&config, auth_store)),
        shutdown,
        reads: Arc::new(Semaphore::new(config.max_concurrent_reads)),
        writes: Arc::new(Semaphore::new(config.max_concurrent_writes)),
        watchers: Arc::new(Semaphore::new(config.max_watchers)),
        registry: nacos.registry.clone(),
        nacos,
        config: Arc::new(config.clone()),
        metrics,
    }));
    // Paths are literals: the access-table test reads them from here.
    let eureka = Router::new()
        .route("/eureka/apps", get(eureka::apps))
        .route("/eureka/apps/", get(eureka::apps))
        .route("/eureka/apps/delta", get(eureka::delta))
        .route("/eureka/apps/{app}", get(eureka::app).post(eureka::register))
        .route("/eureka/apps/{app}/{id}", get(eureka::instance).put(eureka::renew).delete(eureka::cancel))
        .route("/eureka/apps/{app}/{id}/status", put(eureka::put_status).delete(eureka::delete_status))
        .route("/eureka/apps/{app}/{id}/metadata", put(eureka::put_metadata))
        .route("/eureka/instances/{id}", get(eureka::instance_by_id))
        .route("/eureka/vips/{vip}", get(eureka::vips))
        .route("/eureka/svips/{svip}", get(eureka::svips))
        .layer(tower_http::compression::CompressionLayer::new().gzip(true));
    let routes = Router::new()
        .route("/v1/namespaces", get(native::namespaces::list).post(native::namespaces::create))
        .route(
            "/v1/namespaces/{ns}",
            get(native::namespaces::get).patch(native::namespaces::update).delete(native::namespaces::delete),
        )
        .route("/v1/namespaces/{ns}/services", get(native::services::list).post(native::services::create))
        .route("/v1/namespaces/{ns}/events", get(watch::namespace_events))
        .route(
            "/v1/namespaces/{ns}/services/{service}",
            get(native::services::get).put(native::services::update).delete(native::services::delete),
        )
        .route("/v1/namespaces/{ns}/services/{service}/events", get(watch::service_events))
        .route("/v1/namespaces/{ns}/services/{service}/subscribers", get(native::services::subscribers))
        .route("/v1/namespaces/{ns}/services/{service}/clusters/{cluster}", put(native::services::put_cluster))
        .route(
            "/v1/namespaces/{ns}/services/{service}/instances",
            get(native::instances::list).post(native::instances::register),
        )
        .route(
            "/v1/namespaces/{ns}/services/{service}/instances/{ip}/{port}",
            get(native::instances::get)
                .put(native::instances::update)
                .patch(native::instances::patch)
                .delete(native::instances::deregister),
        )
        .route(
            "/v1/namespaces/{ns}/services/{service}/instances/{ip}/{port}/heartbeat",
            put(native::instances::heartbeat),
        )
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/v1/cluster", get(ops::cluster))
        .route("/v1/auth/login", post(auth::login::native))
        .route("/v1/auth/whoami", get(auth::admin::whoami))
        .route("/v1/auth/users", get(auth::admin::list_users).post(auth::admin::create_user))
        .route("/v1/auth/users/{user}", get(auth::admin::get_user).delete(auth::admin::delete_user))
        .route("/v1/auth/users/{user}/password", put(auth::admin::set_password))
        .route("/v1/auth/users/{user}/grants", put(auth::admin::grant))
        .route("/v1/auth/users/{user}/grants/{namespace}", delete(auth::admin::revoke_grant))
        .route("/v1/auth/tokens", get(auth::admin::list_tokens).post(auth::admin::create_token))
        .route("/v1/auth/tokens/{id}", delete(auth::admin::revoke_token))
        .route("/nacos/v1/auth/login", post(auth::login::nacos))
        .route("/nacos/v1/auth/users/login", post(auth::login::nacos))
        .route("/", get(console::redirect))
        .route("/console", get(console::redirect))
        .route("/console/", get(console::index))
        .route("/console/{asset}", get(console::asset))
        .merge(nacos::routes())
        .merge(eureka);
    routes
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), admission::admit))
        .with_state(state)
}
