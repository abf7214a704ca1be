//! Authentication and authorization of every HTTP request (`docs/auth.md`):
//! one check ([`checked`]), run by the admission middleware on the matched
//! route before its handler.
//!
//! While auth is on, a request's route decides what it needs
//! ([`rules::TABLE`]); its credentials say who it is:
//! - `Authorization: Bearer <token>` (the native API, the CLI);
//! - `accessToken` as a header, a query parameter or a form field (Nacos
//!   clients, after `POST /nacos/v1/auth/login`);
//! - `Authorization: Basic` with a user name and password (Eureka clients).
//!   A verified password is remembered (by a hash of it) for a few minutes
//!   and while the user's password is unchanged, so a client sending it with
//!   every heartbeat costs one argon2 verification, not one per request.
//!
//! A request without valid credentials gets 401, one whose user lacks the
//! role gets 403, in the shape of the API it called. Denials are logged as
//! audit lines (`target: "janus::audit"`), never with a secret.

pub(crate) mod admin;
pub(crate) mod login;
pub(crate) mod rules;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{MatchedPath, RawPathParams, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::future::Either;
use janus_auth::{AuthError, AuthStore, LoginLimiter, PasswordHash, Principal, Scope, UserName};
use janus_core::RegistryError;
use janus_nacos::NacosError;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, NacosHttpError};
use rules::{Need, Scoped};

/// How long a verified basic-auth password is remembered.
const BASIC_CACHE_TTL: Duration = Duration::from_secs(300);
/// Verified basic-auth passwords remembered at most.
const BASIC_CACHE_ENTRIES: usize = 4096;

/// A basic-auth login: the user and the SHA-256 of the password.
type BasicKey = (String, [u8; 32]);
/// The password hash a basic-auth login was verified against, and when.
type Verified = (PasswordHash, Instant);

/// The checks of a node with auth on.
pub(crate) struct Guard {
    /// Whether requests are checked; logins and the admin API work either way.
    pub(crate) enabled: bool,
    /// Whether `/metrics` is open.
    metrics_open: bool,
    /// The body limit, for a form read to find its parameters.
    max_body_bytes: usize,
    /// The namespace Eureka's routes act on.
    eureka_namespace: String,
    pub(crate) store: Arc<AuthStore>,
    pub(crate) limiter: Mutex<LoginLimiter>,
    basic: Mutex<HashMap<BasicKey, Verified>>,
}

impl Guard {
    pub(crate) fn new(config: &crate::HttpConfig, store: Arc<AuthStore>) -> Self {
        Self {
            enabled: config.auth_enabled,
            metrics_open: config.metrics_open,
            max_body_bytes: config.max_body_bytes,
            eureka_namespace: config.eureka_namespace.clone(),
            store,
            limiter: Mutex::new(LoginLimiter::default()),
            basic: Mutex::new(HashMap::new()),
        }
    }

    /// Who `credentials` are.
    async fn authenticate(&self, credentials: Credentials) -> Result<Principal, AuthError> {
        match credentials {
            Credentials::None => Err(AuthError::Missing),
            Credentials::Token(token) => self.store.read(|state| state.authenticate(&token, unix_millis())),
            Credentials::Basic { user, password } => self.basic(user, password).await,
        }
    }

    async fn basic(&self, user: String, password: String) -> Result<Principal, AuthError> {
        let name = UserName::parse(&user).map_err(|_| AuthError::BadCredentials)?;
        let key = (user, Sha256::digest(password.as_bytes()).into());
        let current = self.store.read(|state| state.password_of(&name));
        let remembered = self.basic.lock().get(&key).cloned();
        if let (Some(current), Some((verified, at))) = (&current, remembered)
            && *current == verified
            && at.elapsed() < BASIC_CACHE_TTL
        {
            return Ok(Principal { user: name, token: None });
        }
        let limiter_keys = [format!("user:{}", name.as_str())];
        let keys: Vec<&str> = limiter_keys.iter().map(String::as_str).collect();
        self.limiter.lock().check(&keys, monotonic_millis())?;
        if verify_password(current.clone(), password).await {
            let mut basic = self.basic.lock();
            if basic.len() >= BASIC_CACHE_ENTRIES {
                basic.clear();
            }
            if let Some(current) = current {
                basic.insert(key, (current, Instant::now()));
            }
            Ok(Principal { user: name, token: None })
        } else {
            self.limiter.lock().failed(&keys, monotonic_millis());
            Err(AuthError::BadCredentials)
        }
    }
}

