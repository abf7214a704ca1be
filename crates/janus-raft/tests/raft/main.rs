//! janus-raft's integration tests, one binary: openraft's storage suite
//! (`storage`), what survives a restart (`restart`), and lost or corrupted
//! data refused at start-up (`lost_data`).

mod lost_data;
mod restart;
mod storage;
