//! One connection of the `subscribe` scenario on the hand-written framing (`wire.rs`): frames
//! are parsed in place in the read buffer, never copied into a `String` nor checked as UTF-8,
//! so that a hundred subscribers sharing the machine with the server measure the server's
//! delivery rather than their own reading (what they check of each push: `delivery.rs`).

use crate::client::{Client, Endpoint};
use crate::wire::{self, FrameReader, Rng, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
use std::io::{self, Write};
use std::net::TcpStream;
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

    #[test]
    fn finding() {
        assert_eq!(find(b"abc", b"c"), Some(2));
        assert_eq!(find(b"ab", b"abc"), None);
    }
}
