//! One record of a read answer (`…{"ts":N,"data":"…"}`) written with a single capacity
//! check: the room for the whole record is reserved once, every piece is stored straight into
//! it, and the vector's length is set once at the end.
//!
//! Appending the same pieces one `extend_from_slice` at a time checked the capacity and wrote
//! the length back for each of them, and cut the timestamp's whole word of digits back with a
//! `truncate`: with a `qry` answer of 100 short records that bookkeeping took more
//! instructions than the bytes themselves (callgrind: ~130 of ~290 instructions a record).

use super::digits;
use super::encode::decimal;
use crate::short_copy::copy;
use std::ptr;

/// The record's pieces after the timestamp's digits and before its data.
const DATA: &[u8] = b",\"data\":\"";
/// The record's close after its data.
const CLOSE: &[u8] = b"\"}";
/// The most bytes a timestamp takes: a sign and 19 digits, or a whole word of digits stored
/// before it is cut to its count (16 bytes).
const TS_MAX: usize = 20;

/// Appends `,` when `comma`, `lead`'s pieces (up to the record's `{"ts":`), the decimal `ts`,
/// `,"data":"`, the data's escaped `body` copied verbatim and `"}`, checking the vector's
/// capacity once. Inlined, so that the constant pieces become plain stores (the comma is
/// stored either way and kept or written over, rather than copied as a piece of length 0 or
/// 1, which would be a call to `memcpy`).
#[inline(always)]
pub fn append<const N: usize>(
    out: &mut Vec<u8>,
    comma: bool,
    lead: [&[u8]; N],
    ts: i64,
    body: &[u8],
) {
    let lead_len: usize = lead.iter().map(|p| p.len()).sum();
    let room = 1 + lead_len + TAIL_EXTRA + body.len();
    out.reserve(room);
    let len = out.len();
    // SAFETY: `reserve` left room for at least `room` bytes past `len`: the comma and the
    // lead take at most `1 + lead_len` of them, the record's end at most `body.len() +
    // TAIL_EXTRA` (see `store_lead` and `store_tail`), each stored where the one before ended.
    // The sources are other allocations (constants, the caller's slices), so they never
    // overlap the destination. The length is set to the end of the last piece, and every byte
    // up to it has been written by then.
    unsafe {
        let base = out.as_mut_ptr().add(len);
        let at = store_lead(base, comma, lead);
        let at = at + store_tail(base.add(at), ts, body);
        out.set_len(len + at);
    }
}

/// The most bytes [`store_tail`] writes beyond the data's.
pub const TAIL_EXTRA: usize = TS_MAX + DATA.len() + CLOSE.len();

/// Stores a record's end after its `{"ts":` (the decimal `ts`, `,"data":"`, `body`, `"}`) at
/// `p` and returns its length.
///
/// # Safety
/// `p` must be valid for writes of `body.len() + TAIL_EXTRA` bytes, not overlapping `body`.
#[inline(always)]
pub unsafe fn store_tail(p: *mut u8, ts: i64, body: &[u8]) -> usize {
    // SAFETY: the pieces are stored one after another from `p`: the timestamp within its
    // `TS_MAX` bytes, then `DATA`, `body` and `CLOSE`, so within the `body.len() + TAIL_EXTRA`
    // bytes the caller gives; the sources are constants and `body`, which does not overlap.
    unsafe {
        let mut at = timestamp(p, ts);
        ptr::copy_nonoverlapping(DATA.as_ptr(), p.add(at), DATA.len());
        at += DATA.len();
        copy(body, p.add(at));
        at += body.len();
        ptr::copy_nonoverlapping(CLOSE.as_ptr(), p.add(at), CLOSE.len());
        at + CLOSE.len()
    }
}

/// Appends `,` when `comma`, then `pieces` verbatim, checking the vector's capacity once (a
/// quiet `qry`'s member from its head and its record's rendered end).
#[inline(always)]
pub fn append_pieces<const N: usize>(out: &mut Vec<u8>, comma: bool, pieces: [&[u8]; N]) {
    let room = 1 + pieces.iter().map(|p| p.len()).sum::<usize>();
    out.reserve(room);
    let len = out.len();
    // SAFETY: `reserve` left room for `room` bytes past `len`: the comma takes at most one,
    // the pieces the rest, each stored where the one before ended. The pieces are other
    // allocations than the vector, so they never overlap its spare room. The length is set to
    // the end of the last piece, every byte up to it written.
    unsafe {
        let base = out.as_mut_ptr().add(len);
        let at = store_lead(base, comma, pieces);
        out.set_len(len + at);
    }
}

