//! A collection's content version: what a cache of read answers compares to know that an
//! answer computed earlier is still the answer now (see `ops::answer_cache`).
//!
//! Every change that can alter a read answer moves it. Changes made under the collection's
//! write lock call [`ContentVersion::bump`]; appends made under its read lock (see
//! `Collection::append`) hold a [`Changing`] from before their change until after it. Two
//! counters make that safe without a lock of its own: `begun` counts changes started, `done`
//! those finished. A [`Stamp`] is taken only while they are equal (no change in flight), and an
//! answer computed between two equal stamps saw exactly the content those stamps name: a change
//! that began meanwhile moves `begun` before it touches anything, so the second stamp differs.
//!
//! Each collection also gets a number of its own when it is made, so that a collection dropped
//! and made again under the same name never matches a stamp of the one before, and a removed
//! collection's version is retired: it gives no stamp any more.
//!
//! The version is shared ([`VersionRef`]): a remembered answer keeps the version of the
//! collection it read, so that checking it needs neither the store's map nor the collection's
//! lock — three atomic loads. That is exact without the lock: every change moves `begun`
//! before it touches anything (and before it is acknowledged), and a removal retires the
//! version before the collection leaves the store.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Numbers of collections made so far in this process.
static MADE: AtomicU64 = AtomicU64::new(0);

/// The content version of one collection.
#[derive(Debug)]
pub struct ContentVersion {
    /// This collection's own number (see the module docs).
    made: u64,
    /// Changes started.
    begun: AtomicU64,
    /// Changes finished (never ahead of `begun`).
    done: AtomicU64,
    /// The collection has left the store (see [`ContentVersion::retire`]).
    retired: AtomicBool,
}

/// A collection's version, shared with the answers remembered from it.
pub type VersionRef = Arc<ContentVersion>;

impl Default for ContentVersion {
    fn default() -> Self {
        ContentVersion {
            made: MADE.fetch_add(1, Ordering::Relaxed),
            begun: AtomicU64::new(0),
            done: AtomicU64::new(0),
            retired: AtomicBool::new(false),
        }
    }
}

/// One observed content version: which collection, after how many changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp {
    made: u64,
    changes: u64,
}

/// A change under way under the collection's read lock; it ends when this is dropped.
#[must_use = "the change counts as finished when this is dropped"]
pub struct Changing<'v>(&'v ContentVersion);

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        self.0.done.fetch_add(1, Ordering::SeqCst);
    }
}

impl ContentVersion {
    /// The version now, or `None` while a change is under way (an answer computed then may
    /// show it half made, or not at all: it must not be remembered).
    /// Also `None` once the collection is retired.
    pub fn stamp(&self) -> Option<Stamp> {
        // `done` first: a change counted there was counted in `begun` before it.
        let done = self.done.load(Ordering::SeqCst);
        let begun = self.begun.load(Ordering::SeqCst);
        if begun != done || self.retired.load(Ordering::SeqCst) {
            return None;
        }
        Some(Stamp {
            made: self.made,
            changes: begun,
        })
    }

    /// Whether the version is still `stamp` (no change since, none under way, not retired):
    /// what a remembered answer is checked with, without any lock.
    pub fn is_still(&self, stamp: Stamp) -> bool {
        self.stamp() == Some(stamp)
    }

    /// A change made under the collection's write lock (no reader sees it half made; a check
    /// without the lock sees it from its start, as `begun` moves first).
    pub fn bump(&self) {
        self.begun.fetch_add(1, Ordering::SeqCst);
        self.done.fetch_add(1, Ordering::SeqCst);
    }

    /// The collection leaves the store: no stamp matches this version any more.
    pub fn retire(&self) {
        self.bump();
        self.retired.store(true, Ordering::SeqCst);
    }

    /// Whether a change is under way (begun and not finished). Under the collection's read
    /// lock, that is an append: see `Collection::snapshot`, whose quiet readers check this
    /// after registering, as an append registers here before it checks for them.
    pub fn is_changing(&self) -> bool {
        // `done` first, as in `stamp`.
        let done = self.done.load(Ordering::SeqCst);
        done != self.begun.load(Ordering::SeqCst)
    }

    /// Starts a change made while readers may run: call before touching anything.
    pub fn begin(&self) -> Changing<'_> {
        self.begun.fetch_add(1, Ordering::SeqCst);
        Changing(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SeriesError;

    #[test]
    fn every_change_moves_the_stamp_and_none_is_given_while_one_is_under_way() {
        let v = ContentVersion::default();
        let first = v.stamp();
        assert!(first.is_some());
        assert_eq!(v.stamp(), first, "reading changes nothing");
        v.bump();
        let second = v.stamp();
        assert!(second.is_some() && second != first);
        let changing = v.begin();
        assert_eq!(v.stamp(), None, "a stamp while a change is under way");
        let nested = v.begin();
        drop(changing);
        assert_eq!(v.stamp(), None, "one of two changes is still under way");
        drop(nested);
        let third = v.stamp();
        assert!(third.is_some() && third != second && third != first);
    }

    #[test]
    fn a_retired_version_gives_no_stamp_and_matches_none() {
        let v = ContentVersion::default();
        let Some(before) = v.stamp() else {
            panic!("a fresh version gave no stamp")
        };
        assert!(v.is_still(before));
        let changing = v.begin();
        assert!(!v.is_still(before), "matched while a change was under way");
        drop(changing);
        assert!(!v.is_still(before), "matched after a change");
        let Some(now) = v.stamp() else {
            panic!("no stamp after the change ended")
        };
        assert!(v.is_still(now));
        v.retire();
        assert_eq!(v.stamp(), None);
        assert!(!v.is_still(now), "a retired version matched its last stamp");
    }

    #[test]
    fn collections_made_anew_never_share_a_stamp() {
        let a = ContentVersion::default();
        let b = ContentVersion::default();
        assert_ne!(a.stamp(), b.stamp());
    }

    /// Through the store: every write moves the version of the collection it touches, a read
    /// (exclusive or not) does not, and an append under the read lock does.
    #[test]
    fn the_store_moves_the_version_on_writes_only() {
        use crate::store::{Handles, Store};
        let store = Store::new();
        let h = &mut Handles::default();
        let stamp = |h: &mut Handles| store.read(h, "c", |c| c.content_stamp()).flatten();
        store
            .write_or_create(h, "c", |c| c.insert("d", 1, "x"))
            .unwrap();
        let mut last = stamp(h);
        assert!(last.is_some());
        let mut moved = |h: &mut Handles, what: &str| {
            let now = stamp(h);
            assert!(
                now.is_some() && now != last,
                "{what} left the version alone"
            );
            last = now;
        };
        store.write_existing(h, "c", |c| c.remove_record("d", 9));
        moved(h, "a write that removed nothing");
        let appended = store.write_or_append(
            h,
            "c",
            &mut (),
            |a, _| a.append("d", [(2, "y")].into_iter(), || Ok(()), |()| Ok(())),
            |_, _| -> Result<(), SeriesError> { panic!("not appended") },
        );
        assert!(appended.is_ok());
        moved(h, "an append");
        let before = stamp(h);
        store.read_exclusive(h, "c", |c| c.record_count());
        store.read(h, "c", |c| c.record_count());
        assert_eq!(stamp(h), before, "a read moved the version");
        // Dropped and made again: never the stamp of before.
        store.drop_collection("c", || Ok::<(), ()>(())).unwrap();
        store
            .write_or_create(h, "c", |c| c.insert("d", 1, "x"))
            .unwrap();
        assert_ne!(stamp(h), before);
    }
}
