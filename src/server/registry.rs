//! The live sessions: listed by `conn`, closed when their key is revoked or the server stops.

use crate::auth::KeyEntry;
use crate::ops::{ConnInfo, Sessions};
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a revocation or shutdown waits for sessions to send their close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// One open, authenticated connection.
pub struct SessionHandle {
    pub id: u64,
    pub ip: String,
    pub name: Option<String>,
    pub since: Instant,
    pub key: Arc<KeyEntry>,
    /// The session's socket, shut (read side) to wake the session for a close request. Not a
    /// duplicate (that would cost a second file descriptor per connection): `fd_open` says
    /// whether it still belongs to the session, which clears it in `mark_closed` before the
    /// socket is closed; `request_close` shuts it only under that lock.
    fd: RawFd,
    fd_open: Mutex<bool>,
    close_flag: AtomicBool,
    close_reason: Mutex<Option<(u16, &'static str)>>,
    closed: Mutex<bool>,
    closed_cv: Condvar,
}

impl SessionHandle {
    /// The close the server asked for, if any.
    pub fn close_request(&self) -> Option<(u16, &'static str)> {
        if self.close_flag.load(Ordering::Acquire) {
            *self.close_reason.lock()
        } else {
            None
        }
    }

    /// Asks the session to close; wakes its thread by shutting the socket's read side.
    fn request_close(&self, code: u16, reason: &'static str) {
        {
            let mut r = self.close_reason.lock();
            if r.is_none() {
                *r = Some((code, reason));
            }
        }
        self.close_flag.store(true, Ordering::Release);
        let open = self.fd_open.lock();
        if *open {
            // SAFETY: the descriptor is the session's live socket: the session closes it only
            // after `mark_closed`, which waits for this lock.
            unsafe {
                libc::shutdown(self.fd, libc::SHUT_RD);
            }
        }
    }

    /// Called by the session once its close frame is out (or it is gone), and always before
    /// its socket is closed.
    pub fn mark_closed(&self) {
        *self.fd_open.lock() = false;
        *self.closed.lock() = true;
        self.closed_cv.notify_all();
    }

    fn wait_closed(&self, deadline: Instant) {
        let mut closed = self.closed.lock();
        while !*closed {
            if self.closed_cv.wait_until(&mut closed, deadline).timed_out() {
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

#[derive(Default)]
pub struct Registry {
    sessions: Mutex<BTreeMap<u64, Arc<SessionHandle>>>,
    next_id: AtomicU64,
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

    pub fn register(
        &self,
        id: u64,
        ip: IpAddr,
        name: Option<String>,
        key: Arc<KeyEntry>,
        fd: RawFd,
        since: Instant,
    ) -> Arc<SessionHandle> {
        let handle = Arc::new(SessionHandle {
            id,
            ip: ip_text(ip),
            name,
            since,
            key,
            fd,
            fd_open: Mutex::new(true),
            close_flag: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            closed: Mutex::new(false),
            closed_cv: Condvar::new(),
        });
        self.sessions.lock().insert(id, handle.clone());
        handle
    }

    /// Takes a session off the list (`conn` no longer shows it). The session marks itself
    /// closed once its close frame is out.
    pub fn unregister(&self, handle: &SessionHandle) {
        self.sessions.lock().remove(&handle.id);
    }

    fn close_matching(
        &self,
        code: u16,
        reason: &'static str,
        pick: impl Fn(&SessionHandle) -> bool,
    ) {
        let targets: Vec<_> = self
            .sessions
            .lock()
            .values()
            .filter(|s| pick(s))
            .cloned()
            .collect();
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
}