/// Stores `,` at `base` (kept when `comma`, else written over), then `pieces` one after
/// another, and returns the length.
///
/// # Safety
/// `base` must be valid for writes of one byte plus the pieces' lengths, not overlapping
/// them.
#[inline(always)]
unsafe fn store_lead<const N: usize>(base: *mut u8, comma: bool, pieces: [&[u8]; N]) -> usize {
    // SAFETY: the comma's byte and then the pieces, each where the one before ended, within
    // the room the caller gives.
    unsafe {
        base.write(b',');
        let mut at = usize::from(comma);
        for piece in pieces {
            copy(piece, base.add(at));
            at += piece.len();
        }
        at
    }
}

/// Stores `ts` in decimal at `p` and returns how many bytes it takes.
///
/// # Safety
/// `p` must be valid for writes of [`TS_MAX`] bytes.
#[inline(always)]
unsafe fn timestamp(p: *mut u8, ts: i64) -> usize {
    // SAFETY: the caller gives `TS_MAX` writable bytes at `p`: the sign takes at most the
    // first, and the digits at most the next 16 (`store`, below 10^16) or 19 (`decimal`: the
    // magnitude of an `i64` is at most 2^63, 19 digits).
    unsafe {
        let sign = usize::from(ts < 0);
        if ts < 0 {
            p.write(b'-');
        }
        let n = ts.unsigned_abs();
        let digits = p.add(sign);
        if let Some(count) = digits::store(digits, n) {
            return sign + count;
        }
        let mut buf = [0u8; 20];
        let text = decimal(n, &mut buf);
        ptr::copy_nonoverlapping(text.as_ptr(), digits, text.len());
        sign + text.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_tail_is_the_record_after_its_lead() {
        for v in [
            0i64,
            7,
            -12,
            1_733_500_000_123,
            i64::MAX,
            i64::MIN,
            123_456_789,
        ] {
            for n in [0usize, 1, 9, 33, 70, 256] {
                let body: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
                let mut room = vec![0u8; n + TAIL_EXTRA];
                // SAFETY: `room` holds `n + TAIL_EXTRA` bytes.
                let len = unsafe { store_tail(room.as_mut_ptr(), v, &body) };
                let mut want = Vec::new();
                append(&mut want, false, [], v, &body);
                assert_eq!(&room[..len], &want[..], "ts {v} n {n}");
            }
        }
    }

    #[test]
    fn pieces_land_whole_after_an_optional_comma() {
        for n in [0usize, 1, 7, 8, 31, 64, 65, 300] {
            let head: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let tail: Vec<u8> = (0..n + 3).map(|i| b'0' + (i % 10) as u8).collect();
            for comma in [false, true] {
                let mut out = b"x".to_vec();
                append_pieces(&mut out, comma, [&head, &tail]);
                let mut want = b"x".to_vec();
                if comma {
                    want.push(b',');
                }
                want.extend_from_slice(&head);
                want.extend_from_slice(&tail);
                assert_eq!(out, want, "n {n} comma {comma}");
            }
        }
    }

    #[test]
    fn every_shape_of_lead_and_timestamp() {
        let mut values = vec![0i64, 1, -1, 9, 10, i64::MAX, i64::MIN, 1_733_500_000_123];
        let mut p = 1i64;
        while let Some(next) = p.checked_mul(10) {
            values.extend([p - 1, p, p + 1, -p, -(p - 1), next / 10 * 9 + 7]);
            p = next;
        }
        for v in values {
            // Exactly full beforehand, so that the reserve must grow the vector.
            let mut out = Vec::with_capacity(3);
            out.extend_from_slice(b"ab,");
            append(
                &mut out,
                false,
                [b"\"", b"d\\\"1", b"\":{\"ts\":"],
                v,
                b"x\\\"y",
            );
            append(&mut out, true, [b"{\"ts\":"], v, b"");
            append(&mut out, true, [], v, b"z");
            append(&mut out, false, [], v, b"");
            // Runs of every length around the word sizes, head and data alike.
            for n in 0..140 {
                let text: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
                let mut one = Vec::new();
                append(&mut one, n % 2 == 0, [&text], v, &text);
                let run = String::from_utf8_lossy(&text);
                let comma = if n % 2 == 0 { "," } else { "" };
                assert_eq!(
                    String::from_utf8(one).unwrap(),
                    format!("{comma}{run}{v},\"data\":\"{run}\"}}")
                );
            }
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!(
                    "ab,\"d\\\"1\":{{\"ts\":{v},\"data\":\"x\\\"y\"}},{{\"ts\":{v},\"data\":\"\"}},{v},\"data\":\"z\"}}{v},\"data\":\"\"}}"
                )
            );
        }
    }
}
