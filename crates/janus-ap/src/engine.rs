//! [`ApEngine`]: ephemeral-instance writes, on one node or across a cluster.
//!
//! Alone, a write goes straight into the node's registry. In a cluster, the
//! write goes to the instance's owner (rendezvous over the live members): a
//! write this node owns is applied here; any other is forwarded to its owner
//! (batched with other writes to the same owner) and, if the owner does not
//! answer within the forward timeout, applied here instead: availability
//! first, and the versions settle any conflict the same way on every node.
//! Whatever this node changes is queued for every peer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use janus_core::lease::LeaseTiming;
use janus_core::model::{InstancePatch, InstanceSpec, Mode};
use janus_core::registry::Binding;
use janus_core::registry::DirtyKey;
use janus_core::replica::{Version, record_hash};
use janus_core::transport::PeerTransport;
use janus_core::{Change, InstanceKey, Millis, NodeId, Registry, RegistryError, RegistryStore, ServiceKey};
use janus_distro::message::{ForwardOp, ForwardOutcome};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, info};

use crate::cluster::{ApCluster, Cluster, PeerLink};
use crate::{forward, load, probe, reaper, sync, verify};

/// AP engine settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApConfig {
    /// Shortest gap between two expiry sweeps; deadlines falling inside it are
    /// handled together. The deletion cap counts over a whole eviction
    /// window, whatever this gap.
    pub sweep_min_gap: Duration,
}

impl Default for ApConfig {
    fn default() -> Self {
        Self { sweep_min_gap: Duration::from_millis(250) }
    }
}

/// What the engine shares with its tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<RegistryStore>,
    /// Wakes the reaper when a write makes a deadline earlier than it plans for.
    pub(crate) wake: Notify,
    /// The registry time the reaper sleeps until (`u64::MAX`: no deadline).
    pub(crate) planned_wake: AtomicU64,
    pub(crate) config: ApConfig,
    /// Set on a node of a cluster.
    pub(crate) cluster: Option<Arc<Cluster>>,
    /// The span the engine was started in (the node's, with its id), for
    /// work done on behalf of peers.
    pub(crate) span: tracing::Span,
}

/// Handle to the AP engine of one node; cheap to clone.
#[derive(Debug, Clone)]
pub struct ApEngine {
    pub(crate) shared: Arc<Shared>,
}

impl ApEngine {
    /// Starts the engine of a lone node and its reaper on the current tokio
    /// runtime; the reaper stops when `shutdown` is cancelled.
    #[must_use]
    pub fn spawn(store: Arc<RegistryStore>, config: ApConfig, shutdown: CancellationToken) -> (Self, JoinHandle<()>) {
        let shared = Arc::new(Shared {
            store,
            wake: Notify::new(),
            planned_wake: AtomicU64::new(u64::MAX),
            config,
            cluster: None,
            span: tracing::Span::current(),
        });
        // The reaper logs under the caller's span (the node's, with its id).
        let task = tokio::spawn(reaper::run(shared.clone(), shutdown).instrument(tracing::info_span!("ap_reaper")));
        (Self { shared }, task)
    }

