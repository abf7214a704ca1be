//! The Janus registry: data model, validation and the in-memory state machine.
//!
//! This crate owns what a registry *is*, independent of how it is replicated or
//! served: namespaces (with their `ap`/`cp` mode), services, clusters, instances,
//! heartbeat leases, self-preservation, the protect threshold, revisions and the
//! change stream. It does no I/O: time comes in as [`Millis`], and the only tokio
//! parts used are `sync` channels for watches and the clock.
//!
//! # Layout
//! - [`name`]: validated names and the keys built from them.
//! - [`model`]: namespaces, services, instances and the specs that create them.
//! - [`validate`]: the limits every field is checked against.
//! - [`lease`]: the deadline queue that expires ephemeral instances.
//! - [`preservation`]: Eureka-style self-preservation accounting.
//! - [`registry`]: [`Registry`], the state machine (`&mut self` + `now`);
//!   `registry::cp` holds the replicated [`Command`]s and the [`CpState`] snapshots carry.
//! - [`replica`]: the records the AP engine replicates, their versions and
//!   the stable hashes ownership is decided by; `Registry` applies them.
//! - [`select`]: instance selection with Nacos's protect threshold.
//! - [`store`]: [`RegistryStore`], the registry behind a lock plus its watches.
//! - [`service`]: [`RegistryService`], the trait every front end talks to.
//! - [`status`]: [`status::ClusterStatus`], what a node knows of its cluster.
//! - [`transport`]: [`transport::PeerTransport`], the one way both engines
//!   call peers, its [`transport::CallError`], and the receiving
//!   [`transport::PeerHandler`] (the contract only; no I/O).
//!
//! Engines are the only writers: the AP engine (`janus-ap`, replicating
//! ephemeral instances by the Distro protocol of `janus-distro`) and the CP
//! engine (`janus-raft`, applying Raft-committed [`Command`]s). Front ends read
//! and write through [`RegistryService`].

pub mod change;
mod counter;
pub mod error;
pub mod lease;
pub mod model;
pub mod name;
pub mod preservation;
pub mod registry;
pub mod replica;
pub mod select;
pub mod service;
pub mod status;
pub mod store;
pub mod time;
pub mod transport;
pub mod validate;
pub mod watch;

pub use change::{Change, ChangeKind};
pub use error::RegistryError;
pub use model::{Instance, Metadata, Mode};
pub use name::{ClusterName, GroupName, InstanceKey, NamespaceId, ServiceKey, ServiceName};
pub use registry::cp::{Command, CommandOutcome, CpState};
pub use registry::{Registry, RegistryConfig};
pub use replica::{NodeId, Record, RecordBody, ServiceRecords, Version};
pub use service::RegistryService;
pub use store::{RegistryStore, StoreView};
pub use time::{Clock, Millis};
