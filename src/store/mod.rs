//! Pure in-memory data structures: no I/O, no JSON. The store maps collection names to
//! collections, each behind its own lock; the outer map's lock is held only long enough to
//! find, create or remove a collection.

mod collection;
mod series;

pub use collection::Collection;
pub use series::{Series, SeriesError};

use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

pub type CollectionRef = Arc<RwLock<Collection>>;

#[derive(Default)]
pub struct Store {
    collections: RwLock<BTreeMap<String, CollectionRef>>,
}

impl Store {
    pub fn new() -> Self {
        Store::default()
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

    /// Runs `f` on the named collection under its write lock, creating it if needed. When `f`
    /// leaves the collection empty it is removed (§3 invariant).
    pub fn write_or_create<R>(&self, name: &str, f: impl FnOnce(&mut Collection) -> R) -> R {
        let mut f = Some(f);
        loop {
            let handle = match self.get(name) {
                Some(h) => h,
                None => self
                    .collections
                    .write()
                    .entry(name.to_owned())
                    .or_default()
                    .clone(),
            };
            let mut guard = handle.write();
            if guard.removed {
                continue;
            }
            let Some(f) = f.take() else {
                unreachable!("f runs once")
            };
            let result = f(&mut guard);
            let empty = guard.is_empty();
            drop(guard);
            if empty {
                self.remove_if_empty(name, &handle);
            }
            return result;
        }
    }

    /// Runs `f` on an existing collection under its write lock (no creation); `None` when there
    /// is no such collection. An emptied collection is removed.
    pub fn write_existing<R>(&self, name: &str, f: impl FnOnce(&mut Collection) -> R) -> Option<R> {
        let handle = self.get(name)?;
        let mut guard = handle.write();
        if guard.removed {
            // Removed meanwhile: it was empty, so there is nothing to change.
            return None;
        }
        let result = f(&mut guard);
        let empty = guard.is_empty();
        drop(guard);
        if empty {
            self.remove_if_empty(name, &handle);
        }
        Some(result)
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
            guard.removed = true;
            drop(guard);
            map.remove(name);
        }
    }

    /// Removes a collection with everything in it; true when it existed. `on_drop` runs while
    /// the collection is locked, before it goes (the place to log the deletion).
    pub fn drop_collection(&self, name: &str, on_drop: impl FnOnce()) -> bool {
        let mut map = self.collections.write();
        match map.remove(name) {
            Some(handle) => {
                let mut guard = handle.write();
                on_drop();
                guard.removed = true;
                guard.docs = Default::default();
                guard.kv = Default::default();
                true
            }
            None => false,
        }
    }

    /// Installs a collection loaded from disk (start-up only).
    pub fn install(&self, name: String, collection: Collection) {
        if !collection.is_empty() {
            self.collections
                .write()
                .insert(name, Arc::new(RwLock::new(collection)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_exist_while_not_empty() {
        let store = Store::new();
        store
            .write_or_create("c", |c| c.insert("d", 1, "x"))
            .unwrap();
        store.write_or_create("c", |c| c.set_value("k", "v"));
        assert_eq!(store.names(), vec!["c"]);
        store.write_existing("c", |c| c.remove_record("d", 1));
        assert_eq!(store.names(), vec!["c"], "kv entry keeps it");
        store.write_existing("c", |c| c.remove_value("k"));
        assert!(store.names().is_empty());
        assert!(store.write_existing("c", |_| ()).is_none());
        store.write_or_create("e", |_| ());
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
                    for ts in 1..=2000 {
                        store
                            .write_or_create("c", |c| c.insert(&doc, ts, "x"))
                            .unwrap();
                        let seen = store
                            .get("c")
                            .map(|c| c.read().docs.get(&doc).map(Series::len));
                        assert_eq!(seen, Some(Some(1)), "insert {ts} of {doc} was lost");
                        if ts < 2000 {
                            store.write_existing("c", |c| c.remove_record(&doc, ts));
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
}
