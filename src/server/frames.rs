//! Client frames (RFC 6455 §5) taken in place from one read buffer: a text message arrives as
//! a `&str` into the buffer, unmasked and UTF-8 checked, with no allocation per message. The
//! server negotiates no extension, so every frame must be masked and have its RSV bits clear.

/// Bytes the buffer starts with and shrinks back to once idle.
const INITIAL: usize = 16 * 1024;
/// The least free space offered to a read.
const MIN_READ: usize = 4 * 1024;
/// A buffer larger than this is given back once everything in it has been served.
const SHRINK_ABOVE: usize = 64 * 1024;
/// The room a frame's bytes may grow into before twice what has arrived is the bound (see
/// [`FrameReader::spare`]): a frame up to this size (a bulk `ins` of 1,000 records is about
/// 100 KiB) gets its whole room at once, as before, and a client announcing larger frames it
/// does not send makes the server hold at most this much.
const GROW_FROM: usize = 256 * 1024;

use crate::ws_header::{self, apply_mask, Header, OP_BINARY, OP_CONTINUATION};
pub(super) use crate::ws_header::{OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};

/// Appends the header of an unmasked server frame carrying `len` payload bytes.
pub(super) fn write_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if len <= u16::MAX as usize {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// What a complete frame (or, for text, a complete message) asks of the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    Text(&'a str),
    Ping(&'a [u8]),
    Pong,
    /// The peer's close frame: its code and reason, if it carried any.
    Close(Option<(u16, &'a str)>),
}

/// A violation that ends the connection with the close code of [`FrameError::close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    Protocol,
    Binary,
    BadUtf8,
    TooBig,
}

impl FrameError {
    pub fn close(self) -> (u16, &'static str) {
        match self {
            FrameError::Protocol => (1002, "protocol error"),
            FrameError::Binary => (1003, "text frames only"),
            FrameError::BadUtf8 => (1007, "invalid UTF-8 in text frame"),
            FrameError::TooBig => (1009, "message too big"),
        }
    }
}

/// Close codes a peer may send (RFC 6455 §7.4 and the IANA registry).
fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Parses the header of a client frame at the start of `b`; `Ok(None)` when more bytes are
/// needed.
fn header(b: &[u8]) -> Result<Option<Header>, FrameError> {
    // RSV bits without an extension, an unmasked client frame, a length's top bit set.
    ws_header::parse(b, true).map_err(|_| FrameError::Protocol)
}

pub struct FrameReader {
    buf: Vec<u8>,
    /// First byte not yet taken as a frame.
    start: usize,
    /// End of the bytes read.
    end: usize,
    /// Bytes the frame at `start` needs in all, once its header says so.
    want: usize,
    max_message: usize,
    /// The text of a fragmented message read so far.
    partial: Vec<u8>,
    fragmented: bool,
    /// `partial` held the previous event's text: clear it before reading on.
    partial_served: bool,
}

impl FrameReader {
    pub fn new(max_message: usize) -> Self {
        FrameReader {
            buf: vec![0; INITIAL],
            start: 0,
            end: 0,
            want: 0,
            max_message,
            partial: Vec::new(),
            fragmented: false,
            partial_served: false,
        }
    }

    /// Free space to read into, made large enough for the frame being read as its bytes
    /// arrive: at most twice what is buffered (or [`GROW_FROM`], if more) ahead of them, not
    /// the size its header announces, so that a client announcing a large frame and sending
    /// a few bytes of it does not make the server allocate (and zero) the whole of it.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let have = self.end - self.start;
        let next = self.want.min(have.saturating_mul(2).max(GROW_FROM));
        let need = next.max(have + MIN_READ);
        if self.buf.len() - self.start < need {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < need {
                // The exact size: one frame at a time lives here (fragments go to `partial`).
                self.buf.resize(need, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into [`FrameReader::spare`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Gives a large buffer back once everything in it has been served.
    pub fn shrink_if_idle(&mut self) {
        if self.start == self.end && self.buf.len() > SHRINK_ABOVE {
            self.buf = vec![0; INITIAL];
            self.start = 0;
            self.end = 0;
        }
        if !self.fragmented && self.partial.capacity() > SHRINK_ABOVE {
            self.partial = Vec::new();
        }
    }

    /// The next complete event; `Ok(None)` when the buffer holds no complete frame.
    pub fn next(&mut self) -> Result<Option<Event<'_>>, FrameError> {
        if self.partial_served {
            self.partial.clear();
            self.partial_served = false;
        }
        // Frames are taken by position first (a fragment only extends `partial`), so that
        // the event borrows the buffer once, at the end.
        let (opcode, at, end) = loop {
            let Some(h) = header(&self.buf[self.start..self.end])? else {
                return Ok(None);
            };
            self.check(&h)?;
            let total = h.len + h.payload;
            if self.end - self.start < total {
                self.want = total;
                return Ok(None);
            }
            self.want = 0;
            let at = self.start + h.len;
            let end = at + h.payload;
            self.start += total;
            apply_mask(&mut self.buf[at..end], h.mask);
            match h.opcode {
                OP_TEXT if h.fin => break (OP_TEXT, at, end),
                OP_TEXT | OP_CONTINUATION => {
                    self.partial.extend_from_slice(&self.buf[at..end]);
                    self.fragmented = !h.fin;
                    if h.fin {
                        self.partial_served = true;
                        break (OP_CONTINUATION, 0, 0);
                    }
                }
                op => break (op, at, end),
            }
        };
        let payload = &self.buf[at..end];
        Ok(Some(match opcode {
            OP_TEXT => Event::Text(std::str::from_utf8(payload).map_err(|_| FrameError::BadUtf8)?),
            OP_CONTINUATION => {
                Event::Text(std::str::from_utf8(&self.partial).map_err(|_| FrameError::BadUtf8)?)
            }
            OP_PING => Event::Ping(payload),
            OP_PONG => Event::Pong,
            // `check` lets no other opcode through.
            _ => close_event(payload)?,
        }))
    }

    /// Refuses a frame by its header alone, before its payload is buffered.
    fn check(&self, h: &Header) -> Result<(), FrameError> {
        match h.opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !h.fin || h.payload > 125 {
                    return Err(FrameError::Protocol);
                }
            }
            OP_TEXT | OP_BINARY if self.fragmented => return Err(FrameError::Protocol),
            OP_CONTINUATION if !self.fragmented => return Err(FrameError::Protocol),
            OP_BINARY => return Err(FrameError::Binary),
            OP_TEXT | OP_CONTINUATION => {
                if h.payload > self.max_message.saturating_sub(self.partial.len()) {
                    return Err(FrameError::TooBig);
                }
            }
            _ => return Err(FrameError::Protocol),
        }
        Ok(())
    }
}

fn close_event(payload: &[u8]) -> Result<Event<'_>, FrameError> {
    match payload {
        [] => Ok(Event::Close(None)),
        [_] => Err(FrameError::Protocol),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code_allowed(code) {
                return Err(FrameError::Protocol);
            }
            let reason = std::str::from_utf8(reason).map_err(|_| FrameError::BadUtf8)?;
            Ok(Event::Close(Some((code, reason))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&KEY);
        let at = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[at..], KEY);
        out
    }

    fn feed(r: &mut FrameReader, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let spare = r.spare();
            let n = spare.len().min(rest.len());
            spare[..n].copy_from_slice(&rest[..n]);
            r.filled(n);
            rest = &rest[n..];
        }
    }

    fn events(bytes: &[u8]) -> Result<Vec<String>, FrameError> {
        let mut r = FrameReader::new(1 << 20);
        feed(&mut r, bytes);
        let mut out = Vec::new();
        while let Some(e) = r.next()? {
            out.push(format!("{e:?}"));
        }
        Ok(out)
    }

    #[test]
    fn texts_pings_and_close_in_order() {
        let mut b = frame(0x81, b"hello");
        b.extend(frame(0x89, b"p"));
        b.extend(frame(0x8A, b""));
        b.extend(frame(0x81, "é".repeat(100).as_bytes()));
        b.extend(frame(0x88, b"\x03\xe8bye"));
        let got = events(&b).unwrap();
        assert_eq!(got[0], r#"Text("hello")"#);
        assert_eq!(got[1], "Ping([112])");
        assert_eq!(got[2], "Pong");
        assert!(got[3].starts_with("Text(\"éé"));
        assert_eq!(got[4], r#"Close(Some((1000, "bye")))"#);
    }

    #[test]
    fn fragments_join_around_control_frames() {
        let mut b = frame(0x01, b"hel");
        b.extend(frame(0x89, b""));
        b.extend(frame(0x00, b"lo "));
        b.extend(frame(0x80, b"world"));
        b.extend(frame(0x81, b"next"));
        assert_eq!(
            events(&b).unwrap(),
            [r#"Ping([])"#, r#"Text("hello world")"#, r#"Text("next")"#]
        );
    }

    #[test]
    fn byte_at_a_time_arrival() {
        let big = "x".repeat(70_000);
        let mut b = frame(0x81, big.as_bytes());
        b.extend(frame(0x81, b"tail"));
        let mut r = FrameReader::new(1 << 20);
        let mut seen = Vec::new();
        for byte in b {
            feed(&mut r, &[byte]);
            while let Some(e) = r.next().unwrap() {
                seen.push(match e {
                    Event::Text(t) => t.len(),
                    other => panic!("{other:?}"),
                });
            }
        }
        assert_eq!(seen, [70_000, 4]);
        assert_eq!(r.start, r.end);
        r.shrink_if_idle();
        assert_eq!(r.buf.len(), INITIAL);
    }

    #[test]
    fn violations_map_to_close_codes() {
        let cases: Vec<(Vec<u8>, FrameError)> = vec![
            (vec![0x81, 0x02, b'h', b'i'], FrameError::Protocol), // unmasked
            (frame(0xC1, b"x"), FrameError::Protocol),            // RSV1
            (frame(0x83, b"x"), FrameError::Protocol),            // reserved opcode
            (frame(0x80, b"x"), FrameError::Protocol),            // continuation first
            (frame(0x09, b"x"), FrameError::Protocol),            // fragmented ping
            (frame(0x89, &[0; 126]), FrameError::Protocol),       // long ping
            (frame(0x88, b"\x03"), FrameError::Protocol),         // 1-byte close
            (frame(0x88, b"\x03\xed"), FrameError::Protocol),     // close 1005
            (frame(0x88, b"\x03\xe8\xff"), FrameError::BadUtf8),  // close reason
            (frame(0x82, b"x"), FrameError::Binary),
            (frame(0x81, b"\xc3\x28"), FrameError::BadUtf8),
            (
                [frame(0x01, b"a"), frame(0x81, b"b")].concat(),
                FrameError::Protocol,
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(events(&bytes), Err(want), "{bytes:02x?}");
        }
    }

    use fastrand::Rng;

    /// Random messages, randomly fragmented and interleaved with pings, arriving in random
    /// pieces: the same events come out whatever the split.
    #[test]
    fn any_split_of_valid_input_gives_the_same_events() {
        let mut rng = Rng::with_seed(0x2545_F491_4F6C_DD1D);
        for _ in 0..300 {
            let mut bytes = Vec::new();
            let mut want = Vec::new();
            for m in 0..rng.usize(..6) {
                let text: String = (0..rng.usize(..300))
                    .map(|i| ['a', 'é', '"', '😀', '\n'][(i + m) % 5])
                    .collect();
                let b = text.as_bytes();
                // Cut at byte positions (UTF-8 may be split across fragments).
                let mut cuts: Vec<usize> =
                    (0..rng.usize(..4)).map(|_| rng.usize(..=b.len())).collect();
                cuts.sort_unstable();
                let mut start = 0;
                let pieces: Vec<&[u8]> = cuts
                    .iter()
                    .chain(std::iter::once(&b.len()))
                    .map(|&end| {
                        let p = &b[start..end.max(start)];
                        start = end.max(start);
                        p
                    })
                    .collect();
                for (i, p) in pieces.iter().enumerate() {
                    let last = i + 1 == pieces.len();
                    let op = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
                    bytes.extend(frame(if last { 0x80 | op } else { op }, p));
                    if last {
                        want.push(format!("Text({text:?})"));
                    }
                    if rng.usize(..3) == 0 {
                        bytes.extend(frame(0x89, b"hb"));
                        want.push("Ping([104, 98])".to_string());
                    }
                }
            }
            let mut r = FrameReader::new(1 << 20);
            let mut got = Vec::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = (1 + rng.usize(..40)).min(rest.len());
                feed(&mut r, &rest[..n]);
                rest = &rest[n..];
                while let Some(e) = r.next().unwrap() {
                    got.push(format!("{e:?}"));
                }
            }
            assert_eq!(got, want);
        }
    }

    /// Random bytes — half of them behind a plausible header claiming a random length — never
    /// panic, and the buffer never grows past what one message of the limit needs.
    #[test]
    fn random_bytes_end_in_an_error_or_wait_for_more() {
        let mut rng = Rng::with_seed(0x9E37_79B9_7F4A_7C15);
        for round in 0..2000 {
            let mut r = FrameReader::new(4096);
            let mut bytes: Vec<u8> = Vec::new();
            if round % 2 == 0 {
                let claimed = rng.u16(..6000);
                bytes.extend([0x81, 0x80 | 126]);
                bytes.extend(claimed.to_be_bytes());
                bytes.extend(KEY);
            }
            let len = rng.usize(..20_000);
            bytes.extend((0..len).map(|_| rng.u8(..)));
            let mut rest = &bytes[..];
            'feed: while !rest.is_empty() {
                let n = (1 + rng.usize(..3000)).min(rest.len());
                feed(&mut r, &rest[..n]);
                rest = &rest[n..];
                loop {
                    match r.next() {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
                assert!(r.buf.len() <= INITIAL, "buffer grew to {}", r.buf.len());
            }
        }
    }

    #[test]
    fn too_big_is_refused_from_the_header() {
        let mut r = FrameReader::new(100);
        feed(&mut r, &frame(0x81, &[b'a'; 100]));
        assert!(matches!(r.next(), Ok(Some(Event::Text(_)))));
        // Only the header of the oversize frame is present.
        feed(&mut r, &[0x81, 0x80 | 101, 1, 2, 3, 4]);
        assert_eq!(r.next(), Err(FrameError::TooBig));
        let mut r = FrameReader::new(100);
        feed(&mut r, &frame(0x01, &[b'a'; 60]));
        feed(&mut r, &frame(0x80, &[b'a'; 41]));
        assert_eq!(r.next(), Err(FrameError::TooBig));
        let mut r = FrameReader::new(100);
        feed(&mut r, &[0x81, 0xFF, 0x7F, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(r.next(), Err(FrameError::TooBig));
        let mut r = FrameReader::new(100);
        feed(&mut r, &[0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(r.next(), Err(FrameError::Protocol));
    }
}
