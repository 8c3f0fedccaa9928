//! The durability handle the operations use: log a mutation before it is acknowledged, save
//! the API keys, and checkpoint (snapshot changed collections, drop covered log segments).

use super::codec::{self, WalOp};
use super::error::Error;
use super::framed;
use super::fsutil;
use super::image;
use super::policies;
use super::wal::{now_ms, Framed, Lsn, Wal};
use crate::auth::KeyRing;
use crate::storage::{Backend, Lock, Op};
use crate::store::Store;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Who may write through the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// A primary: every write is logged.
    Open,
    /// A read replica: only what it copies from its primary is logged.
    Replica,
    /// A primary whose backup location another primary holds (a promoted replica, or one that
    /// started it from another data folder): nothing more is logged.
    Fenced,
}

impl Gate {
    /// The answer a refused client write gets.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Gate::Open => None,
            Gate::Replica => Some("read-only replica: writes go to the primary"),
            Gate::Fenced => Some("fenced: a newer primary took over; writes go to it"),
        }
    }
}

/// What a finished checkpoint leaves in the data folder: the restore point it makes.
#[derive(Debug, Clone)]
pub struct Checkpointed {
    /// The first segment the snapshots do not cover.
    pub first_segment: u64,
    /// The files that, with the segments from `first_segment` on, rebuild the data: every
    /// snapshot, the key file and the retention policies (those that exist).
    pub files: Vec<String>,
    /// How many files this checkpoint wrote or removed.
    pub changed: usize,
}

/// Called at the end of every successful checkpoint, under the checkpoint lock (no other
/// checkpoint rewrites the files meanwhile).
pub type CheckpointHook = Box<dyn Fn(&Checkpointed) + Send + Sync>;

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
    /// Segments from this one on are kept even when snapshots cover them (a backup has not
    /// uploaded them yet).
    keep_from: AtomicU64,
    gate: AtomicU8,
    hook: Mutex<Option<Arc<CheckpointHook>>>,
    _lock: Box<dyn Lock>,
}

/// Marks a collection changed again when dropped after its mark was cleared for a snapshot
/// that was not saved. A checkpoint that fails, or panics (a bug), between the two must not
/// leave it looking saved: the next checkpoint would skip it and then remove the log segments
/// that still hold its changes.
struct ChangedUntilSaved<'a> {
    handle: &'a crate::store::CollectionRef,
    /// The mark was cleared and the snapshot is not saved yet.
    cleared: bool,
}

impl ChangedUntilSaved<'_> {
    fn saved(mut self) {
        self.cleared = false;
    }
}

impl Drop for ChangedUntilSaved<'_> {
    fn drop(&mut self) {
        if self.cleared {
            self.handle.read().set_dirty(true);
        }
    }
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
            keep_from: AtomicU64::new(u64::MAX),
            gate: AtomicU8::new(0),
            hook: Mutex::new(None),
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

    /// The same backend, shared (for threads that outlive a borrow of the journal).
    pub fn shared_backend(&self) -> Arc<dyn Backend> {
        self.fs.clone()
    }

    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// Logs a mutation; call under the lock of the collection it changes, before changing it.
    /// Refused (changing nothing) unless the gate is open.
    pub fn log(&self, op: &WalOp<'_>) -> Result<Lsn, Error> {
        self.log_encoded(&Framed::encode(op, now_ms())?)
    }

    /// Logs an entry framed beforehand by [`Framed::encode`] (see [`Wal::append_encoded`]).
    pub fn log_encoded(&self, entry: &Framed) -> Result<Lsn, Error> {
        if let Some(text) = self.gate().refusal() {
            return Err(Error::Refused(text));
        }
        self.wal.append_encoded(entry)
    }

    /// Logs a mutation a replica copies from its primary, with the primary's write time.
    pub fn log_replicated(&self, op: &WalOp<'_>, time_ms: i64) -> Result<Lsn, Error> {
        self.wal.append_at(op, time_ms)
    }

    pub fn gate(&self) -> Gate {
        match self.gate.load(Ordering::Acquire) {
            0 => Gate::Open,
            1 => Gate::Replica,
            _ => Gate::Fenced,
        }
    }

    pub fn set_gate(&self, gate: Gate) {
        let n = match gate {
            Gate::Open => 0,
            Gate::Replica => 1,
            Gate::Fenced => 2,
        };
        self.gate.store(n, Ordering::Release);
    }

    /// Keeps every segment numbered `seq` or later through checkpoints (`u64::MAX`: none).
    pub fn keep_segments_from(&self, seq: u64) {
        self.keep_from.store(seq, Ordering::Release);
    }

    /// Installs the function told about every checkpoint (the backup's).
    pub fn set_checkpoint_hook(&self, hook: CheckpointHook) {
        *self.hook.lock() = Some(Arc::new(hook));
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
        if let Some(text) = self.gate().refusal() {
            return Err(Error::Refused(text));
        }
        self.write_keys(&keys.scoped())
    }

    /// Writes the key file whatever the gate (a replica copying its primary's keys).
    pub fn write_keys(&self, keys: &[(String, crate::auth::Scope)]) -> Result<(), Error> {
        let _guard = self.keys_lock.lock();
        let mut payload = Vec::new();
        codec::encode_into(&image::keys_image(keys), &mut payload).map_err(Error::Encode)?;
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
            // Declared before the read lock: a panic while copying drops that lock first.
            let mut unsaved = ChangedUntilSaved {
                handle: &handle,
                cleared: false,
            };
            let held = {
                let c = handle.read();
                if !c.is_dirty() {
                    present.push(name);
                    continue;
                }
                // Cleared before the copy: a change made during it must mark it again.
                c.set_dirty(false);
                unsaved.cleared = true;
                image::Held::take(&name, &c)
            };
            // Outside the collection's lock (see `image::Held`).
            let image = held.image();
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
                Ok(()) => {
                    unsaved.saved();
                    report.written += 1;
                }
                Err(e) => {
                    log::error!(
                        "snapshot of a collection ({}) failed: {e}",
                        snapshot_name(id)
                    );
                    drop(unsaved);
                    report.failed += 1;
                }
            }
            present.push(name);
        }
        report.removed = self.remove_stale(&present)?;
        if report.failed == 0 {
            let keep_from = self.keep_from.load(Ordering::Acquire);
            self.wal.remove_before(first_kept_segment.min(keep_from))?;
            let hook = self.hook.lock().clone();
            if let Some(hook) = hook {
                hook(&Checkpointed {
                    first_segment: first_kept_segment,
                    files: self.restore_files()?,
                    changed: report.written + report.removed,
                });
            }
        }
        if report.failed == 0 {
            crate::metrics::checkpoint(started.elapsed());
        } else {
            crate::metrics::checkpoint_failed();
        }
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

    /// The files a restore point is made of, as they are now.
    fn restore_files(&self) -> Result<Vec<String>, Error> {
        let mut out: Vec<String> = {
            let files = self.files.lock();
            files
                .by_name
                .values()
                .map(|&id| snapshot_name(id))
                .collect()
        };
        out.sort();
        for name in [KEYS_FILE, super::policies::POLICIES_FILE] {
            let path = self.dir.join(name);
            if self.fs.exists(&path).map_err(Error::io(Op::Stat, &path))? {
                out.push(name.to_owned());
            }
        }
        Ok(out)
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
