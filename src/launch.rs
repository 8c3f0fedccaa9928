//! Starting the server: recover the data folder on a storage backend (and import a seed folder
//! if asked), then listen. The binary calls [`start`] with the real file system; tests call it
//! with a failure injector or the power-loss model and talk to the returned server over real
//! sockets, exactly as clients of the binary do.

use crate::backup::{self, follower::Promotion};
use crate::config::Config;
use crate::persist;
use crate::server::{self, Boot, Recovering, Server, StartError};
use crate::storage::{Backend, Lock};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Why the server did not start.
#[derive(Debug)]
pub enum LaunchError {
    /// The data folder could not be opened or recovered.
    Data(persist::Error),
    /// The seed folder could not be imported.
    Import(persist::ImportError),
    /// Listening failed.
    Start(StartError),
    /// The backup or the replica could not be set up.
    Backup(backup::SetupError),
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchError::Data(e) => write!(f, "{e}"),
            LaunchError::Import(e) => write!(f, "{e}"),
            LaunchError::Start(e) => write!(f, "{e}"),
            LaunchError::Backup(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LaunchError {}

/// A running server: the listener, its sessions and background threads, in this process.
pub struct Running {
    server: Server,
    /// A replica's promotion switch.
    promotion: Option<Arc<Promotion>>,
    /// A replica's private data folder (no `--data`) and its backend, removed at the end.
    scratch: Option<(std::path::PathBuf, Arc<dyn Backend>)>,
}

impl Running {
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub fn port(&self) -> u16 {
        self.server.local_addr().port()
    }

    /// Starts the shutdown: no new connections; returns at once.
    pub fn shutdown(&self) {
        self.server.begin_shutdown();
    }

    /// Finishes the shutdown (starting it if needed): closes every session with 1001
    /// `server shutting down`, writes the final checkpoint and syncs the log, and waits for
    /// every thread, connection threads included (so the data folder's lock is released when
    /// this returns). False when the log's final sync failed.
    pub fn join(mut self) -> bool {
        let synced = self.server.shutdown();
        if !self.server.wait_released(Duration::from_secs(10)) {
            log::warn!("connection threads still running 10 s after the shutdown");
        }
        if let Some((dir, fs)) = self.scratch.take() {
            if let Err(e) = fs.remove_dir_all(&dir) {
                log::warn!(
                    "removing the replica's scratch folder {}: {e}",
                    dir.display()
                );
            }
        }
        synced
    }

    /// Promotes a read replica to primary (what SIGUSR1 does); nothing on a primary.
    pub fn promote(&self) {
        match &self.promotion {
            Some(p) => p.ask(),
            None => log::warn!("promotion asked, but this server is not a replica"),
        }
    }
}

/// A background thread's body, started once the server runs.
type Worker = Box<dyn FnOnce(server::Handle) + Send>;

/// A private folder for a replica started without `--data`.
fn scratch_dir() -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!(
        "fluxiondb-replica-{}-{nanos:x}",
        std::process::id()
    ))
}

