//! The receiving end of the AP protocol: [`ApEngine::handle_peer_message`].

use std::sync::Arc;

use janus_core::{Millis, NodeId, ServiceRecords};
use janus_distro::MessageKind;
use janus_distro::digest::mismatched;
use janus_distro::message::{
    Forward, ForwardReply, Malformed, Ping, Pong, Repair, SnapshotPage, SnapshotRequest, Sync, SyncAck, Verify,
    VerifyReply, decode, encode,
};

use tracing::Instrument as _;

use crate::ApEngine;
use crate::cluster::{Cluster, Counters};

/// Why an incoming message got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerMessageError {
    /// The body is not a message of the named kind.
    #[error("malformed {kind} message: {reason}")]
    Malformed {
        /// The kind the caller named.
        kind: MessageKind,
        /// The decoder's complaint.
        reason: String,
    },
    /// This node is not part of a cluster.
    #[error("this node is not in a cluster")]
    NotClustered,
    /// The sender is not (or no longer) one of this node's members: its
    /// records, digests and writes are not taken.
    #[error("node {from} is not a member of this node's cluster")]
    NotAMember {
        /// The sender.
        from: NodeId,
    },
}

impl ApEngine {
    /// Handles one message from a peer and returns the encoded reply.
    ///
    /// # Errors
    /// The body is not a `kind` message, or this node is alone.
    pub async fn handle_peer_message(&self, kind: MessageKind, body: &[u8]) -> Result<Vec<u8>, PeerMessageError> {
        let span = tracing::info_span!(parent: &self.shared.span, "ap_peer_message", kind = kind.as_str());
        self.handle(kind, body).instrument(span).await
    }

    async fn handle(&self, kind: MessageKind, body: &[u8]) -> Result<Vec<u8>, PeerMessageError> {
        let Some(cluster) = self.cluster().cloned() else { return Err(PeerMessageError::NotClustered) };
        let malformed = |e: Malformed| PeerMessageError::Malformed { kind, reason: e.0 };
        // Pings and snapshot pages are open to any node with the secret (a
        // joining node needs both); the rest only to members.
        let member = |from: NodeId| {
            let known = from == cluster.me || cluster.membership.lock().addr(from).is_some();
            if known { Ok(()) } else { Err(PeerMessageError::NotAMember { from }) }
        };
        let reply = match kind {
            MessageKind::Ping => {
                let ping: Ping = decode(body).map_err(malformed)?;
                let now = self.store().now();
                cluster.membership.lock().probe_answered(ping.from, ping.ready, now);
                crate::probe::ring_changed(self, &cluster);
                encode(&Pong { from: cluster.me, ready: cluster.is_ready() })
            }
            MessageKind::Sync => {
                let sync: Sync = decode(body).map_err(malformed)?;
                member(sync.from)?;
                encode(&self.apply_batches(&cluster, sync.from, sync.batches))
            }
            MessageKind::Repair => {
                let repair: Repair = decode(body).map_err(malformed)?;
                member(repair.from)?;
                encode(&self.apply_batches(&cluster, repair.from, repair.batches))
            }
            MessageKind::Verify => {
                let verify: Verify = decode(body).map_err(malformed)?;
                member(verify.from)?;
                encode(&self.on_verify(&cluster, verify).await)
            }
            MessageKind::Snapshot => {
                let request: SnapshotRequest = decode(body).map_err(malformed)?;
                encode(&self.snapshot_page(&cluster, &request))
            }
            MessageKind::Forward => {
                let forward: Forward = decode(body).map_err(malformed)?;
                member(forward.from)?;
                // Applied here and only here: a forwarded write never travels on.
                let results = forward.ops.into_iter().map(|op| self.apply_local(op)).collect();
                encode(&ForwardReply { results })
            }
        };
        reply.map_err(malformed)
    }

    /// Applies records `from` sent; this node starts the leases of the new
    /// instances it owns, and sends `from` back its own records of what it
    /// holds newer versions of.
    pub(crate) fn apply_batches(&self, cluster: &Cluster, from: NodeId, batches: Vec<ServiceRecords>) -> SyncAck {
        let ring = cluster.ring();
        let me = cluster.me;
        let mut reasserted = 0;
        let (ack, newer_here, now) = self.write(|registry, now| {
            let mut ack = SyncAck::default();
            let mut newer_here = Vec::new();
            for batch in batches {
                let report = registry.apply_records(batch, now, &|hash| Cluster::owns_in(&ring, me, hash));
                ack.applied += report.applied as u64;
                ack.stale += report.stale as u64;
                ack.refused += report.refused as u64;
                reasserted += report.reasserted as u64;
                newer_here.extend(report.newer_here);
            }
            (ack, newer_here, now)
        });
        cluster.queue_for(from, newer_here, now);
        Counters::add(&cluster.counters.records_applied, ack.applied);
        Counters::add(&cluster.counters.records_refused, ack.refused);
        Counters::add(&cluster.counters.bound_reasserted, reasserted);
        if ack.applied > 0 {
            // New leases may be due before the reaper's plan.
            self.shared.wake.notify_one();
        }
        ack
    }

    async fn on_verify(&self, cluster: &Arc<Cluster>, verify: Verify) -> VerifyReply {
        let not_compared = VerifyReply { compared: false, mismatched: Vec::new() };
        if !cluster.is_ready() || verify.epoch != cluster.ring().epoch() {
            return not_compared;
        }
        let Some(digests) = crate::verify::digests(self, cluster).await else { return not_compared };
        let differing = mismatched(&digests.of(verify.from), &verify.sums);
        let now: Millis = self.store().now();
        cluster.vouches.lock().matched(verify.from, &differing, now);
        VerifyReply { compared: true, mismatched: differing }
    }

    fn snapshot_page(&self, cluster: &Cluster, request: &SnapshotRequest) -> SnapshotPage {
        if !cluster.is_ready() {
            return SnapshotPage { ready: false, batches: Vec::new(), next: None };
        }
        let limit = usize::try_from(request.limit.clamp(1, cluster.config.snapshot_page)).unwrap_or(1);
        let (batches, next) = self.store().read(|registry| registry.snapshot_page(request.after.as_ref(), limit));
        SnapshotPage { ready: true, batches, next }
    }
}
