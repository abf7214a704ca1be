//! Auth on (`docs/auth.md`): every route of the access table against every
//! kind of caller, logins, spoofed headers, and gRPC's `accessToken`.

#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use janus_auth::{AuthCommand, IssuedToken, Role, Scope, TokenKind, UserName};
use janus_core::RegistryService;
use janus_http::{ACCESS_TABLE, AccessNeed, AccessScope};
use janus_server::ServerConfig;
use serde_json::json;

use crate::support::{Reply, TestApp};

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A caller of the table test: its token, and the grant it holds.
struct Caller {
    label: &'static str,
    token: Option<String>,
    /// None: its token is not valid (missing, malformed, expired, revoked).
    grant: Option<Option<(Scope, Role)>>,
}

async fn user_with_token(
    app: &TestApp,
    name: &str,
    grant: Option<(Scope, Role)>,
    seed: u8,
    expires: Option<u64>,
) -> String {
    let node = &app.app.node;
    let user = UserName::parse(name).unwrap();
    node.auth_write(AuthCommand::CreateUser { name: user.clone(), password: None, at_unix_ms: now() }).await.unwrap();
    if let Some((scope, role)) = grant {
        node.auth_write(AuthCommand::Grant { user: user.clone(), scope, role }).await.unwrap();
    }
    let token = IssuedToken::mint([seed; 40]);
    node.auth_write(AuthCommand::IssueToken {
        id: token.id.clone(),
        hash: token.hash.clone(),
        user,
        kind: TokenKind::Api { name: "test".into() },
        at_unix_ms: now(),
        expires_unix_ms: expires,
    })
    .await
    .unwrap();
    token.text().to_owned()
}

async fn auth_app() -> TestApp {
    let mut config = ServerConfig::default();
    config.auth.enabled = Some(true);
    TestApp::with(config).await
}

/// The route with its parameters filled in, acting on namespace `team-a`.
fn concrete(path: &str) -> String {
    let filled = [
        ("{ns}", "team-a"),
        ("{service}", "svc"),
        ("{ip}", "127.0.0.1"),
        ("{port}", "80"),
        ("{cluster}", "DEFAULT"),
        ("{app}", "APP"),
        ("{id}", "0000000000000000"),
        ("{vip}", "vip"),
        ("{svip}", "svip"),
        ("{user}", "nobody"),
        ("{namespace}", "team-a"),
        ("{key}", "x"),
    ]
    .iter()
    .fold(path.to_owned(), |path, (from, to)| path.replace(from, to));
    if filled.starts_with("/nacos/") { format!("{filled}?namespaceId=team-a&serviceName=svc") } else { filled }
}

