//! A collection: its documents (time series) and its key/value map.

use super::retention::Limits;
use super::series::{Series, SeriesError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// A document whose arena passes this many bytes is "large": while none is, a batch of up to
/// this many bytes cannot take any document past the 4 GiB a document may hold.
const LARGE: usize = (1 << 31) - 1;

/// Aligned to a cache line so that the lock word in front of it (written by every writer)
/// does not share a line with the fields every lookup reads.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Collection {
    pub docs: BTreeMap<String, Series>,
    pub kv: BTreeMap<String, String>,
    /// Set (under this collection's write lock) when the collection leaves the store: a writer
    /// that still holds the handle must look the name up again.
    pub(super) removed: bool,
    /// Changed since the last snapshot (cleared by the snapshotter under the read lock).
    dirty: AtomicBool,
    /// Documents whose arena (live data and garbage) is larger than [`LARGE`]. Written only
    /// when a document crosses that size, so that an insert writes nothing shared but the
    /// lock and its own series.
    large_docs: usize,
    /// Bytes this collection holds, by its own accounting (kept up to date by every change).
    pub(super) held: usize,
    /// The retention limits in force (see `retention`), cached from the store's policies.
    pub(super) limits: Limits,
}

/// What a document costs besides its series' buffers: its name, the series itself in a map
/// node (nodes are about two-thirds full), allocation overheads.
fn doc_bytes(name: &str, series: &Series) -> usize {
    name.len() + 16 + std::mem::size_of::<(String, Series)>() * 3 / 2 + series.heap_bytes()
}

/// What a key/value entry costs: both strings at their length, in a map node.
fn kv_bytes(key: &str, value: &str) -> usize {
    key.len() + value.len() + 32 + std::mem::size_of::<(String, String)>() * 3 / 2
}

impl Collection {
    fn mark_dirty(&mut self) {
        let dirty = self.dirty.get_mut();
        if !*dirty {
            *dirty = true;
        }
    }

    /// Keeps `large_docs` right after a document's arena went from `before` to `after` bytes.
    fn track_size(&mut self, before: usize, after: usize) {
        match (before > LARGE, after > LARGE) {
            (false, true) => self.large_docs += 1,
            (true, false) => self.large_docs -= 1,
            _ => {}
        }
    }

    /// Whether the collection changed since the last snapshot.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Sets or clears the changed mark; callable under a read lock.
    pub fn set_dirty(&self, dirty: bool) {
        self.dirty.store(dirty, Ordering::Release);
    }

