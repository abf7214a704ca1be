//! Marks: how far this node's Raft storage had come, kept beside it (outside
//! the Raft directory), so that storage lost or cut short is detected at
//! start-up instead of serving a fraction of the state.
//!
//! The file (`<raft dir>.marks`, e.g. `janus-data/raft.marks`) holds the
//! highest committed log index known to be durable in the log. The log's
//! flusher raises it at most once a second, after the committed index was
//! written, so the mark never runs ahead of the log. A node that finds a mark
//! but no log, an empty log file, or a log that ends before the mark refuses
//! to start (see `CpEngine::start`).

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// What the marks file records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Marks {
    /// The highest committed log index known durable.
    pub(crate) committed: u64,
}

const KEY: &str = "committed ";

/// The marks file of the Raft directory `dir`: beside it, not inside it.
pub(crate) fn path_for(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_else(|| "raft".into());
    name.push(".marks");
    dir.with_file_name(name)
}

/// Reads the marks at `path`; `None` if there is no file.
pub(crate) fn read(path: &Path) -> io::Result<Option<Marks>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io::Error::new(error.kind(), format!("{}: {error}", path.display()))),
    };
    let committed =
        text.lines().find_map(|line| line.strip_prefix(KEY)).and_then(|n| n.trim().parse::<u64>().ok()).ok_or_else(
            || {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: not a marks file (expected a line `{KEY}<index>`)", path.display()),
                )
            },
        )?;
    Ok(Some(Marks { committed }))
}

/// Writes `marks` to `path` atomically and durably.
pub(crate) fn write(path: &Path, marks: Marks) -> io::Result<()> {
    let tmp = path.with_extension("marks.tmp");
    let attempt = || -> io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(
            format!("# Raft progress of this node; see docs/consistency.md\n{KEY}{}\n", marks.committed).as_bytes(),
        )?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    attempt().map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn marks_live_beside_the_raft_directory_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let raft = dir.path().join("raft");
        let path = path_for(&raft);
        assert_eq!(path, dir.path().join("raft.marks"));
        assert_eq!(read(&path).unwrap(), None);
        write(&path, Marks { committed: 42 }).unwrap();
        assert_eq!(read(&path).unwrap(), Some(Marks { committed: 42 }));
        std::fs::write(&path, "garbage").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("raft.marks"));
    }
}
