//! RFC 6455 §5.2 frame headers as both ends of this project read them: the server's frame
//! reader (`server/frames.rs`, frames from clients, which must be masked) and the CLI's
//! (`cli/frames.rs`, frames from a server, which must not be). Neither side negotiates an
//! extension, so the RSV bits must be clear. Also the masking both sides apply (§5.3): the
//! server to the frames it reads, the CLI to the frames it sends.

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// A frame header: FIN, opcode, payload length and masking key, `len` bytes long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    pub opcode: u8,
    /// `usize::MAX` for a length past the address space (it only fails a size check).
    pub payload: usize,
    /// All zeros for an unmasked frame (XOR with it changes nothing).
    pub mask: [u8; 4],
    pub len: usize,
}

/// Why a header is refused; the connection cannot go on after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// RSV bits set though no extension was agreed.
    Reserved,
    /// A masked frame where frames must not be masked, or the other way round.
    Masking,
    /// A 64-bit length with its most significant bit set.
    Length,
}

/// Parses the header at the start of `b`; `Ok(None)` when more bytes are needed. `masked`:
/// whether this peer's frames must carry a masking key (a client's) or must not (a server's).
pub fn parse(b: &[u8], masked: bool) -> Result<Option<Header>, HeaderError> {
    let [first, second, ..] = *b else {
        return Ok(None);
    };
    if first & 0x70 != 0 {
        return Err(HeaderError::Reserved);
    }
    if (second & 0x80 != 0) != masked {
        return Err(HeaderError::Masking);
    }
    let (payload, at) = match second & 0x7F {
        126 => match b.get(2..4) {
            Some(x) => (u64::from(u16::from_be_bytes([x[0], x[1]])), 4),
            None => return Ok(None),
        },
        127 => match b.get(2..10).and_then(|x| x.first_chunk::<8>()) {
            Some(x) if x[0] & 0x80 != 0 => return Err(HeaderError::Length),
            Some(x) => (u64::from_be_bytes(*x), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let (mask, len) = if masked {
        match b.get(at..at + 4) {
            Some(m) => ([m[0], m[1], m[2], m[3]], at + 4),
            None => return Ok(None),
        }
    } else {
        ([0; 4], at)
    };
    Ok(Some(Header {
        fin: first & 0x80 != 0,
        opcode: first & 0x0F,
        payload: usize::try_from(payload).unwrap_or(usize::MAX),
        mask,
        len,
    }))
}

/// XORs `buf` with the 4-byte masking key, starting at key position 0, eight bytes at a time.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = buf.chunks_exact_mut(8);
    for w in &mut words {
        if let Some(bytes) = w.first_chunk_mut::<8>() {
            *bytes = (u64::from_ne_bytes(*bytes) ^ wide).to_ne_bytes();
        }
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_of_every_form_and_partial_headers() {
        // 7-bit, 16-bit and 64-bit lengths, unmasked and masked.
        let short = [0x81, 5];
        let mid = [0x01, 126, 0x01, 0x00];
        let long = [0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0];
        let h = parse(&short, false).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.payload, h.len, h.mask),
            (true, 1, 5, 2, [0; 4])
        );
        let h = parse(&mid, false).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode, h.payload, h.len), (false, 0x1, 256, 4));
        let h = parse(&long, false).unwrap().unwrap();
        assert_eq!((h.opcode, h.payload, h.len), (0x2, 1 << 32, 10));
        let masked = [0x89, 0x80 | 3, 1, 2, 3, 4];
        let h = parse(&masked, true).unwrap().unwrap();
        assert_eq!(
            (h.opcode, h.payload, h.mask, h.len),
            (OP_PING, 3, [1, 2, 3, 4], 6)
        );
        // Every strict prefix asks for more bytes.
        for whole in [&short[..], &mid[..], &long[..]] {
            for cut in 0..whole.len() {
                assert_eq!(parse(&whole[..cut], false), Ok(None), "{:?}", &whole[..cut]);
            }
        }
        for cut in 0..masked.len() {
            assert_eq!(parse(&masked[..cut], true), Ok(None));
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(parse(&[0x81 | 0x40, 0], false), Err(HeaderError::Reserved));
        assert_eq!(
            parse(&[0x81, 0x80, 0, 0, 0, 0], false),
            Err(HeaderError::Masking)
        );
        assert_eq!(parse(&[0x81, 0], true), Err(HeaderError::Masking));
        let huge = [0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse(&huge, false), Err(HeaderError::Length));
    }

    #[test]
    fn masking_twice_gives_the_bytes_back_and_matches_a_byte_at_a_time() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in [0, 1, 3, 7, 8, 9, 16, 31, 100] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut masked = plain.clone();
            apply_mask(&mut masked, key);
            let by_byte: Vec<u8> = plain
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect();
            assert_eq!(masked, by_byte, "{len} bytes");
            apply_mask(&mut masked, key);
            assert_eq!(masked, plain, "{len} bytes");
        }
    }
}
