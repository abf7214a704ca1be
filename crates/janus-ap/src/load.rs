//! Start-up: a node of a cluster loads every ephemeral instance from a
//! ready peer, page by page, before it takes writes or counts as ready. A
//! node joining a running cluster first waits until it has been added (the
//! first member list from the group), then loads from the group's members.
//!
//! Peers are tried in turn. A peer that is ready streams its pages; if every
//! peer is unreachable or still loading itself (a cold start of the whole
//! cluster), there is nothing to load and the node becomes ready empty. A
//! snapshot is applied like any peer's records: newer versions win and
//! nothing is ever deleted by it, so it cannot remove instances this node
//! already holds (it holds none before it is ready: it refuses writes).

use std::time::Duration;

use janus_core::NodeId;
use janus_distro::MessageKind;
use janus_distro::message::{SnapshotPage, SnapshotRequest, decode, encode};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::ApEngine;
use crate::cluster::{Cluster, Counters};
use crate::transport::route;

/// Rounds over all peers before a node with unreachable peers starts empty.
const ROUNDS: u32 = 3;

/// Pause between rounds.
const ROUND_PAUSE: Duration = Duration::from_millis(500);

enum Outcome {
    /// Loaded this many instances.
    Loaded(u64),
    /// The peer is up but not ready itself.
    NotReady,
    /// The peer did not answer.
    Unreachable,
}

pub(crate) async fn run(engine: ApEngine, shutdown: CancellationToken) {
    let Some(cluster) = engine.cluster().cloned() else { return };
    if cluster.wait_for_group {
        info!("waiting to be added to the cluster before loading the ap registry");
        loop {
            let arrived = cluster.group_arrived.notified();
            if cluster.group_known() {
                break;
            }
            tokio::select! {
                () = arrived => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
    let started = engine.store().now();
    let peers: Vec<(NodeId, String)> =
        cluster.membership.lock().peers().map(|(id, addr)| (id, addr.to_owned())).collect();
    let mut source = None;
    'rounds: for round in 0..ROUNDS {
        let mut all_answered = true;
        for (peer, addr) in &peers {
            if shutdown.is_cancelled() {
                return;
            }
            match load_from(&engine, &cluster, *peer, addr).await {
                Outcome::Loaded(count) => {
                    source = Some((*peer, count));
                    break 'rounds;
                }
                Outcome::NotReady => {}
                Outcome::Unreachable => all_answered = false,
            }
        }
        // Everyone answered and nobody is ready: a cold start, nothing to load.
        if all_answered || round + 1 == ROUNDS {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(ROUND_PAUSE) => {}
            () = shutdown.cancelled() => return,
        }
    }
    let took = engine.store().now().since(started);
    match source {
        Some((peer, count)) => info!(peer, instances = count, took_ms = took, "loaded the ap registry from a peer"),
        None if peers.is_empty() => {}
        None => warn!(took_ms = took, "no ready peer to load the ap registry from; starting empty"),
    }
    cluster.set_ready();
    crate::probe::ring_changed(&engine, &cluster);
}

async fn load_from(engine: &ApEngine, cluster: &Cluster, peer: NodeId, addr: &str) -> Outcome {
    let timeout = Duration::from_millis(cluster.config.snapshot_timeout_ms);
    let mut after = None;
    let mut loaded = 0;
    loop {
        let request = SnapshotRequest { from: cluster.me, after: after.take(), limit: cluster.config.snapshot_page };
        let Ok(body) = encode(&request) else { return Outcome::Unreachable };
        let reply = cluster.transport.call(peer, addr.to_owned(), route(MessageKind::Snapshot), body, timeout).await;
        // A load broken off half way is not a snapshot: what it applied stays
        // (records only ever add newer versions) and the next peer is tried.
        let Some(page) = reply.ok().and_then(|r| decode::<SnapshotPage>(&r).ok()) else {
            return Outcome::Unreachable;
        };
        if !page.ready {
            return Outcome::NotReady;
        }
        let count: u64 = page.batches.iter().map(|b| b.records.len() as u64).sum();
        engine.apply_batches(cluster, peer, page.batches);
        loaded += count;
        Counters::add(&cluster.counters.snapshot_records_loaded, count);
        match page.next {
            Some(next) => after = Some(next),
            None => return Outcome::Loaded(loaded),
        }
    }
}
