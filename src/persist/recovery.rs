//! Start-up: lock the folder, load the key file and every snapshot, replay the log, and open a
//! fresh log segment. Damaged data stops start-up with the file's name unless `repair` is set,
//! in which case damaged files are moved aside (`*.corrupt`) and everything intact is loaded.
//!
//! The log's crash tail, an entry cut short, is trimmed with a warning: in the last segment, or
//! in one followed only by segments that hold no entry (a rotation that failed on a full disk
//! leaves such a segment after the one the log went on writing; they are removed). An entry cut
//! short before a segment that holds entries is damage. A last entry with all its bytes but a
//! failing checksum is not a crash tail: see `bad_last_entry`.
//!
//! Under `repair`, a log entry whose length is intact (it has its own checksum) but whose bytes
//! fail their checksum is skipped and the entries after it replayed; after a damaged length the
//! next entry cannot be found, and the rest of the segment is dropped. Both are logged as errors
//! and counted in the [`RecoveryReport`]; the segment is moved aside as `*.corrupt` either way.

use super::codec::{self, CollectionImage, KeysImage, WalOp};
use super::error::{Damage, Error};
use super::framed;
use super::fsutil;
use super::image;
use super::journal::{snapshot_id, Journal, SnapshotFiles, KEYS_FILE};
use super::policies::{self, POLICIES_FILE};
use super::replay;
use super::wal::{FsyncPolicy, Wal};
use super::wal_read::{self, BadEntry, SegmentEnd};
use crate::auth::Scope;
use crate::storage::{Backend, Io, Lock, Op, OpenMode};
use crate::store::{Handles, Store};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Log entries `--repair` passed over (each failed its checksum; the entries after it
    /// were replayed).
    pub skipped_entries: usize,
    /// Bytes of log segments `--repair` could not replay past damage it cannot find the next
    /// entry after (they are kept in the segment's `*.corrupt` copy).
    pub dropped_bytes: u64,
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

/// Opens (creating) the data folder, makes its name durable, and recovers its content.
pub fn open(
    fs: Arc<dyn Backend>,
    dir: &Path,
    policy: FsyncPolicy,
    repair: bool,
) -> Result<Recovered, Error> {
    let lock = lock_folder(&*fs, dir)?;
    open_locked(fs, dir, lock, policy, repair)
}

/// Creates the data folder if needed, makes its name durable, and takes its lock (`LOCK` in
/// it): [`Error::Locked`] while another process holds it.
pub fn lock_folder(fs: &dyn Backend, dir: &Path) -> Result<Box<dyn Lock>, Error> {
    fsutil::create_dir_durable(fs, dir)?;
    fsutil::lock(fs, dir)
}

/// [`open`] of a folder whose lock the caller took ([`lock_folder`]); the journal holds it.
pub fn open_locked(
    fs: Arc<dyn Backend>,
    dir: &Path,
    lock: Box<dyn Lock>,
    policy: FsyncPolicy,
    repair: bool,
) -> Result<Recovered, Error> {
    let started = Instant::now();
    let b = &*fs;
    let mut report = RecoveryReport::default();
    let mut progress = Progress {
        started,
        last: started,
    };
    let mut snapshots = Vec::new();
    let mut removed_temp = false;
    for entry in b.read_dir(dir).map_err(Error::io(Op::ReadDir, dir))? {
        let name = entry.name.to_string_lossy();
        let path = dir.join(&entry.name);
        if let Some(build) = super::Build::of_staging(&name) {
            return Err(Error::Unfinished { path, build });
        }
        if name.ends_with(".tmp") {
            b.remove_file(&path).map_err(Error::io(Op::Remove, &path))?;
            removed_temp = true;
        } else if let Some(id) = snapshot_id(&name) {
            snapshots.push((id, path));
        }
    }
    if removed_temp {
        fsutil::sync_dir(b, dir)?;
    }
    snapshots.sort();

    let keys = load_keys(b, dir, repair, &mut report)?;
    let store = Store::new();
    load_policies(b, dir, repair, &mut report, &store)?;
    let mut files = SnapshotFiles::default();
    for (id, path) in &snapshots {
        files.next = files.next.max(id + 1);
        let loaded = framed::read(b, path, framed::SNAPSHOT_MAGIC).and_then(|payload| {
            report.bytes_read += payload.len() as u64;
            codec::decode::<CollectionImage>(&payload)
                .map_err(Damage::Undecodable)
                .and_then(image::collection_from_image)
                .map_err(|damage| Error::Corrupt {
                    path: path.clone(),
                    damage,
                })
        });
        match loaded {
            Ok((name, collection)) => {
                report.records += collection.record_count();
                files.by_name.insert(name.clone(), *id);
                store.install(name, collection);
            }
            Err(Error::Corrupt { damage, .. }) => damaged(b, path, damage, repair, &mut report)?,
            Err(e) => return Err(e),
        }
        progress.tick("records from snapshots", report.records, report.bytes_read);
    }

    let segments = wal_read::list_segments(b, dir)?;
    let last_seq = segments.last().map_or(0, |s| s.0);
    let mut handles = Handles::default();
    // Damaged segments `repair` loaded what it could from: moved aside once that is saved.
    let mut deferred: Vec<(PathBuf, Damage)> = Vec::new();
    for (i, (_, path)) in segments.iter().enumerate() {
        // Under repair, an entry whose length is intact but whose bytes fail their checksum is
        // passed over: the entries after it are found and replayed.
        let bad = if repair {
            BadEntry::Skip
        } else {
            BadEntry::Stop
        };
        let walked = wal_read::walk_segment(b, path, bad, |entry| {
            let op: WalOp = codec::borrow_decode(entry.op).map_err(Damage::Undecodable)?;
            report.log_entries += 1;
            report.bytes_read += entry.op.len() as u64;
            replay::apply(&store, &mut handles, &op)?;
            progress.tick("log entries", report.log_entries, report.bytes_read);
            Ok(())
        })?;
        if let SegmentEnd::Corrupt(damage) = &walked.end {
            if let (true, Some(at)) = (repair, damage.offset()) {
                // Damage the reading cannot resync after (a damaged length, an entry that does
                // not decode or apply): what follows it in the segment is not replayed.
                let dropped = walked.size.saturating_sub(at);
                report.dropped_bytes += dropped;
                log::error!(
                    "repair: {}: {damage}; the {dropped} bytes from there to the end of the \
                     segment are not replayed (they stay in its .corrupt copy)",
                    path.display()
                );
            }
        }
        if let Some(&first) = walked.skipped.first() {
            let n = walked.skipped.len();
            report.skipped_entries += n;
            log::error!(
                "repair: {}: skipped {n} damaged log entries (checksum mismatch at offsets \
                 {:?}) and replayed the intact entries around them",
                path.display(),
                walked.skipped
            );
            let damage = match walked.end {
                SegmentEnd::Corrupt(damage) => damage,
                _ => Damage::EntryChecksum { offset: first },
            };
            // The segment is damaged: its intact entries are in the store; it is moved aside
            // whole once the checkpoint after repair has saved them.
            deferred.push(segment_damaged(path, damage, repair)?);
            continue;
        }
        match walked.end {
            SegmentEnd::Clean => {}
            SegmentEnd::TornTail(offset) | SegmentEnd::BadLastEntry(offset) => {
                let whole = matches!(walked.end, SegmentEnd::BadLastEntry(_));
                let later = &segments[i + 1..];
                // The segments after this one, if any, hold no entry: each was started by a
                // rotation that failed (a full disk), and the log went on in this one. Its end
                // is then the log's end.
                if !all_hold_no_entries(b, later)? {
                    let damage = if whole {
                        Damage::EntryChecksum { offset }
                    } else {
                        Damage::TornBeforeLast { offset }
                    };
                    deferred.push(segment_damaged(path, damage, repair)?);
                    continue;
                }
                if whole {
                    bad_last_entry(b, dir, path, offset, policy, repair, &mut report)?;
                } else {
                    log::warn!(
                        "{}: dropping an incomplete entry at offset {offset} (cut short by a \
                         crash or a failed write)",
                        path.display()
                    );
                }
                truncate(b, path, offset)?;
                if !later.is_empty() {
                    log::warn!(
                        "removing {} log segment(s) after {} that hold no entry",
                        later.len(),
                        path.display()
                    );
                    for (_, empty) in later {
                        b.remove_file(empty).map_err(Error::io(Op::Remove, empty))?;
                    }
                    fsutil::sync_dir(b, dir)?;
                    break;
                }
            }
            SegmentEnd::Corrupt(damage) => deferred.push(segment_damaged(path, damage, repair)?),
        }
    }

    let wal = Wal::create(fs.clone(), dir, last_seq + 1, policy)?;
    let journal = Journal::new(fs.clone(), dir, wal, files, lock);
    report.collections = store.names().len();
    report.records = store
        .all()
        .iter()
        .map(|(_, c)| c.read().record_count())
        .sum();
    report.keys = keys.len();
    report.elapsed = started.elapsed();
    if !report.repaired_files.is_empty() || !deferred.is_empty() {
        // Make the repaired state the durable one at once, keeping every log segment: a
        // backup set up after this may not have uploaded them yet (the next checkpoint
        // removes what nothing needs).
        journal.keep_segments_from(0);
        let saved = journal.checkpoint(&store);
        journal.keep_segments_from(u64::MAX);
        let failed = saved?.failed;
        if failed > 0 {
            // The damaged segments' intact entries are only in memory: moved aside now, they
            // would be in no file at the next start.
            return Err(Error::RepairUnsaved { failed });
        }
        for (path, damage) in deferred {
            damaged(b, &path, damage, true, &mut report)?;
        }
    }
    Ok(Recovered {
        store,
        keys,
        journal,
        report,
    })
}

fn load_keys(
    b: &dyn Backend,
    dir: &Path,
    repair: bool,
    report: &mut RecoveryReport,
) -> Result<Vec<(String, Scope)>, Error> {
    let path = dir.join(KEYS_FILE);
    if !b.exists(&path).map_err(Error::io(Op::Stat, &path))? {
        return Ok(Vec::new());
    }
    let loaded = framed::read(b, &path, framed::KEYS_MAGIC).and_then(|payload| {
        codec::decode::<KeysImage>(&payload)
            .map_err(Damage::Undecodable)
            .and_then(image::keys_from_image)
            .map_err(|damage| Error::Corrupt {
                path: path.clone(),
                damage,
            })
    });
    match loaded {
        Ok(keys) => Ok(keys),
        Err(Error::Corrupt { damage, .. }) => {
            damaged(b, &path, damage, repair, report)?;
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// Loads the retention policies before any collection, so each is installed under its own.
fn load_policies(
    b: &dyn Backend,
    dir: &Path,
    repair: bool,
    report: &mut RecoveryReport,
    store: &Store,
) -> Result<(), Error> {
    let path = dir.join(POLICIES_FILE);
    match policies::read(b, &path) {
        Ok(own) => store.policies().load(own),
        Err(Error::Corrupt { damage, .. }) => damaged(b, &path, damage, repair, report)?,
        Err(e) => return Err(e),
    }
    Ok(())
}

/// A damaged file: an error, or (repair) moved aside with a loud warning.
fn damaged(
    b: &dyn Backend,
    path: &Path,
    damage: Damage,
    repair: bool,
    report: &mut RecoveryReport,
) -> Result<(), Error> {
    if !repair {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            damage,
        });
    }
    let moved = fsutil::quarantine(b, path)?;
    log::error!(
        "repair: {} is damaged ({damage}); loaded what was intact and moved it to {}",
        path.display(),
        moved.display()
    );
    report.repaired_files.push(moved);
    Ok(())
}

/// A damaged log segment: start-up stops unless `repair`, which has loaded its intact entries
/// and moves it aside once they are saved (returned for that).
fn segment_damaged(path: &Path, damage: Damage, repair: bool) -> Result<(PathBuf, Damage), Error> {
    if !repair {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            damage,
        });
    }
    Ok((path.to_owned(), damage))
}

