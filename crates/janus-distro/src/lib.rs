//! The Janus AP replication protocol (Distro-style), without I/O: the
//! decisions and the messages; `janus-ap` drives it with tokio tasks and a
//! transport.
//!
//! - [`Membership`]: the configured members, probed; `Up`, `Suspect`,
//!   `Down`, and whether each has loaded its snapshot.
//! - [`Ring`]: rendezvous ownership over the live members; losing one of N
//!   moves only its 1/N share.
//! - [`Outbox`]: per-peer, bounded queues that coalesce changes per
//!   instance over a short window.
//! - [`digest`]: bucketed checksums for the verify (anti-entropy) round and
//!   the table of when each owner last vouched for a bucket.
//! - [`message`]: the wire messages (postcard).
//! - [`DistroConfig`]: every timing constant and bound, with defaults.
//!
//! The records themselves, their versions and how a registry applies them
//! are in `janus_core::replica`. The full protocol is in `docs/ap-protocol.md`.

mod config;
pub mod digest;
mod membership;
pub mod message;
mod outbox;
mod ring;

pub use config::DistroConfig;
pub use membership::{MemberView, Membership, PeerState};
pub use message::MessageKind;
pub use outbox::Outbox;
pub use ring::Ring;
