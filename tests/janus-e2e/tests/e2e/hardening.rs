//! Every HTTP path is bounded, over real sockets: slow bodies get 408 on any
//! route, slow or idle connections are closed within the header timeout,
//! oversized declared bodies get 413 at once, watches take no body, `/health`
//! answers while the connection cap is reached, and a write flood does not
//! shed reads.

use std::time::{Duration, Instant};

use janus_client::{Body, Method, StatusCode};
use janus_e2e::Node;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Reads what the server sends until it closes the connection or `limit`
/// passes; returns the text and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return (String::from_utf8_lossy(&seen).into_owned(), true),
            Ok(Ok(n)) => seen.extend_from_slice(&buffer[..n]),
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), false),
        }
    }
}

#[tokio::test]
async fn a_slow_body_gets_408_within_the_deadline_on_every_route() {
    let node = Node::start(|c| c.http.request_timeout_ms = 500).await;
    let routes = [
        ("POST", "/eureka/apps/events"),
        ("PUT", "/v1/namespaces/public/services/events"),
        ("POST", "/v1/namespaces/public/events"),
        ("POST", "/nacos/v1/ns/instance"),
        ("POST", "/v1/namespaces/public/services/web/instances"),
        ("PUT", "/nacos/v1/ns/instance/beat"),
        ("POST", "/eureka/apps/WEB"),
    ];
    let mut slow = Vec::new();
    for (method, path) in routes {
        let mut stream = TcpStream::connect(node.server.http_addr).await.unwrap();
        let kind = if path.starts_with("/nacos") { "application/x-www-form-urlencoded" } else { "application/json" };
        let head =
            format!("{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {kind}\r\ncontent-length: 1000\r\n\r\n{{");
        stream.write_all(head.as_bytes()).await.unwrap();
        slow.push((method, path, stream));
    }
    let started = Instant::now();
    for (method, path, mut stream) in slow {
        let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
        // A method the route does not take is answered at once, without reading the body.
        let expected = if path.ends_with("public/events") { "HTTP/1.1 405" } else { "HTTP/1.1 408" };
        assert!(answer.starts_with(expected), "{method} {path}: {answer:?}");
    }
    assert!(started.elapsed() < Duration::from_millis(1_500), "408s came after {:?}", started.elapsed());
    node.stop_within(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_oversized_declared_body_gets_413_at_once_and_a_watch_takes_no_body() {
    let node = Node::start(|_| {}).await;
    let mut stream = TcpStream::connect(node.server.http_addr).await.unwrap();
    stream.write_all(b"POST /v1/namespaces HTTP/1.1\r\nhost: x\r\ncontent-length: 1073741824\r\n\r\n").await.unwrap();
    let started = Instant::now();
    let mut answer = vec![0; 512];
    let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut answer)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 413"), "{}", String::from_utf8_lossy(&answer));
    assert!(started.elapsed() < Duration::from_millis(500));

    for path in ["/v1/namespaces/public/events", "/v1/namespaces/public/services/web/instances?index=1&wait=1m"] {
        let mut stream = TcpStream::connect(node.server.http_addr).await.unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n0123456789");
        stream.write_all(head.as_bytes()).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut answer)).await.unwrap().unwrap();
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 400") && text.contains("no request body"), "{path}: {text}");
    }
    node.stop_within(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn slowloris_and_idle_connections_are_closed_within_the_header_timeout() {
    let node = Node::start(|c| c.http.header_timeout_ms = 500).await;
    // One byte at a time, never finishing the header.
    let mut slowloris = TcpStream::connect(node.server.http_addr).await.unwrap();
    let dripping = async {
        for byte in b"GET /health HTTP/1.1\r\nx-slow: ".iter().cycle() {
            if slowloris.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let started = Instant::now();
    assert!(tokio::time::timeout(Duration::from_secs(3), dripping).await.is_ok(), "still open after 3 s");
    assert!(started.elapsed() < Duration::from_millis(1_500), "closed only after {:?}", started.elapsed());

    // Silent from the start, and silent after a request (idle keep-alive).
    let mut silent = TcpStream::connect(node.server.http_addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_millis(1_500)).await;
    assert!(closed, "a connection that never sends a header is closed");
    let mut kept = TcpStream::connect(node.server.http_addr).await.unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let (answer, closed) = read_until_closed(&mut kept, Duration::from_millis(1_500)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "an idle keep-alive connection is closed");
    node.stop_within(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn health_answers_while_the_connection_cap_is_reached() {
    let node = Node::start(|c| c.http.max_connections = 32).await;
    let mut held = Vec::new();
    for _ in 0..64 {
        // Half a header each: slowloris connections at (and past) the cap.
        let mut stream = TcpStream::connect(node.server.http_addr).await.unwrap();
        stream.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..5 {
        assert_eq!(node.get("/health").await.status, StatusCode::OK);
    }
    let text = node.get("/metrics").await.text().into_owned();
    let open: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("janus_http_connections "))
        .and_then(|value| value.trim().parse().ok())
        .expect("janus_http_connections in /metrics");
    assert!(open <= 32, "{open} connections held past the cap of 32");
    node.stop_within(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_flood_saturating_the_write_pool_does_not_shed_reads() {
    let node = Node::start(|c| {
        c.http.max_concurrent_writes = 4;
        c.http.request_timeout_ms = 5_000;
    })
    .await;
    let list = "/v1/namespaces/public/services/web/instances";
    let register = node.call(Method::POST, list, Some(serde_json::json!({"ip": "10.0.0.1", "port": 80}))).await;
    assert_eq!(register.status, StatusCode::CREATED);
    // Four writers that announce a body and trickle it hold the whole write pool.
    let mut holders = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(node.server.http_addr).await.unwrap();
        stream
            .write_all(b"POST /v1/namespaces HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
            .await
            .unwrap();
        holders.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // And a flood of writers on top.
    let flood: Vec<_> = (0..16)
        .map(|n| {
            let client = node.client.clone();
            tokio::spawn(async move {
                let mut shed = 0;
                for port in 0..50u16 {
                    let body = Body::from(serde_json::json!({"ip": "10.0.1.1", "port": 1000 + n * 50 + port}));
                    if client.request(Method::POST, list, body).await.unwrap().status == StatusCode::SERVICE_UNAVAILABLE
                    {
                        shed += 1;
                    }
                }
                shed
            })
        })
        .collect();
    let mut lists = 0;
    for _ in 0..100 {
        let answer = node.get(list).await;
        assert_eq!(answer.status, StatusCode::OK, "a read was refused during the write flood");
        lists += 1;
    }
    let mut shed = 0;
    for writer in flood {
        shed += writer.await.unwrap();
    }
    assert_eq!(lists, 100);
    assert_eq!(shed, 16 * 50, "every flood write found the write pool full");
    drop(holders);
    node.stop_within(Duration::from_secs(5)).await;
}
