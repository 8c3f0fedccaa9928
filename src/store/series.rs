//! One document's records, sorted by timestamp, in blocks.
//!
//! The newest records sit in the *plain block*: a column of 16-byte entries (timestamp and the
//! `(start, len)` span of its data) and one string arena, exactly as fast to append to and to
//! read the latest of as a flat column. When the plain block holds [`SEAL_RECORDS`] records (or
//! [`SEAL_BYTES`] of data) plus one, all but its newest record are *sealed*: the timestamps are
//! written as zigzag varints of their delta-of-delta, the data lengths as varints, and the data
//! concatenated and compressed with LZ4 (`lz4_flex`), into one exactly sized allocation. The
//! plain block keeps its capacity, so a document that keeps growing reuses the same two
//! buffers forever instead of growing columns by reallocation.
//!
//! A change inside sealed history (a late record, a replacement, a deletion) decodes the one
//! block it touches and seals it again; a block that grows past twice its size is split.
//! Readers that walk many records use [`Series::scan`], which decodes each block once into a
//! buffer of its own; [`Series::get`] on a sealed position decodes the block into a per-block
//! cache that lives until the next change of the document (and is counted as held memory).
//!
//! Data is kept escaped, as the body of its JSON string (see [`Data`]): a response copies it.
//!
//! Retention (dropping the oldest records: any removal that starts at the first record) is
//! lazy: whole blocks are dropped without decoding, and the records it takes from the first
//! sealed block are only counted as dead (`dead`, a floor under which reads do not look) until
//! the whole block is dead and goes. So a document under a retention policy holds at most one
//! block of dead records, and a drop never re-seals. A change that would touch the dead records
//! (a late record or a removal inside the first block) first re-seals that block without them.

use super::data::Data;
use crate::text;
use std::ops::{ControlFlow, Range};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Why a record could not be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeriesError {
    /// One document's live data would pass 4 GiB (the arena is addressed with 32 bits).
    DocumentTooLarge,
}

/// Records per sealed block: small enough that 1,000 records per document are mostly sealed and
/// that reading a few records decodes little, large enough for the codec to find the repeats.
pub const SEAL_RECORDS: usize = 64;
/// Data bytes that seal a plain block early (large records).
pub const SEAL_BYTES: usize = 32 * 1024;
/// A sealed block that grows past this many records (late records) is split in two.
const SPLIT_RECORDS: usize = 2 * SEAL_RECORDS;

/// Allocator overhead counted per heap allocation.
const ALLOC_OVERHEAD: usize = 16;

/// One record of the plain block: its timestamp and where its data sits in the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    ts: i64,
    start: u32,
    len: u32,
}

/// A block's records decoded: timestamps, data offsets (`count + 1` of them) and data.
#[derive(Debug, Default, Clone)]
pub struct Decoded {
    ts: Vec<i64>,
    ends: Vec<u32>,
    data: String,
}

impl Decoded {
    fn len(&self) -> usize {
        self.ts.len()
    }
    fn get(&self, i: usize) -> (i64, &str) {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        (self.ts[i], &self.data[start..self.ends[i] as usize])
    }
    fn clear(&mut self) {
        self.ts.clear();
        self.ends.clear();
        self.data.clear();
    }
    fn push(&mut self, ts: i64, data: &str) {
        self.ts.push(ts);
        self.data.push_str(data);
        self.ends.push(self.data.len() as u32);
    }
    fn heap_bytes(&self) -> usize {
        self.ts.capacity() * 8
            + self.ends.capacity() * 4
            + self.data.capacity()
            + 3 * ALLOC_OVERHEAD
    }
}

/// Sealed records: `count` records with `first_ts..=last_ts`, encoded in `bytes` as
/// `[ts varints][length varints][lz4 data]`.
#[derive(Debug)]
struct Block {
    first_ts: i64,
    last_ts: i64,
    /// Position of the block's first record in the series.
    pos: usize,
    count: u32,
    raw_len: u32,
    /// Bytes of timestamp varints, then of length varints, at the front of `bytes`.
    ts_len: u32,
    lens_len: u32,
    bytes: Box<[u8]>,
    /// The block decoded by [`Series::get`]; dropped at the document's next change.
    cache: OnceLock<Box<Decoded>>,
}

