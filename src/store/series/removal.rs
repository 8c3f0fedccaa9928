//! Removing records: single records, ranges, and retention's drops from the front (lazy: whole
//! blocks go undecoded and the first block's dropped records are only counted dead, see the
//! notes of [`super`]).

use super::block::{Block, Decoded};
use super::Series;
use std::ops::Range;

impl Series {
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
        self.forget_tail();
        self.plain_text_cut(0);
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
    pub(super) fn purge_dead(&mut self) {
        let dead = self.dead;
        if dead == 0 {
            return;
        }
        let mut d = Decoded::default();
        self.blocks[0].decode(&mut d);
        let block = Block::seal(d.len() - dead, self.special, |i| d.get(dead + i));
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
                new.push(Block::seal_decoded(&kept, self.special));
            }
            self.replace_blocks(first..last + 1, new);
        }
    }
}
