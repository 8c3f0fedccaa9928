//! The port while the data folder is recovered: it is bound before recovery starts, so that
//! `/healthz` answers 200 and `/readyz` 503 `recovering` meanwhile, and WebSocket upgrades are
//! refused with close 1013 `recovering` (clients retry, as after a refusal for the connection
//! limit). Then the listener goes to [`super::Server::start`].

use super::conn::Conn;
use super::handshake::{self, Opened};
use super::http::{self, Phase};
use super::listener::ws_config;
use crate::metrics::{self, Refusal};
use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Connections answered at once during recovery; more are dropped.
const MAX_IN_FLIGHT: usize = 64;
/// How often the (non-blocking) listener is polled.
const POLL: Duration = Duration::from_millis(5);
const LINGER: Duration = Duration::from_secs(1);

/// Answers connections during recovery until [`Recovering::stop`].
pub struct Recovering {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    listener: TcpListener,
}

impl Recovering {
    /// Starts answering on a copy of `listener`.
    pub fn start(listener: &TcpListener, handshake_timeout: Duration) -> io::Result<Recovering> {
        let listener = listener.try_clone()?;
        // The flag is shared with the original (one open file), which is left alone until
        // `stop` has joined this thread and made it blocking again.
        listener.set_nonblocking(true)?;
        let done = Arc::new(AtomicBool::new(false));
        let accepting = listener.try_clone()?;
        let flag = done.clone();
        let thread = std::thread::Builder::new()
            .name("recovering".into())
            .spawn(move || run(&accepting, &flag, handshake_timeout))?;
        Ok(Recovering {
            done,
            thread: Some(thread),
            listener,
        })
    }

    /// Stops answering; connections not yet accepted stay queued for the real listener.
    pub fn stop(mut self) {
        self.done.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Err(e) = self.listener.set_nonblocking(false) {
            log::error!("cannot make the listener blocking again: {e}");
        }
    }
}

fn run(listener: &TcpListener, done: &AtomicBool, timeout: Duration) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    while !done.load(Ordering::Acquire) {
        let (sock, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(POLL);
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::error!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        metrics::connection_accepted();
        if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            metrics::connection_refused(Refusal::Recovering);
            continue;
        }
        let count = in_flight.clone();
        let spawned = std::thread::Builder::new()
            .name("recovering-conn".into())
            .stack_size(256 << 10)
            .spawn(move || {
                let _ = sock.set_nodelay(true);
                match handshake::accept(Conn::new(sock), ws_config(), timeout) {
                    Ok(Opened::WebSocket(mut conn, _)) => {
                        metrics::connection_refused(Refusal::Recovering);
                        log::info!("connection from {} refused: recovering", peer.ip());
                        conn.push_close(1013, "recovering");
                        conn.finish(LINGER);
                    }
                    Ok(Opened::Http(conn, req)) => {
                        http::answer(conn, Phase::Recovering, peer.ip(), &req)
                    }
                    Ok(Opened::BadUpgrade(conn, bad)) => http::bad_upgrade(conn, peer.ip(), &bad),
                    Err(e) => log::debug!("handshake with {} failed: {e}", peer.ip()),
                }
                count.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            log::error!("cannot start a connection thread: {e}");
            in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
