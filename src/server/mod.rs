//! Sockets and threads only: a blocking listener, one named thread per connection, the
//! registry of live sessions, and an orderly shutdown.

mod conn;
mod dispatch;
mod frames;
mod handshake;
mod http;
mod listener;
mod live_sink;
mod local;
mod push;
mod recovering;
mod registry;
mod session;
pub mod signals;
mod throttle;

pub use local::LocalSession;
pub use recovering::Recovering;
use registry::PushError;

use crate::auth::{KeyRing, Scope};
use crate::config::Config;
use crate::ops;
use crate::persist::{FsyncPolicy, Journal};
use crate::store::Store;
use parking_lot::{Condvar, Mutex};
use registry::Registry;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// State shared by every thread.
pub(crate) struct Shared {
    config: Config,
    store: Store,
    keys: KeyRing,
    journal: Option<Journal>,
    registry: Arc<Registry>,
    /// Live subscriptions' feeds.
    live: crate::live::Hub,
    /// Encoded answers of repeated reads (`--answer-cache-mib`).
    answers: ops::answer_cache::AnswerCache,
    /// Slows down refusals of unknown API keys from addresses that keep presenting them.
    throttle: throttle::Throttle,
    stopping: AtomicBool,
    /// Connection threads alive (handshakes included), for the connection cap.
    threads: AtomicUsize,
    refusals: AtomicUsize,
    stop: Stopper,
}

impl Shared {
    /// Hands `text` to a session as one text frame, once the log is durable up to `after` (the
    /// position of the change the push reports; 0 when none), so a push never reveals a change
    /// that could still be lost.
    fn push(
        &self,
        session: &registry::SessionHandle,
        text: &str,
        after: crate::persist::Lsn,
    ) -> Result<(), PushError> {
        if after > 0 {
            if let Some(journal) = &self.journal {
                journal.wait(after).map_err(|_| PushError::Closed)?;
            }
        }
        let mut frame = Vec::with_capacity(text.len() + 10);
        frames::write_header(&mut frame, frames::OP_TEXT, text.len());
        frame.extend_from_slice(text.as_bytes());
        session.push(&frame, self.config.send_buffer_bytes)
    }
}

/// Lets background threads sleep until their next round or the shutdown, whichever is first.
#[derive(Default)]
struct Stopper {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl Stopper {
    /// Sleeps up to `d`; true when the server is stopping.
    fn sleep(&self, d: Duration) -> bool {
        let mut stopped = self.stopped.lock();
        if !*stopped {
            self.cv.wait_for(&mut stopped, d);
        }
        *stopped
    }

