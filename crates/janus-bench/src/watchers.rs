//! `janus-bench watchers`: what held blocking queries cost the server.
//!
//! Under a light load throughout (4 clients, 20 heartbeats a second each, of
//! the watched instance: a registry is never idle, the allocator returns
//! freed pages as its threads go on allocating, and the instance's lease must
//! not run out while the queries are held), reads the server's RSS idle,
//! opens `--count` connections that each hold a blocking query on one
//! service (native API, `?index=N&wait=10m`), waits until the server holds
//! them all (its `janus_http_connections` gauge), reads the RSS, releases
//! them with one write, checks that every answer carries that write (none
//! was answered early), closes them and reads the RSS again. Each reading is
//! the median of the last 3 s of a `--settle` wait. The held queries are raw
//! TCP on the bench side (a request written, the answer read once), so that
//! the load generator's own memory stays small; every other call goes
//! through `janus-client`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use janus_client::{Body, Client, ListOptions, Method, Options, ServiceRef, registration};
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
    /// Wait before each RSS reading (idle, held, after); the reading is the
    /// median over the last 3 s of it.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration)]
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

/// The median of RSS readings every 100 ms over the last 3 s of `settle`:
/// the allocator purges freed pages on a delay, so one reading can land
/// either side of a purge.
async fn settled_rss(pid: u32, settle: Duration) -> anyhow::Result<u64> {
    const WINDOW: Duration = Duration::from_secs(3);
    const EVERY: Duration = Duration::from_millis(100);
    tokio::time::sleep(settle.saturating_sub(WINDOW)).await;
    let mut readings = Vec::new();
    for _ in 0..WINDOW.as_millis() / EVERY.as_millis() {
        readings.push(rss(pid)?);
        tokio::time::sleep(EVERY).await;
    }
    readings.sort_unstable();
    Ok(readings[readings.len() / 2])
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

pub(crate) async fn run(args: &WatchersArgs) -> anyhow::Result<WatchersResult> {
    let client = Client::new([args.addr.to_string()], Options::default())?;
    let held_service = ServiceRef::new("public", "bench-held");
    client.register_instance(&held_service, &registration("10.0.0.1", 1)).await.context("cannot register")?;
    let index = client.list_instances(&held_service, &ListOptions::default()).await?.revision;
    // A registry is never idle (heartbeats arrive all the time), and an
    // allocator returns freed pages while its threads keep allocating: a
    // light load (4 clients, 20 requests a second each, so every server
    // thread sees some) runs from before the idle reading to the last one,
    // so that idle and after are read under the same load.
    let light = tokio::spawn({
        let (client, held_service) = (client.clone(), held_service.clone());
        async move {
            let beat = |_| {
                let (client, service) = (client.clone(), held_service.clone());
                async move {
                    loop {
                        let _ = client.heartbeat(&service, "10.0.0.1", 1, None).await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            };
            four_at_once(beat).await;
        }
    });
    let idle = settled_rss(args.pid, args.settle).await?;
    let open_before = open_connections(&client).await?;

    let service = "/v1/namespaces/public/services/bench-held/instances";
    let blocking = format!("GET {service}?index={index}&wait=10m HTTP/1.1\r\nhost: bench\r\n\r\n");
    let mut held = Vec::with_capacity(args.count);
    for _ in 0..args.count {
        let mut stream = TcpStream::connect(args.addr).await.context("opening a watcher connection")?;
        stream.write_all(blocking.as_bytes()).await?;
        held.push(stream);
    }
    wait_until_held(&client, open_before + args.count as u64).await?;
    let held_rss = settled_rss(args.pid, args.settle).await?;

    // One write wakes them all; read every answer, then close.
    client
        .register_instance(&held_service, &registration("10.0.0.2", 1))
        .await
        .context("cannot release the watchers")?;
    let mut answered = 0;
    for mut stream in held {
        if released_by_the_write(&mut stream).await {
            answered += 1;
        }
    }
    if answered != args.count {
        bail!("only {answered} of {} blocking queries were answered with the releasing write", args.count);
    }
    let after = settled_rss(args.pid, args.settle).await?;
    light.abort();
    Ok(WatchersResult { count: args.count, idle, held: held_rss, after })
}

/// Whether a held query's answer is a 200 listing the instance registered
/// to release them (an answer from before it, a lease expiry say, is not).
async fn released_by_the_write(stream: &mut TcpStream) -> bool {
    let mut answer = Vec::with_capacity(4096);
    let reading = async {
        let mut buffer = [0u8; 4096];
        while answer.len() < 64 * 1024 {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
            if answer.windows(8).any(|w| w == b"10.0.0.2") {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(30), reading).await;
    answer.starts_with(b"HTTP/1.1 200") && answer.windows(8).any(|w| w == b"10.0.0.2")
}

/// The server's `janus_http_connections` gauge.
async fn open_connections(client: &Client) -> anyhow::Result<u64> {
    let metrics = client.request(Method::GET, "/metrics", Body::Empty).await.context("reading /metrics")?;
    metrics
        .text()
        .lines()
        .find_map(|line| line.strip_prefix("janus_http_connections "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
        .context("no janus_http_connections gauge in /metrics")
}

/// Waits (up to two minutes) until the server holds `open` connections: the
/// bench's connects complete in the kernel before the server accepts them.
async fn wait_until_held(client: &Client, open: u64) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let now = open_connections(client).await?;
        if now >= open {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the server holds {now} connections, not the {open} expected, after two minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
