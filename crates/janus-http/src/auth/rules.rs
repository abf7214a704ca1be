//! What each route needs: the access table (`docs/auth.md`).
//!
//! Every route of the router has a row here, by method and matched path. A
//! route without a row is refused while auth is on (fail closed), and the
//! router test walks this table so that a row for a route that does not
//! exist fails too.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::Method;
use janus_auth::Role;

/// Where the namespace a request acts on comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoped {
    /// No namespace: the action is on the registry or the cluster as a whole.
    Global,
    /// The `{ns}` path parameter (native API).
    PathNamespace,
    /// Nacos's `namespaceId` parameter (query or form), `public` when absent.
    NacosNamespace,
    /// Eureka's namespace (`eureka.namespace`).
    Eureka,
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: health, readiness, logins.
    Open,
    /// A valid token, whatever its grants (who am I, namespace lists).
    Authenticated,
    /// A role where the request acts.
    Role(Role, Scoped),
}

use Need::{Authenticated, Open};
use Scoped::{Eureka, Global, NacosNamespace, PathNamespace};

const fn role(role: Role, scoped: Scoped) -> Need {
    Need::Role(role, scoped)
}

const READ: Role = Role::Read;
const WRITE: Role = Role::Write;
const ADMIN: Role = Role::Admin;

