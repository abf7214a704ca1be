//! The Nacos 2.x/3.x gRPC front end of Janus (`docs/grpc-design.md`).
//!
//! Nacos SDKs released since 2021 register and subscribe over gRPC on the
//! HTTP port + 1000. This crate serves that protocol on its own listener and
//! sees the registry only through [`janus_core::RegistryService`] (by way of
//! the shared Nacos layer, `janus-nacos`), like every other front end.
//!
//! # Layers
//! - [`wire`]: the protobuf envelope, the message `type` strings and the
//!   JSON bodies (no I/O);
//! - `server`: the bounded listener, one HTTP/2 connection per client, the two
//!   gRPC methods, shutdown ([`GrpcServer`]);
//! - `conn`: a client connection: setup, activity, subscriptions, requests
//!   in flight, close;
//! - `unary`: the checks of every request and the naming handlers;
//! - `framing`: gRPC messages framed without tonic's codec, both methods;
//! - `stream`: the bi-stream: setup and answers in, which push goes next,
//!   the clocks of acknowledgements and client detection; `outbox`: its
//!   body towards the client, which h2 pulls pushes from;
//! - `push`: subscriptions by service and the dispatcher that turns registry
//!   changes into pushes;
//! - `answer`: success and failure payloads in Nacos's styles.
//!
//! Instances registered over a connection are bound to it
//! ([`janus_core::registry::bound`]): no heartbeats, and they are removed
//! when the connection closes or stops answering detection.

mod answer;
mod config;
mod conn;
mod framing;
mod outbox;
mod push;
mod server;
mod stream;
mod unary;
pub mod wire;

pub use config::GrpcConfig;
pub use server::{BI_STREAM_PATH, GrpcDirectory, GrpcServer, GrpcStats, UNARY_PATH};
pub use unary::{Access, AllowAll, Authorizer, RequestContext};
