//! Remembered document selections: the documents a `/pattern/` selects (and the whole set of
//! documents, for `qry` without `doc`), computed once and reused while the collection's set of
//! documents stays the same. The collection counts its document set's changes (`doc_version`,
//! bumped when a document comes or goes, not when records are appended), so a remembered list
//! stays valid under a stream of inserts.
//!
//! A list holds the documents themselves (their `Arc` handles), not their names: a reader
//! goes straight to each document instead of looking 100 names up in the collection's map,
//! which on 1,000 documents was most of a pattern query's work (each lookup compares the name
//! with a dozen keys, each behind a pointer of its own). Positions in the map would not do: a
//! `BTreeMap` has no positional access, and walking to the positions passes every entry. The
//! names are kept escaped, as the member keys of the answer (like records' data), each inside
//! the head of its `qry` member (`"name":{"ts":`), in one buffer. Every list goes whenever the set of documents changes ([`Patterns::docs_changed`],
//! under the collection's write lock), so a remembered list never holds a document that has
//! left the map.
//!
//! Bounded: at most [`MAX_PATTERNS`] lists and [`MAX_BYTES`] of names per collection; a new
//! list pushes out the least recently used ones, and a list larger than the bound is not kept.

use super::collection::Collection;
use super::doc::Doc;
use super::doc_cache::next_doc_version;
use crate::text;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

/// Lists remembered per collection.
pub const MAX_PATTERNS: usize = 64;
/// Bytes of names (and keys) remembered per collection, counted with a per-name overhead.
pub const MAX_BYTES: usize = 256 * 1024;
/// Bytes counted per name besides its text (its handle and its end in the buffer).
const PER_NAME: usize = 32;
/// The key of the list of every document (a pattern's text always starts with `/`).
const ALL: &str = "";

/// Selected documents, in name order: each with its name escaped as inside a JSON string,
/// kept as the head of its `qry` member (`"name":{"ts":`, see [`MEMBER_OPEN`] and
/// [`MEMBER_CLOSE`]) so that a quiet `qry` copies it in one piece (9 bytes more a document,
/// counted in the selection's size).
#[derive(Debug, Default)]
pub struct Selection {
    /// The escaped names, one after another, each inside its member head.
    names: String,
    /// Each document and the end of its member head in `names`.
    docs: Vec<(Arc<Doc>, u32)>,
}

/// What a member head holds before the escaped name.
pub const MEMBER_OPEN: &str = "\"";
/// What a member head holds after the escaped name: the name's closing quote and colon, and
/// the opening of the record up to its timestamp.
pub const MEMBER_CLOSE: &str = "\":{\"ts\":";

impl Selection {
    fn push(&mut self, name: &str, doc: &Arc<Doc>) {
        self.names.push_str(MEMBER_OPEN);
        text::escape_into_string(&mut self.names, name);
        self.names.push_str(MEMBER_CLOSE);
        self.docs.push((doc.clone(), self.names.len() as u32));
    }

    /// The documents with their escaped names, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Doc)> + '_ {
        let mut start = 0;
        self.docs.iter().map(move |(doc, end)| {
            let end = *end as usize;
            let name = self
                .names
                .get(start + MEMBER_OPEN.len()..end - MEMBER_CLOSE.len())
                .unwrap_or_default();
            start = end;
            (name, &**doc)
        })
    }

    /// The member heads one after another, and each document with the end of its head.
    pub(super) fn parts(&self) -> (&str, &[(Arc<Doc>, u32)]) {
        (&self.names, &self.docs)
    }

    fn bytes(&self, key: &str) -> usize {
        key.len() + PER_NAME + self.names.len() + self.docs.len() * PER_NAME
    }
}

/// A remembered selection, shared by the readers using it.
pub type DocNames = Arc<Selection>;

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
    /// The `doc_version` at which every document was last read without a list: the list of
    /// every document is made at the second such read of one version, so that a collection
    /// whose documents keep coming and going does not make one per query.
    all_missed: Option<u64>,
}

#[derive(Debug)]
struct List {
    /// The collection's `doc_version` the selection was made at.
    version: u64,
    docs: DocNames,
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
    /// The selection remembered under `key` at `version`.
    fn get(&self, key: &str, version: u64) -> Option<DocNames> {
        let mut r = self.inner.lock();
        r.clock += 1;
        let now = r.clock;
        let list = r.lists.get_mut(key).filter(|l| l.version == version)?;
        list.used = now;
        Some(list.docs.clone())
    }

