//! [`Journal`]: the Raft log's file, an append-only sequence of checksummed
//! records, as etcd's WAL is.
//!
//! A commit of the flusher (`log_store.rs`) is one `pwrite` of the batch's
//! records at the end of the file and one `fdatasync`. Nothing is rewritten in
//! place: a truncation, a purge, a vote and the committed hint are records
//! too, and the state is what replaying them in order gives. When most of the
//! file is dead (purged or truncated entries, old votes) it is compacted: the
//! live records are written to a new file that replaces the old one by rename.
//!
//! Layout: [`MAGIC`], then records of `len: u32 LE`, `xxh3-64 of the payload:
//! u64 LE`, `payload` (`len` bytes: a kind byte, then the kind's body), then
//! zeros: the file is grown [`PREALLOCATE`] bytes at a time, written with
//! zeros, so that a commit only overwrites data blocks and its `fdatasync`
//! has no file size to record (on this project's VM: 70–75 µs per sync
//! instead of about 100 µs when every commit grows the file).
//!
//! Opening replays the file. A record that is cut short or fails its checksum
//! at the very end is the write a crash interrupted (never acknowledged, as
//! its `fdatasync` did not return): the file is cut back to the last whole
//! record. A bad record with a good one anywhere after it is corruption: the
//! open fails with `InvalidData` naming the file and the byte.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
use parking_lot::RwLock;
use serde::Serialize;
use serde::de::DeserializeOwned;
use xxhash_rust::xxh3::xxh3_64;

use crate::TypeConfig;

type Entry = EntryOf<TypeConfig>;
type LogId = LogIdOf<TypeConfig>;
type Vote = VoteOf<TypeConfig>;

/// The first bytes of every journal file.
pub(crate) const MAGIC: &[u8; 16] = b"janus-raft-log\x00\x01";

/// A record's header: payload length and checksum.
const HEADER: usize = 12;

/// The largest payload a record may have (an entry is bounded far below by
/// the peer message limit; this only stops a corrupted length early).
const MAX_PAYLOAD: usize = 256 << 20;

/// How far ahead of its last record the file is grown (with zeros).
const PREALLOCATE: u64 = 1 << 20;

/// A file is compacted when it is larger than this and more than half dead.
const COMPACT_FROM: u64 = 4 << 20;

const ENTRY: u8 = 1;
const TRUNCATE: u8 = 2;
const PURGE: u8 = 3;
const VOTE: u8 = 4;
const COMMITTED: u8 = 5;

fn invalid(path: &Path, detail: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {detail}", path.display()))
}

fn named(path: &Path, error: &io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

pub(crate) fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(io::Error::other)
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// One change to the log, as the flusher writes it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change<'a> {
    /// An entry (its postcard encoding) at `index`.
    Entry { index: u64, bytes: &'a [u8] },
    /// Entries from `from` on are gone.
    Truncate { from: u64 },
    /// Entries up to and including `upto` are gone, and `upto` is the last purged.
    Purge { upto: LogId },
    /// The vote (postcard-encoded) is now this.
    Vote { bytes: &'a [u8] },
    /// The committed log id is at least this (a hint).
    Committed { id: LogId },
}

/// Where an entry's bytes are in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    offset: u64,
    len: u32,
}

impl Span {
    /// The bytes of the whole record holding it.
    fn record_bytes(self) -> u64 {
        u64::from(self.len) + (HEADER + 1 + 8) as u64
    }
}

/// What replaying the records gives.
#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<u64, Span>,
    vote: Option<Vec<u8>>,
    purged: Option<LogId>,
    committed: Option<LogId>,
    /// Where the next record goes.
    end: u64,
    /// Bytes of records of entries still in the log.
    live_entry_bytes: u64,
}

