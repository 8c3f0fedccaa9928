//! Sockets and threads only: a blocking listener, one named thread per connection, the
//! registry of live sessions, and an orderly shutdown.

mod conn;
mod handshake;
mod listener;
mod registry;
mod session;
pub mod signals;

pub use handshake::{form_decode, parse_query};

use crate::auth::KeyRing;
use crate::config::Config;
use crate::store::Store;
use registry::Registry;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// State shared by every thread.
pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub keys: KeyRing,
    registry: Registry,
    stopping: AtomicBool,
    /// Connection threads alive (handshakes included), for the connection cap.
    threads: AtomicUsize,
    refusals: AtomicUsize,
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
}

impl Server {
    /// Binds and starts accepting in a background thread.
    pub fn start(config: Config) -> Result<Server, StartError> {
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(addr).map_err(|e| StartError::Bind(addr, e))?;
        let addr = listener.local_addr().map_err(StartError::Io)?;
        let shared = Arc::new(Shared {
            keys: KeyRing::new(&config.secret_key),
            config,
            store: Store::new(),
            registry: Registry::default(),
            stopping: AtomicBool::new(false),
            threads: AtomicUsize::new(0),
            refusals: AtomicUsize::new(0),
        });
        let listener_fd = listener.as_raw_fd();
        let worker = shared.clone();
        let handle = std::thread::Builder::new()
            .name("listener".into())
            .spawn(move || listener::run(worker, listener))
            .map_err(StartError::Io)?;
        Ok(Server {
            shared,
            addr,
            listener_fd,
            listener: Some(handle),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, closes every session with 1001 `server shutting down`, and waits for
    /// the listener thread.
    pub fn shutdown(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        // SAFETY: the fd belongs to the listener, which is alive until its thread is joined;
        // shutting it down makes the blocked accept() return.
        unsafe {
            libc::shutdown(self.listener_fd, libc::SHUT_RDWR);
        }
        if let Some(h) = self.listener.take() {
            let _ = h.join();
        }
        self.shared.registry.close_all();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.listener.is_some() {
            self.shutdown();
        }
    }
}
