//! Byte scans shared by the layers: finding the bytes a JSON string must escape.

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
}
