//! Appends under a collection's read lock, and the readers of several documents that must see
//! one point of them.
//!
//! An append to an existing document ([`Collection::append`]) read-holds the collection and
//! takes only the document's lock; such appends are numbered in one apply order per collection
//! (the [`Shared`] fields every append writes). A reader of several documents
//! ([`Collection::snapshot`]) takes its view at an apply number (see `doc.rs`) or, once appends
//! have paused, reads quietly ([`QuietReaders`]): without the documents' locks, appends held
//! off until it is done.

use super::{doc_bytes, Collection, LARGE};
use crate::store::doc::Snapshot;
use crate::store::doc_cache::DocCache;
use crate::store::lock;
use crate::store::series::SeriesError;
use crate::store::Incoming;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// How many readers in a row must find no new append before the next one reads quietly: while
/// appends keep coming, a quiet reader would make each of them wait for a whole read, so
/// readers lock the documents instead until the appends pause.
const CALM_LOOKS: u32 = 8;

#[derive(Debug, Default)]
#[repr(align(64))]
pub(super) struct QuietReaders {
    /// Readers registered as quiet.
    count: AtomicUsize,
    /// The apply number the last reader saw (written only when it changed).
    seen: AtomicU64,
    /// Readers in a row that found `seen` unchanged, up to [`CALM_LOOKS`] (written only
    /// while it counts).
    calm: AtomicU32,
}

/// The fields of a collection that every append writes, on a cache line of their own: the
/// rest of [`Collection`] (the document map's root above all) is read by every request.
/// Appends past their checks and not yet done are the collection's content changes under way
/// (see `version.rs`): while there is one, readers take the documents' locks.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(in crate::store) struct Shared {
    /// Held by an append under the read lock while it logs, takes its apply number and
    /// publishes: the log's order and the live feed's are then the apply order.
    order: Mutex<()>,
    /// The apply number of the last append made under the read lock (see `doc.rs`).
    applied: AtomicU64,
    /// Bytes this collection holds, by its own accounting (kept up to date by every change).
    pub(in crate::store) held: AtomicUsize,
}

/// The collection's held bytes before and after an append under the read lock, for the store's
/// total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grown {
    pub before: usize,
    pub after: usize,
}

