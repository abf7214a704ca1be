//! [`LogStore`]: the Raft log in an append-only journal file
//! (`journal.rs`), written by one flusher thread that commits in groups.
//!
//! `append` returns at once: the entries go into an in-memory tail (so log
//! readers, such as replication to followers, see them immediately) and onto
//! the flusher's queue. The flusher takes everything queued, appends it to the
//! journal in one write followed by one `fdatasync`, and only then tells
//! openraft the entries are durable. So the Raft core keeps replicating while
//! the disk syncs, and every client write that arrives during one sync shares
//! the next. Vote changes, truncations and purges go through the same queue,
//! in order, and their callers wait until they are durable. The committed log
//! id is only a hint (openraft allows it to lag): it rides along with a commit
//! that makes its entry durable, at most once a second, and never costs a sync
//! of its own.
//!
//! Logs written by earlier versions in a redb database (`raft.redb` beside
//! the journal) are copied into a journal once, at open, and the database is
//! then removed.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::TypeConfig;
use crate::journal::{Change, Journal, encode};

/// Operations queued for the flusher before it must catch up (a full queue
/// makes `append` wait: back-pressure on the Raft core, never unbounded memory).
const QUEUE_CAPACITY: usize = 4096;

/// Most operations one commit takes, so one commit stays short.
const MAX_OPS_PER_COMMIT: usize = 1024;

fn stopped() -> io::Error {
    io::Error::other("the Raft log flusher has stopped")
}

type Entry = EntryOf<TypeConfig>;
type LogId = LogIdOf<TypeConfig>;

/// A write for the flusher; each is applied in queue order.
enum Op {
    /// Entries already in the tail; `done` is told once they are durable.
    Append { entries: Vec<(LogId, Vec<u8>)>, done: IOFlushed<TypeConfig> },
    /// Remove entries from index `from` on.
    Truncate { from: u64, done: oneshot::Sender<io::Result<()>> },
    /// Remove entries up to and including `upto`, and record it as purged.
    Purge { upto: LogId, done: oneshot::Sender<io::Result<()>> },
    /// Record the vote (postcard-encoded); `done` is told once it is durable.
    Vote { bytes: Vec<u8>, done: oneshot::Sender<io::Result<()>> },
}

/// What the store's handles and the flusher share.
struct Shared {
    /// The marks file the flusher raises (see `crate::marks`), if any.
    marks: Option<PathBuf>,
    log: OpenLog,
    /// Appended entries that may not be on disk yet, by index.
    tail: Mutex<BTreeMap<u64, Entry>>,
    /// The latest committed log id openraft reported, not yet written.
    committed: Mutex<Option<LogId>>,
}

/// The open journal, and a signal that fires once it is closed.
struct OpenLog {
    // Fields drop in declaration order: the file is closed before `closed` drops.
    journal: Journal,
    closed: tokio::sync::watch::Sender<()>,
}

/// The durable Raft log; cheap to clone (readers share the journal).
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
    ops: mpsc::Sender<Op>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

impl LogStore {
    /// Opens (or creates) the log at `path` and starts its flusher thread,
    /// which ends when the last handle is dropped.
    ///
    /// # Errors
    /// The file cannot be opened or is not a Raft log, a record in it is
    /// damaged, or the thread cannot start.
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_marked(path, None)
    }

    /// [`Self::open`], with the flusher raising the marks file `marks` (see
    /// `crate::marks`) as the committed index becomes durable.
    ///
    /// # Errors
    /// As [`Self::open`]; every error names the file.
    pub(crate) fn open_marked(path: &Path, marks: Option<PathBuf>) -> io::Result<Self> {
        crate::legacy::migrate(path)?;
        let journal = Journal::open(path).map_err(|e| named(path, &e))?;
        let durable_last = journal.last_index();
        let (closed, _) = tokio::sync::watch::channel(());
        let shared = Arc::new(Shared {
            marks,
            log: OpenLog { journal, closed },
            tail: Mutex::new(BTreeMap::new()),
            committed: Mutex::new(None),
        });
        let (ops, queue) = mpsc::channel(QUEUE_CAPACITY);
        let flusher = shared.clone();
        std::thread::Builder::new()
            .name("janus-raft-log".to_owned())
            .spawn(move || flush_loop(&flusher, queue, durable_last))?;
        Ok(Self { shared, ops })
    }

    /// Resolves once every copy of this store (the Raft core's, the
    /// replication tasks' readers) is gone, the flusher has finished and the
    /// journal file is closed.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.shared.log.closed.subscribe();
        async move { while receiver.changed().await.is_ok() {} }
    }

    fn journal(&self) -> &Journal {
        &self.shared.log.journal
    }

    /// Queues `op` and waits until the flusher made it durable.
    async fn durable(&self, op: impl FnOnce(oneshot::Sender<io::Result<()>>) -> Op) -> io::Result<()> {
        let (done, flushed) = oneshot::channel();
        self.ops.send(op(done)).await.map_err(|_| stopped())?;
        flushed.await.map_err(|_| stopped())?
    }
}

