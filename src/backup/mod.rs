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

pub mod follower;
pub mod layout;
pub mod local;
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
use crate::storage::{Backend, Lock};
use follower::{Follower, Promotion};
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
        }
    }
}

impl std::error::Error for SetupError {}

/// Prepares a recovered data folder for the backup, before the server starts: every segment is
/// kept until the uploader has seen it, and checkpoints stage restore points.
pub fn prepare_primary(journal: &Journal, opts: &BackupOptions, dir: &Path) -> Arc<AtomicBool> {
    journal.keep_segments_from(0);
    if let Err(e) = local::clean_staging(dir) {
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

/// The uploader's thread body.
pub fn primary_worker(
    opts: BackupOptions,
    dir: PathBuf,
    force: Arc<AtomicBool>,
) -> Result<impl FnOnce(Handle) + Send + 'static, SetupError> {
    let objects = objstore::open(&opts.location).map_err(SetupError::Store)?;
    let uploader = Uploader {
        objects,
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

/// The data folder's lock file (see `persist`): the one name a folder may hold and still be set
/// up as a replica.
const LOCK_FILE: &str = "LOCK";

/// A replica's data folder, ready to recover.
pub struct PreparedReplica {
    /// The store to follow.
    pub objects: Arc<dyn ObjectStore>,
    /// The data folder's lock, for the recovery (`persist::open_locked`) to go on holding.
    pub lock: Box<dyn Lock>,
}

/// Takes the replica folder's lock (creating the folder), then fills it from the newest restore
/// point if it is empty (a folder that already is a replica's copy is kept: the replica
/// restarts from it). No other process uses the folder during the setup.
pub fn prepare_replica(
    opts: &ReplicaOptions,
    dir: &Path,
    fs: &dyn Backend,
) -> Result<PreparedReplica, SetupError> {
    let lock = persist::lock_folder(fs, dir).map_err(SetupError::Data)?;
    let objects = objstore::open(&opts.location).map_err(SetupError::Store)?;
    let local_error = |path: &Path| {
        let path = path.to_owned();
        move |source| SetupError::Local { path, source }
    };
    let known = local::read_state::<local::ReplicaState>(dir, local::REPLICA_STATE)
        .map_err(local_error(&dir.join(local::REPLICA_STATE)))?;
    if known.is_some() {
        log::info!(
            "replica: restarting from the local copy in {}",
            dir.display()
        );
        return Ok(PreparedReplica { objects, lock });
    }
    let mut entries = std::fs::read_dir(dir).map_err(local_error(dir))?;
    let others = entries.try_fold(false, |others, entry| {
        entry.map(|e| others || e.file_name() != LOCK_FILE)
    });
    if others.map_err(local_error(dir))? {
        return Err(SetupError::NotAReplicaFolder(dir.to_owned()));
    }
    let location = opts.location.to_string();
    let restored =
        restore::materialize(&*objects, &location, dir, None).map_err(SetupError::Restore)?;
    local::write_state(
        dir,
        local::REPLICA_STATE,
        &local::ReplicaState {
            next_segment: restored.next_segment,
        },
    )
    .map_err(local_error(&dir.join(local::REPLICA_STATE)))?;
    log::info!(
        "replica: loaded the restore point of segment {} and {} segments from {location}",
        restored.point.first_segment,
        restored.segments
    );
    Ok(PreparedReplica { objects, lock })
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
    let state =
        local::read_state::<local::ReplicaState>(&dir, local::REPLICA_STATE).map_err(|source| {
            SetupError::Local {
                path: dir.join(local::REPLICA_STATE),
                source,
            }
        })?;
    let follower = Follower {
        objects,
        location: opts.location.to_string(),
        dir,
        poll: opts.poll,
        next_segment: state.map_or(0, |s| s.next_segment),
        keys_crc: None,
        promotion,
        interval: opts.interval,
        keep: opts.keep,
        applied: 0,
        behind_since: None,
        caught_up: Instant::now(),
    };
    Ok(move |handle: Handle| follower.run(&handle))
}