    /// Starts the engine of a node in a cluster: the reaper, the prober, one
    /// sender and one forwarder per peer, the verify round, and the snapshot
    /// load (the node takes writes once it is done). The store's registry
    /// must have been built with replication settings for this node. The
    /// returned task ends when every task has stopped after `shutdown`.
    #[must_use]
    pub fn spawn_clustered(
        store: Arc<RegistryStore>,
        config: ApConfig,
        cluster: &ApCluster,
        transport: Arc<dyn PeerTransport>,
        shutdown: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let state = Arc::new(Cluster::new(cluster, transport, shutdown.clone()));
        let shared = Arc::new(Shared {
            store,
            wake: Notify::new(),
            planned_wake: AtomicU64::new(u64::MAX),
            config,
            cluster: Some(state.clone()),
            span: tracing::Span::current(),
        });
        let engine = Self { shared: shared.clone() };
        let mut tasks = JoinSet::new();
        tasks.spawn(reaper::run(shared.clone(), shutdown.clone()).instrument(tracing::info_span!("ap_reaper")));
        tasks.spawn(probe::run(engine.clone(), shutdown.clone()).instrument(tracing::info_span!("ap_probe")));
        tasks.spawn(verify::run(engine.clone(), shutdown.clone()).instrument(tracing::info_span!("ap_verify")));
        tasks.spawn(load::run(engine.clone(), shutdown.clone()).instrument(tracing::info_span!("ap_load")));
        let peers: Vec<NodeId> = state.membership.lock().peers().map(|(id, _)| id).collect();
        for peer in peers {
            engine.start_peer(&state, peer);
        }
        let all = tokio::spawn(async move { while tasks.join_next().await.is_some() {} });
        (engine, all)
    }

    /// Starts this node's sender and forwarder for `peer`.
    fn start_peer(&self, cluster: &Arc<Cluster>, peer: NodeId) {
        let stop = cluster.shutdown.child_token();
        let wake = Arc::new(Notify::new());
        let span = &self.shared.span;
        let forward =
            forward::start(cluster, peer, stop.clone(), tracing::info_span!(parent: span, "ap_forward", peer));
        let sender = sync::run(self.clone(), peer, wake.clone(), stop.clone());
        tokio::spawn(sender.instrument(tracing::info_span!(parent: span, "ap_sync", peer)));
        cluster.links.write().insert(peer, PeerLink { wake, forward, stop });
    }

    /// Replaces the cluster's member list (this node may be listed too; a
    /// lone node ignores it) with the Raft group's, so that members added or
    /// removed at run time take part in AP replication without a restart. A
    /// new peer owns instances once it answers probes and is ready; a removed
    /// one's share moves at once. The first call also lets a joining node
    /// load its snapshot (see [`ApCluster::wait_for_group`]).
    pub fn set_members(&self, members: &BTreeMap<NodeId, String>) {
        let Some(cluster) = self.cluster().cloned() else { return };
        // A new peer's queue and tasks exist before it is a member, so that
        // whatever is handed over to it once it joins the ring reaches it.
        for peer in members.keys().copied().filter(|id| *id != cluster.me) {
            if !cluster.links.read().contains_key(&peer) {
                cluster.outbox.lock().add_peer(peer);
                self.start_peer(&cluster, peer);
            }
        }
        let (added, removed) = cluster.membership.lock().set_members(members);
        for peer in &removed {
            cluster.remove_peer(*peer);
        }
        cluster.set_group_known();
        if added.is_empty() && removed.is_empty() {
            return;
        }
        let _span = self.shared.span.enter();
        info!(?added, ?removed, "ap members changed");
        probe::ring_changed(self, &cluster);
        cluster.probe_now.notify_one();
    }

