//! The server's integration tests, one binary with a module per area: the
//! native API and the Nacos and Eureka front ends through the router
//! (`api`, `nacos`, `nacos_v2`, `eureka`, `fuzz`), the Nacos gRPC protocol
//! with a raw client (`grpc`), leases and lifecycle on a
//! running node (`leases`, `lifecycle`), configuration (`config`,
//! `config_sources`), and the `janus` binary as a process (`cli`, `process`,
//! `cluster_process`).

mod support;

mod agent;
mod api;
mod auth;
mod cli;
mod cluster_process;
mod config;
mod config_sources;
mod eureka;
mod fuzz;
mod grpc;
mod leases;
mod lifecycle;
mod nacos;
mod nacos_v2;
mod process;
