//! A connection's cache of the documents its appends found last, so that the usual insert
//! finds its document without walking the collection's map of names (a `BTreeMap` compares
//! the name with a key at every step: a dozen `memcmp` calls per lookup in 100 documents).
//!
//! Each entry remembers a document's name, a weak handle of it and the collection's
//! document-set version (`Collection::doc_version`) it was found at. Versions are unique in
//! the process ([`next_doc_version`]): every change of any collection's set of documents takes
//! a new one, and a collection whose set never changed has none (0, never remembered). So an
//! entry whose version is the collection's current one was found in this very collection,
//! with this very set of documents, and the map still holds that document under that name;
//! any other entry is stale and is never used. The handle is weak so that a stale entry does
//! not keep a document that left its collection alive: what it keeps is the document's
//! allocation ([`Doc`] without its series' buffers, `size_of::<Doc>()` plus two counts) until
//! the entry is replaced or the connection closes. A hit reads the document through the weak
//! handle without upgrading it (no write to the reference counts, which every connection
//! appending to the document would pass back and forth).
//!
//! Bounded: [`SLOTS`] entries (two-way set-associative by a hash of the name), allocated on
//! the first append, and names longer than [`MAX_CACHED_NAME`] bytes are not remembered: per
//! connection that appends, at most `SLOTS` × (32 bytes of entry, the name, and a stale
//! entry's document allocation).

use super::doc::Doc;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// Entries per connection: enough for the 100 documents a client typically spreads its
/// records over, with room for the collisions of a two-way cache.
pub const SLOTS: usize = 256;
/// The longest name remembered, in bytes; longer ones are looked up in the map every time.
pub const MAX_CACHED_NAME: usize = 64;

/// The source of document-set versions, unique in the process (0 is never handed out).
static VERSIONS: AtomicU64 = AtomicU64::new(1);

/// A document-set version no collection has had (see the module's comment).
pub(super) fn next_doc_version() -> u64 {
    VERSIONS.fetch_add(1, Ordering::Relaxed)
}

#[derive(Debug)]
struct Entry {
    version: u64,
    name: Box<str>,
    doc: Weak<Doc>,
}

/// One connection's remembered documents (see the module's comment).
#[derive(Debug, Default)]
pub struct DocCache {
    /// [`SLOTS`] slots once the first document is remembered; a name's pair of slots starts
    /// at an even index.
    slots: Vec<Option<Entry>>,
}

/// Eight bytes of `b` from `at` (which the caller keeps within it) as one word; fixed-size
/// reads compile to a load, where a copy of a variable length would call `memcpy`.
fn word(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
        .map_or(0, u64::from_le_bytes)
}

/// Four bytes of `b` from `at`, as [`word`].
fn half(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4)
        .and_then(|w| <[u8; 4]>::try_from(w).ok())
        .map_or(0, |w| u64::from(u32::from_le_bytes(w)))
}

/// The words a name is hashed and compared by: each eight bytes, the last word overlapping
/// the one before when the length is not a multiple of eight (names of one length are
/// compared, so the overlap tells nothing apart that the length does not); shorter names as
/// one or two overlapping halves, or their bytes.
fn words(b: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let n = b.len();
    let (count, short) = match n {
        0..4 => (1, b.iter().fold(0u64, |w, &x| w << 8 | u64::from(x))),
        4..8 => (1, half(b, 0) << 32 | half(b, n - 4)),
        _ => (n.div_ceil(8), 0),
    };
    (0..count).map(move |i| match n {
        0..8 => short,
        _ => word(b, (i * 8).min(n - 8)),
    })
}

/// The first of the two slots `name` may sit in.
fn set_of(name: &str) -> usize {
    // FxHash-style: one multiply per word; the top bits are the best mixed.
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let h = words(name.as_bytes()).fold(name.len() as u64, |h, w| {
        (h.rotate_left(5) ^ w).wrapping_mul(K)
    });
    // SLOTS / 2 sets of two.
    ((h >> (64 - (SLOTS / 2).trailing_zeros())) as usize) * 2
}

/// Whether two names are equal, word by word without a call (names here are short).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && words(a.as_bytes()).eq(words(b.as_bytes()))
}

