//! The client's half of RFC 6455 framing. The server's frames are taken in place from one
//! reusable read buffer: it is zero-filled only when it grows, a message is never copied into
//! a buffer of its own, and once a frame's header is in, a read asks for no more than the
//! frame still needs, so a large answer ends where the buffer's bytes end and the next one
//! starts at the front again (no bytes moved to make room). A message the server splits into
//! fragments is joined in a second buffer. Client frames go out masked.

use std::fmt;
use std::io::{self, Read};

use crate::ws_header::{
    self, apply_mask, Header, HeaderError, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_TEXT,
};
pub use crate::ws_header::{OP_PING, OP_PONG};
/// The opcode of the client's own messages.
pub const OP_TEXT_OUT: u8 = OP_TEXT;
/// The opcode of the client's close frame.
pub const OP_CLOSE_OUT: u8 = OP_CLOSE;

/// Bytes asked of the socket while the next frame's size is not known yet.
const READ_AHEAD: usize = 64 * 1024;

/// What a complete frame (for text, a complete message) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Ping,
    Pong,
    Close,
}

/// A frame taken from the buffer; its payload is [`FrameReader::payload`] until the next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    at: usize,
    end: usize,
    /// The payload is the joined fragments, not a part of the read buffer.
    joined: bool,
}

/// A frame the client does not accept: the connection cannot go on after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Against RFC 6455 (the text says what).
    Protocol(&'static str),
    /// A binary message (the server sends text only).
    Binary,
    /// A message over the limit, refused from its header.
    TooBig { limit: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Protocol(what) => write!(f, "WebSocket protocol error: {what}"),
            FrameError::Binary => f.write_str("unexpected binary frame from the server"),
            FrameError::TooBig { limit } => {
                write!(
                    f,
                    "a message from the server is over the {limit}-byte limit"
                )
            }
        }
    }
}

/// Parses the header of a server frame at the start of `b`; `Ok(None)` when more bytes are
/// needed.
fn header(b: &[u8]) -> Result<Option<Header>, FrameError> {
    ws_header::parse(b, false).map_err(|e| {
        FrameError::Protocol(match e {
            HeaderError::Reserved => "reserved bits set (no extension was agreed)",
            HeaderError::Masking => "a masked frame from the server",
            HeaderError::Length => "a 64-bit length with its most significant bit set",
        })
    })
}

/// The server's frames, read from a socket into one buffer and taken in place.
pub struct FrameReader {
    buf: Vec<u8>,
    /// First byte not yet taken as a frame.
    start: usize,
    /// End of the bytes read.
    end: usize,
    /// Bytes the frame at `start` needs in all, once its header is in (0 before).
    want: usize,
    max_message: usize,
    /// The fragments of a message read so far.
    joined: Vec<u8>,
    fragmented: bool,
    /// `joined` held the previous frame's payload: clear it before reading on.
    joined_served: bool,
}

