//! The sealed-block codec: a run of records (strictly increasing timestamps) encoded into one
//! exactly sized allocation as `[ts varints][length varints][lz4 data]`, and decoded back into
//! columns ([`Decoded`]). Timestamps are zigzag varints of their delta-of-delta, the zeros at
//! the end of that column left out (a series at a steady rate stores one varint per block);
//! lengths are plain varints of the data as stored (escaped); the data is concatenated, its
//! escaped quotes folded ([`super::quotes`]) and compressed with LZ4 (`lz4_flex`).

use super::cache::Cached;
use super::quotes;
use super::varint::{get_varint, put_varint, unzigzag, zigzag};
use super::ALLOC_OVERHEAD;
use std::ops::Range;
use std::sync::OnceLock;

/// A block's records decoded: timestamps, data offsets (`count + 1` of them) and data.
#[derive(Debug, Default, Clone)]
pub struct Decoded {
    pub(super) ts: Vec<i64>,
    ends: Vec<u32>,
    pub(super) data: String,
}

impl Decoded {
    pub(super) fn len(&self) -> usize {
        self.ts.len()
    }
    pub(super) fn get(&self, i: usize) -> (i64, &str) {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        (self.ts[i], &self.data[start..self.ends[i] as usize])
    }
    pub(super) fn clear(&mut self) {
        self.ts.clear();
        self.ends.clear();
        self.data.clear();
    }
    pub(super) fn push(&mut self, ts: i64, data: &str) {
        self.ts.push(ts);
        self.data.push_str(data);
        self.ends.push(self.data.len() as u32);
    }
    /// For a buffer a thread keeps between decodes: gives back its memory once a block of a
    /// few huge records made it large.
    pub(super) fn release_if_large(&mut self) {
        if self.data.capacity() > KEPT_BUFFER_MAX {
            *self = Decoded::default();
        }
    }
}

/// The most a thread keeps in a decode buffer between blocks.
const KEPT_BUFFER_MAX: usize = 256 * 1024;

/// Sealed records: `count` records with `first_ts..=last_ts`, encoded in `bytes` as
/// `[ts varints][length varints][lz4 data]`. A block holds at most a few hundred records
/// (sealing and splitting keep it under [`super::SPLIT_RECORDS`] + 1), so its varint columns
/// are addressed with 16 bits.
#[derive(Debug)]
pub(super) struct Block {
    pub(super) first_ts: i64,
    pub(super) last_ts: i64,
    /// Position of the block's first record in the series.
    pub(super) pos: usize,
    pub(super) count: u32,
    pub(super) raw_len: u32,
    /// Escaped quotes folded into bare ones before compressing: the LZ4 data decodes to
    /// `raw_len - folded` bytes.
    folded: u32,
    /// Bytes of timestamp varints, then of length varints, at the front of `bytes`.
    pub(super) ts_len: u16,
    pub(super) lens_len: u16,
    pub(super) bytes: Box<[u8]>,
    /// The block decoded by [`Series::get`] or, for the newest blocks, by [`Series::scan`];
    /// see `cache.rs`.
    pub(super) cache: OnceLock<Box<Cached>>,
}

impl Clone for Block {
    fn clone(&self) -> Self {
        Block {
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            pos: self.pos,
            count: self.count,
            raw_len: self.raw_len,
            folded: self.folded,
            ts_len: self.ts_len,
            lens_len: self.lens_len,
            bytes: self.bytes.clone(),
            cache: OnceLock::new(),
        }
    }
}