/// Password verifications running at once, at most: each takes argon2's
/// 19 MiB and tens of milliseconds of a core, so a flood of logins (or of
/// basic-auth requests under ever new user names) queues here, within the
/// request deadline, instead of taking the node's memory.
const CONCURRENT_PASSWORD_CHECKS: usize = 4;

/// Verifies `password` against `hash` off the async threads (argon2 takes
/// tens of milliseconds); without a hash it spends the same time and fails.
/// At most [`CONCURRENT_PASSWORD_CHECKS`] run at once.
pub(crate) async fn verify_password(hash: Option<PasswordHash>, password: String) -> bool {
    static CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_PASSWORD_CHECKS);
    let Ok(_permit) = CHECKS.acquire().await else { return false };
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => hash.verify(&password),
        None => {
            PasswordHash::verify_dummy(&password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// Wall-clock milliseconds since the Unix epoch (token expiry).
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds of a monotonic clock (login throttling).
pub(crate) fn monotonic_millis() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What a request presents.
enum Credentials {
    None,
    Token(String),
    Basic { user: String, password: String },
}

/// Checks a routed request, then runs the rest (see the module docs).
/// Called by the admission middleware, inside its deadline, so that the
/// check costs no layer of its own; a request no route matched goes on to
/// the fallback, which only answers what is not there.
///
/// Not an `async fn`: with access control off the future is `next`'s own,
/// holding the request once; the checks' future (credentials read, a
/// password verified) is boxed, so that it is not carried, at its largest
/// state's size, by every request (a held blocking query included).
pub(crate) fn checked(
    guard: Arc<Guard>,
    request: Request,
    next: Next,
) -> impl std::future::Future<Output = Response> + Send + 'static {
    if guard.enabled {
        Either::Right(Box::pin(async move { checked_with_auth(&guard, request, next).await }))
    } else {
        Either::Left(next.run(request))
    }
}

/// [`checked`] when access control is on.
async fn checked_with_auth(guard: &Guard, request: Request, next: Next) -> Response {
    let Some(path) = request.extensions().get::<MatchedPath>().cloned() else {
        return next.run(request).await;
    };
    let path = path.as_str();
    let method = request.method().clone();
    let Some(need) = rules::need(&method, path, guard.metrics_open) else {
        tracing::warn!(target: "janus::audit", %method, route = %path, "refused: the route has no access rule");
        return refusal(path, RegistryError::Forbidden(format!("{method} {path} has no access rule; refused")));
    };
    if need == Need::Open {
        return next.run(request).await;
    }
    let (request, credentials, namespace) = match inspect(request, guard, need, path.starts_with("/nacos/")).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (needed, namespace) = match need {
        Need::Role(role, Scoped::Global) => (Some(role), None),
        Need::Role(role, _) => (Some(role), namespace),
        Need::Open | Need::Authenticated => (None, None),
    };
    let is_write = method != axum::http::Method::GET && method != axum::http::Method::HEAD;
    // The access API's handlers read the caller; writes get an audit line
    // (when the log takes it).
    let audited = is_write && tracing::enabled!(target: "janus::audit", tracing::Level::INFO);
    let identify = audited || path.starts_with("/v1/auth/");
    let admitted = match credentials {
        Credentials::Token(token) => {
            let now = unix_millis();
            guard.store.read(|s| s.admit(&token, now, needed, namespace.as_deref(), identify))
        }
        other => match guard.authenticate(other).await {
            Ok(principal) => {
                let scope = namespace.clone().map_or(Scope::Global, Scope::Namespace);
                let granted =
                    needed.map_or(Ok(()), |role| guard.store.read(|s| s.authorize(&principal.user, role, &scope)));
                granted.map(|()| Some(principal))
            }
            Err(error) => Err(error),
        },
    };
    let principal = match admitted {
        Ok(principal) => principal,
        Err(error @ AuthError::Forbidden { .. }) => {
            tracing::info!(target: "janus::audit", %method, route = %path, reason = %error, "refused: not granted");
            return refusal(path, RegistryError::Auth(error));
        }
        Err(error) => {
            tracing::info!(target: "janus::audit", %method, route = %path, reason = %error, "refused: not authenticated");
            return refusal(path, RegistryError::Auth(error));
        }
    };
    let Some(principal) = principal else { return next.run(request).await };
    if audited {
        tracing::info!(target: "janus::audit", user = %principal.user,
            token = %principal.token.as_ref().map_or("-", |t| t.as_str()), %method, route = %path,
            namespace = namespace.as_deref().unwrap_or("-"), "write");
    }
    let mut request = request;
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// The request's credentials and the namespace it acts on; on a Nacos route
/// (`nacos`) a form body is read (within the body limit) and put back. The
/// query and the form are read in one pass.
async fn inspect(
    request: Request,
    guard: &Guard,
    need: Need,
    nacos: bool,
) -> Result<(Request, Credentials, Option<String>), Response> {
    let (mut parts, body) = request.into_parts();
    // Nacos's parameters, read as its endpoints read them (`nacos::params`):
    // the query, then a form body (also one without a content type); the
    // first occurrence of a name counts, and an empty, `None` or `null`
    // value is absent.
    let (body, form) = if nacos && crate::nacos::has_form_body(&parts.headers) {
        let limit = guard.max_body_bytes;
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
            ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "body_too_large",
                message: format!("the request body is over the limit of {limit} bytes"),
            }
            .into_response()
        })?;
        (Body::from(bytes.clone()), Some(bytes))
    } else {
        (body, None)
    };
    let mut found = NacosParams::default();
    found.scan(parts.uri.query().unwrap_or_default().as_bytes());
    found.scan(form.as_deref().unwrap_or_default());
    let NacosParams { token, namespace_id } = found;
    let credentials = credentials(&parts.headers).unwrap_or(match token {
        Some(token) => Credentials::Token(token),
        None => Credentials::None,
    });
    let namespace = match need {
        Need::Role(_, Scoped::PathNamespace) => {
            let params =
                <RawPathParams as axum::extract::FromRequestParts<()>>::from_request_parts(&mut parts, &()).await.ok();
            params.and_then(|p| p.iter().find(|(key, _)| *key == "ns").map(|(_, value)| value.to_owned()))
        }
        Need::Role(_, Scoped::NacosNamespace) => Some(
            namespace_id
                .filter(|ns| crate::nacos::is_present(ns))
                .unwrap_or_else(|| janus_core::name::PUBLIC_NAMESPACE.to_owned()),
        ),
        Need::Role(_, Scoped::Eureka) => Some(guard.eureka_namespace.clone()),
        Need::Role(_, Scoped::Global) | Need::Open | Need::Authenticated => None,
    };
    Ok((Request::from_parts(parts, body), credentials, namespace))
}