impl Collection {
    /// [`Collection::mark_dirty`] under the read lock (reads the flag first, so that appends
    /// do not keep writing its cache line).
    fn mark_dirty_shared(&self) {
        if !self.dirty.load(Ordering::Relaxed) {
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// The apply number a reader of several documents takes its view at (see `doc.rs`): every
    /// append numbered up to it is visible, none after.
    pub fn applied(&self) -> u64 {
        self.shared.applied.load(Ordering::Acquire)
    }

    /// A view of the documents for a reader of several of them, under the read lock: quiet
    /// (documents read without their locks, appends held off until it is dropped) when no
    /// append was made while the last [`CALM_LOOKS`] readers looked and none is in progress,
    /// else at the current apply number (see `doc.rs`): while appends keep coming, readers
    /// take the documents' locks rather than make appends wait for them. Registering and
    /// checking use sequentially consistent operations, as the append's do in the other order,
    /// so that of a reader and an append that start together at least one sees the other.
    pub fn snapshot(&self) -> Snapshot<'_> {
        let applied = self.applied();
        let quiet = &self.quiet;
        if quiet.seen.load(Ordering::Relaxed) != applied {
            quiet.seen.store(applied, Ordering::Relaxed);
            quiet.calm.store(0, Ordering::Relaxed);
            return Snapshot::new(&self.docs, None, applied);
        }
        let calm = quiet.calm.load(Ordering::Relaxed);
        if calm < CALM_LOOKS {
            quiet.calm.store(calm + 1, Ordering::Relaxed);
            return Snapshot::new(&self.docs, None, applied);
        }
        quiet.count.fetch_add(1, Ordering::SeqCst);
        // Under the read lock, the only changes under way are appends.
        if !self.content.is_changing() {
            return Snapshot::new(&self.docs, Some(&quiet.count), 0);
        }
        quiet.count.fetch_sub(1, Ordering::Release);
        Snapshot::new(&self.docs, None, self.applied())
    }

    /// Appends `records` to the existing document `doc` under the collection's read lock,
    /// holding only the document's lock; `None` (nothing done) unless the document exists, no
    /// retention limit applies, no document is large, and the records are newer than every
    /// record it holds, in increasing order, or are one record at a timestamp it does not
    /// hold (an insert out of order, which a reader's view leaves out by its timestamp, see
    /// `doc.rs`). So the append cannot fail and replaces nothing a reader may be showing.
    ///
    /// The document is claimed (other writers kept out, readers still in) for the checks and
    /// for `prepare` (framing the log entry), and write-locked only from the apply number to
    /// the change: readers of the document wait for no more than that. `commit` gets what
    /// `prepare` made and logs and publishes the append, before the change, under the
    /// collection's apply-order lock (a few instructions in memory, one append to the log's
    /// buffer with `--data`). If either fails, nothing changes.
    pub fn append<'r, D: Into<Incoming<'r>>, P, E: From<SeriesError>>(
        &self,
        docs: &mut DocCache,
        doc: &str,
        records: impl Iterator<Item = (i64, D)> + Clone,
        prepare: impl FnOnce() -> Result<P, E>,
        commit: impl FnOnce(P) -> Result<(), E>,
    ) -> Option<Result<Grown, E>> {
        if !self.limits.is_unlimited() || self.large_docs > 0 {
            return None;
        }
        // Looked up in the connection's remembered documents first (see `doc_cache.rs`).
        let target = docs.find(self.doc_version, &self.docs, doc)?;
        target.prefetch();
        let claimed = target.claim();
        let series = claimed.series();
        series.prefetch_tail();
        let mut newest = series.newest_ts()?;
        let mut incoming = 0;
        for (n, (ts, data)) in records.clone().enumerate() {
            if ts <= newest {
                // One record among older ones, at a timestamp not held: an insert that a view
                // can leave out. A batch that is not all newer, or a replace, is not.
                let single = n == 0 && records.clone().nth(1).is_none();
                if !single || series.find(ts).is_ok() {
                    return None;
                }
            }
            newest = newest.max(ts);
            incoming += data.into().max_stored_len();
        }
        if series.limit_bytes() + incoming > LARGE {
            return None;
        }
        let before = doc_bytes(doc, series);
        let prepared = match prepare() {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        // The change begins: answers remembered from before no longer hold (until `changing`
        // is dropped, none is), and quiet readers, which read documents without their locks,
        // see it under way. Wait until none is registered (new ones see this append and take
        // the locks instead); they hold on for one read.
        let changing = self.content.begin();
        lock::wait_until(|| self.quiet.count.load(Ordering::SeqCst) == 0);
        let mut w = claimed.upgrade();
        // Marked write-locked, before the log entry: a checkpoint that rotates the log after
        // this entry finds the collection changed, and its copy waits for this document's lock.
        self.mark_dirty_shared();
        let seq = {
            let _order = lock::lock(&self.shared.order);
            if let Err(e) = commit(prepared) {
                return Some(Err(e));
            }
            self.shared.applied.fetch_add(1, Ordering::AcqRel) + 1
        };
        let result = w.append(seq, records);
        let after = doc_bytes(doc, w.series());
        drop(w);
        drop(changing);
        let held = if after >= before {
            self.shared
                .held
                .fetch_add(after - before, Ordering::Relaxed)
        } else {
            self.shared
                .held
                .fetch_sub(before - after, Ordering::Relaxed)
        };
        if let Err(e) = result {
            return Some(Err(e.into()));
        }
        Some(Ok(Grown {
            before: held,
            after: held + after - before,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::retention::Limits;

    fn append(
        c: &Collection,
        doc: &str,
        recs: &[(i64, &str)],
    ) -> Option<Result<Grown, SeriesError>> {
        c.append(
            &mut DocCache::default(),
            doc,
            recs.iter().copied(),
            || Ok(()),
            |()| Ok(()),
        )
    }

    #[test]
    fn an_append_waits_for_quiet_readers_and_turns_new_readers_to_the_locks() {
        let mut c = Collection::default();
        c.insert("d", 1, "x").unwrap();
        let c = std::sync::Arc::new(c);
        let (quiet, looks) = calm_down(&c);
        assert_eq!(looks, CALM_LOOKS);
        let appender = {
            let c = c.clone();
            std::thread::spawn(move || append(&c, "d", &[(2, "y")]).map(|r| r.is_ok()))
        };
        // Wait (bounded) until the append is past its checks and waiting for the reader.
        let mut tries = 0;
        while !c.content.is_changing() {
            assert!(tries < 10_000_000, "the append never got going");
            tries += 1;
            std::thread::yield_now();
        }
        let (_, d) = quiet.doc("d").unwrap();
        assert_eq!(
            d.view().unwrap().len(),
            1,
            "the append changed a quietly read document"
        );
        assert_eq!(c.applied(), 0);
        let locked = c.snapshot();
        assert!(!locked.is_quiet(), "a reader started during an append");
        // The waiting append keeps other writers out of the document, not its readers.
        assert!(
            !c.docs["d"].is_write_locked(),
            "the append write-locked the document while it waited"
        );
        let (_, d) = locked.doc("d").unwrap();
        assert_eq!(d.view().unwrap().len(), 1);
        drop(locked);
        drop(quiet);
        assert_eq!(appender.join().unwrap(), Some(true));
        assert_eq!((c.docs["d"].read().len(), c.applied()), (2, 1));
        // One look finds the append, CALM_LOOKS more find nothing new.
        assert_eq!(calm_down(&c).1, CALM_LOOKS + 1);
    }

    /// Takes snapshots until one is quiet (a bounded number): that one, and how many were not.
    fn calm_down(c: &Collection) -> (Snapshot<'_>, u32) {
        for looks in 0..=CALM_LOOKS + 1 {
            let snap = c.snapshot();
            if snap.is_quiet() {
                return (snap, looks);
            }
        }
        panic!("readers stayed on the locks");
    }

    #[test]
    fn readers_lock_the_documents_while_appends_keep_coming() {
        let mut c = Collection::default();
        c.insert("d", 1, "x").unwrap();
        assert_eq!(calm_down(&c).1, CALM_LOOKS);
        for ts in 2..40 {
            assert!(append(&c, "d", &[(ts, "y")]).unwrap().is_ok());
            // Fewer calm looks between appends than it takes to read quietly.
            for _ in 0..CALM_LOOKS / 2 {
                assert!(!c.snapshot().is_quiet(), "a quiet reader between appends");
            }
        }
        // The looks since the last append count.
        assert_eq!(calm_down(&c).1, CALM_LOOKS + 1 - CALM_LOOKS / 2);
    }

    #[test]
    fn only_appends_of_newer_records_to_an_existing_document_skip_the_write_lock() {
        let mut c = Collection::default();
        c.insert("d", 10, "x").unwrap();
        assert!(append(&c, "e", &[(20, "y")]).is_none(), "a new document");
        assert!(append(&c, "d", &[(10, "y")]).is_none(), "a replace");
        assert!(
            append(&c, "d", &[(5, "y"), (6, "z")]).is_none(),
            "older records in a batch"
        );
        assert!(
            append(&c, "d", &[(20, "y"), (5, "z")]).is_none(),
            "an older record after a newer one"
        );
        assert!(
            append(&c, "d", &[(30, "y"), (20, "z")]).is_none(),
            "out of order"
        );
        assert!(
            append(&c, "d", &[(20, "y"), (20, "z")]).is_none(),
            "a repeated ts"
        );
        assert_eq!(c.applied(), 0);
        c.set_dirty(false);
        let held = c.held_bytes();
        let grown = append(&c, "d", &[(20, "y"), (30, "zz")]).unwrap().unwrap();
        assert_eq!((grown.before, grown.after), (held, c.held_bytes()));
        assert!(c.is_dirty());
        assert_eq!(c.applied(), 1);
        assert_eq!(c.docs["d"].read().len(), 3);
        // A failing commit (the log refused the entry) changes nothing.
        let refused = c.append(
            &mut DocCache::default(),
            "d",
            [(40, "w")].into_iter(),
            || Ok(()),
            |()| Err(SeriesError::DocumentTooLarge),
        );
        assert!(matches!(refused, Some(Err(SeriesError::DocumentTooLarge))));
        assert_eq!((c.docs["d"].read().len(), c.applied()), (3, 1));
        c.set_limits(Limits::from_numbers(0, 100));
        assert!(append(&c, "d", &[(50, "v")]).is_none(), "retention applies");
    }

    #[test]
    fn one_older_record_is_inserted_without_the_write_lock_and_hidden_from_older_views() {
        let mut c = Collection::default();
        for ts in [10, 20, 30] {
            c.insert("d", ts, "x").unwrap();
        }
        let before = c.snapshot();
        assert!(!before.is_quiet());
        let (_, d) = before.doc("d").unwrap();
        let latest = |at: i64| d.view().unwrap().latest_at(at);
        assert_eq!(latest(i64::MAX), Some(2));
        // Taken while the snapshot is held, as a writer under the read lock would.
        assert!(append(&c, "d", &[(25, "new")]).unwrap().is_ok());
        assert!(append(&c, "d", &[(40, "newer")]).unwrap().is_ok());
        assert!(append(&c, "d", &[(15, "old")]).unwrap().is_ok());
        // Positions are the series' own (10 15 20 25 30 40); the records added since the
        // snapshot (15, 25 and 40) are left out.
        assert_eq!(
            latest(i64::MAX),
            Some(4),
            "30 is the newest the snapshot saw"
        );
        assert_eq!(latest(29), Some(2), "20, not 25");
        assert_eq!(latest(19), Some(0), "10, not 15");
        assert_eq!(latest(9), None);
        drop(before);
        let after = c.snapshot();
        let (_, d) = after.doc("d").unwrap();
        assert_eq!(d.view().unwrap().latest_at(29), Some(3), "25 is seen now");
        assert_eq!(d.view().unwrap().latest_at(19), Some(1));
        assert_eq!(c.applied(), 3);
        assert!(
            append(&c, "d", &[(15, "again")]).is_none(),
            "a replace takes the write lock"
        );
    }
}
