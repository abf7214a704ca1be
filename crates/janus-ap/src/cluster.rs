//! [`Cluster`]: what the AP engine of a clustered node shares between its
//! tasks: the membership and ring, the outbox, the vouch table, the links to
//! the peers' sender and forwarder tasks, and the counters the admin API and
//! metrics show.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use janus_core::registry::{Binding, DirtyKey};
use janus_core::status::{ApStatus, MemberStatus, PeerQueueStatus};
use janus_core::transport::PeerTransport;
use janus_core::{Millis, NodeId};
use janus_distro::digest::{Digests, VouchTable};
use janus_distro::{DistroConfig, Membership, Outbox, Ring};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::forward::Pending;

/// Where a clustered node's AP engine finds its peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApCluster {
    /// This node's id.
    pub node: NodeId,
    /// Every member (this node included): id → cluster address.
    pub members: BTreeMap<NodeId, String>,
    /// Protocol timing and bounds.
    pub distro: DistroConfig,
    /// A node joining a running cluster: it loads its snapshot (and becomes
    /// ready) only once the first member list from the group arrives
    /// ([`crate::ApEngine::set_members`]), that is once it has been added.
    pub wait_for_group: bool,
}

/// Counters of the protocol, since start.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) forwarded: AtomicU64,
    pub(crate) forward_fallbacks: AtomicU64,
    pub(crate) beats_relayed: AtomicU64,
    pub(crate) records_sent: AtomicU64,
    pub(crate) sync_failures: AtomicU64,
    pub(crate) records_applied: AtomicU64,
    pub(crate) records_refused: AtomicU64,
    pub(crate) verify_rounds: AtomicU64,
    pub(crate) verify_mismatched_buckets: AtomicU64,
    pub(crate) verify_failures: AtomicU64,
    pub(crate) repairs_sent: AtomicU64,
    pub(crate) replicas_expired: AtomicU64,
    pub(crate) ownership_changes: AtomicU64,
    pub(crate) snapshot_records_loaded: AtomicU64,
    pub(crate) orphans_cleared: AtomicU64,
    pub(crate) bound_reasserted: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A digest pass's result, kept briefly to answer peers' verify messages.
#[derive(Debug, Clone)]
pub(crate) struct CachedDigests {
    pub(crate) at: Millis,
    pub(crate) epoch: u64,
    pub(crate) digests: Arc<Digests>,
}

/// This node's tasks for one peer: its sender (woken by `wake`) and its
/// forwarder (fed by `forward`); `stop` ends both when the peer leaves.
#[derive(Debug)]
pub(crate) struct PeerLink {
    pub(crate) wake: Arc<Notify>,
    pub(crate) forward: mpsc::Sender<Pending>,
    pub(crate) stop: CancellationToken,
}

/// State shared by the tasks of a clustered AP engine.
pub(crate) struct Cluster {
    pub(crate) me: NodeId,
    pub(crate) config: DistroConfig,
    pub(crate) transport: Arc<dyn PeerTransport>,
    pub(crate) membership: Mutex<Membership>,
    /// The ring writes consult; replaced when membership changes it.
    ring: RwLock<Arc<Ring>>,
    pub(crate) outbox: Mutex<Outbox>,
    pub(crate) vouches: Mutex<VouchTable>,
    pub(crate) digests: Mutex<Option<CachedDigests>>,
    /// The peers' tasks, one entry per peer in the membership.
    pub(crate) links: RwLock<HashMap<NodeId, PeerLink>>,
    /// The engine's shutdown; each peer's tasks stop on a child of it.
    pub(crate) shutdown: CancellationToken,
    /// Asks for a verify round now (the ring changed).
    pub(crate) verify_now: Notify,
    /// Asks for a probe round now (this node just became ready: tell the peers).
    pub(crate) probe_now: Notify,
    /// Whether the snapshot load waits for the first member list from the group.
    pub(crate) wait_for_group: bool,
    /// Set (and `group_arrived` notified) by the first member list from the group.
    group_known: AtomicBool,
    pub(crate) group_arrived: Notify,
    /// When the ring last changed: replicas count as vouched for at least since.
    ring_since: AtomicU64,
    ready: AtomicBool,
    pub(crate) counters: Counters,
    /// Nodes holding connections of connection-bound instances here while
    /// out of the ring, with when this node first saw that (this node
    /// itself for the connections of its earlier runs).
    pub(crate) orphaned: Mutex<HashMap<NodeId, Millis>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("me", &self.me).finish_non_exhaustive()
    }
}

impl Cluster {
    /// The cluster's state, with no peer tasks yet (see `ApEngine::start_peer`).
    pub(crate) fn new(cluster: &ApCluster, transport: Arc<dyn PeerTransport>, shutdown: CancellationToken) -> Self {
        let membership = Membership::new(cluster.node, &cluster.members, cluster.distro.down_after_failures);
        let peers: Vec<NodeId> = membership.peers().map(|(id, _)| id).collect();
        let outbox =
            Outbox::new(peers.iter().copied(), cluster.distro.sync_delay_ms, cluster.distro.max_queued_per_peer);
        Self {
            me: cluster.node,
            config: cluster.distro,
            transport,
            ring: RwLock::new(Arc::new(membership.ring())),
            membership: Mutex::new(membership),
            outbox: Mutex::new(outbox),
            vouches: Mutex::new(VouchTable::default()),
            digests: Mutex::new(None),
            links: RwLock::new(HashMap::new()),
            shutdown,
            wait_for_group: cluster.wait_for_group,
            group_known: AtomicBool::new(false),
            group_arrived: Notify::new(),
            verify_now: Notify::new(),
            probe_now: Notify::new(),
            ring_since: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            counters: Counters::default(),
            orphaned: Mutex::new(HashMap::new()),
        }
    }