    /// Remembers `docs` under `key` at `version`; lists of older versions go first, then
    /// the least recently used until it fits.
    fn put(&self, key: &str, version: u64, docs: DocNames) {
        let bytes = docs.bytes(key);
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
                docs,
                used,
                bytes,
            },
        );
    }

    /// Records that the set of documents changed (under the collection's write lock): gives
    /// `version` a new value, unique in the process (see `doc_cache.rs`), and drops every list,
    /// and with it every handle of a document that may have left.
    pub(super) fn docs_changed(&mut self, version: &mut u64) {
        *version = next_doc_version();
        let r = self.inner.get_mut();
        if !r.lists.is_empty() {
            r.lists.clear();
            r.bytes = 0;
        }
    }

    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let r = self.inner.lock();
        (r.lists.len(), r.bytes)
    }
}

impl Collection {
    /// The documents the pattern `key` selects, if they were computed since a document last
    /// came or went.
    pub fn remembered_docs(&self, key: &str) -> Option<DocNames> {
        self.patterns.get(key, self.doc_version)
    }

    /// The documents whose names start with `prefix` and that `matches` accepts, remembered
    /// under `key` (the pattern's text, flags included).
    pub fn matching_docs(
        &self,
        key: &str,
        prefix: &str,
        matches: impl Fn(&str) -> bool,
    ) -> DocNames {
        let mut selection = Selection::default();
        for (name, doc) in self
            .docs
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(prefix))
            .filter(|(name, _)| matches(name))
        {
            selection.push(name, doc);
        }
        let selection = Arc::new(selection);
        self.patterns.put(key, self.doc_version, selection.clone());
        selection
    }

    /// Every document, remembered like a pattern's selection; `None` the first time a version
    /// of the set of documents is read (the caller reads the map then).
    pub fn all_docs(&self) -> Option<DocNames> {
        let version = self.doc_version;
        if let Some(all) = self.patterns.get(ALL, version) {
            return Some(all);
        }
        if self.docs.len() * PER_NAME > MAX_BYTES {
            return None;
        }
        {
            let mut r = self.patterns.inner.lock();
            if r.all_missed != Some(version) {
                r.all_missed = Some(version);
                return None;
            }
        }
        let mut selection = Selection::default();
        for (name, doc) in &self.docs {
            selection.push(name, doc);
        }
        let selection = Arc::new(selection);
        self.patterns.put(ALL, version, selection.clone());
        Some(selection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::RwLock;

    /// A selection of fresh documents named `n`.
    fn names(n: &[&str]) -> DocNames {
        let mut s = Selection::default();
        for name in n {
            s.push(name, &Arc::default());
        }
        Arc::new(s)
    }

    fn listed(s: &Selection) -> Vec<&str> {
        s.iter().map(|(name, _)| name).collect()
    }

    fn collection(docs: &[&str]) -> Collection {
        let mut c = Collection::default();
        for (i, d) in docs.iter().enumerate() {
            c.insert(d, 1, &format!("{d}-{i}")).unwrap();
        }
        c
    }

    /// The newest record's data of a selected document, as sent.
    fn newest(doc: &Doc) -> String {
        doc.read().latest(i64::MAX).unwrap().1.text().into_owned()
    }

    #[test]
    fn a_list_is_valid_for_its_version_only() {
        let p = Patterns::default();
        p.put("/a/", 1, names(&["a1", "a2"]));
        assert_eq!(listed(&p.get("/a/", 1).unwrap()), ["a1", "a2"]);
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
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        p.put("/big/", 0, names(&long));
        assert!(
            p.get("/big/", 0).is_none(),
            "a list over the bound is not kept"
        );
    }

    #[test]
    fn each_name_is_kept_inside_its_member_head() {
        let s = names(&["a\"1", ""]);
        let (heads, docs) = s.parts();
        assert_eq!(heads, r#""a\"1":{"ts":"":{"ts":"#);
        let ends: Vec<u32> = docs.iter().map(|(_, end)| *end).collect();
        assert_eq!(ends, [13, 22]);
        assert_eq!(listed(&s), ["a\\\"1", ""]);
    }

    #[test]
    fn names_are_kept_escaped() {
        let c = collection(&["q\"x", "q\\y", "qz"]);
        let s = c.matching_docs("/^q/", "q", |_| true);
        assert_eq!(listed(&s), ["q\\\"x", "q\\\\y", "qz"]);
        assert_eq!(newest(s.iter().next().unwrap().1), "q\"x-0");
    }

    #[test]
    fn handles_stay_valid_after_a_document_goes_and_comes_back() {
        let mut c = collection(&["a1", "a2", "b1"]);
        let old = c.matching_docs("/^a/", "a", |_| true);
        assert!(Arc::ptr_eq(&c.remembered_docs("/^a/").unwrap(), &old));
        assert_eq!(
            Arc::strong_count(&c.docs["a2"]),
            2,
            "the map and the selection"
        );
        assert_eq!(Arc::strong_count(&old), 2, "remembered, and `old`");
        assert!(c.remove_doc("a1"));
        assert!(
            c.remembered_docs("/^a/").is_none(),
            "the set of documents changed"
        );
        assert_eq!(Arc::strong_count(&old), 1, "the remembered list went");
        // A reader still holding the old selection reads the document as it was.
        let (name, gone) = old.iter().next().unwrap();
        assert_eq!((name, newest(gone).as_str()), ("a1", "a1-0"));
        c.insert("a1", 2, "again").unwrap();
        let new = c.matching_docs("/^a/", "a", |_| true);
        assert_eq!(listed(&new), ["a1", "a2"]);
        let (_, back) = new.iter().next().unwrap();
        assert_eq!(newest(back), "again");
        assert!(
            !std::ptr::eq(back, gone),
            "a new document, not the one that went"
        );
        assert!(std::ptr::eq(back, &*c.docs["a1"]));
        // Appends keep the list.
        assert!(c
            .append(
                &mut crate::store::DocCache::default(),
                "a2",
                [(9, "more")].into_iter(),
                || Ok::<_, SeriesError>(()),
                |()| Ok(())
            )
            .unwrap()
            .is_ok());
        let kept = c.remembered_docs("/^a/").unwrap();
        assert!(Arc::ptr_eq(&kept, &new));
        assert_eq!(newest(kept.iter().nth(1).unwrap().1), "more");
        drop((old, new, kept));
        assert_eq!(Arc::strong_count(&c.docs["a1"]), 2);
    }

    #[test]
    fn every_document_is_remembered_at_the_second_read_of_a_version() {
        let mut c = collection(&["d1", "d2"]);
        assert!(
            c.all_docs().is_none(),
            "the first read goes through the map"
        );
        let all = c.all_docs().unwrap();
        assert_eq!(listed(&all), ["d1", "d2"]);
        assert!(Arc::ptr_eq(&c.all_docs().unwrap(), &all));
        c.insert("d0", 1, "x").unwrap();
        assert!(c.all_docs().is_none());
        assert_eq!(listed(&c.all_docs().unwrap()), ["d0", "d1", "d2"]);
        assert!(c.remove_record("d1", 1), "d1 empties and goes");
        assert!(c.all_docs().is_none());
        assert_eq!(listed(&c.all_docs().unwrap()), ["d0", "d2"]);
    }

    use super::super::series::SeriesError;

    #[test]
    fn readers_see_the_documents_of_the_map_while_documents_come_and_go() {
        let c = Arc::new(RwLock::new(collection(&["s0", "s1", "t0"])));
        let writer = {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    let name = format!("s{}", 2 + i % 7);
                    let mut c = c.write();
                    if !c.remove_doc(&name) {
                        c.insert(&name, i, &name).unwrap();
                    }
                }
            })
        };
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    let mut hits = 0;
                    for _ in 0..2_000 {
                        let c = c.read();
                        let sel = match c.remembered_docs("/^s/") {
                            Some(sel) => {
                                hits += 1;
                                sel
                            }
                            None => c.matching_docs("/^s/", "s", |_| true),
                        };
                        let want: Vec<&String> =
                            c.docs.keys().filter(|n| n.starts_with('s')).collect();
                        assert_eq!(listed(&sel), want);
                        for (name, doc) in sel.iter() {
                            assert!(std::ptr::eq(doc, &*c.docs[name]), "{name}");
                            assert!(newest(doc).starts_with(name));
                        }
                    }
                    hits
                })
            })
            .collect();
        writer.join().unwrap();
        let hits: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(hits > 0, "no remembered list was ever used");
    }
}
