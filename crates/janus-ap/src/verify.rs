//! The verify (anti-entropy) round. On a fixed interval, and at once when
//! the ring changes, this node:
//! 1. passes over every ephemeral instance it holds, summing a digest per
//!    owner (bucketed checksums), starting leases it should run and has not,
//!    and dropping replicas whose owner stopped vouching for them;
//! 2. sends each reachable peer its digest of what it owns; the peer
//!    compares it with what it holds of this node's, marks the matching
//!    buckets vouched for, and names the ones that differ;
//! 3. sends that peer everything it owns in the differing buckets.
//!
//! The same pass answers peers' verify messages (see `inbound`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use janus_core::registry::{Binding, DirtyKey};
use janus_core::{InstanceKey, NodeId, ServiceKey, ServiceRecords};
use janus_distro::digest::{Digests, bucket};
use janus_distro::message::{Repair, SyncAck, Verify, VerifyReply, decode, encode};
use janus_distro::{MessageKind, Ring};
use rand::Rng as _;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::ApEngine;
use crate::cluster::{CachedDigests, Cluster, Counters};
use crate::transport::route;

/// Services read under one read lock during a pass.
const SERVICES_PER_LOCK: usize = 64;

/// Times a verify is sent to a peer whose ring differs.
const VERIFY_ATTEMPTS: u32 = 4;

/// Records per repair message (whole buckets, so it may be a little more).
const REPAIR_RECORDS: usize = 20_000;

pub(crate) async fn run(engine: ApEngine, shutdown: CancellationToken) {
    let Some(cluster) = engine.cluster().cloned() else { return };
    loop {
        // ±10 % jitter, so the nodes' rounds drift apart.
        let interval = cluster.config.verify_interval_ms;
        let jitter = rand::rng().random_range(0..=interval / 5);
        let wait = Duration::from_millis(interval - interval / 10 + jitter);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = cluster.verify_now.notified() => {
                // The ring changed: let the hand-over records land first.
                tokio::time::sleep(Duration::from_millis(2 * cluster.config.sync_delay_ms)).await;
            }
            () = shutdown.cancelled() => return,
        }
        if cluster.is_ready() {
            round(&engine, &cluster).await;
        }
    }
}

/// What one pass found.
#[derive(Debug, Default)]
pub(crate) struct Pass {
    pub(crate) digests: Digests,
    /// Replicas whose owner has not vouched for them within the grace.
    expired: Vec<DirtyKey>,
    /// Instances this node owns but runs no lease for.
    unleased: Vec<DirtyKey>,
    /// Connection-bound instances whose connection is gone for good.
    orphans: Vec<(Arc<ServiceKey>, InstanceKey, Binding)>,
    /// Nodes holding connections of instances here while out of the ring.
    orphaning: HashSet<NodeId>,
}

/// Passes over every ephemeral instance (see the module docs), a few
/// services per read lock so writers never wait long.
pub(crate) fn pass(engine: &ApEngine, cluster: &Cluster, ring: &Ring) -> Pass {
    let store = engine.store();
    let now = store.now();
    let services = store.read(janus_core::Registry::ap_services);
    let vouches = cluster.vouches.lock().clone();
    let floor = cluster.ring_since();
    let grace = cluster.config.replica_grace_ms;
    let me = cluster.me;
    let orphaned = cluster.orphaned.lock().clone();
    let orphan_grace = cluster.config.bound_orphan_grace_ms;
    let mut pass = Pass::default();
    for chunk in services.chunks(SERVICES_PER_LOCK) {
        store.read(|registry| {
            for service in chunk {
                registry.visit_ephemeral(service, |view| {
                    let owner = Cluster::owner_of(ring, me, view.hash, view.binding.as_ref());
                    pass.digests.add(owner, view.hash, view.version);
                    if let Some(binding) = view.binding {
                        // Gone for good: a connection of an earlier run of
                        // this node, or one of a node out of the ring, whose
                        // instances fall to this node.
                        let gone = if binding.node == me {
                            !registry.is_live_binding(binding)
                        } else {
                            !ring.contains(binding.node) && owner == me
                        };
                        if gone {
                            pass.orphaning.insert(binding.node);
                            let since = orphaned.get(&binding.node).copied().unwrap_or(now);
                            if now.since(since) >= orphan_grace {
                                pass.orphans.push((service.clone(), view.instance.clone(), binding));
                            }
                        }
                    }
                    if owner == me {
                        if !view.leased {
                            pass.unleased.push((service.clone(), view.instance.clone()));
                        }
                    } else if !view.leased && vouches.expired(owner, view.hash, view.vouched.max(floor), now, grace) {
                        pass.expired.push((service.clone(), view.instance.clone()));
                    }
                });
            }
        });
    }
    pass
}

