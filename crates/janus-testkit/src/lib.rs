//! Test fixtures for Janus.
//!
//! - [`net`]: the one in-memory network both cluster fixtures' nodes talk
//!   through (a [`janus_core::transport::PeerTransport`] per node), which
//!   partitions, isolates, blackholes and slows nodes and counts messages.
//! - [`cluster`]: in-process Raft clusters on that network, with restart,
//!   join and wait helpers.
//! - [`ap_cluster`]: in-process AP (Distro) clusters on that network; crash
//!   and restart.
//! - [`transport_conformance`]: what every peer transport must do, run
//!   against the network here and against the HTTP transport in `janus-peer`.
//! - [`ports`]: loopback ports outside the ephemeral range, for addresses
//!   that must be named before anything binds them.
//! - [`linearizability`]: a Wing–Gong checker (with Lowe's memoization) that
//!   decides whether a recorded concurrent history could have come from one
//!   copy of a sequential model.

pub mod ap_cluster;
pub mod cluster;
pub mod linearizability;
pub mod net;
pub mod ports;
pub mod transport_conformance;
