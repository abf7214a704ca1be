//! The server over a real socket: start on port 0, register and list through
//! the Nacos API with a real HTTP client, then shut down gracefully.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use janus_server::ServerConfig;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn serves_over_tcp_and_shuts_down_gracefully() {
    let mut config = ServerConfig::default();
    config.http.addr = "127.0.0.1:0".parse().unwrap();
    let shutdown = CancellationToken::new();
    let server = janus_server::start(config, shutdown.clone()).await.unwrap();
    let base = format!("http://{}", server.http_addr);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();

    let register = Request::post(format!("{base}/nacos/v1/ns/instance"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::from("serviceName=e2e&ip=127.0.0.1&port=9000"))
        .unwrap();
    let response = client.request(register).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "ok");

    let list = Request::get(format!("{base}/nacos/v1/ns/instance/list?serviceName=e2e")).body(Full::default()).unwrap();
    let body = client.request(list).await.unwrap().into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["hosts"][0]["port"], 9000);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server.wait()).await.expect("shutdown is prompt").unwrap();
    let refused = client.request(Request::get(format!("{base}/health")).body(Full::default()).unwrap()).await;
    assert!(refused.is_err(), "nothing listens after shutdown");
}