impl FrameReader {
    pub fn new(max_message: usize) -> Self {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            end: 0,
            want: 0,
            max_message,
            joined: Vec::new(),
            fragmented: false,
            joined_served: false,
        }
    }

    /// Adds bytes read before framing started (what followed the handshake's response).
    pub fn preload(&mut self, bytes: &[u8]) {
        let room = self.room(bytes.len());
        let n = room.len().min(bytes.len());
        room[..n].copy_from_slice(&bytes[..n]);
        self.end += n;
    }

    /// One `read` of `src` into the buffer: at most what the frame being read still needs, or
    /// [`READ_AHEAD`] bytes while its header is not in. `Ok(0)` is the end of the stream.
    pub fn fill_from(&mut self, src: &mut impl Read) -> io::Result<usize> {
        let held = self.end - self.start;
        let ask = if self.want > held {
            self.want - held
        } else {
            READ_AHEAD
        };
        let n = src.read(self.room(ask))?;
        self.end += n.min(ask);
        Ok(n)
    }

    /// `ask` bytes of free space after the bytes held, made by moving the bytes not yet taken
    /// to the front, or by growing the buffer.
    fn room(&mut self, ask: usize) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < ask {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() - self.end < ask {
                self.buf.resize(self.end + ask, 0);
            }
        }
        &mut self.buf[self.end..self.end + ask]
    }

    /// The next complete frame (a text message once all its fragments are in); `Ok(None)`
    /// when the buffer holds none: read more with [`FrameReader::fill_from`].
    pub fn next(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.joined_served {
            self.joined.clear();
            self.joined_served = false;
        }
        loop {
            let Some(h) = header(&self.buf[self.start..self.end])? else {
                self.want = 0;
                return Ok(None);
            };
            self.check(&h)?;
            // `check` bounds the payload by the message limit.
            let total = h.len + h.payload;
            if self.end - self.start < total {
                self.want = total;
                return Ok(None);
            }
            self.want = 0;
            let at = self.start + h.len;
            let end = at + h.payload;
            self.start = end;
            let kind = match h.opcode {
                OP_TEXT if h.fin => Kind::Text,
                OP_TEXT | OP_CONTINUATION => {
                    self.joined.extend_from_slice(&self.buf[at..end]);
                    self.fragmented = !h.fin;
                    if !h.fin {
                        continue;
                    }
                    self.joined_served = true;
                    return Ok(Some(Frame {
                        kind: Kind::Text,
                        at: 0,
                        end: self.joined.len(),
                        joined: true,
                    }));
                }
                OP_PING => Kind::Ping,
                OP_PONG => Kind::Pong,
                // `check` lets no other opcode through.
                _ => Kind::Close,
            };
            return Ok(Some(Frame {
                kind,
                at,
                end,
                joined: false,
            }));
        }
    }

    /// The payload of a frame [`FrameReader::next`] returned, valid until the next read.
    pub fn payload(&self, f: &Frame) -> &[u8] {
        let from = if f.joined { &self.joined } else { &self.buf };
        from.get(f.at..f.end).unwrap_or_default()
    }

    /// Refuses a frame by its header alone, before its payload is read.
    fn check(&self, h: &Header) -> Result<(), FrameError> {
        match h.opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !h.fin {
                    return Err(FrameError::Protocol("a fragmented control frame"));
                }
                if h.payload > 125 {
                    return Err(FrameError::Protocol("a control frame over 125 bytes"));
                }
            }
            OP_TEXT | OP_BINARY if self.fragmented => {
                return Err(FrameError::Protocol(
                    "a new message before the fragmented one ended",
                ))
            }
            OP_CONTINUATION if !self.fragmented => {
                return Err(FrameError::Protocol(
                    "a continuation frame with nothing to continue",
                ))
            }
            OP_BINARY => return Err(FrameError::Binary),
            OP_TEXT | OP_CONTINUATION => {
                if h.payload > self.max_message.saturating_sub(self.joined.len()) {
                    return Err(FrameError::TooBig {
                        limit: self.max_message,
                    });
                }
            }
            _ => return Err(FrameError::Protocol("an unknown opcode")),
        }
        Ok(())
    }
}

/// The code and reason of a close frame's payload, if it carries them.
pub fn close_parts(payload: &[u8]) -> Result<Option<(u16, &[u8])>, FrameError> {
    match payload {
        [] => Ok(None),
        [_] => Err(FrameError::Protocol(
            "a close frame with a one-byte payload",
        )),
        [hi, lo, reason @ ..] => Ok(Some((u16::from_be_bytes([*hi, *lo]), reason))),
    }
}

/// Appends a client frame (FIN set, masked with `key`) carrying `payload`.
pub fn push_masked(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    let at = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[at..], key);
}

/// Masking keys: a SplitMix64 sequence seeded from the standard library's per-process random
/// hash keys (RFC 6455 asks for keys a proxy cannot predict, not for a secure generator).
pub struct Masks(u64);

