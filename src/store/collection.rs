//! A collection: its documents (time series) and its key/value map.
//!
//! Held behind the store's `RwLock`. Every change takes its write lock, except an append to an
//! existing document ([`Collection::append`]), which read-holds it and takes the document's own
//! lock; such appends are numbered in one apply order per collection, which readers of several
//! documents use to see one point of it (see `doc.rs`); that machinery is in `append.rs`,
//! this file keeps the collection's data and its bookkeeping.

mod append;

use super::data::Incoming;
use super::doc::Doc;
use super::doc_cache::DocCache;
use super::patterns::Patterns;
use super::retention::Limits;
use super::series::{Series, SeriesError};
use super::version::{Stamp, VersionRef};
use append::{QuietReaders, Shared};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use append::Grown;

/// A document whose arena passes this many bytes is "large": while none is, a batch of up to
/// this many bytes cannot take any document past the 4 GiB a document may hold.
const LARGE: usize = (1 << 31) - 1;

/// Aligned to a cache line so that the lock word in front of it (written by every writer)
/// does not share a line with the fields every lookup reads.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Collection {
    /// Each document in an allocation of its own, so that a remembered selection can hold it
    /// (see `patterns.rs`).
    pub docs: BTreeMap<String, Arc<Doc>>,
    pub kv: BTreeMap<String, String>,
    /// Set (under this collection's write lock) when the collection leaves the store: a writer
    /// that still holds the handle must look the name up again.
    pub(super) removed: bool,
    /// Changed since the last snapshot (cleared by the snapshotter under the read lock).
    dirty: AtomicBool,
    /// Documents whose [`Series::limit_bytes`] is larger than [`LARGE`]. Written only
    /// when a document crosses that size, so that an insert writes nothing shared but the
    /// lock and its own series.
    large_docs: usize,
    /// The retention limits in force (see `retention`), cached from the store's policies.
    pub(super) limits: Limits,
    /// Counts changes of the set of documents (one came or went); appends leave it alone.
    pub(super) doc_version: u64,
    /// Document names selected by patterns, remembered per `doc_version` (see `patterns`).
    pub(super) patterns: Patterns,
    /// Moves on every change of what a read can answer (see `version`).
    pub(super) content: VersionRef,
    /// What appends under the read lock write.
    pub(super) shared: Shared,
    /// What readers of several documents write (see [`Collection::snapshot`]), on a line of
    /// its own.
    quiet: QuietReaders,
}

