//! One client socket with an output queue that this crate owns: every frame (responses,
//! pongs, close frames, and tungstenite's handshake response) goes through the queue, so frames
//! never interleave, and the session decides when the queue goes to the socket. Writes never
//! block; a read blocks only when the session asks it to.
//!
//! Most of the queue is copied into one buffer; a large remembered answer (see
//! `ops::answer_cache`) is queued by reference instead ([`Conn::end_text_with`]): it stays
//! where the cache keeps it and the socket takes it in the same vectored write as the bytes
//! around it.

use super::frames::{OP_CLOSE, OP_TEXT};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

/// Bytes queued by reference: they go out right before `out[at..]`.
struct Shared {
    at: usize,
    bytes: Arc<[u8]>,
    /// Bytes of it written so far.
    done: usize,
}

/// Pieces one vectored write takes at most (well under the kernel's `IOV_MAX`).
const MAX_IOV: usize = 64;

pub struct Conn {
    sock: TcpStream,
    out: Vec<u8>,
    sent: usize,
    /// Bytes queued by reference, in order of `at`.
    shared: VecDeque<Shared>,
    /// Bytes of `shared` not yet written.
    shared_pending: usize,
    /// The last four bytes handed to the handshake, to find the end of the request head.
    head_tail: u32,
}

impl Conn {
    pub fn new(sock: TcpStream) -> Self {
        Conn {
            sock,
            out: Vec::with_capacity(4096),
            sent: 0,
            shared: VecDeque::new(),
            shared_pending: 0,
            head_tail: 0,
        }
    }

    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// Bytes queued and not yet written to the socket.
    pub fn pending(&self) -> usize {
        self.out.len() - self.sent + self.shared_pending
    }

