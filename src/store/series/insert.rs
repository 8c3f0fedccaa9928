//! Storing records: the plain block's column and arena (grown toward the size of a full block,
//! compacted when replaced data piles up), sealing it when full, and records older than the
//! plain block put into the sealed block they belong to (split when it grows too large).

use super::block::{Block, Decoded};
use super::{Entry, Series, SeriesError, SEAL_BYTES, SEAL_RECORDS, SPLIT_RECORDS};
use crate::store::Incoming;
use crate::text;

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
        crate::short_copy::push_str(&mut self.arena, data);
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

    /// [`Series::insert`] of data as sent or already escaped; both store the same bytes.
    pub fn insert_incoming(&mut self, ts: i64, data: Incoming<'_>) -> Result<(), SeriesError> {
        match data {
            Incoming::Text(text) => self.insert(ts, text),
            Incoming::Escaped(body) => {
                // An escaped body holds a backslash exactly where the data held a byte to escape.
                if body.as_bytes().contains(&b'\\') {
                    self.special = true;
                }
                self.insert_stored(ts, body)
            }
        }
    }

    /// [`Series::insert`] of data already escaped.
    fn insert_stored(&mut self, ts: i64, data: &str) -> Result<(), SeriesError> {
        // Every insert funnels through here: the rendered newest record no longer holds.
        self.forget_tail();
        self.plain_text_stale();
        // A record newer than every plain one (the usual append) is told from `last_ts` alone:
        // the column, last written by the document's previous change, is left unread.
        let newest = !self.entries.is_empty() && self.last_ts < ts;
        let in_plain = newest
            || self.entries.first().is_some_and(|first| ts >= first.ts)
            || self.blocks.last().is_none_or(|b| b.last_ts < ts);
        if !in_plain {
            self.drop_caches();
            return self.insert_sealed(ts, data);
        }
        self.drop_caches_but_tail();
        let at = if self.entries.is_empty() || self.last_ts < ts {
            self.entries.len()
        } else {
            match self.find_plain(ts) {
                Ok(i) => {
                    self.plain_text_cut(i);
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
                Err(i) => {
                    self.plain_text_cut(i);
                    i
                }
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
            let a = Block::seal(half, self.special, |i| n.get(i));
            let b = Block::seal(n.len() - half, self.special, |i| n.get(half + i));
            self.replace_blocks(bi..bi + 1, vec![a, b]);
        } else {
            self.replace_blocks(bi..bi + 1, vec![Block::seal_decoded(&n, self.special)]);
        }
        Ok(())
    }

    /// Seals every plain record but the newest (so that "latest" stays plain).
    fn seal_plain(&mut self) {
        let n = self.entries.len() - 1;
        if n == 0 {
            return;
        }
        let mut block = Block::seal(n, self.special, |i| {
            let e = self.entries[i];
            (e.ts, self.data(e))
        });
        block.pos = self.sealed;
        self.sealed += n;
        self.plain_text_cut(0);
        self.drop_cache_leaving_tail();
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

    pub(super) fn maybe_compact(&mut self) {
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
}
