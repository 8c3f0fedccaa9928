//! Decimal digits of an integer below 10^16, all at once: each half of eight digits is cut
//! into its digits in parallel inside one 64-bit word (four lanes of two digits, then eight of
//! one), with multiplications by reciprocals and no loop. A millisecond timestamp (13 digits)
//! takes two such words and one shift, where a division loop took seven dependent steps; the
//! digits come out as one 16-byte value that the caller stores in one piece.

/// Numbers below this have at most 16 digits and are written by [`store`].
pub const LIMIT: u64 = 10_000_000_000_000_000;

/// `'0'` in every byte: added to digit values 0–9 to make them ASCII.
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// The eight decimal digits of `v` (< 10^8, leading zeros included) as byte values 0–9, the
/// most significant in the lowest byte (so in order once stored little-endian).
#[inline(always)]
fn eight(v: u64) -> u64 {
    // Two lanes of 32 bits: the first four digits, the last four.
    let x = (v / 10_000) | ((v % 10_000) << 32);
    // Each lane cut into hundreds and the rest (x / 100 as x * 10486 >> 20, exact below
    // 10^4): four lanes of 16 bits, each < 100.
    let hundreds = ((x * 10_486) >> 20) & 0x0000_007F_0000_007F;
    let pairs = ((x - hundreds * 100) << 16) | hundreds;
    // Each pair cut into tens and units (y / 10 as y * 103 >> 10, exact below 100): eight
    // bytes, each < 10.
    let tens = ((pairs * 103) >> 10) & 0x000F_000F_000F_000F;
    ((pairs - tens * 10) << 8) | tens
}

/// Stores the decimal digits of `n` at `p` and returns their count, or stores nothing and
/// returns `None` from [`LIMIT`] on. Each word of digits is stored whole (one unaligned store
/// of 8 or 16 bytes, whatever the count) and the caller keeps the count's worth: a millisecond
/// timestamp of our era (13 digits) takes one 16-byte store with constant shifts; shorter or
/// longer numbers take a word of leading digits, shifted past its leading zeros, and for more
/// than eight digits a second word of the last eight. (Returning the digits as a value for the
/// caller to store instead cost 40 more instructions a record: the compiler then computed
/// every case.)
///
/// # Safety
/// `p` must be valid for writes of 16 bytes.
#[inline(always)]
pub unsafe fn store(p: *mut u8, n: u64) -> Option<usize> {
    // SAFETY: the caller gives 16 writable bytes at `p`; each store below ends within them
    // (16 bytes at 0; 8 at 0; 8 at 0 and 8 at `8 - lead` <= 8).
    unsafe {
        if (1_000_000_000_000..10_000_000_000_000).contains(&n) {
            // The first five digits are the last five bytes of the upper half's word.
            let first = eight(n / 100_000_000) >> 24;
            let rest = eight(n % 100_000_000);
            let word = (u128::from(first) | (u128::from(rest) << 40))
                | (u128::from(ZEROS) << 64 | u128::from(ZEROS));
            p.cast::<[u8; 16]>().write_unaligned(word.to_le_bytes());
            return Some(13);
        }
        if n < 100_000_000 {
            let d = eight(n);
            // Leading zero digits are the zero bytes at the low end; 0 itself keeps one digit.
            let count = (8 - (d.trailing_zeros() / 8) as usize).max(1);
            p.cast::<[u8; 8]>()
                .write_unaligned(((d >> (8 * (8 - count))) | ZEROS).to_le_bytes());
            return Some(count);
        }
        if n < LIMIT {
            let first = eight(n / 100_000_000);
            // `first` > 0: at most seven leading zero digits.
            let lead = (first.trailing_zeros() / 8) as usize;
            p.cast::<[u8; 8]>()
                .write_unaligned(((first >> (8 * lead)) | ZEROS).to_le_bytes());
            p.add(8 - lead)
                .cast::<[u8; 8]>()
                .write_unaligned((eight(n % 100_000_000) | ZEROS).to_le_bytes());
            return Some(16 - lead);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digits `store` writes, or `None`; checks that it wrote nothing past its 16 bytes.
    fn text(n: u64) -> Option<String> {
        let mut buf = [b'#'; 20];
        // SAFETY: 16 of the buffer's 20 bytes are given.
        let count = unsafe { store(buf.as_mut_ptr(), n) };
        assert_eq!(&buf[16..], b"####");
        count.map(|c| String::from_utf8_lossy(&buf[..c]).into_owned())
    }

    #[test]
    fn every_length_and_its_edges_read_as_to_string() {
        let mut values = vec![0u64, 1, 9, 10, 99, 100, LIMIT - 1, 1_733_500_000_123];
        let mut p = 1u64;
        while p < LIMIT {
            values.extend([p - 1, p, p + 1, p * 2 - 1, p * 9 + (p - 1), p / 3 * 7 + 5]);
            p *= 10;
        }
        // A pseudo-random spread over every magnitude.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x % (10u64.pow((x >> 60) as u32 % 16 + 1)));
        }
        for v in values.into_iter().filter(|&v| v < LIMIT) {
            assert_eq!(text(v), Some(v.to_string()), "{v}");
        }
    }

    #[test]
    fn large_numbers_are_refused_and_nothing_is_stored() {
        for n in [LIMIT, LIMIT + 1, u64::MAX] {
            let mut buf = [b'#'; 16];
            // SAFETY: 16 bytes given.
            assert_eq!(unsafe { store(buf.as_mut_ptr(), n) }, None);
            assert_eq!(buf, [b'#'; 16]);
        }
    }

    #[test]
    fn eight_digits_in_order() {
        assert_eq!(eight(12_345_678).to_le_bytes(), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(eight(99_999_999).to_le_bytes(), [9; 8]);
        assert_eq!(eight(0), 0);
        assert_eq!(eight(1).to_le_bytes(), [0, 0, 0, 0, 0, 0, 0, 1]);
    }
}