/// The two parameters the check reads from a Nacos request, each the first
/// occurrence, decoded as `form_urlencoded` decodes it.
#[derive(Default)]
struct NacosParams {
    token: Option<String>,
    namespace_id: Option<String>,
}

impl NacosParams {
    /// Takes `accessToken` and `namespaceId` from form-encoded `input`
    /// unless already found. Only those pairs are decoded: the check runs on
    /// every request, and the endpoint parses the rest anyway.
    fn scan(&mut self, input: &[u8]) {
        // Pair by pair, jumping over values (a beat's JSON is long) with memchr.
        let mut rest = input;
        while !rest.is_empty() && (self.token.is_none() || self.namespace_id.is_none()) {
            let end = memchr::memchr(b'&', rest).unwrap_or(rest.len());
            let pair = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or_default();
            if pair.is_empty() {
                continue;
            }
            let raw_key = &pair[..memchr::memchr(b'=', pair).unwrap_or(pair.len())];
            let encoded = raw_key.iter().any(|b| *b == b'%' || *b == b'+');
            let is = |name: &str| raw_key == name.as_bytes() || (encoded && decoded(pair).0 == name);
            if self.token.is_none() && is("accessToken") {
                // A token needs no decoding unless a client encoded it anyway.
                let value = pair.get(raw_key.len() + 1..).unwrap_or_default();
                let plain = (!encoded && !value.iter().any(|b| *b == b'%' || *b == b'+'))
                    .then(|| std::str::from_utf8(value).ok())
                    .flatten();
                self.token = Some(plain.map_or_else(|| decoded(pair).1, str::to_owned));
            } else if self.namespace_id.is_none() && is("namespaceId") {
                self.namespace_id = Some(decoded(pair).1);
            }
        }
    }
}

