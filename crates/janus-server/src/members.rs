//! Keeps the AP engine's member list equal to the Raft group's, so that a
//! node added or removed through the admin API takes part in (or leaves) AP
//! replication on every node without a restart.
//!
//! The AP engine starts from the Raft group when this node's Raft state
//! holds one that includes it (a restart), else from `cluster.members` (a
//! first start, or a joining node not added yet). From then on, every
//! second, [`MemberFollower`] turns this node's view of the group into the AP
//! member list:
//! - a node in the latest membership entry is a member at once; one that
//!   entry leaves out stops being a member only once a committed entry
//!   leaves it out too (an uncommitted removal can still be undone);
//! - a node that was in the group and no longer is (it was removed) drops
//!   every peer: it stops replicating, and its former peers refuse its
//!   messages anyway;
//! - a node that was never in the group (joining, not added yet) keeps the
//!   configured list; its AP engine waits to load its snapshot until it is
//!   added (see `ApCluster::wait_for_group`).

use std::collections::BTreeMap;
use std::time::Duration;

use janus_ap::ApEngine;
use janus_raft::{CpEngine, GroupNodes};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, warn};

/// How often the Raft membership is compared with the AP member list.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// Turns views of the Raft group into AP member lists (see the module docs).
#[derive(Debug, Clone)]
pub struct MemberFollower {
    me: u64,
    my_addr: String,
    was_member: bool,
    removed: bool,
}

impl MemberFollower {
    /// For node `me`, reached by its peers at `my_addr`.
    #[must_use]
    pub fn new(me: u64, my_addr: String) -> Self {
        Self { me, my_addr, was_member: false, removed: false }
    }

    /// Whether the last view showed this node removed from the group.
    #[must_use]
    pub const fn removed(&self) -> bool {
        self.removed
    }

    /// The AP member list this view of the group implies, or `None` to keep
    /// the current one.
    pub fn members(&mut self, group: &GroupNodes) -> Option<BTreeMap<u64, String>> {
        if group.effective.is_empty() {
            return None;
        }
        let mut members = group.committed.clone();
        members.extend(group.effective.iter().map(|(id, addr)| (*id, addr.clone())));
        let in_group = group.effective.contains_key(&self.me) || group.committed.contains_key(&self.me);
        self.removed = !in_group && self.was_member;
        if in_group {
            self.was_member = true;
            return members.values().all(|addr| !addr.is_empty()).then_some(members);
        }
        if !self.removed {
            return None;
        }
        Some(BTreeMap::from([(self.me, self.my_addr.clone())]))
    }
}

/// Follows the Raft membership until `shutdown` (see the module docs).
pub fn follow(cp: CpEngine, ap: ApEngine, mut follower: MemberFollower, shutdown: CancellationToken) -> JoinHandle<()> {
    let task = async move {
        let mut ticker = tokio::time::interval(FOLLOW_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_removed = false;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = shutdown.cancelled() => return,
            }
            if let Some(members) = follower.members(&cp.group_nodes()) {
                if follower.removed() && !was_removed {
                    warn!("this node was removed from the cluster: it no longer replicates ap data; stop it");
                }
                ap.set_members(&members);
            }
            was_removed = follower.removed();
        }
    };
    tokio::spawn(task.in_current_span())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(list: &[(u64, &str)]) -> BTreeMap<u64, String> {
        list.iter().map(|(id, addr)| (*id, (*addr).to_owned())).collect()
    }

    fn group(node_id: u64, effective: &[(u64, &str)], committed: &[(u64, &str)]) -> GroupNodes {
        GroupNodes { node_id, effective: map(effective), committed: map(committed) }
    }

    #[test]
    fn members_are_added_at_once_and_removed_once_the_removal_is_committed() {
        let mut follower = MemberFollower::new(2, "b:7848".to_owned());
        let three = [(1, "a:7848"), (2, "b:7848"), (3, "c:7848")];
        assert_eq!(follower.members(&group(2, &three, &three)), Some(map(&three)));
        let four = [(1, "a:7848"), (2, "b:7848"), (3, "c:7848"), (4, "d:7848")];
        assert_eq!(follower.members(&group(2, &four, &three)), Some(map(&four)), "added before it commits");
        let without_3 = [(1, "a:7848"), (2, "b:7848"), (4, "d:7848")];
        assert_eq!(
            follower.members(&group(2, &without_3, &four)),
            Some(map(&four)),
            "an uncommitted removal keeps the member"
        );
        assert_eq!(follower.members(&group(2, &without_3, &without_3)), Some(map(&without_3)));
        let nameless = [(1, "a:7848"), (2, "b:7848"), (5, "")];
        assert_eq!(follower.members(&group(2, &nameless, &nameless)), None, "a member without an address");
    }

    #[test]
    fn a_joining_node_keeps_its_configuration_and_a_removed_one_drops_every_peer() {
        let mut joining = MemberFollower::new(4, "d:7848".to_owned());
        assert_eq!(joining.members(&GroupNodes::default()), None, "no membership yet");
        let three = [(1, "a:7848"), (2, "b:7848"), (3, "c:7848")];
        assert_eq!(joining.members(&group(4, &three, &three)), None, "never in the group: keep the configuration");

        let mut removed = MemberFollower::new(3, "c:7848".to_owned());
        assert_eq!(removed.members(&group(3, &three, &three)), Some(map(&three)));
        assert!(!removed.removed());
        let two = [(1, "a:7848"), (2, "b:7848")];
        assert_eq!(removed.members(&group(3, &two, &two)), Some(map(&[(3, "c:7848")])), "alone after its removal");
        assert!(removed.removed());

        let mut alone = MemberFollower::new(1, "a:7848".to_owned());
        let one = [(1, "a:7848")];
        assert_eq!(alone.members(&group(1, &one, &one)), Some(map(&one)));
        assert!(!alone.removed(), "the only member of a one-node group is not a removed node");
    }
}
