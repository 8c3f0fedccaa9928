//! The live sessions: listed by `conn`, closed when their key is revoked or the server stops,
//! and reachable by pushes from other threads.
//!
//! Each session's mutable life (close request, socket ownership, push outbox) sits behind one
//! lock in its [`SessionHandle`]; a [`Lifecycle`] owns the session's place in the registry from
//! registration to the end and releases it when dropped, unwinding included.
//!
//! ## The push seam
//! Another thread hands a session a frame with [`SessionHandle::push`]. A session blocked in
//! `recv` with nothing queued (the only place it can wait indefinitely) is marked *idle*: the
//! pusher then writes the frame to the socket itself, under the session's lock, so it leaves at
//! once and the session needs no wake-up at all. A session that is not idle is awake (serving,
//! flushing, or waiting for a slow reader), so the frame goes to its outbox and a flag the
//! session reads at every turn of its loop moves it into the output queue. Nothing on the
//! request path makes a system call for this: when no push is pending, the session pays one
//! atomic load per turn and one atomic operation on each side of a blocking wait, and no extra
//! file descriptor (an eventfd per connection would double the descriptors the connection cap
//! is computed from, and polling it with the socket would add a `poll` to every wait).
//!
//! Ordering and limits: a push is written directly only when the session has nothing queued, so
//! it never overtakes an acknowledgement (queued acknowledgements leave only once durable, see
//! `session.rs`); a push that depends on a logged change must be handed over only once that
//! change is durable (`Server::push` waits for the log position it is given). The outbox holds
//! at most the send-buffer limit; past it a push is refused ([`PushError::Full`]) and the caller
//! decides (a subscription would drop the subscriber). Should the socket take only part of a
//! direct write, the rest goes to the outbox and the pusher wakes the session thread
//! (`signals::wake`): its blocked `recv` returns EINTR and it writes the rest itself.

use super::live_sink::SessionSink;
use crate::auth::KeyEntry;
use crate::live::Sink;
use crate::ops::{ConnInfo, Sessions};
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a revocation or shutdown waits for sessions to send their close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// `SessionHandle::flags`: a close was requested.
const CLOSE: u8 = 1;
/// `SessionHandle::flags`: the outbox holds bytes (set and cleared under the lock).
const PUSHED: u8 = 2;
/// `SessionHandle::flags`: the session is blocked in `recv` with nothing queued (set and
/// cleared by the session only).
const IDLE: u8 = 4;
/// `SessionHandle::flags`: a pusher holding the lock claimed the idle session's socket and is
/// writing to it (cleared before it lets go of the lock).
const WRITING: u8 = 8;

/// One open, authenticated session.
pub(crate) struct SessionHandle {
    pub id: u64,
    pub ip: String,
    pub name: Option<String>,
    pub since: Instant,
    pub key: Arc<KeyEntry>,
    /// [`CLOSE`] | [`PUSHED`] | [`IDLE`] | [`WRITING`]: what the session reads at every turn of
    /// its loop, and around each blocking wait, without locking.
    flags: AtomicU8,
    life: Mutex<Life>,
    closed_cv: Condvar,
}

/// Everything about a session that other threads change or wait for.
struct Life {
    /// The close the server asked for (the first request wins).
    close: Option<(u16, &'static str)>,
    /// The session's socket while it may be touched from other threads: shut (read side) to
    /// wake the session for a close request, written to by pushes while the session is idle.
    /// Not a duplicate (that would cost a second descriptor per connection): the session clears
    /// it (in [`SessionHandle::mark_closed`]) before its socket is closed, and other threads use
    /// it only under this lock. `None` for an in-process session.
    fd: Option<RawFd>,
    /// The session's thread while `fd` is set: a push the socket took only in part wakes it
    /// (it is alive: it clears `fd` in `mark_closed` before it ends, under this lock).
    thread: Option<libc::pthread_t>,
    /// Whole frames waiting for the session's next turn.
    outbox: Vec<u8>,
    /// The session's close frame is out (or it is gone).
    closed: bool,
}

/// Why a push was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The session is closing or closed.
    Closed,
    /// The outbox already holds the send-buffer limit.
    Full,
}

