//! Rebuilding a data folder from the bucket: the newest restore point at or before a time, its
//! files, and the log segments after it (the last one cut after the last entry at or before
//! the time). Every object is checked against the size and CRC-32 its reference gives; a
//! damaged one stops the restore with its key. The server's own recovery then loads the folder.
//!
//! Objects are downloaded by a small pool of threads ([`FETCHERS`]), each holding one object
//! at a time (briefly with its packed bytes, see [`super::packing`]) until it is written and synced,
//! so memory stays bounded by the pool while downloads overlap unpacking and disk writes. The
//! segments are found with one listing, not one per segment.
//!
//! The folder is written through the storage [`Backend`] the caller gives (the operating
//! system for `fluxiondb restore`, the server's backend for a replica's setup and reload).

use super::layout::{self, Manifest, Point, SegmentKey};
use super::{manifests, packing};
use crate::objstore::{Error as StoreError, ObjectStore};
use crate::persist;
use crate::storage::{Backend, OpenMode};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How many objects a restore downloads at once.
pub const FETCHERS: usize = 4;

#[derive(Debug)]
pub enum RestoreError {
    Store(StoreError),
    /// The location holds no manifest.
    NoBackup(String),
    /// No restore point at or before the time asked for.
    NoPoint {
        at: Option<i64>,
    },
    /// An object fails its checks (or does not parse).
    Damaged {
        key: String,
        why: String,
    },
    /// An object the manifest needs is not in the bucket.
    Missing(String),
    /// The bucket was written by a newer version, in a format this one does not read.
    NewerFormat(u32),
    /// The bucket's history does not continue the one a replica followed (the location was
    /// started over), and did not either after the replica reloaded from it.
    Diverged(String),
    Local {
        path: PathBuf,
        source: io::Error,
    },
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Store(e) => write!(f, "{e}"),
            RestoreError::NoBackup(loc) => {
                write!(f, "{loc} holds no backup (no manifest)")
            }
            RestoreError::NoPoint { at: Some(t) } => {
                write!(f, "no restore point at or before {t} ms since the epoch")
            }
            RestoreError::NoPoint { at: None } => {
                f.write_str("the backup holds no restore point yet")
            }
            RestoreError::Damaged { key, why } => write!(f, "object {key} is damaged: {why}"),
            RestoreError::Missing(key) => write!(f, "object {key} is missing from the backup"),
            RestoreError::NewerFormat(format) => write!(
                f,
                "the backup is in format {format}, newer than this version reads ({}): restore with a newer fluxiondb",
                layout::FORMAT
            ),
            RestoreError::Diverged(why) => write!(
                f,
                "the bucket's history does not continue the one this replica followed: {why}"
            ),
            RestoreError::Local { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for RestoreError {}

impl From<StoreError> for RestoreError {
    fn from(e: StoreError) -> Self {
        RestoreError::Store(e)
    }
}

/// What a restore wrote.
#[derive(Debug, Clone)]
pub struct Restored {
    pub point: Point,
    pub segments: usize,
    /// The first segment of the bucket's log this folder does not hold.
    pub next_segment: u64,
    /// The write time of the last entry restored, if any segment held one.
    pub last_write_ms: Option<i64>,
    pub bytes: u64,
    /// The manifest the restore read (its history is the one restored).
    pub manifest: Manifest,
}

/// The newest version of the manifest and its version number.
pub fn read_manifest(
    objects: &dyn ObjectStore,
    location: &str,
) -> Result<(Manifest, u64), RestoreError> {
    let found =
        manifests::newest(objects)?.ok_or_else(|| RestoreError::NoBackup(location.to_owned()))?;
    let m = serde_json::from_slice(&found.body).map_err(|e| RestoreError::Damaged {
        key: manifests::key(found.version),
        why: e.to_string(),
    })?;
    Ok((m, found.version))
}

/// Writes and fsyncs `dir/name` (private to its user, as every file the backend creates is:
/// the API keys are among them).
fn write(fs: &dyn Backend, dir: &Path, name: &str, body: &[u8]) -> Result<(), RestoreError> {
    let path = dir.join(name);
    let done = fs.open(&path, OpenMode::Truncate).and_then(|f| {
        f.write_all(body)?;
        f.sync_all()
    });
    done.map_err(|source| RestoreError::Local { path, source })
}

/// Downloads `key`, unpacks it and checks its content.
fn fetch(
    objects: &dyn ObjectStore,
    key: &str,
    size: u64,
    crc: u32,
) -> Result<Vec<u8>, RestoreError> {
    let damaged = |why| RestoreError::Damaged {
        key: key.to_owned(),
        why,
    };
    let stored = objects
        .get(key)?
        .ok_or_else(|| RestoreError::Missing(key.to_owned()))?
        .body;
    let body = packing::unpack_owned(stored).map_err(damaged)?;
    layout::verify(key, &body, size, crc).map_err(damaged)?;
    Ok(body)
}

/// The object of segment `seq` written by `generation`.
pub fn find_segment(
    objects: &dyn ObjectStore,
    seq: u64,
    generation: u64,
) -> Result<SegmentKey, RestoreError> {
    let prefix = layout::segment_prefix(seq, generation);
    objects
        .list(&prefix)?
        .into_iter()
        .find_map(|o| SegmentKey::parse(&o.key))
        .ok_or_else(|| RestoreError::Missing(format!("{prefix}*")))
}

/// Downloads and checks a segment; its log bytes.
pub fn fetch_segment(objects: &dyn ObjectStore, s: &SegmentKey) -> Result<Vec<u8>, RestoreError> {
    fetch(objects, &s.key(), s.size, s.crc)
}

/// One object to download into the data folder.
struct Job {
    key: String,
    size: u64,
    crc: u32,
    /// Its file name in the data folder.
    name: String,
    /// For a segment of a restore `--at`: cut after the last entry at or before this time.
    cut_at: Option<i64>,
}

/// What a [`Job`] wrote.
struct Written {
    /// Bytes of the file (after the cut).
    kept: usize,
    /// Bytes of the object's content (before it).
    whole: usize,
    /// The write time of the last entry kept, when the segment was cut.
    last_kept_ms: Option<i64>,
}

fn run_job(
    objects: &dyn ObjectStore,
    fs: &dyn Backend,
    dir: &Path,
    job: &Job,
) -> Result<Written, RestoreError> {
    let body = fetch(objects, &job.key, job.size, job.crc)?;
    let kept = job
        .cut_at
        .map_or(body.len(), |t| persist::prefix_until(&body, t));
    write(fs, dir, &job.name, &body[..kept])?;
    let mut last_kept_ms = None;
    if kept < body.len() {
        persist::read_segment_bytes(&body[..kept], |e| {
            last_kept_ms = e.time_ms.or(last_kept_ms);
            Ok(())
        });
    }
    Ok(Written {
        kept,
        whole: body.len(),
        last_kept_ms,
    })
}

/// Runs every job on [`FETCHERS`] threads (this one among them); the results in job order, or
/// the error of the first job (in that order) that failed. After a failure no job starts.
fn run_jobs(
    objects: &dyn ObjectStore,
    fs: &dyn Backend,
    dir: &Path,
    jobs: &[Job],
) -> Result<Vec<Written>, RestoreError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<Written, RestoreError>>>> =
        Mutex::new(jobs.iter().map(|_| None).collect());
    let work = || {
        while !failed.load(Ordering::Acquire) {
            let i = next.fetch_add(1, Ordering::AcqRel);
            let Some(job) = jobs.get(i) else { break };
            let result = run_job(objects, fs, dir, job);
            if result.is_err() {
                failed.store(true, Ordering::Release);
            }
            if let Some(slot) = results.lock().get_mut(i) {
                *slot = Some(result);
            }
        }
    };
    std::thread::scope(|scope| {
        for n in 1..FETCHERS.min(jobs.len()) {
            let spawned = std::thread::Builder::new()
                .name(format!("restore-{n}"))
                .spawn_scoped(scope, work);
            if let Err(e) = spawned {
                log::warn!(
                    "restore: starting download thread {n} failed: {e}; fewer download at once"
                );
                break;
            }
        }
        work();
    });
    let results = results.into_inner();
    let mut written = Vec::with_capacity(results.len());
    let mut first_error = None;
    for result in results.into_iter().flatten() {
        match result {
            Ok(w) => written.push(w),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

/// Every segment object the bucket holds, by (sequence number, generation), from one listing.
fn segment_objects(
    objects: &dyn ObjectStore,
) -> Result<HashMap<(u64, u64), SegmentKey>, RestoreError> {
    let mut found = HashMap::new();
    for o in objects.list("wal/")? {
        if let Some(s) = SegmentKey::parse(&o.key) {
            // Listings are sorted: the first object of a segment is the one `find_segment` takes.
            found.entry((s.seq, s.generation)).or_insert(s);
        }
    }
    Ok(found)
}

/// Writes into the (empty) folder `dir` on `fs` the newest restore point at or before `at` (ms
/// since the epoch; `None`: the newest) and the segments after it, every file fsynced, then the
/// folder. Without `at`, the newest key file replaces the restore point's.
pub fn materialize(
    objects: &dyn ObjectStore,
    location: &str,
    fs: &dyn Backend,
    dir: &Path,
    at: Option<i64>,
) -> Result<Restored, RestoreError> {
    let (m, _) = read_manifest(objects, location)?;
    if m.format > layout::FORMAT {
        return Err(RestoreError::NewerFormat(m.format));
    }
    let mut candidates: Vec<(u64, u64, i64, String)> = objects
        .list("points/")?
        .into_iter()
        .filter_map(|o| layout::parse_point_key(&o.key).map(|(s, g, t)| (s, g, t, o.key)))
        .filter(|(seq, generation, time, _)| {
            // A point of a deposed primary after its history ended is not part of ours.
            let ours = m.history.iter().any(|e| {
                e.generation == *generation
                    && *seq >= e.from_segment
                    && e.end_segment.is_none_or(|end| *seq <= end)
            });
            ours && at.is_none_or(|t| *time <= t)
        })
        .collect();
    candidates.sort_by_key(|c| (c.2, c.0));
    // The newest point the manifest makes whole (see `Point::whole_in`): one uploaded by a
    // round that has not written its manifest yet is passed over for the one before.
    let point = loop {
        let (_, _, _, point_key) = candidates.pop().ok_or(RestoreError::NoPoint { at })?;
        let body = objects
            .get(&point_key)?
            .ok_or_else(|| RestoreError::Missing(point_key.clone()))?
            .body;
        let point: Point = serde_json::from_slice(&body).map_err(|e| RestoreError::Damaged {
            key: point_key.clone(),
            why: e.to_string(),
        })?;
        if point.whole_in(&m) {
            break point;
        }
    };
    let newest_keys = m.keys.as_ref().filter(|_| at.is_none());
    let mut jobs: Vec<Job> = point
        .files
        .iter()
        .filter(|f| !(f.name == persist::KEYS_FILE && newest_keys.is_some()))
        .chain(newest_keys)
        .map(|f| Job {
            key: f.key.clone(),
            size: f.size,
            crc: f.crc,
            name: f.name.clone(),
            cut_at: None,
        })
        .collect();
    let files = jobs.len();
    let mut listed = segment_objects(objects)?;
    for (seq, generation) in m.segments_from(point.first_segment) {
        let s = listed.remove(&(seq, generation)).ok_or_else(|| {
            RestoreError::Missing(format!("{}*", layout::segment_prefix(seq, generation)))
        })?;
        if at.is_some_and(|t| s.first_ms > t) {
            break;
        }
        jobs.push(Job {
            key: s.key(),
            size: s.size,
            crc: s.crc,
            name: persist::segment_name(seq),
            cut_at: at,
        });
    }
    let written = run_jobs(objects, fs, dir, &jobs)?;
    let mut restored = Restored {
        next_segment: point.first_segment,
        point,
        segments: 0,
        last_write_ms: None,
        bytes: written[..files].iter().map(|w| w.kept as u64).sum(),
        manifest: m,
    };
    let mut cut = false;
    for (job, w) in jobs[files..].iter().zip(&written[files..]) {
        if cut {
            // Downloaded alongside, but after the entry the restore stops at.
            fs.remove_file(&dir.join(&job.name))
                .map_err(|source| RestoreError::Local {
                    path: dir.join(&job.name),
                    source,
                })?;
            continue;
        }
        let Some(s) = SegmentKey::parse(&job.key) else {
            continue;
        };
        restored.segments += 1;
        restored.bytes += w.kept as u64;
        restored.next_segment = s.seq + 1;
        if w.kept < w.whole {
            restored.last_write_ms = w.last_kept_ms.or(restored.last_write_ms);
            cut = true;
        } else if s.last_ms > 0 {
            restored.last_write_ms = Some(s.last_ms);
        }
    }
    fs.sync_dir(dir).map_err(|source| RestoreError::Local {
        path: dir.to_owned(),
        source,
    })?;
    Ok(restored)
}
