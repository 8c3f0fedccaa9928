//! One client socket with an output queue that this crate owns: every frame (responses,
//! pongs, close frames, and tungstenite's handshake response) goes through the queue, so frames
//! never interleave, and the session decides when the queue goes to the socket. Writes never
//! block; a read blocks only when the session asks it to.
//!
//! Most of the queue is copied into one buffer; a large remembered answer (see
//! `ops::answer_cache`) is queued by reference instead ([`Conn::end_text_with`]): it stays
//! where the cache keeps it and the socket takes it in the same vectored write as the bytes
//! around it (see `conn/by_reference.rs`).

mod by_reference;

use super::frames::{OP_CLOSE, OP_TEXT};
use by_reference::Shared;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

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

    /// Bytes written to the socket that the client's machine has not acknowledged yet (sent
    /// or not); 0 when the system cannot tell.
    pub fn unacknowledged(&self) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ on a TCP socket) writes one int to the pointer given.
        let r = unsafe { libc::ioctl(self.sock.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
        if r == 0 {
            usize::try_from(n).unwrap_or(0)
        } else {
            0
        }
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
}
