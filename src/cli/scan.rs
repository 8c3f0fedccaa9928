//! Readers for the tokens that carry nearly all the bytes of an export or import — JSON string
//! tokens, and the archive line `{"ts":N,"doc":"…","data":"…"}` — without a full decoder (the
//! `qdoc` answer is read in `page`). Anything else (white space, another member order, an
//! invalid escape) gives `None`, and the caller decodes it with serde_json, which also reports
//! errors properly.

/// A JSON string token at the start of `s` (quotes included), what follows it, and whether it
/// needs a closer look: it holds a byte Go's encoder escapes (`<`, `>`, `&`; U+2028 and U+2029
/// are among) or any other byte outside ASCII, so a reader of raw bytes knows that a token
/// without the flag is ASCII, valid UTF-8 with nothing to rewrite.
pub fn string_token(s: &str) -> Option<(&str, &str, bool)> {
    let (len, special) = token_len(s.as_bytes())?;
    // The token ends with a quote, an ASCII byte, so `len` is a character boundary.
    let (token, rest) = s.split_at_checked(len)?;
    Some((token, rest, special))
}

/// [`string_token`] on bytes: the token's length and whether it holds a byte Go escapes.
/// Inlined into the readers of whole answers and lines, which slice by lengths.
#[inline(always)]
pub fn token_len(b: &[u8]) -> Option<(usize, bool)> {
    token_len_in(Sse2, b)
}

/// Classifies a block of `B` bytes at once (see [`Masks`]). A value of the type is what allows
/// its instructions to run: [`Sse2`] always on x86-64, [`super::avx2::Avx2`] once detected.
pub trait Lanes<const B: usize>: Copy {
    fn masks(self, block: &[u8; B]) -> Masks;
}

/// Sixteen bytes at a time with SSE2 (byte by byte where there is none).
#[derive(Clone, Copy)]
pub struct Sse2;

impl Lanes<BLOCK> for Sse2 {
    #[inline(always)]
    fn masks(self, block: &[u8; BLOCK]) -> Masks {
        Masks::of(block)
    }
}

/// [`token_len`] with blocks of `B` bytes classified by `lanes`.
#[inline(always)]
pub fn token_len_in<const B: usize, L: Lanes<B>>(lanes: L, b: &[u8]) -> Option<(usize, bool)> {
    let full: u64 = (1 << B) - 1;
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut special = false;
    let mut i = 1;
    // 1 when the block before ended with a backslash that starts a two-byte escape: the
    // block's first byte is then the escaped one.
    let mut carry = 0;
    // A block at a time while a whole block is left (in an answer or a line the token is
    // nearly always followed by more text, so this is nearly every byte).
    while let Some(block) = b.get(i..).and_then(<[u8]>::first_chunk::<B>) {
        let m = lanes.masks(block);
        let bs = m.backslash;
        // The usual block: its escapes (if any) are escaped quotes, `\"` — what JSON text
        // held in a string is full of. Then the escaped bytes are the ones after a backslash
        // (the first one perhaps after the previous block's last byte), and the token ends at
        // the first quote that is not one of them — no byte looked at one by one. Any other
        // escape sends the block to the byte-by-byte reading below.
        let escaped = (bs << 1 | carry) & full;
        if escaped & !m.quote == 0 {
            let stop = (m.quote & !escaped) | m.control;
            if stop == 0 {
                special |= m.special != 0;
                carry = bs >> (B - 1);
                i += B;
                continue;
            }
            let k = stop.trailing_zeros();
            if m.control >> k & 1 != 0 {
                return None;
            }
            special |= m.special & ((1 << k) - 1) != 0;
            let end = i + k as usize;
            return Some((end + 1, special));
        }
        if carry != 0 {
            // An escape across the blocks' edge in an unusual block: read on from its
            // backslash, which the code below checks (with no carry, so this is once).
            i -= 1;
            carry = 0;
            continue;
        }
        // Otherwise the block's flagged bytes in turn, an escape passing over the bytes it
        // takes (even past the block) and checked as it goes.
        let mut flagged = m.quote | bs | m.control | m.special;
        // Offset in the block of the first byte not yet taken.
        let mut next = 0;
        while flagged != 0 {
            let k = flagged.trailing_zeros() as usize;
            flagged &= flagged - 1;
            if k < next {
                continue;
            }
            match CLASS[block[k] as usize] {
                QUOTE => return Some((i + k + 1, special)),
                ESCAPE => next = k + escape_len(b, i + k)?,
                CONTROL => return None,
                _ => special = true,
            }
        }
        i += next.max(B);
    }
    // The escape the last block ended with, if any, is read again from its backslash.
    i -= carry as usize;
    // The last few bytes, one at a time.
    loop {
        let c = *b.get(i)?;
        match CLASS[c as usize] {
            PLAIN => i += 1,
            QUOTE => return Some((i + 1, special)),
            ESCAPE => i += escape_len(b, i)?,
            CONTROL => return None,
            _ => {
                special = true;
                i += 1;
            }
        }
    }
}

