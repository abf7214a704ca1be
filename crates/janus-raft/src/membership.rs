//! Changing the group at run time: add a learner (it catches up without
//! voting), promote it to a voter, remove a member. Any node takes a change
//! and forwards it to the leader, like a write.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver as _;
use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};

use crate::engine::{CpEngine, CpOperation, CpWriteError, PeerRpcError, millis};
use crate::leader::Redirect;
use crate::network::{RpcKind, decode};

/// Adding a learner waits until it has caught up, which may mean sending it a
/// large snapshot; other changes are one Raft round.
const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(60);

/// A change of the group's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Replicate to a new node, which does not vote yet; returns once it caught up.
    AddLearner {
        /// The new node's id (never one used before).
        id: u64,
        /// Its cluster address.
        addr: String,
    },
    /// Make a learner a voter.
    Promote {
        /// The learner.
        id: u64,
    },
    /// Take a voter or learner out of the group.
    Remove {
        /// The member.
        id: u64,
    },
}

/// The group as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    /// The node answering.
    pub node_id: u64,
    /// The leader it knows.
    pub leader: Option<u64>,
    /// Voters and their cluster addresses.
    pub voters: BTreeMap<u64, String>,
    /// Learners and their cluster addresses.
    pub learners: BTreeMap<u64, String>,
}

/// Every node of the group (voters and learners) with its cluster address,
/// as one node knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupNodes {
    /// The node answering.
    pub node_id: u64,
    /// By its latest membership log entry, which may not be committed yet.
    pub effective: BTreeMap<u64, String>,
    /// By the latest membership entry it knows to be committed.
    pub committed: BTreeMap<u64, String>,
}

impl CpEngine {
    /// Every node of the group with its address (see [`GroupNodes`]); both
    /// maps are empty before this node has any membership (a joining node
    /// not added yet).
    #[must_use]
    pub fn group_nodes(&self) -> GroupNodes {
        let metrics = self.raft().metrics();
        let metrics = metrics.borrow_watched();
        let nodes = |membership: &openraft::Membership<u64, BasicNode>| {
            membership.nodes().map(|(id, node)| (*id, node.addr.clone())).collect()
        };
        GroupNodes {
            node_id: self.node_id(),
            effective: nodes(metrics.membership_config.membership()),
            committed: nodes(metrics.committed_membership_config.membership()),
        }
    }

    /// The group as this node sees it (its latest membership log entry).
    #[must_use]
    pub fn members(&self) -> Members {
        let metrics = self.raft().metrics();
        let metrics = metrics.borrow_watched();
        let membership = metrics.membership_config.membership();
        let addr = |id: u64| membership.get_node(&id).map(|node| node.addr.clone()).unwrap_or_default();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        Members {
            node_id: self.node_id(),
            leader: metrics.current_leader,
            voters: voters.iter().map(|id| (*id, addr(*id))).collect(),
            learners: membership.learner_ids().filter(|id| !voters.contains(id)).map(|id| (id, addr(id))).collect(),
        }
    }

    /// Raft's state on this node, for operators.
    #[must_use]
    pub fn status(&self) -> janus_core::status::RaftStatus {
        let members = self.members();
        // Copy out at once: holding the metrics borrow can stall Raft.
        let metrics = self.raft().metrics().borrow_watched().clone();
        let last_log_index = metrics.last_log_index.unwrap_or(0);
        let lag = metrics
            .replication
            .as_ref()
            .map(|replication| {
                replication
                    .iter()
                    .filter(|(id, _)| **id != self.node_id())
                    .map(|(id, matched)| (*id, last_log_index.saturating_sub(matched.map_or(0, |m| m.index))))
                    .collect()
            })
            .unwrap_or_default();
        let state = match metrics.state {
            openraft::ServerState::Leader => "leader",
            openraft::ServerState::Follower => "follower",
            openraft::ServerState::Candidate => "candidate",
            openraft::ServerState::Learner => "learner",
            openraft::ServerState::Shutdown => "shutdown",
        };
        janus_core::status::RaftStatus {
            state: state.to_owned(),
            term: metrics.current_term,
            leader: metrics.current_leader,
            last_log_index,
            commit_index: metrics.local_committed.map_or(0, |c| c.index),
            applied_index: metrics.last_applied.map_or(0, |a| a.index),
            voters: members.voters,
            learners: members.learners,
            lag,
        }
    }

    /// Applies `change` through the leader and returns the group afterwards.
    ///
    /// # Errors
    /// No leader took the change within its deadline, or Raft refused it
    /// (for example promoting a node that is not a learner).
    pub async fn change_members(&self, change: MembershipChange) -> Result<Members, CpWriteError> {
        let deadline = tokio::time::Instant::now() + MEMBERSHIP_TIMEOUT;
        let attempt = async {
            self.at_leader(RpcKind::ChangeMembers, &change, deadline, || self.change_members_here(change.clone()))
                .await
                .map(|_| ())
        };
        match tokio::time::timeout_at(deadline, attempt).await {
            Ok(result) => result.map(|()| self.members()),
            Err(_) => Err(CpWriteError::NoQuorum {
                during: CpOperation::MembershipChange,
                waited_ms: millis(MEMBERSHIP_TIMEOUT),
            }),
        }
    }

    /// A forwarded change, on the node that should lead (it never forwards again).
    pub(crate) async fn handle_change_members(&self, body: &[u8]) -> Result<Vec<u8>, PeerRpcError> {
        let change: MembershipChange = decode(body)
            .map_err(|e| PeerRpcError::Malformed { kind: RpcKind::ChangeMembers, reason: e.to_string() })?;
        match self.change_members_here(change).await {
            Ok(()) => Ok(Vec::new()),
            Err(Redirect::To { leader, .. }) => Err(PeerRpcError::NotLeader(format!("node {leader} leads now"))),
            Err(Redirect::NoLeader) => Err(PeerRpcError::NotLeader("no leader is known".to_owned())),
            Err(Redirect::Refused(reason)) => Err(PeerRpcError::Raft(reason)),
        }
    }

    async fn change_members_here(&self, change: MembershipChange) -> Result<(), Redirect> {
        let raft = self.raft();
        let result = match change {
            MembershipChange::AddLearner { id, addr } => raft.add_learner(id, BasicNode::new(addr), true).await,
            MembershipChange::Promote { id } => {
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false).await
            }
            MembershipChange::Remove { id } => {
                let change = if self.members().voters.contains_key(&id) {
                    ChangeMembers::RemoveVoters(BTreeSet::from([id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([id]))
                };
                raft.change_membership(change, false).await
            }
        };
        result.map(|_| ()).map_err(|e| Redirect::from_raft(&e, "Raft refused the membership change"))
    }
}