impl State {
    fn apply(&mut self, change: Change<'_>, body_offset: u64) {
        match change {
            Change::Entry { index, bytes } => {
                let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                let span = Span { offset: body_offset, len };
                self.live_entry_bytes += span.record_bytes();
                if let Some(old) = self.entries.insert(index, span) {
                    self.live_entry_bytes -= old.record_bytes();
                }
            }
            Change::Truncate { from } => {
                let gone = self.entries.split_off(&from);
                self.drop_entries(gone);
            }
            Change::Purge { upto } => {
                let kept = self.entries.split_off(&upto.index.saturating_add(1));
                let gone = std::mem::replace(&mut self.entries, kept);
                self.drop_entries(gone);
                self.purged = Some(upto);
            }
            Change::Vote { bytes } => self.vote = Some(bytes.to_vec()),
            Change::Committed { id } => self.committed = Some(id),
        }
    }

    fn drop_entries(&mut self, gone: BTreeMap<u64, Span>) {
        for span in gone.values() {
            self.live_entry_bytes -= span.record_bytes();
        }
    }

    /// Whether rewriting the file would shrink it by more than half.
    fn worth_compacting(&self) -> bool {
        self.end > COMPACT_FROM && self.end > 2 * (self.live_entry_bytes + 1024)
    }
}

/// Appends the record of `change` to `out`; returns the offset in `out` of
/// an entry's bytes.
fn write_record(out: &mut Vec<u8>, change: Change<'_>) -> io::Result<usize> {
    let start = out.len();
    // The header is filled in once the payload is there.
    out.extend_from_slice(&[0; HEADER]);
    let payload_at = out.len();
    let mut body_at = 0;
    match change {
        Change::Entry { index, bytes } => {
            out.push(ENTRY);
            out.extend_from_slice(&index.to_le_bytes());
            body_at = out.len() - payload_at;
            out.extend_from_slice(bytes);
        }
        Change::Truncate { from } => {
            out.push(TRUNCATE);
            out.extend_from_slice(&from.to_le_bytes());
        }
        Change::Purge { upto } => {
            out.push(PURGE);
            out.extend_from_slice(&encode(&upto)?);
        }
        Change::Vote { bytes } => {
            out.push(VOTE);
            out.extend_from_slice(bytes);
        }
        Change::Committed { id } => {
            out.push(COMMITTED);
            out.extend_from_slice(&encode(&id)?);
        }
    }
    let len = out.len() - payload_at;
    if len > MAX_PAYLOAD {
        out.truncate(start);
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a Raft log record over 256 MiB"));
    }
    // At most MAX_PAYLOAD (checked above): it fits in a u32.
    #[allow(clippy::cast_possible_truncation)]
    let len32 = len as u32;
    let checksum = xxh3_64(&out[payload_at..]);
    out[start..start + 4].copy_from_slice(&len32.to_le_bytes());
    out[start + 4..payload_at].copy_from_slice(&checksum.to_le_bytes());
    Ok(payload_at + body_at)
}

/// The record at `at` of `data`, if it is whole and its checksum holds: its
/// payload and where the next record starts.
fn record_at(data: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let header = data.get(at..at.checked_add(HEADER)?)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    if len == 0 || len > MAX_PAYLOAD {
        return None;
    }
    let checksum = u64::from_le_bytes(header[4..].try_into().ok()?);
    let payload = data.get(at + HEADER..(at + HEADER).checked_add(len)?)?;
    (xxh3_64(payload) == checksum).then_some((payload, at + HEADER + len))
}

/// The change a payload records.
fn parse(payload: &[u8]) -> Option<Change<'_>> {
    let (kind, body) = payload.split_first()?;
    let index = |body: &[u8]| body.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    Some(match *kind {
        ENTRY => Change::Entry { index: index(body)?, bytes: body.get(8..)? },
        TRUNCATE => Change::Truncate { from: index(body)? },
        PURGE => Change::Purge { upto: decode(body).ok()? },
        VOTE => Change::Vote { bytes: body },
        COMMITTED => Change::Committed { id: decode(body).ok()? },
        _ => return None,
    })
}

