//! [`Outbox`]: the changes waiting to be sent, one coalescing queue per peer.
//!
//! A change marks its instance in every peer's queue. A queue holds each
//! instance once however often it changed, and is sent at most once per
//! window: a change after a quiet window goes out at once, later ones wait
//! for the window to end (later marks do not extend it), so a burst of
//! writes to one instance costs at most two records per peer and a lone
//! change is not delayed. The record is read when the batch is sent, so it
//! carries the latest state. Each queue is bounded: past
//! `capacity` instances it is dropped and counted (the verify round repairs
//! what the peer missed). A failed send puts the instances back and the
//! queue waits out a retry delay; other peers' queues are not affected.

use std::collections::{BTreeMap, HashSet};

use janus_core::registry::DirtyKey;
use janus_core::{Millis, NodeId};

#[derive(Debug, Default)]
struct PeerQueue {
    keys: HashSet<DirtyKey>,
    /// When the oldest mark in `keys` was made.
    since: Option<Millis>,
    /// When a batch was last taken for sending.
    last_sent: Option<Millis>,
    /// Not before this (after a failed send).
    retry_at: Millis,
    /// Times the queue overflowed and was dropped.
    overflows: u64,
}

/// Per-peer queues of instances to send.
#[derive(Debug)]
pub struct Outbox {
    window_ms: u64,
    capacity: usize,
    peers: BTreeMap<NodeId, PeerQueue>,
}

impl Outbox {
    /// Queues for `peers`, each sent at most once per `window_ms`, holding at
    /// most `capacity` instances.
    #[must_use]
    pub fn new(peers: impl IntoIterator<Item = NodeId>, window_ms: u64, capacity: usize) -> Self {
        let peers = peers.into_iter().map(|p| (p, PeerQueue::default())).collect();
        Self { window_ms, capacity: capacity.max(1), peers }
    }

    /// Gives a new peer an empty queue (a known peer keeps its queue).
    pub fn add_peer(&mut self, peer: NodeId) {
        self.peers.entry(peer).or_default();
    }

    /// Drops a peer that left the cluster, with its queue.
    pub fn remove_peer(&mut self, peer: NodeId) {
        self.peers.remove(&peer);
    }

