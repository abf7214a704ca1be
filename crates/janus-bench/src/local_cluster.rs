//! Three (or more) `janus` processes forming one cluster on loopback, for
//! the scenarios that kill and restart nodes (`failover`, `join`); each
//! with a `janus-client` of its HTTP address and one of its cluster address.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use janus_client::{Client, Options};

/// The cluster secret of bench clusters.
pub(crate) const SECRET: &str = "janus-bench-cluster-secret";

/// A request's deadline.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One node: its ports, its clients and, while it runs, its process.
pub(crate) struct NodeProcess {
    pub(crate) id: u64,
    pub(crate) http: u16,
    pub(crate) cluster: u16,
    /// A client of its HTTP address (this node only).
    pub(crate) client: Client,
    /// A client of its cluster address, with the cluster secret (the membership admin API).
    pub(crate) admin: Client,
    pub(crate) child: Option<Child>,
}

impl NodeProcess {
    fn plan(id: u64) -> anyhow::Result<Self> {
        let (http, cluster) = (free_port()?, free_port()?);
        let options = Options::default().request_timeout(TIMEOUT);
        let client = Client::new([format!("127.0.0.1:{http}")], options.clone())?;
        let admin = Client::new([format!("127.0.0.1:{cluster}")], options.bearer(SECRET))?;
        Ok(Self { id, http, cluster, client, admin, child: None })
    }
}

/// Nodes of one cluster; kills every process it still holds when dropped,
/// so no run leaves processes behind.
pub(crate) struct LocalCluster {
    pub(crate) nodes: Vec<NodeProcess>,
    janus: PathBuf,
    work: PathBuf,
    members: String,
    env: Vec<(String, String)>,
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                // Best effort: the process may have exited already.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Leftover data is harmless; the next run clears it first.
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalCluster {
    /// Plans `size` nodes of `janus` keeping their data under `work` (cleared
    /// first), each started with the extra `env` settings; starts none.
    pub(crate) fn plan(janus: &Path, work: &Path, size: u64, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        if work.exists() {
            std::fs::remove_dir_all(work).with_context(|| format!("clearing {}", work.display()))?;
        }
        let mut nodes = Vec::new();
        for id in 1..=size {
            nodes.push(NodeProcess::plan(id)?);
        }
        let members: Vec<String> = nodes.iter().map(|n| format!("{}@127.0.0.1:{}", n.id, n.cluster)).collect();
        Ok(Self {
            nodes,
            janus: janus.to_owned(),
            work: work.to_owned(),
            members: members.join(","),
            env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        })
    }

    /// Starts node at `index` (on its data, if it ran before).
    pub(crate) fn start(&mut self, index: usize) -> anyhow::Result<()> {
        let node = &self.nodes[index];
        let data = self.work.join(format!("node-{}", node.id));
        let mut command = Command::new(&self.janus);
        command
            .env("JANUS_NODE__ID", node.id.to_string())
            .env("JANUS_NODE__DATA_DIR", &data)
            .env("JANUS_HTTP__ADDR", format!("127.0.0.1:{}", node.http))
            .env("JANUS_DNS__ENABLED", "false")
            .env("JANUS_CLUSTER__MEMBERS", &self.members)
            .env("JANUS_CLUSTER__ADDR", format!("127.0.0.1:{}", node.cluster))
            .env("JANUS_CLUSTER__SECRET", SECRET)
            // Measured like the peers it is compared with: no auth (a cluster has it on by default).
            .env("JANUS_AUTH__ENABLED", "false")
            .env("JANUS_LOG__FILTER", "warn")
            .stdout(Stdio::null());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let child = command.spawn().with_context(|| format!("starting {}", self.janus.display()))?;
        self.nodes[index].child = Some(child);
        Ok(())
    }

    /// Starts every node.
    pub(crate) fn start_all(&mut self) -> anyhow::Result<()> {
        for index in 0..self.nodes.len() {
            self.start(index)?;
        }
        Ok(())
    }

    /// Kills node at `index` with SIGKILL and reaps it.
    pub(crate) fn kill(&mut self, index: usize) -> anyhow::Result<()> {
        let mut child = self.nodes[index].child.take().ok_or_else(|| anyhow!("node {index} is not running"))?;
        child.kill().context("killing a node")?;
        child.wait()?;
        Ok(())
    }

    /// Waits until every running node answers `/ready` with 200.
    pub(crate) async fn wait_ready(&self, limit: Duration) -> anyhow::Result<()> {
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let ready = within(limit, || async { node.client.ready().await.unwrap_or(false) }).await;
            anyhow::ensure!(ready, "node {} was not ready within {limit:?}", node.id);
        }
        Ok(())
    }
}

/// Retries `probe` every 20 ms for up to `limit`.
pub(crate) async fn within<F: std::future::Future<Output = bool>>(
    limit: Duration,
    mut probe: impl FnMut() -> F,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if probe().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
