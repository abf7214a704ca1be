//! [`LogStore`]: the Raft log in a redb database.
//!
//! Tables: `entries` (index → postcard-encoded entry) and `meta` (vote,
//! committed log id, last purged log id). Every `append` is one write
//! transaction committed with `Durability::Immediate` before openraft is told
//! the entries are flushed, so a batch of client writes shares one fsync.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::TypeConfig;

const ENTRIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";

fn io_error(error: impl std::fmt::Display) -> io::Error {
    io::Error::other(error.to_string())
}

fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(io_error)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(io_error)
}

/// The durable Raft log; cheap to clone (readers share the database).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<OpenLog>,
}

/// The open database, and a signal that fires once it is closed.
struct OpenLog {
    // Fields drop in declaration order: the file is closed before `closed` drops.
    db: Database,
    closed: tokio::sync::watch::Sender<()>,
}

impl std::ops::Deref for OpenLog {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.db
    }
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

impl LogStore {
    /// Opens (or creates) the log at `path`.
    ///
    /// # Errors
    /// The file cannot be opened or is not a redb database.
    pub fn open(path: &Path) -> io::Result<Self> {
        let db = Database::create(path).map_err(io_error)?;
        let txn = db.begin_write().map_err(io_error)?;
        txn.open_table(ENTRIES).map_err(io_error)?;
        txn.open_table(META).map_err(io_error)?;
        txn.commit().map_err(io_error)?;
        let (closed, _) = tokio::sync::watch::channel(());
        Ok(Self { db: Arc::new(OpenLog { db, closed }) })
    }

    /// Resolves once every copy of this store (the Raft core's, the
    /// replication tasks' readers) is gone and the database file is closed.
    pub(crate) fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.db.closed.subscribe();
        async move { while receiver.changed().await.is_ok() {} }
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &str) -> io::Result<Option<T>> {
        let txn = self.db.begin_read().map_err(io_error)?;
        let table = txn.open_table(META).map_err(io_error)?;
        table.get(key).map_err(io_error)?.map(|v| decode(v.value())).transpose()
    }

    fn write_meta<T: Serialize>(&self, key: &str, value: &T) -> io::Result<()> {
        let bytes = encode(value)?;
        let txn = self.db.begin_write().map_err(io_error)?;
        {
            let mut table = txn.open_table(META).map_err(io_error)?;
            table.insert(key, bytes.as_slice()).map_err(io_error)?;
        }
        txn.commit().map_err(io_error)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<EntryOf<TypeConfig>>> {
        let txn = self.db.begin_read().map_err(io_error)?;
        let table = txn.open_table(ENTRIES).map_err(io_error)?;
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut entries = Vec::new();
        for item in table.range(start..).map_err(io_error)? {
            let (index, bytes) = item.map_err(io_error)?;
            if !range.contains(&index.value()) {
                break;
            }
            entries.push(decode(bytes.value())?);
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> io::Result<Option<VoteOf<TypeConfig>>> {
        self.read_meta(VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> io::Result<LogState<TypeConfig>> {
        let purged = self.read_meta::<Option<LogIdOf<TypeConfig>>>(PURGED)?.flatten();
        let txn = self.db.begin_read().map_err(io_error)?;
        let table = txn.open_table(ENTRIES).map_err(io_error)?;
        let last = match table.last().map_err(io_error)? {
            Some((_, bytes)) => Some(decode::<EntryOf<TypeConfig>>(bytes.value())?.log_id),
            None => purged,
        };
        Ok(LogState { last_purged_log_id: purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<TypeConfig>) -> io::Result<()> {
        self.write_meta(VOTE, vote)
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<TypeConfig>>) -> io::Result<()> {
        self.write_meta(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogIdOf<TypeConfig>>> {
        Ok(self.read_meta::<Option<LogIdOf<TypeConfig>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = EntryOf<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let txn = self.db.begin_write().map_err(io_error)?;
        {
            let mut table = txn.open_table(ENTRIES).map_err(io_error)?;
            for entry in entries {
                let bytes = encode(&entry)?;
                table.insert(entry.log_id.index, bytes.as_slice()).map_err(io_error)?;
            }
        }
        // Durable before it is acknowledged.
        txn.commit().map_err(io_error)?;
        callback.io_completed(Ok(()));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<TypeConfig>>) -> io::Result<()> {
        let from = last_log_id.map_or(0, |id| id.index + 1);
        let txn = self.db.begin_write().map_err(io_error)?;
        {
            let mut table = txn.open_table(ENTRIES).map_err(io_error)?;
            table.retain_in(from.., |_, _| false).map_err(io_error)?;
        }
        txn.commit().map_err(io_error)
    }

    async fn purge(&mut self, log_id: LogIdOf<TypeConfig>) -> io::Result<()> {
        let bytes = encode(&Some(log_id))?;
        let txn = self.db.begin_write().map_err(io_error)?;
        {
            let mut meta = txn.open_table(META).map_err(io_error)?;
            meta.insert(PURGED, bytes.as_slice()).map_err(io_error)?;
            let mut table = txn.open_table(ENTRIES).map_err(io_error)?;
            table.retain_in(..=log_id.index, |_, _| false).map_err(io_error)?;
        }
        txn.commit().map_err(io_error)
    }
}
