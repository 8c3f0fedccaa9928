//! Start-up: lock the folder, load the key file and every snapshot, replay the log, and open a
//! fresh log segment. Damaged data stops start-up with the file's name unless `repair` is set,
//! in which case damaged files are moved aside (`*.corrupt`) and everything intact is loaded.

use super::codec::{self, CollectionImage, KeysImage, WalOp};
use super::framed::{self, ReadError};
use super::fsutil::{self, DirLock};
use super::image;
use super::journal::{snapshot_id, Journal, SnapshotFiles, KEYS_FILE};
use super::replay;
use super::wal::{self, FsyncPolicy, SegmentEnd, Wal};
use crate::auth::Scope;
use crate::store::{Handles, Store};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why the data folder could not be opened.
#[derive(Debug)]
pub enum RecoveryError {
    Io(PathBuf, io::Error),
    Corrupt(PathBuf, String),
}

impl fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            RecoveryError::Corrupt(p, e) => write!(
                f,
                "{} is damaged ({e}); refusing to start so no data is silently lost. \
                 Restore the file from a backup, or start with --repair to load everything that \
                 is intact (damaged files are moved aside as *.corrupt)",
                p.display()
            ),
        }
    }
}

impl std::error::Error for RecoveryError {}

/// What start-up found.
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    pub collections: usize,
    pub records: usize,
    pub keys: usize,
    pub log_entries: usize,
    pub bytes_read: u64,
    pub elapsed: Duration,
    pub repaired_files: Vec<PathBuf>,
}

pub struct Recovered {
    pub store: Store,
    pub keys: Vec<(String, Scope)>,
    pub journal: Journal,
    pub report: RecoveryReport,
}

struct Progress {
    started: Instant,
    last: Instant,
}

impl Progress {
    fn tick(&mut self, what: &str, records: usize, bytes: u64) {
        if self.last.elapsed() >= Duration::from_secs(2) {
            self.last = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(1e-9);
            log::info!(
                "recovery: {what}: {records} records, {:.1} MB/s",
                bytes as f64 / secs / 1e6
            );
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RecoveryError + '_ {
    move |e| RecoveryError::Io(path.to_owned(), e)
}

/// Opens (creating) the data folder and recovers its content.
pub fn open(dir: &Path, policy: FsyncPolicy, repair: bool) -> Result<Recovered, RecoveryError> {
    let started = Instant::now();
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let lock = DirLock::acquire(dir).map_err(io_err(dir))?;
    let mut report = RecoveryReport::default();
    let mut progress = Progress {
        started,
        last: started,
    };
    let mut snapshots = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".tmp") {
            fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
        } else if let Some(id) = snapshot_id(&name) {
            snapshots.push((id, entry.path()));
        }
    }
    snapshots.sort();

    let keys = load_keys(dir, repair, &mut report)?;
    let store = Store::new();
    let mut files = SnapshotFiles::default();
    for (id, path) in &snapshots {
        files.next = files.next.max(id + 1);
        let loaded = framed::read(path, framed::SNAPSHOT_MAGIC).and_then(|payload| {
            report.bytes_read += payload.len() as u64;
            codec::decode::<CollectionImage>(&payload)
                .map_err(|e| ReadError::Corrupt(e.to_string()))
                .and_then(|img| image::collection_from_image(img).map_err(ReadError::Corrupt))
        });
        match loaded {
            Ok((name, collection)) => {
                report.records += collection.record_count();
                files.by_name.insert(name.clone(), *id);
                store.install(name, collection);
            }
            Err(ReadError::Io(e)) => return Err(RecoveryError::Io(path.clone(), e)),
            Err(ReadError::Corrupt(why)) => damaged(path, why, repair, &mut report)?,
        }
        progress.tick("records from snapshots", report.records, report.bytes_read);
    }

    let segments = wal::list_segments(dir).map_err(io_err(dir))?;
    let last_seq = segments.last().map_or(0, |s| s.0);
    let mut handles = Handles::default();
    for (i, (_, path)) in segments.iter().enumerate() {
        let is_last = i + 1 == segments.len();
        let end = wal::read_segment(path, |payload| {
            let op: WalOp = codec::borrow_decode(payload).map_err(|e| e.to_string())?;
            report.log_entries += 1;
            report.bytes_read += payload.len() as u64;
            replay::apply(&store, &mut handles, &op)?;
            progress.tick("log entries", report.log_entries, report.bytes_read);
            Ok(())
        })
        .map_err(io_err(path))?;
        match end {
            SegmentEnd::Clean => {}
            SegmentEnd::TornTail(offset) if is_last => {
                log::warn!(
                    "{}: dropping an incomplete entry at offset {offset} (a crash during a write)",
                    path.display()
                );
                truncate(path, offset)?;
            }
            SegmentEnd::TornTail(offset) => damaged(
                path,
                format!("incomplete entry at offset {offset} before the last segment"),
                repair,
                &mut report,
            )?,
            SegmentEnd::Corrupt(offset, why) => damaged(
                path,
                format!("{why} at offset {offset}"),
                repair,
                &mut report,
            )?,
        }
    }

    let wal = Wal::create(dir, last_seq + 1, policy).map_err(io_err(dir))?;
    let journal = Journal::new(dir, wal, files, lock);
    report.collections = store.names().len();
    report.records = store
        .all()
        .iter()
        .map(|(_, c)| c.read().record_count())
        .sum();
    report.keys = keys.len();
    report.elapsed = started.elapsed();
    if !report.repaired_files.is_empty() {
        // Make the repaired state the durable one at once.
        journal.checkpoint(&store).map_err(io_err(dir))?;
    }
    Ok(Recovered {
        store,
        keys,
        journal,
        report,
    })
}

fn load_keys(
    dir: &Path,
    repair: bool,
    report: &mut RecoveryReport,
) -> Result<Vec<(String, Scope)>, RecoveryError> {
    let path = dir.join(KEYS_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let loaded = framed::read(&path, framed::KEYS_MAGIC).and_then(|payload| {
        codec::decode::<KeysImage>(&payload)
            .map_err(|e| ReadError::Corrupt(e.to_string()))
            .and_then(|img| image::keys_from_image(img).map_err(ReadError::Corrupt))
    });
    match loaded {
        Ok(keys) => Ok(keys),
        Err(ReadError::Io(e)) => Err(RecoveryError::Io(path, e)),
        Err(ReadError::Corrupt(why)) => {
            damaged(&path, why, repair, report)?;
            Ok(Vec::new())
        }
    }
}

/// A damaged file: an error, or (repair) moved aside with a loud warning.
fn damaged(
    path: &Path,
    why: String,
    repair: bool,
    report: &mut RecoveryReport,
) -> Result<(), RecoveryError> {
    if !repair {
        return Err(RecoveryError::Corrupt(path.to_owned(), why));
    }
    let moved = fsutil::quarantine(path).map_err(io_err(path))?;
    log::error!(
        "repair: {} is damaged ({why}); loaded what was intact and moved it to {}",
        path.display(),
        moved.display()
    );
    report.repaired_files.push(moved);
    Ok(())
}

fn truncate(path: &Path, len: u64) -> Result<(), RecoveryError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    f.set_len(len).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}
