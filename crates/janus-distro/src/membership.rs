//! [`Membership`]: the members (from the configuration at start, from the
//! Raft group once it has one, see [`Membership::set_members`]) and what this
//! node's probes say of them.
//!
//! Every node probes every peer on a fixed interval. A peer that answers is
//! `Up` and says whether it is ready (it has loaded its snapshot). One failed
//! probe makes it `Suspect`, `down_after_failures` in a row make it `Down`.
//! The [`Ring`] that decides ownership holds this node (once ready) and the
//! ready peers that are `Up` or `Suspect`: a single lost probe does not move
//! ownership, a dead peer's share moves after a few seconds.

use std::collections::BTreeMap;

use janus_core::{Millis, NodeId};
use serde::{Deserialize, Serialize};

use crate::Ring;

/// What this node believes of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    /// The last probe was answered.
    Up,
    /// Some probes failed, fewer than the threshold.
    Suspect,
    /// The threshold of failed probes in a row was reached (or never answered).
    Down,
}

impl PeerState {
    /// `up`, `suspect` or `down`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Suspect => "suspect",
            Self::Down => "down",
        }
    }
}

#[derive(Debug, Clone)]
struct Peer {
    addr: String,
    state: PeerState,
    ready: bool,
    failures: u32,
    last_seen: Option<Millis>,
}

/// One member as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// Node id.
    pub id: NodeId,
    /// Cluster address.
    pub addr: String,
    /// `up`, `suspect` or `down` (this node is always `up`).
    pub state: PeerState,
    /// Whether it has loaded its snapshot and serves.
    pub ready: bool,
    /// Probes failed in a row.
    pub failures: u32,
    /// Milliseconds since it last answered (`None`: never, or this node).
    pub last_seen_ms_ago: Option<u64>,
    /// Whether it owns instances now.
    pub in_ring: bool,
    /// Whether this is the node answering.
    pub this_node: bool,
}

/// The members and their states.
#[derive(Debug, Clone)]
pub struct Membership {
    me: NodeId,
    my_addr: String,
    ready: bool,
    peers: BTreeMap<NodeId, Peer>,
    down_after_failures: u32,
}

