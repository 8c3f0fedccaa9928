//! `file:///folder`: objects as files under a folder (local disk, or a network mount shared by a
//! primary and its replicas). Keys map to relative paths. Every write goes to a temporary file
//! that is fsynced and renamed into place, so a reader never sees half an object. Conditional
//! writes are made atomic across processes by an exclusive `flock` on `<folder>/.lock` held from
//! the check to the rename.

use super::{valid_key, Condition, Error, Listed, Object, ObjectStore};
use crate::storage::{Backend, RealFs};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const LOCK: &str = ".lock";
const TEMP_PREFIX: &str = ".tmp-";

pub struct FileStore {
    dir: PathBuf,
    temp_seq: AtomicU64,
}

fn unavailable(what: &str, path: &Path, e: io::Error) -> Error {
    Error::Unavailable(format!("{what} {}: {e}", path.display()))
}

/// The entity tag of a body: its length and CRC-32.
fn etag(body: &[u8]) -> String {
    format!("{:x}-{:08x}", body.len(), crc32fast::hash(body))
}

/// Creates `dir` and its missing parents so that their names survive a power cut: an object
/// renamed into a folder whose own name was never made durable could vanish with it.
fn create_dirs(dir: &Path) -> Result<(), Error> {
    crate::persist::create_dir_durable(&RealFs, dir).map_err(|e| Error::Unavailable(e.to_string()))
}

/// An exclusive `flock` on the folder's lock file, released when dropped (the file closes).
struct FolderLock {
    _file: File,
}

impl FolderLock {
    fn take(dir: &Path) -> Result<FolderLock, Error> {
        let path = dir.join(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| unavailable("open", &path, e))?;
        loop {
            // SAFETY: flock on a descriptor this function owns for the call's duration.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(FolderLock { _file: file });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(unavailable("lock", &path, e));
            }
        }
    }
}

impl FileStore {
    /// Opens (creating if needed) the folder.
    pub fn open(dir: &Path) -> Result<FileStore, Error> {
        create_dirs(dir)?;
        Ok(FileStore {
            dir: dir.to_owned(),
            temp_seq: AtomicU64::new(0),
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf, Error> {
        if valid_key(key) {
            Ok(self.dir.join(key))
        } else {
            Err(Error::Config(format!("invalid object key {key:?}")))
        }
    }

    fn current_etag(path: &Path) -> Result<Option<String>, Error> {
        match fs::read(path) {
            Ok(body) => Ok(Some(etag(&body))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable("read", path, e)),
        }
    }

    /// Writes `body` to a fresh temporary file in `path`'s folder and fsyncs it.
    fn write_temp(&self, path: &Path, body: &[u8]) -> Result<PathBuf, Error> {
        let parent = path.parent().unwrap_or(&self.dir);
        if !parent.is_dir() {
            create_dirs(parent)?;
        }
        let n = self.temp_seq.fetch_add(1, Ordering::Relaxed);
        let temp = parent.join(format!("{TEMP_PREFIX}{}-{n}", std::process::id()));
        let write = || -> io::Result<()> {
            // Objects are private to their user, as the server's files are.
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)?;
            f.write_all(body)?;
            f.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&temp);
            unavailable("write", &temp, e)
        })?;
        Ok(temp)
    }

    fn list_into(&self, dir: &Path, rel: &str, out: &mut Vec<Listed>) -> Result<(), Error> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(unavailable("list", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| unavailable("list", dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name == LOCK || name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let key = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            // Another process (a primary pruning while a restore or a replica lists) may
            // remove an entry between `read_dir` and here: a listing only shows what exists.
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(unavailable("stat", &entry.path(), e)),
            };
            if meta.is_dir() {
                self.list_into(&entry.path(), &key, out)?;
            } else if valid_key(&key) {
                out.push(Listed {
                    key,
                    size: meta.len(),
                });
            }
        }
        Ok(())
    }
}

