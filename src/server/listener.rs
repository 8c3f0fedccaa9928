//! Accepts TCP connections and gives each its own named thread, up to the connection cap.

use super::conn::Conn;
use super::handshake::{self, Opened};
use super::http::{self, Phase};
use super::registry::Opening;
use super::{session, Shared};
use crate::metrics::{self, Refusal};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::protocol::WebSocketConfig;

/// Stack of a connection thread: nothing recurses deeply (JSON nesting is capped at 128).
const STACK_SIZE: usize = if cfg!(debug_assertions) {
    2 << 20
} else {
    256 << 10
};
/// Refusals (close 1013) handled at once; past this, surplus connections are just dropped.
const MAX_REFUSALS: usize = 64;

/// Connections this process can hold whatever `--max-connections` says: each takes a file
/// descriptor and a thread, whose stack and signal stack are four memory mappings. Past
/// `ulimit -n`, accept fails and clients hang in the handshake; past `vm.max_map_count`, a new
/// thread cannot allocate its signal stack and the runtime aborts the process. Some
/// descriptors and mappings are left for the rest of the server and for refusals.
fn capacity() -> Option<usize> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let fds = (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0
        && lim.rlim_cur != libc::RLIM_INFINITY)
        .then(|| (lim.rlim_cur as usize).saturating_sub(64));
    let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .map(|m| (m / 4).saturating_sub(1024));
    let room = match (fds, maps) {
        (Some(f), Some(m)) => f.min(m),
        (f, m) => f.or(m)?,
    };
    Some(room.saturating_sub(MAX_REFUSALS).max(1))
}

pub fn run(shared: Arc<Shared>, listener: TcpListener) {
    let configured = shared.config.max_connections;
    let cap = match capacity() {
        Some(room) if room < configured => {
            log::warn!(
                "--max-connections {configured} is more than this process can hold \
                 (ulimit -n, vm.max_map_count); using {room}"
            );
            room
        }
        _ => configured,
    };
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::Acquire) {
            break;
        }
        match accepted {
            Ok((sock, peer)) => admit(&shared, sock, peer, cap),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                log::error!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    log::info!("listener stopped");
}

fn admit(shared: &Arc<Shared>, sock: TcpStream, peer: SocketAddr, cap: usize) {
    let accepted = Instant::now();
    metrics::connection_accepted();
    let refuse = shared.threads.fetch_add(1, Ordering::AcqRel) >= cap;
    if refuse {
        metrics::connection_refused(Refusal::ConnectionLimit);
    }
    if refuse && shared.refusals.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSALS {
        shared.refusals.fetch_sub(1, Ordering::AcqRel);
        shared.threads.fetch_sub(1, Ordering::AcqRel);
        log::warn!(
            "connection from {} dropped: connection limit reached",
            peer.ip()
        );
        return;
    }
    let id = shared.registry.next_id();
    let worker = shared.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("conn-{id}"))
        .stack_size(STACK_SIZE)
        .spawn(move || {
            // Given back also when the thread panics (a bug): a slot kept would count against
            // the connection cap for good.
            let _slot = Counted(&worker.threads);
            if refuse {
                let _refusal = Counted(&worker.refusals);
                refuse_connection(sock, peer);
            } else {
                serve(&worker, sock, peer, id, accepted);
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start a connection thread: {e}");
        if refuse {
            shared.refusals.fetch_sub(1, Ordering::AcqRel);
        }
        shared.threads.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One unit of a count of live threads, given back when dropped.
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The close reason of a connection refused while the most refusals of its address wait.
pub const GUESSES_WAITING: &str = "too many refused connections waiting from this address";

/// tungstenite only runs the upgrade (frames are read by `frames.rs`): a small read buffer,
/// writes straight into the connection's queue.
pub(super) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

/// Reads the request head: a WebSocket upgrade comes back; a plain HTTP request is answered
/// here (by `answer`) and ends the connection.
fn open(
    sock: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    answer: impl FnOnce(Conn, &handshake::HttpRequest),
) -> Option<(Conn, handshake::Credentials)> {
    let _ = sock.set_nodelay(true);
    match handshake::accept(Conn::new(sock), ws_config(), timeout) {
        Ok(Opened::WebSocket(conn, creds)) => Some((conn, creds)),
        Ok(Opened::Http(conn, req)) => {
            answer(conn, &req);
            None
        }
        Ok(Opened::BadUpgrade(conn, bad)) => {
            log::debug!("upgrade from {} refused: {}", peer.ip(), bad.reason);
            http::bad_upgrade(conn, peer.ip(), &bad);
            None
        }
        Err(e) => {
            log::debug!("handshake with {} failed: {e}", peer.ip());
            None
        }
    }
}

fn refuse_connection(sock: TcpStream, peer: SocketAddr) {
    log::warn!(
        "connection from {} refused: connection limit reached",
        peer.ip()
    );
    let busy = |conn: Conn, req: &handshake::HttpRequest| {
        http::unavailable(conn, peer.ip(), req, "connection limit reached")
    };
    if let Some((mut conn, _)) = open(sock, peer, Duration::from_secs(2), busy) {
        conn.push_close(1013, "connection limit reached");
        conn.finish(Duration::from_secs(1));
    }
}

fn serve(shared: &Shared, sock: TcpStream, peer: SocketAddr, id: u64, accepted: Instant) {
    let timeout = shared.config.handshake_timeout;
    let plain = |conn: Conn, req: &handshake::HttpRequest| {
        http::answer(conn, Phase::Serving(shared), peer.ip(), req)
    };
    let Some((mut conn, creds)) = open(sock, peer, timeout, plain) else {
        return;
    };
    // The most refusals of this address are being held back (key guessing): refused before
    // the key is looked at, so that an answer sooner than theirs says nothing about it.
    if shared.throttle.crowded(peer.ip()) {
        metrics::connection_refused(Refusal::GuessesWaiting);
        log::warn!("connection from {} refused: {GUESSES_WAITING}", peer.ip());
        conn.push_close(1013, GUESSES_WAITING);
        conn.finish(Duration::from_secs(1));
        return;
    }
    // A refusal: its close code and reason, and whether it counts as a guessed key.
    let entry = creds.api_key.as_deref().map(|k| shared.keys.lookup(k));
    let key = match entry {
        None => Err((1008, "Missing API key parameter", Refusal::MissingKey)),
        Some(None) => Err((1008, "Unknown API key", Refusal::UnknownKey)),
        Some(Some(_)) if shared.stopping.load(Ordering::Acquire) => {
            Err((1001, super::registry::SHUTTING_DOWN, Refusal::ShuttingDown))
        }
        Some(Some(key)) => Ok(key),
    };
    let key = match key {
        Ok(key) => key,
        Err((code, reason, why)) => {
            metrics::connection_refused(why);
            log::warn!("connection from {} refused: {reason}", peer.ip());
            if why == Refusal::UnknownKey {
                let wait = shared.throttle.failed(peer.ip(), Instant::now());
                if !wait.is_zero() {
                    // The upgrade goes out now; only the close frame waits (the sleep returns
                    // at once when the server stops).
                    let _waiting = shared.throttle.waiting(peer.ip());
                    let _ = conn.flush_within(Duration::from_secs(1));
                    shared.stop.sleep(wait);
                }
            }
            conn.push_close(code, reason);
            conn.finish(Duration::from_secs(1));
            return;
        }
    };
    let who = Opening {
        id,
        ip: peer.ip(),
        name: creds.name,
        key,
        since: accepted,
    };
    session::run(shared, conn, who);
}
