//! The Janus CP engine: namespaces, service definitions and the persistent
//! instances of `cp` namespaces, replicated by Raft (openraft, pinned).
//!
//! openraft's generics stay inside this crate. What it owns:
//! - [`TypeConfig`]: log entries carry a [`janus_core::Command`] stamped with the
//!   leader's time; responses are the command's deterministic outcome.
//! - [`LogStore`]: the durable Raft log, an append-only journal of
//!   checksummed records (`raft.log`). `append` returns at once (entries
//!   readable from memory); one flusher thread appends everything queued in
//!   one write and one fsync and then reports it durable, so
//!   concurrent client writes share fsyncs and replication never waits on
//!   the local disk. A marks file beside the log (`raft.marks`) records how
//!   far it had come, so a lost or cut-short log is refused at start.
//! - [`StateMachine`]: applies commands to the node's [`janus_core::RegistryStore`];
//!   snapshots are the registry's [`janus_core::CpState`], written atomically
//!   and checksummed (a corrupted one is refused, never loaded).
//! - [`CpEngine`]: start (bootstrap the configured group, or this node alone,
//!   on first start), write with a deadline (forwarded to the leader from a
//!   follower), linearizable read fences, shut down.
//! - [`MembershipChange`]: add a learner, promote it, remove a member, at run
//!   time through any node.
//! - [`RpcKind`]: the Raft messages peers exchange, sent through the
//!   workspace's one [`janus_core::transport::PeerTransport`] (the server
//!   supplies one, [`NoPeers`] serves a one-member group); [`CpEngine`] is
//!   the receiving [`janus_core::transport::PeerHandler`] of the Raft channel.

mod coalesce;
mod engine;
mod journal;
mod leader;
mod legacy;
mod log_store;
mod marks;
mod membership;
mod network;
mod state_machine;
mod types;

pub use engine::{CpConfig, CpEngine, CpOperation, CpStartError, CpWriteError, PeerRpcError};
pub use log_store::LogStore;
pub use membership::{GroupNodes, Members, MembershipChange};
pub use network::{NoPeers, RpcKind};
pub use state_machine::StateMachine;
pub use types::{RaftRequest, RaftResponse, TypeConfig};
