//! Janus over real sockets, one test binary with a module per area:
//! - `serving`: serving, overload shedding, request deadlines and graceful
//!   shutdown with open watches;
//! - `hardening`: every HTTP path bounded (slow bodies, slowloris, body
//!   limits, the connection cap, separate read and write pools);
//! - `dns`: the DNS interface over UDP and TCP, asked with `janus_client::dns`;
//! - `grpc`: the Nacos gRPC front end with the Rust `nacos-sdk`, in process
//!   and as a child process that is killed or frozen;
//! - `cluster`: three nodes forming one Raft group and one AP ring over
//!   their cluster addresses, and clients failing over between them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;
mod dns;
mod grpc;
mod hardening;
mod serving;