/// `error` with the file's name in front, unless it has it already.
fn named(path: &Path, error: &io::Error) -> io::Error {
    let text = error.to_string();
    if text.starts_with(&path.display().to_string()) {
        return io::Error::new(error.kind(), text);
    }
    io::Error::new(error.kind(), format!("{}: {text}", path.display()))
}

/// How often, at most, the flusher raises the marks file.
const MARKS_INTERVAL: Duration = Duration::from_secs(1);

/// How often, at most, the flusher writes the committed hint.
const HINT_INTERVAL: Duration = Duration::from_secs(1);

/// The committed index the marks file should be raised to, and when it last was.
struct MarkState {
    pending: Option<u64>,
    written: Option<Instant>,
}

impl MarkState {
    /// Writes the pending mark if it is time (or `now_or_never`).
    fn raise(&mut self, shared: &Shared, force: bool) {
        let (Some(path), Some(committed)) = (&shared.marks, self.pending) else { return };
        if !force && self.written.is_some_and(|at| at.elapsed() < MARKS_INTERVAL) {
            return;
        }
        match crate::marks::write(path, crate::marks::Marks { committed }) {
            Ok(()) => {
                self.pending = None;
                self.written = Some(Instant::now());
            }
            Err(error) => tracing::warn!(%error, "cannot raise the Raft marks"),
        }
    }
}

/// The flusher: waits for work, takes everything queued (up to a limit),
/// commits it in one write and one sync, then answers every waiter.
/// `durable_last` is the last index on disk.
fn flush_loop(shared: &Shared, mut queue: mpsc::Receiver<Op>, mut durable_last: Option<u64>) {
    let journal = &shared.log.journal;
    let mut marks = MarkState { pending: None, written: None };
    // When the committed hint was last written (see the module docs).
    let mut hint_written: Option<Instant> = None;
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_OPS_PER_COMMIT {
            match queue.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let last_after = batch.iter().fold(durable_last, |last, op| match op {
            Op::Append { entries, .. } => entries.iter().map(|(id, _)| Some(id.index)).fold(last, Ord::max),
            Op::Truncate { from, .. } => last.filter(|l| l < from),
            Op::Purge { .. } | Op::Vote { .. } => last,
        });
        // The committed hint is written only with (or after) its entry.
        let committed = {
            let mut pending = shared.committed.lock();
            match *pending {
                Some(id)
                    if last_after.is_some_and(|last| id.index <= last)
                        && hint_written.is_none_or(|at| at.elapsed() >= HINT_INTERVAL) =>
                {
                    hint_written = Some(Instant::now());
                    pending.take()
                }
                _ => None,
            }
        };
        let result = journal.commit(&changes(&batch, committed));
        if result.is_ok() {
            durable_last = last_after;
            if let Some(id) = committed {
                marks.pending = Some(id.index);
            }
        }
        let mut flushed = Vec::new();
        for op in batch {
            let outcome = result.as_ref().copied().map_err(|e| io::Error::new(e.kind(), e.to_string()));
            match op {
                Op::Append { entries, done } => {
                    if outcome.is_ok() {
                        flushed.extend(entries.into_iter().map(|(id, _)| id));
                    }
                    done.io_completed(outcome);
                }
                Op::Truncate { done, .. } | Op::Purge { done, .. } | Op::Vote { done, .. } => {
                    // The waiter may have given up; nothing to do then.
                    let _ = done.send(outcome);
                }
            }
        }
        // Durable now: drop them from the tail unless a newer entry took the index.
        {
            let mut tail = shared.tail.lock();
            for id in flushed {
                if tail.get(&id.index).is_some_and(|entry| entry.log_id == id) {
                    tail.remove(&id.index);
                }
            }
        }
        marks.raise(shared, false);
    }
    // Every handle is gone: leave the latest committed hint behind, if its entry is durable.
    let committed = shared.committed.lock().take().filter(|id| durable_last.is_some_and(|last| id.index <= last));
    if let Some(id) = committed {
        match journal.commit(&[Change::Committed { id }]) {
            Ok(()) => marks.pending = Some(id.index),
            Err(error) => {
                tracing::warn!(%error, file = %journal.path().display(), "cannot record the committed log id at shutdown");
            }
        }
    }
    marks.raise(shared, true);
}

