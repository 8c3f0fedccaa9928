//! Folding escaped quotes before compression, and putting them back after.
//!
//! Data is stored escaped (the body of its JSON string), so a record of JSON text carries a
//! backslash before each of its quotes: 16 more bytes in a telemetry record, of which LZ4 keeps
//! about 4. Escaped text holds no bare `"` (each one is the second byte of a `\"` sequence), so
//! dropping the backslash of every `\"` loses nothing: [`unfold`] puts one back before every
//! `"`. Both passes work eight bytes at a time and stop once per quote (or backslash), so they
//! cost little beside the codec.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The 8 bytes at `at` as a little-endian word.
#[inline(always)]
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Flags the bytes of `x` equal to `b`. The lowest flag is exact; flags above a real hit may
/// be spurious (borrows run upward), so only the lowest is used.
#[inline(always)]
fn lowest_equal(x: u64, b: u8) -> u64 {
    let y = x ^ (ONES * b as u64);
    y.wrapping_sub(ONES) & !y & HIGHS
}

/// Writes `text` (escaped text, as [`crate::text::escape_into`] writes it) into `out` without
/// the backslash of any escaped quote; returns how many it dropped. Every `"` of escaped text
/// is the second byte of its `\"`, so the byte dropped is the one before each quote.
pub(super) fn fold(text: &[u8], out: &mut Vec<u8>) -> usize {
    out.clear();
    out.resize(text.len(), 0);
    let (mut read, mut write) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU has SSSE3 (checked on the line above).
        let done = unsafe { ssse3::fold_bulk(text, out) };
        (read, write) = done;
    }
    let write = fold_words(text, out, read, write);
    out.truncate(write);
    text.len() - write
}

/// [`fold`] from input `read` and output `write` on, eight bytes at a time; returns the
/// output's length.
fn fold_words(text: &[u8], out: &mut [u8], mut read: usize, mut write: usize) -> usize {
    // The output never runs ahead of the input: eight bytes fit wherever eight are read.
    while read + 9 <= text.len() {
        out[write..write + 8].copy_from_slice(&text[read..read + 8]);
        let hits = lowest_equal(word(text, read + 1), b'"');
        if hits == 0 {
            read += 8;
            write += 8;
            continue;
        }
        // The byte before the first quote is dropped: the copy is kept up to it.
        let i = (hits.trailing_zeros() / 8) as usize;
        write += i;
        read += i + 1;
    }
    while read < text.len() {
        if text.get(read + 1) != Some(&b'"') {
            out[write] = text[read];
            write += 1;
        }
        read += 1;
    }
    write
}

/// Writes `folded` into `out` with a backslash before every `"` (what [`fold`] took out) and
/// returns how many bytes it wrote: every byte of `out` when `out` is exactly as long as the
/// result (`folded.len()` plus the number of quotes), as it must be.
pub(super) fn unfold(folded: &[u8], out: &mut [u8]) -> usize {
    let (mut read, mut write) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU has SSSE3 (checked on the line above).
        let done = unsafe { ssse3::unfold_bulk(folded, out) };
        (read, write) = done;
    }
    unfold_words(folded, out, read, write)
}

/// [`unfold`] from input `read` and output `write` on, eight bytes at a time.
fn unfold_words(folded: &[u8], out: &mut [u8], mut read: usize, mut write: usize) -> usize {
    // While eight bytes of input remain, at least eight of output do: each whole word can be
    // copied before looking at it, and the quote in it (if any) written over the copy.
    while read + 8 <= folded.len() {
        out[write..write + 8].copy_from_slice(&folded[read..read + 8]);
        let hits = lowest_equal(word(folded, read), b'"');
        if hits == 0 {
            read += 8;
            write += 8;
            continue;
        }
        let i = (hits.trailing_zeros() / 8) as usize;
        write += i;
        out[write] = b'\\';
        out[write + 1] = b'"';
        read += i + 1;
        write += 2;
    }
    for &b in &folded[read..] {
        if b == b'"' {
            out[write] = b'\\';
            write += 1;
        }
        out[write] = b;
        write += 1;
    }
    write
}

