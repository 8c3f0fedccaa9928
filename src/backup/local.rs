//! The backup's own files in the data folder: `backup.json` (the generation this folder's
//! server writes the bucket as), `replica.json` (a replica's position in the bucket's log) and
//! `backup-points/` (restore points staged at checkpoints: hard links to the snapshot, key and
//! retention files of the moment, kept until uploaded). Recovery ignores all three.

use crate::storage::{Backend, RealFs};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const PRIMARY_STATE: &str = "backup.json";
pub const REPLICA_STATE: &str = "replica.json";
pub const STAGED: &str = "backup-points";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrimaryState {
    pub generation: u64,
    /// This folder's name in the manifest (`owner`).
    pub owner: String,
}

impl PrimaryState {
    /// Whether the bucket's manifest names this folder's server as its primary.
    pub fn owns(&self, m: &super::layout::Manifest) -> bool {
        self.generation == m.generation && self.owner == m.owner
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaState {
    /// The first segment of the bucket's log not yet applied here.
    pub next_segment: u64,
}

/// Reads a small JSON state file; `None` when absent.
pub fn read_state<T: DeserializeOwned>(dir: &Path, name: &str) -> io::Result<Option<T>> {
    match fs::read(dir.join(name)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: {e}"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes a small JSON state file atomically and durably.
pub fn write_state<T: Serialize>(dir: &Path, name: &str, value: &T) -> io::Result<()> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_file(dir, name, &body)
}

/// Writes `dir/name` atomically (temporary file, fsync, rename, folder fsync).
pub fn write_file(dir: &Path, name: &str, body: &[u8]) -> io::Result<()> {
    let temp = dir.join(format!("{name}.tmp"));
    let mut f = fs::File::create(&temp)?;
    f.write_all(body)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&temp, dir.join(name))?;
    sync_dir(dir)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    RealFs.sync_dir(dir)
}

pub fn remove_state(dir: &Path, name: &str) -> io::Result<()> {
    match fs::remove_file(dir.join(name)) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A restore point staged at a checkpoint: `backup-points/<first segment>-<time ms>/`.
#[derive(Debug, Clone)]
pub struct Staged {
    pub dir: PathBuf,
    pub first_segment: u64,
    pub time_ms: i64,
}

/// Links the files of a checkpoint into a new staged restore point.
pub fn stage(data: &Path, first_segment: u64, time_ms: i64, files: &[String]) -> io::Result<()> {
    let root = data.join(STAGED);
    if !root.is_dir() {
        fs::create_dir_all(&root)?;
        // The folder's own name, so that a staged point does not vanish with it.
        sync_dir(data)?;
    }
    let name = format!("{first_segment:016x}-{time_ms}");
    let temp = root.join(format!(".{name}"));
    if temp.exists() {
        fs::remove_dir_all(&temp)?;
    }
    fs::create_dir(&temp)?;
    for file in files {
        fs::hard_link(data.join(file), temp.join(file))?;
    }
    sync_dir(&temp)?;
    let dest = root.join(&name);
    if dest.exists() {
        fs::remove_dir_all(&dest)?;
    }
    fs::rename(&temp, &dest)?;
    sync_dir(&root)
}

/// Removes restore points a crash left half staged (call before any checkpoint can stage).
pub fn clean_staging(data: &Path) -> io::Result<()> {
    let root = data.join(STAGED);
    let entries = match fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// The staged restore points, oldest first (not those being staged right now).
pub fn staged(data: &Path) -> io::Result<Vec<Staged>> {
    let root = data.join(STAGED);
    let entries = match fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let parsed = name
            .split_once('-')
            .and_then(|(seq, time)| Some((u64::from_str_radix(seq, 16).ok()?, time.parse().ok()?)));
        if let Some((first_segment, time_ms)) = parsed {
            out.push(Staged {
                dir: entry.path(),
                first_segment,
                time_ms,
            });
        }
    }
    out.sort_by_key(|s| (s.first_segment, s.time_ms));
    Ok(out)
}

/// The log segments in the data folder, oldest first, with their sizes.
pub fn segments(data: &Path) -> io::Result<Vec<(u64, PathBuf, u64)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(data)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(seq) = name.to_str().and_then(crate::persist::segment_seq) {
            out.push((seq, entry.path(), entry.metadata()?.len()));
        }
    }
    out.sort();
    Ok(out)
}

/// Total size of the files under a folder (one level).
pub fn folder_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
