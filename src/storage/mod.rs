//! The storage seam: every filesystem operation the data folder needs goes through a
//! [`Backend`] — opening and creating files, reading, writing, fsync and fdatasync, truncation,
//! renames, hard links, removals of files and (empty) folders, folder creation and listing,
//! directory fsync, the folder lock, and a file's metadata (kind, device and number,
//! permissions: `stat`, `chmod`, `realpath`). `persist` and the backup's files in the data
//! folder (`backup/local.rs`: `backup.json`, `replica.json`, `backup-points/`; the staging
//! folders of `fluxiondb restore` and of a replica's first setup, `backup/staging.rs`; the
//! restored files, `backup/restore.rs`; a replica's reload folder, `backup/reload.rs`) never
//! call `std::fs` themselves, so another implementation plugs in without touching them:
//!
//! - [`RealFs`]: the operating system (`std::fs` and `libc`), what the server runs on;
//! - [`Faulty`]: wraps another backend and fails the n-th matching operation with a chosen
//!   error (ENOSPC, EIO, …) — the failure-injection tests;
//! - [`PageCache`]: an in-memory model of a disk behind a page cache; a power cut keeps only
//!   what was made durable (file bytes by fsync/fdatasync, names by a directory fsync) — the
//!   power-loss trials.

mod faulty;
mod model;
mod real;

pub use faulty::{Fault, Faulty};
pub use model::{PageCache, PowerCut};
pub use real::RealFs;

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a backend operation does; failures name it, and the fault injector matches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Opening a file, creating it when the mode says so.
    Open,
    Read,
    Write,
    /// `fsync` of a file.
    Fsync,
    /// `fdatasync` of a file.
    Fdatasync,
    /// Cutting a file to a length.
    Truncate,
    Rename,
    /// A new name for an existing file (a hard link).
    Link,
    Remove,
    /// Removing an empty folder.
    RemoveDir,
    CreateDir,
    ReadDir,
    /// `fsync` of a directory (makes new, renamed and removed names in it durable).
    SyncDir,
    /// The exclusive lock on the data folder.
    Lock,
    /// Asking whether a path exists, what it is ([`Backend::metadata`]) or its real path.
    Stat,
    /// Setting a file's or folder's permission bits.
    SetPermissions,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Read => "read",
            Op::Write => "write",
            Op::Fsync => "fsync",
            Op::Fdatasync => "fdatasync",
            Op::Truncate => "truncate",
            Op::Rename => "rename",
            Op::Link => "hard link",
            Op::Remove => "remove",
            Op::RemoveDir => "remove folder",
            Op::CreateDir => "create folder",
            Op::ReadDir => "list folder",
            Op::SyncDir => "folder fsync",
            Op::Lock => "lock",
            Op::Stat => "stat",
            Op::SetPermissions => "set permissions",
        }
    }
}

/// How a file is opened. Every file the server creates is private to its user (mode 0600).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Writes go to the end; created if missing.
    Append,
    /// Emptied (created if missing), then written from the start.
    Truncate,
    /// An existing file, written in place (to cut a torn tail).
    Write,
}

impl OpenMode {
    pub fn creates(self) -> bool {
        matches!(self, OpenMode::Append | OpenMode::Truncate)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Other,
}

/// One name in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: OsString,
    pub kind: EntryKind,
}

/// What [`Backend::metadata`] tells of a path (symbolic links followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    pub kind: EntryKind,
    /// The device it is on: a folder on another device than its parent is a mount point.
    pub dev: u64,
    /// Its number on that device: two names with the same `(dev, ino)` are one file.
    pub ino: u64,
    /// The permission bits (`0o7777` at most).
    pub mode: u32,
    /// When its content last changed (none where the file system keeps no such time).
    pub modified: Option<std::time::SystemTime>,
}

/// An open file. Reads and writes move the handle's position (append handles always write
/// at the end); every method takes `&self`, so one handle can be shared between threads.
pub trait File: Send + Sync {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Moves the position to `pos` bytes from the start.
    fn seek(&self, pos: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// fsync: data and metadata.
    fn sync_all(&self) -> io::Result<()>;
    /// fdatasync: data and what is needed to read it back (the size).
    fn sync_data(&self) -> io::Result<()>;

    fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The file a data folder's lock is taken on ([`Backend::lock`]): the one name a folder may
/// hold and still be set up as a replica.
pub const LOCK_FILE: &str = "LOCK";

/// Held while the server uses a data folder; dropping it releases the lock.
pub trait Lock: Send + Sync {}

/// Every filesystem operation under `persist/` and in `backup/local.rs`.
pub trait Backend: Send + Sync {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn File>>;
    /// Whether `path` exists (a missing parent is `false`, not an error).
    fn exists(&self, path: &Path) -> io::Result<bool>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Gives the file `from` a second name, `to` (a hard link: both names are the same file,
    /// its content shared); `AlreadyExists` if `to` is there. Like any new name, `to` is
    /// durable once its folder is fsynced.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes an empty folder.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates one folder (mode 0700 under the umask); `AlreadyExists` if it is there.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// The names in a folder, in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;
    /// fsyncs a folder, making the names created, renamed or removed in it durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes the exclusive lock of a data folder (file `LOCK` in it); `WouldBlock` when another
    /// process holds it.
    fn lock(&self, dir: &Path) -> io::Result<Box<dyn Lock>>;
    /// What `path` is: its kind, device, number and permissions (`NotFound` when missing).
    fn metadata(&self, path: &Path) -> io::Result<Metadata>;
    /// Sets the permission bits of a file or folder (`chmod`). Like any change to a file's
    /// metadata it is durable once the file (a folder: the folder) is fsynced.
    fn set_permissions(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// The absolute path of an existing file or folder, without `.`, `..` or symbolic links
    /// (`realpath`).
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;

    /// A whole file's content.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let file = self.open(path, OpenMode::Read)?;
        let mut out = Vec::with_capacity(file.size().unwrap_or(0) as usize);
        io::Read::read_to_end(&mut Io(&*file), &mut out)?;
        Ok(out)
    }

    /// A file's length in bytes.
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.open(path, OpenMode::Read)?.size()
    }

    /// Removes a folder and everything in it (files and folders, depth first), like
    /// `std::fs::remove_dir_all`; `NotFound` if it is not there. Nothing is made durable: a
    /// power cut before the parent folder is fsynced may bring any of it back.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        for entry in self.read_dir(path)? {
            self.remove_entry(&path.join(&entry.name), entry.kind)?;
        }
        self.remove_dir(path)
    }

    /// Removes what a listing found at `path`: a folder with everything in it, or a file.
    fn remove_entry(&self, path: &Path, kind: EntryKind) -> io::Result<()> {
        match kind {
            EntryKind::Dir => self.remove_dir_all(path),
            EntryKind::File | EntryKind::Other => self.remove_file(path),
        }
    }
}

/// The backend the binary runs on.
pub fn real() -> Arc<dyn Backend> {
    Arc::new(RealFs)
}

/// `std::io` adapters over a backend file (for `BufReader`, `BufWriter`, encoders).
pub struct Io<'a>(pub &'a dyn File);

impl io::Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl io::Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