thread_local! {
    /// Scratch for sealing: the encoded block before it is copied to its exact size.
    static SEAL_BUF: std::cell::RefCell<(Vec<u8>, Vec<u8>, Vec<u8>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new()))
    };
    /// Scratch for decoding a block with folded quotes: its data before they are unfolded.
    static FOLDED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Block {
    /// Seals `n` records given by `rec(i)`, oldest first (strictly increasing timestamps).
    /// `escaped`: some record may hold an escape sequence (the series' `special`), so its
    /// escaped quotes are folded; without it the data is compressed as it is.
    pub(super) fn seal<'a>(
        n: usize,
        escaped: bool,
        rec: impl Fn(usize) -> (i64, &'a str),
    ) -> Block {
        debug_assert!(n > 0);
        SEAL_BUF.with(|cell| {
            let (out, raw, fold_buf) = &mut *cell.borrow_mut();
            out.clear();
            raw.clear();
            let (first_ts, _) = rec(0);
            let (mut prev, mut delta) = (first_ts, 0i64);
            let mut last_ts = first_ts;
            for i in 1..n {
                let ts = rec(i).0;
                let d = ts.wrapping_sub(prev);
                put_varint(out, zigzag(d.wrapping_sub(delta)));
                (prev, delta, last_ts) = (ts, d, ts);
            }
            // A zero varint is the single byte 0 (a longer varint never ends in 0): the zeros
            // at the end are left out, and decoding reads "no more varints" as zero.
            while out.last() == Some(&0) {
                out.pop();
            }
            let ts_len = out.len();
            for i in 0..n {
                let data = rec(i).1;
                put_varint(out, data.len() as u64);
                raw.extend_from_slice(data.as_bytes());
            }
            let lens_len = out.len() - ts_len;
            let raw_len = raw.len();
            let folded = if escaped {
                quotes::fold(raw, fold_buf)
            } else {
                0
            };
            let data = if folded > 0 { &fold_buf[..] } else { &raw[..] };
            let head = out.len();
            out.resize(
                head + lz4_flex::block::get_maximum_output_size(data.len()),
                0,
            );
            // Blocks are sealed from memory, never from client or disk bytes, into an output
            // sized for LZ4's worst case: compress_into has no error left to report.
            #[allow(clippy::expect_used)]
            let packed = lz4_flex::block::compress_into(data, &mut out[head..])
                .expect("the output is sized for the worst case");
            out.truncate(head + packed);
            Block {
                first_ts,
                last_ts,
                pos: 0,
                count: n as u32,
                raw_len: raw_len as u32,
                folded: folded as u32,
                ts_len: ts_len as u16,
                lens_len: lens_len as u16,
                bytes: out.as_slice().into(),
                cache: OnceLock::new(),
            }
        })
    }

    pub(super) fn seal_decoded(d: &Decoded, escaped: bool) -> Block {
        Block::seal(d.len(), escaped, |i| d.get(i))
    }

    /// The timestamps alone, into `out` (cleared first).
    pub(super) fn decode_ts(&self, out: &mut Vec<i64>) {
        out.clear();
        out.reserve(self.count as usize);
        let bytes = &self.bytes[..self.ts_len as usize];
        let mut at = 0;
        let (mut prev, mut delta) = (self.first_ts, 0i64);
        out.push(prev);
        for _ in 1..self.count {
            if at < bytes.len() {
                delta = delta.wrapping_add(unzigzag(get_varint(bytes, &mut at)));
            }
            prev = prev.wrapping_add(delta);
            out.push(prev);
        }
    }

    /// Every record, into `out` (cleared first).
    pub(super) fn decode(&self, out: &mut Decoded) {
        self.decode_ts(&mut out.ts);
        out.ends.clear();
        out.ends.reserve(self.count as usize);
        let ts_len = self.ts_len as usize;
        let lens = &self.bytes[ts_len..ts_len + self.lens_len as usize];
        let mut at = 0;
        let mut end = 0u32;
        for _ in 0..self.count {
            end += get_varint(lens, &mut at) as u32;
            out.ends.push(end);
        }
        // The buffers keep the bytes of the block decoded before: only bytes past them are
        // zeroed (zeroing them all took ~9 % of a `qdoc` of 100 sealed records), since
        // decompressing and unfolding then write every byte, as both check.
        let mut raw = std::mem::take(&mut out.data).into_bytes();
        sized(&mut raw, self.raw_len as usize);
        let packed = &self.bytes[ts_len + self.lens_len as usize..];
        if self.folded == 0 {
            decompress(packed, &mut raw);
        } else {
            FOLDED.with_borrow_mut(|folded| {
                sized(folded, (self.raw_len - self.folded) as usize);
                decompress(packed, folded);
                let n = quotes::unfold(folded, &mut raw);
                assert_eq!(n, raw.len(), "a sealed block unfolds to its length");
                if folded.capacity() > KEPT_BUFFER_MAX {
                    *folded = Vec::new();
                }
            });
        }
        // Sealed from `&str` records in this process, LZ4 gives back exactly the bytes it was
        // given, and unfolding puts back exactly the backslashes folding took out, each before
        // an ASCII `"` (both checked to have written every byte): valid UTF-8, checked in debug
        // builds only (validating costs a fifth of a qdoc of 100 records).
        debug_assert!(std::str::from_utf8(&raw).is_ok());
        // SAFETY: the bytes are the concatenation of `&str`s, as argued above.
        out.data = unsafe { String::from_utf8_unchecked(raw) };
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.bytes.len() + ALLOC_OVERHEAD
    }

    /// Escaped quotes folded before compressing (see [`super::quotes`]).
    #[cfg(test)]
    pub(super) fn folded(&self) -> u32 {
        self.folded
    }

    /// Data bytes of the records at `r` (from the length varints alone).
    pub(super) fn data_len(&self, r: Range<usize>) -> usize {
        let ts_len = self.ts_len as usize;
        let lens = &self.bytes[ts_len..ts_len + self.lens_len as usize];
        let mut at = 0;
        let mut sum = 0;
        for i in 0..r.end {
            let len = get_varint(lens, &mut at) as usize;
            if i >= r.start {
                sum += len;
            }
        }
        sum
    }

    /// Position of `ts` within the block (`Ok`) or where it would go (`Err`).
    pub(super) fn find(&self, ts: i64, scratch: &mut Vec<i64>) -> Result<usize, usize> {
        if ts < self.first_ts {
            return Err(0);
        }
        if ts > self.last_ts {
            return Err(self.count as usize);
        }
        self.decode_ts(scratch);
        scratch.binary_search(&ts)
    }
}

/// `buf` at length `len`, zeroing only the bytes past its current length.
fn sized(buf: &mut Vec<u8>, len: usize) {
    buf.truncate(len);
    buf.resize(len, 0);
}

/// Decompresses a block's data into `out`, sized to exactly what it decodes to.
fn decompress(packed: &[u8], out: &mut [u8]) {
    // A sealed block is made in this process (snapshots store decoded records), so it
    // decodes unless memory itself is corrupt: nothing a client or the disk can cause.
    #[allow(clippy::expect_used)]
    let n = lz4_flex::block::decompress_into(packed, out).expect("a sealed block decodes");
    assert_eq!(n, out.len(), "a sealed block decodes to its length");
}
