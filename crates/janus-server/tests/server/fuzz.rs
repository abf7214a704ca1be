//! Random query strings and bodies thrown at every handler: the server answers
//! every one with a status (never 500), and never panics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{TestApp, encode};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use proptest::prelude::*;

const PATHS: &[&str] = &[
    "/v1/namespaces",
    "/v1/namespaces/{a}",
    "/v1/namespaces/{a}/services",
    "/v1/namespaces/{a}/events",
    "/v1/namespaces/public/services/{a}",
    "/v1/namespaces/public/services/{a}/instances",
    "/v1/namespaces/{a}/services/{b}/instances",
    "/v1/namespaces/public/services/{a}/instances/{b}/{c}",
    "/v1/namespaces/public/services/{a}/instances/{b}/{c}/heartbeat",
    "/nacos/v1/ns/instance",
    "/nacos/v1/ns/instance/list",
    "/nacos/v1/ns/instance/beat",
    "/nacos/v1/ns/instance/statuses",
    "/nacos/v1/ns/instance/metadata/batch",
    "/nacos/v1/ns/health/instance",
    "/nacos/v1/ns/service",
    "/nacos/v1/ns/service/list",
    "/nacos/v1/ns/operator/switches",
    "/nacos/v1/ns/operator/metrics",
    "/nacos/v1/console/namespaces",
    "/nacos/v2/ns/instance",
    "/nacos/v2/ns/instance/list",
    "/nacos/v2/ns/instance/beat",
    "/nacos/v2/ns/instance/statuses/{a}",
    "/nacos/v2/ns/service",
    "/nacos/v2/ns/service/list",
    "/nacos/v2/console/namespace",
    "/eureka/apps",
    "/eureka/apps/delta",
    "/eureka/apps/{a}",
    "/eureka/apps/{a}/{b}",
    "/eureka/apps/{a}/{b}/status",
    "/eureka/apps/{a}/{b}/metadata",
    "/eureka/instances/{a}",
    "/eureka/vips/{a}",
    "/health",
    "/metrics",
];

const KEYS: &[&str] = &[
    "serviceName",
    "groupName",
    "namespaceId",
    "ip",
    "port",
    "clusterName",
    "cluster",
    "weight",
    "healthy",
    "enabled",
    "enable",
    "ephemeral",
    "metadata",
    "beat",
    "clusters",
    "healthyOnly",
    "group",
    "healthy_only",
    "index",
    "wait",
    "page",
    "page_size",
    "service",
];

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![Just(Method::GET), Just(Method::POST), Just(Method::PUT), Just(Method::PATCH), Just(Method::DELETE)]
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("public".to_owned()),
        Just("10.0.0.1".to_owned()),
        Just("8080".to_owned()),
        Just("::1".to_owned()),
        "[a-z0-9.:_-]{1,12}",
        any::<String>(),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("10.0.0.1".to_owned()),
        Just("8080".to_owned()),
        Just("true".to_owned()),
        Just("0".to_owned()),
        Just("1s".to_owned()),
        Just("{\"k\":\"v\"}".to_owned()),
        "-?[0-9]{1,25}(\\.[0-9]{1,5})?",
        any::<String>(),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![proptest::sample::select(KEYS).prop_map(str::to_owned), any::<String>()];
    proptest::collection::vec((key, value()), 0..6).prop_map(|pairs| {
        pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
    })
}

fn body() -> impl Strategy<Value = (Option<&'static str>, Vec<u8>)> {
    let content_type = prop_oneof![
        Just(None),
        Just(Some("application/json")),
        Just(Some("application/x-www-form-urlencoded")),
        Just(Some("text/plain")),
        Just(Some("application/xml")),
    ];
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        query().prop_map(String::into_bytes),
        Just(br#"{"ip":"10.0.0.1","port":80}"#.to_vec()),
        Just(br#"{"id":"x","mode":"ap"}"#.to_vec()),
        Just(br#"{"instance":{"instanceId":"i","hostName":"h","app":"A","ipAddr":"10.0.0.1","port":{"$":80},"dataCenterInfo":{"name":"MyOwn"}}}"#.to_vec()),
        Just(b"<instance><instanceId>i</instanceId><ipAddr>10.0.0.1</ipAddr><hostName>h</hostName><port>1</port><dataCenterInfo/></instance>".to_vec()),
        "\\{\"[a-z_]{1,10}\":[0-9a-z\"\\[\\]{}]{0,12}\\}".prop_map(String::into_bytes),
    ];
    (content_type, bytes)
}

/// One runtime and node for every case: starting Raft per case would be slow.
static SHARED: std::sync::LazyLock<(tokio::runtime::Runtime, TestApp)> = std::sync::LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let app = runtime.block_on(TestApp::new());
    (runtime, app)
});

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn no_input_panics_or_errors_the_server(
        method in method(),
        path in proptest::sample::select(PATHS),
        segments in (segment(), segment(), segment()),
        query in query(),
        (content_type, body) in body(),
    ) {
        let (runtime, app) = &*SHARED;
        runtime.block_on(async {
            let path = path.replace("{a}", &encode(&segments.0)).replace("{b}", &encode(&segments.1)).replace("{c}", &encode(&segments.2));
            // Keep blocking queries short.
            let query = if query.contains("index=") { format!("{query}&wait=10ms") } else { query };
            let uri = if query.is_empty() { path } else { format!("{path}?{query}") };
            let mut request = Request::builder().method(method).uri(&uri);
            if let Some(content_type) = content_type {
                request = request.header(header::CONTENT_TYPE, content_type);
            }
            let is_events = uri.contains("/events");
            let request = request.body(Body::from(body)).unwrap();
            if is_events {
                // Streams never end by themselves: only check the status line.
                let response = tower::ServiceExt::oneshot(app.app.router.clone(), request).await.unwrap();
                prop_assert!(response.status() != StatusCode::INTERNAL_SERVER_ERROR);
                return Ok(());
            }
            let reply = app.send(request).await;
            prop_assert!(
                reply.status != StatusCode::INTERNAL_SERVER_ERROR,
                "{uri} -> {} {}", reply.status, reply.text()
            );
            if reply.status.is_client_error() && uri.starts_with("/v1/") {
                // Every native error is JSON with a code and a message.
                let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
                prop_assert!(
                    body["code"].is_string() && body["message"].is_string(),
                    "{uri} -> {}: {:?}", reply.status, reply.text()
                );
            }
            Ok(())
        })?;
    }
}
