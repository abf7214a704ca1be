//! The AP engine: owns the writes of ephemeral instances in `ap` namespaces.
//!
//! Today it is the single-node engine: writes go straight into the node's
//! [`RegistryStore`], and a reaper task expires leases from the registry's
//! deadline queue (sleeping until the next deadline, woken early when a write
//! makes an earlier one). The Distro replication of a cluster plugs in here.
//!
//! # Layout
//! - [`ApEngine`]: the handle the node calls for `ap` writes.
//! - [`reaper`]: the lease expiry task.

mod engine;
pub mod reaper;

pub use engine::{ApConfig, ApEngine};