impl DocCache {
    /// The document `name` of a collection whose document set is at `version` and whose map
    /// is `docs`: from the cache when it holds it at that version, else from the map (and
    /// then remembered). `None` when the collection has no such document.
    pub(super) fn find<'a>(
        &mut self,
        version: u64,
        docs: &'a BTreeMap<String, Arc<Doc>>,
        name: &str,
    ) -> Option<&'a Doc> {
        if version == 0 || name.len() > MAX_CACHED_NAME {
            return docs.get(name).map(|d| &**d);
        }
        let set = set_of(name);
        let hit = (set..set + 2).find(|&i| {
            self.slots.get(i).is_some_and(|e| {
                e.as_ref()
                    .is_some_and(|e| e.version == version && same(&e.name, name))
            })
        });
        let entry = hit.and_then(|i| self.slots.get(i)?.as_ref());
        // Alive by the version alone; the count (on the line the append reads next) is a
        // second guard, so that a stale entry could at worst be a miss.
        if let Some(entry) = entry.filter(|e| e.doc.strong_count() > 0) {
            // SAFETY: the entry's version is the collection's current one, so (module comment)
            // `docs` holds this document under `name` now, by a strong handle; and `docs` is
            // borrowed for 'a, during which the collection's set of documents cannot change
            // (that takes its write lock, and the caller holds its read lock for 'a). So the
            // document is alive for 'a.
            return Some(unsafe { &*entry.doc.as_ptr() });
        }
        let doc = docs.get(name)?;
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, || None);
        }
        // The newest in the first slot; the one it displaces moves to the second unless
        // that one is current and the displaced one stale.
        let first = self.slots[set].take();
        let keep_second = self.slots[set + 1]
            .as_ref()
            .is_some_and(|e| e.version == version)
            && first.as_ref().is_none_or(|e| e.version != version);
        if !keep_second {
            self.slots[set + 1] = first;
        }
        self.slots[set] = Some(Entry {
            version,
            name: name.into(),
            doc: Arc::downgrade(doc),
        });
        Some(doc)
    }

    /// Documents remembered (for tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn map(names: &[&str]) -> BTreeMap<String, Arc<Doc>> {
        names
            .iter()
            .map(|n| (n.to_string(), Arc::new(Doc::default())))
            .collect()
    }

    #[test]
    fn a_document_is_found_again_only_at_the_version_it_was_found_at() {
        let docs = map(&["a", "b"]);
        let mut cache = DocCache::default();
        let v = next_doc_version();
        let a: *const Doc = cache.find(v, &docs, "a").unwrap();
        assert!(std::ptr::eq(a, &*docs["a"]));
        assert_eq!(cache.len(), 1);
        // Found again from the cache: the map given is not consulted.
        let empty = BTreeMap::new();
        let again = cache.find(v, &empty, "a").unwrap();
        assert!(std::ptr::eq(again, a), "a hit gave another document");
        // Another version (another set of documents, or another collection) misses.
        let w = next_doc_version();
        assert!(cache.find(w, &empty, "a").is_none());
        let other = map(&["a"]);
        let found = cache.find(w, &other, "a").unwrap();
        assert!(std::ptr::eq(found, &*other["a"]), "a stale entry was used");
        assert!(cache.find(w, &other, "b").is_none());
    }

    #[test]
    fn a_stale_entry_does_not_keep_its_document() {
        let mut docs = map(&["a"]);
        let mut cache = DocCache::default();
        let v = next_doc_version();
        assert!(cache.find(v, &docs, "a").is_some());
        let weak = Arc::downgrade(&docs["a"]);
        docs.clear();
        assert_eq!(weak.strong_count(), 0, "the cache kept the document alive");
        assert!(cache.find(v, &docs, "a").is_none(), "a dead entry was used");
    }

    #[test]
    fn version_zero_and_long_names_are_never_remembered() {
        let long = "x".repeat(MAX_CACHED_NAME + 1);
        let docs = map(&["a", &long]);
        let mut cache = DocCache::default();
        assert!(cache.find(0, &docs, "a").is_some());
        let v = next_doc_version();
        assert!(cache.find(v, &docs, &long).is_some());
        assert_eq!(cache.len(), 0);
        assert!(next_doc_version() > v && v > 0);
    }

    #[test]
    fn the_cache_stays_within_its_slots_and_finds_every_document() {
        let names: Vec<String> = (0..3 * SLOTS).map(|i| format!("doc-{i}")).collect();
        let docs: BTreeMap<String, Arc<Doc>> = names
            .iter()
            .map(|n| (n.clone(), Arc::new(Doc::default())))
            .collect();
        let mut cache = DocCache::default();
        let v = next_doc_version();
        for _ in 0..2 {
            for n in &names {
                let d = cache.find(v, &docs, n).unwrap();
                assert!(std::ptr::eq(d, &*docs[n]), "{n} found the wrong document");
            }
        }
        assert!(cache.len() <= SLOTS);
        assert_eq!(cache.slots.len(), SLOTS);
    }

    #[test]
    fn names_are_equal_exactly_when_their_bytes_are() {
        let names = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "abc",
            "abd",
            "abcd",
            "abce",
            "bbcd",
            "abcdefg",
            "abcdefh",
            "bbcdefg",
            "abcdefgh",
            "abcdefgi",
            "abcdefghi",
            "abcdefghj",
            "bbcdefghi",
            "0123456789abcdef",
            "0123456789abcdeg",
            "1123456789abcdef",
            "0123456789abcdefX",
        ];
        for a in names {
            for b in names {
                assert_eq!(same(a, b), a == b, "{a:?} and {b:?}");
            }
        }
        // Differences in every position of a long name.
        let long = "x".repeat(MAX_CACHED_NAME);
        for i in 0..long.len() {
            let mut other = long.clone().into_bytes();
            other[i] = b'y';
            assert!(!same(&long, std::str::from_utf8(&other).unwrap()), "at {i}");
        }
    }

    #[test]
    fn a_hundred_names_mostly_stay_remembered() {
        let names: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        let sets: std::collections::HashMap<usize, usize> =
            names.iter().fold(Default::default(), |mut m, n| {
                *m.entry(set_of(n)).or_default() += 1;
                m
            });
        // Two ways: only names in a set of three or more can push each other out.
        let crowded: usize = sets.values().filter(|&&c| c > 2).sum();
        assert!(crowded < 10, "{crowded} of 100 names share a crowded set");
    }
}
