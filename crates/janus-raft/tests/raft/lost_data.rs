//! A node whose Raft data is missing, cut short or corrupted refuses to
//! start, naming the file, instead of serving partial or altered data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use janus_core::model::NamespaceSpec;
use janus_core::{Command, Mode, NamespaceId, RegistryConfig, RegistryStore};
use janus_raft::{CpConfig, CpEngine, CpStartError, NoPeers};

fn config(dir: &Path) -> CpConfig {
    CpConfig {
        node_id: 1,
        dir: dir.join("raft"),
        heartbeat: Duration::from_millis(50),
        election_timeout: (Duration::from_millis(150), Duration::from_millis(300)),
        snapshot_after_logs: 10,
        logs_kept_after_snapshot: 0,
        members: BTreeMap::new(),
        join: false,
    }
}

async fn start(dir: &Path) -> Result<(CpEngine, Arc<RegistryStore>), CpStartError> {
    let store = Arc::new(RegistryStore::new(RegistryConfig::default(), 16));
    let engine = CpEngine::start(store.clone(), config(dir), Arc::new(NoPeers)).await?;
    Ok((engine, store))
}

/// Starts a node, creates `count` namespaces from `first`, stops it.
async fn run(dir: &Path, first: usize, count: usize) {
    let (engine, _) = start(dir).await.unwrap();
    for n in first..first + count {
        let spec = NamespaceSpec::new(NamespaceId::new(&format!("ns-{n}")).unwrap(), None, None, Mode::Ap).unwrap();
        engine.write(Command::CreateNamespace(spec)).await.unwrap().unwrap();
    }
    // The flusher raises the marks at most once a second.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let spec = NamespaceSpec::new(NamespaceId::new("last").unwrap(), None, None, Mode::Ap);
    let _ = engine.write(Command::CreateNamespace(spec.unwrap())).await;
    engine.shutdown().await;
}

fn refusal(error: CpStartError) -> (PathBuf, String) {
    let text = error.to_string();
    match error {
        CpStartError::Lost { file, .. } => (file, text),
        other => panic!("expected a refusal for lost data, got: {other}"),
    }
}

fn snapshot(dir: &Path) -> PathBuf {
    dir.join("raft").join("snapshots").join("snapshot.bin")
}

#[tokio::test]
async fn a_restart_with_intact_data_serves_everything() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 0, 25).await;
    let (engine, store) = start(dir.path()).await.unwrap();
    assert_eq!(store.read(|r| r.namespaces().len()), 27, "public, 25 created and `last`");
    engine.shutdown().await;
}

#[tokio::test]
async fn a_deleted_raft_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 0, 5).await;
    std::fs::remove_dir_all(dir.path().join("raft")).unwrap();
    let (file, message) = refusal(start(dir.path()).await.expect_err("must refuse"));
    assert_eq!(file, dir.path().join("raft").join("raft.log"));
    assert!(message.contains("raft.log") && message.contains("missing"), "{message}");
    assert!(message.contains("docs/consistency.md"), "says what to do: {message}");
}

#[tokio::test]
async fn an_emptied_log_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 0, 5).await;
    std::fs::File::create(dir.path().join("raft").join("raft.log")).unwrap().set_len(0).unwrap();
    let (file, message) = refusal(start(dir.path()).await.expect_err("must refuse"));
    assert_eq!(file, dir.path().join("raft").join("raft.log"));
    assert!(message.contains("empty"), "{message}");
}

#[tokio::test]
async fn an_older_copy_of_the_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 0, 3).await;
    let old = tempfile::tempdir().unwrap();
    let log = dir.path().join("raft").join("raft.log");
    std::fs::copy(&log, old.path().join("raft.log")).unwrap();
    run(dir.path(), 3, 30).await;
    std::fs::copy(old.path().join("raft.log"), &log).unwrap();
    let (file, message) = refusal(start(dir.path()).await.expect_err("must refuse"));
    assert_eq!(file, log);
    assert!(message.contains("ends at index"), "{message}");
}

#[tokio::test]
async fn a_flipped_byte_in_the_snapshot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 0, 30).await;
    let path = snapshot(dir.path());
    let mut bytes = std::fs::read(&path).expect("30 entries with snapshots every 10 leave a snapshot");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let (file, message) = refusal(start(dir.path()).await.expect_err("must refuse"));
    assert_eq!(file, path);
    assert!(message.contains("checksum"), "{message}");
}

#[tokio::test]
async fn a_flipped_byte_in_the_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 0, 5).await;
    let path = dir.path().join("raft").join("raft.log");
    let mut bytes = std::fs::read(&path).unwrap();
    // Within the records, not the zeros the file is grown with.
    let middle = bytes.iter().rposition(|b| *b != 0).unwrap() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let (file, message) = refusal(start(dir.path()).await.expect_err("must refuse"));
    assert_eq!(file, path);
    assert!(message.contains("damaged"), "{message}");
}

#[tokio::test]
async fn a_deleted_snapshot_under_a_compacted_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 0, 30).await;
    std::fs::remove_file(snapshot(dir.path())).unwrap();
    let (file, message) = refusal(start(dir.path()).await.expect_err("must refuse"));
    assert_eq!(file, snapshot(dir.path()));
    assert!(message.contains("snapshot is missing"), "{message}");
}
