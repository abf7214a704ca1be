//! The Raft log as versions before the journal kept it: a redb database
//! (`raft.redb`) with an `entries` table (index → postcard-encoded entry) and
//! a `meta` table (`vote`, `committed`, `purged`). Read once, to copy it into
//! a journal; nothing writes this format any more.

use std::io;
use std::path::Path;

use openraft::type_config::alias::LogIdOf;
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition, TableError};

use crate::TypeConfig;
use crate::journal::{Change, Journal, decode};

const ENTRIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");

/// Entries copied per journal write.
const CHUNK: usize = 4096;

fn failed(path: &Path, error: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: cannot read the Raft log of an earlier version: {error}", path.display()))
}

/// The redb log an earlier version kept where the journal `journal` now goes.
pub(crate) fn path_for(journal: &Path) -> std::path::PathBuf {
    journal.with_extension("redb")
}

/// Copies the redb log beside `journal` into a new journal at `journal`, if
/// there is one and no journal yet; the database is removed once the journal
/// is durable. A crash before that leaves the database to copy again.
pub(crate) fn migrate(journal: &Path) -> io::Result<()> {
    let old = path_for(journal);
    if journal.exists() || !old.exists() {
        return Ok(());
    }
    let db = Database::open(&old).map_err(|e| failed(&old, e))?;
    let txn = db.begin_read().map_err(|e| failed(&old, e))?;
    let copying = journal.with_extension("log.migrating");
    let _ = std::fs::remove_file(&copying);
    let fresh = Journal::open(&copying)?;
    match txn.open_table(META) {
        Ok(meta) => {
            let value = |key: &str| -> io::Result<Option<Vec<u8>>> {
                Ok(meta.get(key).map_err(|e| failed(&old, e))?.map(|v| v.value().to_vec()))
            };
            let optional_id = |bytes: Option<Vec<u8>>| -> io::Result<Option<LogIdOf<TypeConfig>>> {
                Ok(bytes.map(|b| decode::<Option<LogIdOf<TypeConfig>>>(&b)).transpose()?.flatten())
            };
            let vote = value("vote")?;
            let purged = optional_id(value("purged")?)?;
            let committed = optional_id(value("committed")?)?;
            let mut changes = Vec::new();
            if let Some(bytes) = &vote {
                changes.push(Change::Vote { bytes });
            }
            if let Some(upto) = purged {
                changes.push(Change::Purge { upto });
            }
            if let Some(id) = committed {
                changes.push(Change::Committed { id });
            }
            fresh.commit(&changes)?;
        }
        Err(TableError::TableDoesNotExist(_)) => {}
        Err(error) => return Err(failed(&old, error)),
    }
    match txn.open_table(ENTRIES) {
        Ok(entries) => {
            let mut chunk: Vec<(u64, Vec<u8>)> = Vec::with_capacity(CHUNK);
            for item in entries.iter().map_err(|e| failed(&old, e))? {
                let (index, bytes) = item.map_err(|e| failed(&old, e))?;
                chunk.push((index.value(), bytes.value().to_vec()));
                if chunk.len() == CHUNK {
                    commit_entries(&fresh, &mut chunk)?;
                }
            }
            commit_entries(&fresh, &mut chunk)?;
        }
        Err(TableError::TableDoesNotExist(_)) => {}
        Err(error) => return Err(failed(&old, error)),
    }
    drop(fresh);
    drop(txn);
    drop(db);
    std::fs::rename(&copying, journal)?;
    if let Some(parent) = journal.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    std::fs::remove_file(&old)?;
    tracing::info!(from = %old.display(), to = %journal.display(), "Raft log copied from the redb file of an earlier version");
    Ok(())
}

fn commit_entries(journal: &Journal, chunk: &mut Vec<(u64, Vec<u8>)>) -> io::Result<()> {
    let changes: Vec<Change<'_>> =
        chunk.iter().map(|(index, bytes)| Change::Entry { index: *index, bytes: bytes.as_slice() }).collect();
    journal.commit(&changes)?;
    chunk.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use openraft::entry::RaftEntry as _;
    use openraft::type_config::alias::{CommittedLeaderIdOf, EntryOf, VoteOf};

    use super::*;
    use crate::journal::encode;

    fn log_id(index: u64) -> LogIdOf<TypeConfig> {
        LogIdOf::<TypeConfig>::new(CommittedLeaderIdOf::<TypeConfig> { term: 2, node_id: 1 }, index)
    }

    #[test]
    fn a_redb_log_of_an_earlier_version_is_copied_into_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("raft.log");
        {
            let db = Database::create(path_for(&journal)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut entries = txn.open_table(ENTRIES).unwrap();
                for index in 4..=9 {
                    let entry = EntryOf::<TypeConfig>::new_blank(log_id(index));
                    entries.insert(index, encode(&entry).unwrap().as_slice()).unwrap();
                }
                let mut meta = txn.open_table(META).unwrap();
                meta.insert("vote", encode(&VoteOf::<TypeConfig>::new(2, 1)).unwrap().as_slice()).unwrap();
                meta.insert("purged", encode(&Some(log_id(3))).unwrap().as_slice()).unwrap();
                meta.insert("committed", encode(&Some(log_id(8))).unwrap().as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        migrate(&journal).unwrap();
        assert!(!path_for(&journal).exists(), "the database is removed once copied");
        let copied = Journal::open(&journal).unwrap();
        let indexes: Vec<u64> = copied.entries(..).unwrap().iter().map(|e| e.log_id.index).collect();
        assert_eq!(indexes, (4..=9).collect::<Vec<_>>());
        assert_eq!(copied.vote().unwrap(), Some(VoteOf::<TypeConfig>::new(2, 1)));
        assert_eq!(copied.purged(), Some(log_id(3)));
        assert_eq!(copied.committed(), Some(log_id(8)));
        // Nothing to do the second time.
        migrate(&journal).unwrap();
    }
}
