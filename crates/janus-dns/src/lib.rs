//! The Janus DNS front end: SRV, A, AAAA and TXT answers of healthy instances,
//! read from the registry through [`janus_core::RegistryService`].
//!
//! The name scheme is in [`name`] and in `docs/dns.md`. Answers follow the HTTP
//! list rules (enabled instances, protect threshold, healthy only), in a
//! weighted random order, with a TTL from the service's `janus.dns.ttl`
//! metadata, the namespace setting, or the default (0, as Consul).
//!
//! Response codes: NXDOMAIN for unknown names in our domain, NOERROR with no
//! records (and the SOA) for known names without matching records, REFUSED
//! outside our domain (never recursion), FORMERR for malformed queries (hickory
//! answers undecodable messages itself), NOTIMP for other opcodes, BADVERS for
//! EDNS versions above 0. UDP answers honour the client's EDNS payload size and
//! set TC when they do not fit; TCP answers are complete.
//!
//! # Layout
//! - [`name`]: parsing query names.
//! - `answer`: choosing instances (cached per service revision) and building records.
//! - [`RegistryHandler`]: hickory's `RequestHandler` over the registry.
//! - [`start`]: binding UDP and TCP and serving.

mod answer;
mod handler;
pub mod name;
mod server;

pub use answer::TTL_METADATA_KEY;
pub use handler::RegistryHandler;
pub use server::{DnsHandle, start};
