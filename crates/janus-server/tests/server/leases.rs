//! The README's lease walk-through, on short leases: what the native API,
//! the Nacos API and DNS show when instances stop beating. All three apply
//! Nacos's protect threshold alike (docs/leases.md): with the default
//! threshold of 0, the only instance of a service that stops beating is
//! still listed, as healthy, from the moment it turns unhealthy until it is
//! deleted; one of several that stops beating is shown unhealthy and left
//! out of healthy-only lists and DNS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use janus_server::{RunningServer, ServerConfig};
use serde_json::Value;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

const UNHEALTHY_AFTER_MS: u64 = 400;
const DELETE_AFTER_MS: u64 = 1500;

async fn start() -> (RunningServer, CancellationToken, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::default();
    config.http.addr = "127.0.0.1:0".parse().unwrap();
    config.dns.addr = "127.0.0.1:0".parse().unwrap();
    config.node.data_dir = data.path().to_owned();
    config.health.probe_allow = vec!["127.0.0.0/8".to_owned()];
    config.lease.beat_interval_ms = 100;
    config.lease.unhealthy_after_ms = UNHEALTHY_AFTER_MS;
    config.lease.delete_after_ms = DELETE_AFTER_MS;
    config.lease.sweep_min_gap_ms = 20;
    // 100 ms beats would count as a large deployment; keep the small-deployment
    // rule of the defaults (no deletion cap, no self-preservation).
    config.self_preservation.min_expected_renewals_per_min = u64::MAX;
    let shutdown = CancellationToken::new();
    let server = janus_server::start(config, shutdown.clone()).await.unwrap();
    (server, shutdown, data)
}

/// One request; the status and the body as JSON (`Null` if it is not JSON).
async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "janus")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The A records DNS answers for `<service>.svc.janus.`.
async fn dns_a(addr: SocketAddr, service: &str) -> usize {
    let mut query = vec![0x4a, 0x4e, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in [service, "svc", "janus"] {
        query.push(u8::try_from(label.len()).unwrap());
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&query, addr).await.unwrap();
    let mut answer = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut answer)).await.unwrap().unwrap();
    assert!(n >= 12 && answer[..2] == query[..2], "a DNS answer to our query");
    usize::from(u16::from_be_bytes([answer[6], answer[7]]))
}

fn native_list(service: &str, healthy_only: bool) -> String {
    format!("/v1/namespaces/public/services/{service}/instances?healthy_only={healthy_only}")
}

fn nacos_list(service: &str, healthy_only: bool) -> String {
    format!("/nacos/v1/ns/instance/list?serviceName={service}&healthyOnly={healthy_only}")
}

/// (ip, shown healthy) of each listed instance, sorted.
fn shown(list: &Value, key: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = list[key]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| (i["ip"].as_str().unwrap().to_owned(), i["healthy"].as_bool().unwrap()))
        .collect();
    out.sort();
    out
}

