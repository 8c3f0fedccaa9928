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
use crate::persist::{Gate, Journal};
use crate::server::Handle;
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

/// Fills an empty replica folder from the newest restore point (a folder that already is a
/// replica's copy is kept: the replica restarts from it). Returns the store to follow.
pub fn prepare_replica(
    opts: &ReplicaOptions,
    dir: &Path,
) -> Result<Arc<dyn ObjectStore>, SetupError> {
    let objects = objstore::open(&opts.location).map_err(SetupError::Store)?;
    std::fs::create_dir_all(dir).map_err(|source| SetupError::Local {
        path: dir.to_owned(),
        source,
    })?;
    let known =
        local::read_state::<local::ReplicaState>(dir, local::REPLICA_STATE).map_err(|source| {
            SetupError::Local {
                path: dir.join(local::REPLICA_STATE),
                source,
            }
        })?;
    if known.is_some() {
        log::info!(
            "replica: restarting from the local copy in {}",
            dir.display()
        );
        return Ok(objects);
    }
    let empty = std::fs::read_dir(dir)
        .map_err(|source| SetupError::Local {
            path: dir.to_owned(),
            source,
        })?
        .next()
        .is_none();
    if !empty {
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
    .map_err(|source| SetupError::Local {
        path: dir.join(local::REPLICA_STATE),
        source,
    })?;
    log::info!(
        "replica: loaded the restore point of segment {} and {} segments from {location}",
        restored.point.first_segment,
        restored.segments
    );
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
