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
//! EDNS versions above 0.
//!
//! UDP answers use the client's EDNS payload size capped at
//! [`RegistryHandler::with_max_udp_payload`] (default
//! [`DEFAULT_MAX_UDP_PAYLOAD`], 1232 bytes), 512 bytes without EDNS. An answer
//! whose records do not fit is sent with TC and no records; SRV glue that does
//! not fit is left out. TCP answers are complete. UDP responses may be rate
//! limited per source prefix ([`rrl`]).
//!
//! # Layout
//! - [`name`]: parsing query names.
//! - `answer`: choosing instances (cached per service revision) and building records.
//! - [`RegistryHandler`]: hickory's `RequestHandler` over the registry.
//! - [`rrl`]: response rate limiting of UDP answers.
//! - [`start`]: binding UDP and TCP and serving.

mod answer;
mod handler;
pub mod name;
pub mod rrl;
mod server;
#[cfg(test)]
mod tests;

pub use answer::TTL_METADATA_KEY;
pub use handler::{DEFAULT_MAX_UDP_PAYLOAD, MIN_UDP_PAYLOAD, RegistryHandler};
pub use rrl::{RrlConfig, RrlStats};
pub use server::{DnsHandle, start};