async fn register(addr: SocketAddr, service: &str, ip: &str) {
    let path = format!("/v1/namespaces/public/services/{service}/instances");
    let (status, body) = http(addr, "POST", &path, Some(&format!(r#"{{"ip":"{ip}","port":8080}}"#))).await;
    assert_eq!(status, 201, "{body}");
}

/// Waits until the stored health of `ip` (a single-instance read, which the
/// protect threshold does not touch) is unhealthy.
async fn until_unhealthy(addr: SocketAddr, service: &str, ip: &str) {
    let path = format!("/v1/namespaces/public/services/{service}/instances/{ip}/8080");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = http(addr, "GET", &path, None).await;
        assert_eq!(status, 200, "{body}");
        if body["healthy"] == false {
            return;
        }
        assert!(Instant::now() < deadline, "{ip} never turned unhealthy");
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_instance_that_stops_beating_is_listed_healthy_everywhere_until_it_is_deleted() {
    let (server, shutdown, _data) = start().await;
    let (addr, dns) = (server.http_addr, server.dns_addr.unwrap());
    let registered = Instant::now();
    register(addr, "orders", "10.0.0.1").await;
    assert_eq!(dns_a(dns, "orders").await, 1);

    until_unhealthy(addr, "orders", "10.0.0.1").await;
    assert!(registered.elapsed() >= Duration::from_millis(UNHEALTHY_AFTER_MS));
    for healthy_only in [false, true] {
        let (_, list) = http(addr, "GET", &native_list("orders", healthy_only), None).await;
        assert_eq!(shown(&list, "instances"), [("10.0.0.1".to_owned(), true)], "native: {list}");
        assert_eq!(list["reach_protection_threshold"], true, "{list}");
        let (_, list) = http(addr, "GET", &nacos_list("orders", healthy_only), None).await;
        assert_eq!(shown(&list, "hosts"), [("10.0.0.1".to_owned(), true)], "Nacos: {list}");
        assert_eq!(list["reachProtectionThreshold"], true, "{list}");
    }
    assert_eq!(dns_a(dns, "orders").await, 1, "DNS still answers with the lone instance");
    assert!(registered.elapsed() < Duration::from_millis(DELETE_AFTER_MS), "checked before the deletion");

    // Deleted at delete_after_ms: gone from every interface.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, list) = http(addr, "GET", &native_list("orders", false), None).await;
        if shown(&list, "instances").is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "never deleted: {list}");
        sleep(Duration::from_millis(20)).await;
    }
    assert!(registered.elapsed() >= Duration::from_millis(DELETE_AFTER_MS));
    let (_, list) = http(addr, "GET", &nacos_list("orders", false), None).await;
    assert!(shown(&list, "hosts").is_empty(), "{list}");
    assert_eq!(dns_a(dns, "orders").await, 0);
    shutdown.cancel();
    server.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_instances_that_stops_beating_is_unhealthy_and_left_out_of_healthy_answers() {
    let (server, shutdown, _data) = start().await;
    let (addr, dns) = (server.http_addr, server.dns_addr.unwrap());
    register(addr, "billing", "10.0.0.1").await;
    register(addr, "billing", "10.0.0.2").await;
    let beats = CancellationToken::new();
    let beating = {
        let beats = beats.clone();
        tokio::spawn(async move {
            let path = "/v1/namespaces/public/services/billing/instances/10.0.0.2/8080/heartbeat";
            while !beats.is_cancelled() {
                assert_eq!(http(addr, "PUT", path, None).await.0, 200);
                sleep(Duration::from_millis(100)).await;
            }
        })
    };
    until_unhealthy(addr, "billing", "10.0.0.1").await;
    let (_, list) = http(addr, "GET", &native_list("billing", false), None).await;
    assert_eq!(shown(&list, "instances"), [("10.0.0.1".to_owned(), false), ("10.0.0.2".to_owned(), true)], "{list}");
    assert_eq!(list["reach_protection_threshold"], false);
    let (_, list) = http(addr, "GET", &native_list("billing", true), None).await;
    assert_eq!(shown(&list, "instances"), [("10.0.0.2".to_owned(), true)], "{list}");
    let (_, list) = http(addr, "GET", &nacos_list("billing", true), None).await;
    assert_eq!(shown(&list, "hosts"), [("10.0.0.2".to_owned(), true)], "{list}");
    let (_, list) = http(addr, "GET", &nacos_list("billing", false), None).await;
    assert_eq!(shown(&list, "hosts"), [("10.0.0.1".to_owned(), false), ("10.0.0.2".to_owned(), true)], "{list}");
    assert_eq!(dns_a(dns, "billing").await, 1, "DNS answers with the healthy one only");

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, list) = http(addr, "GET", &native_list("billing", false), None).await;
        if shown(&list, "instances") == [("10.0.0.2".to_owned(), true)] {
            break;
        }
        assert!(Instant::now() < deadline, "the silent one was never deleted: {list}");
        sleep(Duration::from_millis(20)).await;
    }
    beats.cancel();
    beating.await.unwrap();
    shutdown.cancel();
    server.wait().await.unwrap();
}
