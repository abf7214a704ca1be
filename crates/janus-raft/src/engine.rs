//! [`CpEngine`]: the handle the node writes through.
//!
//! `start` opens the durable log and the snapshot directory, rebuilds the
//! registry's replicated part from them, and on first start initialises the
//! group: the configured members, or this node alone (then it waits until it
//! leads). `write` proposes a command — on a follower it forwards it to the
//! leader over the peer transport — and waits for it to be applied (on a
//! follower, applied there too, so a read on the node that took the write
//! shows it); if that takes longer than the election timeout plus a second
//! (no leader, no quorum), it fails with a clear error instead of hanging.
//! `handle_peer_rpc` is the receiving end of the peer transport.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use janus_core::transport::{CallError, PeerTransport};
use janus_core::{Command, CommandOutcome, RegistryStore};
use openraft::async_runtime::WatchReceiver as _;
use openraft::{BasicNode, Config, Raft, ReadPolicy, ServerState, SnapshotPolicy};
use tracing::{debug, info};

use crate::leader::{Redirect, Served};
use crate::network::{CommitFlushes, PeerNetwork, RpcKind, SnapshotMessage, decode, encode};
use crate::{LogStore, RaftRequest, RaftResponse, StateMachine, TypeConfig};

/// Settings of the CP engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpConfig {
    /// This node's Raft id (stable; never reused).
    pub node_id: u64,
    /// Where the log and snapshots live.
    pub dir: PathBuf,
    /// Leader heartbeat interval.
    pub heartbeat: Duration,
    /// Election timeout range.
    pub election_timeout: (Duration, Duration),
    /// Take a snapshot after this many log entries.
    pub snapshot_after_logs: u64,
    /// Log entries kept after a snapshot covers them (the log is compacted
    /// in batches of 256). A follower that needs entries no longer kept is
    /// sent the whole snapshot.
    pub logs_kept_after_snapshot: u64,
    /// The group to create on first start: node id → peer address. Empty
    /// means this node alone. Every member must be given the same list.
    pub members: BTreeMap<u64, String>,
    /// Start empty and wait to be added to an existing group (as a learner,
    /// through [`CpEngine::change_members`]); `members` is then ignored.
    pub join: bool,
}

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
pub enum CpStartError {
    /// The log or snapshots could not be opened.
    #[error("cannot open the Raft data in {dir}: {source}")]
    Storage {
        /// The data directory.
        dir: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// openraft refused the configuration or failed to start.
    #[error("cannot start Raft: {0}")]
    Raft(String),
    /// This node has Raft state by its marks, but its log or snapshot is
    /// missing or shorter than the marks: it refuses to start rather than
    /// serve partial data.
    #[error(
        "{file}: {detail}. This node's marks ({marks}) show it had Raft data, so it refuses to start rather than \
         serve partial or altered data. To recover, follow \"Recovering a node\" in docs/consistency.md: in a \
         cluster, rejoin the node from its peers under a new node id; a single node is restored from a backup of \
         its data directory"
    )]
    Lost {
        /// The file that is missing, short or corrupted.
        file: PathBuf,
        /// What is wrong with it.
        detail: String,
        /// The marks file that says what should be there.
        marks: PathBuf,
    },
    /// The configured members do not include this node.
    #[error("the Raft members {members:?} do not include this node ({node_id})")]
    NotAMember {
        /// This node.
        node_id: u64,
        /// The configured member ids.
        members: Vec<u64>,
    },
}

/// Why a write, read fence or membership change did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpWriteError {
    /// The deadline passed before a quorum committed (or confirmed) it.
    #[error("{}", during.no_quorum(*waited_ms))]
    NoQuorum {
        /// What was waiting.
        during: CpOperation,
        /// How long it waited, in milliseconds.
        waited_ms: u64,
    },
    /// Raft refused it: no forward was possible, the engine is stopping, the
    /// leader refused it, or this node did not catch up with the leader.
    #[error("{0}")]
    Refused(String),
    /// The leader could not be reached with the forwarded message.
    #[error("cannot reach the Raft leader (a {kind} message): {error}")]
    Unreachable {
        /// The message forwarded.
        kind: RpcKind,
        /// What the transport said.
        error: CallError,
    },
    /// A message to or from the leader did not encode or decode: a bug or
    /// mismatched versions, not a lack of quorum.
    #[error("{0}")]
    Malformed(String),
}

