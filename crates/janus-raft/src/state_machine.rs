//! [`StateMachine`]: applies committed commands to the node's registry and
//! takes and installs snapshots of its replicated part.
//!
//! The state lives in memory (the registry); on start it is rebuilt from the
//! latest snapshot, and openraft replays the committed log after it. A snapshot
//! file is written to a temporary name, synced, renamed over the old one and
//! the directory synced, so a crash leaves either the old or the new snapshot.
//!
//! Beside the registry it applies [`Command::Auth`] to the node's
//! [`AuthStore`] (users, tokens, grants), which the snapshot carries too.
//!
//! A snapshot (on disk and as sent to a follower) is framed: the magic
//! `JANUSSN3`, the XXH3-64 checksum of the payload (little endian), then the
//! postcard-encoded payload. A snapshot whose frame or checksum does not
//! match is refused with an error naming the file, never loaded. Older
//! snapshots are still read: `JANUSSN2` (before the DNS access rule: every
//! namespace answered) and `JANUSSN1` (before the auth state existed too:
//! no users).

use std::io::{self, Cursor, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt as _;
use janus_auth::{AuthState, AuthStore};
use janus_core::{Command, CommandOutcome, CpState, Millis, RegistryStore};
use openraft::EntryPayload;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use serde::{Deserialize, Serialize};

use crate::{RaftResponse, TypeConfig};

const SNAPSHOT_FILE: &str = "snapshot.bin";

/// The first bytes of every snapshot.
const MAGIC: &[u8; 8] = b"JANUSSN3";
/// The first bytes of a snapshot without the DNS access rule.
const MAGIC_V2: &[u8; 8] = b"JANUSSN2";
/// The first bytes of a snapshot without the auth state either.
const MAGIC_V1: &[u8; 8] = b"JANUSSN1";

fn io_error(error: impl std::fmt::Display) -> io::Error {
    io::Error::other(error.to_string())
}

/// Frames a snapshot payload with the magic and its checksum.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(payload.len() + 16);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(payload).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// Checks a framed snapshot from `source` (a file, or the leader) and decodes it.
fn unframe(bytes: &[u8], source: &str) -> io::Result<SnapshotFile> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, format!("{source}: {what}"));
    if bytes.len() < 16 || ![MAGIC, MAGIC_V2, MAGIC_V1].iter().any(|magic| &bytes[..8] == *magic) {
        return Err(invalid("not a Janus snapshot (bad header)".to_owned()));
    }
    let (checksum, payload) = bytes[8..].split_at(8);
    let mut expected = [0u8; 8];
    expected.copy_from_slice(checksum);
    let actual = xxhash_rust::xxh3::xxh3_64(payload);
    if u64::from_le_bytes(expected) != actual {
        return Err(invalid(format!(
            "checksum mismatch (stored {:016x}, computed {actual:016x}): the snapshot is corrupted",
            u64::from_le_bytes(expected)
        )));
    }
    let decode_error = |e: postcard::Error| invalid(format!("cannot decode the snapshot: {e}"));
    if &bytes[..8] == MAGIC_V1 {
        let old: SnapshotFileV1 = postcard::from_bytes(payload).map_err(decode_error)?;
        return Ok(SnapshotFile { meta: old.meta, state: old.state.into(), auth: AuthState::default() });
    }
    if &bytes[..8] == MAGIC_V2 {
        let old: SnapshotFileV2 = postcard::from_bytes(payload).map_err(decode_error)?;
        return Ok(SnapshotFile { meta: old.meta, state: old.state.into(), auth: old.auth });
    }
    postcard::from_bytes(payload).map_err(decode_error)
}

/// `error` with the path it happened on.
pub(crate) fn named(path: &Path, error: &io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

/// What a snapshot file holds.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMetaOf<TypeConfig>,
    state: CpState,
    auth: AuthState,
}

/// What a `JANUSSN2` snapshot file holds.
#[derive(Deserialize)]
struct SnapshotFileV2 {
    meta: SnapshotMetaOf<TypeConfig>,
    state: CpStateV2,
    auth: AuthState,
}

/// What a `JANUSSN1` snapshot file holds.
#[derive(Deserialize)]
struct SnapshotFileV1 {
    meta: SnapshotMetaOf<TypeConfig>,
    state: CpStateV2,
}

/// The registry's part of a snapshot before the DNS access rule.
#[derive(Deserialize)]
struct CpStateV2 {
    namespaces: Vec<janus_core::model::NamespaceSpec>,
    services: Vec<(janus_core::ServiceKey, janus_core::model::ServiceSettings)>,
    instances: Vec<(janus_core::ServiceKey, janus_core::Instance)>,
}

impl From<CpStateV2> for CpState {
    fn from(old: CpStateV2) -> Self {
        // Every namespace was answered over DNS before the rule existed.
        Self { namespaces: old.namespaces, services: old.services, instances: old.instances, dns_closed: Vec::new() }
    }
}