async fn call(app: &TestApp, method: &str, uri: &str, token: Option<&str>) -> Reply {
    let mut request = Request::builder().method(Method::from_bytes(method.as_bytes()).unwrap()).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    app.send(request.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn every_route_checks_its_rule_for_every_kind_of_caller() {
    let app = auth_app().await;
    let team_a = Scope::Namespace("team-a".into());
    let admin = user_with_token(&app, "root", Some((Scope::Global, Role::Admin)), 1, None).await;
    let reader = user_with_token(&app, "reader", Some((team_a.clone(), Role::Read)), 2, None).await;
    let writer = user_with_token(&app, "writer", Some((team_a.clone(), Role::Write)), 3, None).await;
    let ns_admin = user_with_token(&app, "ns-admin", Some((team_a.clone(), Role::Admin)), 4, None).await;
    let other = user_with_token(&app, "other", Some((Scope::Namespace("team-b".into()), Role::Admin)), 5, None).await;
    let expired = user_with_token(&app, "late", Some((Scope::Global, Role::Admin)), 6, Some(now() - 1)).await;
    let revoked = user_with_token(&app, "gone", Some((Scope::Global, Role::Admin)), 7, None).await;
    app.app.node.auth_write(AuthCommand::RevokeToken { id: IssuedToken::mint([7; 40]).id }).await.unwrap();
    let forged = format!("{}{}", &admin[..admin.len() - 1], if admin.ends_with('0') { "1" } else { "0" });
    let callers = [
        Caller { label: "no credentials", token: None, grant: None },
        Caller { label: "malformed token", token: Some("secret".into()), grant: None },
        Caller { label: "forged secret", token: Some(forged), grant: None },
        Caller { label: "expired token", token: Some(expired), grant: None },
        Caller { label: "revoked token", token: Some(revoked), grant: None },
        Caller {
            label: "admin elsewhere",
            token: Some(other),
            grant: Some(Some((Scope::Namespace("team-b".into()), Role::Admin))),
        },
        Caller { label: "reader", token: Some(reader), grant: Some(Some((team_a.clone(), Role::Read))) },
        Caller { label: "writer", token: Some(writer), grant: Some(Some((team_a.clone(), Role::Write))) },
        Caller { label: "namespace admin", token: Some(ns_admin), grant: Some(Some((team_a.clone(), Role::Admin))) },
        Caller { label: "global admin", token: Some(admin.clone()), grant: Some(Some((Scope::Global, Role::Admin))) },
    ];
    let eureka_scope = Scope::Namespace("public".into());
    let mut checked = 0;
    for (method, path, need) in ACCESS_TABLE {
        let uri = concrete(path);
        for caller in &callers {
            let expected = match (need, &caller.grant) {
                (AccessNeed::Open, _) => None,
                (_, None) => Some(StatusCode::UNAUTHORIZED),
                (AccessNeed::Authenticated, Some(_)) => None,
                (AccessNeed::Role(role, scoped), Some(grant)) => {
                    let scope = match scoped {
                        AccessScope::Global => Scope::Global,
                        AccessScope::PathNamespace | AccessScope::NacosNamespace => team_a.clone(),
                        AccessScope::Eureka => eureka_scope.clone(),
                    };
                    let allowed = grant.as_ref().is_some_and(|(held_scope, held)| {
                        held >= role && (*held_scope == Scope::Global || *held_scope == scope)
                    });
                    (!allowed).then_some(StatusCode::FORBIDDEN)
                }
            };
            let reply = call(&app, method, &uri, caller.token.as_deref()).await;
            match expected {
                Some(status) => {
                    assert_eq!(reply.status, status, "{method} {uri} as {}: {}", caller.label, reply.text())
                }
                None => assert!(
                    reply.status != StatusCode::UNAUTHORIZED && reply.status != StatusCode::FORBIDDEN,
                    "{method} {uri} as {} was refused: {} {}",
                    caller.label,
                    reply.status,
                    reply.text()
                ),
            }
            if expected == Some(StatusCode::UNAUTHORIZED) {
                assert!(reply.headers.contains_key("www-authenticate"), "{method} {uri}: a 401 names its scheme");
            }
            checked += 1;
        }
        // Every row is a route of the router: the global admin is never told "no such route".
        let reply = call(&app, method, &uri, Some(&admin)).await;
        assert!(
            !reply.text().contains("no such route") && reply.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is in the access table but not routed: {} {}",
            reply.status,
            reply.text()
        );
    }
    assert!(checked >= ACCESS_TABLE.len() * callers.len());
    // Open routes stay open; /metrics is open by default.
    for open in ["/health", "/ready", "/metrics"] {
        assert_eq!(app.get(open).await.status, StatusCode::OK, "{open}");
    }
}

#[tokio::test]
async fn spoofed_server_headers_do_not_pass_as_anyone() {
    let app = auth_app().await;
    for (header, value) in [
        ("user-agent", "Nacos-Server"),
        ("serverIdentity", "security"),
        ("x-janus-cluster-secret", "compose-demo-secret-change-me"),
        ("authorization", "Basic YWRtaW46YWRtaW4="),
        ("accessToken", ""),
    ] {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/nacos/v1/ns/instance?serviceName=s&ip=127.0.0.1&port=80")
            .header(header, value)
            .body(Body::empty())
            .unwrap();
        let reply = app.send(request).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{header}: {value}: {}", reply.text());
        assert!(!reply.text().contains(value) || value.is_empty(), "no credential echoed");
    }
}

#[tokio::test]
async fn a_nacos_login_gives_an_access_token_that_works_and_bad_logins_are_throttled() {
    let app = auth_app().await;
    let create = json!({"name": "team-a", "password": "correct horse"});
    // The access API itself needs a global admin.
    assert_eq!(app.post("/v1/auth/users", create.clone()).await.status, StatusCode::UNAUTHORIZED);
    let root = user_with_token(&app, "root", Some((Scope::Global, Role::Admin)), 1, None).await;
    let admin_call = |method: Method, uri: &str, body: serde_json::Value| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {root}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    assert_eq!(app.send(admin_call(Method::POST, "/v1/auth/users", create)).await.status, StatusCode::CREATED);
    let grant = json!({"namespace": "public", "role": "write"});
    let granted = app.send(admin_call(Method::PUT, "/v1/auth/users/team-a/grants", grant)).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text());
    assert_eq!(granted.json()["grants"], json!([{"namespace": "public", "role": "write"}]));

    let login = app
        .raw(
            Method::POST,
            "/nacos/v1/auth/login",
            "application/x-www-form-urlencoded",
            "username=team-a&password=correct+horse",
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    let body = login.json();
    assert_eq!((body["tokenTtl"].as_u64(), body["globalAdmin"].as_bool()), (Some(18_000), Some(false)));
    let token = body["accessToken"].as_str().unwrap().to_owned();
    let register = |namespace: &str| {
        let params = format!("serviceName=s&ip=127.0.0.1&port=80&namespaceId={namespace}&accessToken={token}");
        app.raw(Method::POST, "/nacos/v1/ns/instance", "application/x-www-form-urlencoded", params)
    };
    assert_eq!(register("public").await.text(), "ok");
    let elsewhere = register("other").await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    assert!(elsewhere.text().contains("team-a may not write in namespace other"), "{}", elsewhere.text());

    // Wrong passwords: 401, then throttled (429) for that user, even with the right one.
    for _ in 0..5 {
        let wrong = app.post("/v1/auth/login", json!({"username": "team-a", "password": "wrong horse"})).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(!wrong.text().contains("wrong horse"));
    }
    let throttled = app.post("/v1/auth/login", json!({"username": "team-a", "password": "correct horse"})).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS, "{}", throttled.text());
    // An unknown user is told the same as a wrong password.
    let unknown = app.post("/v1/auth/login", json!({"username": "ghost", "password": "whatever1"})).await;
    assert_eq!(
        (unknown.status, unknown.json()["message"].clone()),
        (StatusCode::UNAUTHORIZED, json!("wrong user name or password"))
    );
}

/// The roles as `docs/auth.md` states them, spelled out rather than read
/// from the access table: read lists, write registers, admin defines.
#[tokio::test]
async fn the_roles_mean_what_the_docs_say() {
    let app = auth_app().await;
    let team_a = Scope::Namespace("team-a".into());
    let reader = user_with_token(&app, "reader", Some((team_a.clone(), Role::Read)), 2, None).await;
    let writer = user_with_token(&app, "writer", Some((team_a.clone(), Role::Write)), 3, None).await;
    let ns_admin = user_with_token(&app, "ns-admin", Some((team_a.clone(), Role::Admin)), 4, None).await;
    let root = user_with_token(&app, "root", Some((Scope::Global, Role::Admin)), 5, None).await;
    let instances = "/v1/namespaces/team-a/services/svc/instances";
    let cases: [(&str, &str, &str, &String, bool); 12] = [
        ("reader lists instances", "GET", instances, &reader, true),
        ("reader registers", "POST", instances, &reader, false),
        ("writer registers", "POST", instances, &writer, true),
        ("writer beats", "PUT", "/v1/namespaces/team-a/services/svc/instances/127.0.0.1/80/heartbeat", &writer, true),
        ("writer deletes a service", "DELETE", "/v1/namespaces/team-a/services/svc", &writer, false),
        ("namespace admin deletes a service", "DELETE", "/v1/namespaces/team-a/services/svc", &ns_admin, true),
        ("namespace admin creates a namespace", "POST", "/v1/namespaces", &ns_admin, false),
        ("global admin creates a namespace", "POST", "/v1/namespaces", &root, true),
        (
            "writer registers over Nacos in its namespace",
            "POST",
            "/nacos/v1/ns/instance?namespaceId=team-a",
            &writer,
            true,
        ),
        ("writer registers over Nacos elsewhere", "POST", "/nacos/v1/ns/instance?namespaceId=team-b", &writer, false),
        ("namespace admin reads the cluster", "GET", "/v1/cluster", &ns_admin, false),
        ("namespace admin lists users", "GET", "/v1/auth/users", &ns_admin, false),
    ];
    for (what, method, uri, token, allowed) in cases {
        let reply = call(&app, method, uri, Some(token)).await;
        let refused = reply.status == StatusCode::FORBIDDEN;
        assert_eq!(!refused, allowed, "{what}: {} {}", reply.status, reply.text());
    }
}

/// The check reads a Nacos request's namespace exactly as the endpoint
/// does, so no spelling makes it authorize one namespace while the endpoint
/// acts on another.
#[tokio::test]
async fn a_nacos_request_cannot_slip_into_another_namespace() {
    let app = auth_app().await;
    let root = user_with_token(&app, "root", Some((Scope::Global, Role::Admin)), 9, None).await;
    let create = Request::builder()
        .method(Method::POST)
        .uri("/v1/namespaces")
        .header("authorization", format!("Bearer {root}"))
        .header("content-type", "application/json")
        .body(Body::from(json!({"id": "victim", "mode": "ap"}).to_string()))
        .unwrap();
    assert_eq!(app.send(create).await.status, StatusCode::CREATED);
    // One may write in public, the other in the namespace "null" (a legal id).
    let public_writer =
        user_with_token(&app, "public-writer", Some((Scope::Namespace("public".into()), Role::Write)), 1, None).await;
    let null_writer =
        user_with_token(&app, "null-writer", Some((Scope::Namespace("null".into()), Role::Write)), 2, None).await;
    // (what, token, method, uri, content type, body)
    type Attempt<'a> = (&'a str, &'a String, Method, &'a str, Option<&'a str>, &'a str);
    let attempts: [Attempt<'_>; 4] = [
        // A body without a content type is a form to the endpoint: to the check too.
        (
            "an untyped form body",
            &public_writer,
            Method::POST,
            "/nacos/v1/ns/instance?serviceName=s&ip=127.0.0.1&port=81",
            None,
            "namespaceId=victim",
        ),
        // `null` is "absent" (public) to the endpoint: to the check too.
        (
            "namespaceId=null",
            &null_writer,
            Method::POST,
            "/nacos/v1/ns/instance?serviceName=s&ip=127.0.0.1&port=82&namespaceId=null",
            None,
            "",
        ),
        // The first occurrence counts, for both: here `null`, so public.
        (
            "a second namespaceId in the form",
            &null_writer,
            Method::POST,
            "/nacos/v1/ns/instance?serviceName=s&ip=127.0.0.1&port=83&namespaceId=null",
            Some("application/x-www-form-urlencoded"),
            "namespaceId=victim",
        ),
        // Its key names any namespace: it needs a global grant.
        (
            "statuses by key",
            &public_writer,
            Method::GET,
            "/nacos/v1/ns/instance/statuses?key=victim%23%23DEFAULT_GROUP%40%40s",
            None,
            "",
        ),
    ];
    for (what, token, method, uri, content_type, body) in attempts {
        let mut request = Request::builder().method(method).uri(uri).header("accessToken", token.as_str());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let reply = app.send(request.body(Body::from(body.to_owned())).unwrap()).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}: {}", reply.text());
    }
    for ns in ["victim", "public"] {
        let key = janus_nacos::input::service_key(Some(ns), None, "s").unwrap();
        assert!(app.app.node.snapshot(&key).map_or(true, |s| s.instances.is_empty()), "nothing was written to {ns}");
    }
}