impl Masks {
    pub fn new() -> Masks {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x6d61_736b);
        Masks(h.finish())
    }

    pub fn next_key(&mut self) -> [u8; 4] {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let z = z ^ (z >> 31);
        (z as u32).to_ne_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server frame (unmasked) with the first byte `first`.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        let len = payload.len();
        if len < 126 {
            out.push(len as u8);
        } else if len <= 0xFFFF {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    /// A source that hands out at most `chunk` bytes per read, and remembers what it was
    /// asked for.
    struct Trickle<'a> {
        rest: &'a [u8],
        chunk: usize,
        asked: Vec<usize>,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.asked.push(out.len());
            let n = out.len().min(self.chunk).min(self.rest.len());
            out[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            Ok(n)
        }
    }

    /// Every frame of `bytes` as `kind:payload`, read `chunk` bytes at a time.
    fn frames(bytes: &[u8], chunk: usize, max: usize) -> Result<Vec<String>, FrameError> {
        let mut src = Trickle {
            rest: bytes,
            chunk,
            asked: Vec::new(),
        };
        let mut r = FrameReader::new(max);
        let mut out = Vec::new();
        loop {
            while let Some(f) = r.next()? {
                let p = String::from_utf8_lossy(r.payload(&f)).into_owned();
                out.push(format!("{:?}:{p}", f.kind));
            }
            match src.read_into(&mut r) {
                0 => return Ok(out),
                _ => continue,
            }
        }
    }

    impl Trickle<'_> {
        fn read_into(&mut self, r: &mut FrameReader) -> usize {
            r.fill_from(self).unwrap()
        }
    }

    #[test]
    fn whole_frames_in_order() {
        let big = "y".repeat(70_000);
        let mut b = frame(0x81, b"hello");
        b.extend(frame(0x89, b"p"));
        b.extend(frame(0x8A, b""));
        b.extend(frame(0x81, big.as_bytes()));
        b.extend(frame(0x81, &[b'm'; 300]));
        b.extend(frame(0x88, b"\x03\xe8bye"));
        for chunk in [1, 7, 1000, 1 << 20] {
            let got = frames(&b, chunk, 1 << 20).unwrap();
            assert_eq!(got.len(), 6, "chunk {chunk}");
            assert_eq!(got[..3], ["Text:hello", "Ping:p", "Pong:"], "chunk {chunk}");
            assert_eq!(got[3], format!("Text:{big}"), "chunk {chunk}");
            assert_eq!(got[4], format!("Text:{}", "m".repeat(300)), "chunk {chunk}");
            assert_eq!(got[5], "Close:\u{3}\u{fffd}bye", "chunk {chunk}");
        }
        assert_eq!(close_parts(b"\x03\xe8bye"), Ok(Some((1000, &b"bye"[..]))));
        assert_eq!(close_parts(b""), Ok(None));
        assert!(close_parts(b"\x03").is_err());
    }

    #[test]
    fn fragments_are_joined_around_control_frames() {
        let mut b = frame(0x01, b"hel");
        b.extend(frame(0x89, b"hb"));
        b.extend(frame(0x00, b"lo "));
        b.extend(frame(0x8A, b""));
        b.extend(frame(0x80, b"world"));
        b.extend(frame(0x81, b"next"));
        b.extend(frame(0x01, b"a"));
        b.extend(frame(0x80, b"b"));
        for chunk in [1, 3, 64] {
            assert_eq!(
                frames(&b, chunk, 100).unwrap(),
                [
                    "Ping:hb",
                    "Pong:",
                    "Text:hello world",
                    "Text:next",
                    "Text:ab"
                ],
                "chunk {chunk}"
            );
        }
        // The limit counts the joined message, not each fragment.
        let mut b = frame(0x01, &[b'a'; 60]);
        b.extend(frame(0x80, &[b'a'; 41]));
        assert_eq!(
            frames(&b, 1000, 100),
            Err(FrameError::TooBig { limit: 100 })
        );
    }

    #[test]
    fn violations_are_errors() {
        let masked = vec![0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
        let cases: Vec<(Vec<u8>, FrameError)> = vec![
            (
                masked,
                FrameError::Protocol("a masked frame from the server"),
            ),
            (
                frame(0xC1, b"x"),
                FrameError::Protocol("reserved bits set (no extension was agreed)"),
            ),
            (frame(0x83, b"x"), FrameError::Protocol("an unknown opcode")),
            (
                frame(0x80, b"x"),
                FrameError::Protocol("a continuation frame with nothing to continue"),
            ),
            (
                frame(0x09, b"x"),
                FrameError::Protocol("a fragmented control frame"),
            ),
            (
                frame(0x89, &[0; 126]),
                FrameError::Protocol("a control frame over 125 bytes"),
            ),
            (
                [frame(0x01, b"a"), frame(0x81, b"b")].concat(),
                FrameError::Protocol("a new message before the fragmented one ended"),
            ),
            (frame(0x82, b"x"), FrameError::Binary),
        ];
        for (bytes, want) in cases {
            assert_eq!(frames(&bytes, 1000, 100), Err(want), "{bytes:02x?}");
        }
    }

    #[test]
    fn oversize_is_refused_from_the_header_alone() {
        assert_eq!(
            frames(&frame(0x81, &[b'a'; 100]), 1000, 100).unwrap(),
            [format!("Text:{}", "a".repeat(100))]
        );
        // Only the header of a frame one byte over the limit, or of a 2^63 - 1-byte one.
        let largest = [0x81, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        for head in [&[0x81, 101][..], &largest[..]] {
            assert_eq!(
                frames(head, 1000, 100),
                Err(FrameError::TooBig { limit: 100 })
            );
        }
        // A length with its top bit set is against RFC 6455 §5.2, whatever the limit.
        assert_eq!(
            frames(&[0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0], 1000, 100),
            Err(FrameError::Protocol(
                "a 64-bit length with its most significant bit set"
            ))
        );
    }

    #[test]
    fn reads_stop_at_the_end_of_the_frame_being_read() {
        // Two large frames back to back: once the first one's header is in, reads ask for
        // its remaining bytes only, so the second starts at the front of the buffer and the
        // buffer holds one frame, not two.
        let a = frame(0x81, &[b'a'; 200_000]);
        let b = frame(0x81, &[b'b'; 200_000]);
        let bytes = [a.clone(), b].concat();
        let mut src = Trickle {
            rest: &bytes,
            chunk: usize::MAX,
            asked: Vec::new(),
        };
        let mut r = FrameReader::new(1 << 20);
        let mut seen = Vec::new();
        while seen.len() < 2 {
            match r.next().unwrap() {
                Some(f) => {
                    let p = r.payload(&f);
                    seen.push((p.len(), p[0]));
                }
                None => assert!(src.read_into(&mut r) > 0),
            }
        }
        assert_eq!(seen, [(200_000, b'a'), (200_000, b'b')]);
        assert_eq!(
            src.asked,
            [
                READ_AHEAD,
                a.len() - READ_AHEAD,
                READ_AHEAD,
                a.len() - READ_AHEAD
            ]
        );
        assert_eq!(r.buf.len(), a.len());
    }

    #[test]
    fn masked_frames_unmask_to_the_payload() {
        for len in [0usize, 5, 125, 126, 1000, 65_535, 65_536, 70_001] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let key = [0x12, 0x34, 0x56, 0x78];
            let mut out = Vec::new();
            push_masked(&mut out, OP_TEXT_OUT, &payload, key);
            let (len_bytes, head) = match len {
                ..126 => (vec![0x80 | len as u8], 2),
                126..=65_535 => (
                    [vec![0xFE], (len as u16).to_be_bytes().to_vec()].concat(),
                    4,
                ),
                _ => (
                    [vec![0xFF], (len as u64).to_be_bytes().to_vec()].concat(),
                    10,
                ),
            };
            assert_eq!(out[0], 0x81);
            assert_eq!(out[1..head], len_bytes[..]);
            assert_eq!(out[head..head + 4], key);
            let unmasked: Vec<u8> = out[head + 4..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect();
            assert_eq!(unmasked, payload, "length {len}");
        }
        let mut m = Masks::new();
        let keys: Vec<[u8; 4]> = (0..4).map(|_| m.next_key()).collect();
        assert!(keys.windows(2).all(|w| w[0] != w[1]), "{keys:?}");
    }
}