/// What a [`CpWriteError::NoQuorum`] was waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpOperation {
    /// A write (a Raft command).
    Write,
    /// A linearizable read (a read fence).
    Read,
    /// A membership change.
    MembershipChange,
}

impl CpOperation {
    /// The message of a [`CpWriteError::NoQuorum`] that waited `waited_ms`.
    fn no_quorum(self, waited_ms: u64) -> String {
        match self {
            Self::Write => format!("the write was not committed within {waited_ms} ms: no Raft quorum"),
            Self::Read => format!("no Raft quorum confirmed the read within {waited_ms} ms"),
            Self::MembershipChange => {
                format!("the membership change did not complete within {} s", waited_ms / 1000)
            }
        }
    }
}

/// Why an incoming peer message got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerRpcError {
    /// The body is not a message of the named kind.
    #[error("malformed {kind} message: {reason}")]
    Malformed {
        /// The kind the caller named.
        kind: RpcKind,
        /// The decoder's complaint.
        reason: String,
    },
    /// Raft could not handle it (it is stopping, or a forwarded write failed).
    #[error("{0}")]
    Raft(String),
    /// This node does not lead (any more): the forwarded request was not
    /// proposed, so the sender may safely try again at the new leader.
    #[error("not the leader: {0}")]
    NotLeader(String),
}

/// The CP engine of one node; cheap to clone.
#[derive(Clone)]
pub struct CpEngine {
    raft: Raft<TypeConfig, StateMachine>,
    store: Arc<RegistryStore>,
    auth: Arc<janus_auth::AuthStore>,
    transport: Arc<dyn PeerTransport>,
    /// Writes each follower forwarded that are in progress here: its commits are not held meanwhile.
    flushes: Arc<CommitFlushes>,
    node_id: u64,
    write_timeout: Duration,
    log_closed: futures_util::future::Shared<futures_util::future::BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for CpEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpEngine")
            .field("node_id", &self.node_id)
            .field("write_timeout", &self.write_timeout)
            .finish_non_exhaustive()
    }
}

/// A refusal of a forwarded request: [`PeerRpcError::NotLeader`] when Raft
/// says another node (or none) leads, so nothing was proposed.
pub(crate) fn not_leader_or<E>(error: &openraft::error::RaftError<TypeConfig, E>) -> PeerRpcError
where
    E: std::fmt::Debug + std::fmt::Display + openraft::TryAsRef<openraft::error::ForwardToLeader<TypeConfig>>,
{
    if error.forward_to_leader().is_some() {
        PeerRpcError::NotLeader(error.to_string())
    } else {
        PeerRpcError::Raft(error.to_string())
    }
}

