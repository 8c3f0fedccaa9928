//! The push seam: how another thread hands a session a frame.
//!
//! Another thread hands a session a frame with [`SessionHandle::push`]. A session blocked in
//! `recv` with nothing queued (the only place it can wait indefinitely) is marked *idle*: the
//! pusher then writes the frame to the socket itself, under the session's lock, so it leaves at
//! once and the session needs no wake-up at all. A session that is not idle is awake (serving,
//! flushing, or waiting for a slow reader), so the frame goes to its outbox and a flag the
//! session reads at every turn of its loop moves it into the output queue (should the session
//! have gone idle after the pusher looked, before that flag went up, the flag's old value
//! says so and the pusher wakes it, as below). Nothing on the
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

use super::registry::{Life, SessionHandle};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;

/// `SessionHandle::flags`: the outbox holds bytes (set and cleared under the lock).
pub(super) const PUSHED: u8 = 2;
/// `SessionHandle::flags`: the session is blocked in `recv` with nothing queued (set and
/// cleared by the session only).
pub(super) const IDLE: u8 = 4;
/// `SessionHandle::flags`: a pusher holding the lock claimed the idle session's socket and is
/// writing to it (cleared before it lets go of the lock).
pub(super) const WRITING: u8 = 8;

/// Why a push was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The session is closing or closed.
    Closed,
    /// The outbox already holds the send-buffer limit.
    Full,
}

impl SessionHandle {
    /// Hands the session one whole WebSocket frame (see the module notes). `limit` bounds the
    /// outbox in bytes.
    pub fn push(&self, frame: &[u8], limit: usize) -> Result<(), PushError> {
        self.push_pieces(&[frame], limit)
    }

    /// [`Self::push`] of the bytes of `pieces`, in order (whole frames once put together): an
    /// idle session's socket takes them in one vectored write, without copying them together.
    pub fn push_pieces(&self, pieces: &[&[u8]], limit: usize) -> Result<(), PushError> {
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        let mut life = self.life.lock();
        if life.closed || life.close.is_some() {
            return Err(PushError::Closed);
        }
        match life.fd {
            Some(fd) if life.outbox.is_empty() && self.claim_idle_socket() => {
                let sent = send_now(fd, pieces, len);
                if let Ok(n) = sent {
                    if n < len {
                        // The rest goes first when the session wakes (see `leave_idle`); it
                        // is idle, so `queue` wakes it.
                        self.queue(&mut life, pieces, n);
                    }
                }
                self.flags.fetch_and(!WRITING, Ordering::AcqRel);
                sent.map(|_| ()).map_err(|_| PushError::Closed)
            }
            _ if life.outbox.len() + len > limit => Err(PushError::Full),
            _ => {
                self.queue(&mut life, pieces, 0);
                Ok(())
            }
        }
    }