    pub(crate) fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.shared.cluster.as_ref()
    }

    pub(crate) fn store(&self) -> &RegistryStore {
        &self.shared.store
    }

    /// Whether the node takes AP writes: always alone; in a cluster once it
    /// has loaded a snapshot from its peers (or found none to load).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.cluster().is_none_or(|c| c.is_ready())
    }

    /// Whether this node owns the instance with this
    /// [`janus_core::replica::record_hash`]: always alone; in a cluster when it
    /// is ready and the ring's owner of the hash. Persistent instances' health
    /// checks use it, so that each instance is checked by exactly one node.
    #[must_use]
    pub fn owns(&self, hash: u64) -> bool {
        self.cluster().is_none_or(|c| c.is_ready() && Cluster::owns_in(&c.ring(), c.me, hash))
    }

    /// The node that owns an instance in the ring as this node sees it: the
    /// node that runs its lease and replicates it (ephemeral instances; the
    /// node holding the connection for a connection-bound one), or the node
    /// that probes it (persistent ones). `None` alone: a single node owns
    /// everything.
    #[must_use]
    pub fn owner_of(&self, key: &ServiceKey, instance: &InstanceKey) -> Option<NodeId> {
        let cluster = self.cluster()?;
        let binding = self.store().read(|r| r.binding_of(key, instance));
        Some(Cluster::owner_of(&cluster.ring(), cluster.me, record_hash(key, instance), binding.as_ref()))
    }

    /// The cluster as this node sees it (`None` alone).
    #[must_use]
    pub fn status(&self) -> Option<janus_core::status::ApStatus> {
        self.cluster().map(|c| c.status(self.store().now()))
    }

    /// Runs a registry write and afterwards wakes the reaper if the write made
    /// an earlier deadline, and queues what it changed for the peers.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Registry, Millis) -> R) -> R {
        let (result, next, dirty, now) = self.shared.store.write(|registry, now| {
            let result = f(registry, now);
            (result, registry.next_deadline(), registry.take_dirty(), now)
        });
        self.written(next, &dirty, now);
        result
    }

    /// As [`Self::write`], trying `shared` under the store's shared lock
    /// first (see [`janus_core::RegistryStore::write_shared`]).
    pub(crate) fn write_shared<I, R>(
        &self,
        input: I,
        shared: impl FnOnce(&Registry, Millis, I, &dyn Fn(&[Change])) -> Result<R, I>,
        exclusive: impl FnOnce(&mut Registry, Millis, I) -> R,
    ) -> R {
        let (result, next, dirty, now) = self.shared.store.write_shared(
            input,
            |registry, now, input, publish| {
                let result = shared(registry, now, input, publish)?;
                Ok((result, registry.next_deadline(), registry.take_dirty(), now))
            },
            |registry, now, input| {
                let result = exclusive(registry, now, input);
                (result, registry.next_deadline(), registry.take_dirty(), now)
            },
        );
        self.written(next, &dirty, now);
        result
    }

    /// After a write: wakes the reaper if the write made an earlier
    /// deadline, and queues what it changed for the peers.
    fn written(&self, next: Option<Millis>, dirty: &[DirtyKey], now: Millis) {
        if next.is_some_and(|next| next.0 < self.shared.planned_wake.load(Ordering::Acquire)) {
            self.shared.wake.notify_one();
        }
        if let Some(cluster) = self.cluster() {
            cluster.queue(dirty, now);
        }
    }

    /// Applies a write here, whoever owns the instance.
    /// Registers and deregisters take the store's shared lock where they can.
    pub(crate) fn apply_local(&self, op: ForwardOp) -> Result<ForwardOutcome, RegistryError> {
        match op {
            ForwardOp::Register { service, spec } => self
                .write_shared(
                    spec,
                    |r, now, spec, publish| r.register_instance_shared(&service, spec, now, publish),
                    |r, now, spec| r.register_instance(&service, spec, now),
                )
                .map(ForwardOutcome::Revision),
            ForwardOp::Update { service, spec } => {
                self.write(|r, now| r.update_instance(&service, spec, now)).map(ForwardOutcome::Revision)
            }
            ForwardOp::Patch { service, instance, patch } => {
                self.write(|r, now| r.patch_instance(&service, &instance, patch, now)).map(ForwardOutcome::Revision)
            }
            ForwardOp::Deregister { service, instance } => self
                .write_shared(
                    (),
                    |r, now, (), publish| r.deregister_instance_shared(&service, &instance, now, publish).ok_or(()),
                    |r, now, ()| r.deregister_instance(&service, &instance, now),
                )
                .map(ForwardOutcome::Revision),
            ForwardOp::Heartbeat { service, instance } => {
                // Most beats change nothing visible: no exclusive lock, nothing to send.
                if let Some(timing) = self.shared.store.renew_quietly(&service, &instance) {
                    return Ok(ForwardOutcome::Lease(timing));
                }
                self.write(|r, now| r.heartbeat(&service, &instance, now)).map(ForwardOutcome::Lease)
            }
        }
    }

    /// Applies a write at the instance's owner (see the module docs).
    async fn route(&self, op: ForwardOp) -> Result<ForwardOutcome, RegistryError> {
        let Some(cluster) = self.cluster() else { return self.apply_local(op) };
        let (service, instance) = op_key(&op);
        if !cluster.is_ready() {
            return Err(RegistryError::Unavailable {
                namespace: service.namespace.to_string(),
                mode: Mode::Ap,
                reason: "this node is still loading the ap registry from its peers; try another node or retry \
                         in a moment"
                    .to_owned(),
            });
        }
        // A connection-bound instance is written where its connection is.
        let beat = matches!(op, ForwardOp::Heartbeat { .. });
        let (binding, replica_beat) = self.store().read(|r| {
            (r.binding_of(service, instance), if beat { r.replica_beat_timing(service, instance) } else { None })
        });
        let owner = Cluster::owner_of(&cluster.ring(), cluster.me, record_hash(service, instance), binding.as_ref());
        if owner == cluster.me {
            return self.apply_local(op);
        }
        if let Some((timing, version)) = replica_beat {
            self.relay_beat(cluster, owner, op, version);
            return Ok(ForwardOutcome::Lease(timing));
        }
        match forward::forward(cluster, owner, op.clone(), cluster.config.forward_timeout_ms).await {
            Some(result) => result,
            None => {
                crate::cluster::Counters::add(&cluster.counters.forward_fallbacks, 1);
                self.apply_local(op)
            }
        }
    }

    /// A heartbeat of a healthy replica, answered already: passes it on to
    /// the owner in a batch without waiting. If the owner does not answer it
    /// is applied here (this node runs the lease until it comes due, as for
    /// any write whose owner is out of reach); if the owner no longer has
    /// the instance the replica goes, so that the client's next beat gets
    /// "not found" and registers again (unless a newer record of it arrived
    /// meanwhile: `version` is the replica's when the beat came).
    fn relay_beat(&self, cluster: &Cluster, owner: NodeId, op: ForwardOp, version: Version) {
        crate::cluster::Counters::add(&cluster.counters.beats_relayed, 1);
        let engine = self.clone();
        let relayed = forward::relay(cluster, owner, op.clone(), move |answer| match answer {
            Some(Ok(_)) => {}
            Some(Err(error)) if error.is_not_found() => {
                let (service, instance) = op_key(&op);
                engine.write(|r, _| r.drop_replica_at(service, instance, version));
            }
            Some(Err(error)) => debug!(%error, "the owner refused a relayed heartbeat"),
            None => engine.fall_back(op),
        });
        if let Err(op) = relayed {
            self.fall_back(*op);
        }
    }

    /// Applies here a write its owner could not take.
    fn fall_back(&self, op: ForwardOp) {
        if let Some(cluster) = self.cluster() {
            crate::cluster::Counters::add(&cluster.counters.forward_fallbacks, 1);
        }
        if let Err(error) = self.apply_local(op) {
            debug!(%error, "a relayed heartbeat failed here too");
        }
    }

    fn revision(outcome: ForwardOutcome) -> Result<u64, RegistryError> {
        match outcome {
            ForwardOutcome::Revision(revision) => Ok(revision),
            outcome @ ForwardOutcome::Lease(_) => Err(mismatched_reply("a revision", outcome)),
        }
    }

    /// Registers or re-registers an ephemeral instance.
    ///
    /// # Errors
    /// As [`Registry::register_instance`]; unavailable while loading.
    pub async fn register(&self, key: &ServiceKey, spec: InstanceSpec) -> Result<u64, RegistryError> {
        Self::revision(self.route(ForwardOp::Register { service: key.clone(), spec }).await?)
    }

    /// Replaces an existing instance's fields.
    ///
    /// # Errors
    /// As [`Registry::update_instance`]; unavailable while loading.
    pub async fn update(&self, key: &ServiceKey, spec: InstanceSpec) -> Result<u64, RegistryError> {
        Self::revision(self.route(ForwardOp::Update { service: key.clone(), spec }).await?)
    }

    /// Changes some fields of an existing instance.
    ///
    /// # Errors
    /// As [`Registry::patch_instance`]; unavailable while loading.
    pub async fn patch(
        &self,
        key: &ServiceKey,
        instance: &InstanceKey,
        patch: InstancePatch,
    ) -> Result<u64, RegistryError> {
        let op = ForwardOp::Patch { service: key.clone(), instance: instance.clone(), patch };
        Self::revision(self.route(op).await?)
    }

    /// Removes an instance.
    ///
    /// # Errors
    /// As [`Registry::deregister_instance`]; unavailable while loading.
    pub async fn deregister(&self, key: &ServiceKey, instance: &InstanceKey) -> Result<u64, RegistryError> {
        let op = ForwardOp::Deregister { service: key.clone(), instance: instance.clone() };
        Self::revision(self.route(op).await?)
    }

    /// Renews a lease.
    ///
    /// # Errors
    /// As [`Registry::heartbeat`]; unavailable while loading.
    pub async fn heartbeat(&self, key: &ServiceKey, instance: &InstanceKey) -> Result<LeaseTiming, RegistryError> {
        let op = ForwardOp::Heartbeat { service: key.clone(), instance: instance.clone() };
        match self.route(op).await? {
            ForwardOutcome::Lease(timing) => Ok(timing),
            outcome @ ForwardOutcome::Revision(_) => Err(mismatched_reply("a lease", outcome)),
        }
    }
}