impl SessionHandle {
    /// The close the server asked for, if any.
    pub fn close_request(&self) -> Option<(u16, &'static str)> {
        if self.flags.load(Ordering::Acquire) & CLOSE == 0 {
            return None;
        }
        self.life.lock().close
    }

    /// Asks the session to close; wakes its thread by shutting the socket's read side. An
    /// in-process session has nothing to send: it counts as closed at once.
    fn request_close(&self, code: u16, reason: &'static str) {
        let mut life = self.life.lock();
        life.close.get_or_insert((code, reason));
        self.flags.fetch_or(CLOSE, Ordering::AcqRel);
        match life.fd {
            // SAFETY: the descriptor is the session's live socket: the session closes it only
            // after `mark_closed`, which waits for this lock.
            Some(fd) => unsafe {
                libc::shutdown(fd, libc::SHUT_RD);
            },
            None => {
                life.closed = true;
                self.closed_cv.notify_all();
            }
        }
    }

    /// Called by the session once its close frame is out (or it is gone), and always before
    /// its socket is closed: from then on no other thread touches the socket.
    pub fn mark_closed(&self) {
        let mut life = self.life.lock();
        life.fd = None;
        life.thread = None;
        life.closed = true;
        self.closed_cv.notify_all();
    }

    fn wait_closed(&self, deadline: Instant) {
        let mut life = self.life.lock();
        while !life.closed {
            if self.closed_cv.wait_until(&mut life, deadline).timed_out() {
                break;
            }
        }
    }

    /// Hands the session one whole WebSocket frame (see the module notes). `limit` bounds the
    /// outbox in bytes.
    pub fn push(&self, frame: &[u8], limit: usize) -> Result<(), PushError> {
        let mut life = self.life.lock();
        if life.closed || life.close.is_some() {
            return Err(PushError::Closed);
        }
        let mut rest = frame;
        match life.fd {
            Some(fd) if life.outbox.is_empty() && self.claim_idle_socket() => {
                let sent = send_now(fd, rest);
                if let Ok(n) = sent {
                    rest = &rest[n..];
                    if !rest.is_empty() {
                        // The rest goes first when the session wakes (see `leave_idle`), and
                        // it is woken now: nothing else would until its read timeout. (A wake
                        // that lands just before it enters `recv` is lost; the read timeout
                        // still bounds that rare case.)
                        life.outbox.extend_from_slice(rest);
                        self.flags.fetch_or(PUSHED, Ordering::AcqRel);
                        if let Some(thread) = life.thread {
                            super::signals::wake(thread);
                        }
                    }
                }
                self.flags.fetch_and(!WRITING, Ordering::AcqRel);
                sent.map(|_| ()).map_err(|_| PushError::Closed)
            }
            _ if life.outbox.len() + frame.len() > limit => Err(PushError::Full),
            _ => {
                life.outbox.extend_from_slice(rest);
                self.flags.fetch_or(PUSHED, Ordering::AcqRel);
                Ok(())
            }
        }
    }