/// The length of the valid escape that starts with the backslash at `b[at]`: 2, or 6 for `\u`
/// and four hex digits; `None` for any other.
#[inline(always)]
fn escape_len(b: &[u8], at: usize) -> Option<usize> {
    match b.get(at + 1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(2),
        b'u' if b.get(at + 2..at + 6)?.iter().all(u8::is_ascii_hexdigit) => Some(6),
        _ => None,
    }
}

/// Bytes looked at together by [`Masks::of`].
const BLOCK: usize = 16;

/// Which bytes of a block are what, bit `k` for byte `k`.
#[derive(Debug, PartialEq, Eq)]
pub struct Masks {
    pub quote: u64,
    pub backslash: u64,
    /// Bytes up to 0x1F (never allowed raw in a string).
    pub control: u64,
    /// `<`, `>`, `&` and every byte from 0x80 (see [`string_token`]).
    pub special: u64,
}

impl Masks {
    /// SSE2, part of every x86-64 processor, classifies all sixteen bytes at once.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[inline(always)]
    fn of(block: &[u8; BLOCK]) -> Masks {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
            _mm_set_epi64x,
        };
        let (lo, hi) = block.split_at(BLOCK / 2);
        let half = |h: &[u8]| h.first_chunk().map_or(0, |c| i64::from_le_bytes(*c));
        let (lo, hi) = (half(lo), half(hi));
        // SAFETY: the cfg above compiles this only where SSE2 is enabled for the whole
        // program (always so on x86-64), and these intrinsics compute on values only: the
        // block comes in as two integers, nothing is read or written through a pointer.
        unsafe {
            let v = _mm_set_epi64x(hi, lo);
            let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
            let bits = |x| u64::from(_mm_movemask_epi8(x) as u16);
            let any = |cs: &[u8]| {
                cs.iter()
                    .fold(_mm_set1_epi8(0), |acc, &c| _mm_or_si128(acc, eq(c)))
            };
            Masks {
                quote: bits(eq(b'"')),
                backslash: bits(eq(b'\\')),
                // A byte at most 0x1F is its own minimum with 0x1F.
                control: bits(_mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v)),
                // The top bit of each byte is what `movemask` takes: the bytes from 0x80.
                special: bits(any(b"<>&")) | bits(v),
            }
        }
    }

    /// The same, a byte at a time.
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    #[inline(always)]
    fn of(block: &[u8; BLOCK]) -> Masks {
        let mut m = Masks {
            quote: 0,
            backslash: 0,
            control: 0,
            special: 0,
        };
        for (k, &c) in block.iter().enumerate() {
            let bit = 1 << k;
            match CLASS[c as usize] {
                QUOTE => m.quote |= bit,
                ESCAPE => m.backslash |= bit,
                CONTROL => m.control |= bit,
                GO_SPECIAL => m.special |= bit,
                _ => {}
            }
        }
        m
    }
}

/// How many of the bytes at the start of `b` are ASCII digits, sixteen looked at at once.
pub fn leading_digits(b: &[u8]) -> usize {
    let mut i = 0;
    while let Some(block) = b.get(i..).and_then(<[u8]>::first_chunk::<BLOCK>) {
        let run = digit_run(block);
        i += run;
        if run < BLOCK {
            return i;
        }
    }
    i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count()
}

/// The digits at the start of a block.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn digit_run(block: &[u8; BLOCK]) -> usize {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_set1_epi8, _mm_set_epi64x,
        _mm_sub_epi8,
    };
    let (lo, hi) = block.split_at(BLOCK / 2);
    let half = |h: &[u8]| h.first_chunk().map_or(0, |c| i64::from_le_bytes(*c));
    // SAFETY: as in `Masks::of`: SSE2 is enabled for the whole program where this compiles,
    // and the intrinsics compute on values only.
    let digits = unsafe {
        let v = _mm_sub_epi8(
            _mm_set_epi64x(half(hi), half(lo)),
            _mm_set1_epi8(b'0' as i8),
        );
        // A digit is at most 9 once '0' is taken away (other bytes wrap past it).
        _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(9)), v)) as u32
    };
    (!digits).trailing_zeros() as usize
}

