//! Continuous backup to object storage, point-in-time restore, and read replicas.
//!
//! - A primary started with `--backup LOCATION` runs the [`uploader`] thread: closed log
//!   segments, restore points (staged at checkpoints) and the key file go to the bucket, and
//!   the manifest is moved on by creating its next version with a conditional PUT (see
//!   [`layout`] for the bucket's layout, [`manifests`] for the versions).
//! - `fluxiondb restore` rebuilds a data folder from it ([`restore`]).
//! - A server started with `--replica-of LOCATION` loads the newest restore point and runs the
//!   [`follower`] thread, which applies segments as they appear; promoted, it becomes the
//!   primary of the next generation, and the deposed primary fences itself.

pub mod continuity;
pub mod fence;
pub mod follower;
pub mod layout;
pub mod local;
#[cfg(test)]
mod local_tests;
pub mod manifests;
pub mod packing;
pub mod reload;
pub mod replicated;
pub mod restore;
pub mod staging;
pub mod uploader;

use crate::objstore::{self, Location, ObjectStore};
use crate::persist::{self, Gate, Journal};
use crate::server::Handle;
use crate::storage::{Backend, Lock, LOCK_FILE};
use follower::{Follower, Promotion};
use staging::Staging;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uploader::Uploader;

/// `--backup` and its companions.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub location: Location,
    pub interval: Duration,
    pub keep: Option<Duration>,
}

/// `--replica-of` and its companions.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    pub location: Location,
    pub poll: Duration,
    /// The backup interval used once promoted.
    pub interval: Duration,
    pub keep: Option<Duration>,
}

#[derive(Debug)]
pub enum SetupError {
    Store(objstore::Error),
    Restore(restore::RestoreError),
    Local {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `--replica-of` with a `--data` folder that holds another server's data.
    NotAReplicaFolder(PathBuf),
    /// The data folder could not be created or locked (another process holds it).
    Data(persist::Error),
    /// The first setup's staging folder could not be made or moved into place.
    Staging(staging::Error),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Store(e) => write!(f, "{e}"),
            SetupError::Restore(e) => write!(f, "loading the replica: {e}"),
            SetupError::Local { path, source } => write!(f, "{}: {source}", path.display()),
            SetupError::NotAReplicaFolder(dir) => write!(
                f,
                "{} holds data that is not a replica's copy: give --replica-of an empty or new folder",
                dir.display()
            ),
            SetupError::Data(e) => write!(f, "{e}"),
            SetupError::Staging(e) => write!(f, "setting up the replica: {e}"),
        }
    }
}

impl std::error::Error for SetupError {}

/// Prepares a recovered data folder for the backup, before the server starts: every segment is
/// kept until the uploader has seen it, and checkpoints stage restore points.
pub fn prepare_primary(journal: &Journal, opts: &BackupOptions, dir: &Path) -> Arc<AtomicBool> {
    journal.keep_segments_from(0);
    if let Err(e) = local::clean_staging(journal.backend(), dir) {
        log::warn!("backup: removing half-staged restore points failed: {e}");
    }
    let force = Arc::new(AtomicBool::new(false));
    uploader::install_hook(journal, dir.to_owned(), force.clone());
    crate::metrics::backup::backup_enabled();
    log::info!(
        "backup to {} every {:?}{}",
        opts.location,
        opts.interval,
        opts.keep
            .map(|k| format!(", keeping {k:?} of history"))
            .unwrap_or_default()
    );
    force
}

/// The uploader's thread body; `fs` is the data folder's storage backend (the journal's).
pub fn primary_worker(
    opts: BackupOptions,
    dir: PathBuf,
    fs: Arc<dyn Backend>,
    force: Arc<AtomicBool>,
) -> Result<impl FnOnce(Handle) + Send + 'static, SetupError> {
    // A store that is only unavailable for now is retried every round, like one that stops
    // answering later: the primary serves meanwhile. A location that can never work (a
    // malformed one was refused with the flags) still fails the start.
    let objects = objstore::open_retrying(&opts.location).map_err(SetupError::Store)?;
    let uploader = Uploader {
        objects,
        fs,
        location: opts.location.to_string(),
        dir,
        interval: opts.interval,
        keep: opts.keep,
        force_point: force,
        state: None,
        known_files: HashSet::new(),
        behind_since: None,
        last_prune: Instant::now(),
        prune_owed: false,
    };
    Ok(move |handle: Handle| uploader.run(&handle))
}

