//! Test fixtures for Janus.
//!
//! - [`linearizability`]: a Wing–Gong checker (with Lowe's memoization) that
//!   decides whether a recorded concurrent history could have come from one
//!   copy of a sequential model.

pub mod linearizability;
