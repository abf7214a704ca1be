//! Three `janus` processes as one cluster: `kill -9` of every node while
//! clients write, then a restart of all three on their data directories,
//! brings back every acknowledged persistent instance and every namespace
//! and service definition.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const JANUS: &str = env!("CARGO_BIN_EXE_janus");
const SECRET: &str = "process-cluster-secret-0123456789";

fn free_port() -> u16 {
    janus_testkit::ports::unused_loopback_ports(1)[0]
}

/// One request on a fresh connection: (status, body); `None` if the node did not answer.
fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Cluster {
    http: Vec<u16>,
    cluster: Vec<u16>,
    children: Vec<Option<Child>>,
}

impl Cluster {
    fn spawn(&mut self, index: usize, data: &Path) {
        let members: Vec<String> =
            self.cluster.iter().enumerate().map(|(i, port)| format!("{}@127.0.0.1:{port}", i + 1)).collect();
        let child = Command::new(JANUS)
            .env("JANUS_NODE__ID", (index + 1).to_string())
            .env("JANUS_NODE__DATA_DIR", data.join(format!("node-{}", index + 1)))
            .env("JANUS_HTTP__ADDR", format!("127.0.0.1:{}", self.http[index]))
            .env("JANUS_DNS__ENABLED", "false")
            .env("JANUS_GRPC__ADDR", "127.0.0.1:0")
            .env("JANUS_CLUSTER__MEMBERS", members.join(","))
            .env("JANUS_CLUSTER__ADDR", format!("127.0.0.1:{}", self.cluster[index]))
            .env("JANUS_CLUSTER__SECRET", SECRET)
            // A loopback cluster would check tokens by default; these tests are about Raft.
            .env("JANUS_AUTH__ENABLED", "false")
            .env("JANUS_HEALTH__PROBE_ALLOW", "127.0.0.0/8")
            .env("JANUS_LOG__FILTER", "warn")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children[index] = Some(child);
    }

    fn kill_all(&mut self) {
        for child in self.children.iter_mut().filter_map(Option::take) {
            let mut child = child;
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

#[test]
fn kill_9_of_every_node_under_load_loses_no_acknowledged_cp_write() {
    let data = tempfile::tempdir().unwrap();
    let mut cluster = Cluster {
        http: (0..3).map(|_| free_port()).collect(),
        cluster: (0..3).map(|_| free_port()).collect(),
        children: vec![None, None, None],
    };
    for index in 0..3 {
        cluster.spawn(index, data.path());
    }
    let http_ports = cluster.http.clone();
    until("a cp namespace is created", Duration::from_secs(20), || {
        http(http_ports[0], "POST", "/v1/namespaces", Some(r#"{"id":"ledger","mode":"cp"}"#))
            .is_some_and(|(status, _)| status == 201)
    });
    let (status, body) = http(
        http_ports[1],
        "POST",
        "/v1/namespaces/ledger/services",
        Some(r#"{"name":"accounts","protect_threshold":0.5,"metadata":{"team":"payments"}}"#),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");

    // Writers on every node; each remembers what was acknowledged.
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (acknowledged, stop, port) = (acknowledged.clone(), stop.clone(), http_ports[w]);
            std::thread::spawn(move || {
                let mut n = 0u16;
                while !stop.load(Ordering::Acquire) {
                    n += 1;
                    let instance = 1000 * u16::try_from(w + 1).unwrap() + n;
                    let body = format!(r#"{{"ip":"127.0.8.1","port":{instance}}}"#);
                    if let Some((201, _)) =
                        http(port, "POST", "/v1/namespaces/ledger/services/accounts/instances", Some(&body))
                    {
                        acknowledged.lock().unwrap().insert(instance);
                    }
                }
            })
        })
        .collect();
    until("writes were acknowledged", Duration::from_secs(20), || acknowledged.lock().unwrap().len() >= 150);
    // Every node dies at once, writes in flight.
    cluster.kill_all();
    stop.store(true, Ordering::Release);
    for writer in writers {
        writer.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    for index in 0..3 {
        cluster.spawn(index, data.path());
    }
    for (index, port) in http_ports.iter().enumerate() {
        let mut listed = BTreeSet::new();
        until("a linearizable read answers after the restart", Duration::from_secs(30), || {
            let path = "/v1/namespaces/ledger/services/accounts/instances?consistency=linearizable";
            match http(*port, "GET", path, None) {
                Some((200, body)) => {
                    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
                    listed = json["instances"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|i| u16::try_from(i["port"].as_u64().unwrap()).unwrap())
                        .collect();
                    true
                }
                _ => false,
            }
        });
        let lost: Vec<_> = acknowledged.difference(&listed).collect();
        assert!(lost.is_empty(), "node {}: acknowledged writes missing from a linearizable read: {lost:?}", index + 1);
        let (status, body) = http(*port, "GET", "/v1/namespaces/ledger", None).unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(r#""mode":"cp""#), "{body}");
        let (status, body) = http(*port, "GET", "/v1/namespaces/ledger/services/accounts", None).unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("0.5") && body.contains("payments"), "the definition came back: {body}");
    }
}