impl Membership {
    /// `me` among `members` (id → cluster address; `me` may be listed too).
    /// Peers start `Down` until their first answer.
    #[must_use]
    pub fn new(me: NodeId, members: &BTreeMap<NodeId, String>, down_after_failures: u32) -> Self {
        let peers = members
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(id, addr)| {
                let peer =
                    Peer { addr: addr.clone(), state: PeerState::Down, ready: false, failures: 0, last_seen: None };
                (*id, peer)
            })
            .collect();
        let my_addr = members.get(&me).cloned().unwrap_or_default();
        Self { me, my_addr, ready: false, peers, down_after_failures: down_after_failures.max(1) }
    }

    /// Replaces the member list (`me` may be listed too). Peers that stay
    /// keep their state (and take a new address if it changed); new ones
    /// start `Down` until their first answer. Returns the peers added and
    /// the peers removed.
    pub fn set_members(&mut self, members: &BTreeMap<NodeId, String>) -> (Vec<NodeId>, Vec<NodeId>) {
        let removed: Vec<NodeId> = self.peers.keys().filter(|id| !members.contains_key(id)).copied().collect();
        for id in &removed {
            self.peers.remove(id);
        }
        let mut added = Vec::new();
        for (id, addr) in members {
            if *id == self.me {
                addr.clone_into(&mut self.my_addr);
                continue;
            }
            match self.peers.get_mut(id) {
                Some(peer) => addr.clone_into(&mut peer.addr),
                None => {
                    let peer =
                        Peer { addr: addr.clone(), state: PeerState::Down, ready: false, failures: 0, last_seen: None };
                    self.peers.insert(*id, peer);
                    added.push(*id);
                }
            }
        }
        (added, removed)
    }

    /// This node's id.
    #[must_use]
    pub const fn me(&self) -> NodeId {
        self.me
    }

    /// Whether this node has loaded its snapshot.
    #[must_use]
    pub const fn is_ready(&self) -> bool {
        self.ready
    }

    /// Marks this node ready (it joins the ring).
    pub fn set_ready(&mut self) {
        self.ready = true;
    }

    /// The peers' ids and addresses.
    pub fn peers(&self) -> impl Iterator<Item = (NodeId, &str)> + '_ {
        self.peers.iter().map(|(id, p)| (*id, p.addr.as_str()))
    }

    /// A peer's address.
    #[must_use]
    pub fn addr(&self, peer: NodeId) -> Option<&str> {
        self.peers.get(&peer).map(|p| p.addr.as_str())
    }

    /// A peer's state (`None` for an unknown id).
    #[must_use]
    pub fn state(&self, peer: NodeId) -> Option<PeerState> {
        self.peers.get(&peer).map(|p| p.state)
    }

    /// Whether a peer is worth sending to: `Up` or `Suspect`.
    #[must_use]
    pub fn reachable(&self, peer: NodeId) -> bool {
        matches!(self.state(peer), Some(PeerState::Up | PeerState::Suspect))
    }

    /// A peer answered a probe, saying whether it is ready.
    pub fn probe_answered(&mut self, peer: NodeId, ready: bool, now: Millis) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.state = PeerState::Up;
            p.failures = 0;
            p.ready = ready;
            p.last_seen = Some(now);
        }
    }

    /// A probe of a peer failed (no answer in time, or refused).
    pub fn probe_failed(&mut self, peer: NodeId) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.failures = p.failures.saturating_add(1);
            p.state = if p.failures >= self.down_after_failures { PeerState::Down } else { PeerState::Suspect };
        }
    }

    /// The members that own instances now.
    #[must_use]
    pub fn ring(&self) -> Ring {
        let peers = self
            .peers
            .iter()
            .filter(|(_, p)| p.ready && matches!(p.state, PeerState::Up | PeerState::Suspect))
            .map(|(id, _)| *id);
        Ring::new(self.ready.then_some(self.me).into_iter().chain(peers))
    }

    /// Every member, this node first.
    #[must_use]
    pub fn view(&self, now: Millis) -> Vec<MemberView> {
        let ring = self.ring();
        let mut members = vec![MemberView {
            id: self.me,
            addr: self.my_addr.clone(),
            state: PeerState::Up,
            ready: self.ready,
            failures: 0,
            last_seen_ms_ago: None,
            in_ring: ring.contains(self.me),
            this_node: true,
        }];
        members.extend(self.peers.iter().map(|(id, p)| MemberView {
            id: *id,
            addr: p.addr.clone(),
            state: p.state,
            ready: p.ready,
            failures: p.failures,
            last_seen_ms_ago: p.last_seen.map(|seen| now.since(seen)),
            in_ring: ring.contains(*id),
            this_node: false,
        }));
        members
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Membership {
        let members: BTreeMap<NodeId, String> =
            [(1, "a:1".to_owned()), (2, "b:1".to_owned()), (3, "c:1".to_owned())].into();
        Membership::new(1, &members, 3)
    }

    #[test]
    fn peers_join_the_ring_when_up_and_ready_and_leave_it_when_down() {
        let mut m = three();
        assert!(m.ring().members().is_empty(), "not even this node before it is ready");
        m.set_ready();
        assert_eq!(m.ring().members(), [1]);
        m.probe_answered(2, false, Millis(10));
        assert_eq!(m.ring().members(), [1], "a peer still loading its snapshot owns nothing");
        m.probe_answered(2, true, Millis(20));
        m.probe_answered(3, true, Millis(20));
        assert_eq!(m.ring().members(), [1, 2, 3]);
        m.probe_failed(2);
        m.probe_failed(2);
        assert_eq!(m.state(2), Some(PeerState::Suspect));
        assert_eq!(m.ring().members(), [1, 2, 3], "suspect peers keep their share");
        m.probe_failed(2);
        assert_eq!(m.state(2), Some(PeerState::Down));
        assert_eq!(m.ring().members(), [1, 3]);
        m.probe_answered(2, true, Millis(40));
        assert_eq!(m.ring().members(), [1, 2, 3]);
        let view = m.view(Millis(50));
        assert_eq!(view.len(), 3);
        assert!(view[0].this_node && view[0].in_ring);
        assert_eq!(view[1].last_seen_ms_ago, Some(10));
    }

    #[test]
    fn a_new_member_list_adds_and_removes_peers_and_keeps_the_others_state() {
        let mut m = three();
        m.set_ready();
        m.probe_answered(2, true, Millis(10));
        m.probe_answered(3, true, Millis(10));
        let members: BTreeMap<NodeId, String> =
            [(1, "a:2".to_owned()), (2, "b:2".to_owned()), (4, "d:1".to_owned())].into();
        let (added, removed) = m.set_members(&members);
        assert_eq!((added, removed), (vec![4], vec![3]));
        assert_eq!(m.state(2), Some(PeerState::Up), "a peer that stays keeps its state");
        assert_eq!(m.addr(2), Some("b:2"), "and takes its new address");
        assert_eq!(m.state(3), None);
        assert_eq!(m.state(4), Some(PeerState::Down), "a new peer is down until it answers");
        assert_eq!(m.ring().members(), [1, 2]);
        m.probe_answered(4, true, Millis(20));
        assert_eq!(m.ring().members(), [1, 2, 4]);
        assert_eq!(m.view(Millis(30))[0].addr, "a:2");
        assert_eq!(m.set_members(&members), (vec![], vec![]), "the same list changes nothing");
    }
}