/// The same, a byte at a time.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn digit_run(block: &[u8; BLOCK]) -> usize {
    block.iter().take_while(|c| c.is_ascii_digit()).count()
}

const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const ESCAPE: u8 = 2;
const CONTROL: u8 = 3;
const GO_SPECIAL: u8 = 4;

/// What a byte inside a JSON string is, for [`string_token`].
static CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = CONTROL;
        c += 1;
    }
    t[b'"' as usize] = QUOTE;
    t[b'\\' as usize] = ESCAPE;
    t[b'<' as usize] = GO_SPECIAL;
    t[b'>' as usize] = GO_SPECIAL;
    t[b'&' as usize] = GO_SPECIAL;
    let mut c = 0x80;
    while c <= 0xFF {
        t[c] = GO_SPECIAL;
        c += 1;
    }
    t
};

/// The digits of an integer at the start of `s`, and what follows them.
fn integer(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let start = usize::from(b.first() == Some(&b'-'));
    let end = start + b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
    (end > start).then(|| s.split_at(end))
}

/// `{"ts":N,"doc":"…","data":"…"}` exactly: the timestamp and the two string tokens.
pub fn fast_line(line: &[u8]) -> Option<(i64, &str, &str)> {
    let s = std::str::from_utf8(line).ok()?;
    let (ts, rest) = integer(s.strip_prefix("{\"ts\":")?)?;
    let (doc, rest, _) = string_token(rest.strip_prefix(",\"doc\":")?)?;
    let (data, rest, _) = string_token(rest.strip_prefix(",\"data\":")?)?;
    (rest == "}").then_some((ts.parse().ok()?, doc, data))
}

#[cfg(test)]
pub(in crate::cli) mod tests {
    use super::*;

    /// String tokens of random pieces that flag bytes (escapes of both lengths, a backslash
    /// pair, Go's specials, bytes outside ASCII, a control byte, bad escapes, and the run
    /// `long`), `per_len` of each length below `lens`, each alone, closed, and followed by more
    /// text ending in `after`, so that escapes straddle the edges of the scans' blocks.
    pub(in crate::cli) fn random_texts(
        mut seed: u64,
        lens: usize,
        per_len: usize,
        long: &str,
        after: &str,
    ) -> Vec<String> {
        let pieces = [
            "x", "ab", "\\\"", "\\\\", "\\u00e9", "\\n", "<", "&", "\u{2028}", "é", "\"", "\\q",
            "\n", "\\u12", long,
        ];
        let mut texts = Vec::new();
        for len in 0..lens {
            for _ in 0..per_len {
                let mut token = String::from("\"");
                for _ in 0..len {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    token.push_str(pieces[(seed % pieces.len() as u64) as usize]);
                }
                let more = format!("\",\"after\":\"0123456789abcdef{after}\"}}");
                for tail in ["\"", more.as_str(), ""] {
                    texts.push(format!("{token}{tail}"));
                }
            }
        }
        texts
    }

