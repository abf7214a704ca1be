//! openraft's storage conformance suite against our log store and state machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use janus_core::{RegistryConfig, RegistryStore};
use janus_raft::{LogStore, StateMachine, TypeConfig};
use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().unwrap();
        let log = LogStore::open(&dir.path().join("raft.log")).unwrap();
        let store = Arc::new(RegistryStore::new(RegistryConfig::default(), 16));
        let machine = StateMachine::open(store, &dir.path().join("snapshots")).unwrap();
        Ok((dir, log, machine))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_openrafts_storage_suite() {
    Suite::test_all(Builder).await.unwrap();
}