/// Syncs the directory holding `path`, so that a file created or renamed
/// there stays after a crash.
fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(parent)?.sync_all()
}

/// The open journal: its file, and what its records say. Readers share it
/// (behind a lock held only to look up and read); the flusher alone writes.
pub(crate) struct Journal {
    path: PathBuf,
    inner: RwLock<Open>,
    /// After a compaction failed, none is tried again before this.
    compact_after: parking_lot::Mutex<Option<std::time::Instant>>,
}

/// How long after a failed compaction the next may be tried.
const COMPACT_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

struct Open {
    file: Arc<File>,
    state: State,
    /// The file's length: past `state.end`, zeros.
    allocated: u64,
}

impl Journal {
    /// Opens the journal at `path`, creating it if there is none, and
    /// replays it (see the module docs).
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let data = std::fs::read(path)?;
        if data.is_empty() {
            file.write_all(MAGIC)?;
            file.sync_all()?;
            sync_parent(path)?;
            let state = State { end: MAGIC.len() as u64, ..State::default() };
            let open = Open { file: Arc::new(file), state, allocated: MAGIC.len() as u64 };
            return Ok(Self::new(path, open));
        }
        if !data.starts_with(MAGIC) {
            return Err(invalid(path, "not a Janus Raft log (its first bytes are not the journal's)"));
        }
        let mut state = State::default();
        let mut at = MAGIC.len();
        while let Some((payload, next)) = record_at(&data, at) {
            let change = parse(payload).ok_or_else(|| invalid(path, format!("an unreadable record at byte {at}")))?;
            state.apply(change, (at + HEADER + 1 + 8) as u64);
            at = next;
        }
        let mut allocated = data.len() as u64;
        // Zeros after the last record are the grown, unused part of the file.
        if data[at..].iter().any(|byte| *byte != 0) {
            if (at + 1..data.len()).any(|later| record_at(&data, later).is_some()) {
                return Err(invalid(
                    path,
                    format!("the record at byte {at} is damaged (its checksum fails) and whole records follow it"),
                ));
            }
            tracing::warn!(file = %path.display(), at, dropped = data.len() - at,
                "the Raft log ends with a record cut short by a crash (never acknowledged); dropped");
            file.set_len(at as u64)?;
            file.sync_all()?;
            allocated = at as u64;
        }
        state.end = at as u64;
        Ok(Self::new(path, Open { file: Arc::new(file), state, allocated }))
    }

    fn new(path: &Path, open: Open) -> Self {
        Self { path: path.to_owned(), inner: RwLock::new(open), compact_after: parking_lot::Mutex::new(None) }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `changes` durably (one write, one `fdatasync`), then makes
    /// them visible to readers; compacts the file if it is mostly dead.
    pub(crate) fn commit(&self, changes: &[Change<'_>]) -> io::Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let (file, end, allocated) = {
            let open = self.inner.read();
            (open.file.clone(), open.state.end, open.allocated)
        };
        let mut buffer = Vec::new();
        let mut body_offsets = Vec::with_capacity(changes.len());
        for change in changes {
            let body_at = write_record(&mut buffer, *change)?;
            body_offsets.push(end + body_at as u64);
        }
        let written = end + buffer.len() as u64;
        let grown = if written > allocated {
            // Grown with zeros ahead, in the same sync (see the module docs).
            buffer.resize(buffer.len() + PREALLOCATE as usize, 0);
            written + PREALLOCATE
        } else {
            allocated
        };
        file.write_all_at(&buffer, end).map_err(|e| named(&self.path, &e))?;
        // Durable before anyone is told.
        file.sync_data().map_err(|e| named(&self.path, &e))?;
        let compact = {
            let mut open = self.inner.write();
            for (change, body_offset) in changes.iter().zip(body_offsets) {
                open.state.apply(*change, body_offset);
            }
            open.state.end = written;
            open.allocated = grown;
            open.state.worth_compacting()
        };
        if compact {
            self.compact().map_err(|e| named(&self.path, &e))?;
        }
        Ok(())
    }

    /// Compacts the file (see [`Self::rewrite`]). A rewrite that fails before
    /// the new file replaces the old one leaves the old one in use, complete:
    /// it is only a warning. Once the new file has replaced it, a directory
    /// that cannot be synced is an error (a crash could bring the old file
    /// back without the commits made after).
    fn compact(&self) -> io::Result<()> {
        if self.compact_after.lock().is_some_and(|after| std::time::Instant::now() < after) {
            return Ok(());
        }
        let fresh_path = self.path.with_extension("log.compacting");
        match self.rewrite(&fresh_path) {
            Ok(()) => sync_parent(&self.path),
            Err(error) => {
                tracing::warn!(%error, file = %self.path.display(),
                    "cannot compact the Raft log; it stays as it is, and compaction is tried again in a minute");
                let _ = std::fs::remove_file(&fresh_path);
                *self.compact_after.lock() = Some(std::time::Instant::now() + COMPACT_RETRY);
                Ok(())
            }
        }
    }

    /// Writes the live records into `fresh_path`, syncs it, renames it over
    /// the journal and from then on uses it.
    fn rewrite(&self, fresh_path: &Path) -> io::Result<()> {
        let (entries, fresh_state) = {
            let open = self.inner.read();
            let mut buffer = MAGIC.to_vec();
            let mut state = State::default();
            let mut meta = Vec::new();
            if let Some(bytes) = &open.state.vote {
                meta.push((Change::Vote { bytes }, 0));
            }
            if let Some(upto) = open.state.purged {
                meta.push((Change::Purge { upto }, 0));
            }
            if let Some(id) = open.state.committed {
                meta.push((Change::Committed { id }, 0));
            }
            for (change, _) in &meta {
                write_record(&mut buffer, *change)?;
                state.apply(*change, 0);
            }
            let mut bytes = Vec::new();
            for (index, span) in &open.state.entries {
                bytes.resize(span.len as usize, 0);
                open.file.read_exact_at(&mut bytes, span.offset)?;
                let change = Change::Entry { index: *index, bytes: &bytes };
                let body_at = write_record(&mut buffer, change)?;
                state.apply(change, body_at as u64);
            }
            state.end = buffer.len() as u64;
            (buffer, state)
        };
        let mut fresh = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(fresh_path)?;
        fresh.write_all(&entries)?;
        fresh.sync_all()?;
        // Held across the rename: no reader opens the old file's entries by the new file's offsets.
        let mut open = self.inner.write();
        std::fs::rename(fresh_path, &self.path)?;
        let before = {
            let before = open.state.end;
            let allocated = fresh_state.end;
            *open = Open { file: Arc::new(fresh), state: fresh_state, allocated };
            before
        };
        drop(open);
        tracing::debug!(file = %self.path.display(), before, after = entries.len(), "Raft log compacted");
        Ok(())
    }

    /// The entries of `indexes` that are in the file, in order.
    pub(crate) fn entries(&self, range: impl std::ops::RangeBounds<u64>) -> io::Result<Vec<Entry>> {
        let open = self.inner.read();
        let mut found = Vec::new();
        let mut bytes = Vec::new();
        for span in open.state.entries.range(range).map(|(_, span)| *span) {
            bytes.resize(span.len as usize, 0);
            open.file.read_exact_at(&mut bytes, span.offset).map_err(|e| named(&self.path, &e))?;
            found.push(decode(&bytes).map_err(|e| named(&self.path, &e))?);
        }
        Ok(found)
    }

    /// The last entry's log id, if the file holds entries.
    pub(crate) fn last_log_id(&self) -> io::Result<Option<LogId>> {
        let last = self.inner.read().state.entries.keys().next_back().copied();
        match last {
            Some(index) => Ok(self.entries(index..=index)?.pop().map(|entry| entry.log_id)),
            None => Ok(None),
        }
    }

    /// The index of the last entry in the file.
    pub(crate) fn last_index(&self) -> Option<u64> {
        self.inner.read().state.entries.keys().next_back().copied()
    }

    pub(crate) fn vote(&self) -> io::Result<Option<Vote>> {
        self.inner.read().state.vote.as_deref().map(decode).transpose().map_err(|e| named(&self.path, &e))
    }

    pub(crate) fn purged(&self) -> Option<LogId> {
        self.inner.read().state.purged
    }

    pub(crate) fn committed(&self) -> Option<LogId> {
        self.inner.read().state.committed
    }

    /// The file's size in bytes (for tests and status).
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.inner.read().state.end
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use openraft::entry::RaftEntry as _;
    use openraft::type_config::alias::CommittedLeaderIdOf;

    use super::*;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderIdOf::<TypeConfig> { term, node_id: 1 }, index)
    }

    fn entry(term: u64, index: u64) -> Vec<u8> {
        encode(&Entry::new_blank(log_id(term, index))).unwrap()
    }

    /// A directory of its own (removed when the first value drops) and the journal's path in it.
    fn scratch() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.log");
        (dir, path)
    }

    fn indexes(journal: &Journal) -> Vec<u64> {
        journal.entries(..).unwrap().iter().map(|e| e.log_id.index).collect()
    }

    fn append(journal: &Journal, term: u64, indexes: std::ops::RangeInclusive<u64>) {
        let bytes: Vec<(u64, Vec<u8>)> = indexes.map(|i| (i, entry(term, i))).collect();
        let changes: Vec<Change<'_>> =
            bytes.iter().map(|(index, b)| Change::Entry { index: *index, bytes: b }).collect();
        journal.commit(&changes).unwrap();
    }

    #[test]
    fn replaying_gives_the_state_the_writes_made() {
        let (_dir, path) = scratch();
        {
            let journal = Journal::open(&path).unwrap();
            append(&journal, 1, 1..=10);
            let vote = encode(&Vote::new(2, 1)).unwrap();
            journal.commit(&[Change::Truncate { from: 8 }, Change::Vote { bytes: &vote }]).unwrap();
            append(&journal, 2, 8..=9);
            journal.commit(&[Change::Purge { upto: log_id(1, 3) }, Change::Committed { id: log_id(2, 8) }]).unwrap();
        }
        let journal = Journal::open(&path).unwrap();
        assert_eq!(indexes(&journal), (4..=9).collect::<Vec<_>>());
        assert_eq!(journal.entries(8..=8).unwrap()[0].log_id, log_id(2, 8));
        assert_eq!(journal.last_log_id().unwrap(), Some(log_id(2, 9)));
        assert_eq!(journal.vote().unwrap(), Some(Vote::new(2, 1)));
        assert_eq!(journal.purged(), Some(log_id(1, 3)));
        assert_eq!(journal.committed(), Some(log_id(2, 8)));
    }

    #[test]
    fn a_write_cut_short_at_the_end_is_dropped() {
        let (_dir, path) = scratch();
        let journal = Journal::open(&path).unwrap();
        append(&journal, 1, 1..=5);
        let whole = journal.len();
        append(&journal, 1, 6..=6);
        let after = journal.len();
        drop(journal);
        assert!(std::fs::metadata(&path).unwrap().len() > after, "grown ahead with zeros");
        assert_eq!(indexes(&Journal::open(&path).unwrap()), (1..=6).collect::<Vec<_>>(), "zeros are not a torn write");
        // A crash in the middle of the last write: half of its record reached the disk,
        // in the grown part of the file, or past the end of a file cut short.
        let half = whole + (after - whole) / 2;
        for cut_file in [false, true] {
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[usize::try_from(half).unwrap()..].fill(0);
            if cut_file {
                bytes.truncate(usize::try_from(half).unwrap());
            }
            std::fs::write(&path, &bytes).unwrap();
            let journal = Journal::open(&path).unwrap();
            assert_eq!(indexes(&journal), (1..=5).collect::<Vec<_>>());
            assert_eq!(journal.len(), whole);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), whole, "the torn bytes are cut off");
            append(&journal, 1, 6..=7);
            assert_eq!(indexes(&Journal::open(&path).unwrap()), (1..=7).collect::<Vec<_>>());
            // Back to 1..=6 for the second case.
            drop(journal);
            let journal = Journal::open(&path).unwrap();
            journal.commit(&[Change::Truncate { from: 7 }]).unwrap();
        }
    }

    #[test]
    fn a_damaged_record_followed_by_whole_ones_is_refused() {
        let (_dir, path) = scratch();
        let journal = Journal::open(&path).unwrap();
        append(&journal, 1, 1..=20);
        let middle = usize::try_from(journal.len() / 2).unwrap();
        drop(journal);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[middle] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let error = Journal::open(&path).err().expect("must refuse");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        let message = error.to_string();
        assert!(message.contains("raft.log") && message.contains("damaged"), "{message}");
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused() {
        let (_dir, path) = scratch();
        std::fs::write(&path, b"redb\x1a\x0a\xa9\x0d\x0a and more").unwrap();
        let error = Journal::open(&path).err().expect("must refuse");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_compaction_that_cannot_be_written_leaves_the_old_file_in_use() {
        let (_dir, path) = scratch();
        // The compaction's new file cannot be created where a directory is.
        std::fs::create_dir(path.with_extension("log.compacting")).unwrap();
        let journal = Journal::open(&path).unwrap();
        let big = vec![7u8; 64 * 1024];
        for index in 1..=80u64 {
            journal.commit(&[Change::Entry { index, bytes: &big }]).unwrap();
        }
        journal.commit(&[Change::Purge { upto: log_id(1, 79) }]).unwrap();
        assert!(journal.len() > COMPACT_FROM, "not compacted");
        journal.commit(&[Change::Entry { index: 81, bytes: &big }]).unwrap();
        let reopened = Journal::open(&path).unwrap();
        assert_eq!(reopened.inner.read().state.entries.keys().copied().collect::<Vec<_>>(), vec![80, 81]);
        assert_eq!(reopened.purged(), Some(log_id(1, 79)));
    }

    #[test]
    fn a_mostly_dead_file_is_compacted_and_keeps_what_lives() {
        let (_dir, path) = scratch();
        let journal = Journal::open(&path).unwrap();
        let big = vec![7u8; 64 * 1024];
        let vote = encode(&Vote::new(3, 2)).unwrap();
        journal.commit(&[Change::Vote { bytes: &vote }]).unwrap();
        // 96 records of 64 KiB (6 MiB), then all but the last 10 purged.
        for index in 1..=96u64 {
            journal.commit(&[Change::Entry { index, bytes: &big }]).unwrap();
        }
        assert!(journal.len() > COMPACT_FROM);
        journal.commit(&[Change::Purge { upto: log_id(1, 86) }]).unwrap();
        assert!(journal.len() < 1024 * 1024, "compacted to {} bytes", journal.len());
        assert!(!path.with_extension("log.compacting").exists());
        journal.commit(&[Change::Entry { index: 97, bytes: &big }]).unwrap();
        for journal in [&journal, &Journal::open(&path).unwrap()] {
            let open = journal.inner.read();
            assert_eq!(open.state.entries.keys().copied().collect::<Vec<_>>(), (87..=97).collect::<Vec<_>>());
            let mut bytes = vec![0; big.len()];
            open.file.read_exact_at(&mut bytes, open.state.entries[&90].offset).unwrap();
            assert_eq!(bytes, big);
            drop(open);
            assert_eq!(journal.purged(), Some(log_id(1, 86)));
            assert_eq!(journal.vote().unwrap(), Some(Vote::new(3, 2)));
        }
    }
}