impl Clone for Block {
    fn clone(&self) -> Self {
        Block {
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            pos: self.pos,
            count: self.count,
            raw_len: self.raw_len,
            ts_len: self.ts_len,
            lens_len: self.lens_len,
            bytes: self.bytes.clone(),
            cache: OnceLock::new(),
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = bytes[*at];
        *at += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

thread_local! {
    /// The decode buffer of [`Series::scan`].
    static SCAN_BUF: std::rc::Rc<std::cell::RefCell<Decoded>> = Default::default();
    /// Scratch for sealing: the encoded block before it is copied to its exact size.
    static SEAL_BUF: std::cell::RefCell<(Vec<u8>, Vec<u8>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new()))
    };
}

impl Block {
    /// Seals `n` records given by `rec(i)`, oldest first (strictly increasing timestamps).
    fn seal<'a>(n: usize, rec: impl Fn(usize) -> (i64, &'a str)) -> Block {
        debug_assert!(n > 0);
        SEAL_BUF.with(|cell| {
            let (out, raw) = &mut *cell.borrow_mut();
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
            let ts_len = out.len();
            for i in 0..n {
                let data = rec(i).1;
                put_varint(out, data.len() as u64);
                raw.extend_from_slice(data.as_bytes());
            }
            let lens_len = out.len() - ts_len;
            let head = out.len();
            out.resize(
                head + lz4_flex::block::get_maximum_output_size(raw.len()),
                0,
            );
            // Blocks are sealed from memory, never from client or disk bytes, into an output
            // sized for LZ4's worst case: compress_into has no error left to report.
            #[allow(clippy::expect_used)]
            let packed = lz4_flex::block::compress_into(raw, &mut out[head..])
                .expect("the output is sized for the worst case");
            out.truncate(head + packed);
            Block {
                first_ts,
                last_ts,
                pos: 0,
                count: n as u32,
                raw_len: raw.len() as u32,
                ts_len: ts_len as u32,
                lens_len: lens_len as u32,
                bytes: out.as_slice().into(),
                cache: OnceLock::new(),
            }
        })
    }

    fn seal_decoded(d: &Decoded) -> Block {
        Block::seal(d.len(), |i| d.get(i))
    }

    /// The timestamps alone, into `out` (cleared first).
    fn decode_ts(&self, out: &mut Vec<i64>) {
        out.clear();
        out.reserve(self.count as usize);
        let bytes = &self.bytes[..self.ts_len as usize];
        let mut at = 0;
        let (mut prev, mut delta) = (self.first_ts, 0i64);
        out.push(prev);
        for _ in 1..self.count {
            delta = delta.wrapping_add(unzigzag(get_varint(bytes, &mut at)));
            prev = prev.wrapping_add(delta);
            out.push(prev);
        }
    }

    /// Every record, into `out` (cleared first).
    fn decode(&self, out: &mut Decoded) {
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
        let mut raw = std::mem::take(&mut out.data).into_bytes();
        raw.clear();
        raw.resize(self.raw_len as usize, 0);
        // A sealed block is made in this process (snapshots store decoded records), so it
        // decodes unless memory itself is corrupt: nothing a client or the disk can cause.
        #[allow(clippy::expect_used)]
        let n = lz4_flex::block::decompress_into(
            &self.bytes[ts_len + self.lens_len as usize..],
            &mut raw,
        )
        .expect("a sealed block decodes");
        assert_eq!(n, raw.len(), "a sealed block decodes to its length");
        // Sealed from `&str` records in this process, and LZ4 gives back exactly the bytes it
        // was given (the length is checked above): valid UTF-8, checked in debug builds only
        // (validating costs a fifth of a qdoc of 100 records).
        debug_assert!(std::str::from_utf8(&raw).is_ok());
        // SAFETY: the bytes are the concatenation of `&str`s, as argued above.
        out.data = unsafe { String::from_utf8_unchecked(raw) };
    }

    fn heap_bytes(&self) -> usize {
        self.bytes.len() + ALLOC_OVERHEAD
    }

    /// Data bytes of the records at `r` (from the length varints alone).
    fn data_len(&self, r: Range<usize>) -> usize {
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
    fn find(&self, ts: i64, scratch: &mut Vec<i64>) -> Result<usize, usize> {
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

#[derive(Debug, Default)]
pub struct Series {
    /// Sealed blocks, oldest first; every sealed record is older than every plain one.
    blocks: Vec<Block>,
    /// Records in sealed blocks.
    sealed: usize,
    /// Bytes held by sealed blocks (their encodings and allocations).
    sealed_bytes: usize,
    /// Bytes held by [`Block::cache`]s (written by readers).
    cache_bytes: AtomicUsize,
    /// The plain block.
    entries: Vec<Entry>,
    /// The newest timestamp (meaningless while empty), kept beside the column's pointer so
    /// that an append decides where the record goes without reading the column: the column's
    /// end is then only written, and a write that misses the cache does not stall.
    last_ts: i64,
    arena: String,
    garbage: usize,
    /// Bytes of live data (plain and sealed).
    live_bytes: usize,
    /// Some record's stored data may hold an escape sequence (its data held a control
    /// character, `"` or `\\`). Set on insert, cleared only when the series empties; while it
    /// is clear, the stored data is exactly the data as sent.
    special: bool,
    /// Records at the front of the first sealed block that are gone (lazy retention); always
    /// fewer than that block holds, 0 without blocks.
    dead: usize,
    /// Data bytes of those records (no longer counted in `live_bytes`).
    dead_bytes: usize,
}

impl Clone for Series {
    fn clone(&self) -> Self {
        Series {
            blocks: self.blocks.clone(),
            sealed: self.sealed,
            sealed_bytes: self.sealed_bytes,
            cache_bytes: AtomicUsize::new(0),
            entries: self.entries.clone(),
            last_ts: self.last_ts,
            arena: self.arena.clone(),
            garbage: self.garbage,
            live_bytes: self.live_bytes,
            special: self.special,
            dead: self.dead,
            dead_bytes: self.dead_bytes,
        }
    }
}

thread_local! {
    /// Data being stored, escaped.
    static ESCAPED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Capacity for a plain column that needs `need`: doubling up to the seal size, so a document
/// reaches its steady buffers in a few steps and then keeps them.
fn plain_capacity(cap: usize, need: usize, full: usize) -> usize {
    need.max(cap * 2).max(4).min(full.max(need))
}

impl Series {
    #[cfg(test)]
    pub fn new() -> Self {
        Series::default()
    }

    pub fn len(&self) -> usize {
        self.stored() - self.dead
    }

    /// Records held, dead ones included: the range of internal positions.
    fn stored(&self) -> usize {
        self.sealed + self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest timestamp held (`None` while empty): sealed records are all older than
    /// plain ones.
    pub fn newest_ts(&self) -> Option<i64> {
        match self.entries.last() {
            Some(e) => Some(e.ts),
            None => self.blocks.last().map(|b| b.last_ts),
        }
    }

    /// The record at position `i` (oldest first). Positions in sealed history decode their
    /// block into a cache kept until the document changes; prefer [`Series::scan`] for runs.
    pub fn get(&self, i: usize) -> (i64, Data<'_>) {
        let (ts, body) = self.get_stored(i + self.dead);
        (ts, Data::new(body, self.special))
    }

    /// The timestamp at position `i` alone: sealed history decodes only its timestamps.
    pub fn ts_at(&self, i: usize) -> i64 {
        let i = i + self.dead;
        if i >= self.sealed {
            return self.entries[i - self.sealed].ts;
        }
        let b = &self.blocks[self.block_of(i)];
        if let Some(d) = b.cache.get() {
            return d.ts[i - b.pos];
        }
        let mut ts = Vec::new();
        b.decode_ts(&mut ts);
        ts[i - b.pos]
    }

    /// The record at internal position `i` (dead records included), its data as stored.
    fn get_stored(&self, i: usize) -> (i64, &str) {
        if i >= self.sealed {
            let e = self.entries[i - self.sealed];
            return (e.ts, self.data(e));
        }
        let b = &self.blocks[self.block_of(i)];
        let d = b.cache.get_or_init(|| {
            let mut d = Decoded::default();
            b.decode(&mut d);
            self.cache_bytes
                .fetch_add(d.heap_bytes() + ALLOC_OVERHEAD, Ordering::Relaxed);
            Box::new(d)
        });
        d.get(i - b.pos)
    }

    /// Index of the block holding sealed position `i`.
    fn block_of(&self, i: usize) -> usize {
        self.blocks
            .partition_point(|b| b.pos + b.count as usize <= i)
    }

    fn data(&self, e: Entry) -> &str {
        let start = e.start as usize;
        &self.arena[start..start + e.len as usize]
    }

    /// Calls `f` with the records at `positions` (a range of positions, as [`Series::range`]
    /// gives), oldest first or, with `reverse`, newest first, until it breaks. Each sealed
    /// block in the way is decoded once, into a buffer of this call.
    pub fn scan(
        &self,
        positions: Range<usize>,
        reverse: bool,
        mut f: impl FnMut(i64, Data<'_>) -> ControlFlow<()>,
    ) {
        let escaped = self.special;
        self.scan_stored(positions, reverse, |ts, body| {
            f(ts, Data::new(body, escaped))
        });
    }

    /// [`Series::scan`] with the data as stored.
    fn scan_stored(
        &self,
        positions: Range<usize>,
        reverse: bool,
        mut f: impl FnMut(i64, &str) -> ControlFlow<()>,
    ) {
        let Range { start, end } = positions;
        let end = end.min(self.len());
        let (start, end) = (start + self.dead, end + self.dead);
        if start >= end {
            return;
        }
        let plain = start.max(self.sealed)..end;
        let sealed = start..end.min(self.sealed);
        // One decode buffer per thread, kept between calls (a nested scan gets its own).
        let mut own = Decoded::default();
        let cell = SCAN_BUF.with(|c| c.clone());
        let mut borrowed = if sealed.is_empty() {
            None
        } else {
            cell.try_borrow_mut().ok()
        };
        let buf: &mut Decoded = match borrowed.as_deref_mut() {
            Some(b) => b,
            None => &mut own,
        };
        let mut blocks = |f: &mut dyn FnMut(i64, &str) -> ControlFlow<()>| {
            if sealed.is_empty() {
                return ControlFlow::Continue(());
            }
            let (first, last) = (self.block_of(sealed.start), self.block_of(sealed.end - 1));
            let mut visit = |bi: usize| -> ControlFlow<()> {
                let b = &self.blocks[bi];
                let lo = sealed.start.max(b.pos) - b.pos;
                let hi = sealed.end.min(b.pos + b.count as usize) - b.pos;
                let d: &Decoded = match b.cache.get() {
                    Some(d) => d,
                    None => {
                        b.decode(buf);
                        buf
                    }
                };
                if reverse {
                    for i in (lo..hi).rev() {
                        let (ts, data) = d.get(i);
                        f(ts, data)?;
                    }
                } else {
                    for i in lo..hi {
                        let (ts, data) = d.get(i);
                        f(ts, data)?;
                    }
                }
                ControlFlow::Continue(())
            };
            if reverse {
                (first..=last).rev().try_for_each(&mut visit)
            } else {
                (first..=last).try_for_each(&mut visit)
            }
        };
        let plain_part = |f: &mut dyn FnMut(i64, &str) -> ControlFlow<()>| {
            let it = plain.clone().map(|i| self.entries[i - self.sealed]);
            if reverse {
                it.rev().try_for_each(|e| f(e.ts, self.data(e)))
            } else {
                let mut it = it;
                it.try_for_each(|e| f(e.ts, self.data(e)))
            }
        };
        if reverse {
            if plain_part(&mut f).is_continue() {
                let _ = blocks(&mut f);
            }
        } else if blocks(&mut f).is_continue() {
            let _ = plain_part(&mut f);
        }
        // A block of a few huge records does not stay in the thread's buffer.
        if let Some(b) = borrowed.as_deref_mut() {
            if b.data.capacity() > 256 * 1024 {
                *b = Decoded::default();
            }
        }
    }

    /// Bytes held by the data arena, garbage included, and by sealed blocks.
    pub fn arena_len(&self) -> usize {
        self.arena.len() + self.sealed_bytes
    }

    /// True when no record's data held a control character, `"` or `\\`: the stored data is
    /// then exactly the data as sent.
    pub fn data_is_plain(&self) -> bool {
        !self.special
    }

    /// Bytes of live data, as stored (escaped).
    pub fn data_bytes(&self) -> usize {
        self.live_bytes
    }

    /// Heap bytes this series holds: buffers at their capacity and sealed blocks, with a
    /// per-allocation overhead. The figure the store's memory limit counts.
    pub fn heap_bytes(&self) -> usize {
        let plain = self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.arena.capacity()
            + self.blocks.capacity() * std::mem::size_of::<Block>();
        let allocs = [
            self.entries.capacity(),
            self.arena.capacity(),
            self.blocks.capacity(),
        ]
        .iter()
        .filter(|&&c| c > 0)
        .count();
        plain + allocs * ALLOC_OVERHEAD + self.sealed_bytes
    }

    /// Bytes of decoded blocks cached by [`Series::get`] (written by readers, so not part of
    /// [`Series::heap_bytes`], which only changes under the write lock; dropped at the
    /// document's next change).
    pub fn cache_bytes(&self) -> usize {
        self.cache_bytes.load(Ordering::Relaxed)
    }

    /// Drops the decoded caches (any change of the document).
    fn drop_caches(&mut self) {
        if *self.cache_bytes.get_mut() == 0 {
            return;
        }
        for b in &mut self.blocks {
            b.cache.take();
        }
        *self.cache_bytes.get_mut() = 0;
    }

    /// Appends `data` to the arena; the entry for it, with `ts`.
    fn push_data(&mut self, ts: i64, data: &str) -> Result<Entry, SeriesError> {
        let limit = u32::MAX as usize;
        if self.live_bytes + data.len() > limit {
            return Err(SeriesError::DocumentTooLarge);
        }
        let free = self.arena.capacity() - self.arena.len();
        if free < data.len() {
            if self.garbage > 0 && self.garbage >= data.len() {
                self.compact();
            }
            let free = self.arena.capacity() - self.arena.len();
            if free < data.len() {
                let need = self.arena.len() + data.len();
                // Aim at the size of a full plain block, judged from the records so far.
                let n = self.entries.len();
                let full = if n >= 4 {
                    let avg = (self.arena.len() - self.garbage) / n + 1;
                    (avg * (SEAL_RECORDS + 1) * 17 / 16).max(need + need / 8)
                } else {
                    SEAL_BYTES
                };
                let want = plain_capacity(self.arena.capacity(), need, full.min(SEAL_BYTES + need));
                self.arena.reserve_exact(want - self.arena.len());
            }
        }
        if self.arena.len() + data.len() > limit {
            self.compact();
        }
        let entry = Entry {
            ts,
            start: self.arena.len() as u32,
            len: data.len() as u32,
        };
        self.arena.push_str(data);
        self.live_bytes += data.len();
        Ok(entry)
    }

    /// Inserts a record (its data as sent), replacing the data of an existing record with the
    /// same timestamp. The data is stored escaped.
    pub fn insert(&mut self, ts: i64, data: &str) -> Result<(), SeriesError> {
        if text::first_escape(data.as_bytes()).is_none() {
            return self.insert_stored(ts, data);
        }
        self.special = true;
        ESCAPED.with_borrow_mut(|body| {
            body.clear();
            text::escape_into_string(body, data);
            let result = self.insert_stored(ts, body);
            if body.capacity() > 64 * 1024 {
                *body = String::new();
            }
            result
        })
    }

    /// [`Series::insert`] of data already escaped.
    fn insert_stored(&mut self, ts: i64, data: &str) -> Result<(), SeriesError> {
        self.drop_caches();
        let plain_first = self.entries.first().map(|e| e.ts);
        let in_plain = match plain_first {
            Some(first) => ts >= first || self.blocks.last().is_none_or(|b| b.last_ts < ts),
            None => self.blocks.last().is_none_or(|b| b.last_ts < ts),
        };
        if !in_plain {
            return self.insert_sealed(ts, data);
        }
        let at = if self.entries.is_empty() || self.last_ts < ts {
            self.entries.len()
        } else {
            match self.find_plain(ts) {
                Ok(i) => {
                    let old_len = self.entries[i].len as usize;
                    if self.live_bytes - old_len + data.len() > u32::MAX as usize {
                        return Err(SeriesError::DocumentTooLarge);
                    }
                    self.live_bytes -= old_len;
                    self.garbage += old_len;
                    self.entries[i] = self.push_data(ts, data)?;
                    self.maybe_compact();
                    return Ok(());
                }
                Err(i) => i,
            }
        };
        let entry = self.push_data(ts, data)?;
        self.push_entry(at, entry);
        if self.entries.len() > SEAL_RECORDS
            || (self.entries.len() > 1 && self.arena.len() - self.garbage > SEAL_BYTES)
        {
            self.seal_plain();
        }
        Ok(())
    }

    /// A record older than the plain block: into the first sealed block whose newest record is
    /// not older than it, decoded and sealed again.
    fn insert_sealed(&mut self, ts: i64, data: &str) -> Result<(), SeriesError> {
        let bi = self.blocks.partition_point(|b| b.last_ts < ts);
        if bi == 0 {
            self.purge_dead();
        }
        let bi = bi.min(self.blocks.len() - 1);
        let mut d = Decoded::default();
        self.blocks[bi].decode(&mut d);
        let (added, old) = match d.ts.binary_search(&ts) {
            Ok(i) => (0, d.get(i).1.len()),
            Err(_) => (1, 0),
        };
        if self.live_bytes - old + data.len() > u32::MAX as usize {
            return Err(SeriesError::DocumentTooLarge);
        }
        let mut n = Decoded::default();
        let mut placed = false;
        for i in 0..d.len() {
            let (t, x) = d.get(i);
            if !placed && t >= ts {
                n.push(ts, data);
                placed = true;
                if t == ts {
                    continue;
                }
            }
            n.push(t, x);
        }
        if !placed {
            n.push(ts, data);
        }
        self.live_bytes = self.live_bytes - old + data.len();
        self.sealed += added;
        if n.len() > SPLIT_RECORDS {
            let half = n.len() / 2;
            let a = Block::seal(half, |i| n.get(i));
            let b = Block::seal(n.len() - half, |i| n.get(half + i));
            self.replace_blocks(bi..bi + 1, vec![a, b]);
        } else {
            self.replace_blocks(bi..bi + 1, vec![Block::seal_decoded(&n)]);
        }
        Ok(())
    }

    /// Replaces `range` of the blocks with `new` and renumbers the positions after it.
    fn replace_blocks(&mut self, range: Range<usize>, new: Vec<Block>) {
        let from = range.start;
        for b in &self.blocks[range.clone()] {
            self.sealed_bytes -= b.heap_bytes();
        }
        for b in &new {
            self.sealed_bytes += b.heap_bytes();
        }
        self.blocks.splice(range, new);
        self.renumber(from);
    }

    fn renumber(&mut self, from: usize) {
        let mut pos = if from == 0 {
            0
        } else {
            let p = &self.blocks[from - 1];
            p.pos + p.count as usize
        };
        for b in &mut self.blocks[from..] {
            b.pos = pos;
            pos += b.count as usize;
        }
        self.sealed = pos;
    }

    /// Seals every plain record but the newest (so that "latest" stays plain).
    fn seal_plain(&mut self) {
        let n = self.entries.len() - 1;
        if n == 0 {
            return;
        }
        let mut block = Block::seal(n, |i| {
            let e = self.entries[i];
            (e.ts, self.data(e))
        });
        block.pos = self.sealed;
        self.sealed += n;
        self.sealed_bytes += block.heap_bytes();
        if self.blocks.len() == self.blocks.capacity() {
            // Grow by a quarter: the block list of a large document stays within ~25 % slack.
            let add = (self.blocks.capacity() / 4).max(4);
            self.blocks.reserve_exact(add);
        }
        self.blocks.push(block);
        // Keep the newest record, at the front of the same buffers.
        let last = self.entries[n];
        let start = last.start as usize;
        self.arena.replace_range(..start, "");
        self.arena.truncate(last.len as usize);
        self.entries.clear();
        self.entries.push(Entry {
            ts: last.ts,
            start: 0,
            len: last.len,
        });
        self.garbage = 0;
    }

    /// The position of `ts` (`Ok`) or where it would go (`Err`).
    pub fn find(&self, ts: i64) -> Result<usize, usize> {
        match self.find_stored(ts) {
            Ok(i) if i >= self.dead => Ok(i - self.dead),
            Ok(_) => Err(0),
            Err(i) => Err(i.saturating_sub(self.dead)),
        }
    }

    /// [`Series::find`] among internal positions (dead records included).
    fn find_stored(&self, ts: i64) -> Result<usize, usize> {
        if self.blocks.is_empty() || self.entries.first().is_some_and(|e| e.ts <= ts) {
            return match self.find_plain(ts) {
                Ok(i) => Ok(self.sealed + i),
                Err(i) => Err(self.sealed + i),
            };
        }
        let bi = self.blocks.partition_point(|b| b.last_ts < ts);
        if bi == self.blocks.len() {
            return Err(self.sealed);
        }
        let b = &self.blocks[bi];
        let mut scratch = Vec::new();
        match b.find(ts, &mut scratch) {
            Ok(i) => Ok(b.pos + i),
            Err(i) => Err(b.pos + i),
        }
    }

    /// Like a binary search of the plain block, but galloping back from the newest record
    /// first: late records land near the end (several writers, a client catching up), and
    /// finding their place then costs a few probes in cache lines the last append touched.
    fn find_plain(&self, ts: i64) -> Result<usize, usize> {
        let e = &self.entries;
        // Every entry at or after `hi` is newer than `ts`.
        let mut hi = e.len();
        let mut step = 1;
        let lo = loop {
            let probe = hi.saturating_sub(step);
            if probe == hi {
                break hi;
            }
            if e[probe].ts <= ts {
                break probe;
            }
            hi = probe;
            step *= 2;
        };
        match e[lo..hi].binary_search_by_key(&ts, |x| x.ts) {
            Ok(i) => Ok(lo + i),
            Err(i) => Err(lo + i),
        }
    }

    /// Inserts an entry at plain position `i`, the column doubling up to the seal size.
    fn push_entry(&mut self, i: usize, entry: Entry) {
        if self.entries.len() == self.entries.capacity() {
            let cap = self.entries.capacity();
            let want = plain_capacity(cap, cap + 1, SEAL_RECORDS + 1);
            self.entries.reserve_exact(want - self.entries.len());
        }
        if i == self.entries.len() {
            self.last_ts = entry.ts;
            self.entries.push(entry);
        } else {
            self.entries.insert(i, entry);
        }
    }

    /// Number of records with a timestamp below `ts` (the position of the first at or after).
    fn lower_bound(&self, ts: i64) -> usize {
        self.lower_bound_stored(ts).saturating_sub(self.dead)
    }

    /// [`Series::lower_bound`] among internal positions (dead records included).
    fn lower_bound_stored(&self, ts: i64) -> usize {
        if self.blocks.is_empty() || self.entries.first().is_some_and(|e| e.ts < ts) {
            return self.sealed + self.entries.partition_point(|e| e.ts < ts);
        }
        let bi = self.blocks.partition_point(|b| b.last_ts < ts);
        if bi == self.blocks.len() {
            return self.sealed;
        }
        let b = &self.blocks[bi];
        let mut scratch = Vec::new();
        match b.find(ts, &mut scratch) {
            Ok(i) | Err(i) => b.pos + i,
        }
    }

    /// Number of records with a timestamp at or below `ts`.
    fn upper_bound(&self, ts: i64) -> usize {
        match ts.checked_add(1) {
            Some(next) => self.lower_bound(next),
            None => self.len(),
        }
    }

    /// Positions of the records with `from <= ts <= to`.
    pub fn range(&self, from: i64, to: i64) -> Range<usize> {
        if from > to {
            return 0..0;
        }
        let lo = self.lower_bound(from);
        let hi = self.upper_bound(to);
        lo..hi.max(lo)
    }

    /// Position of the newest record with `ts <= at`. Asking for "now" (at or after the last
    /// record) is the common case and touches one cache line.
    pub fn latest_at(&self, at: i64) -> Option<usize> {
        match self.entries.last() {
            Some(last) if last.ts <= at => Some(self.len() - 1),
            _ => self.upper_bound(at).checked_sub(1),
        }
    }

    /// Removes the record at exactly `ts`; true when one existed.
    pub fn remove(&mut self, ts: i64) -> bool {
        match self.find(ts) {
            Ok(i) => {
                self.remove_positions(i..i + 1);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes every record with `from <= ts <= to`; returns how many went.
    pub fn remove_range(&mut self, from: i64, to: i64) -> usize {
        let r = self.range(from, to);
        let n = r.len();
        if n > 0 {
            self.remove_positions(r);
        }
        n
    }

    /// Retention by age: removes every record older than `ts`; returns how many went. Whole
    /// blocks go without being decoded.
    pub fn remove_before(&mut self, ts: i64) -> usize {
        let n = self.lower_bound(ts);
        if n > 0 {
            self.remove_positions(0..n);
        }
        n
    }

    /// Retention by count: removes the oldest records beyond the newest `keep`; returns how
    /// many went.
    pub fn remove_oldest(&mut self, keep: usize) -> usize {
        let n = self.len().saturating_sub(keep);
        if n > 0 {
            self.remove_positions(0..n);
        }
        n
    }

    fn remove_positions(&mut self, r: Range<usize>) {
        self.drop_caches();
        if r.start == 0 {
            self.drop_front(r.end);
        } else {
            let touches_first = self
                .blocks
                .first()
                .is_some_and(|b| r.start + self.dead < b.count as usize);
            if touches_first {
                self.purge_dead();
            }
            let d = self.dead;
            self.remove_stored(r.start + d..r.end + d);
        }
        if self.is_empty() {
            *self = Series::default();
            return;
        }
        match self.entries.last() {
            Some(last) => {
                self.last_ts = last.ts;
                self.maybe_compact();
            }
            None => {
                self.garbage = 0;
                self.arena.clear();
                self.last_ts = self.blocks.last().map_or(0, |b| b.last_ts);
            }
        }
    }

    /// Removes the oldest `n` records: the blocks they cover whole go, and those they take
    /// from the block after are only counted dead (see the module's notes).
    fn drop_front(&mut self, n: usize) {
        let end = n + self.dead;
        let whole = self
            .blocks
            .partition_point(|b| b.pos + b.count as usize <= end);
        let mut end = end;
        if whole > 0 {
            let gone = &self.blocks[..whole];
            let bytes: usize = gone.iter().map(|b| b.raw_len as usize).sum();
            end -= gone[whole - 1].pos + gone[whole - 1].count as usize;
            self.live_bytes -= bytes - self.dead_bytes;
            (self.dead, self.dead_bytes) = (0, 0);
            self.replace_blocks(0..whole, Vec::new());
        }
        if end <= self.sealed {
            if end > self.dead {
                let bytes = self.blocks[0].data_len(self.dead..end);
                self.live_bytes -= bytes;
                self.dead_bytes += bytes;
                self.dead = end;
            }
            return;
        }
        // Every block went: the rest comes from the plain block.
        let gone: usize = self.entries[..end].iter().map(|e| e.len as usize).sum();
        self.garbage += gone;
        self.live_bytes -= gone;
        self.entries.drain(..end);
    }

    /// Seals the first block again without its dead records (before a change that could
    /// touch them).
    fn purge_dead(&mut self) {
        let dead = self.dead;
        if dead == 0 {
            return;
        }
        let mut d = Decoded::default();
        self.blocks[0].decode(&mut d);
        let block = Block::seal(d.len() - dead, |i| d.get(dead + i));
        (self.dead, self.dead_bytes) = (0, 0);
        self.replace_blocks(0..1, vec![block]);
    }

    /// Removes internal positions `r` (none of them dead).
    fn remove_stored(&mut self, r: Range<usize>) {
        // Plain part.
        let plain = r.start.max(self.sealed)..r.end;
        if !plain.is_empty() {
            let (a, b) = (plain.start - self.sealed, plain.end - self.sealed);
            let gone: usize = self.entries[a..b].iter().map(|e| e.len as usize).sum();
            self.garbage += gone;
            self.live_bytes -= gone;
            self.entries.drain(a..b);
        }
        // Sealed part: whole blocks go, the partly covered ones (at most two) are resealed.
        let sealed = r.start..r.end.min(self.sealed);
        if !sealed.is_empty() {
            let (first, last) = (self.block_of(sealed.start), self.block_of(sealed.end - 1));
            let mut new = Vec::new();
            let mut d = Decoded::default();
            let mut kept = Decoded::default();
            for bi in first..=last {
                let b = &self.blocks[bi];
                let lo = sealed.start.max(b.pos) - b.pos;
                let hi = sealed.end.min(b.pos + b.count as usize) - b.pos;
                if lo == 0 && hi == b.count as usize {
                    self.live_bytes -= b.raw_len as usize;
                    continue;
                }
                b.decode(&mut d);
                kept.clear();
                for i in (0..lo).chain(hi..d.len()) {
                    let (t, x) = d.get(i);
                    kept.push(t, x);
                }
                self.live_bytes -= d.data.len() - kept.data.len();
                new.push(Block::seal_decoded(&kept));
            }
            self.replace_blocks(first..last + 1, new);
        }
    }

    fn maybe_compact(&mut self) {
        if self.garbage > 4096 && self.garbage * 2 > self.arena.len() {
            self.compact();
        }
    }

    /// Rewrites the arena with live data only, in record order.
    fn compact(&mut self) {
        let mut arena = String::with_capacity(self.arena.capacity());
        for e in &mut self.entries {
            let start = e.start as usize;
            let new_start = arena.len() as u32;
            arena.push_str(&self.arena[start..start + e.len as usize]);
            e.start = new_start;
        }
        self.arena = arena;
        self.garbage = 0;
    }

    /// The series as columns: timestamps, data lengths and the data concatenated in order.
    pub fn to_parts(&self) -> (Vec<i64>, Vec<u32>, String) {
        let mut data = String::with_capacity(self.data_bytes());
        let mut ts = Vec::with_capacity(self.len());
        let mut lens = Vec::with_capacity(self.len());
        let mut scratch = String::new();
        self.scan(0..self.len(), false, |t, d| {
            let text = d.text_in(&mut scratch);
            data.push_str(text);
            ts.push(t);
            lens.push(text.len() as u32);
            ControlFlow::Continue(())
        });
        (ts, lens, data)
    }

    /// Rebuilds a series from [`Series::to_parts`] output, checking that it is consistent.
    pub fn from_parts(ts: Vec<i64>, lens: Vec<u32>, data: String) -> Result<Series, String> {
        if ts.len() != lens.len() {
            return Err("timestamp and length columns differ in size".into());
        }
        if ts.windows(2).any(|w| w[0] >= w[1]) {
            return Err("timestamps are not strictly increasing".into());
        }
        if data.len() > u32::MAX as usize {
            return Err("document data exceeds 4 GiB".into());
        }
        let mut start = 0usize;
        let mut spans = Vec::with_capacity(lens.len());
        for len in lens {
            let end = start + len as usize;
            if end > data.len() || !data.is_char_boundary(end) {
                return Err("data lengths do not match the data".into());
            }
            spans.push(start..end);
            start = end;
        }
        if start != data.len() {
            return Err("data lengths do not match the data".into());
        }
        let mut s = Series::default();
        for (t, span) in ts.into_iter().zip(spans) {
            s.insert(t, &data[span])
                .map_err(|_| "document data exceeds 4 GiB".to_string())?;
        }
        Ok(s)
    }

    /// Iterates over every record, oldest first (sealed blocks through the decoded cache).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (i64, Data<'_>)> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Records in sealed blocks, and the number of blocks (for tests and reports).
    pub fn sealed_stats(&self) -> (usize, usize) {
        (self.sealed - self.dead, self.blocks.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &Series) -> Vec<(i64, String)> {
        s.iter().map(|(t, d)| (t, d.text().into_owned())).collect()
    }

    fn scanned(s: &Series, r: Range<usize>, reverse: bool) -> Vec<(i64, String)> {
        let mut v = Vec::new();
        s.scan(r, reverse, |t, d| {
            v.push((t, d.text().into_owned()));
            ControlFlow::Continue(())
        });
        v
    }

    #[test]
    fn keeps_order_and_replaces() {
        let mut s = Series::new();
        for (ts, d) in [(100, "a"), (300, "c"), (200, "b"), (50, "z"), (200, "B")] {
            s.insert(ts, d).unwrap();
        }
        assert_eq!(
            all(&s),
            vec![
                (50, "z".into()),
                (100, "a".into()),
                (200, "B".into()),
                (300, "c".into())
            ]
        );
        assert_eq!(s.latest_at(250), Some(2));
        assert_eq!(s.latest_at(49), None);
        assert_eq!(s.latest_at(i64::MAX), Some(3));
        assert_eq!(s.range(100, 200), 1..3);
        assert_eq!(s.range(101, 199), 2..2);
        assert_eq!(s.range(i64::MIN, i64::MAX), 0..4);
    }

    #[test]
    fn find_agrees_with_binary_search() {
        let mut s = Series::new();
        for ts in (0..300).map(|i| i * 3) {
            s.insert(ts, "x").unwrap();
        }
        assert!(s.sealed_stats().1 >= 4, "several blocks sealed");
        let tss: Vec<i64> = s.iter().map(|(t, _)| t).collect();
        for ts in -2..905 {
            assert_eq!(s.find(ts), tss.binary_search(&ts), "ts {ts}");
            assert_eq!(
                s.latest_at(ts),
                tss.partition_point(|&t| t <= ts).checked_sub(1)
            );
        }
        assert_eq!(Series::new().find(5), Err(0));
    }

    #[test]
    fn appends_follow_the_newest_record_after_removals() {
        let mut s = Series::new();
        for ts in [10, 20, 30] {
            s.insert(ts, "x").unwrap();
        }
        assert!(s.remove(30));
        s.insert(25, "y").unwrap();
        assert_eq!(s.remove_range(20, 30), 2);
        s.insert(15, "z").unwrap();
        s.insert(12, "w").unwrap();
        assert_eq!(
            s.iter().map(|(t, _)| t).collect::<Vec<_>>(),
            vec![10, 12, 15]
        );
        let (ts, lens, data) = s.to_parts();
        let mut back = Series::from_parts(ts, lens, data).unwrap();
        back.insert(14, "v").unwrap();
        back.insert(16, "u").unwrap();
        assert_eq!(
            back.iter().map(|(t, _)| t).collect::<Vec<_>>(),
            vec![10, 12, 14, 15, 16]
        );
    }

    #[test]
    fn removals() {
        let mut s = Series::new();
        for ts in 1..=10 {
            s.insert(ts, &ts.to_string()).unwrap();
        }
        assert!(s.remove(5));
        assert!(!s.remove(5));
        assert_eq!(s.remove_range(7, 9), 3);
        assert_eq!(
            s.iter().map(|(t, _)| t).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 6, 10]
        );
        assert_eq!(s.remove_range(i64::MIN, i64::MAX), 6);
        assert!(s.is_empty());
        assert_eq!(s.data_bytes(), 0);
    }

    #[test]
    fn compaction_keeps_data_and_frees_garbage() {
        let mut s = Series::new();
        let big = "x".repeat(1000);
        for round in 0..20 {
            for ts in 0..10 {
                s.insert(ts, &format!("{round}{big}")).unwrap();
            }
        }
        assert!(s.arena_len() <= 2 * s.data_bytes() + 4096 + 1010 + SEAL_BYTES);
        assert!(s.iter().all(|(_, d)| d.wire().starts_with("19x")));
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn parts_round_trip_and_validation() {
        let mut s = Series::new();
        for (ts, d) in [(3, "c"), (1, "é"), (2, ""), (1, "a")] {
            s.insert(ts, d).unwrap();
        }
        let (ts, lens, data) = s.to_parts();
        assert_eq!(data, "ac");
        let back = Series::from_parts(ts.clone(), lens.clone(), data.clone()).unwrap();
        assert_eq!(all(&back), all(&s));
        assert!(Series::from_parts(vec![2, 1], vec![0, 0], String::new()).is_err());
        assert!(Series::from_parts(ts.clone(), vec![1, 0, 5], data.clone()).is_err());
        assert!(
            Series::from_parts(vec![1], vec![1], "é".into()).is_err(),
            "not a char boundary"
        );
    }

    #[test]
    fn plain_data_is_tracked() {
        let mut s = Series::new();
        s.insert(1, "abc é").unwrap();
        assert!(s.data_is_plain());
        s.insert(2, "a\"b").unwrap();
        assert!(!s.data_is_plain());
        s.remove_range(i64::MIN, i64::MAX);
        assert!(s.data_is_plain(), "an emptied series starts over");
        s.insert(3, "tab\t").unwrap();
        let (ts, lens, data) = s.to_parts();
        assert!(!Series::from_parts(ts, lens, data).unwrap().data_is_plain());
    }

    #[test]
    fn multibyte_data_round_trips() {
        let mut s = Series::new();
        s.insert(2, "é€😀").unwrap();
        s.insert(1, "\u{0}nul").unwrap();
        assert_eq!(all(&s), vec![(1, "\u{0}nul".into()), (2, "é€😀".into())]);
    }

    #[test]
    fn timestamps_of_any_spacing_round_trip_through_blocks() {
        let mut s = Series::new();
        let tss: Vec<i64> = [
            i64::MIN,
            i64::MIN + 1,
            -5,
            0,
            1,
            1000,
            i64::MAX - 1,
            i64::MAX,
        ]
        .into_iter()
        .chain((0..200).map(|i| i * i * 7919 - 3))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
        for &t in &tss {
            s.insert(t, &format!("r{t}")).unwrap();
        }
        assert!(s.sealed_stats().0 > 100);
        let got = all(&s);
        assert_eq!(got.len(), tss.len());
        assert!(got
            .iter()
            .zip(&tss)
            .all(|((t, d), e)| t == e && *d == format!("r{e}")));
        assert_eq!(s.range(i64::MIN, i64::MAX), 0..tss.len());
    }

    /// Random inserts, replacements and deletions against a BTreeMap.
    #[test]
    fn sealed_history_matches_a_model() {
        use std::collections::BTreeMap;
        let mut rng = 0x2545F4914F6CDD1Du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..9 {
            let mut s = Series::new();
            let mut m: BTreeMap<i64, String> = BTreeMap::new();
            let span = [50u64, 400, 5000][round % 3];
            for step in 0..3000 {
                let r = next();
                let ts = (next() % span) as i64;
                match r % 10 {
                    0..=5 => {
                        let d = format!("{{\"v\":{},\"s\":\"{step}\\\n\"}}", next() % 1000);
                        s.insert(ts, &d).unwrap();
                        m.insert(ts, d);
                    }
                    6 => {
                        let d = format!("append {step}");
                        let t = m.keys().next_back().map_or(0, |t| t + 1);
                        s.insert(t, &d).unwrap();
                        m.insert(t, d);
                    }
                    7 => {
                        assert_eq!(s.remove(ts), m.remove(&ts).is_some());
                    }
                    8 if r % 3 == 0 => {
                        // Retention: the oldest records go (lazily, from the first block).
                        let keep = (next() % (m.len() as u64 + 1)) as usize;
                        let n = m.len() - keep;
                        assert_eq!(s.remove_oldest(keep), n);
                        for _ in 0..n {
                            m.pop_first();
                        }
                    }
                    8 if r % 3 == 1 => {
                        let n = m.range(..ts).count();
                        assert_eq!(s.remove_before(ts), n);
                        m.retain(|t, _| *t >= ts);
                    }
                    8 => {
                        let to = ts + (next() % 20) as i64;
                        let n = m.range(ts..=to).count();
                        assert_eq!(s.remove_range(ts, to), n);
                        m.retain(|t, _| !(ts..=to).contains(t));
                    }
                    _ => {
                        let to = ts + (next() % 100) as i64;
                        let want: Vec<_> = m.range(ts..=to).map(|(t, d)| (*t, d.clone())).collect();
                        let r = s.range(ts, to);
                        assert_eq!(scanned(&s, r.clone(), false), want);
                        let mut rev = want.clone();
                        rev.reverse();
                        assert_eq!(scanned(&s, r.clone(), true), rev);
                        let at = m.range(..=to).next_back().map(|(t, _)| *t);
                        assert_eq!(s.latest_at(to).map(|i| s.get(i).0), at);
                        assert_eq!(s.latest_at(to).map(|i| s.ts_at(i)), at);
                        let first = m.keys().next().copied();
                        assert_eq!((!s.is_empty()).then(|| s.ts_at(0)), first);
                        assert_eq!(s.find(ts).is_ok(), m.contains_key(&ts));
                    }
                }
                assert_eq!(s.len(), m.len());
                assert_eq!(
                    s.data_bytes(),
                    m.values().map(|d| text::escaped_len(d)).sum::<usize>()
                );
            }
            let want: Vec<_> = m.iter().map(|(t, d)| (*t, d.clone())).collect();
            assert_eq!(all(&s), want);
            assert_eq!(scanned(&s, 0..s.len(), false), want);
            let (ts, lens, data) = s.to_parts();
            assert_eq!(all(&Series::from_parts(ts, lens, data).unwrap()), want);
        }
    }

    #[test]
    fn a_thousand_records_are_mostly_sealed_in_exact_buffers() {
        let mut s = Series::new();
        for ts in 1..=1000 {
            s.insert(ts, "{\"lat\":52.389837,\"lon\":4.884869,\"alt\":107.9}")
                .unwrap();
        }
        let (sealed, blocks) = s.sealed_stats();
        assert!(sealed >= 900, "{sealed} sealed");
        assert_eq!(blocks, sealed / SEAL_RECORDS);
        assert!(s.entries.capacity() <= SEAL_RECORDS + 1);
        assert!(s.heap_bytes() < 1000 * 20, "{} bytes held", s.heap_bytes());
        // A read of sealed history through `get` is cached, and a change drops the cache.
        assert_eq!(s.cache_bytes(), 0);
        assert_eq!(s.get(0).0, 1);
        assert!(s.cache_bytes() > 0);
        s.insert(1001, "x").unwrap();
        assert_eq!(s.cache_bytes(), 0);
    }

    #[test]
    fn retention_drops_whole_blocks() {
        let mut s = Series::new();
        for ts in 1..=1000 {
            s.insert(ts, &format!("d{ts}")).unwrap();
        }
        assert_eq!(s.remove_before(501), 500);
        assert_eq!(all(&s)[0], (501, "d501".into()));
        assert_eq!(s.remove_oldest(100), 400);
        assert_eq!(s.len(), 100);
        assert_eq!(all(&s)[0], (901, "d901".into()));
        assert_eq!(
            s.data_bytes(),
            (901..=1000).map(|t| format!("d{t}").len()).sum::<usize>()
        );
        s.insert(1001, "new").unwrap();
        assert_eq!(s.remove_oldest(0), 101);
        assert!(s.is_empty());
    }

    #[test]
    fn data_is_stored_escaped_and_read_back_as_sent() {
        let mut s = Series::new();
        for ts in 1..=200 {
            s.insert(ts, &format!("{{\"n\":{ts},\"s\":\"a\\b\tc\"}}"))
                .unwrap();
        }
        assert!(s.sealed_stats().0 > 100);
        for i in [0, 150, 199] {
            let (ts, d) = s.get(i);
            assert_eq!(
                d.wire(),
                format!("{{\\\"n\\\":{ts},\\\"s\\\":\\\"a\\\\b\\tc\\\"}}")
            );
            assert_eq!(d.text(), format!("{{\"n\":{ts},\"s\":\"a\\b\tc\"}}"));
        }
        let (_, lens, data) = s.to_parts();
        assert_eq!(lens[0] as usize, "{\"n\":1,\"s\":\"a\\b\tc\"}".len());
        assert!(data.starts_with("{\"n\":1,\"s\":\"a\\b\tc\"}{\"n\":2,"));
    }

    #[test]
    fn retention_leaves_the_first_block_in_place_until_it_is_all_dead() {
        let mut s = Series::new();
        for ts in 1..=1000 {
            s.insert(ts, &format!("d{ts}")).unwrap();
        }
        let first = s.blocks[0].bytes.as_ptr();
        let blocks = s.blocks.len();
        for ts in 1001..=1030 {
            s.insert(ts, &format!("d{ts}")).unwrap();
            assert_eq!(s.remove_oldest(1000), 1);
        }
        assert_eq!(
            s.blocks[0].bytes.as_ptr(),
            first,
            "the first block was not re-sealed"
        );
        assert_eq!((s.dead, s.len(), s.ts_at(0)), (30, 1000, 31));
        assert_eq!(all(&s)[0], (31, "d31".into()));
        assert_eq!(s.range(i64::MIN, 40), 0..10);
        assert_eq!(
            (s.find(5), s.find(31), s.latest_at(30)),
            (Err(0), Ok(0), None)
        );
        let want: usize = (31..=1030).map(|t| format!("d{t}").len()).sum();
        assert_eq!(s.data_bytes(), want);
        // Steady state: the dead records of at most one block are held.
        for ts in 1031..=3000 {
            s.insert(ts, &format!("d{ts}")).unwrap();
            s.remove_before(ts - 999);
            assert!(s.dead < s.blocks[0].count as usize);
            assert!(s.blocks.len() <= blocks + 1);
        }
        assert_eq!((s.len(), s.ts_at(0)), (1000, 2001));
        // A late record among the dead ones re-seals the first block without them.
        s.insert(5, "late").unwrap();
        assert_eq!(
            (s.dead, s.len(), s.ts_at(0), s.ts_at(1)),
            (0, 1001, 5, 2001)
        );
        let (ts, lens, data) = s.to_parts();
        assert_eq!(all(&Series::from_parts(ts, lens, data).unwrap()), all(&s));
    }
}