/// The state machine over a node's registry.
#[derive(Debug, Clone)]
pub struct StateMachine {
    store: Arc<RegistryStore>,
    auth: Arc<AuthStore>,
    dir: PathBuf,
    last_applied: Option<LogIdOf<TypeConfig>>,
    membership: StoredMembershipOf<TypeConfig>,
}

impl StateMachine {
    /// A state machine writing snapshots into `dir`; loads the latest snapshot
    /// there into `store` and a new auth store ([`Self::auth`]), if any.
    ///
    /// # Errors
    /// The directory cannot be created, or the snapshot cannot be read or
    /// fails its checksum (the error names the file).
    pub fn open(store: Arc<RegistryStore>, dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| named(dir, &e))?;
        let mut machine = Self {
            store,
            auth: Arc::default(),
            dir: dir.to_owned(),
            last_applied: None,
            membership: StoredMembershipOf::<TypeConfig>::default(),
        };
        if let Some(file) = machine.read_snapshot_file()? {
            machine.store.write(|registry, _| registry.import_cp(file.state));
            machine.auth.import(file.auth);
            machine.last_applied = file.meta.last_log_id;
            machine.membership = file.meta.last_membership;
        }
        Ok(machine)
    }

    /// The node's users, tokens and grants, as committed.
    #[must_use]
    pub fn auth(&self) -> &Arc<AuthStore> {
        &self.auth
    }

    /// Where the latest snapshot is kept.
    #[must_use]
    pub fn snapshot_path(&self) -> PathBuf {
        self.dir.join(SNAPSHOT_FILE)
    }

    /// The last log id the state machine has applied (or its snapshot covers).
    #[must_use]
    pub fn last_applied(&self) -> Option<LogIdOf<TypeConfig>> {
        self.last_applied
    }

    fn read_snapshot_file(&self) -> io::Result<Option<SnapshotFile>> {
        let path = self.snapshot_path();
        match std::fs::read(&path) {
            Ok(bytes) => unframe(&bytes, &path.display().to_string()).map(Some),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(named(&path, &error)),
        }
    }

    /// Writes `file` as the latest snapshot; returns the framed bytes.
    fn write_snapshot_file(&self, file: &SnapshotFile) -> io::Result<Vec<u8>> {
        let bytes = frame(&postcard::to_stdvec(file).map_err(io_error)?);
        let path = self.snapshot_path();
        let tmp = self.dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        let write = || -> io::Result<()> {
            let mut out = std::fs::File::create(&tmp)?;
            out.write_all(&bytes)?;
            out.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| named(&path, &e))?;
        Ok(bytes)
    }

    fn snapshot_of(meta: SnapshotMetaOf<TypeConfig>, bytes: Vec<u8>) -> SnapshotOf<TypeConfig, Cursor<Vec<u8>>> {
        SnapshotOf::<TypeConfig, Cursor<Vec<u8>>> { meta, snapshot: Cursor::new(bytes) }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(&mut self) -> io::Result<SnapshotOf<TypeConfig, Cursor<Vec<u8>>>> {
        let state = self.store.read(janus_core::Registry::export_cp);
        let auth = self.auth.export();
        let meta =
            SnapshotMetaOf::<TypeConfig> { last_log_id: self.last_applied, last_membership: self.membership.clone() };
        let bytes = self.write_snapshot_file(&SnapshotFile { meta: meta.clone(), state, auth })?;
        Ok(Self::snapshot_of(meta, bytes))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> io::Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>)> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> io::Result<()>
    where
        Strm: futures_util::Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + Send,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            self.last_applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Blank => RaftResponse(Ok(CommandOutcome::Done)),
                EntryPayload::Normal(request) => match request.command {
                    Command::Auth(command) => RaftResponse(Ok(CommandOutcome::Auth(self.auth.apply(command)))),
                    command => {
                        RaftResponse(self.store.write(|registry, _| registry.apply(command, Millis(request.at))))
                    }
                },
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembershipOf::<TypeConfig>::new(Some(entry.log_id), membership);
                    RaftResponse(Ok(CommandOutcome::Done))
                }
            };
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: Self::SnapshotData,
    ) -> io::Result<()> {
        let file = unframe(snapshot.get_ref(), "the snapshot sent by the leader")?;
        let file = SnapshotFile { meta: meta.clone(), state: file.state, auth: file.auth };
        self.write_snapshot_file(&file)?;
        self.store.write(|registry, _| registry.import_cp(file.state));
        self.auth.import(file.auth);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<SnapshotOf<TypeConfig, Self::SnapshotData>>> {
        let Some(file) = self.read_snapshot_file()? else { return Ok(None) };
        let bytes = frame(&postcard::to_stdvec(&file).map_err(io_error)?);
        Ok(Some(Self::snapshot_of(file.meta, bytes)))
    }
}
