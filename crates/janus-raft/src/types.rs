//! The openraft type configuration.

use std::fmt;

use janus_core::{Command, CommandOutcome, RegistryError};
use serde::{Deserialize, Serialize};

/// A log entry's payload: a command and the leader's clock when it was proposed
/// (the time every node applies it at, so leases and timestamps agree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaftRequest {
    /// Leader time in milliseconds.
    pub at: u64,
    /// The write.
    pub command: Command,
}

impl fmt::Display for RaftRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}@{}", self.command, self.at)
    }
}

/// What applying an entry produced; a refusal is an outcome like any other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaftResponse(pub Result<CommandOutcome, RegistryError>);

openraft::declare_raft_types!(
    /// Janus's Raft types.
    pub TypeConfig:
        D = RaftRequest,
        R = RaftResponse,
);
