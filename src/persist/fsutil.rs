//! File-system helpers: private files, atomic replacement, directory fsync, the folder lock.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Every file the server writes is private to its user.
pub const FILE_MODE: u32 = 0o600;

/// Opens (creating) a file for appending, mode 0600.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
}

/// fsyncs a directory so that renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `dir/name` atomically: temp file → `fill` → fsync → rename → directory fsync.
pub fn write_atomic(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let written = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&tmp)
        .and_then(|mut f| {
            fill(&mut f)?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Moves a damaged file aside (`<name>.corrupt`) so an operator can inspect it.
pub fn quarantine(path: &Path) -> io::Result<PathBuf> {
    let mut target = path.as_os_str().to_owned();
    target.push(".corrupt");
    let target = PathBuf::from(target);
    fs::rename(path, &target)?;
    Ok(target)
}

/// An exclusive lock on the data folder, held for the life of the process.
pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> io::Result<DirLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(FILE_MODE)
            .open(dir.join("LOCK"))?;
        // SAFETY: flock on an fd we own; non-blocking exclusive lock.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another fluxiondb process", dir.display()),
            ));
        }
        Ok(DirLock { _file: file })
    }
}