/// The digests of a pass made at most half a verify interval ago with the
/// current ring, or of a new pass (whose results are then cached).
pub(crate) async fn digests(engine: &ApEngine, cluster: &Arc<Cluster>) -> Option<Arc<Digests>> {
    let ring = cluster.ring();
    let now = engine.store().now();
    let fresh = cluster.config.verify_interval_ms / 2;
    if let Some(cached) = cluster.digests.lock().as_ref()
        && cached.epoch == ring.epoch()
        && now.since(cached.at) <= fresh
    {
        return Some(cached.digests.clone());
    }
    let (engine, cluster2) = (engine.clone(), cluster.clone());
    let pass = tokio::task::spawn_blocking(move || pass(&engine, &cluster2, &ring)).await.ok()?;
    let digests = Arc::new(pass.digests);
    *cluster.digests.lock() = Some(CachedDigests { at: now, epoch: cluster.ring().epoch(), digests: digests.clone() });
    Some(digests)
}

async fn round(engine: &ApEngine, cluster: &Arc<Cluster>) {
    Counters::add(&cluster.counters.verify_rounds, 1);
    let ring = cluster.ring();
    let started = engine.store().now();
    let (engine2, cluster2, ring2) = (engine.clone(), cluster.clone(), ring.clone());
    let Ok(found) = tokio::task::spawn_blocking(move || pass(&engine2, &cluster2, &ring2)).await else { return };
    let Pass { digests, expired, unleased, orphans, orphaning } = found;
    clear_orphans(engine, cluster, orphans, &orphaning);
    let digests = Arc::new(digests);
    *cluster.digests.lock() = Some(CachedDigests { at: started, epoch: ring.epoch(), digests: digests.clone() });
    if !expired.is_empty() || !unleased.is_empty() {
        let dropped = engine.write(|registry, now| {
            let mut dropped = 0;
            for (service, instance) in &expired {
                dropped += registry.drop_replicas(service, [instance]);
            }
            for (service, instance) in &unleased {
                registry.adopt(service, instance, now);
            }
            dropped
        });
        if dropped > 0 {
            debug!(dropped, "replicas dropped: their owner stopped vouching for them");
        }
        Counters::add(&cluster.counters.replicas_expired, dropped as u64);
        engine.shared.wake.notify_one();
    }
    engine.write(|registry, now| registry.prune_tombstones(now));
    let mine = digests.of(cluster.me);
    let peers: Vec<(NodeId, String)> = {
        let membership = cluster.membership.lock();
        membership.peers().filter(|(id, _)| membership.reachable(*id)).map(|(id, a)| (id, a.to_owned())).collect()
    };
    let verifies = peers.into_iter().map(|(peer, addr)| verify_peer(engine, cluster, &ring, peer, addr, mine.clone()));
    join_all(verifies).await;
}

async fn verify_peer(engine: &ApEngine, cluster: &Cluster, ring: &Ring, peer: NodeId, addr: String, sums: Vec<u64>) {
    let timeout = Duration::from_millis(cluster.config.verify_timeout_ms);
    let message = Verify { from: cluster.me, epoch: ring.epoch(), sums };
    let Ok(body) = encode(&message) else { return };
    // A peer whose ring differs (it has not seen the same change yet) is
    // asked again a little later, a few times.
    let mut reply = None;
    for attempt in 0..VERIFY_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(cluster.config.probe_interval_ms / 2)).await;
        }
        let answer =
            match cluster.transport.call(peer, addr.clone(), route(MessageKind::Verify), body.clone(), timeout).await {
                Ok(answer) => answer,
                Err(error) => {
                    debug!(peer, %error, "verify failed");
                    Counters::add(&cluster.counters.verify_failures, 1);
                    return;
                }
            };
        let Ok(answer) = decode::<VerifyReply>(&answer) else {
            Counters::add(&cluster.counters.verify_failures, 1);
            return;
        };
        if answer.compared {
            reply = Some(answer);
            break;
        }
    }
    let Some(reply) = reply.filter(|r| !r.mismatched.is_empty()) else { return };
    Counters::add(&cluster.counters.verify_mismatched_buckets, reply.mismatched.len() as u64);
    debug!(peer, buckets = reply.mismatched.len(), "verify found differences; repairing");
    for (buckets, batches) in owned_in_buckets(engine, cluster.me, ring, &reply.mismatched) {
        let repair = Repair { from: cluster.me, epoch: ring.epoch(), buckets, batches };
        let Ok(body) = encode(&repair) else { return };
        match cluster.transport.call(peer, addr.clone(), route(MessageKind::Repair), body, timeout).await {
            Ok(reply) => {
                Counters::add(&cluster.counters.repairs_sent, 1);
                if let Ok(ack) = decode::<SyncAck>(&reply)
                    && ack.refused > 0
                {
                    warn!(peer, refused = ack.refused, "peer refused repaired records (its namespaces lag)");
                }
            }
            Err(error) => {
                debug!(peer, %error, "repair failed; the next round retries");
                Counters::add(&cluster.counters.verify_failures, 1);
                return;
            }
        }
    }
}

