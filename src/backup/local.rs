//! The backup's own files in the data folder: `backup.json` (the generation this folder's
//! server writes the bucket as), `replica.json` (a replica's position in the bucket's log) and
//! `backup-points/` (restore points staged at checkpoints: hard links to the snapshot, key and
//! retention files of the moment, kept until uploaded). Recovery ignores all three.
//!
//! Every file operation goes through the storage [`Backend`] the data folder was opened on (the
//! journal's), so the power-loss model and the fault injector reach these files too.

use crate::storage::{Backend, EntryKind, OpenMode};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io;
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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplicaState {
    /// The first segment of the bucket's log not yet applied here.
    pub next_segment: u64,
    /// The history those segments belong to (absent in a file an older version wrote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followed: Option<super::continuity::Followed>,
    /// A time (the primary's clock, ms since the epoch) up to which every write the primary
    /// acknowledged is known to be applied here, as of the last save: the lag gauge counts
    /// from it after a restart, until the replica reads the bucket again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of_ms: Option<i64>,
}

/// Reads a small JSON state file; `None` when absent.
pub fn read_state<T: DeserializeOwned>(
    fs: &dyn Backend,
    dir: &Path,
    name: &str,
) -> io::Result<Option<T>> {
    match fs.read(&dir.join(name)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: {e}"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes a small JSON state file atomically and durably.
pub fn write_state<T: Serialize>(
    fs: &dyn Backend,
    dir: &Path,
    name: &str,
    value: &T,
) -> io::Result<()> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_file(fs, dir, name, &body)
}

/// Writes `dir/name` atomically (temporary file, fsync, rename, folder fsync): after a power
/// cut it holds the old content or the new, whole. A failed write removes its temporary file.
pub fn write_file(fs: &dyn Backend, dir: &Path, name: &str, body: &[u8]) -> io::Result<()> {
    let temp = dir.join(format!("{name}.tmp"));
    let written = fs.open(&temp, OpenMode::Truncate).and_then(|f| {
        f.write_all(body)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = fs.remove_file(&temp);
        return Err(e);
    }
    fs.rename(&temp, &dir.join(name))?;
    fs.sync_dir(dir)
}

/// Removes a state file, durably; nothing to do when absent.
pub fn remove_state(fs: &dyn Backend, dir: &Path, name: &str) -> io::Result<()> {
    match fs.remove_file(&dir.join(name)) {
        Ok(()) => fs.sync_dir(dir),
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

/// Removes a folder and what it holds; nothing to do when absent.
fn remove_all(fs: &dyn Backend, dir: &Path) -> io::Result<()> {
    match fs.remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Links the files of a checkpoint into a new staged restore point: hard links in a hidden
/// folder (`.<name>`, which [`staged`] does not list), that folder fsynced, then renamed to its
/// name and `backup-points/` fsynced. A point's name is durable only once its links are.
pub fn stage(
    fs: &dyn Backend,
    data: &Path,
    first_segment: u64,
    time_ms: i64,
    files: &[String],
) -> io::Result<()> {
    let root = data.join(STAGED);
    if !fs.exists(&root)? {
        match fs.create_dir(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        // The folder's own name, so that a staged point does not vanish with it.
        fs.sync_dir(data)?;
    }
    let name = format!("{first_segment:016x}-{time_ms}");
    let temp = root.join(format!(".{name}"));
    remove_all(fs, &temp)?;
    fs.create_dir(&temp)?;
    for file in files {
        fs.hard_link(&data.join(file), &temp.join(file))?;
    }
    fs.sync_dir(&temp)?;
    let dest = root.join(&name);
    if fs.exists(&dest)? {
        discard(fs, &dest)?;
    }
    fs.rename(&temp, &dest)?;
    fs.sync_dir(&root)
}

/// Removes a staged restore point (once uploaded).
pub fn remove_staged(fs: &dyn Backend, point: &Staged) -> io::Result<()> {
    discard(fs, &point.dir)
}

/// Removes a point's folder without ever leaving it listed with files missing: it is first
/// renamed to a hidden name (`.gone-<name>`, which [`staged`] skips and [`clean_staging`]
/// removes), then emptied and removed. A removal that fails half-way (or, on a file system that
/// writes metadata back in order, a power cut during it) leaves only the hidden folder: never a
/// point the uploader would upload again without some of its files, over the whole one.
fn discard(fs: &dyn Backend, dir: &Path) -> io::Result<()> {
    let (Some(root), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a staged restore point", dir.display()),
        ));
    };
    let mut hidden = std::ffi::OsString::from(".gone-");
    hidden.push(name);
    let gone = root.join(hidden);
    // What an earlier removal of the same name could not finish.
    remove_all(fs, &gone)?;
    fs.rename(dir, &gone)?;
    fs.remove_dir_all(&gone)
}

/// Removes restore points a crash left half staged (call before any checkpoint can stage).
pub fn clean_staging(fs: &dyn Backend, data: &Path) -> io::Result<()> {
    let root = data.join(STAGED);
    let entries = match fs.read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        if entry.name.to_string_lossy().starts_with('.') {
            match fs.remove_entry(&root.join(&entry.name), entry.kind) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// The staged restore points, oldest first (not those being staged right now).
pub fn staged(fs: &dyn Backend, data: &Path) -> io::Result<Vec<Staged>> {
    let root = data.join(STAGED);
    let entries = match fs.read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let name = entry.name.to_string_lossy().into_owned();
        if name.starts_with('.') || entry.kind != EntryKind::Dir {
            continue;
        }
        let parsed = name
            .split_once('-')
            .and_then(|(seq, time)| Some((u64::from_str_radix(seq, 16).ok()?, time.parse().ok()?)));
        if let Some((first_segment, time_ms)) = parsed {
            out.push(Staged {
                dir: root.join(&name),
                first_segment,
                time_ms,
            });
        }
    }
    out.sort_by_key(|s| (s.first_segment, s.time_ms));
    Ok(out)
}

/// The names in a staged restore point, sorted.
pub fn staged_files(fs: &dyn Backend, point: &Staged) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = fs
        .read_dir(&point.dir)?
        .into_iter()
        .map(|e| e.name.to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// The log segments in the data folder, oldest first, with their sizes.
pub fn segments(fs: &dyn Backend, data: &Path) -> io::Result<Vec<(u64, PathBuf, u64)>> {
    let mut out = Vec::new();
    for entry in fs.read_dir(data)? {
        if let Some(seq) = entry.name.to_str().and_then(crate::persist::segment_seq) {
            let path = data.join(&entry.name);
            // A checkpoint may remove a covered segment meanwhile.
            match fs.file_size(&path) {
                Ok(size) => out.push((seq, path, size)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Total size of the files under a folder (one level).
pub fn folder_size(fs: &dyn Backend, dir: &Path) -> u64 {
    fs.read_dir(dir)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| fs.file_size(&dir.join(&e.name)).ok())
                .sum()
        })
        .unwrap_or(0)
}
