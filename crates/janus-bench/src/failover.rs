//! `failover`: how long cp writes stop after the Raft leader is killed.
//!
//! Starts a three-node cluster of real `janus` processes on loopback with the
//! default Raft timing, then per trial: asks the cluster who leads, kills
//! that process with SIGKILL, and keeps registering persistent instances
//! through a surviving node until one is acknowledged. The time from the kill
//! to that acknowledgement is the trial's recovery time. The killed node is
//! then restarted on its data and rejoins before the next trial.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use janus_client::api::native::{CreateNamespace, Mode};
use janus_client::{Body, Method, ServiceRef, registration};

use crate::local_cluster::{LocalCluster, NodeProcess, within};

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

/// Registers (again) a persistent instance through `node`: whether it was acknowledged.
async fn register(node: &NodeProcess, instance_port: u16) -> bool {
    let ledger = ServiceRef::new("failover", "ledger");
    node.client.register_instance(&ledger, &registration("127.0.77.1", instance_port)).await.is_ok()
}

async fn leader(nodes: &[NodeProcess]) -> Option<u64> {
    for node in nodes.iter().filter(|n| n.child.is_some()) {
        let Ok(answer) = node.admin.request(Method::GET, "/internal/admin/members", Body::Empty).await else {
            continue;
        };
        let members: Option<serde_json::Value> = answer.error_for_status().and_then(|a| a.json()).ok();
        if let Some(leader) = members.and_then(|m| m["leader"].as_u64()) {
            return Some(leader);
        }
    }
    None
}

/// Runs the trials; returns the recovery time of each.
pub(crate) async fn run(args: &FailoverArgs) -> anyhow::Result<Vec<Duration>> {
    let mut cluster = LocalCluster::plan(&args.janus, &args.work, 3, &[])?;
    cluster.start_all()?;
    let first = &cluster.nodes[0].client;
    let namespace =
        CreateNamespace { id: "failover".to_owned(), name: None, description: None, mode: Mode::Cp, dns: None };
    let created = within(Duration::from_secs(15), || async { first.create_namespace(&namespace).await.is_ok() }).await;
    if !created {
        bail!("the cluster did not accept a cp namespace within 15 s");
    }

    let mut recoveries = Vec::new();
    for trial in 1..=args.trials {
        let leader = leader(&cluster.nodes).await.ok_or_else(|| anyhow!("no node names a leader"))?;
        let victim =
            cluster.nodes.iter().position(|n| n.id == leader).ok_or_else(|| anyhow!("unknown leader {leader}"))?;
        let survivor = cluster.nodes.iter().position(|n| n.id != leader).ok_or_else(|| anyhow!("no survivor"))?;
        let killed = Instant::now();
        cluster.kill(victim).context("killing the leader")?;
        // Re-registering one instance is idempotent but still a Raft write.
        let instance_port = u16::try_from(trial).unwrap_or(u16::MAX);
        let recovered = within(Duration::from_secs(30), || register(&cluster.nodes[survivor], instance_port)).await;
        if !recovered {
            bail!("trial {trial}: no cp write succeeded within 30 s of killing the leader");
        }
        let took = killed.elapsed();
        println!("trial {trial}: killed leader node {leader}; cp writes succeeded again after {} ms", took.as_millis());
        recoveries.push(took);

        // The killed node comes back on its data and catches up before the next trial.
        cluster.start(victim)?;
        let rejoined = within(Duration::from_secs(15), || register(&cluster.nodes[victim], instance_port)).await;
        if !rejoined {
            bail!("trial {trial}: the restarted node did not take writes within 15 s");
        }
    }
    Ok(recoveries)
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
