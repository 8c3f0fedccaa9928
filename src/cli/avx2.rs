//! Thirty-two bytes at a time with AVX2, for the scans of `scan` and `page`, on processors that
//! have it (detected at run time; the program itself is built for plain x86-64). Only a value
//! of [`Avx2`] lets its instructions run, and [`Avx2::detect`] makes one only where they exist.

use super::scan::{Lanes, Masks};

/// Bytes classified at once.
pub const BLOCK: usize = 32;

/// Proof that the processor runs AVX2.
#[derive(Clone, Copy)]
pub struct Avx2(());

impl Avx2 {
    /// `Some` where the processor runs AVX2 (the answer is cached by the standard library).
    pub fn detect() -> Option<Avx2> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Some(Avx2(()));
        }
        None
    }

    /// Runs `f` compiled with AVX2 enabled, so that the blocks it classifies through this
    /// value (inlined into it) are classified with AVX2 instructions inline too.
    #[inline(always)]
    pub fn run<R>(self, f: impl FnOnce(Avx2) -> R) -> R {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2")]
            fn with_avx2<R>(lanes: Avx2, f: impl FnOnce(Avx2) -> R) -> R {
                f(lanes)
            }
            // SAFETY: an `Avx2` exists only where `detect` found AVX2.
            unsafe { with_avx2(self, f) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        f(self)
    }
}

impl Lanes<BLOCK> for Avx2 {
    #[inline(always)]
    fn masks(self, block: &[u8; BLOCK]) -> Masks {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: an `Avx2` exists only where `detect` found AVX2.
            unsafe { masks(block) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            // Never made there (`detect` gives `None`); classified by halves all the same.
            let (lo, hi) = block.split_at(BLOCK / 2);
            let half = |h: &[u8]| {
                let mut b = [0u8; BLOCK / 2];
                b.copy_from_slice(h);
                super::scan::Sse2.masks(&b)
            };
            let (l, h) = (half(lo), half(hi));
            Masks {
                quote: l.quote | h.quote << 16,
                backslash: l.backslash | h.backslash << 16,
                control: l.control | h.control << 16,
                special: l.special | h.special << 16,
            }
        }
    }
}

/// The masks of a 32-byte block, as `scan`'s SSE2 classifier makes them for 16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn masks(block: &[u8; BLOCK]) -> Masks {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_min_epu8, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8,
    };
    // SAFETY: the block is 32 readable bytes, and this load needs no alignment.
    let v = unsafe { _mm256_loadu_si256(block.as_ptr().cast::<__m256i>()) };
    let eq = |c: u8| _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c as i8));
    let bits = |x| u64::from(_mm256_movemask_epi8(x) as u32);
    let go = _mm256_or_si256(_mm256_or_si256(eq(b'<'), eq(b'>')), eq(b'&'));
    Masks {
        quote: bits(eq(b'"')),
        backslash: bits(eq(b'\\')),
        // A byte at most 0x1F is its own minimum with 0x1F.
        control: bits(_mm256_cmpeq_epi8(
            _mm256_min_epu8(v, _mm256_set1_epi8(0x1F)),
            v,
        )),
        // The top bit of each byte is what `movemask` takes: the bytes from 0x80.
        special: bits(go) | bits(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::scan::tests::random_texts;
    use crate::cli::scan::{token_len_in, Sse2};

    /// The AVX2 value, or `None` (with a note) on a processor without it.
    fn lanes() -> Option<Avx2> {
        let found = Avx2::detect();
        if found.is_none() {
            eprintln!("no AVX2 on this processor: its path is not tested here");
        }
        found
    }

    #[test]
    fn block_masks_agree_with_two_sse2_halves() {
        let Some(avx2) = lanes() else { return };
        // Every byte value at every place, among plain bytes and among flagged ones.
        for fill in [b'x', b'"', b'\\', 0x01, b'<', 0xC3] {
            for c in 0..=255u8 {
                for k in 0..BLOCK {
                    let mut block = [fill; BLOCK];
                    block[k] = c;
                    let (lo, hi) = block.split_at(BLOCK / 2);
                    let half = |h: &[u8]| Sse2.masks(h.first_chunk::<16>().unwrap());
                    let (l, h) = (half(lo), half(hi));
                    let want = Masks {
                        quote: l.quote | h.quote << 16,
                        backslash: l.backslash | h.backslash << 16,
                        control: l.control | h.control << 16,
                        special: l.special | h.special << 16,
                    };
                    let got = avx2.run(|a| a.masks(&block));
                    assert_eq!(got, want, "byte {c:#x} at {k} among {fill:#x}");
                }
            }
        }
    }

    #[test]
    fn tokens_agree_with_the_sse2_scan_across_block_edges() {
        let Some(avx2) = lanes() else { return };
        let texts = random_texts(
            0x9e37_79b9_7f4a_7c15,
            48,
            80,
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "0123456789abcdef",
        );
        for text in &texts {
            let b = text.as_bytes();
            let want = token_len_in(Sse2, b);
            assert_eq!(avx2.run(|a| token_len_in(a, b)), want, "{text:?}");
        }
        assert_eq!(texts.len(), 48 * 80 * 3);
        // A backslash at every place, escaping a quote, a `u` with its digits or a bad byte.
        for at in 0..3 * BLOCK {
            for escape in ["\\\"", "\\u00e9", "\\q", "\\\\"] {
                let text = format!("\"{}{escape}\"{}", "y".repeat(at), "z".repeat(40));
                let b = text.as_bytes();
                let want = token_len_in(Sse2, b);
                assert_eq!(avx2.run(|a| token_len_in(a, b)), want, "{text:?}");
            }
        }
    }
}
