//! Pure in-memory data structures: no I/O, no JSON. The store maps collection names to
//! collections, each behind its own lock; the outer map's lock is held only long enough to
//! find, create or remove a collection. Inside a collection each document has a lock of its
//! own, for appends that only read-hold the collection's (see `doc.rs`).

mod collection;
mod data;
mod doc;
mod doc_cache;
mod latest;
mod lock;
mod patterns;
mod prefetch;
mod retention;
mod series;
mod version;

pub use collection::{Collection, Grown};
pub use data::{Data, Incoming};
pub use doc::{Current, Doc, InView};
pub use doc_cache::DocCache;
pub use latest::Newest;
pub use patterns::DocNames;
pub use retention::{cut_off, Limits, Policies, Policy};
pub use series::{RecordSink, Series, SeriesError};
pub use version::{Stamp, VersionRef};

use parking_lot::RwLock;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const MIB: usize = 1024 * 1024;

/// Bytes a collection costs besides its documents and values, counted against the memory
/// limit with its name while it is in the store: the collection itself, its lock and handle,
/// its entry in the map and what an empty collection allocates. Measured: a store of one
/// `sval` per collection, or one record per collection, held ~1.1–1.2 KiB of RSS per
/// collection more than the documents and values count; without it, a client creating
/// collections reached 13× `--max-memory` before a refusal.
pub const PER_COLLECTION: usize = 1280;

/// What a collection of that name costs besides its content (see [`PER_COLLECTION`]).
fn collection_overhead(name: &str) -> usize {
    PER_COLLECTION + name.len()
}

/// The store holds its memory limit: writes that add data are refused until memory is freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryFull {
    pub held: usize,
    pub limit: usize,
}

impl fmt::Display for MemoryFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory limit reached: the store holds {} MiB of its {} MiB limit",
            self.held / MIB,
            self.limit.div_ceil(MIB)
        )
    }
}

pub type CollectionRef = Arc<RwLock<Collection>>;

/// How many collection handles a [`Handles`] keeps.
const RECENT: usize = 4;

/// Handles of the collections one connection used last, so that its next requests on them skip
/// the store's map: the map's lock and each handle's reference count are written by every
/// connection, and on a busy server those shared cache lines cost more than the work itself.
/// A cached handle whose collection has left the store holds an empty collection (removal
/// empties it) and is dropped at its next use, under the collection's lock. Beside them, the
/// documents the connection's appends found last (`doc_cache.rs`).
#[derive(Default)]
pub struct Handles {
    recent: Vec<(String, CollectionRef)>,
    docs: DocCache,
}

impl Handles {
    /// The handle of `name`, from the cache or else from the store (then cached).
    fn find(&mut self, store: &Store, name: &str) -> Option<&CollectionRef> {
        self.find_with_docs(store, name).map(|(handle, _)| handle)
    }

    /// [`Handles::find`], and the connection's remembered documents beside it.
    fn find_with_docs(
        &mut self,
        store: &Store,
        name: &str,
    ) -> Option<(&CollectionRef, &mut DocCache)> {
        let i = match self.recent.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                let handle = store.get(name)?;
                self.recent.truncate(RECENT - 1);
                self.recent.insert(0, (name.to_owned(), handle));
                0
            }
        };
        Some((&self.recent[i].1, &mut self.docs))
    }

    fn forget(&mut self, name: &str) {
        self.recent.retain(|(n, _)| n != name);
    }
}

/// Sizes of the whole store, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    pub collections: usize,
    pub documents: usize,
    pub records: usize,
    /// Record data (arenas, garbage included), 16 bytes of index per record, document names
    /// and key/value entries.
    pub bytes: usize,
}

