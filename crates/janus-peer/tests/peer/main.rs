//! janus-peer's integration tests, one binary: the HTTP transport against
//! the conformance suite (`transport_conformance`) and three engines over
//! real loopback HTTP (`http_cluster`).

mod http_cluster;
mod transport_conformance;
