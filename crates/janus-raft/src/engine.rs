//! [`CpEngine`]: the handle the node writes through.
//!
//! `start` opens the durable log and the snapshot directory, rebuilds the
//! registry's replicated part from them, and on first start initialises a
//! one-member group, then waits until it leads. `write` proposes a command and
//! waits for it to be applied; if that takes longer than the election timeout
//! plus a second (no leader, no quorum), it fails with a clear error instead
//! of hanging.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use janus_core::{Command, CommandOutcome, RegistryStore};
use openraft::async_runtime::WatchReceiver as _;
use openraft::{BasicNode, Config, Raft, ReadPolicy, ServerState, SnapshotPolicy};
use tracing::info;

use crate::network::NoPeers;
use crate::{LogStore, RaftRequest, StateMachine, TypeConfig};

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
}

/// Why a write did not commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CpWriteError(pub String);

/// The CP engine of one node; cheap to clone.
#[derive(Clone)]
pub struct CpEngine {
    raft: Raft<TypeConfig, StateMachine>,
    store: Arc<RegistryStore>,
    write_timeout: Duration,
}

impl std::fmt::Debug for CpEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpEngine").field("write_timeout", &self.write_timeout).finish_non_exhaustive()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl CpEngine {
    /// Starts the engine over `store` (see the module docs).
    ///
    /// # Errors
    /// The data directory cannot be used, or openraft does not start.
    pub async fn start(store: Arc<RegistryStore>, config: CpConfig) -> Result<Self, CpStartError> {
        let storage = |source| CpStartError::Storage { dir: config.dir.clone(), source };
        std::fs::create_dir_all(&config.dir).map_err(storage)?;
        let log = LogStore::open(&config.dir.join("raft.redb")).map_err(storage)?;
        let machine = StateMachine::open(store.clone(), &config.dir.join("snapshots")).map_err(storage)?;
        let raft_config = Config {
            cluster_name: "janus".to_owned(),
            heartbeat_interval: millis(config.heartbeat),
            election_timeout_min: millis(config.election_timeout.0),
            election_timeout_max: millis(config.election_timeout.1),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_after_logs),
            ..Config::default()
        }
        .validate()
        .map_err(|e| CpStartError::Raft(e.to_string()))?;
        let raft = Raft::new(config.node_id, Arc::new(raft_config), NoPeers, log, machine)
            .await
            .map_err(|e| CpStartError::Raft(e.to_string()))?;
        if !raft.is_initialized().await.map_err(|e| CpStartError::Raft(e.to_string()))? {
            info!(node_id = config.node_id, "initialising a one-member Raft group");
            raft.initialize(BTreeMap::from([(config.node_id, BasicNode::default())]))
                .await
                .map_err(|e| CpStartError::Raft(e.to_string()))?;
        }
        let write_timeout = config.election_timeout.1 + Duration::from_secs(1);
        raft.wait(Some(write_timeout * 5))
            .state(ServerState::Leader, "the single member leads")
            .await
            .map_err(|e| CpStartError::Raft(e.to_string()))?;
        Ok(Self { raft, store, write_timeout })
    }

    /// Proposes `command`, waits for it to be applied and returns its outcome.
    ///
    /// # Errors
    /// The command did not commit within the election timeout plus a second;
    /// the inner `Result` is the command's own (deterministic) outcome.
    pub async fn write(
        &self,
        command: Command,
    ) -> Result<Result<CommandOutcome, janus_core::RegistryError>, CpWriteError> {
        let request = RaftRequest { at: self.store.now().0, command };
        match tokio::time::timeout(self.write_timeout, self.raft.client_write(request)).await {
            Ok(Ok(response)) => Ok(response.data.0),
            Ok(Err(error)) => Err(CpWriteError(format!("no Raft leader can take the write: {error}"))),
            Err(_) => Err(CpWriteError(format!(
                "the write was not committed within {} ms: no Raft quorum",
                self.write_timeout.as_millis()
            ))),
        }
    }

    /// A linearizable read fence (ReadIndex): confirms with a quorum that this
    /// node leads, waits until the state machine applied everything committed
    /// before the read, and returns that log index.
    ///
    /// # Errors
    /// No quorum confirmed leadership within the election timeout plus a second.
    pub async fn linearize(&self) -> Result<u64, CpWriteError> {
        match tokio::time::timeout(self.write_timeout, self.raft.ensure_linearizable(ReadPolicy::ReadIndex)).await {
            Ok(Ok(read)) => Ok(read.index()),
            Ok(Err(error)) => Err(CpWriteError(format!("cannot confirm a linearizable read: {error}"))),
            Err(_) => Err(CpWriteError(format!(
                "no Raft quorum confirmed the read within {} ms",
                self.write_timeout.as_millis()
            ))),
        }
    }

    /// The index of the last log entry applied to the registry.
    #[must_use]
    pub fn applied_index(&self) -> u64 {
        // Copy out at once: holding the metrics borrow can stall Raft (openraft FAQ).
        let applied = self.raft.metrics().borrow_watched().last_applied;
        applied.map_or(0, |log_id| log_id.index)
    }

    /// Stops Raft (after the front ends stopped).
    pub async fn shutdown(&self) {
        // An error means Raft had stopped already.
        let _ = self.raft.shutdown().await;
    }
}