/// One `key=value` pair, decoded.
fn decoded(pair: &[u8]) -> (String, String) {
    form_urlencoded::parse(pair).next().map(|(k, v)| (k.into_owned(), v.into_owned())).unwrap_or_default()
}

/// Credentials in the headers: `Authorization` (Bearer or Basic) or Nacos's
/// `accessToken` header.
fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(Credentials::Token(rest.trim().to_owned()));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok();
            let text = decoded.and_then(|bytes| String::from_utf8(bytes).ok());
            return Some(match text.as_deref().and_then(|t| t.split_once(':')) {
                Some((user, password)) => Credentials::Basic { user: user.to_owned(), password: password.to_owned() },
                None => Credentials::Token(String::new()),
            });
        }
        return Some(Credentials::Token(value.to_owned()));
    }
    // A `HeaderName`, not a `&str`: looking a name up by text parses it each time.
    static ACCESS_TOKEN: header::HeaderName = header::HeaderName::from_static("accesstoken");
    headers.get(&ACCESS_TOKEN).and_then(|v| v.to_str().ok()).map(|token| Credentials::Token(token.to_owned()))
}

/// A refusal in the shape of the API `route` belongs to, with a
/// `WWW-Authenticate` challenge on a 401.
pub(crate) fn refusal(route: &str, error: RegistryError) -> Response {
    let challenge = if route.starts_with("/eureka") { "Basic realm=\"janus\"" } else { "Bearer realm=\"janus\"" };
    let unauthenticated = matches!(&error, RegistryError::Auth(e) if e.is_unauthenticated());
    let mut response = if route.starts_with("/nacos/v2") {
        crate::nacos::v2::failure(&NacosError::from(error))
    } else if route.starts_with("/nacos/") {
        NacosHttpError(NacosError::from(error)).into_response()
    } else {
        ApiError::from(error).into_response()
    };
    if unauthenticated {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(inputs: &[&str]) -> (Option<String>, Option<String>) {
        let mut found = NacosParams::default();
        for input in inputs {
            found.scan(input.as_bytes());
        }
        (found.token, found.namespace_id)
    }

    /// The check reads the parameters as the endpoints do (`form_urlencoded`):
    /// first occurrence, query before form, keys and values decoded.
    #[test]
    fn the_token_and_namespace_are_read_as_the_endpoints_read_them() {
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(scanned(&["serviceName=a&accessToken=t1&namespaceId=ns&accessToken=t2"]), (some("t1"), some("ns")));
        assert_eq!(scanned(&["ip=1", "namespaceId=form&accessToken=t"]), (some("t"), some("form")));
        assert_eq!(scanned(&["namespaceId=q", "namespaceId=form"]), (None, some("q")), "the query comes first");
        assert_eq!(scanned(&["%61ccessToken=a%2Bb&namespace%49d=team+a"]), (some("a+b"), some("team a")));
        assert_eq!(scanned(&["&&namespaceId&accessToken="]), (some(""), some("")));
        assert_eq!(scanned(&["accessTokenX=1&xnamespaceId=2"]), (None, None));
    }
}
