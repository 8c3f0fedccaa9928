//! Byte scans shared by the layers: finding the bytes a JSON string must escape, escaping them
//! (the one escaping every response uses) and undoing that escaping.

/// Bytes that must be escaped inside a JSON string: control characters, `"` and `\`.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Whether `b` must be escaped inside a JSON string (what [`first_escape`] stops at).
#[inline]
pub fn needs_escape(b: u8) -> bool {
    NEEDS_ESCAPE[b as usize]
}

/// Position of the first byte that needs escaping. Eight bytes at a time: a word has such a
/// byte when one of its bytes is below 0x20, or equal to `"` or `\` ("Bit Twiddling Hacks").
/// The tests can flag a byte above a real hit (borrows run upward), never below one, so the
/// lowest flagged byte is the answer.
#[inline]
pub fn first_escape(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut offset = 0;
    while let Some(word) = bytes.get(offset..offset + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let x = u64::from_le_bytes(w);
        let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
        let hits = below_space
            | zero_byte(x ^ (ONES * b'"' as u64))
            | zero_byte(x ^ (ONES * b'\\' as u64));
        if hits != 0 {
            return Some(offset + (hits.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    bytes[offset..]
        .iter()
        .position(|&b| NEEDS_ESCAPE[b as usize])
        .map(|p| offset + p)
}

/// The escape sequence of `b`, a byte [`first_escape`] stops at (docs/protocol.md, "Frames the
/// server sends": the short forms where JSON has one, `\u00XX` in lowercase hex for the other
/// control characters).
fn sequence(b: u8, buf: &mut [u8; 6]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => "\\\"",
        b'\\' => "\\\\",
        b'\n' => "\\n",
        b'\r' => "\\r",
        b'\t' => "\\t",
        0x08 => "\\b",
        0x0c => "\\f",
        _ => {
            *buf = *b"\\u0000";
            buf[4] = HEX[(b >> 4) as usize];
            buf[5] = HEX[(b & 0xf) as usize];
            std::str::from_utf8(buf).unwrap_or_default()
        }
    }
}

/// Hands `push` the body of the JSON string literal of `s` (without the quotes) in pieces:
/// runs that need no escaping whole, and each escape sequence.
fn escape_with(s: &str, mut push: impl FnMut(&str)) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut buf = [0u8; 6];
    while let Some(offset) = first_escape(&bytes[start..]) {
        let i = start + offset;
        // `i` is at an ASCII byte, so both slices end on character boundaries.
        push(&s[start..i]);
        push(sequence(bytes[i], &mut buf));
        start = i + 1;
    }
    push(&s[start..]);
}

/// Appends the escaped body of `s` (the JSON string literal without its quotes).
pub fn escape_into(out: &mut Vec<u8>, s: &str) {
    escape_with(s, |piece| crate::short_copy::extend(out, piece.as_bytes()));
}

/// [`escape_into`] for a `String`.
pub fn escape_into_string(out: &mut String, s: &str) {
    escape_with(s, |piece| crate::short_copy::push_str(out, piece));
}

/// Length of the escaped body of `s` (what [`escape_into`] appends).
pub fn escaped_len(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum()
}

/// Appends the text an escaped body (as [`escape_into`] writes it) stands for. Sequences it
/// does not write are copied as they are, so no input makes it fail.
pub fn unescape_into(out: &mut String, escaped: &str) {
    let mut rest = escaped;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let seq = &rest[i..];
        let (c, used) = match seq.as_bytes().get(1) {
            Some(b'"') => ('"', 2),
            Some(b'\\') => ('\\', 2),
            Some(b'n') => ('\n', 2),
            Some(b'r') => ('\r', 2),
            Some(b't') => ('\t', 2),
            Some(b'b') => ('\u{8}', 2),
            Some(b'f') => ('\u{c}', 2),
            Some(b'u') => match seq
                .get(2..6)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                Some(b) if b < 0x20 => (char::from(b), 6),
                _ => ('\\', 1),
            },
            _ => ('\\', 1),
        };
        out.push(c);
        rest = &seq[used..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_scan_finds_the_first_escape_at_every_position() {
        for special in [0u8, 0x1f, b'"', b'\\'] {
            for len in 0..20 {
                for at in 0..len {
                    let mut v = vec![b'a'; len];
                    v[at] = special;
                    assert_eq!(
                        first_escape(&v),
                        Some(at),
                        "byte {special} at {at} of {len}"
                    );
                }
                assert_eq!(first_escape(&vec![b'~'; len]), None);
            }
        }
        assert_eq!(first_escape("é€😀 !#[]".as_bytes()), None);
        // Mixed words against the byte table: high bytes, near misses and later hits.
        let alphabet = [
            0u8, 0x1f, 0x20, 0x21, b'"', b'#', b'[', b'\\', b']', 0x7f, 0x80, 0xff,
        ];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let v: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i * 2 % 60)) % 12) as usize])
                .collect();
            let want = v.iter().position(|&b| NEEDS_ESCAPE[b as usize]);
            assert_eq!(first_escape(&v), want, "{v:02x?}");
        }
    }

    #[test]
    fn escaping_round_trips_and_counts_its_length() {
        let mut samples: Vec<String> = (0u8..0x80)
            .map(|b| format!("a{}b\"\\é", char::from(b)))
            .collect();
        samples.push(r#"{"lat":52.389837,"state":"flying"}"#.into());
        samples.push("\\u0041 not an escape of ours".into());
        for s in samples {
            let mut out = Vec::new();
            escape_into(&mut out, &s);
            let body = String::from_utf8(out).unwrap();
            assert_eq!(format!("\"{body}\""), serde_json::to_string(&s).unwrap());
            assert_eq!(escaped_len(&s), body.len(), "{s:?}");
            let mut back = String::new();
            unescape_into(&mut back, &body);
            assert_eq!(back, s);
        }
        let mut odd = String::new();
        unescape_into(&mut odd, "x\\q\\u00zz\\u0041\\");
        assert_eq!(
            odd, "x\\q\\u00zz\\u0041\\",
            "foreign sequences are kept as they are"
        );
    }
}
