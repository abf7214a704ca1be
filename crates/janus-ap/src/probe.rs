//! The prober: pings every peer on a fixed interval, feeds the answers to
//! the membership, and when the ring changes hands instances over: this
//! node starts the leases of what it now owns, releases those it no longer
//! owns and queues them for their new owners, and asks for a verify round
//! at once so the nodes reconcile without waiting for the next one.

use std::time::Duration;

use futures_util::future::join_all;
use janus_core::NodeId;
use janus_distro::MessageKind;
use janus_distro::message::{Ping, Pong, decode, encode};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::ApEngine;
use crate::cluster::{Cluster, Counters};
use crate::transport::route;

pub(crate) async fn run(engine: ApEngine, shutdown: CancellationToken) {
    let Some(cluster) = engine.cluster().cloned() else { return };
    let mut ticker = tokio::time::interval(Duration::from_millis(cluster.config.probe_interval_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = cluster.probe_now.notified() => {}
            () = shutdown.cancelled() => return,
        }
        let peers: Vec<(NodeId, String)> =
            cluster.membership.lock().peers().map(|(id, addr)| (id, addr.to_owned())).collect();
        let ping = Ping { from: cluster.me, ready: cluster.is_ready() };
        let probes = peers.into_iter().map(|(peer, addr)| {
            let cluster = cluster.clone();
            let ping = ping.clone();
            async move { (peer, probe(&cluster, peer, addr, &ping).await) }
        });
        let answers = join_all(probes).await;
        let now = engine.store().now();
        {
            let mut membership = cluster.membership.lock();
            for (peer, answer) in answers {
                match answer {
                    Some(ready) => membership.probe_answered(peer, ready, now),
                    None => membership.probe_failed(peer),
                }
            }
        }
        ring_changed(&engine, &cluster);
    }
}

/// One ping; `Some(ready)` if answered in time.
async fn probe(cluster: &Cluster, peer: NodeId, addr: String, ping: &Ping) -> Option<bool> {
    let body = encode(ping).ok()?;
    let timeout = Duration::from_millis(cluster.config.probe_timeout_ms);
    let reply = cluster.transport.call(peer, addr, route(MessageKind::Ping), body, timeout).await.ok()?;
    decode::<Pong>(&reply).ok().filter(|pong| pong.from == peer).map(|pong| pong.ready)
}

/// Recomputes the ring; if it changed, hands instances over (see the module docs).
pub(crate) fn ring_changed(engine: &ApEngine, cluster: &Cluster) {
    if !cluster.refresh_ring(engine.store().now()) {
        return;
    }
    let ring = cluster.ring();
    info!(members = ?ring.members(), epoch = ring.epoch(), "ownership ring changed");
    Counters::add(&cluster.counters.ownership_changes, 1);
    let me = cluster.me;
    let (released, now) =
        engine.write(|registry, now| (registry.rebalance(now, &|hash| Cluster::owns_in(&ring, me, hash)), now));
    // Every peer gets what this node hands over (not only the new owner),
    // so all replicas learn what happened on this node's side at once.
    cluster.queue(&released, now);
    // A lease this node now runs may be due earlier than the reaper planned.
    engine.shared.wake.notify_one();
    cluster.verify_now.notify_one();
}
