//! Revisions never go back, also across restarts (Consul's index rules:
//! never 0, never decreasing).
//!
//! A node's revisions count every change it saw: Raft applies and ephemeral
//! writes alike. On a restart the registry is rebuilt from the Raft snapshot
//! and log, and ephemeral data comes back from peers or clients, so counting
//! again from 0 would hand out revisions lower than before. So the node
//! reserves revisions in blocks: the file `revision-floor` in the data
//! directory holds a revision no revision handed out so far exceeds, and a
//! restart starts counting there. The reservation is raised (written and
//! synced) well before the revisions reach it: at start-up, and whenever
//! they come within half a block of it (checked every [`KEEP_INTERVAL`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use janus_core::RegistryStore;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The file in a data directory holding the reserved revision.
pub const FILE: &str = "revision-floor";

/// Revisions reserved at a time. A node handing out 100,000 revisions a
/// second writes the file about every 80 s; each restart skips at most this
/// many revisions.
pub const BLOCK: u64 = 1 << 24;

/// How often the reservation is checked against the revisions handed out.
pub const KEEP_INTERVAL: Duration = Duration::from_millis(500);

/// Reads the floor in `data_dir`, raises the registry's revision to it and
/// reserves the next block, durably, before anything is served.
///
/// # Errors
/// The file cannot be read, does not hold a number, or cannot be written.
pub fn restore(data_dir: &Path, store: &RegistryStore) -> anyhow::Result<u64> {
    let path = data_dir.join(FILE);
    let floor = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().with_context(|| {
            format!(
                "{} does not hold a revision ({text:?}); if it was damaged, remove it and set it to a number \
                 larger than any revision clients have seen",
                path.display()
            )
        })?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    store.write(|registry, _| registry.raise_revision_floor(floor.max(1)));
    let reserved = floor.max(1).saturating_add(BLOCK);
    write(&path, reserved)?;
    Ok(reserved)
}

/// Keeps the reservation ahead of the revisions handed out, until `shutdown`.
pub fn keep(data_dir: &Path, store: Arc<RegistryStore>, mut reserved: u64, shutdown: CancellationToken) {
    let path = data_dir.join(FILE);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(KEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            let revision = store.read(janus_core::Registry::revision);
            if revision.saturating_add(BLOCK / 2) < reserved {
                continue;
            }
            let next = revision.saturating_add(BLOCK);
            let target = path.clone();
            match tokio::task::spawn_blocking(move || write(&target, next)).await {
                Ok(Ok(())) => reserved = next,
                Ok(Err(error)) => warn!(error = %format!("{error:#}"), "cannot raise the revision floor"),
                Err(error) => warn!(%error, "the revision floor writer failed"),
            }
        }
    });
}

/// Writes `revision` to `path` atomically and durably (temporary file,
/// sync, rename, sync of the directory).
fn write(path: &Path, revision: u64) -> anyhow::Result<()> {
    use std::io::Write as _;
    let tmp: PathBuf = path.with_extension("tmp");
    let context = || format!("cannot write {}", path.display());
    {
        let mut file = std::fs::File::create(&tmp).with_context(context)?;
        file.write_all(format!("{revision}\n").as_bytes()).with_context(context)?;
        file.sync_all().with_context(context)?;
    }
    std::fs::rename(&tmp, path).with_context(context)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(context)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use janus_core::RegistryConfig;

    #[test]
    fn a_restart_starts_above_everything_handed_out_before() {
        let dir = tempfile::tempdir().unwrap();
        let first = RegistryStore::new(RegistryConfig::default(), 16);
        let reserved = restore(dir.path(), &first).unwrap();
        let handed_out = first.read(janus_core::Registry::revision);
        assert!(handed_out >= 1 && handed_out < reserved);
        let second = RegistryStore::new(RegistryConfig::default(), 16);
        restore(dir.path(), &second).unwrap();
        assert!(second.read(janus_core::Registry::revision) >= reserved);
        let public = janus_core::NamespaceId::public();
        assert!(second.read(|r| r.namespace_revision(&public)) >= reserved, "public reads at least the floor");
    }

    #[test]
    fn a_damaged_floor_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "garbage").unwrap();
        let error = restore(dir.path(), &RegistryStore::new(RegistryConfig::default(), 16)).unwrap_err();
        assert!(format!("{error:#}").contains("revision-floor"), "{error:#}");
    }
}