/// Removes the connection-bound instances whose connection is gone for good
/// (each only if still bound to it), and remembers since when each node's
/// connections are orphaned.
fn clear_orphans(
    engine: &ApEngine,
    cluster: &Cluster,
    orphans: Vec<(Arc<ServiceKey>, InstanceKey, Binding)>,
    orphaning: &HashSet<NodeId>,
) {
    let now = engine.store().now();
    {
        let mut orphaned = cluster.orphaned.lock();
        orphaned.retain(|node, _| orphaning.contains(node));
        for node in orphaning {
            orphaned.entry(*node).or_insert(now);
        }
    }
    if orphans.is_empty() {
        return;
    }
    let cleared = engine.write(|registry, now| {
        orphans
            .iter()
            .filter(|(service, instance, binding)| registry.clear_orphan(service, instance, *binding, now))
            .count()
    });
    if cleared > 0 {
        info!(cleared, "connection-bound instances removed: their connections are gone and no client took them over");
    }
    Counters::add(&cluster.counters.orphans_cleared, cleared as u64);
}

/// Everything this node owns in `mismatched` buckets, as messages of about
/// [`REPAIR_RECORDS`] records, each covering whole buckets.
fn owned_in_buckets(
    engine: &ApEngine,
    me: NodeId,
    ring: &Ring,
    mismatched: &[u16],
) -> Vec<(Vec<u16>, Vec<ServiceRecords>)> {
    let wanted: std::collections::HashSet<u16> = mismatched.iter().copied().collect();
    let store = engine.store();
    let services = store.read(janus_core::Registry::ap_services);
    let mut by_bucket: HashMap<u16, Vec<(Arc<ServiceKey>, InstanceKey)>> = HashMap::new();
    let mut wanted_here = |service: &Arc<ServiceKey>, instance: &InstanceKey, hash: u64, binding: Option<&Binding>| {
        let b = u16::try_from(bucket(hash)).unwrap_or(0);
        if wanted.contains(&b) && Cluster::owner_of(ring, me, hash, binding) == me {
            by_bucket.entry(b).or_default().push((service.clone(), instance.clone()));
        }
    };
    for chunk in services.chunks(SERVICES_PER_LOCK) {
        store.read(|registry| {
            for service in chunk {
                registry.visit_ephemeral(service, |view| {
                    wanted_here(service, view.instance, view.hash, view.binding.as_ref());
                });
            }
        });
    }
    // Deletions too: a peer may still hold what this node deleted.
    store.read(|registry| {
        registry.visit_tombstones(|service, instance, hash| {
            wanted_here(&Arc::new(service.clone()), instance, hash, None);
        });
    });
    let mut messages = Vec::new();
    let (mut buckets, mut keys) = (Vec::new(), Vec::new());
    for b in mismatched {
        buckets.push(*b);
        keys.extend(by_bucket.remove(b).unwrap_or_default());
        if keys.len() >= REPAIR_RECORDS {
            let batches = store.read(|registry| crate::sync::records(registry, &keys));
            messages.push((std::mem::take(&mut buckets), batches));
            keys.clear();
        }
    }
    if !buckets.is_empty() {
        let batches = store.read(|registry| crate::sync::records(registry, &keys));
        messages.push((buckets, batches));
    }
    messages
}
