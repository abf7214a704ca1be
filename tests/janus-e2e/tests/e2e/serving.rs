//! Serving over real sockets, overload shedding, request deadlines and
//! graceful shutdown with open watches.

use std::time::{Duration, Instant};

use janus_client::{Body, Method, StatusCode};
use janus_e2e::{Node, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

#[tokio::test]
async fn serves_over_tcp_and_shuts_down_gracefully() {
    let node = Node::start(|_| {}).await;
    let answer = node.form(Method::POST, "/nacos/v1/ns/instance", "serviceName=e2e&ip=127.0.0.1&port=9000").await;
    assert_eq!((answer.status, &answer.body[..]), (StatusCode::OK, &b"ok"[..]));
    let list = node.get("/nacos/v1/ns/instance/list?serviceName=e2e").await;
    assert_eq!(json(&list)["hosts"][0]["port"], 9000);
    let client = node.client.clone();
    node.stop_within(Duration::from_secs(5)).await;
    let after = client.request(Method::GET, "/health", Body::Empty).await;
    assert!(after.is_err(), "nothing listens after shutdown: {after:?}");
}

#[tokio::test]
async fn overload_is_shed_with_503_and_slow_requests_get_408() {
    let node = Node::start(|c| {
        c.http.max_concurrent_writes = 1;
        c.http.request_timeout_ms = 300;
    })
    .await;
    // A client that announces a body and never sends it holds the only write permit.
    let mut slow = TcpStream::connect(node.server.http_addr).await.unwrap();
    slow.write_all(
        b"POST /nacos/v1/ns/instance HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\n",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let register = "/nacos/v1/ns/instance";
    let shed = node.form(Method::POST, register, "serviceName=s&ip=10.0.0.1&port=1").await;
    assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&shed)["code"], "overloaded");
    assert_eq!(shed.retry_after(), Some("1"));
    // Reads have a pool of their own.
    assert_eq!(node.get("/health").await.status, StatusCode::OK);
    // The slow request runs into its deadline instead of holding the permit for ever.
    let mut answer = vec![0; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let written = node.form(Method::POST, register, "serviceName=s&ip=10.0.0.1&port=1").await;
    assert_eq!(written.status, StatusCode::OK);
    node.stop_within(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn shutdown_ends_open_watches_promptly() {
    let node = Node::start(|_| {}).await;
    node.form(Method::POST, "/nacos/v1/ns/instance", "serviceName=w&ip=10.0.0.1&port=1").await;
    let list = "/v1/namespaces/public/services/w/instances";
    let index = node.get(list).await.index().unwrap();
    let blocked = {
        let (client, path) = (node.client.clone(), format!("{list}?index={index}&wait=5m"));
        tokio::spawn(async move { client.request(Method::GET, &path, Body::Empty).await })
    };
    let mut events = TcpStream::connect(node.server.http_addr).await.unwrap();
    events.write_all(b"GET /v1/namespaces/public/events HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut first = vec![0; 1024];
    let n = events.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).contains("text/event-stream"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!blocked.is_finished());

    let started = Instant::now();
    node.stop_within(Duration::from_secs(3)).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let answer = blocked.await.unwrap().unwrap();
    assert_eq!((answer.status, answer.index()), (StatusCode::OK, Some(index)), "the watch returns the current state");
}