    /// Marks changed instances for every peer.
    pub fn mark(&mut self, keys: &[DirtyKey], now: Millis) {
        let peers: Vec<NodeId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.mark_for(peer, keys.iter().cloned(), now);
        }
    }

    /// Marks instances for one peer.
    pub fn mark_for(&mut self, peer: NodeId, keys: impl IntoIterator<Item = DirtyKey>, now: Millis) {
        let capacity = self.capacity;
        let Some(queue) = self.peers.get_mut(&peer) else { return };
        queue.keys.extend(keys);
        if queue.keys.is_empty() {
            return;
        }
        queue.since.get_or_insert(now);
        if queue.keys.len() > capacity {
            queue.keys.clear();
            queue.since = None;
            queue.overflows += 1;
        }
    }

    /// When the peer's queue is due to be sent (`None`: nothing queued): at
    /// its first mark, or a window after the last send if that was later.
    #[must_use]
    pub fn due_at(&self, peer: NodeId) -> Option<Millis> {
        let queue = self.peers.get(&peer)?;
        let since = queue.since?;
        let throttled = queue.last_sent.map_or(since, |sent| sent.plus(self.window_ms).max(since));
        Some(throttled.max(queue.retry_at))
    }

    /// Takes up to `max` instances of the peer's queue if it is due at `now`.
    pub fn take(&mut self, peer: NodeId, now: Millis, max: usize) -> Vec<DirtyKey> {
        if self.due_at(peer).is_none_or(|due| due > now) {
            return Vec::new();
        }
        let Some(queue) = self.peers.get_mut(&peer) else { return Vec::new() };
        let taken: Vec<DirtyKey> = if queue.keys.len() <= max {
            queue.keys.drain().collect()
        } else {
            let some: Vec<DirtyKey> = queue.keys.iter().take(max).cloned().collect();
            for key in &some {
                queue.keys.remove(key);
            }
            some
        };
        if queue.keys.is_empty() {
            queue.since = None;
        }
        if !taken.is_empty() {
            queue.last_sent = Some(now);
        }
        taken
    }

    /// A send failed: its instances wait again, not before `now + retry_ms`.
    pub fn failed(&mut self, peer: NodeId, keys: Vec<DirtyKey>, now: Millis, retry_ms: u64) {
        self.mark_for(peer, keys, now);
        if let Some(queue) = self.peers.get_mut(&peer) {
            queue.retry_at = now.plus(retry_ms);
        }
    }

    /// Drops a peer's queue (it is down; the verify round repairs it later).
    pub fn clear(&mut self, peer: NodeId) -> usize {
        self.peers.get_mut(&peer).map_or(0, |queue| {
            let dropped = queue.keys.len();
            queue.keys.clear();
            queue.since = None;
            dropped
        })
    }

    /// Instances queued for a peer.
    #[must_use]
    pub fn depth(&self, peer: NodeId) -> usize {
        self.peers.get(&peer).map_or(0, |q| q.keys.len())
    }

    /// Times a peer's queue overflowed.
    #[must_use]
    pub fn overflows(&self, peer: NodeId) -> u64 {
        self.peers.get(&peer).map_or(0, |q| q.overflows)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use janus_core::{ClusterName, GroupName, InstanceKey, NamespaceId, ServiceKey, ServiceName};

    use super::*;

    fn key(port: u16) -> DirtyKey {
        let service =
            ServiceKey::new(NamespaceId::public(), GroupName::default_group(), ServiceName::new("s").unwrap());
        (Arc::new(service), InstanceKey::new(ClusterName::default_cluster(), "10.0.0.1".parse().unwrap(), port))
    }

    #[test]
    fn a_change_after_a_quiet_window_goes_at_once_and_later_ones_coalesce() {
        let mut outbox = Outbox::new([2, 3], 100, 10);
        outbox.mark(&[key(1), key(2)], Millis(0));
        assert_eq!(outbox.due_at(2), Some(Millis(0)), "nothing was sent lately: at once");
        assert_eq!(outbox.take(2, Millis(0), 100).len(), 2);
        outbox.mark(&[key(1)], Millis(10));
        outbox.mark(&[key(1), key(2)], Millis(90));
        assert_eq!(outbox.due_at(2), Some(Millis(100)), "a window after the last send");
        assert!(outbox.take(2, Millis(99), 100).is_empty());
        assert_eq!(outbox.take(2, Millis(100), 100).len(), 2, "one record per instance however often it changed");
        assert_eq!(outbox.due_at(2), None);
        outbox.mark(&[key(3)], Millis(500));
        assert_eq!(outbox.due_at(2), Some(Millis(500)), "quiet again: at once");
        assert_eq!(outbox.depth(3), 3, "each peer has its own queue");
    }

    #[test]
    fn peers_added_later_get_their_own_queue_and_removed_ones_get_nothing() {
        let mut outbox = Outbox::new([2], 100, 10);
        outbox.mark(&[key(1)], Millis(0));
        outbox.add_peer(4);
        assert_eq!(outbox.depth(4), 0, "a new peer gets only what changes from now on");
        outbox.mark(&[key(2)], Millis(10));
        assert_eq!((outbox.depth(2), outbox.depth(4)), (2, 1));
        outbox.add_peer(2);
        assert_eq!(outbox.depth(2), 2, "adding a known peer keeps its queue");
        outbox.remove_peer(2);
        outbox.mark(&[key(3)], Millis(20));
        assert_eq!((outbox.depth(2), outbox.due_at(2)), (0, None));
        assert_eq!(outbox.depth(4), 2);
    }

    #[test]
    fn a_failed_peer_waits_alone_and_a_full_queue_is_dropped() {
        let mut outbox = Outbox::new([2, 3], 100, 3);
        outbox.mark(&[key(1)], Millis(0));
        let batch = outbox.take(2, Millis(100), 100);
        assert_eq!(batch.len(), 1);
        outbox.failed(2, batch, Millis(150), 1000);
        assert_eq!(outbox.due_at(2), Some(Millis(1150)));
        assert_eq!(outbox.take(3, Millis(100), 100).len(), 1, "peer 3 is not held up");
        outbox.mark(&[key(2), key(3), key(4)], Millis(200));
        assert_eq!(outbox.depth(2), 0, "four instances overflow a queue of three");
        assert_eq!(outbox.overflows(2), 1);
        assert_eq!(outbox.depth(3), 3);
        outbox.mark(&[key(5), key(6)], Millis(300));
        assert!(outbox.take(2, Millis(400), 1).is_empty(), "still waiting out the retry delay");
        assert_eq!(outbox.take(2, Millis(1150), 1).len(), 1, "batches are bounded");
        assert_eq!(outbox.depth(2), 1);
    }
}