/// The staging folder's tag: a replica's first setup is written in `.NAME.replica-PID` beside
/// its data folder (or `.replica-PID` inside it, see [`staging`]).
const STAGING_TAG: &str = persist::Build::ReplicaSetup.tag();

/// A replica's data folder, ready to recover.
pub struct PreparedReplica {
    /// The store to follow.
    pub objects: Arc<dyn ObjectStore>,
    /// The data folder's lock, for the recovery (`persist::open_locked`) to go on holding.
    pub lock: Box<dyn Lock>,
}

/// Takes the replica folder's lock (creating the folder) and, when it is not a replica's copy
/// yet, fills it from the newest restore point.
///
/// The lock is taken first, so that no other process uses the folder during the setup. The
/// first setup is written in a staging folder, `replica.json` last, and moved into place only
/// once whole; a failed one leaves the folder as it was (empty, or absent), so the next start
/// simply tries again. Staging folders a killed setup left are removed.
///
/// Everything it does to the folder goes through `fs`, the data folder's backend (the staging
/// folder, the restore point's files and the lock file's identity, by its device and number,
/// among them).
pub fn prepare_replica(
    opts: &ReplicaOptions,
    dir: &Path,
    fs: &dyn Backend,
) -> Result<PreparedReplica, SetupError> {
    let existed = fs.exists(dir).unwrap_or(false);
    let lock_file = dir.join(LOCK_FILE);
    let lock_existed = fs.exists(&lock_file).unwrap_or(false);
    let lock = persist::lock_folder(fs, dir).map_err(SetupError::Data)?;
    let lock_id = |path: &Path| fs.metadata(path).ok().map(|m| (m.dev, m.ino));
    let ours = lock_id(&lock_file).filter(|_| !lock_existed);
    let known = local::read_state::<local::ReplicaState>(fs, dir, local::REPLICA_STATE).map_err(
        |source| SetupError::Local {
            path: dir.join(local::REPLICA_STATE),
            source,
        },
    )?;
    if known.is_some() {
        // A setup killed while moving its last entries up leaves its (empty) staging folder.
        match staging::leftovers(fs, dir, STAGING_TAG) {
            Ok(left) => remove_leftovers(fs, left.beside.iter().chain(&left.inside)),
            Err(e) => log::warn!("replica: looking for unfinished setups failed: {e}"),
        }
        let objects = objstore::open(&opts.location).map_err(SetupError::Store)?;
        log::info!(
            "replica: restarting from the local copy in {}",
            dir.display()
        );
        return Ok(PreparedReplica { objects, lock });
    }
    let mut lock = lock;
    match first_setup(opts, dir, fs, &mut lock) {
        Ok(objects) => Ok(PreparedReplica { objects, lock }),
        Err(e) => {
            // As it was: without the lock file this start created in it, and absent if it was.
            // Only our own: a setup that failed after emptying the folder for its rename may
            // find another process's lock file there since.
            if ours.is_some() && lock_id(&lock_file) == ours {
                if let Err(e) = fs.remove_file(&lock_file) {
                    log::warn!("replica: removing {}: {e}", lock_file.display());
                }
            }
            if !existed {
                // Only if empty: it could be in place, whole, if only the last fsync failed.
                let _ = fs.remove_dir(dir);
            }
            drop(lock);
            Err(e)
        }
    }
}

/// Removes staging folders of killed setups (the caller holds the data folder's lock).
fn remove_leftovers<'a>(fs: &dyn Backend, paths: impl Iterator<Item = &'a PathBuf>) {
    for path in paths {
        log::warn!(
            "replica: removing {}, left by a setup that did not finish",
            path.display()
        );
        if let Err(e) = fs.remove_dir_all(path) {
            log::warn!("replica: removing {}: {e}", path.display());
        }
    }
}

