//! Remembered document patterns: the names of the documents a `/pattern/` selects, computed
//! once and reused while the collection's set of documents stays the same. The collection
//! counts its document set's changes (`doc_version`, bumped when a document comes or goes, not
//! when records are appended), so a remembered list stays valid under a stream of inserts.
//!
//! Bounded: at most [`MAX_PATTERNS`] lists and [`MAX_BYTES`] of names per collection; a new
//! list pushes out the least recently used ones, and a list larger than the bound is not kept.

use super::collection::Collection;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

/// Lists remembered per collection.
pub const MAX_PATTERNS: usize = 64;
/// Bytes of names (and keys) remembered per collection, counted with a per-name overhead.
pub const MAX_BYTES: usize = 256 * 1024;
/// Bytes counted per name besides its text (its allocation and slot).
const PER_NAME: usize = 32;

/// Document names, in name order.
pub type DocNames = Arc<[Box<str>]>;

#[derive(Debug, Default)]
pub struct Patterns {
    inner: Mutex<Remembered>,
}

#[derive(Debug, Default)]
struct Remembered {
    lists: HashMap<Box<str>, List>,
    /// Counts uses, to find the least recently used list.
    clock: u64,
    bytes: usize,
}

#[derive(Debug)]
struct List {
    /// The collection's `doc_version` the names were computed at.
    version: u64,
    names: DocNames,
    used: u64,
    bytes: usize,
}

impl Remembered {
    fn remove(&mut self, key: &str) {
        if let Some(old) = self.lists.remove(key) {
            self.bytes -= old.bytes;
        }
    }
}

impl Patterns {
    /// The names remembered under `key` at `version`.
    fn get(&self, key: &str, version: u64) -> Option<DocNames> {
        let mut r = self.inner.lock();
        r.clock += 1;
        let now = r.clock;
        let list = r.lists.get_mut(key).filter(|l| l.version == version)?;
        list.used = now;
        Some(list.names.clone())
    }

    /// Remembers `names` under `key` at `version`; lists of older versions go first, then
    /// the least recently used until it fits.
    fn put(&self, key: &str, version: u64, names: DocNames) {
        let bytes = key.len() + PER_NAME + names.iter().map(|n| n.len() + PER_NAME).sum::<usize>();
        if bytes > MAX_BYTES {
            return;
        }
        let mut r = self.inner.lock();
        r.remove(key);
        if r.lists.values().any(|l| l.version != version) {
            r.lists.retain(|_, l| l.version == version);
            r.bytes = r.lists.values().map(|l| l.bytes).sum();
        }
        while r.lists.len() >= MAX_PATTERNS || r.bytes + bytes > MAX_BYTES {
            let Some(oldest) = r
                .lists
                .iter()
                .min_by_key(|(_, l)| l.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            r.remove(&oldest);
        }
        r.clock += 1;
        let used = r.clock;
        r.bytes += bytes;
        r.lists.insert(
            key.into(),
            List {
                version,
                names,
                used,
                bytes,
            },
        );
    }

    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let r = self.inner.lock();
        (r.lists.len(), r.bytes)
    }
}

impl Collection {
    /// The names of the documents the pattern `key` selects, if they were computed since a
    /// document last came or went.
    pub fn remembered_docs(&self, key: &str) -> Option<DocNames> {
        self.patterns.get(key, self.doc_version)
    }

    /// The names of the documents that start with `prefix` and `matches` accepts, remembered
    /// under `key` (the pattern's text, flags included).
    pub fn matching_docs(
        &self,
        key: &str,
        prefix: &str,
        matches: impl Fn(&str) -> bool,
    ) -> DocNames {
        let names: DocNames = self
            .docs
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(name, _)| name.as_str())
            .take_while(|name| name.starts_with(prefix))
            .filter(|name| matches(name))
            .map(Box::from)
            .collect();
        self.patterns.put(key, self.doc_version, names.clone());
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> DocNames {
        n.iter().map(|&s| Box::from(s)).collect()
    }

    #[test]
    fn a_list_is_valid_for_its_version_only() {
        let p = Patterns::default();
        p.put("/a/", 1, names(&["a1", "a2"]));
        assert_eq!(p.get("/a/", 1).as_deref(), Some(&*names(&["a1", "a2"])));
        assert!(p.get("/a/", 2).is_none());
        assert!(p.get("/b/", 1).is_none());
        p.put("/b/", 2, names(&["b"]));
        assert_eq!(p.held().0, 1, "lists of an older version go");
    }

    #[test]
    fn a_flood_of_patterns_stays_bounded_and_keeps_the_used_ones() {
        let p = Patterns::default();
        p.put("/hot/", 0, names(&["h"]));
        for i in 0..10_000 {
            p.put(&format!("/p{i}/"), 0, names(&["x"; 20]));
            assert!(p.get("/hot/", 0).is_some(), "evicted at {i}");
            let (lists, bytes) = p.held();
            assert!(lists <= MAX_PATTERNS && bytes <= MAX_BYTES);
        }
        let long: Vec<String> = (0..MAX_BYTES / PER_NAME).map(|i| format!("d{i}")).collect();
        let long: DocNames = long.iter().map(|s| Box::from(s.as_str())).collect();
        p.put("/big/", 0, long);
        assert!(
            p.get("/big/", 0).is_none(),
            "a list over the bound is not kept"
        );
    }
}