/// What a document costs besides its series' buffers: its name, its entry in a map node (nodes
/// are about two-thirds full), the document in its own allocation (with the reference counts),
/// allocation overheads.
fn doc_bytes(name: &str, series: &Series) -> usize {
    name.len()
        + 16
        + std::mem::size_of::<(String, Arc<Doc>)>() * 3 / 2
        + std::mem::size_of::<Doc>()
        + 32
        + series.heap_bytes()
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

    /// Keeps `large_docs` right after a document's [`Series::limit_bytes`] went from `before` to
    /// `after`.
    fn track_size(&mut self, before: usize, after: usize) {
        match (before > LARGE, after > LARGE) {
            (false, true) => self.large_docs += 1,
            (true, false) => self.large_docs = self.large_docs.saturating_sub(1),
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
        self.shared.held.load(Ordering::Relaxed)
    }

    /// The content version now (`None` while an append is under way), for a cache of answers.
    pub fn content_stamp(&self) -> Option<Stamp> {
        self.content.stamp()
    }

    /// The content version itself, to check a stamp later without this collection's lock.
    pub fn content_version(&self) -> &VersionRef {
        &self.content
    }

    /// Inserts (or replaces) one record.
    pub fn insert(&mut self, doc: &str, ts: i64, data: &str) -> Result<(), SeriesError> {
        self.insert_incoming(doc, ts, Incoming::Text(data))
    }

    /// [`Collection::insert`] of data as sent or already escaped.
    pub fn insert_incoming(
        &mut self,
        doc: &str,
        ts: i64,
        data: Incoming<'_>,
    ) -> Result<(), SeriesError> {
        self.mark_dirty();
        let (mut series, held) = match self.docs.get(doc) {
            Some(d) => {
                let series = d.exclusive();
                let held = doc_bytes(doc, &series);
                (series, held)
            }
            None => {
                self.patterns.docs_changed(&mut self.doc_version);
                (self.docs.entry(doc.to_owned()).or_default().exclusive(), 0)
            }
        };
        let before = series.limit_bytes();
        let result = series.insert_incoming(ts, data);
        // Per record, but a comparison unless the room must grow (the render is a reader's).
        series.prepare_tail();
        let after = series.limit_bytes();
        let now = (!series.is_empty()).then(|| doc_bytes(doc, &series));
        drop(series);
        *self.shared.held.get_mut() -= held;
        self.settle(doc, now);
        self.track_size(before, after);
        result
    }

    /// Counts a changed document's bytes, `now` (`None`: it is empty, and leaves the map).
    fn settle(&mut self, doc: &str, now: Option<usize>) {
        match now {
            Some(bytes) => *self.shared.held.get_mut() += bytes,
            None => {
                self.docs.remove(doc);
                self.patterns.docs_changed(&mut self.doc_version);
            }
        }
    }

    /// Whether inserting `records` `(doc, data)` cannot fail: checked before a batch is applied
    /// so that a batch is all-or-nothing. Cheap unless a document or the batch holds over 2 GiB.
    pub fn can_insert<'r>(
        &self,
        records: impl Iterator<Item = (&'r str, Incoming<'r>)> + Clone,
    ) -> bool {
        let limit = u32::MAX as usize;
        let incoming: usize = records.clone().map(|(_, d)| d.given_len()).sum();
        // Data sent as text is stored escaped: at most six bytes for each byte sent.
        if self.large_docs == 0 && incoming.saturating_mul(6) <= LARGE {
            return true;
        }
        let mut per_doc: BTreeMap<&str, usize> = BTreeMap::new();
        for (doc, data) in records {
            *per_doc.entry(doc).or_default() += data.stored_len();
        }
        per_doc.into_iter().all(|(doc, add)| {
            self.docs.get(doc).map_or(0, |d| d.read().data_bytes()) + add <= limit
        })
    }

    /// Applies a removal `f` to a document, dropping the document if it ends up empty; the
    /// collection counts as changed only if records went.
    fn edit_doc<R: Default>(&mut self, doc: &str, f: impl FnOnce(&mut Series) -> R) -> R {
        let Some(d) = self.docs.get(doc) else {
            return R::default();
        };
        let mut series = d.exclusive();
        let (before, count) = (series.limit_bytes(), series.len());
        let held = doc_bytes(doc, &series);
        let r = f(&mut series);
        series.prepare_tail();
        let (after, changed) = (series.limit_bytes(), series.len() != count);
        let now = (!series.is_empty()).then(|| doc_bytes(doc, &series));
        drop(series);
        *self.shared.held.get_mut() -= held;
        self.settle(doc, now);
        self.track_size(before, after);
        if changed {
            self.mark_dirty();
        }
        r
    }

    /// The document `name`, looked up in `docs` (the documents the connection found last:
    /// `doc_cache.rs`) before the map of names. The borrow of `self` is the caller's hold of
    /// the collection's lock, which `DocCache::find` relies on.
    pub fn find_doc(&self, docs: &mut DocCache, name: &str) -> Option<&Doc> {
        docs.find(self.doc_version, &self.docs, name)
    }

    /// Whether `doc` holds a record at `ts`.
    pub fn has_record(&self, doc: &str, ts: i64) -> bool {
        self.docs
            .get(doc)
            .is_some_and(|d| d.read().find(ts).is_ok())
    }

    /// Whether `doc` holds a record with `from <= ts <= to`.
    pub fn has_range(&self, doc: &str, from: i64, to: i64) -> bool {
        self.docs
            .get(doc)
            .is_some_and(|d| !d.read().range(from, to).is_empty())
    }

    pub fn remove_record(&mut self, doc: &str, ts: i64) -> bool {
        self.edit_doc(doc, |s| s.remove(ts))
    }

    pub fn remove_range(&mut self, doc: &str, from: i64, to: i64) -> usize {
        self.edit_doc(doc, |s| s.remove_range(from, to))
    }

    pub fn remove_doc(&mut self, doc: &str) -> bool {
        match self.docs.remove(doc) {
            Some(d) => {
                self.patterns.docs_changed(&mut self.doc_version);
                let series = d.exclusive();
                *self.shared.held.get_mut() -= doc_bytes(doc, &series);
                self.track_size(series.limit_bytes(), 0);
                self.mark_dirty();
                true
            }
            None => false,
        }
    }

    pub fn set_value(&mut self, key: &str, value: &str) {
        self.mark_dirty();
        let total = self.shared.held.get_mut();
        *total += kv_bytes(key, value);
        match self.kv.get_mut(key) {
            Some(v) => {
                *total -= kv_bytes(key, v);
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
            *self.shared.held.get_mut() -= kv_bytes(key, &v);
            true
        });
        if removed {
            self.mark_dirty();
        }
        removed
    }

    /// Recomputes derived counters after documents were inserted directly (loading).
    pub fn recount(&mut self) {
        self.large_docs = self
            .docs
            .values()
            .map(|d| d.exclusive().limit_bytes())
            .filter(|&n| n > LARGE)
            .count();
        let docs: usize = self
            .docs
            .iter()
            .map(|(name, d)| doc_bytes(name, &d.exclusive()))
            .sum();
        *self.shared.held.get_mut() =
            docs + self.kv.iter().map(|(k, v)| kv_bytes(k, v)).sum::<usize>();
    }

    /// Records held (for start-up reports).
    pub fn record_count(&self) -> usize {
        self.docs.values().map(|d| d.read().len()).sum()
    }

    /// Drops every document (the collection is leaving the store), as a change of its set of
    /// documents.
    pub(super) fn clear_docs(&mut self) {
        self.docs = BTreeMap::new();
        self.patterns.docs_changed(&mut self.doc_version);
    }

    /// Adds a document loaded from disk (call [`Collection::recount`] afterwards).
    pub fn load_doc(&mut self, name: String, mut series: Series) {
        series.prepare_tail();
        self.patterns.docs_changed(&mut self.doc_version);
        self.docs.insert(name, Arc::new(Doc::new(series)));
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
