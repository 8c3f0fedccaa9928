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
//! The newest `cache::TAIL_CACHED` sealed blocks are the exception: `scan` keeps them decoded in
//! that cache (while the process holds less than `cache::TAIL_BUDGET` of decoded blocks), and
//! appends, which leave sealed blocks alone, keep their caches. So a page of the newest
//! records (`qdoc` with `reverse` and a `limit`), which reaches past the plain block into the
//! newest sealed one or two, decodes them once rather than at every request.
//!
//! Data is kept escaped, as the body of its JSON string (see [`Data`]): a response copies it.
//! The newest record is also kept rendered as the end of a `qry` member, by the first quiet
//! reader after a change (`tail.rs`); every change empties it first.
//!
//! Retention (dropping the oldest records: any removal that starts at the first record) is
//! lazy: whole blocks are dropped without decoding, and the records it takes from the first
//! sealed block are only counted as dead (`dead`, a floor under which reads do not look) until
//! the whole block is dead and goes. So a document under a retention policy holds at most one
//! block of dead records, and a drop never re-seals. A change that would touch the dead records
//! (a late record or a removal inside the first block) first re-seals that block without them.

mod block;
mod cache;
mod claim;
mod insert;
mod parts;
mod plain_text;
mod quotes;
mod removal;
mod rendered;
mod scan;
pub use scan::RecordSink;
mod tail;
#[cfg(test)]
mod tests;
mod varint;

use super::data::Data;
use super::prefetch;
use block::Block;
use std::ops::Range;
use std::sync::atomic::AtomicUsize;

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
    /// The newest record rendered as the end of a `qry` member, by readers (see `tail.rs`).
    /// Every change of the records empties it.
    tail: tail::Tail,
    /// The plain block's records rendered as an answer writes them, by readers (see
    /// `plain_text.rs`).
    plain_text: plain_text::PlainText,
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
            tail: self.tail.clone(),
            plain_text: self.plain_text.clone(),
        }
    }
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
    ///
    /// Read from `last_ts` rather than the column: an append asks this first, and the column's
    /// end, written by the document's previous append, is usually no longer in this core's
    /// cache (a load that misses there stalls; the append's own writes to the column do not).
    pub fn newest_ts(&self) -> Option<i64> {
        if self.entries.is_empty() {
            return self.blocks.last().map(|b| b.last_ts);
        }
        debug_assert_eq!(self.entries.last().map(|e| e.ts), Some(self.last_ts));
        Some(self.last_ts)
    }

    /// The record at position `i` (oldest first). Positions in sealed history decode their
    /// block into a cache kept until the document changes; prefer [`Series::scan`] for runs.
    pub fn get(&self, i: usize) -> (i64, Data<'_>) {
        let (ts, body) = self.get_stored(i + self.dead);
        (ts, Data::new(body, self.special))
    }

    /// The newest record with `ts <= at`: for "now" (at or after the last record, the common
    /// case) straight from the plain block's last entry.
    ///
    /// Inlined: a reader of many documents calls it for each, and its answer returned through
    /// memory (a one-byte flag written, then read back as part of a wider load) stalled the
    /// caller on every document.
    #[inline(always)]
    pub fn latest(&self, at: i64) -> Option<(i64, Data<'_>)> {
        match self.entries.last() {
            Some(&e) if e.ts <= at => Some((e.ts, Data::new(self.data(e), self.special))),
            _ => self.latest_before(at),
        }
    }

    /// [`Series::latest`] for a time before the newest record.
    #[inline(never)]
    fn latest_before(&self, at: i64) -> Option<(i64, Data<'_>)> {
        Some(self.get(self.latest_at(at)?))
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
        let bi = self.block_of(i);
        self.cached(bi).get(i - self.blocks[bi].pos)
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

    /// Asks the CPU to bring in the lines the next append writes (the plain column's end and
    /// the arena's): they were last written by the document's previous change, usually long
    /// ago, and an append can do its other work (locks, the log entry) while they arrive.
    pub fn prefetch_tail(&self) {
        prefetch::line(self.entries.as_ptr_range().end.cast());
        prefetch::line(self.arena.as_bytes().as_ptr_range().end);
    }

    /// Asks the CPU for the line of the plain block's newest entry, which [`Series::latest`]
    /// for "now" reads first (a reader of many documents asks a few documents ahead).
    pub fn prefetch_newest_entry(&self) {
        prefetch::line(
            self.entries
                .as_ptr_range()
                .end
                .cast::<u8>()
                .wrapping_sub(std::mem::size_of::<Entry>()),
        );
    }

    /// Asks the CPU for the first line of the newest record's data, which [`Series::latest`]
    /// for "now" copies (its entry should be in the cache by now, see
    /// [`Series::prefetch_newest_entry`]).
    /// With the newest record rendered (see `tail.rs`), the first line of that instead.
    pub fn prefetch_newest_data(&self) {
        if let Some(tail) = self.tail_ptr() {
            prefetch::line(tail);
        } else if let Some(e) = self.entries.last() {
            prefetch::line(self.arena.as_ptr().wrapping_add(e.start as usize));
        }
    }

    /// Bytes held by the data arena, garbage included, and by sealed blocks.
    pub fn arena_len(&self) -> usize {
        self.arena.len() + self.sealed_bytes
    }

    /// What the 4 GiB bounds of a document apply to: the larger of its arena (garbage and
    /// sealed blocks as stored: offsets into it are 32-bit) and its live data as stored
    /// (escaped and uncompressed: the limit a document's data is held to). Compressed, a
    /// document's sealed history can be far smaller than the data it holds.
    pub fn limit_bytes(&self) -> usize {
        self.arena_len().max(self.live_bytes)
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
        plain + allocs * ALLOC_OVERHEAD + self.sealed_bytes + self.tail.heap_bytes()
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

    /// Iterates over every record, oldest first (sealed blocks through the decoded cache).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (i64, Data<'_>)> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Records in sealed blocks, and the number of blocks (for tests and reports).
    pub fn sealed_stats(&self) -> (usize, usize) {
        (self.sealed - self.dead, self.blocks.len())
    }
}