    /// The ring now.
    pub(crate) fn ring(&self) -> Arc<Ring> {
        self.ring.read().clone()
    }

    /// Marks that a member list from the group arrived (wakes the load).
    pub(crate) fn set_group_known(&self) {
        if !self.group_known.swap(true, Ordering::AcqRel) {
            self.group_arrived.notify_waiters();
        }
    }

    /// Whether a member list from the group arrived.
    pub(crate) fn group_known(&self) -> bool {
        self.group_known.load(Ordering::Acquire)
    }

    /// Recomputes the ring from the membership; true if it changed (at `now`).
    /// The membership stays locked until the ring is installed, so that
    /// concurrent refreshes install rings in the order they were computed.
    pub(crate) fn refresh_ring(&self, now: Millis) -> bool {
        let membership = self.membership.lock();
        let ring = membership.ring();
        let mut current = self.ring.write();
        if **current == ring {
            return false;
        }
        *current = Arc::new(ring);
        self.ring_since.store(now.0, Ordering::Release);
        true
    }

    /// When the ring last changed.
    pub(crate) fn ring_since(&self) -> Millis {
        Millis(self.ring_since.load(Ordering::Acquire))
    }

    /// The owner of an instance bound to `binding`, if any: the node holding
    /// the connection while it is in the ring, else the ring's owner.
    pub(crate) fn owner_of(ring: &Ring, me: NodeId, hash: u64, binding: Option<&Binding>) -> NodeId {
        janus_core::replica::owner(ring.owner(hash).unwrap_or(me), binding, |node| ring.contains(node))
    }

    /// Whether this node owns an instance by the given ring (nobody owns
    /// anything in an empty ring).
    pub(crate) fn owns_in(ring: &Ring, me: NodeId, hash: u64) -> bool {
        ring.owner(hash) == Some(me)
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Marks this node ready: it joins the ring, and its next probes (sent
    /// at once) tell the peers.
    pub(crate) fn set_ready(&self) {
        self.membership.lock().set_ready();
        self.ready.store(true, Ordering::Release);
        self.probe_now.notify_one();
    }

    /// Queues changed instances for every peer and wakes their senders.
    pub(crate) fn queue(&self, dirty: &[DirtyKey], now: Millis) {
        if dirty.is_empty() {
            return;
        }
        self.outbox.lock().mark(dirty, now);
        for link in self.links.read().values() {
            link.wake.notify_one();
        }
    }

    /// Queues instances for one peer.
    pub(crate) fn queue_for(&self, peer: NodeId, keys: Vec<DirtyKey>, now: Millis) {
        if keys.is_empty() {
            return;
        }
        self.outbox.lock().mark_for(peer, keys, now);
        if let Some(link) = self.links.read().get(&peer) {
            link.wake.notify_one();
        }
    }

    /// Stops a peer's tasks and drops its queue (it left the cluster).
    pub(crate) fn remove_peer(&self, peer: NodeId) {
        if let Some(link) = self.links.write().remove(&peer) {
            link.stop.cancel();
        }
        self.outbox.lock().remove_peer(peer);
    }

    pub(crate) fn status(&self, now: Millis) -> ApStatus {
        let membership = self.membership.lock();
        let members = membership
            .view(now)
            .into_iter()
            .map(|m| MemberStatus {
                id: m.id,
                addr: m.addr,
                state: m.state.as_str().to_owned(),
                ready: m.ready,
                failures: m.failures,
                last_seen_ms_ago: m.last_seen_ms_ago,
                in_ring: m.in_ring,
                this_node: m.this_node,
            })
            .collect();
        let peers: Vec<NodeId> = membership.peers().map(|(id, _)| id).collect();
        drop(membership);
        let outbox = self.outbox.lock();
        let queues = peers
            .iter()
            .map(|id| PeerQueueStatus { peer: *id, queued: outbox.depth(*id) as u64, overflows: outbox.overflows(*id) })
            .collect();
        drop(outbox);
        let c = &self.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counters = [
            ("forwarded_writes", read(&c.forwarded)),
            ("forward_fallbacks", read(&c.forward_fallbacks)),
            ("beats_relayed", read(&c.beats_relayed)),
            ("records_sent", read(&c.records_sent)),
            ("sync_failures", read(&c.sync_failures)),
            ("records_applied", read(&c.records_applied)),
            ("records_refused", read(&c.records_refused)),
            ("verify_rounds", read(&c.verify_rounds)),
            ("verify_mismatched_buckets", read(&c.verify_mismatched_buckets)),
            ("verify_failures", read(&c.verify_failures)),
            ("repairs_sent", read(&c.repairs_sent)),
            ("replicas_expired", read(&c.replicas_expired)),
            ("ownership_changes", read(&c.ownership_changes)),
            ("snapshot_records_loaded", read(&c.snapshot_records_loaded)),
            ("orphans_cleared", read(&c.orphans_cleared)),
            ("bound_reasserted", read(&c.bound_reasserted)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        ApStatus { ready: self.is_ready(), ring: self.ring().members().to_vec(), members, queues, counters }
    }
}
