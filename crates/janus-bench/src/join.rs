//! `join`: how long a node that starts with an empty memory takes to load
//! a large cluster's ephemeral instances and report ready.
//!
//! Starts three `janus` processes as one cluster (leases long enough not to
//! expire during the run), registers `--instances` instances through nodes 1
//! and 2, waits until node 3 holds them all, then kills node 3 with SIGKILL
//! and starts it again: its memory is empty, so it loads every instance from
//! a peer before `/ready` answers 200. The time from the start to ready is
//! the result; node 3's instance count is checked afterwards.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use janus_client::{Client, ServiceRef, registration};
use tokio::task::JoinSet;

use crate::local_cluster::{LocalCluster, within};

/// Arguments of `janus-bench join`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct JoinArgs {
    /// The janus binary.
    #[arg(long, default_value = "target/release/janus")]
    pub(crate) janus: PathBuf,
    /// Instances the cluster holds when the node starts.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) instances: u64,
    /// Concurrent connections registering them.
    #[arg(long, default_value_t = 64)]
    pub(crate) connections: u64,
    /// Where the nodes keep their data (removed afterwards).
    #[arg(long, default_value = "target/bench-join")]
    pub(crate) work: PathBuf,
}

/// What a run measured.
pub(crate) struct Joined {
    pub(crate) instances: u64,
    pub(crate) registered_in: Duration,
    pub(crate) ready_after: Duration,
    pub(crate) loaded: u64,
}

/// The instances a node holds (its `/health`).
async fn instance_count(client: &Client) -> Option<u64> {
    client.health().await.ok().map(|health| health.instances)
}

pub(crate) async fn run(args: &JoinArgs) -> anyhow::Result<Joined> {
    let long_leases = [("JANUS_LEASE__UNHEALTHY_AFTER_MS", "36000000"), ("JANUS_LEASE__DELETE_AFTER_MS", "72000000")];
    let mut cluster = LocalCluster::plan(&args.janus, &args.work, 3, &long_leases)?;
    cluster.start_all()?;
    cluster.wait_ready(Duration::from_secs(30)).await?;
    let targets: Vec<Client> = cluster.nodes[..2].iter().map(|n| n.client.clone()).collect();

    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for worker in 0..args.connections.max(1) {
        // Clones share the node's pool: a keep-alive connection per worker.
        let target = targets[usize::try_from(worker).unwrap_or(0) % targets.len()].clone();
        let (next, total) = (next.clone(), args.instances);
        workers.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return anyhow::Ok(());
                }
                let ip = format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
                let port = u16::try_from(1000 + (n >> 24)).unwrap_or(u16::MAX);
                let service = ServiceRef::new("public", format!("join-{}", n / 100));
                target
                    .register_instance(&service, &registration(ip, port))
                    .await
                    .with_context(|| format!("registration {n}"))?;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    let registered_in = started.elapsed();
    // Every node holds everything before node 3 goes: what an owner acknowledged
    // but had not yet sent (its 100 ms sync window) would die with it.
    for node in &cluster.nodes {
        let held =
            within(Duration::from_secs(120), || async { instance_count(&node.client).await == Some(args.instances) })
                .await;
        if !held {
            bail!("node {} did not hold all {} instances within 120 s of the registrations", node.id, args.instances);
        }
    }
    let third = cluster.nodes[2].client.clone();

    cluster.kill(2)?;
    let restarted = Instant::now();
    cluster.start(2)?;
    let ready = within(Duration::from_secs(300), || async { third.ready().await.unwrap_or(false) }).await;
    let ready_after = restarted.elapsed();
    if !ready {
        bail!("the restarted node was not ready within 300 s");
    }
    let loaded = instance_count(&third).await.context("reading the restarted node's instance count")?;
    Ok(Joined { instances: args.instances, registered_in, ready_after, loaded })
}

/// One line for the report.
pub(crate) fn summary(joined: &Joined) -> String {
    format!(
        "a node restarted with an empty memory in a 3-node cluster holding {} instances was ready after {:.1} s, \
         holding {} instances (the cluster took {:.1} s to register them)",
        joined.instances,
        joined.ready_after.as_secs_f64(),
        joined.loaded,
        joined.registered_in.as_secs_f64()
    )
}
