//! `failover`: how long cp writes stop after the Raft leader is killed.
//!
//! Starts a three-node cluster of real `janus` processes on loopback with the
//! default Raft timing, then per trial: asks the cluster who leads, kills
//! that process with SIGKILL, and keeps registering persistent instances
//! through a surviving node until one is acknowledged. The time from the kill
//! to that acknowledgement is the trial's recovery time. The killed node is
//! then restarted on its data and rejoins before the next trial.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const SECRET: &str = "janus-bench-failover-secret";

/// Arguments of `janus-bench failover`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FailoverArgs {
    /// The janus binary.
    #[arg(long, default_value = "target/release/janus")]
    pub(crate) janus: PathBuf,
    /// Leader kills to time.
    #[arg(long, default_value_t = 5)]
    pub(crate) trials: usize,
    /// Where the nodes keep their data (removed afterwards).
    #[arg(long, default_value = "target/bench-failover")]
    pub(crate) work: PathBuf,
}

/// One node: its ports and, while it runs, its process.
struct NodeProcess {
    id: u64,
    http: u16,
    cluster: u16,
    child: Option<Child>,
}

/// Kills every node it still holds when dropped, so no run leaves processes behind.
struct Nodes(Vec<NodeProcess>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for node in &mut self.0 {
            if let Some(mut child) = node.child.take() {
                // Best effort: the process may have exited already.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn spawn(args: &FailoverArgs, node: &NodeProcess, members: &str) -> anyhow::Result<Child> {
    let data = args.work.join(format!("node-{}", node.id));
    Command::new(&args.janus)
        .env("JANUS_NODE__ID", node.id.to_string())
        .env("JANUS_NODE__DATA_DIR", &data)
        .env("JANUS_HTTP__ADDR", format!("127.0.0.1:{}", node.http))
        .env("JANUS_DNS__ENABLED", "false")
        .env("JANUS_CLUSTER__MEMBERS", members)
        .env("JANUS_CLUSTER__ADDR", format!("127.0.0.1:{}", node.cluster))
        .env("JANUS_CLUSTER__SECRET", SECRET)
        .env("JANUS_LOG__FILTER", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", args.janus.display()))
}

/// One HTTP/1.1 request on a fresh connection, with a deadline.
async fn call(port: u16, method: Method, path: &str, body: Option<String>) -> anyhow::Result<(StatusCode, Bytes)> {
    let exchange = async {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends with the request; an error shows up on the send.
            let _ = connection.await;
        });
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("127.0.0.1:{port}"))
            .header("authorization", format!("Bearer {SECRET}"))
            .header("content-type", "application/json")
            .body(Full::<Bytes>::from(body.unwrap_or_default()))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        Ok::<_, anyhow::Error>((status, response.into_body().collect().await?.to_bytes()))
    };
    tokio::time::timeout(Duration::from_secs(5), exchange).await.map_err(|_| anyhow!("no answer within 5 s"))?
}

async fn register(port: u16, instance_port: u16) -> bool {
    let body = serde_json::json!({"ip": "10.77.0.1", "port": instance_port}).to_string();
    let path = "/v1/namespaces/failover/services/ledger/instances";
    matches!(call(port, Method::POST, path, Some(body)).await, Ok((StatusCode::CREATED, _)))
}

async fn leader(nodes: &[NodeProcess]) -> Option<u64> {
    for node in nodes.iter().filter(|n| n.child.is_some()) {
        if let Ok((StatusCode::OK, body)) = call(node.cluster, Method::GET, "/internal/admin/members", None).await {
            let members: serde_json::Value = serde_json::from_slice(&body).ok()?;
            if let Some(leader) = members["leader"].as_u64() {
                return Some(leader);
            }
        }
    }
    None
}

/// Retries `probe` every 20 ms for up to `limit`.
async fn within<F: std::future::Future<Output = bool>>(limit: Duration, mut probe: impl FnMut() -> F) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if probe().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Runs the trials; returns the recovery time of each.
pub(crate) async fn run(args: &FailoverArgs) -> anyhow::Result<Vec<Duration>> {
    if args.work.exists() {
        std::fs::remove_dir_all(&args.work).with_context(|| format!("clearing {}", args.work.display()))?;
    }
    let mut nodes = Nodes(Vec::new());
    for id in 1..=3 {
        nodes.0.push(NodeProcess { id, http: free_port()?, cluster: free_port()?, child: None });
    }
    let members: Vec<String> = nodes.0.iter().map(|n| format!("{}@127.0.0.1:{}", n.id, n.cluster)).collect();
    let members = members.join(",");
    for index in 0..nodes.0.len() {
        let child = spawn(args, &nodes.0[index], &members)?;
        nodes.0[index].child = Some(child);
    }
    let first = nodes.0[0].http;
    let namespace = serde_json::json!({"id": "failover", "mode": "cp"}).to_string();
    let created = within(Duration::from_secs(15), || async {
        matches!(
            call(first, Method::POST, "/v1/namespaces", Some(namespace.clone())).await,
            Ok((StatusCode::CREATED, _))
        )
    })
    .await;
    if !created {
        bail!("the cluster did not accept a cp namespace within 15 s");
    }

    let mut recoveries = Vec::new();
    for trial in 1..=args.trials {
        let leader = leader(&nodes.0).await.ok_or_else(|| anyhow!("no node names a leader"))?;
        let victim = nodes.0.iter().position(|n| n.id == leader).ok_or_else(|| anyhow!("unknown leader {leader}"))?;
        let survivor = nodes.0.iter().find(|n| n.id != leader).map(|n| n.http).ok_or_else(|| anyhow!("no survivor"))?;
        let mut child = nodes.0[victim].child.take().ok_or_else(|| anyhow!("the leader is not running"))?;
        child.kill().context("killing the leader")?;
        let killed = Instant::now();
        child.wait()?;
        // Re-registering one instance is idempotent but still a Raft write.
        let instance_port = u16::try_from(trial).unwrap_or(u16::MAX);
        let recovered = within(Duration::from_secs(30), || register(survivor, instance_port)).await;
        if !recovered {
            bail!("trial {trial}: no cp write succeeded within 30 s of killing the leader");
        }
        let took = killed.elapsed();
        println!("trial {trial}: killed leader node {leader}; cp writes succeeded again after {} ms", took.as_millis());
        recoveries.push(took);

        // The killed node comes back on its data and catches up before the next trial.
        let child = spawn(args, &nodes.0[victim], &members)?;
        nodes.0[victim].child = Some(child);
        let port = nodes.0[victim].http;
        let rejoined = within(Duration::from_secs(15), || register(port, instance_port)).await;
        if !rejoined {
            bail!("trial {trial}: the restarted node did not take writes within 15 s");
        }
    }
    drop(nodes);
    remove_quietly(&args.work);
    Ok(recoveries)
}

fn remove_quietly(path: &Path) {
    // Leftover data is harmless; the next run clears it first.
    let _ = std::fs::remove_dir_all(path);
}

/// `p50 / max` of the trials, in milliseconds.
pub(crate) fn summary(recoveries: &[Duration]) -> String {
    let mut ms: Vec<u128> = recoveries.iter().map(Duration::as_millis).collect();
    ms.sort_unstable();
    let median = ms.get(ms.len() / 2).copied().unwrap_or_default();
    let max = ms.last().copied().unwrap_or_default();
    format!(
        "{} leader kills (SIGKILL) on a 3-node loopback cluster, default Raft timing: cp writes succeeded again after \
         median {median} ms, max {max} ms (each: {ms:?})",
        ms.len()
    )
}
