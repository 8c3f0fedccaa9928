//! One document's records, sorted by timestamp, stored compactly: one contiguous column of
//! 16-byte entries (timestamp and the `(start, len)` span of its data), and the data in one
//! string arena. An append touches the end of two buffers.
//! Appends in time order are O(1); replaced and deleted data becomes garbage in the arena
//! and is compacted away once it is more than half of it.

use std::ops::Range;

/// Why a record could not be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeriesError {
    /// One document's live data would pass 4 GiB (the arena is addressed with 32 bits).
    DocumentTooLarge,
}

/// How much to add to a column of capacity `cap` that needs `need` more: a quarter of it (an
/// amortised O(1) append with little slack), at least `min`.
fn growth(cap: usize, need: usize, min: usize) -> usize {
    (cap / 4).max(need).max(min)
}

/// One record: its timestamp and where its data sits in the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    ts: i64,
    start: u32,
    len: u32,
}

#[derive(Debug, Default, Clone)]
pub struct Series {
    entries: Vec<Entry>,
    /// The newest timestamp (meaningless while empty), kept beside the column's pointer so
    /// that an append decides where the record goes without reading the column: the column's
    /// end is then only written, and a write that misses the cache does not stall.
    last_ts: i64,
    arena: String,
    garbage: usize,
    /// Some record's data may hold a control character, `"` or `\\` (bytes that text formats
    /// escape). Set on insert, cleared only when the series empties; lets readers copy data
    /// verbatim when it is clear.
    special: bool,
}

/// Whether `data` holds a byte below 0x20, `"` or `\\`.
fn has_special_bytes(data: &str) -> bool {
    crate::text::first_escape(data.as_bytes()).is_some()
}

