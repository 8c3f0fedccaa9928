//! The durability handle the operations use: log a mutation before it is acknowledged, save
//! the API keys, and checkpoint (snapshot changed collections, drop covered log segments).

use super::codec::{self, WalOp};
use super::error::Error;
use super::framed;
use super::fsutil;
use super::image;
use super::policies;
use super::wal::{Lsn, Wal};
use crate::auth::KeyRing;
use crate::storage::{Backend, Lock, Op};
use crate::store::Store;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub const KEYS_FILE: &str = "keys.bin";

pub fn snapshot_name(id: u64) -> String {
    format!("snap-{id:016x}.bin")
}

pub fn snapshot_id(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("snap-")?.strip_suffix(".bin")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Which snapshot file holds which collection. File names are numbers, never client strings.
#[derive(Default)]
pub struct SnapshotFiles {
    pub by_name: HashMap<String, u64>,
    pub next: u64,
}

/// What one checkpoint did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckpointReport {
    pub written: usize,
    pub removed: usize,
    pub failed: usize,
}

pub struct Journal {
    fs: Arc<dyn Backend>,
    dir: PathBuf,
    wal: Wal,
    files: Mutex<SnapshotFiles>,
    keys_lock: Mutex<()>,
    checkpoint_lock: Mutex<()>,
    _lock: Box<dyn Lock>,
}

impl Journal {
    pub(super) fn new(
        fs: Arc<dyn Backend>,
        dir: &Path,
        wal: Wal,
        files: SnapshotFiles,
        lock: Box<dyn Lock>,
    ) -> Journal {
        Journal {
            fs,
            dir: dir.to_owned(),
            wal,
            files: Mutex::new(files),
            keys_lock: Mutex::new(()),
            checkpoint_lock: Mutex::new(()),
            _lock: lock,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The storage backend the data folder lives on.
    pub fn backend(&self) -> &dyn Backend {
        &*self.fs
    }

    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// Logs a mutation; call under the lock of the collection it changes, before changing it.
    pub fn log(&self, op: &WalOp<'_>) -> Result<Lsn, Error> {
        self.wal.append(op)
    }

    /// Waits until `lsn` is as durable as the fsync policy promises.
    pub fn wait(&self, lsn: Lsn) -> Result<(), Error> {
        if lsn == 0 {
            return Ok(());
        }
        self.wal.wait(lsn)
    }

    /// Writes the scoped API keys (never the master) to disk, durably, mode 0600.
    pub fn save_keys(&self, keys: &KeyRing) -> Result<(), Error> {
        let _guard = self.keys_lock.lock();
        let mut payload = Vec::new();
        codec::encode_into(&image::keys_image(&keys.scoped()), &mut payload)
            .map_err(Error::Encode)?;
        framed::write(
            &*self.fs,
            &self.dir,
            KEYS_FILE,
            framed::KEYS_MAGIC,
            &payload,
        )
    }

    /// Snapshots every changed collection and removes what the snapshots now cover: the
    /// files of collections that no longer exist, then the older log segments.
    pub fn checkpoint(&self, store: &Store) -> Result<CheckpointReport, Error> {
        let _guard = self.checkpoint_lock.lock();
        let started = Instant::now();
        let first_kept_segment = self.wal.rotate()?;
        let mut report = CheckpointReport::default();
        match policies::save(&*self.fs, &self.dir, store) {
            Ok(written) => report.written += usize::from(written),
            Err(e) => {
                log::error!("saving the retention policies failed: {e}");
                report.failed += 1;
            }
        }
        let mut present = Vec::new();
        for (name, handle) in store.all() {
            let image = {
                let c = handle.read();
                if !c.is_dirty() {
                    present.push(name);
                    continue;
                }
                c.set_dirty(false);
                image::collection_image(&name, &c)
            };
            let id = self.file_id(&name);
            let written = framed::write_streamed(
                &*self.fs,
                &self.dir,
                &snapshot_name(id),
                framed::SNAPSHOT_MAGIC,
                |mut w| codec::encode_to_writer(&image, &mut w),
            );
            drop(image);
            match written {
                Ok(()) => report.written += 1,
                Err(e) => {
                    log::error!(
                        "snapshot of a collection ({}) failed: {e}",
                        snapshot_name(id)
                    );
                    handle.read().set_dirty(true);
                    report.failed += 1;
                }
            }
            present.push(name);
        }
        report.removed = self.remove_stale(&present)?;
        if report.failed == 0 {
            self.wal.remove_before(first_kept_segment)?;
        }
        crate::metrics::checkpoint(started.elapsed());
        if report.written + report.removed > 0 {
            log::info!(
                "checkpoint: {} collections written, {} removed in {} ms",
                report.written,
                report.removed,
                started.elapsed().as_millis()
            );
        }
        Ok(report)
    }

    fn file_id(&self, name: &str) -> u64 {
        let mut files = self.files.lock();
        if let Some(&id) = files.by_name.get(name) {
            return id;
        }
        let id = files.next;
        files.next += 1;
        files.by_name.insert(name.to_owned(), id);
        id
    }

    /// Deletes the snapshot files of collections not seen in this checkpoint.
    fn remove_stale(&self, present: &[String]) -> Result<usize, Error> {
        let present: std::collections::HashSet<&str> = present.iter().map(String::as_str).collect();
        let stale: Vec<(String, u64)> = {
            let files = self.files.lock();
            files
                .by_name
                .iter()
                .filter(|(n, _)| !present.contains(n.as_str()))
                .map(|(n, id)| (n.clone(), *id))
                .collect()
        };
        for (name, id) in &stale {
            let path = self.dir.join(snapshot_name(*id));
            match self.fs.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(Op::Remove, path)(e)),
            }
            self.files.lock().by_name.remove(name);
        }
        if !stale.is_empty() {
            fsutil::sync_dir(&*self.fs, &self.dir)?;
        }
        Ok(stale.len())
    }
}
