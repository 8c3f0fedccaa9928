//! Appending short byte runs without a call to `memcpy`.
//!
//! The hot paths copy many runs of a few to a few dozen bytes whose length is known only at
//! run time: an `ins` record's data un-escaped run by run between its escapes, a record's data
//! into its document's arena, a member head and a record's data into an answer. Each such copy
//! through `copy_from_slice`/`extend_from_slice` is a call to `memcpy`, whose dispatch on the
//! length costs more than moving four or forty bytes (callgrind: ~20 instructions a call with
//! its setup). Here a run of up to 64 bytes is copied by the first and last words of the run,
//! overlapping in the middle (one or two loads and stores of 1, 2, 4, 8, 16 or 32 bytes);
//! longer runs still go to `memcpy`.

use std::ptr;

/// Copies `src` to `dst`.
///
/// # Safety
/// `dst` must be valid for writes of `src.len()` bytes and must not overlap `src`.
#[inline(always)]
pub unsafe fn copy(src: &[u8], dst: *mut u8) {
    let (s, n) = (src.as_ptr(), src.len());
    // SAFETY: each load reads a word that starts at `s` or ends at `s + n`, of a size at most
    // `n` (each branch's lower bound), so inside `src`; each store writes the same offsets of
    // `dst`, inside its `n` writable bytes.
    unsafe {
        // Split at 8 first, so that any length takes two to four comparisons.
        if n >= 8 {
            if n <= 16 {
                two::<u64>(s, dst, n);
            } else if n <= 32 {
                two::<u128>(s, dst, n);
            } else if n <= 64 {
                two::<[u128; 2]>(s, dst, n);
            } else {
                ptr::copy_nonoverlapping(s, dst, n);
            }
        } else if n >= 4 {
            two::<u32>(s, dst, n);
        } else if n >= 2 {
            two::<u16>(s, dst, n);
        } else if n == 1 {
            dst.write(s.read());
        }
    }
}

/// Copies `n` bytes as the first and the last `T`-sized word of the run.
///
/// # Safety
/// `size_of::<T>() <= n <= 2 * size_of::<T>()`; `s` readable and `d` writable for `n` bytes,
/// not overlapping.
#[inline(always)]
unsafe fn two<T: Copy>(s: *const u8, d: *mut u8, n: usize) {
    let w = size_of::<T>();
    // SAFETY: `w <= n`, so both words lie inside the `n` bytes (the caller's contract).
    unsafe {
        let first = s.cast::<T>().read_unaligned();
        let last = s.add(n - w).cast::<T>().read_unaligned();
        d.cast::<T>().write_unaligned(first);
        d.add(n - w).cast::<T>().write_unaligned(last);
    }
}

/// Appends `piece` to `out` ([`Vec::extend_from_slice`] without the call to `memcpy` for a
/// short piece).
#[inline(always)]
pub fn extend(out: &mut Vec<u8>, piece: &[u8]) {
    out.reserve(piece.len());
    let len = out.len();
    // SAFETY: `reserve` left room for `piece.len()` bytes past `len`, all written by `copy`
    // before the length covers them; `piece` is another allocation than `out`'s spare room.
    unsafe {
        copy(piece, out.as_mut_ptr().add(len));
        out.set_len(len + piece.len());
    }
}

/// Appends `piece` to `out` ([`String::push_str`] without the call to `memcpy` for a short
/// piece).
#[inline(always)]
pub fn push_str(out: &mut String, piece: &str) {
    // SAFETY: a whole `str` is appended to a `String`, so its bytes stay UTF-8.
    extend(unsafe { out.as_mut_vec() }, piece.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_lands_whole_and_nothing_beyond() {
        for n in 0..200usize {
            let src: Vec<u8> = (0..n).map(|i| (i * 7 + 1) as u8).collect();
            for at in 0..3 {
                // Room beyond the copy, to see that nothing past `n` is written.
                let mut dst = vec![0xEEu8; at + n + 40];
                // SAFETY: `dst` has `at + n` bytes and more.
                unsafe { copy(&src, dst.as_mut_ptr().add(at)) };
                assert!(dst[..at].iter().all(|&b| b == 0xEE), "before, n {n}");
                assert_eq!(&dst[at..at + n], &src[..], "n {n} at {at}");
                assert!(dst[at + n..].iter().all(|&b| b == 0xEE), "after, n {n}");
            }
            let mut v = b"ab".to_vec();
            extend(&mut v, &src);
            assert_eq!(&v[2..], &src[..]);
            assert_eq!(&v[..2], b"ab");
        }
        let mut s = String::from("é");
        push_str(
            &mut s,
            "€ and 😀, then a longer run past the word sizes: 0123456789abcdef",
        );
        assert_eq!(
            s,
            "é€ and 😀, then a longer run past the word sizes: 0123456789abcdef"
        );
    }
}