/// Every route the HTTP router declares, as `(METHOD, path)`, read from
/// janus-http's sources (`.route("<path>", get(..).post(..))`): axum cannot
/// list a router's routes, so the test reads what builds it.
fn declared_routes() -> Vec<(String, String)> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../janus-http/src");
    let mut routes = Vec::new();
    for file in ["lib.rs", "nacos.rs"] {
        let source = std::fs::read_to_string(src.join(file)).unwrap();
        for (at, _) in source.match_indices(".route(") {
            let rest = &source[at + ".route(".len()..];
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap();
            let args = &rest[..end];
            let path = args
                .trim_start()
                .strip_prefix('"')
                .and_then(|p| p.split('"').next())
                .unwrap_or_else(|| panic!("{file}: a route's path is not a string literal: {args}"));
            let handlers = &args[args.find(',').unwrap() + 1..];
            // Method routers at the top level of the handler expression.
            let (mut depth, mut word) = (0, String::new());
            let mut methods = Vec::new();
            for c in handlers.chars() {
                match c {
                    '(' => {
                        if depth == 0 && ["get", "post", "put", "delete", "patch", "head"].contains(&word.as_str()) {
                            methods.push(word.to_uppercase());
                        }
                        depth += 1;
                        word.clear();
                    }
                    ')' => depth -= 1,
                    c if c.is_ascii_alphanumeric() || c == '_' => word.push(c),
                    _ => word.clear(),
                }
            }
            assert!(!methods.is_empty(), "{file}: no method router found for {path}");
            routes.extend(methods.into_iter().map(|m| (m, path.to_owned())));
        }
    }
    routes
}

/// A route added to the router without a row in the access table fails
/// here (and is refused at run time: no rule, no access).
#[test]
fn every_route_of_the_router_has_an_access_rule() {
    let routes = declared_routes();
    assert!(routes.len() >= 60, "the scan found too few routes: {routes:?}");
    let table: std::collections::BTreeSet<(String, String)> =
        ACCESS_TABLE.iter().map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned())).collect();
    // `/metrics` is ruled by `auth.metrics_open` (open, or a global read), not by the table.
    let metrics = ("GET".to_owned(), "/metrics".to_owned());
    for (method, path) in routes.iter().filter(|route| **route != metrics) {
        assert!(table.contains(&(method.clone(), path.clone())), "{method} {path} is routed but has no access rule");
    }
    let routed: std::collections::BTreeSet<_> = routes.into_iter().collect();
    for row in &table {
        assert!(routed.contains(row), "{} {} has an access rule but is not routed", row.0, row.1);
    }
}
