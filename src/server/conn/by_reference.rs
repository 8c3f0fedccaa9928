//! Large answers queued by reference: a piece ([`Shared`]) stays where the answer cache keeps
//! it, and the socket takes the pieces and the queue's bytes around them in one vectored write
//! (`sendmsg`), which may take any part of them.

use super::Conn;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

/// Bytes queued by reference: they go out right before `out[at..]`.
pub(super) struct Shared {
    pub(super) at: usize,
    bytes: Arc<[u8]>,
    /// Bytes of it written so far.
    done: usize,
}

/// Pieces one vectored write takes at most (well under the kernel's `IOV_MAX`).
const MAX_IOV: usize = 64;

impl Conn {
    /// [`Conn::end_text`] of a payload that goes on with `tail` after what was appended in
    /// place: `tail` is queued by reference (copied when the frame is small).
    pub fn end_text_with(&mut self, start: usize, tail: Option<Arc<[u8]>>) {
        let Some(tail) = tail else {
            return self.end_text(start);
        };
        let len = self.out.len() - (start + 4) + tail.len();
        if len < 126 || tail.is_empty() {
            self.out.extend_from_slice(&tail);
            return self.end_text(start);
        }
        self.text_header(start, len);
        self.shared_pending += tail.len();
        self.shared.push_back(Shared {
            at: self.out.len(),
            bytes: tail,
            done: 0,
        });
    }

    /// One non-blocking `sendmsg` of the queue from where it stands, with the pieces queued
    /// by reference in their places (as many as one call takes).
    pub(super) fn send_vectored(&self) -> io::Result<usize> {
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let mut iov = [empty; MAX_IOV];
        let mut n = 0;
        let mut push = |bytes: &[u8], n: &mut usize| {
            iov[*n] = libc::iovec {
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            };
            *n += 1;
        };
        let mut pos = self.sent;
        let mut all = true;
        for piece in &self.shared {
            if n + 2 > MAX_IOV {
                all = false;
                break;
            }
            if pos < piece.at {
                push(&self.out[pos..piece.at], &mut n);
            }
            push(&piece.bytes[piece.done..], &mut n);
            pos = piece.at;
        }
        if all && pos < self.out.len() {
            push(&self.out[pos..], &mut n);
        }
        // SAFETY: a zeroed msghdr is valid (no name, no control data); its `n` iovecs point into
        // `self.out` and the pieces of `self.shared`, which are valid for reads of those lengths
        // and not changed during the call.
        let sent = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = iov.as_mut_ptr();
            msg.msg_iovlen = n as _;
            libc::sendmsg(
                self.sock.as_raw_fd(),
                &msg,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(sent as usize)
        }
    }

    /// Marks `n` more bytes of the queue as written, in queue order.
    pub(super) fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let next = self.shared.front().map_or(self.out.len(), |p| p.at);
            if self.sent < next {
                let k = n.min(next - self.sent);
                self.sent += k;
                n -= k;
                continue;
            }
            let Some(piece) = self.shared.front_mut() else {
                return;
            };
            let k = n.min(piece.bytes.len() - piece.done);
            piece.done += k;
            self.shared_pending -= k;
            n -= k;
            if piece.done == piece.bytes.len() {
                self.shared.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::frames::OP_TEXT;
    use std::net::{Shutdown, TcpStream};
    use std::time::Duration;

    /// Frames whose payloads end with pieces queued by reference reach the peer byte for byte
    /// as frames copied whole: more pieces than one vectored write takes, small tails copied,
    /// payloads of every header size, and a peer that reads slowly (partial writes, the queue
    /// compacted under its pieces).
    #[test]
    fn frames_with_shared_tails_reach_the_peer_as_copied_frames() {
        use std::io::Read;
        let (a, mut b) = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            (a, l.accept().unwrap().0)
        };
        // A small send buffer: the queue leaves in many partial writes.
        let size: libc::c_int = 16 * 1024;
        // SAFETY: `size` is a valid c_int for the duration of the call, on a live socket.
        let set = unsafe {
            libc::setsockopt(
                a.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(set, 0);
        let mut expected = Vec::new();
        let mut conn = Conn::new(a);
        let mut copy = Conn::new(conn.socket().try_clone().unwrap());
        for i in 0..3 * MAX_IOV {
            let head: Vec<u8> = format!("{{\"id\":\"{i}\"").into_bytes();
            let tail_len = [0, 3, 200, 5000, 70_000][i % 5];
            let tail: Arc<[u8]> = (0..tail_len).map(|j| (j % 241) as u8).collect();
            let mut whole = head.clone();
            whole.extend_from_slice(&tail);
            copy.out.clear();
            copy.push_frame(OP_TEXT, &whole);
            expected.extend_from_slice(&copy.out);
            let start = conn.begin_text();
            conn.queue().extend_from_slice(&head);
            conn.end_text_with(start, Some(tail));
            if i % 7 == 6 {
                // Some pushes between the frames, queued as they are.
                conn.push_frame(OP_TEXT, b"push");
                copy.out.clear();
                copy.push_frame(OP_TEXT, b"push");
                expected.extend_from_slice(&copy.out);
            }
        }
        assert_eq!(conn.pending(), expected.len());
        // Nobody reads yet: the socket takes part of the queue and the rest waits.
        assert!(
            !conn.write_some().unwrap(),
            "the socket took the whole queue"
        );
        assert!(conn.pending() > 0 && conn.pending() < expected.len());
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut chunk = [0u8; 1000];
            // A slow reader: small reads, so the writer's queue drains in many partial writes.
            loop {
                match b.read(&mut chunk) {
                    Ok(0) => return got,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                    Err(e) => panic!("{e}"),
                }
            }
        });
        conn.flush_within(Duration::from_secs(30)).unwrap();
        assert_eq!(conn.pending(), 0);
        conn.socket().shutdown(Shutdown::Write).unwrap();
        let got = reader.join().unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(
            got == expected,
            "the bytes sent differ from the frames copied whole"
        );
    }
}