/// The journal records of `batch`, and of the committed hint if it is due.
fn changes(batch: &[Op], committed: Option<LogId>) -> Vec<Change<'_>> {
    let mut changes = Vec::with_capacity(batch.len() + 1);
    for op in batch {
        match op {
            Op::Append { entries, .. } => {
                changes.extend(entries.iter().map(|(id, bytes)| Change::Entry { index: id.index, bytes }));
            }
            Op::Truncate { from, .. } => changes.push(Change::Truncate { from: *from }),
            Op::Purge { upto, .. } => changes.push(Change::Purge { upto: *upto }),
            Op::Vote { bytes, .. } => changes.push(Change::Vote { bytes }),
        }
    }
    if let Some(id) = committed {
        changes.push(Change::Committed { id });
    }
    changes
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        let mut found: BTreeMap<u64, Entry> =
            self.shared.tail.lock().range(range.clone()).map(|(i, e)| (*i, e.clone())).collect();
        let tail_start = found.keys().next().copied().unwrap_or(u64::MAX);
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => i.saturating_add(1).min(tail_start),
            Bound::Excluded(i) => (*i).min(tail_start),
            Bound::Unbounded => tail_start,
        };
        if start < end {
            for entry in self.journal().entries(start..end)? {
                found.insert(entry.log_id.index, entry);
            }
        }
        Ok(found.into_values().collect())
    }

    async fn read_vote(&mut self) -> io::Result<Option<VoteOf<TypeConfig>>> {
        self.journal().vote()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> io::Result<LogState<TypeConfig>> {
        let purged = self.journal().purged();
        let in_tail = self.shared.tail.lock().values().next_back().map(|e| e.log_id);
        let last = match in_tail {
            Some(id) => Some(id),
            None => self.journal().last_log_id()?.or(purged),
        };
        Ok(LogState { last_purged_log_id: purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<TypeConfig>) -> io::Result<()> {
        let bytes = encode(vote)?;
        self.durable(|done| Op::Vote { bytes, done }).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        // A hint that may lag: written with the commit that makes its entry durable.
        if committed.is_some() {
            *self.shared.committed.lock() = committed;
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        Ok(self.journal().committed())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut encoded = Vec::with_capacity(entries.len());
        for entry in &entries {
            encoded.push((entry.log_id, encode(entry)?));
        }
        // Readable before this returns; durable when `callback` is told.
        self.shared.tail.lock().extend(entries.into_iter().map(|e| (e.log_id.index, e)));
        self.ops.send(Op::Append { entries: encoded, done: callback }).await.map_err(|_| stopped())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let from = last_log_id.map_or(0, |id| id.index + 1);
        self.shared.tail.lock().retain(|index, _| *index < from);
        self.durable(|done| Op::Truncate { from, done }).await
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        self.durable(|done| Op::Purge { upto: log_id, done }).await?;
        self.shared.tail.lock().retain(|index, _| *index > log_id.index);
        Ok(())
    }
}