    /// A collection exists exactly while it has a document or a key/value entry.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty() && self.kv.is_empty()
    }

    /// Bytes held by the collection's documents and values, by the store's accounting.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Inserts (or replaces) one record.
    pub fn insert(&mut self, doc: &str, ts: i64, data: &str) -> Result<(), SeriesError> {
        self.mark_dirty();
        let (series, held) = match self.docs.get_mut(doc) {
            Some(series) => {
                let held = doc_bytes(doc, series);
                (series, held)
            }
            None => (self.docs.entry(doc.to_owned()).or_default(), 0),
        };
        let before = series.arena_len();
        let result = series.insert(ts, data);
        let after = series.arena_len();
        self.held -= held;
        if series.is_empty() {
            self.docs.remove(doc);
        } else {
            self.held += doc_bytes(doc, series);
        }
        self.track_size(before, after);
        result
    }

    /// Whether inserting `records` `(doc, data)` cannot fail: checked before a batch is applied
    /// so that a batch is all-or-nothing. Cheap unless a document or the batch holds over 2 GiB.
    pub fn can_insert<'r>(
        &self,
        records: impl Iterator<Item = (&'r str, &'r str)> + Clone,
    ) -> bool {
        let limit = u32::MAX as usize;
        let incoming: usize = records.clone().map(|(_, d)| d.len()).sum();
        if self.large_docs == 0 && incoming <= LARGE {
            return true;
        }
        let mut per_doc: BTreeMap<&str, usize> = BTreeMap::new();
        for (doc, data) in records {
            *per_doc.entry(doc).or_default() += data.len();
        }
        per_doc
            .into_iter()
            .all(|(doc, add)| self.docs.get(doc).map_or(0, Series::data_bytes) + add <= limit)
    }

    /// Applies a removal `f` to a document, dropping the document if it ends up empty; the
    /// collection counts as changed only if records went.
    fn edit_doc<R: Default>(&mut self, doc: &str, f: impl FnOnce(&mut Series) -> R) -> R {
        let Some(series) = self.docs.get_mut(doc) else {
            return R::default();
        };
        let (before, count) = (series.arena_len(), series.len());
        self.held -= doc_bytes(doc, series);
        let r = f(series);
        let (after, changed) = (series.arena_len(), series.len() != count);
        if series.is_empty() {
            self.docs.remove(doc);
        } else {
            self.held += doc_bytes(doc, series);
        }
        self.track_size(before, after);
        if changed {
            self.mark_dirty();
        }
        r
    }

    /// Whether `doc` holds a record at `ts`.
    pub fn has_record(&self, doc: &str, ts: i64) -> bool {
        self.docs.get(doc).is_some_and(|s| s.find(ts).is_ok())
    }

    /// Whether `doc` holds a record with `from <= ts <= to`.
    pub fn has_range(&self, doc: &str, from: i64, to: i64) -> bool {
        self.docs
            .get(doc)
            .is_some_and(|s| !s.range(from, to).is_empty())
    }

    pub fn remove_record(&mut self, doc: &str, ts: i64) -> bool {
        self.edit_doc(doc, |s| s.remove(ts))
    }

    pub fn remove_range(&mut self, doc: &str, from: i64, to: i64) -> usize {
        self.edit_doc(doc, |s| s.remove_range(from, to))
    }

    pub fn remove_doc(&mut self, doc: &str) -> bool {
        match self.docs.remove(doc) {
            Some(series) => {
                self.held -= doc_bytes(doc, &series);
                self.track_size(series.arena_len(), 0);
                self.mark_dirty();
                true
            }
            None => false,
        }
    }

    pub fn set_value(&mut self, key: &str, value: &str) {
        self.mark_dirty();
        self.held += kv_bytes(key, value);
        match self.kv.get_mut(key) {
            Some(v) => {
                self.held -= kv_bytes(key, v);
                v.clear();
                v.push_str(value);
                v.shrink_to_fit();
            }
            None => {
                self.kv.insert(key.to_owned(), value.to_owned());
            }
        }
    }

    pub fn remove_value(&mut self, key: &str) -> bool {
        let removed = self.kv.remove(key).is_some_and(|v| {
            self.held -= kv_bytes(key, &v);
            true
        });
        if removed {
            self.mark_dirty();
        }
        removed
    }

    /// Recomputes derived counters after documents were inserted directly (loading).
    pub fn recount(&mut self) {
        self.large_docs = self.docs.values().filter(|s| s.arena_len() > LARGE).count();
        self.held = self
            .docs
            .iter()
            .map(|(d, s)| doc_bytes(d, s))
            .sum::<usize>()
            + self.kv.iter().map(|(k, v)| kv_bytes(k, v)).sum::<usize>();
    }

    /// Records held (for start-up reports).
    pub fn record_count(&self) -> usize {
        self.docs.values().map(Series::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_nothing_leaves_the_collection_clean() {
        let mut c = Collection::default();
        c.insert("d", 5, "x").unwrap();
        c.set_dirty(false);
        assert!(!c.has_record("d", 6) && !c.has_range("d", 6, 9) && !c.has_record("e", 5));
        assert!(!c.remove_record("d", 6));
        assert_eq!(c.remove_range("d", 6, 9), 0);
        assert!(
            !c.is_dirty(),
            "a removal that removed nothing marked the collection changed"
        );
        assert!(c.has_record("d", 5) && c.has_range("d", 1, 5));
        assert!(c.remove_record("d", 5));
        assert!(c.is_dirty());
    }
}
