//! The testkit's integration tests, one binary: the in-memory network and
//! the transport conformance suite (`network`), in-process Raft and AP
//! clusters (`raft_cluster`, `ap_cluster`), and linearizability of recorded
//! CP histories (`linearizable_history`).

mod ap_cluster;
mod linearizable_history;
mod network;
mod raft_cluster;
