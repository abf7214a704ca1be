//! The Nacos gRPC wire format (`docs/grpc-design.md` §1).
//!
//! Every message is a protobuf [`proto::Payload`]: a [`proto::Metadata`] that
//! names the message `type` (the Java simple class name, see [`types`]) and
//! carries the headers, and a body whose bytes are JSON ([`json`]).
//! [`envelope`] converts between the two levels.

pub mod envelope;
pub mod json;
pub mod proto;
pub mod types;
