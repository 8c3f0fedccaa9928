//! One connection of the `subscribe` scenario on the hand-written framing (`wire.rs`): frames
//! are parsed in place in the read buffer, never copied into a `String` nor checked as UTF-8,
//! so that a hundred subscribers sharing the machine with the server measure the server's
//! delivery rather than their own reading (what they check of each push: `delivery.rs`).

use crate::client::{Client, Endpoint};
use crate::wire::{self, FrameReader, Rng, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Salts for the connections' masking keys.
static SALT: AtomicU64 = AtomicU64::new(1);

/// What one read of a connection gave.
pub enum Got {
    /// Frames were handed to the callback.
    Frames,
    /// Nothing came within the read timeout.
    Quiet,
    /// The server closed the connection.
    Closed,
}

pub struct Conn {
    sock: TcpStream,
    reader: FrameReader,
    rng: Rng,
    out: Vec<u8>,
}

impl Conn {
    /// Connects, upgrades and waits for `ready`.
    pub fn open(addr: &str, key: &str) -> Result<Conn, String> {
        let ep = Endpoint::from_addr(addr, key)?;
        let salt = SALT.fetch_add(1, Ordering::Relaxed);
        let client = Client::connect(&ep, "bench-subscribe", salt)?;
        let (sock, reader, rng) = client.into_parts();
        Ok(Conn {
            sock,
            reader,
            rng,
            out: Vec::with_capacity(64 * 1024),
        })
    }

    /// Sends one text frame.
    pub fn send(&mut self, text: &[u8]) -> Result<(), String> {
        self.out.clear();
        wire::push_masked(&mut self.out, OP_TEXT, text, self.rng.mask());
        self.sock
            .write_all(&self.out)
            .map_err(|e| format!("sending: {e}"))
    }

    /// Asks the kernel to wake a blocked read only once `bytes` are waiting (or the read
    /// timeout passes, when it returns what there is): a subscriber that is not measuring
    /// latency then reads its pushes in large chunks, as one on another machine would see
    /// them arrive, instead of being woken for every segment the server sends on loopback.
    /// What it checks of the pushes does not change. The receive buffer is set first, to
    /// several times `bytes`: left to the kernel, the low mark would also clamp the receive
    /// window to `bytes`, which the waiting bytes' overhead then keeps them from reaching, so
    /// every read would last the whole timeout (for the same reason the mark stays at a
    /// quarter of the buffer the kernel grants).
    pub fn read_in_bulk(&self, bytes: usize) -> Result<(), String> {
        read_in_bulk(&self.sock, bytes)
    }

    pub fn set_read_timeout(&self, t: Duration) -> Result<(), String> {
        self.sock
            .set_read_timeout(Some(t))
            .map_err(|e| format!("setting a read timeout: {e}"))
    }

    /// Hands `each` every text frame already buffered, then reads once more from the socket
    /// if none was (pings are answered on the way).
    pub fn read(&mut self, mut each: impl FnMut(&[u8])) -> Result<Got, String> {
        loop {
            let mut any = false;
            let mut pong: Option<Vec<u8>> = None;
            while let Some(f) = self.reader.next_frame().map_err(|e| e.to_string())? {
                let p = self.reader.payload(&f);
                match f.opcode {
                    OP_TEXT => {
                        any = true;
                        each(p);
                    }
                    OP_PING => pong = Some(p.to_vec()),
                    OP_CLOSE => return Ok(Got::Closed),
                    OP_PONG => {}
                    op => return Err(format!("unexpected frame opcode {op}")),
                }
            }
            if let Some(p) = pong {
                self.out.clear();
                wire::push_masked(&mut self.out, OP_PONG, &p, self.rng.mask());
                self.sock
                    .write_all(&self.out)
                    .map_err(|e| format!("answering a ping: {e}"))?;
            }
            if any {
                return Ok(Got::Frames);
            }
            match self.reader.fill_from(&mut self.sock) {
                Ok(0) => return Ok(Got::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(Got::Quiet)
                }
                Err(e) => return Err(format!("reading: {e}")),
            }
        }
    }

    /// The next text frame, copied (for answers to requests, not for pushes).
    pub fn next_text(&mut self) -> Result<Vec<u8>, String> {
        loop {
            let mut got = None;
            // Frames after the first stay buffered for the next call.
            let first = self.reader.next_frame().map_err(|e| e.to_string())?;
            if let Some(f) = first {
                match f.opcode {
                    OP_TEXT => got = Some(self.reader.payload(&f).to_vec()),
                    OP_CLOSE => return Err("the server closed the connection".into()),
                    _ => continue,
                }
            }
            if let Some(t) = got {
                return Ok(t);
            }
            match self.reader.fill_from(&mut self.sock) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("waiting for an answer: {e}")),
            }
        }
    }
}

/// [`Conn::read_in_bulk`] on a socket.
fn read_in_bulk(sock: &TcpStream, bytes: usize) -> Result<(), String> {
    set_option(sock, libc::SO_RCVBUF, bytes.saturating_mul(16))?;
    // The kernel caps the buffer at `net.core.rmem_max`; a low mark near what the window can
    // hold would never be reached, so it stays at a quarter of the buffer granted.
    let granted = usize::try_from(get_option(sock, libc::SO_RCVBUF)?).unwrap_or(0);
    set_option(sock, libc::SO_RCVLOWAT, bytes.min(granted / 4).max(1))
}

fn get_option(sock: &TcpStream, name: libc::c_int) -> Result<libc::c_int, String> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the socket is open for the life of `sock`; `v` and `len` are valid for writes
    // of their sizes.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(format!(
            "reading socket option {name}: {}",
            io::Error::last_os_error()
        ));
    }
    Ok(v)
}

fn set_option(sock: &TcpStream, name: libc::c_int, value: usize) -> Result<(), String> {
    let v = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
    // SAFETY: the socket is open for the life of `sock`, and the option value is a `c_int`
    // whose size is passed along.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(format!(
            "setting socket option {name}: {}",
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut at = 0;
    while at + needle.len() <= hay.len() {
        let i = at
            + hay[at..=hay.len() - needle.len()]
                .iter()
                .position(|&b| b == first)?;
        if hay[i + 1..i + needle.len()] == *rest {
            return Some(i);
        }
        at = i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bulk reader's socket holds the low mark, and a read still returns what waits once
    /// the read timeout passes (the end of a run is read that way).
    #[test]
    fn a_bulk_read_waits_for_its_low_mark_or_its_timeout() {
        use std::io::Read;
        use std::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut tx = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut rx, _) = l.accept().unwrap();
        read_in_bulk(&rx, 4096).unwrap();
        assert_eq!(get_option(&rx, libc::SO_RCVLOWAT), Ok(4096));
        // A mark the granted buffer cannot hold four times over is lowered to a quarter of it.
        let (_tx2, rx2) = (
            TcpStream::connect(l.local_addr().unwrap()).unwrap(),
            l.accept().unwrap().0,
        );
        read_in_bulk(&rx2, 1 << 30).unwrap();
        let granted = get_option(&rx2, libc::SO_RCVBUF).unwrap();
        assert_eq!(get_option(&rx2, libc::SO_RCVLOWAT), Ok(granted / 4));
        rx.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut buf = vec![0u8; 1 << 16];
        tx.write_all(b"short").unwrap();
        assert_eq!(rx.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"short");
    }

    #[test]
    fn finding() {
        assert_eq!(find(b"abc", b"c"), Some(2));
        assert_eq!(find(b"ab", b"abc"), None);
    }
}