/// Unfolding sixteen bytes at a time without a branch per quote: the quotes among eight
/// input bytes form an 8-bit mask, and a table indexed by it gives the byte shuffle that
/// spreads those bytes over `8 + quotes` output bytes with a gap before each quote, and the
/// backslashes that fill the gaps.
#[cfg(target_arch = "x86_64")]
mod ssse3 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_shuffle_epi8, _mm_srli_si128, _mm_storeu_si128,
    };

    /// Per quote mask: the shuffle (input index, or 0x80 for a zero byte) and the
    /// backslashes to put in the zeroed gaps.
    struct Spread {
        shuffle: [[u8; 16]; 256],
        backslashes: [[u8; 16]; 256],
    }

    static SPREAD: Spread = {
        let mut t = Spread {
            shuffle: [[0x80; 16]; 256],
            backslashes: [[0; 16]; 256],
        };
        let mut mask = 0;
        while mask < 256 {
            let mut out = 0;
            let mut i = 0;
            while i < 8 {
                if mask & (1 << i) != 0 {
                    t.backslashes[mask][out] = b'\\';
                    out += 1;
                }
                t.shuffle[mask][out] = i as u8;
                out += 1;
                i += 1;
            }
            mask += 1;
        }
        t
    };

    /// Per mask of dropped bytes among eight: the shuffle that packs the kept ones.
    static KEEP: [[u8; 16]; 256] = {
        let mut t = [[0x80; 16]; 256];
        let mut mask = 0;
        while mask < 256 {
            let mut out = 0;
            let mut i = 0;
            while i < 8 {
                if mask & (1 << i) == 0 {
                    t[mask][out] = i as u8;
                    out += 1;
                }
                i += 1;
            }
            mask += 1;
        }
        t
    };

    #[inline(always)]
    fn table(rows: &[[u8; 16]; 256], mask: usize) -> __m128i {
        // SAFETY: a row is 16 readable bytes; the load has no alignment requirement.
        unsafe { _mm_loadu_si128(rows[mask].as_ptr().cast()) }
    }

    /// Folds the front of `text` into `out` (as long as `text`) while a whole 16-byte step
    /// fits; returns how far it read and wrote.
    ///
    /// # Safety
    /// The CPU must support SSSE3.
    #[target_feature(enable = "ssse3")]
    pub(super) unsafe fn fold_bulk(text: &[u8], out: &mut [u8]) -> (usize, usize) {
        let (mut read, mut write) = (0, 0);
        let quote = _mm_set1_epi8(b'"' as i8);
        // A step reads 17 bytes (the byte after the 16 tells whether the last one goes) and
        // stores 16 bytes twice, the second at most 8 bytes further; `write <= read` always,
        // so 24 bytes of input left leave room for both.
        while read + 24 <= text.len() && out.len() >= text.len() {
            // SAFETY: `read + 17 <= text.len()`; unaligned loads are allowed.
            let (v, next) = unsafe {
                let at = text.as_ptr().add(read);
                (
                    _mm_loadu_si128(at.cast()),
                    _mm_loadu_si128(at.add(1).cast()),
                )
            };
            let drop = _mm_movemask_epi8(_mm_cmpeq_epi8(next, quote)) as usize;
            let (lo, hi) = (drop & 0xff, drop >> 8);
            let first = _mm_shuffle_epi8(v, table(&KEEP, lo));
            let second = _mm_shuffle_epi8(_mm_srli_si128(v, 8), table(&KEEP, hi));
            let mid = write + 8 - lo.count_ones() as usize;
            // SAFETY: `write <= read` and `mid <= read + 8`, and `read + 24 <= out.len()`:
            // both 16-byte stores stay inside `out`; unaligned stores are allowed.
            unsafe {
                _mm_storeu_si128(out.as_mut_ptr().add(write).cast(), first);
                _mm_storeu_si128(out.as_mut_ptr().add(mid).cast(), second);
            }
            read += 16;
            write = mid + 8 - hi.count_ones() as usize;
        }
        (read, write)
    }

    /// Unfolds the front of `folded` into `out` while a whole 16-byte step fits both;
    /// returns how far it read and wrote.
    ///
    /// # Safety
    /// The CPU must support SSSE3.
    #[target_feature(enable = "ssse3")]
    pub(super) unsafe fn unfold_bulk(folded: &[u8], out: &mut [u8]) -> (usize, usize) {
        let (mut read, mut write) = (0, 0);
        let quote = _mm_set1_epi8(b'"' as i8);
        // One step reads 16 bytes and writes two 16-byte stores, the second at most 16 bytes
        // after the first: 32 bytes of output room cover both.
        while read + 16 <= folded.len() && write + 32 <= out.len() {
            // SAFETY: `read + 16 <= folded.len()`; unaligned loads are allowed.
            let v = unsafe { _mm_loadu_si128(folded.as_ptr().add(read).cast()) };
            let mask = _mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) as usize;
            let (lo, hi) = (mask & 0xff, mask >> 8);
            let first = _mm_or_si128(
                _mm_shuffle_epi8(v, table(&SPREAD.shuffle, lo)),
                table(&SPREAD.backslashes, lo),
            );
            let second = _mm_or_si128(
                _mm_shuffle_epi8(_mm_srli_si128(v, 8), table(&SPREAD.shuffle, hi)),
                table(&SPREAD.backslashes, hi),
            );
            let mid = write + 8 + lo.count_ones() as usize;
            // SAFETY: `write + 32 <= out.len()` and `mid <= write + 16`, so both 16-byte
            // stores stay inside `out`; unaligned stores are allowed.
            unsafe {
                _mm_storeu_si128(out.as_mut_ptr().add(write).cast(), first);
                _mm_storeu_si128(out.as_mut_ptr().add(mid).cast(), second);
            }
            read += 16;
            write = mid + 8 + hi.count_ones() as usize;
        }
        (read, write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text;

    #[test]
    fn folding_round_trips_escaped_text_of_any_shape() {
        let alphabet = ['"', '\\', 'a', '\n', '\u{1}', 'é', '/', '7', ':'];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 80) as usize;
            let raw: String = (0..len)
                .map(|i| alphabet[((seed.rotate_left(i as u32 * 5) >> 3) % 9) as usize])
                .collect();
            let mut escaped = String::new();
            text::escape_into_string(&mut escaped, &raw);
            let mut folded = Vec::new();
            let taken = fold(escaped.as_bytes(), &mut folded);
            let mut by_words = vec![0u8; escaped.len()];
            let n = fold_words(escaped.as_bytes(), &mut by_words, 0, 0);
            assert_eq!(&by_words[..n], &folded[..], "round {round}: {raw:?}");
            assert_eq!(taken, raw.matches('"').count(), "round {round}: {raw:?}");
            assert!(!folded.windows(2).any(|w| w == b"\\\"") || raw.contains('\\'));
            let mut back = vec![0u8; folded.len() + taken];
            assert_eq!(unfold(&folded, &mut back), back.len());
            assert_eq!(back, escaped.as_bytes(), "round {round}: {raw:?}");
            // The word-at-a-time pass alone (what a CPU without SSSE3 runs).
            back.fill(0);
            unfold_words(&folded, &mut back, 0, 0);
            assert_eq!(back, escaped.as_bytes(), "round {round}: {raw:?}");
        }
    }

    #[test]
    fn folding_telemetry_takes_every_quote_backslash() {
        let raw = r#"{"lat":52.389837,"lon":4.884869,"state":"fly\"ing\\"}"#;
        let mut escaped = String::new();
        text::escape_into_string(&mut escaped, raw);
        let mut folded = Vec::new();
        assert_eq!(fold(escaped.as_bytes(), &mut folded), 9);
        // Everything escaped but the quotes.
        assert_eq!(folded, raw.replace('\\', "\\\\").as_bytes());
        let mut back = vec![0u8; escaped.len()];
        assert_eq!(unfold(&folded, &mut back), back.len());
        assert_eq!(back, escaped.as_bytes());
        let mut plain = Vec::new();
        assert_eq!(fold(b"no escapes at all, none", &mut plain), 0);
        assert_eq!(plain, b"no escapes at all, none");
    }
}
