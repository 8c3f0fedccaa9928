//! Where a JSON string body ends when its only escape is `\"`: what a `qry` or `qdoc` payload
//! looks like inside the SDKs' envelope (`"data":"{\"col\":\"c\",\"doc\":\"d\",…}"`).
//!
//! The envelope reader hands such a payload on unread (`envelope.rs`, pending payloads) once it
//! knows where the string ends, that it holds no escape but `\"` and no control character.
//! Found a word at a time, the scan stopped at every escaped quote — a payload has a dozen or
//! more — and took a quarter of the instructions of an answer-cache hit. Sixteen bytes at a time
//! (SSE2, which every x86-64 CPU has), each block gives bit masks of its quotes, backslashes and
//! control characters, and the rules are a few operations on the masks (a `qdoc` hit: 3,309 →
//! 2,644 instructions, callgrind).

/// The position of the closing quote of the string body that starts at `b[0]`, when every
/// backslash before it begins a `\"` and no byte before it is a control character; `None`
/// otherwise (no closing quote, another escape, a control character).
#[inline]
pub fn end(b: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        sse2::end(b)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        scalar(b, 0, false)
    }
}

/// The same a byte at a time from `i`, where `escaped` says that the byte at `i` follows a
/// backslash: the reference, and the reader on other targets.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn scalar(b: &[u8], mut i: usize, mut escaped: bool) -> Option<usize> {
    loop {
        let c = *b.get(i)?;
        if escaped {
            if c != b'"' {
                return None;
            }
            escaped = false;
        } else if c == b'"' {
            return Some(i);
        } else if c == b'\\' {
            escaped = true;
        } else if c < 0x20 {
            return None;
        }
        i += 1;
    }
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_set1_epi8,
    };

    /// What one block says.
    enum Step {
        /// The string ends at this byte of the block.
        End(usize),
        /// It goes on; 1 when the block's last byte is a backslash (the next block's first
        /// byte is then escaped).
        More(u32),
        /// An escape other than `\"`, or a control character, before its end.
        Broken,
    }

    /// One block, `carry` saying whether its first byte is escaped. Bit `k` of each mask is
    /// byte `k` of the block.
    fn step(block: &[u8; 16], carry: u32) -> Step {
        // SAFETY: SSE2 is part of the x86-64 baseline, and the unaligned load reads the 16
        // bytes of `block`.
        let (quotes, backslashes, controls) = unsafe {
            let x = _mm_loadu_si128(block.as_ptr().cast());
            let is = |c: u8| _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8)));
            // Below 0x20 (unsigned): the byte is its own minimum with 0x1f.
            let low = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
            (
                is(b'"') as u32,
                is(b'\\') as u32,
                _mm_movemask_epi8(low) as u32,
            )
        };
        // Bytes that follow a backslash (bit 16 is the next block's first byte).
        let escaped = (backslashes << 1) | carry;
        let closing = quotes & !escaped;
        // The bytes up to and including the first closing quote; all when there is none.
        let upto = match closing {
            0 => 0xFFFF,
            c => (c & c.wrapping_neg()) * 2 - 1,
        };
        if ((escaped & !quotes) | controls) & upto != 0 {
            Step::Broken
        } else if closing != 0 {
            Step::End(closing.trailing_zeros() as usize)
        } else {
            Step::More(escaped >> 16)
        }
    }

    /// [`super::end`], sixteen bytes at a time; the last few bytes go through a block padded
    /// with plain bytes, which neither end the string nor break it.
    pub fn end(b: &[u8]) -> Option<usize> {
        let mut i = 0;
        let mut carry = 0;
        loop {
            let (block, real) = match b.get(i..i + 16).and_then(|s| s.first_chunk::<16>()) {
                Some(block) => (*block, 16),
                None => {
                    let rest = b.get(i..)?;
                    let mut block = [b'a'; 16];
                    block.get_mut(..rest.len())?.copy_from_slice(rest);
                    (block, rest.len())
                }
            };
            match step(&block, carry) {
                Step::End(at) if at < real => return Some(i + at),
                Step::More(next) if real == 16 => carry = next,
                _ => return None,
            }
            i += 16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_of_the_reference() {
        let cases: [(&[u8], Option<usize>); 9] = [
            (b"ab\" ", Some(2)),
            (br#"a\"b\"c""#, Some(7)),
            (br#"\"""#, Some(2)),
            (b"\"", Some(0)),
            (b"a", None),
            (br#"a\""#, None),
            (br#"a\\b""#, None),
            (b"a\x1fb\"", None),
            (b"a\"\x01", Some(1)),
        ];
        for (text, want) in cases {
            assert_eq!(end(text), want, "{}", String::from_utf8_lossy(text));
            assert_eq!(scalar(text, 0, false), want);
        }
    }

    /// Every length up to a few blocks, every place of quotes, backslashes and control
    /// characters (around the blocks' edges above all): the same answer as a byte at a time.
    #[test]
    fn blocks_agree_with_the_reference() {
        let alphabet = [b'a', b'"', b'\\', 0x01, b'{', 0x7f, 0xc3, b'\\', b'"', b'x'];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut closed = 0;
        for _ in 0..200_000 {
            let len = (next() % 70) as usize;
            // Mostly plain bytes and `\"` pairs, as payloads are, with the odd other byte.
            let mut text = Vec::with_capacity(len + 2);
            while text.len() < len {
                match next() % 16 {
                    0..=8 => text.push(b'a'),
                    9..=12 => text.extend_from_slice(b"\\\""),
                    _ => text.push(alphabet[(next() % alphabet.len() as u64) as usize]),
                }
            }
            let want = scalar(&text, 0, false);
            assert_eq!(end(&text), want, "{:?}", String::from_utf8_lossy(&text));
            closed += usize::from(want.is_some());
        }
        assert!(closed > 10_000, "too few cases end: {closed}");
    }
}
