//! Files an export writes, made durable and replaced whole: each is written under a short
//! temporary name in its own folder (`.tmp-PID-N`, which `import` skips: not `*.jsonl`; short, so
//! that every final name the file system takes can be written), made durable
//! (documents a batch at a time, see [`Batches`]), then renamed over its name, and the folder
//! fsynced once its files are in place. A failed export
//! leaves every file of an earlier one as it was (or whole and new), never half-written, and
//! removes its temporary files; a successful one is on disk when it says so.

use super::Error;
use crate::storage::{Backend, RealFs};
use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

/// Temporary names handed out by this process so far.
static TEMPS: AtomicU64 = AtomicU64::new(0);

/// The temporary name `path` is written under: `.tmp-PID-N` in its folder, never longer than
/// 30 bytes whatever the length of `path`'s own name (a name close to the file system's limit
/// must not fail for its temporary one), unique to this process and this file.
fn temp_of(path: &Path) -> PathBuf {
    let n = TEMPS.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".tmp-{}-{n}", std::process::id()))
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
    pub fn commit(self, file: &File) -> Result<(), Error> {
        file.sync_all()
            .map_err(|e| Error::io("cannot sync", &self.temp, e))?;
        self.rename()
    }

    /// Renames the file over its name (its bytes made durable beforehand by the caller).
    fn rename(mut self) -> Result<(), Error> {
        std::fs::rename(&self.temp, &self.path)
            .map_err(|e| Error::io("cannot write", &self.path, e))?;
        self.committed = true;
        Ok(())
    }
}

/// Documents to rename into place in batches of this many.
const BATCH: usize = 256;

/// Documents written in full (their files closed), renamed into place a batch at a time: one
/// `syncfs` makes a batch's bytes durable, then the renames follow and the folder is fsynced.
/// An fsync per document cost a journal commit each (about 2 ms on ext4 here), minutes for an
/// export of 100,000 small documents. A full batch is committed on a thread of its own while
/// the workers go on writing (a worker that waited for the disk held its connection idle); one
/// at a time, so a disk slower than the export holds the workers back instead of piling up
/// batches. A document waiting in a batch when the export fails is removed like one
/// half-written: its earlier file stays. A document whose rename the file system refuses as
/// too long (`ENAMETOOLONG`: its path, say, past `PATH_MAX`) is left out, its temporary file
/// removed, and the others go on; [`Batches::finish`] names those left out.
pub struct Batches {
    dir: PathBuf,
    /// Complete files, each with its document's name and record count.
    waiting: Mutex<Vec<Complete>>,
    /// False with `--no-sync`: renamed without waiting for the disk.
    sync: bool,
    /// The batch being committed, if any.
    committing: Mutex<Option<Committing>>,
    /// Documents whose names the file system refused as too long so far, with their records.
    too_long: Mutex<Vec<(String, u64)>>,
}

/// A complete file, its document, and the records written to it.
type Complete = (Pending, String, u64);

/// A batch being committed: the documents it left out, or why it failed.
type Committing = JoinHandle<Result<Vec<(String, u64)>, Error>>;

impl Batches {
    /// Batches of files in `dir`.
    pub fn new(dir: &Path, sync: bool) -> Batches {
        Batches {
            dir: dir.to_owned(),
            waiting: Mutex::new(Vec::new()),
            sync,
            committing: Mutex::new(None),
            too_long: Mutex::new(Vec::new()),
        }
    }

    /// Adds the complete file (flushed and closed) of document `doc`, which holds `records`; a
    /// full batch starts being committed, once the one before has been (whose error, if any,
    /// is returned).
    pub fn add(&self, file: Pending, doc: &str, records: u64) -> Result<(), Error> {
        let full = {
            let mut waiting = self.waiting.lock();
            waiting.push((file, doc.to_owned(), records));
            if waiting.len() < BATCH {
                return Ok(());
            }
            std::mem::take(&mut *waiting)
        };
        let mut committing = self.committing.lock();
        if let Some(previous) = committing.take() {
            self.joined(previous)?;
        }
        let (dir, sync) = (self.dir.clone(), self.sync);
        *committing = Some(std::thread::spawn(move || commit(&dir, full, sync)));
        Ok(())
    }