/// Recovers the data folder (when `config.data_dir` is set) on `backend`, imports the seed
/// folder if asked, and starts listening.
pub fn start(mut config: Config, backend: Arc<dyn Backend>) -> Result<Running, LaunchError> {
    let mut scratch = None;
    if config.replica.is_some() && config.data_dir.is_none() {
        let dir = scratch_dir();
        config.data_dir = Some(dir.clone());
        scratch = Some((dir, backend.clone()));
    }
    // Bound before recovery: meanwhile /healthz answers, /readyz says `recovering` and
    // WebSocket upgrades are refused with 1013 `recovering`.
    let listener = server::bind(&config).map_err(LaunchError::Start)?;
    let mut replica_objects = None;
    let boot = match &config.data_dir {
        None => Boot::default(),
        Some(dir) => {
            let early = match Recovering::start(&listener, config.handshake_timeout) {
                Ok(early) => {
                    if let Ok(addr) = listener.local_addr() {
                        log::info!("bound to {addr}; recovering {}", dir.display());
                    }
                    Some(early)
                }
                Err(e) => {
                    log::warn!("cannot answer connections during recovery: {e}");
                    None
                }
            };
            // A replica takes the folder's lock before it sets the folder up, and recovery
            // goes on holding it.
            let prepared = config
                .replica
                .as_ref()
                .map(|r| backup::prepare_replica(r, dir, &*backend).map_err(LaunchError::Backup))
                .transpose();
            let opened = prepared.and_then(|p| {
                let (objects, lock) = p.map(|p| (p.objects, p.lock)).unzip();
                open_data(&config, dir, backend, lock).map(|b| (objects, b))
            });
            if let Some(early) = early {
                early.stop();
            }
            let (objects, boot) = opened?;
            replica_objects = objects;
            boot
        }
    };
    apply_memory_limit(&config, &boot);
    let dir = config.data_dir.clone();
    let (backup_opts, replica_opts) = (config.backup.clone(), config.replica.clone());
    let mut promotion = None;
    let mut worker: Option<(&str, Worker)> = None;
    if let (Some(journal), Some(dir)) = (&boot.journal, &dir) {
        if let Some(opts) = backup_opts {
            let force = backup::prepare_primary(journal, &opts, dir);
            let fs = journal.shared_backend();
            let w = backup::primary_worker(opts, dir.clone(), fs, force)
                .map_err(LaunchError::Backup)?;
            worker = Some(("backup", Box::new(w)));
        } else if let (Some(opts), Some(objects)) = (replica_opts, replica_objects) {
            let p = Arc::new(Promotion::default());
            let w = backup::replica_worker(opts, objects, journal, dir.clone(), p.clone())
                .map_err(LaunchError::Backup)?;
            promotion = Some(p);
            worker = Some(("replica", Box::new(w)));
        }
    }
    let mut server = Server::start(config, boot, listener).map_err(LaunchError::Start)?;
    if let Some((name, w)) = worker {
        server.spawn_worker(name, w).map_err(LaunchError::Start)?;
    }
    Ok(Running {
        server,
        promotion,
        scratch,
    })
}

/// Gives the store its memory limit; warns when recovered data is already past it (the server
/// then serves reads and refuses writes until memory is freed).
fn apply_memory_limit(config: &Config, boot: &Boot) {
    boot.store.set_memory_limit(config.max_memory);
    if config.max_memory > 0 {
        let (held, limit) = (boot.store.held_bytes(), config.max_memory);
        log::info!(
            "memory limit {} MiB; the store holds {} MiB",
            limit >> 20,
            held >> 20
        );
        if let Err(full) = boot.store.check_memory() {
            log::warn!("{full}: writes are refused until records are deleted");
        }
    }
}

/// Recovers the data folder (taking its lock, unless `lock` is it), then imports a seed folder
/// into it if asked.
fn open_data(
    config: &Config,
    dir: &Path,
    backend: Arc<dyn Backend>,
    lock: Option<Box<dyn Lock>>,
) -> Result<Boot, LaunchError> {
    let (policy, repair) = (config.fsync, config.repair);
    let mut r = match lock {
        Some(lock) => persist::open_locked(backend, dir, lock, policy, repair),
        None => persist::open(backend, dir, policy, repair),
    }
    .map_err(LaunchError::Data)?;
    let rep = &r.report;
    crate::metrics::recovered(rep.elapsed);
    let secs = rep.elapsed.as_secs_f64().max(1e-9);
    log::info!(
        "recovered {} collections, {} records, {} API keys, {} log entries from {} in {:.2} s ({:.0} records/s, {:.1} MB/s)",
        rep.collections,
        rep.records,
        rep.keys,
        rep.log_entries,
        dir.display(),
        secs,
        rep.records as f64 / secs,
        rep.bytes_read as f64 / secs / 1e6
    );
    if let Some(seed) = &config.import_seed {
        let imported =
            persist::import_seed(&r.journal, &r.store, &mut r.keys, &config.secret_key, seed)
                .map_err(LaunchError::Import)?;
        match imported {
            Some(s) => log::info!(
                "imported the seed folder {}: {} collections, {} documents, {} records, {} values, {} API keys ({} records without a positive timestamp skipped)",
                seed.display(),
                s.collections,
                s.documents,
                s.records,
                s.values,
                s.keys,
                s.skipped
            ),
            None => log::info!(
                "{} was imported into this data folder before; not importing it again",
                seed.display()
            ),
        }
    }
    Ok(Boot {
        store: r.store,
        keys: r.keys,
        journal: Some(r.journal),
    })
}