    /// Sets [`WRITING`] if the session is idle; true when it did.
    fn claim_idle_socket(&self) -> bool {
        self.flags
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                (f & IDLE != 0).then_some(f | WRITING)
            })
            .is_ok()
    }

    /// Moves pushed frames into the session's output queue. One atomic load when there are
    /// none.
    pub fn take_pushes(&self, queue: &mut Vec<u8>) {
        if self.flags.load(Ordering::Acquire) & PUSHED != 0 {
            self.drain(&mut self.life.lock(), queue);
        }
    }

    /// [`Self::take_pushes`] when they fit: only while `queued` (what the session already
    /// holds) plus the outbox stays within `limit`, or nothing is queued. Pushes past that
    /// stay in the outbox, where the limit refuses more (and ends a subscription that goes
    /// past it) instead of letting the session's queue grow until the connection is closed.
    pub fn take_pushes_within(&self, queue: &mut Vec<u8>, queued: usize, limit: usize) {
        if self.flags.load(Ordering::Acquire) & PUSHED != 0 {
            let mut life = self.life.lock();
            if queued == 0 || queued + life.outbox.len() <= limit {
                self.drain(&mut life, queue);
            }
        }
    }

    fn drain(&self, life: &mut Life, queue: &mut Vec<u8>) {
        self.flags.fetch_and(!PUSHED, Ordering::AcqRel);
        queue.append(&mut life.outbox);
        if life.outbox.capacity() > 64 * 1024 {
            life.outbox = Vec::new();
        }
    }

    /// The session is about to block in `recv` with nothing queued: from now on pushes are
    /// written straight to the socket. False (and the pushes in `queue`) when some arrived
    /// meanwhile: do not block then. One atomic operation when none did.
    pub fn enter_idle(&self, queue: &mut Vec<u8>) -> bool {
        if self.flags.fetch_or(IDLE, Ordering::AcqRel) & PUSHED == 0 {
            return true;
        }
        self.leave_idle(queue);
        false
    }

    /// The session is back from `recv` and will write to the socket itself: pushes wait in the
    /// outbox again. A push being written meanwhile is waited for, and the rest of one the
    /// socket took only partly goes to `queue` first. One atomic operation when there was none.
    pub fn leave_idle(&self, queue: &mut Vec<u8>) {
        if self.flags.fetch_and(!IDLE, Ordering::AcqRel) & (WRITING | PUSHED) != 0 {
            // The pusher holds the lock while it writes: taking it waits for the write.
            let mut life = self.life.lock();
            if !life.outbox.is_empty() {
                self.drain(&mut life, queue);
            }
        }
    }
}

/// One non-blocking `send` loop: what the socket takes now.
fn send_now(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    let mut sent = 0;
    while sent < buf.len() {
        // SAFETY: `buf[sent..]` is valid for reads of its length during the call; `fd` is the
        // session's live socket (see `Life::fd`).
        let n = unsafe {
            libc::send(
                fd,
                buf[sent..].as_ptr().cast(),
                buf.len() - sent,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => break,
                io::ErrorKind::Interrupted => continue,
                _ => return Err(e),
            }
        }
        sent += n as usize;
    }
    Ok(sent)
}

/// Formats a peer address as `conn` shows it: IPv4-mapped addresses unmapped.
pub fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// Who a new session is.
pub(crate) struct Opening {
    pub id: u64,
    pub ip: IpAddr,
    pub name: Option<String>,
    pub key: Arc<KeyEntry>,
    /// When the connection was accepted.
    pub since: Instant,
}

#[derive(Default)]
pub(crate) struct Registry {
    sessions: Mutex<BTreeMap<u64, Arc<SessionHandle>>>,
    next_id: AtomicU64,
}

/// A session's place in the registry, from registration to its end. Dropping it — normally or
/// while unwinding — takes the session off the list and marks it closed, so it is never left a
/// close target nor its socket reachable; drop it before the socket is closed.
pub(crate) struct Lifecycle {
    registry: Arc<Registry>,
    handle: Arc<SessionHandle>,
}

impl Lifecycle {
    pub fn handle(&self) -> &SessionHandle {
        &self.handle
    }

    /// Takes the session off the list (`conn` no longer shows it) before its close handshake.
    pub fn unlist(&self) {
        self.registry.sessions.lock().remove(&self.handle.id);
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        self.unlist();
        self.handle.mark_closed();
    }
}

impl Registry {
    /// A new connection number; numbers grow with accept order, which `conn` lists by.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.sessions.lock().len()
    }

    /// Lists a session; `fd` is its socket (`None` in process).
    pub fn register(self: &Arc<Self>, who: Opening, fd: Option<RawFd>) -> Lifecycle {
        let handle = Arc::new(SessionHandle {
            id: who.id,
            ip: ip_text(who.ip),
            name: who.name,
            since: who.since,
            key: who.key,
            flags: AtomicU8::new(0),
            life: Mutex::new(Life {
                close: None,
                fd,
                // Registered from the session's own thread (in process: no socket, no wake).
                thread: fd.map(|_| super::signals::current_thread()),
                outbox: Vec::new(),
                closed: false,
            }),
            closed_cv: Condvar::new(),
        });
        self.sessions.lock().insert(who.id, handle.clone());
        Lifecycle {
            registry: self.clone(),
            handle,
        }
    }

    /// The listed sessions `pick` selects.
    pub fn matching(&self, pick: impl Fn(&SessionHandle) -> bool) -> Vec<Arc<SessionHandle>> {
        self.sessions
            .lock()
            .values()
            .filter(|s| pick(s))
            .cloned()
            .collect()
    }

    fn close_matching(
        &self,
        code: u16,
        reason: &'static str,
        pick: impl Fn(&SessionHandle) -> bool,
    ) {
        let targets = self.matching(pick);
        for s in &targets {
            s.request_close(code, reason);
        }
        let deadline = Instant::now() + CLOSE_GRACE;
        for s in &targets {
            s.wait_closed(deadline);
        }
    }

    /// Closes every session with 1001 `server shutting down`.
    pub fn close_all(&self) {
        self.close_matching(1001, "server shutting down", |_| true);
    }
}