    /// Commits the files still waiting, after the batch under way. Returns the documents left
    /// out because the file system refused their names as too long, with their records.
    pub fn finish(&self) -> Result<Vec<(String, u64)>, Error> {
        if let Some(previous) = self.committing.lock().take() {
            self.joined(previous)?;
        }
        let rest = std::mem::take(&mut *self.waiting.lock());
        let mut too_long = std::mem::take(&mut *self.too_long.lock());
        too_long.extend(commit(&self.dir, rest, self.sync)?);
        Ok(too_long)
    }

    fn joined(&self, committing: Committing) -> Result<(), Error> {
        let left_out = committing
            .join()
            .unwrap_or(Err(Error::Internal("a commit of exported files panicked")))?;
        self.too_long.lock().extend(left_out);
        Ok(())
    }
}

impl Drop for Batches {
    /// An export that failed still waits for the batch under way (its files are whole).
    fn drop(&mut self) {
        if let Some(previous) = self.committing.get_mut().take() {
            let _ = previous.join();
        }
    }
}

/// Makes `files` durable (with `sync`), renames them into place, and fsyncs `dir`. Returns the
/// documents whose names the file system refused as too long (their temporary files removed).
fn commit(dir: &Path, files: Vec<Complete>, sync: bool) -> Result<Vec<(String, u64)>, Error> {
    let mut too_long = Vec::new();
    if files.is_empty() {
        return Ok(too_long);
    }
    if sync {
        sync_fs(dir)?;
    }
    for (file, doc, records) in files {
        match file.rename() {
            Ok(()) => {}
            Err(e) if e.name_too_long() => too_long.push((doc, records)),
            Err(e) => return Err(e),
        }
    }
    if sync {
        sync_dir(dir)?;
    }
    Ok(too_long)
}

/// `syncfs` of the file system `dir` is on: every dirty byte on it written out.
fn sync_fs(dir: &Path) -> Result<(), Error> {
    let d = File::open(dir).map_err(|e| Error::io("cannot sync", dir, e))?;
    // SAFETY: syncfs on a descriptor this function owns for the call's duration.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(Error::io("cannot sync", dir, io::Error::last_os_error()));
    }
    Ok(())
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Replaces `path` with `body`, whole; with `sync`, durably (the folder fsynced too).
pub fn write_file(path: &Path, body: &[u8], sync: bool) -> Result<(), Error> {
    write_file_mode(path, body, 0o666, sync)
}

/// [`write_file`] for a file only its user may read (API keys): mode 0600.
pub fn write_private_file(path: &Path, body: &[u8], sync: bool) -> Result<(), Error> {
    write_file_mode(path, body, 0o600, sync)
}

fn write_file_mode(path: &Path, body: &[u8], mode: u32, sync: bool) -> Result<(), Error> {
    let (pending, mut file) = Pending::create_mode(path.to_path_buf(), mode)?;
    file.write_all(body)
        .map_err(|e| Error::io("cannot write", &pending.temp, e))?;
    if !sync {
        return pending.rename();
    }
    pending.commit(&file)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// The longest file name the file system of `dir` takes, in bytes (`pathconf(_PC_NAME_MAX)`);
/// 255, the limit of Linux's file systems, when it cannot tell.
pub fn name_max(dir: &Path) -> usize {
    use std::os::unix::ffi::OsStrExt;
    const DEFAULT: usize = 255;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return DEFAULT;
    };
    // SAFETY: pathconf reads the NUL-terminated string `c`, alive for the call's duration.
    let max = unsafe { libc::pathconf(c.as_ptr(), libc::_PC_NAME_MAX) };
    usize::try_from(max)
        .ok()
        .filter(|&m| m > 0)
        .unwrap_or(DEFAULT)
}

/// fsyncs a folder: the names renamed into it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    RealFs
        .sync_dir(dir)
        .map_err(|e| Error::io("cannot sync", dir, e))
}

/// Creates `dir` and its missing parents; with `sync`, every name on the way durable (as the
/// server makes its data folder's). The error of a name the file system refuses keeps its
/// `errno` ([`Error::name_too_long`]).
pub fn create_dir(dir: &Path, sync: bool) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    if !sync {
        return Ok(());
    }
    // Every folder exists now: this fsyncs each one's parent, making its name durable.
    crate::persist::create_dir_durable(&RealFs, dir)
        .map_err(|e| Error::io("cannot create", dir, io::Error::other(e.to_string())))
}