impl ApEngine {
    /// Refuses writes while a clustered node still loads the registry.
    fn ready_for(&self, key: &ServiceKey) -> Result<(), RegistryError> {
        match self.cluster() {
            Some(cluster) if !cluster.is_ready() => Err(RegistryError::Unavailable {
                namespace: key.namespace.to_string(),
                mode: Mode::Ap,
                reason: "this node is still loading the ap registry from its peers; try another node or retry \
                         in a moment"
                    .to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Publishes a connection's instances of a service. Bound writes are
    /// applied on the node holding the connection, never forwarded: it is the
    /// node that can release them.
    ///
    /// # Errors
    /// As [`Registry::publish_bound`]; unavailable while loading.
    pub fn publish_bound(
        &self,
        key: &ServiceKey,
        specs: Vec<InstanceSpec>,
        binding: Binding,
    ) -> Result<u64, RegistryError> {
        self.ready_for(key)?;
        self.write(|r, now| r.publish_bound(key, specs, binding, now))
    }

    /// Withdraws a connection's instances of a service.
    ///
    /// # Errors
    /// As [`Registry::unpublish_bound`]; unavailable while loading.
    pub fn unpublish_bound(&self, key: &ServiceKey, binding: Binding) -> Result<u64, RegistryError> {
        self.ready_for(key)?;
        self.write(|r, now| r.unpublish_bound(key, binding, now))
    }

    /// Removes what a closed connection still holds; returns how many went.
    pub fn release_binding(&self, binding: Binding) -> usize {
        self.write(|r, now| r.release_binding(binding, now))
    }
}

/// The instance a write is about.
pub(crate) fn op_key(op: &ForwardOp) -> (&ServiceKey, &InstanceKey) {
    match op {
        ForwardOp::Register { service, spec } | ForwardOp::Update { service, spec } => (service, &spec.key),
        ForwardOp::Patch { service, instance, .. }
        | ForwardOp::Deregister { service, instance }
        | ForwardOp::Heartbeat { service, instance } => (service, instance),
    }
}

/// A peer answered a write with the wrong kind of outcome (`expected` names
/// the right kind): a bug, logged and reported as an internal error.
fn mismatched_reply(expected: &str, outcome: ForwardOutcome) -> RegistryError {
    let context = format!("a forwarded write got the wrong kind of reply: expected {expected}, got {outcome:?}");
    tracing::error!(%context, "AP write failed on an internal fault");
    RegistryError::Internal(context)
}