#[derive(Default)]
pub struct Store {
    collections: RwLock<BTreeMap<String, CollectionRef>>,
    /// Bytes the collections hold (their own accounting, see [`Collection::held_bytes`]).
    held: AtomicUsize,
    /// `--max-memory` in bytes; 0 = no limit.
    limit: AtomicUsize,
    /// Bytes allocated or freed by the store since free memory was last given back.
    churn: AtomicUsize,
    /// Retention policies by collection name (they outlive the collections).
    policies: Policies,
}

/// Gives free memory inside the allocator's heaps back to the system. Long-lived blocks end up
/// between the short-lived buffers of requests, and glibc returns only the top of a heap by
/// itself: without this, RSS grows to several times what the store holds.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl Store {
    pub fn new() -> Self {
        Store::default()
    }

    /// Sets the memory limit (0 = none).
    pub fn set_memory_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    /// Bytes the store holds: record data (sealed blocks as stored), columns, names, values,
    /// each collection's own cost ([`PER_COLLECTION`]) and the collections' own retention
    /// policies.
    pub fn held_bytes(&self) -> usize {
        self.held.load(Ordering::Relaxed) + self.policies.bytes()
    }

    /// `Err` while the store holds its memory limit or more: the one check before a write that
    /// adds data (`ins`, `sval`, an `sret` that gives a missing collection its first policy). Deletes,
    /// queries, other `sret` and retention itself are never refused.
    pub fn check_memory(&self) -> Result<(), MemoryFull> {
        let limit = self.limit.load(Ordering::Relaxed);
        let held = self.held_bytes();
        if limit > 0 && held >= limit {
            Err(MemoryFull { held, limit })
        } else {
            Ok(())
        }
    }

    /// Applies a change of a collection's held bytes to the total; true when enough changed
    /// since the last time that free memory should be given back (call
    /// [`Store::release_memory`] then, outside any collection lock).
    fn account(&self, before: usize, after: usize) -> bool {
        let held = if after > before {
            self.held.fetch_add(after - before, Ordering::Relaxed) + (after - before)
        } else if before > after {
            self.held.fetch_sub(before - after, Ordering::Relaxed) - (before - after)
        } else {
            return false;
        };
        let d = before.abs_diff(after);
        let churn = self.churn.fetch_add(d, Ordering::Relaxed) + d;
        // Every 1/64 of what is held (at least 1 MiB): the trims cost a few percent of the
        // allocation work at most, and RSS stays within a few percent of the accounting.
        churn >= (held / 64).max(MIB)
            && self
                .churn
                .compare_exchange(churn, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Gives the allocator's free memory back to the system.
    fn release_memory(&self) {
        release_free_memory();
    }

    /// The collection of that name, if it exists.
    pub fn get(&self, name: &str) -> Option<CollectionRef> {
        self.collections.read().get(name).cloned()
    }

    /// Names of every collection, sorted by bytes.
    pub fn names(&self) -> Vec<String> {
        self.collections.read().keys().cloned().collect()
    }

    /// Handles of every collection, sorted by name.
    pub fn all(&self) -> Vec<(String, CollectionRef)> {
        self.collections
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Counts collections, documents, records and bytes, one collection read lock at a time.
    pub fn stats(&self) -> StoreStats {
        let mut st = StoreStats::default();
        for (_, handle) in self.all() {
            let c = handle.read();
            st.collections += 1;
            st.documents += c.docs.len();
            for (name, d) in &c.docs {
                let s = d.read();
                st.records += s.len();
                st.bytes += name.len() + s.arena_len() + 16 * s.len();
            }
            st.bytes += c.kv.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        }
        st
    }

    /// Runs `f` on the collection of that name under its write lock, creating it if needed.
    /// A collection left empty afterwards is removed.
    pub fn write_or_create<R>(
        &self,
        handles: &mut Handles,
        name: &str,
        f: impl FnOnce(&mut Collection) -> R,
    ) -> R {
        match self.write_with(handles, name, true, true, f) {
            Some(result) => result,
            None => unreachable!("a created collection is always found"),
        }
    }

    /// Runs `f` on an existing collection under its write lock (no creation); `None` when there
    /// is no such collection. An emptied collection is removed.
    pub fn write_existing<R>(
        &self,
        handles: &mut Handles,
        name: &str,
        f: impl FnOnce(&mut Collection) -> R,
    ) -> Option<R> {
        self.write_with(handles, name, false, true, f)
    }

    /// Runs `f` under the collection's write lock; `changes`: whether `f` may change what a
    /// read answers (then the collection's content version moves).
    fn write_with<R>(
        &self,
        handles: &mut Handles,
        name: &str,
        create: bool,
        changes: bool,
        f: impl FnOnce(&mut Collection) -> R,
    ) -> Option<R> {
        loop {
            let Some(handle) = handles.find(self, name) else {
                if !create {
                    return None;
                }
                self.collections
                    .write()
                    .entry(name.to_owned())
                    .or_insert_with(|| {
                        self.account(0, collection_overhead(name));
                        self.new_collection(name)
                    });
                continue;
            };
            let mut guard = lock::write(handle);
            if guard.removed {
                drop(guard);
                handles.forget(name);
                continue;
            }
            if changes {
                guard.content.bump();
            }
            let before = guard.held_bytes();
            let result = f(&mut guard);
            let trim = self.account(before, guard.held_bytes());
            let empty = guard.is_empty();
            drop(guard);
            if trim {
                self.release_memory();
            }
            if empty {
                self.remove_if_empty(name, handle);
            }
            return Some(result);
        }
    }

    /// Runs `append` on the collection under its read lock; when it returns `None` (or the
    /// collection does not exist) runs `write` under its write lock instead, as
    /// [`Store::write_or_create`] does. Both get `state` (what they share, such as the log).
    pub fn write_or_append<S, R>(
        &self,
        handles: &mut Handles,
        name: &str,
        state: &mut S,
        append: impl FnOnce(&mut Appender<'_>, &mut S) -> Option<R>,
        write: impl FnOnce(&mut Collection, &mut S) -> R,
    ) -> R {
        let mut append = Some(append);
        while let Some((handle, docs)) = handles.find_with_docs(self, name) {
            let guard = lock::read(handle);
            if guard.removed {
                drop(guard);
                handles.forget(name);
                continue;
            }
            let mut appender = Appender {
                c: &guard,
                docs,
                grown: Cell::new(None),
            };
            let done = append.take().and_then(|f| f(&mut appender, state));
            let trim = appender
                .grown
                .get()
                .is_some_and(|g| self.account(g.before, g.after));
            drop(guard);
            if trim {
                self.release_memory();
            }
            match done {
                Some(result) => return result,
                None => break,
            }
        }
        self.write_or_create(handles, name, |c| write(c, state))
    }

    /// Runs `f` on an existing collection under its write lock without changing it: a read
    /// that holds every writer off. `None` when there is no such collection.
    pub fn read_exclusive<R>(
        &self,
        handles: &mut Handles,
        name: &str,
        f: impl FnOnce(&Collection) -> R,
    ) -> Option<R> {
        self.write_with(handles, name, false, false, |c| f(c))
    }

    /// Runs `f` on an existing collection under its read lock; `None` when there is no such
    /// collection.
    pub fn read<R>(
        &self,
        handles: &mut Handles,
        name: &str,
        f: impl FnOnce(&Collection) -> R,
    ) -> Option<R> {
        self.read_with_docs(handles, name, |c, _| f(c))
    }

    /// [`Store::read`], with the documents the connection found last beside the collection,
    /// for [`Collection::find_doc`].
    pub fn read_with_docs<R>(
        &self,
        handles: &mut Handles,
        name: &str,
        f: impl FnOnce(&Collection, &mut DocCache) -> R,
    ) -> Option<R> {
        loop {
            let (handle, docs) = handles.find_with_docs(self, name)?;
            let guard = lock::read(handle);
            if guard.removed {
                drop(guard);
                handles.forget(name);
                continue;
            }
            return Some(f(&guard, docs));
        }
    }

    /// Removes `handle` from the map if it is still the collection of that name and still
    /// empty; emptiness is re-checked under the outer write lock so no concurrent insert is lost.
    fn remove_if_empty(&self, name: &str, handle: &CollectionRef) {
        let mut map = self.collections.write();
        if !map.get(name).is_some_and(|h| Arc::ptr_eq(h, handle)) {
            return;
        }
        let mut guard = handle.write();
        if guard.is_empty() {
            let _ = self.account(guard.held_bytes() + collection_overhead(name), 0);
            guard.content.retire();
            guard.removed = true;
            drop(guard);
            map.remove(name);
        }
    }

    /// Removes a collection with everything in it; `Ok(true)` when it existed. `on_drop` runs
    /// while the collection is locked, before it goes (the place to log the deletion); if it
    /// fails, nothing changes.
    pub fn drop_collection<E>(
        &self,
        name: &str,
        on_drop: impl FnOnce() -> Result<(), E>,
    ) -> Result<bool, E> {
        let mut map = self.collections.write();
        let Some(handle) = map.get(name).cloned() else {
            return Ok(false);
        };
        let mut guard = handle.write();
        on_drop()?;
        guard.content.retire();
        map.remove(name);
        let trim = self.account(guard.held_bytes() + collection_overhead(name), 0);
        guard.removed = true;
        guard.clear_docs();
        guard.patterns = Default::default();
        guard.kv = Default::default();
        *guard.shared.held.get_mut() = 0;
        drop(guard);
        drop(map);
        if trim {
            self.release_memory();
        }
        Ok(true)
    }

    /// An empty collection under the retention limits in force for `name`.
    fn new_collection(&self, name: &str) -> CollectionRef {
        let mut c = Collection::default();
        c.set_limits(self.policies.effective(name).0);
        Arc::new(RwLock::new(c))
    }

    /// The retention policies.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// Sets the default retention limits (start-up) and brings every collection's up to date.
    pub fn set_default_limits(&self, default: Limits) {
        self.policies.set_default(default);
        for (name, handle) in self.all() {
            let limits = self.policies.effective(&name).0;
            handle.write().set_limits(limits);
        }
    }

    /// Installs a collection loaded from disk (start-up only).
    pub fn install(&self, name: String, mut collection: Collection) {
        collection.set_limits(self.policies.effective(&name).0);
        if !collection.is_empty() {
            collection.recount();
            let held = collection.held_bytes() + collection_overhead(&name);
            let replaced = self
                .collections
                .write()
                .insert(name.clone(), Arc::new(RwLock::new(collection)));
            let before = replaced.map_or(0, |c| c.read().held_bytes() + collection_overhead(&name));
            if self.account(before, held) {
                self.release_memory();
            }
        }
    }
}

/// A collection read-locked for an append (see [`Store::write_or_append`]).
pub struct Appender<'c> {
    c: &'c Collection,
    /// The connection's remembered documents, where the append looks its document up first.
    docs: &'c mut DocCache,
    grown: Cell<Option<Grown>>,
}

impl Appender<'_> {
    /// [`Collection::append`], with the store's memory accounting.
    pub fn append<'r, D: Into<Incoming<'r>>, P, E: From<SeriesError>>(
        &mut self,
        doc: &str,
        records: impl Iterator<Item = (i64, D)> + Clone,
        prepare: impl FnOnce() -> Result<P, E>,
        commit: impl FnOnce(P) -> Result<(), E>,
    ) -> Option<Result<(), E>> {
        let result = self.c.append(self.docs, doc, records, prepare, commit)?;
        Some(result.map(|g| {
            let total = match self.grown.get() {
                Some(prev) => Grown {
                    before: prev.before,
                    after: (prev.after + g.after).saturating_sub(g.before),
                },
                None => g,
            };
            self.grown.set(Some(total));
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_exist_while_not_empty() {
        let store = Store::new();
        let h = &mut Handles::default();
        store
            .write_or_create(h, "c", |c| c.insert("d", 1, "x"))
            .unwrap();
        store.write_or_create(h, "c", |c| c.set_value("k", "v"));
        assert_eq!(store.names(), vec!["c"]);
        store.write_existing(h, "c", |c| c.remove_record("d", 1));
        assert_eq!(store.names(), vec!["c"], "kv entry keeps it");
        store.write_existing(h, "c", |c| c.remove_value("k"));
        assert!(store.names().is_empty());
        assert!(store.write_existing(h, "c", |_| ()).is_none());
        store.write_or_create(h, "e", |_| ());
        assert!(
            store.names().is_empty(),
            "a write that adds nothing creates nothing"
        );
    }

    #[test]
    fn concurrent_insert_and_removal_never_lose_a_record() {
        // Each writer inserts into its own document and deletes it again, so the collection
        // keeps becoming empty and being removed while the others insert.
        let store = Arc::new(Store::new());
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let doc = format!("w{w}");
                    let h = &mut Handles::default();
                    for ts in 1..=2000 {
                        store
                            .write_or_create(h, "c", |c| c.insert(&doc, ts, "x"))
                            .unwrap();
                        let seen = store.read(h, "c", |c| c.docs.get(&doc).map(|d| d.read().len()));
                        assert_eq!(seen, Some(Some(1)), "insert {ts} of {doc} was lost");
                        if ts < 2000 {
                            store.write_existing(h, "c", |c| c.remove_record(&doc, ts));
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let c = store.get("c").unwrap();
        assert_eq!(c.read().record_count(), 4);
    }

    #[test]
    fn a_drop_whose_log_write_fails_changes_nothing() {
        let store = Store::new();
        let h = &mut Handles::default();
        store
            .write_or_create(h, "c", |c| c.insert("d", 1, "x"))
            .unwrap();
        assert_eq!(
            store.drop_collection("c", || Err("disk full")),
            Err("disk full")
        );
        assert_eq!(store.names(), vec!["c"]);
        assert_eq!(store.read(h, "c", |c| c.record_count()), Some(1));
    }

    #[test]
    fn cached_handles_follow_a_dropped_and_recreated_collection() {
        let store = Store::new();
        let (a, b) = (&mut Handles::default(), &mut Handles::default());
        store
            .write_or_create(a, "c", |c| c.insert("d", 1, "old"))
            .unwrap();
        assert_eq!(store.read(a, "c", |c| c.record_count()), Some(1));
        // Another connection drops the collection and creates it anew.
        assert_eq!(store.drop_collection("c", || Ok::<(), ()>(())), Ok(true));
        assert_eq!(store.read(a, "c", |c| c.record_count()), None);
        store
            .write_or_create(b, "c", |c| c.insert("e", 2, "new"))
            .unwrap();
        // `a` caches the new collection; it is dropped and re-created behind its back.
        assert_eq!(
            store.read(a, "c", |c| c.docs.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["e".to_string()])
        );
        assert_eq!(store.drop_collection("c", || Ok::<(), ()>(())), Ok(true));
        store
            .write_or_create(b, "c", |c| c.insert("f", 3, "newer"))
            .unwrap();
        let names = |c: &Collection| c.docs.keys().cloned().collect::<Vec<_>>();
        assert_eq!(store.read(a, "c", names), Some(vec!["f".to_string()]));
        assert_eq!(
            store.write_existing(a, "c", |c| c.remove_doc("f")),
            Some(true)
        );
        assert!(store.names().is_empty());
        store
            .write_or_create(b, "c", |c| c.insert("g", 4, "last"))
            .unwrap();
        store
            .write_or_create(a, "c", |c| c.insert("h", 5, "mine"))
            .unwrap();
        assert_eq!(store.read(b, "c", |c| c.record_count()), Some(2));
    }
}