impl Sessions for Registry {
    fn list(&self, me: u64) -> Vec<ConnInfo> {
        let now = Instant::now();
        self.sessions
            .lock()
            .values()
            .map(|s| ConnInfo {
                ip: s.ip.clone(),
                since_ms: now
                    .saturating_duration_since(s.since)
                    .as_millis()
                    .min(i64::MAX as u128) as i64,
                name: s.name.clone(),
                is_self: s.id == me,
            })
            .collect()
    }

    fn revoke(&self, key: &KeyEntry) {
        self.close_matching(1008, "API key revoked", |s| std::ptr::eq(&*s.key, key));
    }

    fn sink(&self, id: u64) -> Option<Arc<dyn Sink>> {
        let handle = self.sessions.lock().get(&id).cloned()?;
        Some(Arc::new(SessionSink(handle)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_forms() {
        assert_eq!(ip_text("::ffff:127.0.0.1".parse().unwrap()), "127.0.0.1");
        assert_eq!(
            ip_text("2001:db8:0:0:0:0:0:1".parse().unwrap()),
            "2001:db8::1"
        );
        assert_eq!(ip_text("10.0.0.7".parse().unwrap()), "10.0.0.7");
    }

    fn key() -> Arc<KeyEntry> {
        crate::auth::KeyRing::new("master")
            .lookup("master")
            .unwrap()
    }

    fn opening(id: u64) -> Opening {
        Opening {
            id,
            ip: "127.0.0.1".parse().unwrap(),
            name: None,
            key: key(),
            since: Instant::now(),
        }
    }

    #[test]
    fn pushes_wait_in_the_outbox_of_a_busy_session_up_to_the_limit() {
        let registry = Arc::new(Registry::default());
        let life = registry.register(opening(1), None);
        let h = life.handle();
        let mut queue = Vec::new();
        h.take_pushes(&mut queue);
        assert!(queue.is_empty());
        h.push(b"abc", 5).unwrap();
        assert_eq!(h.push(b"def", 5), Err(PushError::Full));
        h.take_pushes(&mut queue);
        assert_eq!(queue, b"abc");
        // A push that arrives just before the session blocks keeps it awake.
        h.push(b"x", 5).unwrap();
        assert!(!h.enter_idle(&mut queue));
        assert_eq!(queue, b"abcx");
        assert!(h.enter_idle(&mut queue));
        h.leave_idle(&mut queue);
        drop(life);
        assert!(registry.matching(|_| true).is_empty());
    }

    #[test]
    fn an_idle_session_gets_pushes_on_its_socket_at_once() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server_side, _) = l.accept().unwrap();
        let registry = Arc::new(Registry::default());
        let life = registry.register(opening(2), Some(server_side.as_raw_fd()));
        let h = life.handle();
        let mut queue = Vec::new();
        assert!(h.enter_idle(&mut queue));
        h.push(b"hello", 1).unwrap();
        let mut got = [0u8; 5];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        h.leave_idle(&mut queue);
        assert!(queue.is_empty());
        drop(life);
        assert!(registry.matching(|_| true).is_empty());
        drop(server_side);
    }

    #[test]
    fn a_closed_session_takes_no_pushes() {
        let registry = Arc::new(Registry::default());
        let life = registry.register(opening(3), None);
        let h = registry.matching(|_| true).pop().unwrap();
        drop(life);
        assert_eq!(h.push(b"x", 10), Err(PushError::Closed));
    }
}
