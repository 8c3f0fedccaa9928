//! Files an export writes, made durable and replaced whole: each is written under a temporary
//! name beside its own (`NAME.tmp-PID`, which `import` skips: not `*.jsonl`), fsynced, then
//! renamed over its name, and the folder fsynced once its files are in place. A failed export
//! leaves every file of an earlier one as it was (or whole and new), never half-written, and
//! removes its temporary files; a successful one is on disk when it says so.

use super::Error;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The temporary name `path` is written under.
fn temp_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// A file being written under its temporary name; removed when dropped uncommitted.
pub struct Pending {
    temp: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl Pending {
    /// Creates (or empties) the temporary file of `path` (mode 0666 under the umask).
    pub fn create(path: PathBuf) -> Result<(Pending, File), Error> {
        Pending::create_mode(path, 0o666)
    }

    /// [`Pending::create`] with the mode a new file gets (under the umask).
    fn create_mode(path: PathBuf, mode: u32) -> Result<(Pending, File), Error> {
        let temp = temp_of(&path);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temp)
            .map_err(|e| Error::io("cannot create", &temp, e))?;
        let pending = Pending {
            temp,
            path,
            committed: false,
        };
        Ok((pending, file))
    }

    /// fsyncs `file` (this one's, every byte written to it) and renames it over its name. The
    /// folder is fsynced by the caller, once for all its files.
    pub fn commit(mut self, file: &File) -> Result<(), Error> {
        file.sync_all()
            .map_err(|e| Error::io("cannot sync", &self.temp, e))?;
        std::fs::rename(&self.temp, &self.path)
            .map_err(|e| Error::io("cannot write", &self.path, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Replaces `path` with `body`, durably (the folder fsynced too).
pub fn write_file(path: &Path, body: &[u8]) -> Result<(), Error> {
    write_file_mode(path, body, 0o666)
}

/// [`write_file`] for a file only its user may read (API keys): mode 0600.
pub fn write_private_file(path: &Path, body: &[u8]) -> Result<(), Error> {
    write_file_mode(path, body, 0o600)
}

fn write_file_mode(path: &Path, body: &[u8], mode: u32) -> Result<(), Error> {
    let (pending, mut file) = Pending::create_mode(path.to_path_buf(), mode)?;
    file.write_all(body)
        .map_err(|e| Error::io("cannot write", &pending.temp, e))?;
    pending.commit(&file)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// fsyncs a folder: the names renamed into it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("cannot sync", dir, e))
}

/// Creates `dir` and its missing parents, every name on the way durable (as the server makes
/// its data folder's).
pub fn create_dir(dir: &Path) -> Result<(), Error> {
    crate::persist::create_dir_durable(&crate::storage::RealFs, dir)
        .map_err(|e| Error::io("cannot create", dir, io::Error::other(e.to_string())))
}