/// Opens the log and the snapshot in `dir` and checks them against the
/// node's marks (see `crate::marks`): Raft data that is missing, cut short or
/// corrupted is refused with [`CpStartError::Lost`] naming the file. A node
/// without marks gets them now (its Raft identity).
async fn open_storage(store: &Arc<RegistryStore>, dir: &Path) -> Result<(LogStore, StateMachine), CpStartError> {
    use openraft::storage::RaftLogStorage as _;
    let storage = |source| CpStartError::Storage { dir: dir.to_owned(), source };
    let marks_path = crate::marks::path_for(dir);
    let marks = crate::marks::read(&marks_path).map_err(storage)?;
    let log_path = dir.join("raft.log");
    if log_path.parent().is_some_and(Path::exists) {
        crate::legacy::migrate(&log_path).map_err(storage)?;
    }
    let lost =
        |file: &Path, detail: String| CpStartError::Lost { file: file.to_owned(), detail, marks: marks_path.clone() };
    if let Some(marks) = marks {
        match std::fs::metadata(&log_path) {
            Ok(meta) if meta.len() == 0 => {
                return Err(lost(&log_path, "the Raft log file is empty".to_owned()));
            }
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let detail =
                    format!("the Raft log is missing (entries up to index {} were committed)", marks.committed);
                return Err(lost(&log_path, detail));
            }
            Err(error) => return Err(storage(crate::state_machine::named(&log_path, &error))),
        }
    }
    std::fs::create_dir_all(dir).map_err(storage)?;
    let mut log = LogStore::open_marked(&log_path, Some(marks_path.clone())).map_err(|source| match marks {
        Some(_) if source.kind() == io::ErrorKind::InvalidData => {
            let text = source.to_string();
            let prefix = format!("{}: ", log_path.display());
            lost(&log_path, text.strip_prefix(&prefix).unwrap_or(&text).to_owned())
        }
        _ => storage(source),
    })?;
    let machine = StateMachine::open(store.clone(), &dir.join("snapshots")).map_err(|source| match marks {
        Some(_) if source.kind() == io::ErrorKind::InvalidData => {
            let file = dir.join("snapshots").join("snapshot.bin");
            let text = source.to_string();
            let prefix = format!("{}: ", file.display());
            lost(&file, text.strip_prefix(&prefix).unwrap_or(&text).to_owned())
        }
        _ => storage(source),
    })?;
    let state = log.get_log_state().await.map_err(storage)?;
    let last = state.last_log_id.map_or(0, |id| id.index);
    if let Some(marks) = marks
        && last < marks.committed
    {
        let detail = format!("the Raft log ends at index {last}, but index {} was committed", marks.committed);
        return Err(lost(&log_path, detail));
    }
    let covered = machine.last_applied().map_or(0, |id| id.index);
    if let Some(purged) = state.last_purged_log_id
        && covered < purged.index
    {
        let detail = if machine.last_applied().is_none() {
            format!("the snapshot is missing, but the log was compacted up to index {}", purged.index)
        } else {
            format!("the snapshot covers index {covered} only, but the log was compacted up to index {}", purged.index)
        };
        return Err(lost(&machine.snapshot_path(), detail));
    }
    if marks.is_none() {
        let committed = log.read_committed().await.map_err(storage)?.map_or(0, |id| id.index);
        crate::marks::write(&marks_path, crate::marks::Marks { committed }).map_err(storage)?;
    }
    Ok((log, machine))
}

/// How long a follower waits at least to apply a write it forwarded, even
/// when the write's own deadline is all but spent.
const APPLY_GRACE: Duration = Duration::from_millis(100);

/// How often a node that knows no leader looks again while a request waits.
pub(crate) const LEADER_POLL: Duration = Duration::from_millis(20);