    fn push_header(&mut self, opcode: u8, len: usize) {
        self.out.push(0x80 | opcode);
        if len < 126 {
            self.out.push(len as u8);
        } else if len <= u16::MAX as usize {
            self.out.push(126);
            self.out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.out.push(127);
            self.out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }

    /// Starts a text frame whose payload is then appended to [`Conn::queue`] in place; returns
    /// the position to hand to [`Conn::end_text`]. Four bytes are held for the header.
    pub fn begin_text(&mut self) -> usize {
        let start = self.out.len();
        self.out.extend_from_slice(&[0; 4]);
        start
    }

    /// The output queue, for writing a payload in place between `begin_text` and `end_text`.
    pub fn queue(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Writes the header of the frame begun at `start`, moving the payload only when the header
    /// is not four bytes long (payloads under 126 bytes or over 64 KiB).
    pub fn end_text(&mut self, start: usize) {
        let len = self.out.len() - (start + 4);
        self.text_header(start, len);
    }

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

    /// Writes the header of the text frame begun at `start` whose payload is `len` bytes long
    /// (those after the four held bytes, and any queued by reference next).
    fn text_header(&mut self, start: usize, len: usize) {
        let body = start + 4;
        if len < 126 {
            self.out[start] = 0x80 | OP_TEXT;
            self.out[start + 1] = len as u8;
            self.out.copy_within(body.., start + 2);
            self.out.truncate(self.out.len() - 2);
        } else if len <= u16::MAX as usize {
            self.out[start] = 0x80 | OP_TEXT;
            self.out[start + 1] = 126;
            self.out[start + 2..body].copy_from_slice(&(len as u16).to_be_bytes());
        } else {
            let mut header = [0u8; 10];
            header[0] = 0x80 | OP_TEXT;
            header[1] = 127;
            header[2..].copy_from_slice(&(len as u64).to_be_bytes());
            self.out.splice(start..body, header);
        }
    }

    /// Queues one frame.
    pub fn push_frame(&mut self, opcode: u8, payload: &[u8]) {
        self.push_header(opcode, payload.len());
        self.out.extend_from_slice(payload);
    }

    /// Queues a close frame; the reason is cut to the 123 bytes a close frame allows.
    pub fn push_close(&mut self, code: u16, reason: &str) {
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        self.push_header(OP_CLOSE, 2 + end);
        self.out.extend_from_slice(&code.to_be_bytes());
        self.out.extend_from_slice(&reason.as_bytes()[..end]);
    }

    /// One `recv` into `buf`: blocking (up to the socket's read timeout) when `block`, else
    /// returning `WouldBlock` at once when nothing is waiting. `Ok(0)` is the end of input.
    pub fn recv(&self, buf: &mut [u8], block: bool) -> io::Result<usize> {
        self.recv_flags(buf, if block { 0 } else { libc::MSG_DONTWAIT })
    }

    fn recv_flags(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call.
        let n = unsafe {
            libc::recv(
                self.sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// One non-blocking `send` of `buf`.
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the duration of the call.
        let n = unsafe {
            libc::send(
                self.sock.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// One non-blocking `sendmsg` of the queue from where it stands, with the pieces queued
    /// by reference in their places (as many as one call takes).
    fn send_vectored(&self) -> io::Result<usize> {
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
    fn advance(&mut self, mut n: usize) {
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

    /// Writes as much of the queue as the socket takes now; true when the queue is empty.
    pub fn write_some(&mut self) -> io::Result<bool> {
        while self.pending() > 0 {
            let result = if self.shared.is_empty() {
                self.send(&self.out[self.sent..])
            } else {
                self.send_vectored()
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.pending() == 0 {
            self.out.clear();
            self.sent = 0;
            if self.out.capacity() > 1 << 20 {
                self.out.shrink_to(64 * 1024);
            }
            Ok(true)
        } else {
            if self.sent > self.out.len() / 2 {
                self.out.drain(..self.sent);
                for piece in &mut self.shared {
                    piece.at -= self.sent;
                }
                self.sent = 0;
            }
            Ok(false)
        }
    }

    /// Waits until the socket is readable (or, with `want_write`, writable), fails, or
    /// `timeout` passes.
    pub fn wait(&self, want_write: bool, timeout: Duration) -> io::Result<()> {
        let events = if want_write {
            libc::POLLIN | libc::POLLOUT
        } else {
            libc::POLLIN
        };
        self.poll(events, timeout)
    }

    /// Waits until the socket is writable (or failed) or `timeout`, ignoring unread input: for
    /// when the server deliberately does not read (input would make `wait` return at once, and
    /// the caller spin).
    pub fn wait_writable(&self, timeout: Duration) -> io::Result<()> {
        self.poll(libc::POLLOUT, timeout)
    }

    fn poll(&self, events: libc::c_short, timeout: Duration) -> io::Result<()> {
        let mut fd = libc::pollfd {
            fd: self.sock.as_raw_fd(),
            events,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `fd` is a valid pollfd for the duration of the call, and the count is 1.
        if unsafe { libc::poll(&mut fd, 1, ms) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Flushes the queue, waiting at most `timeout` for the peer to take it.
    pub fn flush_within(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        while !self.write_some()? {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.wait_writable(left)?;
        }
        Ok(())
    }

    /// Ends a connection the server closes: the queue (with its close frame) goes out, the
    /// write side is shut, and unread input is drained for a moment so the peer is not reset
    /// before it has read the close frame.
    pub fn finish(&mut self, linger: Duration) {
        let _ = self.flush_within(linger);
        let _ = self.sock.shutdown(Shutdown::Write);
        let deadline = std::time::Instant::now() + linger;
        let mut sink = [0u8; 16 * 1024];
        let mut drained = 0usize;
        while drained < 64 << 20 {
            match self.recv(&mut sink, false) {
                Ok(0) => break,
                Ok(n) => drained += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() || self.wait(false, left).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }
}

/// For the handshake only: hands over bytes up to the end of the request head and never past
/// it (the rest is only peeked at), so that frames a client sends right behind its upgrade
/// request stay in the socket for the session's frame reader.
impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let seen = self.recv_flags(buf, libc::MSG_PEEK | libc::MSG_DONTWAIT)?;
        let mut take = seen;
        for (i, &b) in buf[..seen].iter().enumerate() {
            self.head_tail = (self.head_tail << 8) | b as u32;
            // A blank line ends the head: "\n\r\n" or "\n\n".
            if self.head_tail & 0xFF_FFFF == 0x0A_0D0A || self.head_tail & 0xFFFF == 0x0A0A {
                take = i + 1;
                break;
            }
        }
        if take == 0 {
            return Ok(0);
        }
        self.recv_flags(&mut buf[..take], libc::MSG_DONTWAIT)
    }
}

impl Write for Conn {
    /// tungstenite's handshake response is queued like every other output.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_place_frames_match_copied_frames() {
        let (a, _b) = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            (a, l.accept().unwrap().0)
        };
        let mut conn = Conn::new(a);
        for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            conn.out.clear();
            conn.push_frame(OP_TEXT, &payload);
            let copied = conn.out.clone();
            conn.out.clear();
            conn.out.extend_from_slice(b"xyz");
            let start = conn.begin_text();
            conn.queue().extend_from_slice(&payload);
            conn.end_text(start);
            assert_eq!(&conn.out[..3], b"xyz");
            assert_eq!(&conn.out[3..], &copied[..], "payload of {len} bytes");
        }
    }

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
