//! Test fixtures for Janus.
//!
//! - [`cluster`]: in-process Raft clusters whose transport can partition
//!   any node, with restart, join and wait helpers.
//! - [`ap_cluster`]: in-process AP (Distro) clusters whose network can
//!   partition, blackhole and slow nodes; crash and restart.
//! - [`linearizability`]: a Wing–Gong checker (with Lowe's memoization) that
//!   decides whether a recorded concurrent history could have come from one
//!   copy of a sequential model.

pub mod ap_cluster;
pub mod cluster;
pub mod linearizability;