impl ObjectStore for FileStore {
    fn put(&self, key: &str, body: &[u8], cond: &Condition) -> Result<String, Error> {
        let path = self.path(key)?;
        let temp = self.write_temp(&path, body)?;
        let _lock = match cond {
            Condition::Always => None,
            _ => Some(FolderLock::take(&self.dir)?),
        };
        let allowed = match cond {
            Condition::Always => true,
            Condition::IfAbsent => Self::current_etag(&path)?.is_none(),
            Condition::IfMatch(tag) => Self::current_etag(&path)?.as_deref() == Some(tag),
        };
        if !allowed {
            let _ = fs::remove_file(&temp);
            return Err(Error::PreconditionFailed);
        }
        fs::rename(&temp, &path).map_err(|e| {
            let _ = fs::remove_file(&temp);
            unavailable("rename", &path, e)
        })?;
        sync_parent(&path)?;
        Ok(etag(body))
    }

    fn get(&self, key: &str) -> Result<Option<Object>, Error> {
        let path = self.path(key)?;
        match fs::read(&path) {
            Ok(body) => Ok(Some(Object {
                etag: etag(&body),
                body,
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable("read", &path, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        let mut out = Vec::new();
        self.list_into(&self.dir, "", &mut out)?;
        out.retain(|o| o.key.starts_with(prefix));
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), Error> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(unavailable("remove", &path, e)),
        }
        // A pruned object must not come back after a power cut (a restore would then find
        // points and segments `--backup-keep` said were gone).
        sync_parent(&path)
    }
}

/// fsyncs the folder `path` is in, making a name created, renamed or removed there durable.
fn sync_parent(path: &Path) -> Result<(), Error> {
    match path.parent() {
        Some(parent) => RealFs
            .sync_dir(parent)
            .map_err(|e| unavailable("fsync", parent, e)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_writes() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::Unavailable(e.to_string()))?;
        let store = FileStore::open(dir.path())?;
        let first = store.put("m/manifest.json", b"one", &Condition::IfAbsent)?;
        assert!(matches!(
            store.put("m/manifest.json", b"two", &Condition::IfAbsent),
            Err(Error::PreconditionFailed)
        ));
        let second = store.put(
            "m/manifest.json",
            b"two",
            &Condition::IfMatch(first.clone()),
        )?;
        assert!(matches!(
            store.put("m/manifest.json", b"three", &Condition::IfMatch(first)),
            Err(Error::PreconditionFailed)
        ));
        let got = store.get("m/manifest.json")?;
        assert_eq!(
            got,
            Some(Object {
                body: b"two".to_vec(),
                etag: second
            })
        );
        store.put("a", b"x", &Condition::Always)?;
        let keys: Vec<String> = store.list("")?.into_iter().map(|o| o.key).collect();
        assert_eq!(keys, ["a", "m/manifest.json"]);
        store.delete("a")?;
        store.delete("a")?;
        assert_eq!(store.get("a")?, None);
        assert!(store.put("../escape", b"x", &Condition::Always).is_err());
        Ok(())
    }

    /// A listing that meets an object deleted after `read_dir` named it leaves it out instead
    /// of failing ("stat … No such file"), as a restore listing a live primary's bucket did.
    #[test]
    fn listing_while_another_writer_deletes() -> Result<(), Error> {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        const CHURNED: usize = 200;
        let dir = tempfile::tempdir().map_err(|e| Error::Unavailable(e.to_string()))?;
        let store = Arc::new(FileStore::open(dir.path())?);
        store.put("keep", b"k", &Condition::Always)?;
        for n in 0..CHURNED {
            store.put(&format!("w/{n}"), b"x", &Condition::Always)?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let churn = {
            let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
            std::thread::spawn(move || -> Result<(), Error> {
                while !stop.load(Ordering::Relaxed) {
                    for n in 0..CHURNED {
                        store.delete(&format!("w/{n}"))?;
                    }
                    for n in 0..CHURNED {
                        store.put(&format!("w/{n}"), b"x", &Condition::Always)?;
                    }
                }
                Ok(())
            })
        };
        let listed: Result<Vec<_>, Error> = (0..100).map(|_| store.list("")).collect();
        stop.store(true, Ordering::Relaxed);
        let churned = churn
            .join()
            .map_err(|_| Error::Unavailable("churn panicked".into()))?;
        churned?;
        for listing in listed? {
            assert!(listing.iter().any(|o| o.key == "keep"));
        }
        Ok(())
    }
}
