//! One sender per peer: waits until the peer's outbox queue is due, reads
//! the queued instances' current records, and sends them. A failed send puts
//! them back and the queue waits out the retry delay; a peer that is down
//! keeps its (bounded) queue until it is back. Each peer has its own task,
//! so a slow or dead peer never holds up the others; it stops when the peer
//! leaves the cluster.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use janus_core::registry::DirtyKey;
use janus_core::transport::CallError;
use janus_core::{InstanceKey, NodeId, Registry, ServiceKey, ServiceRecords};
use janus_distro::message::{Malformed, Sync, encode};
use janus_distro::{MessageKind, PeerState};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::ApEngine;
use crate::cluster::{Cluster, Counters};
use crate::transport::route;

pub(crate) async fn run(engine: ApEngine, peer: NodeId, wake: Arc<Notify>, shutdown: CancellationToken) {
    let Some(cluster) = engine.cluster().cloned() else { return };
    loop {
        let due = cluster.outbox.lock().due_at(peer);
        let wait = async {
            match due {
                Some(at) => tokio::time::sleep_until(engine.store().clock().instant(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wait => {}
            () = wake.notified() => continue,
            () = shutdown.cancelled() => return,
        }
        if cluster.membership.lock().state(peer) == Some(PeerState::Down) {
            // Keep the queue (it is bounded) and look again after the next probe.
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(cluster.config.probe_interval_ms)) => {}
                () = shutdown.cancelled() => return,
            }
            continue;
        }
        let now = engine.store().now();
        let keys = cluster.outbox.lock().take(peer, now, cluster.config.sync_batch);
        if keys.is_empty() {
            continue;
        }
        let batches = engine.store().read(|registry| records(registry, &keys));
        let count: usize = batches.iter().map(|b| b.records.len()).sum();
        match send(&cluster, peer, batches).await {
            Ok(()) => Counters::add(&cluster.counters.records_sent, count as u64),
            Err(error) => {
                debug!(%error, count, "sync failed; retrying later");
                Counters::add(&cluster.counters.sync_failures, 1);
                let now = engine.store().now();
                cluster.outbox.lock().failed(peer, keys, now, cluster.config.sync_retry_ms);
            }
        }
    }
}

/// The current records of `keys`, grouped by service.
pub(crate) fn records(registry: &Registry, keys: &[DirtyKey]) -> Vec<ServiceRecords> {
    let mut by_service: HashMap<&Arc<ServiceKey>, Vec<&InstanceKey>> = HashMap::new();
    for (service, instance) in keys {
        by_service.entry(service).or_default().push(instance);
    }
    by_service
        .into_iter()
        .map(|(service, instances)| registry.records(service, instances))
        .filter(|batch| !batch.records.is_empty())
        .collect()
}

/// Why a sync batch was not delivered (it is queued again).
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// The peer left the member list.
    #[error("unknown peer")]
    UnknownPeer,
    /// The batch did not encode.
    #[error("{0}")]
    Encode(#[from] Malformed),
    /// The call failed.
    #[error("{0}")]
    Call(#[from] CallError),
}

async fn send(cluster: &Cluster, peer: NodeId, batches: Vec<ServiceRecords>) -> Result<(), SendError> {
    if batches.is_empty() {
        return Ok(());
    }
    let addr = cluster.membership.lock().addr(peer).map(str::to_owned).ok_or(SendError::UnknownPeer)?;
    let body = encode(&Sync { from: cluster.me, batches })?;
    let timeout = Duration::from_millis(cluster.config.sync_timeout_ms);
    cluster.transport.call(peer, addr, route(MessageKind::Sync), body, timeout).await?;
    Ok(())
}