    #[test]
    fn lines() {
        assert_eq!(
            fast_line(br#"{"ts":12,"doc":"a\"b","data":"x\u003cy"}"#),
            Some((12, r#""a\"b""#, r#""x\u003cy""#))
        );
        assert_eq!(fast_line(br#"{"ts": 12,"doc":"a","data":"x"}"#), None);
        assert_eq!(fast_line(br#"{"ts":12,"doc":"a","data":"x\q"}"#), None);
        assert_eq!(fast_line(br#"{"ts":12,"doc":"a","data":1}"#), None);
        assert_eq!(fast_line(br#"{"ts":12,"doc":"a","data":"x"} "#), None);
        assert_eq!(fast_line(br#"{"ts":1.5,"doc":"a","data":"x"}"#), None);
    }

    #[test]
    fn long_tokens() {
        let x = "x".repeat(40);
        let plain = format!("\"{x}\"");
        assert_eq!(
            string_token(&format!("{plain},")),
            Some((plain.as_str(), ",", false))
        );
        // Whatever block a byte falls in, it is seen.
        for at in 0..=x.len() {
            let (head, tail) = x.split_at(at);
            let special = format!("\"{head}&{tail}\"");
            assert_eq!(
                string_token(&format!("{special}}}")),
                Some((special.as_str(), "}", true))
            );
            let escaped = format!("\"{head}\\\"{tail}\"");
            assert_eq!(string_token(&escaped), Some((escaped.as_str(), "", false)));
            assert_eq!(string_token(&format!("\"{head}\n{tail}\"")), None);
            assert_eq!(string_token(&format!("\"{head}")), None);
        }
    }

    /// The token as a byte-at-a-time reader finds it, for comparison.
    fn reference(s: &str) -> Option<(&str, &str, bool)> {
        let b = s.as_bytes();
        if b.first() != Some(&b'"') {
            return None;
        }
        let (mut i, mut special) = (1, false);
        loop {
            match CLASS[*b.get(i)? as usize] {
                PLAIN => i += 1,
                QUOTE => return Some((&s[..=i], &s[i + 1..], special)),
                ESCAPE => i += escape_len(b, i)?,
                CONTROL => return None,
                _ => {
                    special = true;
                    i += 1;
                }
            }
        }
    }

    #[test]
    fn escapes_anywhere_in_a_block_agree_with_a_byte_at_a_time_reader() {
        // Tokens made of pieces that flag bytes (escapes of both lengths, Go's specials, a
        // control byte, a bad escape), in every mix up to a few blocks long, each followed by
        // more text so that the block path reads them.
        let texts = random_texts(0x2545_f491_4f6c_dd1d, 40, 60, "xxxxxxxxxxxxx", "0123456789");
        for text in &texts {
            assert_eq!(string_token(text), reference(text), "{text:?}");
        }
        assert_eq!(texts.len(), 40 * 60 * 3);
        // An escape that ends past its block: the scan goes on after it.
        for at in 0..BLOCK + 2 {
            let text = format!("\"{}\\u0041x\\\"\"{}", "y".repeat(at), "z".repeat(40));
            let end = at + 10;
            assert_eq!(
                string_token(&text),
                Some((&text[..=end], &text[end + 1..], false)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn digit_runs() {
        for len in 0..40 {
            for after in ["", ",", "/", ":", "\u{0}", "\u{e9}", "a"] {
                let text = format!("{}{after}x", "7".repeat(len));
                let mut bytes = text.into_bytes();
                bytes.pop();
                assert_eq!(leading_digits(&bytes), len, "{bytes:?}");
            }
        }
        // Every byte value in every place of a block.
        for c in 0..=255u8 {
            for at in 0..BLOCK + 3 {
                let mut b = vec![b'5'; BLOCK * 2];
                b[at] = c;
                let want = if c.is_ascii_digit() { b.len() } else { at };
                assert_eq!(leading_digits(&b), want, "{c:#x} at {at}");
            }
        }
    }

    #[test]
    fn two_byte_escapes_across_block_edges() {
        // A backslash as the last byte of a block escapes the next block's first byte: an
        // escaped quote there does not end the token, an escaped `u` is read as `\u` with its
        // digits, and a bad escape is refused; with more text after the token or none.
        for at in 0..3 * BLOCK {
            for (escape, valid) in [
                ("\\\"", true),
                ("\\n", true),
                ("\\u00e9", true),
                ("\\q", false),
            ] {
                for tail in ["", ",\"more\":\"0123456789abcdef0123456789abcdef\"}"] {
                    let token = format!("\"{}{escape}{}\"", "y".repeat(at), "<".repeat(at % 3));
                    let text = format!("{token}{tail}");
                    let want = valid.then_some((token.as_str(), tail, at % 3 != 0));
                    assert_eq!(string_token(&text), want, "{text:?}");
                    assert_eq!(string_token(&text), reference(&text), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn block_masks_agree_with_the_table() {
        for c in 0..=255u8 {
            for k in 0..BLOCK {
                let mut block = [b'x'; BLOCK];
                block[k] = c;
                let bit = |yes: bool| if yes { 1 << k } else { 0 };
                let class = CLASS[c as usize];
                let expected = Masks {
                    quote: bit(class == QUOTE),
                    backslash: bit(class == ESCAPE),
                    control: bit(class == CONTROL),
                    special: bit(class == GO_SPECIAL),
                };
                assert_eq!(Masks::of(&block), expected, "byte {c:#x} at {k}");
            }
        }
    }
}
