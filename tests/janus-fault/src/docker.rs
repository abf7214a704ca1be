//! The cluster under test: the three containers of `docker-compose.yml`,
//! driven through the `docker` and compose (`docker-compose` or `docker compose`)
//! command lines.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use janus_client::{Client, Options};
use tokio::process::Command;

/// A request's deadline: a frozen or cut-off node costs a timeout, never a hang.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(3);

/// One node of the compose file.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Raft and AP node id.
    pub(crate) id: u64,
    /// Container name.
    pub(crate) name: String,
    /// Its address on the `clients` network (HTTP on 8848, DNS on 8600).
    pub(crate) client_ip: String,
    /// Its address on the `cluster` network.
    pub(crate) cluster_ip: String,
    /// A client of its HTTP address (this node only: the load chooses the
    /// node of each request itself), with [`TIMEOUT`].
    pub(crate) client: Client,
}

impl Node {
    /// Node `id` of the compose file, at `172.29.0.1{id}` for clients and
    /// `172.28.0.1{id}` in the cluster; its client sends `token`, if any.
    fn new(id: u64, token: Option<&str>) -> anyhow::Result<Self> {
        let client_ip = format!("172.29.0.1{id}");
        let mut options = Options::default().request_timeout(TIMEOUT).connect_timeout(TIMEOUT);
        if let Some(token) = token {
            options = options.bearer(token);
        }
        let client = Client::new([format!("{client_ip}:8848")], options)?;
        Ok(Self { id, name: format!("janus-{id}"), client_ip, cluster_ip: format!("172.28.0.1{id}"), client })
    }

    /// Its DNS address on the `clients` network.
    pub(crate) fn dns(&self) -> anyhow::Result<std::net::SocketAddr> {
        format!("{}:8600", self.client_ip).parse().with_context(|| format!("the DNS address of {}", self.name))
    }
}

/// The compose project.
#[derive(Debug, Clone)]
pub(crate) struct Compose {
    /// The compose program and its leading arguments (`["docker", "compose"]`).
    command: Vec<String>,
    pub(crate) project: String,
    /// The compose files, each passed with `-f` in this order.
    pub(crate) files: Vec<String>,
    pub(crate) nodes: Vec<Node>,
}

async fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        bail!("{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl Compose {
    /// `command` is the compose command line, split at whitespace
    /// (`docker-compose` or `docker compose`).
    pub(crate) fn new(command: &str, project: &str, files: &[String]) -> anyhow::Result<Self> {
        let nodes = (1..=3).map(|id| Node::new(id, None)).collect::<anyhow::Result<Vec<_>>>()?;
        let mut command: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
        if command.is_empty() {
            command.push("docker-compose".to_owned());
        }
        Ok(Self { command, project: project.to_owned(), files: files.to_vec(), nodes })
    }

    async fn compose(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut all: Vec<&str> = self.command[1..].iter().map(String::as_str).collect();
        all.extend_from_slice(&["-p", self.project.as_str()]);
        for file in &self.files {
            all.extend_from_slice(&["-f", file.as_str()]);
        }
        all.extend_from_slice(args);
        run(&self.command[0], &all).await
    }

    /// A fresh cluster (volumes from an earlier run removed); returns how long
    /// until every container reported healthy. Auth is on in the compose
    /// file: the nodes' clients then carry the bootstrap admin's token.
    pub(crate) async fn up_fresh(&mut self) -> anyhow::Result<Duration> {
        self.compose(&["down", "-v", "--remove-orphans"]).await?;
        let started = Instant::now();
        self.compose(&["up", "-d", "--no-build"]).await?;
        self.wait_healthy(Duration::from_secs(60)).await?;
        let healthy = started.elapsed();
        let token = self.bootstrap_token(Duration::from_secs(30)).await?;
        self.nodes = (1..=3).map(|id| Node::new(id, Some(&token))).collect::<anyhow::Result<Vec<_>>>()?;
        Ok(healthy)
    }

    /// The bootstrap admin's token, which a node of a new cluster writes to
    /// the shared volume (`docker cp`, as the compose file tells a user), once
    /// a node accepts it.
    async fn bootstrap_token(&self, limit: Duration) -> anyhow::Result<String> {
        let started = Instant::now();
        let copy = std::env::temp_dir().join(format!("janus-fault-bootstrap-token-{}", std::process::id()));
        let copy_arg = copy.to_string_lossy().into_owned();
        loop {
            let mut last = String::from("no token file yet");
            if run("docker", &["cp", "janus-1:/shared/bootstrap-token", &copy_arg]).await.is_ok() {
                let token = std::fs::read_to_string(&copy)?.trim().to_owned();
                std::fs::remove_file(&copy)?;
                let node = Node::new(1, Some(&token))?;
                match node.client.cluster_status().await {
                    Ok(_) => return Ok(token),
                    Err(error) => last = format!("the token was refused: {error}"),
                }
            }
            if started.elapsed() > limit {
                bail!("no working bootstrap token within {limit:?}: {last}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops and removes everything, volumes included.
    pub(crate) async fn down(&self) -> anyhow::Result<()> {
        self.compose(&["down", "-v", "--remove-orphans"]).await.map(|_| ())
    }

    /// `compose stop` (SIGTERM, then SIGKILL after the grace period).
    pub(crate) async fn stop_all(&self) -> anyhow::Result<()> {
        self.compose(&["stop"]).await.map(|_| ())
    }

    /// `compose start`.
    pub(crate) async fn start_all(&self) -> anyhow::Result<()> {
        self.compose(&["start"]).await.map(|_| ())
    }

    /// A container's health (`healthy`, `starting`, `unhealthy`, or its state if it has none).
    pub(crate) async fn health(&self, node: &Node) -> String {
        run(
            "docker",
            &[
                "inspect",
                "-f",
                "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
                &node.name,
            ],
        )
        .await
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| e.to_string())
    }

    /// Waits until every container is healthy.
    pub(crate) async fn wait_healthy(&self, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let mut states = Vec::new();
            for node in &self.nodes {
                states.push(self.health(node).await);
            }
            if states.iter().all(|s| s == "healthy") {
                return Ok(());
            }
            if started.elapsed() > limit {
                bail!("the cluster was not healthy within {limit:?}: {states:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until one container is healthy.
    pub(crate) async fn wait_node_healthy(&self, node: &Node, limit: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        while self.health(node).await != "healthy" {
            if started.elapsed() > limit {
                bail!("{} was not healthy within {limit:?}", node.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(started.elapsed())
    }

    fn cluster_network(&self) -> String {
        format!("{}_cluster", self.project)
    }

    /// Cuts a node off from the other nodes (clients still reach it).
    pub(crate) async fn partition(&self, node: &Node) -> anyhow::Result<()> {
        run("docker", &["network", "disconnect", &self.cluster_network(), &node.name]).await.map(|_| ())
    }

    /// Puts a cut-off node back on the cluster network, at its address.
    pub(crate) async fn heal(&self, node: &Node) -> anyhow::Result<()> {
        run("docker", &["network", "connect", "--ip", &node.cluster_ip, &self.cluster_network(), &node.name])
            .await
            .map(|_| ())
    }

    /// SIGKILL.
    pub(crate) async fn kill(&self, node: &Node) -> anyhow::Result<()> {
        run("docker", &["kill", "-s", "KILL", &node.name]).await.map(|_| ())
    }

    /// Starts a stopped container.
    pub(crate) async fn start(&self, node: &Node) -> anyhow::Result<()> {
        run("docker", &["start", &node.name]).await.map(|_| ())
    }

    /// Freezes every process of a container.
    pub(crate) async fn pause(&self, node: &Node) -> anyhow::Result<()> {
        run("docker", &["pause", &node.name]).await.map(|_| ())
    }

    /// Thaws it.
    pub(crate) async fn unpause(&self, node: &Node) -> anyhow::Result<()> {
        run("docker", &["unpause", &node.name]).await.map(|_| ())
    }

    /// A graceful restart (SIGTERM, 10 s grace).
    pub(crate) async fn restart(&self, node: &Node) -> anyhow::Result<()> {
        run("docker", &["restart", "-t", "10", &node.name]).await.map(|_| ())
    }
}
