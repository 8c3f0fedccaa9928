//! RFC 6455 framing, written by hand for speed: masked client frames out, frames parsed in
//! place from a read buffer. Shared by the client and the echo server.

use std::io::{self, Read};

pub const OP_TEXT: u8 = 0x1;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The largest frame either side accepts (the server's default message limit is 16 MiB).
pub const MAX_FRAME: usize = 256 << 20;

/// XORs `buf` with the repeating 4-byte masking `key`, eight bytes at a time.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// Appends a frame header; `mask` is given for client frames.
fn header(out: &mut Vec<u8>, opcode: u8, len: usize, mask: Option<[u8; 4]>) {
    let m = if mask.is_some() { 0x80 } else { 0 };
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(k) = mask {
        out.extend_from_slice(&k);
    }
}

/// Appends the header of an unmasked server frame of `len` payload bytes.
pub fn push_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    header(out, opcode, len, None);
}

/// Appends a masked client frame carrying `payload`.
pub fn push_masked(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    header(out, opcode, payload.len(), Some(key));
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key);
}

/// Appends an unmasked server frame carrying `payload`.
pub fn push_plain(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    header(out, opcode, payload.len(), None);
    out.extend_from_slice(payload);
}

/// A close frame's payload: code and reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    p
}

/// Code and reason of a received close frame, for messages.
pub fn describe_close(payload: &[u8]) -> String {
    if payload.len() < 2 {
        return "close frame without a code".into();
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    format!("close {code} {}", String::from_utf8_lossy(&payload[2..]))
}

/// One parsed frame: its opcode, FIN bit and where its payload sits in the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub opcode: u8,
    pub fin: bool,
    pub start: usize,
    pub end: usize,
}

/// A growable read buffer from which complete frames are taken in place.
pub struct FrameReader {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl FrameReader {
    pub fn new(capacity: usize) -> Self {
        FrameReader {
            buf: vec![0; capacity],
            pos: 0,
            len: 0,
        }
    }

    /// Adds bytes that were read before framing started (after an HTTP handshake).
    pub fn preload(&mut self, bytes: &[u8]) {
        self.make_room(bytes.len());
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn make_room(&mut self, want: usize) {
        if self.pos == self.len {
            self.pos = 0;
            self.len = 0;
        }
        if self.buf.len() - self.len >= want {
            return;
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() - self.len < want {
            let new = (self.len + want).next_power_of_two();
            self.buf.resize(new, 0);
        }
    }

    /// One `read` call on `src`; Ok(0) means the peer closed the connection.
    pub fn fill_from<R: Read>(&mut self, src: &mut R) -> io::Result<usize> {
        self.make_room(64 * 1024);
        let n = src.read(&mut self.buf[self.len..])?;
        self.len += n;
        Ok(n)
    }

    /// The next complete frame, unmasked in place, if the buffer holds one.
    pub fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        let avail = &self.buf[self.pos..self.len];
        if avail.len() < 2 {
            return Ok(None);
        }
        let fin = avail[0] & 0x80 != 0;
        let opcode = avail[0] & 0x0F;
        let masked = avail[1] & 0x80 != 0;
        let (len, mut off) = match avail[1] & 0x7F {
            126 => {
                if avail.len() < 4 {
                    return Ok(None);
                }
                (u16::from_be_bytes([avail[2], avail[3]]) as usize, 4)
            }
            127 => {
                if avail.len() < 10 {
                    return Ok(None);
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&avail[2..10]);
                let n = u64::from_be_bytes(b);
                if n > MAX_FRAME as u64 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("frame of {n} bytes is over the {MAX_FRAME}-byte limit"),
                    ));
                }
                (n as usize, 10)
            }
            n => (n as usize, 2),
        };
        let mut key = [0u8; 4];
        if masked {
            if avail.len() < off + 4 {
                return Ok(None);
            }
            key.copy_from_slice(&avail[off..off + 4]);
            off += 4;
        }
        if avail.len() < off + len {
            // Make sure the whole frame will fit in the buffer.
            let need = off + len;
            if self.buf.len() - self.pos < need {
                self.make_room(need - (self.len - self.pos));
            }
            return Ok(None);
        }
        let start = self.pos + off;
        let end = start + len;
        if masked {
            apply_mask(&mut self.buf[start..end], key);
        }
        self.pos = end;
        Ok(Some(Frame {
            opcode,
            fin,
            start,
            end,
        }))
    }

    /// The payload of a frame returned by the latest `next_frame` calls (valid until the next
    /// `fill_from`).
    pub fn payload(&self, f: &Frame) -> &[u8] {
        &self.buf[f.start..f.end]
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (for the `Sec-WebSocket-Key`).
pub fn base64(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Masking keys and handshake nonces (not for security): fastrand's generator, seeded per
/// connection from the time and `salt`.
pub struct Rng(fastrand::Rng);

impl Rng {
    pub fn seeded(salt: u64) -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng(fastrand::Rng::with_seed(
            t ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ))
    }

    pub fn fill(&mut self, bytes: &mut [u8]) {
        self.0.fill(bytes)
    }

    pub fn mask(&mut self) -> [u8; 4] {
        self.0.u32(..).to_ne_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_frames_round_trip() {
        for len in [0usize, 5, 125, 126, 1000, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut out = Vec::new();
            push_masked(&mut out, OP_TEXT, &payload, [1, 2, 3, 4]);
            push_plain(&mut out, OP_PING, b"p");
            let mut r = FrameReader::new(16);
            r.preload(&out);
            let f = r.next_frame().unwrap().unwrap();
            assert_eq!((f.opcode, f.fin), (OP_TEXT, true));
            assert_eq!(r.payload(&f), &payload[..]);
            let f = r.next_frame().unwrap().unwrap();
            assert_eq!(r.payload(&f), b"p");
            assert!(r.next_frame().unwrap().is_none());
        }
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
