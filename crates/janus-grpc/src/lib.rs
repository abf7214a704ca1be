//! The Nacos 2.x gRPC front end of Janus.
//!
//! This crate will own the gRPC listener (`/Request/request` and
//! `/BiRequestStream/requestBiStream`), the connection table, the bi-stream
//! with its pushes, and the naming and connection handlers that Nacos 2.x/3.x
//! SDKs talk to (`docs/grpc-design.md`).
//!
//! What is here now is the wire layer ([`wire`]): the protobuf envelope, the
//! message `type` strings, the JSON bodies, and the conversion between a
//! [`wire::proto::Payload`] and typed messages. It has no I/O.

pub mod wire;