impl Series {
    #[cfg(test)]
    pub fn new() -> Self {
        Series::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The record at position `i` (oldest first).
    pub fn get(&self, i: usize) -> (i64, &str) {
        let e = self.entries[i];
        (e.ts, self.data(e))
    }

    fn data(&self, e: Entry) -> &str {
        let start = e.start as usize;
        &self.arena[start..start + e.len as usize]
    }

    /// Bytes held by the data arena, garbage included.
    pub fn arena_len(&self) -> usize {
        self.arena.len()
    }

    /// True when no record's data holds a control character, `"` or `\\`, so that it can be
    /// written into text formats without escaping.
    pub fn data_is_plain(&self) -> bool {
        !self.special
    }

    /// Bytes of live data.
    pub fn data_bytes(&self) -> usize {
        self.arena.len() - self.garbage
    }

    /// Appends `data` to the arena; the entry for it, with `ts`.
    fn push_data(&mut self, ts: i64, data: &str) -> Result<Entry, SeriesError> {
        let limit = u32::MAX as usize;
        let free = self.arena.capacity() - self.arena.len();
        if free < data.len() {
            self.arena
                .reserve_exact(growth(self.arena.capacity(), data.len() - free, 64));
        }
        if self.arena.len() + data.len() > limit && self.garbage > 0 {
            self.compact();
        }
        if self.arena.len() + data.len() > limit {
            return Err(SeriesError::DocumentTooLarge);
        }
        let entry = Entry {
            ts,
            start: self.arena.len() as u32,
            len: data.len() as u32,
        };
        self.arena.push_str(data);
        self.special = self.special || has_special_bytes(data);
        Ok(entry)
    }

    /// Inserts a record, replacing the data of an existing record with the same timestamp.
    pub fn insert(&mut self, ts: i64, data: &str) -> Result<(), SeriesError> {
        let at = if self.entries.is_empty() || self.last_ts < ts {
            self.entries.len()
        } else {
            match self.find(ts) {
                Ok(i) => {
                    let old_len = self.entries[i].len as usize;
                    self.entries[i] = self.push_data(ts, data)?;
                    self.garbage += old_len;
                    self.maybe_compact();
                    return Ok(());
                }
                Err(i) => i,
            }
        };
        let entry = self.push_data(ts, data)?;
        self.push_entry(at, entry);
        Ok(())
    }

    /// The position of `ts` (`Ok`) or where it would go (`Err`), like a binary search, but
    /// galloping back from the newest record first: late records land near the end (several
    /// writers, a client catching up), and finding their place then costs a few probes in
    /// cache lines the last append touched instead of a search of the whole column.
    pub fn find(&self, ts: i64) -> Result<usize, usize> {
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

    /// Inserts an entry at position `i`, growing the column by a quarter at a time: the
    /// column of a large document stays within ~25 % of its length instead of up to 100 %.
    fn push_entry(&mut self, i: usize, entry: Entry) {
        if self.entries.len() == self.entries.capacity() {
            let add = growth(self.entries.capacity(), 1, 4);
            self.entries.reserve_exact(add);
        }
        if i == self.entries.len() {
            self.last_ts = entry.ts;
            self.entries.push(entry);
        } else {
            self.entries.insert(i, entry);
        }
    }

    /// Positions of the records with `from <= ts <= to`.
    pub fn range(&self, from: i64, to: i64) -> Range<usize> {
        if from > to {
            return 0..0;
        }
        let lo = self.entries.partition_point(|e| e.ts < from);
        let hi = self.entries.partition_point(|e| e.ts <= to);
        lo..hi.max(lo)
    }

    /// Position of the newest record with `ts <= at`. Asking for "now" (at or after the last
    /// record) is the common case and touches one cache line.
    pub fn latest_at(&self, at: i64) -> Option<usize> {
        match self.entries.last() {
            Some(last) if last.ts <= at => Some(self.entries.len() - 1),
            _ => self.entries.partition_point(|e| e.ts <= at).checked_sub(1),
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

    fn remove_positions(&mut self, r: Range<usize>) {
        self.garbage += self.entries[r.clone()]
            .iter()
            .map(|e| e.len as usize)
            .sum::<usize>();
        self.entries.drain(r);
        match self.entries.last() {
            None => *self = Series::default(),
            Some(last) => {
                self.last_ts = last.ts;
                self.maybe_compact();
            }
        }
    }

    fn maybe_compact(&mut self) {
        if self.garbage > 4096 && self.garbage * 2 > self.arena.len() {
            self.compact();
        }
    }

    /// Rewrites the arena with live data only, in record order.
    fn compact(&mut self) {
        let mut arena = String::with_capacity(self.arena.len() - self.garbage);
        for e in &mut self.entries {
            let start = e.start as usize;
            let new_start = arena.len() as u32;
            arena.push_str(&self.arena[start..start + e.len as usize]);
            e.start = new_start;
        }
        self.arena = arena;
        self.garbage = 0;
        self.entries.shrink_to(self.entries.len() * 2);
    }

    /// The series as columns: timestamps, data lengths and the data concatenated in order.
    pub fn to_parts(&self) -> (Vec<i64>, Vec<u32>, String) {
        let mut data = String::with_capacity(self.data_bytes());
        let mut ts = Vec::with_capacity(self.len());
        let mut lens = Vec::with_capacity(self.len());
        for &e in &self.entries {
            data.push_str(self.data(e));
            ts.push(e.ts);
            lens.push(e.len);
        }
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
        let mut entries = Vec::with_capacity(lens.len());
        let mut start = 0usize;
        for (ts, len) in ts.into_iter().zip(lens) {
            let end = start + len as usize;
            if end > data.len() || !data.is_char_boundary(end) {
                return Err("data lengths do not match the data".into());
            }
            entries.push(Entry {
                ts,
                start: start as u32,
                len,
            });
            start = end;
        }
        if start != data.len() {
            return Err("data lengths do not match the data".into());
        }
        Ok(Series {
            last_ts: entries.last().map_or(0, |e| e.ts),
            entries,
            special: has_special_bytes(&data),
            arena: data,
            garbage: 0,
        })
    }

    /// Iterates over every record, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (i64, &str)> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &Series) -> Vec<(i64, String)> {
        s.iter().map(|(t, d)| (t, d.to_string())).collect()
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
        for ts in -2..905 {
            assert_eq!(
                s.find(ts),
                s.entries.binary_search_by_key(&ts, |e| e.ts),
                "ts {ts}"
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
        assert!(s.arena.len() <= 2 * s.data_bytes() + 4096 + 1010);
        assert!(s.iter().all(|(_, d)| d.starts_with("19x")));
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
}