/// Milliseconds of `duration`, saturating.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl CpEngine {
    /// Starts the engine over `store`, talking to peers through `transport`
    /// (see the module docs).
    ///
    /// # Errors
    /// The data directory cannot be used, the members leave this node out, or
    /// openraft does not start.
    pub async fn start(
        store: Arc<RegistryStore>,
        config: CpConfig,
        transport: Arc<dyn PeerTransport>,
    ) -> Result<Self, CpStartError> {
        let mut members = config.members.clone();
        if members.is_empty() {
            members.insert(config.node_id, String::new());
        }
        if !config.join && !members.contains_key(&config.node_id) {
            return Err(CpStartError::NotAMember { node_id: config.node_id, members: members.into_keys().collect() });
        }
        let (log, machine) = open_storage(&store, &config.dir).await?;
        let auth = machine.auth().clone();
        let log_closed = futures_util::FutureExt::shared(futures_util::FutureExt::boxed(log.closed()));
        let raft_config = Config {
            cluster_name: "janus".to_owned(),
            heartbeat_interval: millis(config.heartbeat),
            election_timeout_min: millis(config.election_timeout.0),
            election_timeout_max: millis(config.election_timeout.1),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_after_logs),
            max_in_snapshot_log_to_keep: config.logs_kept_after_snapshot,
            ..Config::default()
        }
        .validate()
        .map_err(|e| CpStartError::Raft(e.to_string()))?;
        let flushes = Arc::new(CommitFlushes::default());
        let network = PeerNetwork { transport: transport.clone(), flushes: flushes.clone() };
        let raft = Raft::new(config.node_id, Arc::new(raft_config), network, log, machine)
            .await
            .map_err(|e| CpStartError::Raft(e.to_string()))?;
        if config.join {
            info!(node_id = config.node_id, "waiting to be added to a Raft group");
        } else if !raft.is_initialized().await.map_err(|e| CpStartError::Raft(e.to_string()))? {
            info!(node_id = config.node_id, members = ?members.keys(), "initialising the Raft group");
            let nodes: BTreeMap<u64, BasicNode> =
                members.into_iter().map(|(id, addr)| (id, BasicNode::new(addr))).collect();
            raft.initialize(nodes).await.map_err(|e| CpStartError::Raft(e.to_string()))?;
        }
        let write_timeout = config.election_timeout.1 + Duration::from_secs(1);
        let alone = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow_watched();
            let voters: Vec<u64> = metrics.membership_config.membership().voter_ids().collect();
            voters == [config.node_id]
        };
        if alone {
            raft.wait(Some(write_timeout * 5))
                .state(ServerState::Leader, "the single member leads")
                .await
                .map_err(|e| CpStartError::Raft(e.to_string()))?;
        }
        Ok(Self { raft, store, auth, transport, flushes, node_id: config.node_id, write_timeout, log_closed })
    }

    /// Proposes `command`, waits for it to be applied and returns its outcome.
    ///
    /// A write forwarded to the leader is also applied on this node before
    /// it returns (the leader names the entry's index and sends this node the
    /// commit at once), so a read here right after shows it. Should this node
    /// not get there by the deadline (cut off just after the leader answered),
    /// the outcome is returned all the same: the write is committed.
    ///
    /// # Errors
    /// The command did not commit within the election timeout plus a second;
    /// the inner `Result` is the command's own (deterministic) outcome.
    pub async fn write(
        &self,
        command: Command,
    ) -> Result<Result<CommandOutcome, janus_core::RegistryError>, CpWriteError> {
        let request = RaftRequest { at: self.store.now().0, command };
        let deadline = tokio::time::Instant::now() + self.write_timeout;
        let attempt = async {
            let served = self
                .at_leader(RpcKind::ForwardWrite, &(&request, self.node_id), deadline, || async {
                    let written = self.raft.client_write(request.clone()).await;
                    written
                        .map(|response| response.data.0)
                        .map_err(|e| Redirect::from_raft(&e, "Raft refused the write"))
                })
                .await?;
            match served {
                Served::Here(outcome) => Ok((outcome, None)),
                Served::AtLeader(reply) => {
                    let (response, rest) = postcard::take_from_bytes::<RaftResponse>(&reply)
                        .map_err(|e| CpWriteError::Malformed(format!("the Raft leader sent a malformed reply: {e}")))?;
                    // An earlier leader sends no index.
                    Ok((response.0, decode::<u64>(rest).ok()))
                }
            }
        };
        let (outcome, forwarded_at) = match tokio::time::timeout_at(deadline, attempt).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(CpWriteError::NoQuorum {
                    during: CpOperation::Write,
                    waited_ms: millis(self.write_timeout),
                });
            }
        };
        if let Some(index) = forwarded_at {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now()).max(APPLY_GRACE);
            let applied = self
                .raft
                .wait(Some(remaining))
                .applied_index_at_least(Some(index), "applied a write forwarded to the leader")
                .await;
            if let Err(error) = applied {
                debug!(node_id = self.node_id, index, %error, "a forwarded write was not applied here in time");
            }
        }
        Ok(outcome)
    }

    /// Handles one message from a peer (see [`PeerTransport`]) and returns the
    /// encoded reply.
    ///
    /// # Errors
    /// The body is not a `kind` message, Raft is stopping, or a forwarded
    /// write reached a node that does not lead.
    pub async fn handle_peer_rpc(&self, kind: RpcKind, body: &[u8]) -> Result<Vec<u8>, PeerRpcError> {
        let malformed = |e: postcard::Error| PeerRpcError::Malformed { kind, reason: e.to_string() };
        let raft_error = |e: &dyn std::fmt::Display| PeerRpcError::Raft(e.to_string());
        let reply = match kind {
            RpcKind::AppendEntries => {
                let reply = self.raft.append_entries(decode(body).map_err(malformed)?).await;
                encode(&reply.map_err(|e| raft_error(&e))?)
            }
            RpcKind::Vote => {
                encode(&self.raft.vote(decode(body).map_err(malformed)?).await.map_err(|e| raft_error(&e))?)
            }
            RpcKind::PreVote => {
                encode(&self.raft.pre_vote(decode(body).map_err(malformed)?).await.map_err(|e| raft_error(&e))?)
            }
            RpcKind::InstallSnapshot => {
                let (vote, meta, data): SnapshotMessage = decode(body).map_err(malformed)?;
                let snapshot = openraft::Snapshot { meta, snapshot: std::io::Cursor::new(data) };
                encode(&self.raft.install_full_snapshot(vote, snapshot).await.map_err(|e| raft_error(&e))?)
            }
            RpcKind::ForwardWrite => {
                let (mut request, rest) = postcard::take_from_bytes::<RaftRequest>(body).map_err(malformed)?;
                // An earlier follower does not name itself (nor wait to apply).
                let origin = decode::<u64>(rest).ok();
                // Entries carry the leader's clock, not the forwarding node's.
                request.at = self.store.now().0;
                // The follower waits to apply it: its commits are not held meanwhile.
                let _waiting = origin.and_then(|origin| self.flushes.forwarded(origin));
                // Proposed here and only here: a node that lost the lead refuses
                // rather than forwarding again, so writes never travel in circles.
                let response = self.raft.client_write(request).await.map_err(|e| not_leader_or(&e))?;
                encode(&(&response.data, response.log_id.index))
            }
            RpcKind::ChangeMembers => return self.handle_change_members(body).await,
            RpcKind::ReadIndex => {
                if !body.is_empty() {
                    return Err(PeerRpcError::Malformed {
                        kind,
                        reason: "a read-index request has no body".to_owned(),
                    });
                }
                // Answered only by the leader itself, like a forwarded write.
                let index = self.leader_read_index().await.map_err(|e| not_leader_or(&e))?;
                encode(&index)
            }
        };
        reply.map_err(|e| PeerRpcError::Raft(format!("cannot encode the reply: {e}")))
    }

    pub(crate) const fn raft(&self) -> &Raft<TypeConfig, StateMachine> {
        &self.raft
    }

    pub(crate) fn transport(&self) -> &dyn PeerTransport {
        self.transport.as_ref()
    }

    /// This node's Raft id.
    #[must_use]
    pub const fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The node's users, tokens and grants as committed: what the front
    /// ends check requests against. [`Command::Auth`](janus_core::Command::Auth)
    /// writes change it.
    #[must_use]
    pub fn auth(&self) -> &Arc<janus_auth::AuthStore> {
        &self.auth
    }

    /// The current leader as this node knows it.
    #[must_use]
    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow_watched().current_leader
    }

    /// A linearizable read fence (ReadIndex): the leader confirms with a
    /// quorum that it still leads and names a read index (see
    /// `leader_read_index`; a follower asks the leader over the peer
    /// transport); this node then waits until its state machine applied that
    /// index, and returns it.
    ///
    /// # Errors
    /// No quorum confirmed leadership within the election timeout plus a second.
    pub async fn linearize(&self) -> Result<u64, CpWriteError> {
        let deadline = tokio::time::Instant::now() + self.write_timeout;
        let attempt = async {
            let served = self
                // A read-index request is empty: `()` encodes to no bytes.
                .at_leader(RpcKind::ReadIndex, &(), deadline, || async {
                    self.leader_read_index()
                        .await
                        .map_err(|e| Redirect::from_raft(&e, "cannot confirm a linearizable read"))
                })
                .await?;
            let index = match served {
                Served::Here(index) => index,
                Served::AtLeader(reply) => decode::<u64>(&reply).map_err(|e| {
                    CpWriteError::Malformed(format!("the Raft leader sent a malformed read index: {e}"))
                })?,
            };
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            self.raft
                .wait(Some(remaining))
                .applied_index_at_least(Some(index), "caught up with the leader's read index")
                .await
                .map_err(|e| CpWriteError::Refused(format!("this node did not catch up with the leader: {e}")))?;
            Ok(index)
        };
        match tokio::time::timeout_at(deadline, attempt).await {
            Ok(result) => result,
            Err(_) => Err(CpWriteError::NoQuorum { during: CpOperation::Read, waited_ms: millis(self.write_timeout) }),
        }
    }

    /// The read index of a linearizable read, on the leader: it confirms
    /// with a quorum that it still leads (openraft's ReadIndex), and the index
    /// is the larger of openraft's read index and the leader's last log
    /// index as it stood when the read arrived.
    ///
    /// Why the last log index: a leader that restarts keeps its term and
    /// leads again without appending an entry, and its commit index comes back
    /// from the persisted hint, which may lag what it had acknowledged before
    /// the crash. openraft's read index (its commit index) can then miss
    /// acknowledged writes. Every acknowledged write is in the leader's log,
    /// so waiting for the whole log as it stood is always enough.
    async fn leader_read_index(
        &self,
    ) -> Result<u64, openraft::error::RaftError<TypeConfig, openraft::error::LinearizableReadError<TypeConfig>>> {
        let last = self.raft.metrics().borrow_watched().last_log_index.unwrap_or(0);
        let read = self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await?;
        Ok(read.index().max(last))
    }

    /// The index of the last log entry applied to the registry.
    #[must_use]
    pub fn applied_index(&self) -> u64 {
        // Copy out at once: holding the metrics borrow can stall Raft (openraft FAQ).
        let applied = self.raft.metrics().borrow_watched().last_applied;
        applied.map_or(0, |log_id| log_id.index)
    }

    /// Stops Raft (after the front ends stopped) and waits, up to five
    /// seconds, until its tasks let go of the log, so the data directory can
    /// be opened again at once.
    pub async fn shutdown(&self) {
        // An error means Raft had stopped already.
        let _ = self.raft.shutdown().await;
        if tokio::time::timeout(Duration::from_secs(5), self.log_closed.clone()).await.is_err() {
            tracing::warn!(node_id = self.node_id, "the Raft log is still open 5 s after shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use janus_core::transport::CallError;

    use super::{CpOperation, CpWriteError};
    use crate::network::RpcKind;

    #[test]
    fn a_no_quorum_error_names_what_waited_and_how_long() {
        let no_quorum = |during, waited_ms| CpWriteError::NoQuorum { during, waited_ms }.to_string();
        assert_eq!(no_quorum(CpOperation::Write, 1600), "the write was not committed within 1600 ms: no Raft quorum");
        assert_eq!(no_quorum(CpOperation::Read, 1600), "no Raft quorum confirmed the read within 1600 ms");
        assert_eq!(
            no_quorum(CpOperation::MembershipChange, 60_000),
            "the membership change did not complete within 60 s"
        );
    }

    #[test]
    fn an_unreachable_leader_is_named_with_the_message_kind() {
        let error = CallError::NoReply { target: 2, addr: "10.0.0.2:7848".to_owned(), reason: "reset".to_owned() };
        let text = CpWriteError::Unreachable { kind: RpcKind::ForwardWrite, error: error.clone() }.to_string();
        assert!(text.starts_with("cannot reach the Raft leader (a "), "{text}");
        assert!(text.ends_with(&error.to_string()), "{text}");
    }
}