/// A replica's first setup into `dir` (locked by `lock`, not a replica's copy): the newest
/// restore point and the segments after it, built in a staging folder and moved into place.
/// When that folder was beside `dir`, `lock` becomes the lock taken on it, which is the
/// folder's lock once in place.
fn first_setup(
    opts: &ReplicaOptions,
    dir: &Path,
    fs: &dyn Backend,
    lock: &mut Box<dyn Lock>,
) -> Result<Arc<dyn ObjectStore>, SetupError> {
    let objects = objstore::open(&opts.location).map_err(SetupError::Store)?;
    let local_error = |path: &Path| {
        let path = path.to_owned();
        move |source| SetupError::Local { path, source }
    };
    let left = staging::leftovers(fs, dir, STAGING_TAG).map_err(SetupError::Staging)?;
    if !left.inside.is_empty() {
        // A setup inside the folder (a mount point) killed while moving its entries up: what it
        // moved is in the folder, beside the lock file; none of it is a replica's copy yet.
        log::warn!(
            "replica: removing what a setup that did not finish left in {}",
            dir.display()
        );
        staging::clear_inside(fs, dir, &[LOCK_FILE]).map_err(SetupError::Staging)?;
    }
    remove_leftovers(fs, left.beside.iter());
    let entries = fs.read_dir(dir).map_err(local_error(dir))?;
    if entries.iter().any(|e| e.name != LOCK_FILE) {
        return Err(SetupError::NotAReplicaFolder(dir.to_owned()));
    }

    let staged = Staging::create(fs, dir, STAGING_TAG, "fluxiondb").map_err(SetupError::Staging)?;
    // Beside the folder, the staged one gets a lock file of its own, held from now on: renamed
    // over the folder, it is the folder's lock file, still held (the folder's own, emptied out
    // of the way just before, is held until then too).
    let staged_lock = if staged.is_beside() {
        Some(persist::lock_folder(fs, staged.dir()).map_err(SetupError::Data)?)
    } else {
        None
    };
    let location = opts.location.to_string();
    let restored = restore::materialize(&*objects, &location, fs, staged.dir(), None)
        .map_err(SetupError::Restore)?;
    // Last: a folder holding it is a whole copy.
    local::write_state(
        fs,
        staged.dir(),
        local::REPLICA_STATE,
        &local::ReplicaState {
            next_segment: restored.next_segment,
            followed: Some(continuity::Followed::of(&restored.manifest)),
            as_of_ms: Some(restored.manifest.updated_ms),
        },
    )
    .map_err(local_error(&staged.dir().join(local::REPLICA_STATE)))?;
    staged
        .commit_replacing(&[LOCK_FILE], Some(local::REPLICA_STATE))
        .map_err(SetupError::Staging)?;
    log::info!(
        "replica: loaded the restore point of segment {} and {} segments from {location}",
        restored.point.first_segment,
        restored.segments
    );
    if let Some(staged_lock) = staged_lock {
        *lock = staged_lock;
    }
    Ok(objects)
}

/// The follower's thread body; the journal is closed to client writes.
pub fn replica_worker(
    opts: ReplicaOptions,
    objects: Arc<dyn ObjectStore>,
    journal: &Journal,
    dir: PathBuf,
    promotion: Arc<Promotion>,
) -> Result<impl FnOnce(Handle) + Send + 'static, SetupError> {
    journal.set_gate(Gate::Replica);
    let fs = journal.shared_backend();
    let state = local::read_state::<local::ReplicaState>(&*fs, &dir, local::REPLICA_STATE)
        .map_err(|source| SetupError::Local {
            path: dir.join(local::REPLICA_STATE),
            source,
        })?;
    let state = state.unwrap_or_default();
    let follower = Follower {
        objects,
        fs,
        location: opts.location.to_string(),
        dir,
        poll: opts.poll,
        next_segment: state.next_segment,
        keys_crc: None,
        promotion,
        interval: opts.interval,
        keep: opts.keep,
        applied: 0,
        behind_since: None,
        followed: state.followed,
        // (A copy saved by an older version: counted from this start.)
        as_of_ms: state.as_of_ms.unwrap_or_else(persist::now_ms),
    };
    Ok(move |handle: Handle| follower.run(&handle))
}