    fn stop(&self) {
        *self.stopped.lock() = true;
        self.cv.notify_all();
    }
}

/// What the server starts with: recovered (or empty) data and the log, if persistent.
#[derive(Default)]
pub struct Boot {
    pub store: Store,
    pub keys: Vec<(String, Scope)>,
    pub journal: Option<Journal>,
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    Bind(SocketAddr, io::Error),
    Io(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            StartError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A running server.
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    listener_fd: i32,
    listener: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts accepting on `listener` (from [`bind`]) in a background thread (plus, with
    /// persistence, the snapshot thread and the once-a-second fsync).
    pub fn start(config: Config, boot: Boot, listener: TcpListener) -> Result<Server, StartError> {
        let addr = listener.local_addr().map_err(StartError::Io)?;
        signals::install_wake().map_err(StartError::Io)?;
        let keys = KeyRing::new(&config.secret_key);
        for (key, scope) in &boot.keys {
            keys.add(key, *scope);
        }
        let live = crate::live::Hub::new(config.send_buffer_bytes)
            .with_filter_limit(crate::live::budget::server_limit(config.max_memory));
        boot.store.set_default_limits(config.retention);
        if let Err(e) = ops::enforce_everywhere(&boot.store, boot.journal.as_ref(), &live) {
            log::error!("applying retention at start-up failed: {e:?}");
        }
        let shared = Arc::new(Shared {
            answers: ops::answer_cache::AnswerCache::new(config.answer_cache_bytes),
            live,
            keys,
            config,
            store: boot.store,
            journal: boot.journal,
            registry: Arc::default(),
            throttle: throttle::Throttle::default(),
            stopping: AtomicBool::new(false),
            threads: AtomicUsize::new(0),
            refusals: AtomicUsize::new(0),
            stop: Stopper::default(),
        });
        let mut background = Vec::new();
        if let Some(journal) = &shared.journal {
            let worker = shared.clone();
            background.push(spawn("snapshots", move || snapshot_loop(&worker))?);
            if journal.wal().policy() == FsyncPolicy::EverySec {
                let worker = shared.clone();
                background.push(spawn("fsync", move || {
                    if let Some(j) = &worker.journal {
                        let interval = worker.config.fsync_interval;
                        j.wal().sync_every(interval, |d| worker.stop.sleep(d));
                    }
                })?);
            }
        }
        let listener_fd = listener.as_raw_fd();
        let worker = shared.clone();
        let handle = spawn("listener", move || listener::run(worker, listener))?;
        Ok(Server {
            shared,
            addr,
            listener_fd,
            listener: Some(handle),
            background,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting new connections; returns at once.
    pub fn begin_shutdown(&self) {
        if self.shared.stopping.swap(true, Ordering::AcqRel) || self.listener.is_none() {
            return;
        }
        // SAFETY: the fd belongs to the listener, which is alive until its thread is joined
        // (only `shutdown`, which takes `&mut self`, joins it); shutting it down makes the
        // blocked accept() return.
        unsafe {
            libc::shutdown(self.listener_fd, libc::SHUT_RDWR);
        }
    }

    /// A session without a socket, authenticated with `api_key` (`None` for an unknown key or
    /// a stopping server): its requests go through the same dispatcher as a WebSocket
    /// session's, and `conn` lists it (at 127.0.0.1, named `name`).
    pub fn local_session(&self, api_key: &str, name: Option<&str>) -> Option<LocalSession> {
        LocalSession::open(&self.shared, api_key, name)
    }

    /// Pushes one text message to every session named `name` (the `name` of its upgrade
    /// request); returns how many took it. The in-process way into the push seam (see
    /// `registry.rs`): no request a client can send reaches it.
    pub fn push(&self, name: &str, text: &str) -> usize {
        let targets = self
            .shared
            .registry
            .matching(|s| s.name.as_deref() == Some(name));
        targets
            .iter()
            .filter(|s| self.shared.push(s, text, 0).is_ok())
            .count()
    }

    /// Stops accepting, closes every session with 1001 `server shutting down`, and waits for
    /// the listener thread; then writes the final checkpoint, closes the log to appends (a
    /// session still at work gets `server shutting down` for a write) and syncs it. False when
    /// that sync failed (what was acknowledged since the last fsync may not be on disk).
    pub fn shutdown(&mut self) -> bool {
        if !self.shared.stopping.swap(true, Ordering::AcqRel) {
            // SAFETY: as in `begin_shutdown`; the listener thread is joined just below.
            unsafe {
                libc::shutdown(self.listener_fd, libc::SHUT_RDWR);
            }
        }
        if let Some(h) = self.listener.take() {
            let _ = h.join();
        }
        self.shared.registry.close_all();
        self.shared.stop.stop();
        for h in self.background.drain(..) {
            let _ = h.join();
        }
        let Some(journal) = &self.shared.journal else {
            return true;
        };
        match journal.checkpoint(&self.shared.store) {
            Ok(r) if r.failed == 0 => log::info!("final snapshot written"),
            Ok(r) => log::error!(
                "final snapshot: {} collection(s) could not be written; the log still holds \
                 their changes",
                r.failed
            ),
            Err(e) => log::error!("final snapshot failed: {e}; the log still holds every change"),
        }
        journal.wal().close();
        match journal.wal().sync_all() {
            Ok(()) => true,
            Err(e) => {
                log::error!("final log sync failed: {e}");
                false
            }
        }
    }
}

/// Binds the listening socket (before recovery, so that health and readiness answer while the
/// data folder loads; see [`Recovering`]).
pub fn bind(config: &Config) -> Result<TcpListener, StartError> {
    let addr = SocketAddr::new(config.bind, config.port);
    TcpListener::bind(addr).map_err(|e| StartError::Bind(addr, e))
}

impl Server {
    /// Waits (up to `timeout`) until every connection thread has ended and dropped its share
    /// of the state — with it the data folder's lock, so that another server started in this
    /// process can open the folder. True when they all have.
    pub fn wait_released(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while Arc::strong_count(&self.shared) > 1 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, StartError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(StartError::Io)
}

/// Every flush interval, snapshot the changed collections.
fn snapshot_loop(shared: &Shared) {
    let Some(journal) = &shared.journal else {
        return;
    };
    while !shared.stop.sleep(shared.config.flush_interval) {
        // A panic (a bug) ends this checkpoint, not the checkpoints: what it had not saved is
        // still marked changed, and the log segments are only removed after a whole one.
        let done = std::panic::catch_unwind(AssertUnwindSafe(|| journal.checkpoint(&shared.store)));
        match done {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                crate::metrics::checkpoint_failed();
                log::error!("checkpoint failed: {e}; will retry at the next interval");
            }
            Err(panic) => {
                crate::metrics::checkpoint_failed();
                log::error!(
                    "checkpoint panicked: {}; the log is kept, and the checkpoint runs again \
                     at the next interval",
                    crate::panics::describe(&*panic)
                );
            }
        }
    }
}

/// What a background worker started from outside this module (the backup, a replica's
/// follower) sees of the running server.
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    pub fn journal(&self) -> Option<&Journal> {
        self.shared.journal.as_ref()
    }

    pub fn keys(&self) -> &KeyRing {
        &self.shared.keys
    }

    /// The live subscriptions' feeds (a replica publishes the writes it copies there).
    pub fn live(&self) -> &crate::live::Hub {
        &self.shared.live
    }

    /// Closes every connection that authenticated with `key` (1008 `API key revoked`, after
    /// a `subend` for each of its subscriptions), as `keys remove` does.
    pub fn revoke(&self, key: &crate::auth::KeyEntry) {
        crate::ops::Sessions::revoke(&*self.shared.registry, key);
    }

    /// Sleeps up to `d`; true when the server is stopping.
    pub fn sleep(&self, d: Duration) -> bool {
        self.shared.stop.sleep(d)
    }

    /// Whether the server is shutting down.
    pub fn stopping(&self) -> bool {
        *self.shared.stop.stopped.lock()
    }
}

impl Server {
    /// Starts a background thread that is joined at shutdown, before the final checkpoint.
    pub fn spawn_worker(
        &mut self,
        name: &str,
        f: impl FnOnce(Handle) + Send + 'static,
    ) -> Result<(), StartError> {
        let handle = Handle {
            shared: self.shared.clone(),
        };
        self.background.push(spawn(name, move || f(handle))?);
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.listener.is_some() {
            self.shutdown();
        }
    }
}