/// (method, matched path, need); `/metrics` is decided by configuration.
pub const TABLE: &[(&str, &str, Need)] = &[
    ("GET", "/health", Open),
    // The console's files hold no data: its pages call the API with a token.
    ("GET", "/", Open),
    ("GET", "/console", Open),
    ("GET", "/console/", Open),
    ("GET", "/console/{asset}", Open),
    ("GET", "/ready", Open),
    ("GET", "/v1/cluster", role(READ, Global)),
    // Native API.
    ("GET", "/v1/namespaces", Authenticated),
    ("POST", "/v1/namespaces", role(ADMIN, Global)),
    ("GET", "/v1/namespaces/{ns}", role(READ, PathNamespace)),
    ("PATCH", "/v1/namespaces/{ns}", role(ADMIN, PathNamespace)),
    ("DELETE", "/v1/namespaces/{ns}", role(ADMIN, Global)),
    ("GET", "/v1/namespaces/{ns}/services", role(READ, PathNamespace)),
    ("POST", "/v1/namespaces/{ns}/services", role(ADMIN, PathNamespace)),
    ("GET", "/v1/namespaces/{ns}/events", role(READ, PathNamespace)),
    ("GET", "/v1/namespaces/{ns}/services/{service}", role(READ, PathNamespace)),
    ("PUT", "/v1/namespaces/{ns}/services/{service}", role(WRITE, PathNamespace)),
    ("DELETE", "/v1/namespaces/{ns}/services/{service}", role(ADMIN, PathNamespace)),
    ("GET", "/v1/namespaces/{ns}/services/{service}/events", role(READ, PathNamespace)),
    ("GET", "/v1/namespaces/{ns}/services/{service}/subscribers", role(READ, PathNamespace)),
    ("PUT", "/v1/namespaces/{ns}/services/{service}/clusters/{cluster}", role(WRITE, PathNamespace)),
    ("GET", "/v1/namespaces/{ns}/services/{service}/instances", role(READ, PathNamespace)),
    ("POST", "/v1/namespaces/{ns}/services/{service}/instances", role(WRITE, PathNamespace)),
    ("GET", "/v1/namespaces/{ns}/services/{service}/instances/{ip}/{port}", role(READ, PathNamespace)),
    ("PUT", "/v1/namespaces/{ns}/services/{service}/instances/{ip}/{port}", role(WRITE, PathNamespace)),
    ("PATCH", "/v1/namespaces/{ns}/services/{service}/instances/{ip}/{port}", role(WRITE, PathNamespace)),
    ("DELETE", "/v1/namespaces/{ns}/services/{service}/instances/{ip}/{port}", role(WRITE, PathNamespace)),
    ("PUT", "/v1/namespaces/{ns}/services/{service}/instances/{ip}/{port}/heartbeat", role(WRITE, PathNamespace)),
    // Access: logins are open, the rest is for global admins.
    ("POST", "/v1/auth/login", Open),
    ("GET", "/v1/auth/whoami", Authenticated),
    ("GET", "/v1/auth/users", role(ADMIN, Global)),
    ("POST", "/v1/auth/users", role(ADMIN, Global)),
    ("GET", "/v1/auth/users/{user}", role(ADMIN, Global)),
    ("DELETE", "/v1/auth/users/{user}", role(ADMIN, Global)),
    ("PUT", "/v1/auth/users/{user}/password", role(ADMIN, Global)),
    ("PUT", "/v1/auth/users/{user}/grants", role(ADMIN, Global)),
    ("DELETE", "/v1/auth/users/{user}/grants/{namespace}", role(ADMIN, Global)),
    ("GET", "/v1/auth/tokens", role(ADMIN, Global)),
    ("POST", "/v1/auth/tokens", role(ADMIN, Global)),
    ("DELETE", "/v1/auth/tokens/{id}", role(ADMIN, Global)),
    ("POST", "/nacos/v1/auth/login", Open),
    ("POST", "/nacos/v1/auth/users/login", Open),
    // Nacos v1.
    ("GET", "/nacos/v1/ns/instance", role(READ, NacosNamespace)),
    ("POST", "/nacos/v1/ns/instance", role(WRITE, NacosNamespace)),
    ("PUT", "/nacos/v1/ns/instance", role(WRITE, NacosNamespace)),
    ("PATCH", "/nacos/v1/ns/instance", role(WRITE, NacosNamespace)),
    ("DELETE", "/nacos/v1/ns/instance", role(WRITE, NacosNamespace)),
    ("GET", "/nacos/v1/ns/instance/list", role(READ, NacosNamespace)),
    ("PUT", "/nacos/v1/ns/instance/beat", role(WRITE, NacosNamespace)),
    // Its `key` may name any namespace (`namespace##group@@service`).
    ("GET", "/nacos/v1/ns/instance/statuses", role(READ, Global)),
    ("PUT", "/nacos/v1/ns/instance/metadata/batch", role(WRITE, NacosNamespace)),
    ("DELETE", "/nacos/v1/ns/instance/metadata/batch", role(WRITE, NacosNamespace)),
    ("PUT", "/nacos/v1/ns/health/instance", role(WRITE, NacosNamespace)),
    ("GET", "/nacos/v1/ns/service", role(READ, NacosNamespace)),
    ("POST", "/nacos/v1/ns/service", role(ADMIN, NacosNamespace)),
    ("PUT", "/nacos/v1/ns/service", role(WRITE, NacosNamespace)),
    ("DELETE", "/nacos/v1/ns/service", role(ADMIN, NacosNamespace)),
    ("GET", "/nacos/v1/ns/service/list", role(READ, NacosNamespace)),
    ("PUT", "/nacos/v1/ns/cluster", role(WRITE, NacosNamespace)),
    ("GET", "/nacos/v1/ns/operator/switches", role(READ, Global)),
    ("PUT", "/nacos/v1/ns/operator/switches", role(ADMIN, Global)),
    ("GET", "/nacos/v1/ns/operator/metrics", role(READ, Global)),
    ("GET", "/nacos/v1/console/namespaces", Authenticated),
    ("POST", "/nacos/v1/console/namespaces", role(ADMIN, Global)),
    ("PUT", "/nacos/v1/console/namespaces", role(ADMIN, Global)),
    ("DELETE", "/nacos/v1/console/namespaces", role(ADMIN, Global)),
    // Nacos v2.
    ("GET", "/nacos/v2/ns/instance", role(READ, NacosNamespace)),
    ("POST", "/nacos/v2/ns/instance", role(WRITE, NacosNamespace)),
    ("PUT", "/nacos/v2/ns/instance", role(WRITE, NacosNamespace)),
    ("PATCH", "/nacos/v2/ns/instance", role(WRITE, NacosNamespace)),
    ("DELETE", "/nacos/v2/ns/instance", role(WRITE, NacosNamespace)),
    ("GET", "/nacos/v2/ns/instance/list", role(READ, NacosNamespace)),
    ("PUT", "/nacos/v2/ns/instance/beat", role(WRITE, NacosNamespace)),
    ("GET", "/nacos/v2/ns/instance/statuses/{key}", role(READ, Global)),
    ("PUT", "/nacos/v2/ns/instance/metadata/batch", role(WRITE, NacosNamespace)),
    ("DELETE", "/nacos/v2/ns/instance/metadata/batch", role(WRITE, NacosNamespace)),
    ("PUT", "/nacos/v2/ns/health/instance", role(WRITE, NacosNamespace)),
    ("GET", "/nacos/v2/ns/service", role(READ, NacosNamespace)),
    ("POST", "/nacos/v2/ns/service", role(ADMIN, NacosNamespace)),
    ("PUT", "/nacos/v2/ns/service", role(WRITE, NacosNamespace)),
    ("DELETE", "/nacos/v2/ns/service", role(ADMIN, NacosNamespace)),
    ("GET", "/nacos/v2/ns/service/list", role(READ, NacosNamespace)),
    ("GET", "/nacos/v2/ns/operator/switches", role(READ, Global)),
    ("GET", "/nacos/v2/ns/operator/metrics", role(READ, Global)),
    ("GET", "/nacos/v2/console/namespace", Authenticated),
    ("POST", "/nacos/v2/console/namespace", role(ADMIN, Global)),
    ("PUT", "/nacos/v2/console/namespace", role(ADMIN, Global)),
    ("DELETE", "/nacos/v2/console/namespace", role(ADMIN, Global)),
    ("GET", "/nacos/v2/console/namespace/list", Authenticated),
    // Eureka.
    ("GET", "/eureka/apps", role(READ, Eureka)),
    ("GET", "/eureka/apps/", role(READ, Eureka)),
    ("GET", "/eureka/apps/delta", role(READ, Eureka)),
    ("GET", "/eureka/apps/{app}", role(READ, Eureka)),
    ("POST", "/eureka/apps/{app}", role(WRITE, Eureka)),
    ("GET", "/eureka/apps/{app}/{id}", role(READ, Eureka)),
    ("PUT", "/eureka/apps/{app}/{id}", role(WRITE, Eureka)),
    ("DELETE", "/eureka/apps/{app}/{id}", role(WRITE, Eureka)),
    ("PUT", "/eureka/apps/{app}/{id}/status", role(WRITE, Eureka)),
    ("DELETE", "/eureka/apps/{app}/{id}/status", role(WRITE, Eureka)),
    ("PUT", "/eureka/apps/{app}/{id}/metadata", role(WRITE, Eureka)),
    ("GET", "/eureka/instances/{id}", role(READ, Eureka)),
    ("GET", "/eureka/vips/{vip}", role(READ, Eureka)),
    ("GET", "/eureka/svips/{svip}", role(READ, Eureka)),
];

/// The table by route, then method: looked up on every request.
static BY_ROUTE: LazyLock<HashMap<&'static str, Vec<(&'static str, Need)>>> = LazyLock::new(|| {
    let mut by_route: HashMap<&'static str, Vec<(&'static str, Need)>> = HashMap::new();
    for (method, path, need) in TABLE {
        by_route.entry(path).or_default().push((method, *need));
    }
    by_route
});

/// What `method` on the route `path` needs; `None` for a route without a
/// row (refused). `HEAD` needs what `GET` needs.
pub(crate) fn need(method: &Method, path: &str, metrics_open: bool) -> Option<Need> {
    if path == "/metrics" {
        return Some(if metrics_open { Open } else { role(READ, Global) });
    }
    let method = if *method == Method::HEAD { "GET" } else { method.as_str() };
    BY_ROUTE.get(path)?.iter().find(|(m, _)| *m == method).map(|(_, need)| *need)
}
