//! Test fixtures for Janus.
//!
//! - [`cluster`]: in-process Raft clusters whose transport can partition
//!   any node, with restart, join and wait helpers.
//! - [`linearizability`]: a Wing–Gong checker (with Lowe's memoization) that
//!   decides whether a recorded concurrent history could have come from one
//!   copy of a sequential model.

pub mod cluster;
pub mod linearizability;
