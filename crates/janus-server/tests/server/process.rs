//! The `janus` binary as a process: bad configuration exits with 64, SIGTERM
//! shuts it down cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const JANUS: &str = env!("CARGO_BIN_EXE_janus");

#[test]
fn bad_configuration_exits_with_64_and_says_why() {
    let output = Command::new(JANUS).args(["--http-addr", "not-an-address"]).output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad configuration"), "{stderr}");

    let output = Command::new(JANUS).env("JANUS_LEASE__DELETE_AFTER_MS", "10").output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("lease.delete_after_ms"));
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(JANUS)
        .args(["--http-addr", "127.0.0.1:0", "--dns-addr", "127.0.0.1:0", "--log", "info"])
        .arg("--data-dir")
        .arg(data.path())
        .env("JANUS_HEALTH__PROBE_ALLOW", "127.0.0.0/8")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server logs where it serves").unwrap();
        if let Some(rest) = line.split("http_addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.write_all(b"GET /ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "janus did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}
