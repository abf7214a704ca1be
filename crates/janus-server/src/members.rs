//! Keeps the AP engine's member list equal to the Raft group's, so that a
//! node added or removed through the admin API takes part in (or leaves) AP
//! replication on every node without a restart.
//!
//! The AP engine starts from `cluster.members`. Once this node's Raft view
//! holds a membership that includes this node, that membership (voters and
//! learners, with their cluster addresses) is the AP member list. Before that
//! (Raft not started yet, or a joining node not added yet) the configured
//! list stays.

use std::collections::BTreeMap;
use std::time::Duration;

use janus_ap::ApEngine;
use janus_raft::{CpEngine, Members};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// How often the Raft membership is compared with the AP member list.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// The AP member list `members` implies for this node, if any.
#[must_use]
pub fn ap_members(members: &Members) -> Option<BTreeMap<u64, String>> {
    let mut all = members.voters.clone();
    all.extend(members.learners.iter().map(|(id, addr)| (*id, addr.clone())));
    let complete = all.contains_key(&members.node_id) && all.values().all(|addr| !addr.is_empty());
    complete.then_some(all)
}

/// Follows the Raft membership until `shutdown` (see the module docs).
pub fn follow(cp: CpEngine, ap: ApEngine, shutdown: CancellationToken) -> JoinHandle<()> {
    let task = async move {
        let mut ticker = tokio::time::interval(FOLLOW_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = shutdown.cancelled() => return,
            }
            if let Some(members) = ap_members(&cp.members()) {
                ap.set_members(&members);
            }
        }
    };
    tokio::spawn(task.in_current_span())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(node_id: u64, voters: &[(u64, &str)], learners: &[(u64, &str)]) -> Members {
        let map = |list: &[(u64, &str)]| list.iter().map(|(id, addr)| (*id, (*addr).to_owned())).collect();
        Members { node_id, leader: None, voters: map(voters), learners: map(learners) }
    }

    #[test]
    fn voters_and_learners_are_the_members_once_the_group_holds_this_node() {
        let group = members(2, &[(1, "a:7848"), (2, "b:7848")], &[(4, "d:7848")]);
        let expected: BTreeMap<u64, String> =
            [(1, "a:7848".to_owned()), (2, "b:7848".to_owned()), (4, "d:7848".to_owned())].into();
        assert_eq!(ap_members(&group), Some(expected));
        assert_eq!(ap_members(&members(4, &[], &[])), None, "a joining node not added yet keeps its config");
        assert_eq!(ap_members(&members(4, &[(1, "a:7848")], &[])), None, "nor one that was removed");
        assert_eq!(ap_members(&members(1, &[(1, "a:7848"), (2, "")], &[])), None, "nor an address-less member");
    }
}
