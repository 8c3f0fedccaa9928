//! The live sessions: listed by `conn`, closed when their key is revoked or the server stops,
//! and reachable by pushes from other threads.
//!
//! Each session's mutable life (close request, socket ownership, push outbox) sits behind one
//! lock in its [`SessionHandle`]; a [`Lifecycle`] owns the session's place in the registry from
//! registration to the end and releases it when dropped, unwinding included.
//!
//! Pushes from other threads reach a session through the push seam (`push.rs`).

use super::live_sink::SessionSink;
pub(crate) use super::push::PushError;
use crate::auth::KeyEntry;
use crate::live::Sink;
use crate::ops::{ConnInfo, Sessions};
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The close reason (code 1001) of every session when the server stops.
pub(super) const SHUTTING_DOWN: &str = "server shutting down";

/// How long a revocation or shutdown waits for sessions to send their close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// `SessionHandle::flags`: a close was requested.
pub(super) const CLOSE: u8 = 1;

/// One open, authenticated session.
pub(crate) struct SessionHandle {
    pub id: u64,
    pub ip: String,
    pub name: Option<String>,
    pub since: Instant,
    pub key: Arc<KeyEntry>,
    /// [`CLOSE`] | [`PUSHED`] | [`IDLE`] | [`WRITING`]: what the session reads at every turn of
    /// its loop, and around each blocking wait, without locking.
    pub(super) flags: AtomicU8,
    pub(super) life: Mutex<Life>,
    closed_cv: Condvar,
}

/// Everything about a session that other threads change or wait for.
pub(super) struct Life {
    /// The close the server asked for (the first request wins).
    pub(super) close: Option<(u16, &'static str)>,
    /// The session's socket while it may be touched from other threads: shut (read side) to
    /// wake the session for a close request, written to by pushes while the session is idle.
    /// Not a duplicate (that would cost a second descriptor per connection): the session clears
    /// it (in [`SessionHandle::mark_closed`]) before its socket is closed, and other threads use
    /// it only under this lock. `None` for an in-process session.
    pub(super) fd: Option<RawFd>,
    /// The session's thread while `fd` is set: a push the socket took only in part wakes it
    /// (it is alive: it clears `fd` in `mark_closed` before it ends, under this lock).
    pub(super) thread: Option<libc::pthread_t>,
    /// Whole frames waiting for the session's next turn.
    pub(super) outbox: Vec<u8>,
    /// The session's close frame is out (or it is gone).
    pub(super) closed: bool,
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

#[cfg(test)]
impl Opening {
    /// A loopback connection with the master key, for unit tests.
    pub fn for_test(id: u64) -> Opening {
        Opening {
            id,
            ip: "127.0.0.1".parse().unwrap(),
            name: None,
            key: crate::auth::KeyRing::new("master")
                .lookup("master")
                .unwrap(),
            since: Instant::now(),
        }
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    sessions: Mutex<BTreeMap<u64, Arc<SessionHandle>>>,
    next_id: AtomicU64,
    /// Set by [`Registry::close_all`] (under the `sessions` lock, and read under it): a session
    /// registered afterwards is asked to close at once. Its thread may have passed the check of
    /// `stopping` just before the server began to stop, and `close_all` did not see it.
    closing_all: AtomicBool,
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
        let closing_all = {
            let mut sessions = self.sessions.lock();
            sessions.insert(who.id, handle.clone());
            self.closing_all.load(Ordering::Relaxed)
        };
        if closing_all {
            handle.request_close(1001, SHUTTING_DOWN);
        }
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
        {
            let _sessions = self.sessions.lock();
            self.closing_all.store(true, Ordering::Relaxed);
        }
        self.close_matching(1001, SHUTTING_DOWN, |_| true);
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

    /// A connection that passed the listener's check of `stopping` just before the server
    /// began to stop registers after `close_all` looked: it is asked to close all the same.
    #[test]
    fn a_session_registered_after_close_all_is_asked_to_close() {
        let registry = Arc::new(Registry::default());
        let before = registry.register(Opening::for_test(1), None);
        assert_eq!(before.handle().close_request(), None);
        registry.close_all();
        assert_eq!(before.handle().close_request(), Some((1001, SHUTTING_DOWN)));
        let after = registry.register(Opening::for_test(2), None);
        assert_eq!(after.handle().close_request(), Some((1001, SHUTTING_DOWN)));
    }
}
