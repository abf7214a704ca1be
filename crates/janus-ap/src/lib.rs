//! The AP engine: owns the writes of ephemeral instances in `ap` namespaces.
//!
//! Alone, writes go straight into the node's [`janus_core::RegistryStore`]
//! and a reaper task expires leases. In a cluster the engine runs the Distro
//! protocol of `janus-distro` (see `docs/ap-protocol.md`): every instance has
//! one owner among the live members, which runs its lease; writes that reach
//! another node are forwarded to it (or applied where they landed if it does
//! not answer); every change goes to every peer through a coalescing,
//! bounded queue per peer; a periodic verify round repairs drift; a starting
//! node loads a snapshot from a peer before it takes writes.
//!
//! # Layout
//! - [`ApEngine`] (`engine`): the handle the node calls for `ap` writes, and
//!   its start-up; `inbound`: the receiving end of peer messages.
//! - `cluster`: the state the engine's tasks share ([`ApCluster`] configures it).
//! - `forward`: batched forwarding of client writes to their owners.
//! - `sync`: one sender per peer; `probe`: the prober and hand-over on ring
//!   changes; `verify`: the anti-entropy round; `load`: the start-up snapshot.
//! - [`reaper`]: lease expiry (the owner's only).
//! - `transport`: how messages reach peers (the workspace's one
//!   [`janus_core::transport::PeerTransport`], on the Distro channel at
//!   [`route`]); [`ApEngine`] is the channel's receiving handler.

mod cluster;
mod engine;
mod forward;
mod inbound;
mod load;
mod probe;
pub mod reaper;
mod sync;
mod transport;
mod verify;

pub use cluster::ApCluster;
pub use engine::{ApConfig, ApEngine};
pub use inbound::PeerMessageError;
pub use janus_distro::{DistroConfig, MessageKind, PeerState};
pub use transport::route;
