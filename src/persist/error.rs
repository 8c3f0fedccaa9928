//! What can go wrong in the data folder, typed: callers match on the variant, never on text.

use super::codec::CodecError;
use crate::storage::Op;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// An error of the data folder.
#[derive(Debug, Clone)]
pub enum Error {
    /// A file-system operation failed (disk full, I/O error, permissions, …).
    Io {
        op: Op,
        path: PathBuf,
        source: Arc<io::Error>,
    },
    /// Another server holds the data folder.
    Locked(PathBuf),
    /// The write-ahead log refuses writes: an earlier write or fsync of it failed (that
    /// failure is inside). Nothing after it is acknowledged until a restart.
    LogFailed(Arc<Error>),
    /// A file is damaged; start-up stops (or, with `--repair`, moves it aside).
    Corrupt { path: PathBuf, damage: Damage },
    /// A value could not be encoded.
    Encode(CodecError),
    /// The journal's gate is closed (a replica, or a fenced primary); the text is the answer.
    Refused(&'static str),
    /// `--repair` loaded the intact entries of damaged log segments but could not save them in
    /// snapshots (this many failed); the segments stay in place for the next try.
    RepairUnsaved { failed: usize },
    /// The folder holds the staging folder of a restore or a replica's first setup that did not
    /// finish moving its files into place (killed, or a power cut): what is there is part of a
    /// copy, not a data folder to serve.
    Unfinished { path: PathBuf, build: Build },
}

/// What builds a data folder in a staging folder inside it (when it cannot be renamed over:
/// a mount point, the working directory), named `.<tag>-<process id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `fluxiondb restore`.
    Restore,
    /// A replica's first setup.
    ReplicaSetup,
}

impl Build {
    pub const ALL: [Build; 2] = [Build::Restore, Build::ReplicaSetup];

    /// The tag of its staging folders.
    pub const fn tag(self) -> &'static str {
        match self {
            Build::Restore => "restore",
            Build::ReplicaSetup => "replica",
        }
    }

    /// The build whose staging folder inside a data folder is named `name`, if any.
    pub fn of_staging(name: &str) -> Option<Build> {
        let rest = name.strip_prefix('.')?;
        Build::ALL.into_iter().find(|b| {
            rest.strip_prefix(b.tag())
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit()))
        })
    }
}

/// How a file is damaged.
#[derive(Debug, Clone)]
pub enum Damage {
    /// Shorter than its header.
    TooShort,
    /// Wrong magic: not this kind of file, or a format version this build does not read.
    UnknownFormat,
    /// The header's length disagrees with the file's size.
    LengthMismatch {
        stated: u64,
        actual: u64,
    },
    ChecksumMismatch,
    /// The checksum holds but the payload does not decode.
    Undecodable(CodecError),
    /// A snapshot's document breaks an invariant of the store.
    BadDocument {
        doc: String,
        why: String,
    },
    /// The key file names a scope this build does not know.
    UnknownScope(u8),
    /// A log entry's length field fails its checksum.
    EntryHeader {
        offset: u64,
    },
    /// A log entry claims more bytes than any entry can hold.
    EntryTooLarge {
        offset: u64,
    },
    /// A log entry fails its checksum and more data follows.
    EntryChecksum {
        offset: u64,
    },
    /// An incomplete entry in a log segment that is not the last one.
    TornBeforeLast {
        offset: u64,
    },
    /// A log entry that does not decode or cannot be applied.
    Entry {
        offset: u64,
        why: Box<Damage>,
    },
    /// A logged insert that would make a document larger than 4 GiB.
    DocumentTooLarge {
        col: String,
        doc: String,
    },
}

impl Damage {
    /// Where in its log segment a damaged log entry starts (`None` for damage of a whole file).
    pub fn offset(&self) -> Option<u64> {
        match self {
            Damage::EntryHeader { offset }
            | Damage::EntryTooLarge { offset }
            | Damage::EntryChecksum { offset }
            | Damage::TornBeforeLast { offset }
            | Damage::Entry { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

impl Error {
    pub(crate) fn io(op: Op, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |e| Error::Io {
            op,
            path,
            source: Arc::new(e),
        }
    }

    /// The operating-system error behind this one, if any (`ENOSPC`, `EIO`, …).
    pub fn os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            Error::LogFailed(first) => first.os_error(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, source } => {
                write!(f, "{} of {} failed: {source}", op.name(), path.display())
            }
            Error::Locked(dir) => {
                write!(
                    f,
                    "{} is in use by another fluxiondb process",
                    dir.display()
                )
            }
            Error::LogFailed(first) => {
                write!(f, "the write-ahead log refuses writes since: {first}")
            }
            Error::Corrupt { path, damage } => write!(
                f,
                "{} is damaged ({damage}); refusing to start so no data is silently lost. \
                 Restore the file from a backup, or start with --repair to load everything that \
                 is intact (damaged files are moved aside as *.corrupt)",
                path.display()
            ),
            Error::Encode(e) => write!(f, "cannot encode: {e}"),
            Error::Refused(text) => f.write_str(text),
            Error::Unfinished { path, build } => {
                let (what, again) = match build {
                    Build::Restore => (
                        "an unfinished `fluxiondb restore`",
                        "run the same `fluxiondb restore` again into this folder",
                    ),
                    Build::ReplicaSetup => (
                        "an unfinished replica setup",
                        "start the replica again (it sets the folder up anew)",
                    ),
                };
                write!(
                    f,
                    "{}: the staging folder of {what}, stopped while moving its files into place; the data folder holds part of a copy only: {again}",
                    path.display()
                )
            }
            Error::RepairUnsaved { failed } => write!(
                f,
                "the repair could not save what it loaded from damaged log segments ({failed} snapshots failed; see the errors above); those segments are left in place. Fix the disk, then start with --repair again"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::TooShort => f.write_str("file too short"),
            Damage::UnknownFormat => f.write_str("unknown format or version"),
            Damage::LengthMismatch { stated, actual } => write!(
                f,
                "length {stated} does not match the file size ({actual} bytes of payload)"
            ),
            Damage::ChecksumMismatch => f.write_str("checksum mismatch"),
            Damage::Undecodable(e) => write!(f, "undecodable: {e}"),
            Damage::BadDocument { doc, why } => write!(f, "document {doc:?}: {why}"),
            Damage::UnknownScope(n) => write!(f, "unknown scope number {n}"),
            Damage::EntryHeader { offset } => write!(f, "damaged entry header at offset {offset}"),
            Damage::EntryTooLarge { offset } => write!(f, "entry too large at offset {offset}"),
            Damage::EntryChecksum { offset } => write!(f, "checksum mismatch at offset {offset}"),
            Damage::TornBeforeLast { offset } => write!(
                f,
                "incomplete entry at offset {offset} before the last segment"
            ),
            Damage::Entry { offset, why } => write!(f, "{why} at offset {offset}"),
            Damage::DocumentTooLarge { col, doc } => write!(
                f,
                "an insert would make document {doc:?} of collection {col:?} larger than 4 GiB"
            ),
        }
    }
}