/// The log's last entry has all its bytes but fails its checksum. It is not an entry cut short
/// by a crash: under `--fsync always` it was fdatasynced before it was acknowledged, and then
/// damaged, so start-up refuses (`repair` goes on). Under the other policies it may be an
/// append a power cut tore on a file system that made the file longer before writing all of it
/// (and acknowledged or not, it was not durable yet), so it is dropped like a crash tail. Either
/// way its bytes are kept, as `<segment>.<offset>.corrupt`, and the drop is logged as an error.
fn bad_last_entry(
    b: &dyn Backend,
    dir: &Path,
    path: &Path,
    offset: u64,
    policy: FsyncPolicy,
    repair: bool,
    report: &mut RecoveryReport,
) -> Result<(), Error> {
    let damage = Damage::EntryChecksum { offset };
    if policy == FsyncPolicy::Always && !repair {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            damage,
        });
    }
    let file = b
        .open(path, OpenMode::Read)
        .map_err(Error::io(Op::Open, path))?;
    file.seek(offset).map_err(Error::io(Op::Read, path))?;
    let mut bytes = Vec::new();
    Io(&*file)
        .read_to_end(&mut bytes)
        .map_err(Error::io(Op::Read, path))?;
    drop(file);
    let name = path
        .file_name()
        .map_or_else(|| "wal".into(), |n| n.to_string_lossy().into_owned());
    let copy = fsutil::unused_name(b, &dir.join(format!("{name}.{offset}")), ".corrupt")?;
    let copy_name = copy
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    fsutil::write_atomic(b, dir, &copy_name, |f| f.write_all(&bytes))?;
    log::error!(
        "{}: the last log entry, at offset {offset}, fails its checksum with all its bytes \
         there ({damage}); it is dropped and kept as {}",
        path.display(),
        copy.display()
    );
    if repair {
        report.repaired_files.push(copy);
    }
    Ok(())
}

/// Whether none of `segments` holds an entry, or part of one.
fn all_hold_no_entries(b: &dyn Backend, segments: &[(u64, PathBuf)]) -> Result<bool, Error> {
    for (_, path) in segments {
        if !wal_read::holds_no_entries(b, path)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn truncate(b: &dyn Backend, path: &Path, len: u64) -> Result<(), Error> {
    let f = b
        .open(path, OpenMode::Write)
        .map_err(Error::io(Op::Open, path))?;
    f.set_len(len).map_err(Error::io(Op::Truncate, path))?;
    f.sync_all().map_err(Error::io(Op::Fsync, path))
}
