//! `janus-bench watchers`: what held blocking queries cost the server.
//!
//! Reads the server's RSS idle, opens `--count` connections that each hold a
//! blocking query on one service (native API, `?index=N&wait=10m`), reads the
//! RSS while they are held, releases them all with one write, closes them and
//! reads the RSS again after `--settle` of light load (4 clients, 20
//! requests a second each: a registry is never idle, and the allocator
//! returns freed pages as its threads go on allocating). Raw TCP on the bench side, so the
//! load generator's own memory stays small.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Arguments of `janus-bench watchers`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct WatchersArgs {
    /// The server's HTTP address.
    #[arg(long, default_value = "127.0.0.1:8848")]
    pub(crate) addr: SocketAddr,
    /// The server's process id (its RSS is read from /proc).
    #[arg(long)]
    pub(crate) pid: u32,
    /// Blocking queries to hold.
    #[arg(long, default_value_t = 16_384)]
    pub(crate) count: usize,
    /// Wait after opening them, and after releasing them, before reading the RSS.
    #[arg(long, default_value = "3s", value_parser = crate::parse_duration)]
    pub(crate) settle: Duration,
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WatchersResult {
    pub(crate) count: usize,
    pub(crate) idle: u64,
    pub(crate) held: u64,
    pub(crate) after: u64,
}

fn rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading the server's /proc status")?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")?;
    Ok(kib * 1024)
}

/// Sends one request on a fresh connection and returns the whole answer.
async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: bench\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// The value of a response header.
fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    answer.lines().take_while(|l| !l.is_empty()).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

pub(crate) async fn run(args: &WatchersArgs) -> anyhow::Result<WatchersResult> {
    let service = "/v1/namespaces/public/services/bench-held/instances";
    let registered = request(args.addr, "POST", service, r#"{"ip":"10.0.0.1","port":1}"#).await?;
    if !registered.starts_with("HTTP/1.1 201") {
        bail!("cannot register: {registered}");
    }
    let listed = request(args.addr, "GET", service, "").await?;
    let index: u64 = header(&listed, "x-janus-index").and_then(|v| v.parse().ok()).context("no X-Janus-Index")?;
    tokio::time::sleep(args.settle).await;
    let idle = rss(args.pid)?;

    let blocking = format!("GET {service}?index={index}&wait=10m HTTP/1.1\r\nhost: bench\r\n\r\n");
    let mut held = Vec::with_capacity(args.count);
    for _ in 0..args.count {
        let mut stream = TcpStream::connect(args.addr).await.context("opening a watcher connection")?;
        stream.write_all(blocking.as_bytes()).await?;
        held.push(stream);
    }
    tokio::time::sleep(args.settle).await;
    let held_rss = rss(args.pid)?;

    // One write wakes them all; read every answer, then close.
    let woke = request(args.addr, "POST", service, r#"{"ip":"10.0.0.2","port":1}"#).await?;
    if !woke.starts_with("HTTP/1.1 201") {
        bail!("cannot release the watchers: {woke}");
    }
    let mut answered = 0;
    for mut stream in held {
        let mut buffer = [0u8; 512];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buffer)).await
            && buffer[..n].starts_with(b"HTTP/1.1 200")
        {
            answered += 1;
        }
    }
    if answered != args.count {
        bail!("only {answered} of {} blocking queries answered after the write", args.count);
    }
    // A registry is never idle (heartbeats arrive all the time), and an
    // allocator returns freed pages while its threads keep allocating: keep
    // a light load (4 clients, 20 requests a second each, so every server
    // thread sees some) while the memory settles.
    let light = |_| async {
        loop {
            let _ = request(args.addr, "GET", "/health", "").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        () = tokio::time::sleep(args.settle) => {}
        _ = four_at_once(light) => {}
    }
    let after = rss(args.pid)?;
    Ok(WatchersResult { count: args.count, idle, held: held_rss, after })
}

impl WatchersResult {
    /// One line for people, one table row for docs/benchmarks.md.
    pub(crate) fn summary(&self) -> String {
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        let per = self.held.saturating_sub(self.idle) as f64 / self.count.max(1) as f64 / 1024.0;
        let back = (self.after as f64 / self.idle.max(1) as f64 - 1.0) * 100.0;
        format!(
            "{} held blocking queries: RSS idle {:.1} MiB, held {:.1} MiB ({per:.1} KiB each), after release {:.1} MiB \
             ({back:+.1}% of idle)\n| {} | {:.1} MiB | {:.1} MiB | {per:.1} KiB | {:.1} MiB ({back:+.1}%) |",
            self.count,
            mib(self.idle),
            mib(self.held),
            mib(self.after),
            self.count,
            mib(self.idle),
            mib(self.held),
            mib(self.after),
        )
    }
}

/// Runs four copies of `client` at once (they never end).
async fn four_at_once<F, Fut>(client: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    tokio::join!(client(0), client(1), client(2), client(3));
}
