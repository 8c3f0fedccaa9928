//! Rebuilding a data folder from the bucket: the newest restore point at or before a time, its
//! files, and the log segments after it (the last one cut after the last entry at or before
//! the time). Every object is checked against the size and CRC-32 its reference gives; a
//! damaged one stops the restore with its key. The server's own recovery then loads the folder.

use super::layout::{self, Manifest, Point, SegmentKey};
use super::manifests;
use crate::objstore::{Error as StoreError, ObjectStore};
use crate::persist;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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

fn write(dir: &Path, name: &str, body: &[u8]) -> Result<(), RestoreError> {
    let path = dir.join(name);
    let done = fs::File::create(&path).and_then(|mut f| {
        f.write_all(body)?;
        f.sync_all()
    });
    done.map_err(|source| RestoreError::Local { path, source })
}

/// Downloads `key` and checks it.
fn fetch(
    objects: &dyn ObjectStore,
    key: &str,
    size: u64,
    crc: u32,
) -> Result<Vec<u8>, RestoreError> {
    let body = objects
        .get(key)?
        .ok_or_else(|| RestoreError::Missing(key.to_owned()))?
        .body;
    layout::verify(key, &body, size, crc).map_err(|why| RestoreError::Damaged {
        key: key.to_owned(),
        why,
    })?;
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

/// Downloads and checks a segment.
pub fn fetch_segment(objects: &dyn ObjectStore, s: &SegmentKey) -> Result<Vec<u8>, RestoreError> {
    fetch(objects, &s.key(), s.size, s.crc)
}

/// Writes into the (empty) folder `dir` the newest restore point at or before `at` (ms since
/// the epoch; `None`: the newest) and the segments after it. Without `at`, the newest key file
/// replaces the restore point's.
pub fn materialize(
    objects: &dyn ObjectStore,
    location: &str,
    dir: &Path,
    at: Option<i64>,
) -> Result<Restored, RestoreError> {
    let (m, _) = read_manifest(objects, location)?;
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
    let (_, _, _, point_key) = candidates.pop().ok_or(RestoreError::NoPoint { at })?;
    let body = objects
        .get(&point_key)?
        .ok_or_else(|| RestoreError::Missing(point_key.clone()))?
        .body;
    let point: Point = serde_json::from_slice(&body).map_err(|e| RestoreError::Damaged {
        key: point_key.clone(),
        why: e.to_string(),
    })?;
    let mut bytes = 0;
    for file in &point.files {
        if at.is_none() && file.name == persist::KEYS_FILE && m.keys.is_some() {
            continue;
        }
        let body = fetch(objects, &file.key, file.size, file.crc)?;
        bytes += body.len() as u64;
        write(dir, &file.name, &body)?;
    }
    if at.is_none() {
        if let Some(keys) = &m.keys {
            let body = fetch(objects, &keys.key, keys.size, keys.crc)?;
            write(dir, persist::KEYS_FILE, &body)?;
        }
    }
    let mut restored = Restored {
        next_segment: point.first_segment,
        point,
        segments: 0,
        last_write_ms: None,
        bytes,
    };
    for (seq, generation) in m.segments_from(restored.point.first_segment) {
        let s = find_segment(objects, seq, generation)?;
        if let Some(t) = at {
            if s.first_ms > t {
                break;
            }
        }
        let body = fetch_segment(objects, &s)?;
        let keep = at.map_or(body.len(), |t| persist::prefix_until(&body, t));
        write(dir, &persist::segment_name(seq), &body[..keep])?;
        restored.segments += 1;
        restored.bytes += keep as u64;
        restored.next_segment = seq + 1;
        if s.last_ms > 0 && keep == body.len() {
            restored.last_write_ms = Some(s.last_ms);
        }
        if keep < body.len() {
            persist::read_segment_bytes(&body[..keep], |e| {
                restored.last_write_ms = e.time_ms.or(restored.last_write_ms);
                Ok(())
            });
            break;
        }
    }
    super::local::sync_dir(dir).map_err(|source| RestoreError::Local {
        path: dir.to_owned(),
        source,
    })?;
    Ok(restored)
}