    /// Appends the bytes of `pieces` from byte `skip` on to the outbox and flags it. A session
    /// found idle then is blocked in `recv` with a push waiting and is woken: nothing else
    /// would until its read timeout. That is the rest of a direct write the socket took only in
    /// part, or a push that found the session busy while the session went idle before the flag
    /// was up for `enter_idle` to see. One wake per outbox: a push flagged before already woke
    /// it. (A wake that lands just before `recv` also shortens the socket's receive timeout to
    /// one tick: see `signals.rs`.)
    fn queue(&self, life: &mut Life, pieces: &[&[u8]], skip: usize) {
        extend_from(&mut life.outbox, pieces, skip);
        let was = self.flags.fetch_or(PUSHED, Ordering::AcqRel);
        if was & (IDLE | PUSHED) == IDLE {
            if let Some(thread) = life.thread {
                super::signals::wake(thread);
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

/// Appends the bytes of `pieces` from byte `skip` of their concatenation on.
fn extend_from(out: &mut Vec<u8>, pieces: &[&[u8]], mut skip: usize) {
    for p in pieces {
        if skip >= p.len() {
            skip -= p.len();
            continue;
        }
        out.extend_from_slice(&p[skip..]);
        skip = 0;
    }
}

/// Pieces one `sendmsg` takes at most (the kernel's `IOV_MAX`).
const MAX_IOV: usize = 1024;

/// Non-blocking `sendmsg` calls of the concatenation of `pieces` (`len` bytes in all): how
/// much of it the socket takes now.
fn send_now(fd: RawFd, pieces: &[&[u8]], len: usize) -> io::Result<usize> {
    let mut sent = 0;
    let (mut first, mut skip) = (0, 0);
    let mut iov: Vec<libc::iovec> = Vec::with_capacity(pieces.len().min(MAX_IOV));
    while sent < len {
        while first < pieces.len() && skip >= pieces[first].len() {
            skip -= pieces[first].len();
            first += 1;
        }
        iov.clear();
        for (i, p) in pieces[first..].iter().take(MAX_IOV).enumerate() {
            let p = if i == 0 { &p[skip..] } else { p };
            iov.push(libc::iovec {
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            });
        }
        // SAFETY: a zeroed msghdr is valid (no name, no control data); its iovecs point into
        // `pieces`, which are valid for reads of their lengths during the call, and `fd` is the
        // session's live socket (see `Life::fd`).
        let n = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = iov.as_mut_ptr();
            msg.msg_iovlen = iov.len() as _;
            libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
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
        skip += n as usize;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::registry::{Opening, Registry};
    use std::sync::Arc;

    fn opening(id: u64) -> Opening {
        Opening::for_test(id)
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
    fn pieces_reach_an_idle_socket_and_an_outbox_in_order() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        // A missing byte fails the read instead of hanging the test.
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let (server_side, _) = l.accept().unwrap();
        let registry = Arc::new(Registry::default());
        let life = registry.register(opening(4), Some(server_side.as_raw_fd()));
        let h = life.handle();
        let mut queue = Vec::new();
        assert!(h.enter_idle(&mut queue));
        let big = vec![b'x'; 3000];
        h.push_pieces(&[b"ab", b"", &big, b"cd"], 1).unwrap();
        let mut got = vec![0u8; 3004];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, [&b"ab"[..], &big, b"cd"].concat());
        h.leave_idle(&mut queue);
        // Busy: the pieces wait in the outbox, put together, within the limit.
        h.push_pieces(&[b"ef", b"gh"], 4).unwrap();
        assert_eq!(h.push_pieces(&[b"i"], 4), Err(PushError::Full));
        h.take_pushes(&mut queue);
        assert_eq!(queue, b"efgh");
        let mut rest = Vec::new();
        extend_from(&mut rest, &[b"abc", b"de", b"f"], 4);
        assert_eq!(rest, b"ef");
        drop(life);
        drop(server_side);
    }

    /// The race between a pusher and a session going idle: the pusher finds the session busy
    /// (so it queues the push in the outbox) and, before it has flagged the outbox, the session
    /// finds no push flagged and blocks. The pusher must then wake it, or the push waits for
    /// the session's next read timeout. Here the session's read has no timeout, and each round
    /// pokes the session awake with a byte just as it pushes one frame, then waits for that
    /// frame: a stranded push fails the round's read (after 20 s) instead of arriving. The
    /// window is a few instructions wide: without the wake, about one run in eight of the
    /// default 200,000 rounds (debug build) caught it; `make soak` runs 5,000,000
    /// (`FLUXIONDB_PUSH_RACE_ROUNDS`).
    #[test]
    fn a_push_racing_a_session_going_idle_is_never_stranded() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        use std::sync::mpsc;
        let rounds: usize = std::env::var("FLUXIONDB_PUSH_RACE_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200_000);
        crate::server::signals::install_wake().unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        client.set_nodelay(true).unwrap();
        let (mut server_side, _) = l.accept().unwrap();
        let registry = Arc::new(Registry::default());
        let (registered, is_registered) = mpsc::channel();
        let sessions = Arc::clone(&registry);
        // A session loop: take pushes, write them, go idle, block in a read without timeout.
        let session = std::thread::spawn(move || {
            let life = registry.register(opening(5), Some(server_side.as_raw_fd()));
            let _wake = crate::server::signals::WakeTarget::new(server_side.as_raw_fd());
            server_side.set_read_timeout(None).unwrap();
            registered.send(()).unwrap();
            let h = life.handle();
            let mut queue = Vec::new();
            let mut buf = [0u8; 64];
            loop {
                h.take_pushes(&mut queue);
                if !queue.is_empty() {
                    server_side.write_all(&queue).unwrap();
                    queue.clear();
                }
                if !h.enter_idle(&mut queue) {
                    continue;
                }
                let read = server_side.read(&mut buf);
                h.leave_idle(&mut queue);
                if crate::server::signals::take_woken() {
                    server_side.set_read_timeout(None).unwrap();
                }
                match read {
                    Ok(n) if n > 0 && buf[n - 1] == b'!' => break,
                    Ok(n) if n > 0 => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    other => panic!("session read: {other:?}"),
                }
            }
            drop(life);
            server_side
        });
        is_registered.recv().unwrap();
        let h = sessions.matching(|s| s.id == 5).pop().unwrap();
        let mut got = [0u8; 1];
        for round in 0..rounds {
            client.write_all(b".").unwrap();
            h.push(&[(round % 250) as u8], 1 << 20).unwrap();
            client
                .read_exact(&mut got)
                .unwrap_or_else(|e| panic!("round {round}: the push never came: {e}"));
            assert_eq!(got[0], (round % 250) as u8, "round {round}");
        }
        client.write_all(b"!").unwrap();
        drop(session.join().unwrap());
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
