//! The Janus CP engine: namespaces, service definitions and the persistent
//! instances of `cp` namespaces, replicated by Raft (openraft, pinned).
//!
//! openraft's generics stay inside this crate. What it owns:
//! - [`TypeConfig`]: log entries carry a [`janus_core::Command`] stamped with the
//!   leader's time; responses are the command's deterministic outcome.
//! - [`LogStore`]: the durable Raft log in redb. One write transaction (one
//!   fsync) per append batch, so concurrent client writes share an fsync.
//! - [`StateMachine`]: applies commands to the node's [`janus_core::RegistryStore`];
//!   snapshots are the registry's [`janus_core::CpState`], written atomically.
//! - [`CpEngine`]: start (bootstrap a one-member group on first start), write
//!   with a deadline, shut down. Peers and membership changes come next.

mod engine;
mod log_store;
mod network;
mod state_machine;
mod types;

pub use engine::{CpConfig, CpEngine, CpStartError, CpWriteError};
pub use log_store::LogStore;
pub use state_machine::StateMachine;
pub use types::{RaftRequest, RaftResponse, TypeConfig};
