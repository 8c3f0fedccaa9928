//! One document: its series behind a lock of its own, and what a reader needs to see the
//! document as it was when the reader's view of the collection was taken.
//!
//! Appends to an existing document take only this lock (the collection's lock is read-held, see
//! [`Collection::append`](super::Collection::append)): they claim it (an upgradable read, which
//! keeps other writers out and lets readers in) for their checks and while they wait, and
//! write-lock it only from taking an apply number to making the change, so a reader of the
//! document waits for no more than that. An append adds records newer than every record
//! held, or one record among older ones at a timestamp not held (an insert out of order). Each
//! gets the collection's next apply number, and the document remembers its last few as
//! (number, first timestamp, whether among older ones). A reader that took its view at number
//! `seen` sees each document without the records those numbered after `seen` added: every
//! record from the earliest such append's first timestamp on, and the one record of each such
//! insert. Records are never removed or replaced this way, so what is left is exactly the
//! document at `seen`. Every other change takes the collection's write lock, which no reader
//! holds a view across.
//!
//! Locking every document costs a reader of many documents one write to each document's lock,
//! and two readers on two CPUs then pass each of those cache lines back and forth. So while no
//! append is coming, a reader of several documents reads them without their locks instead (a
//! *quiet* [`Snapshot`]): it registers with the collection, and an append waits until no quiet
//! reader is registered before it changes anything (see `Collection::snapshot` and
//! `Collection::append`).

use super::data::{Data, Incoming};
use super::lock;
use super::prefetch;
use super::series::{Series, SeriesError};
use parking_lot::{RwLock, RwLockReadGuard, RwLockUpgradableReadGuard, RwLockWriteGuard};
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Appends a document remembers. A reader whose view is older than all of them (the document
/// took this many appends while the reader was going through the collection) cannot see the
/// document as it was and reads again under the collection's write lock.
const REMEMBERED: usize = 8;

/// One remembered append: its apply number (0: none yet) and, by timestamp, the records it
/// added.
#[derive(Debug, Default, Clone, Copy)]
struct Append {
    seq: u64,
    /// The timestamp of its first (or only) record.
    ts: i64,
    /// Whether it added one record among older ones (an insert out of order) rather than
    /// records newer than every record held.
    among: bool,
}

#[derive(Debug, Default)]
struct State {
    series: Series,
    /// The last appends, a ring written at `next`.
    recent: [Append; REMEMBERED],
    next: usize,
    /// The apply number of the newest append the ring no longer holds (0: none).
    forgotten: u64,
}

#[derive(Debug, Default)]
pub struct Doc {
    state: RwLock<State>,
}

impl Doc {
    pub fn new(series: Series) -> Doc {
        Doc {
            state: RwLock::new(State {
                series,
                ..State::default()
            }),
        }
    }

    /// The series, for a holder of the collection's write lock. Documents are shared with the
    /// collection's remembered pattern lists (see `patterns.rs`), so this takes the document's
    /// lock; nobody else can be waiting for it (readers and appends hold the collection's lock
    /// shared) but a checkpoint copying this document, so it is almost always one uncontended
    /// acquisition.
    pub fn exclusive(&self) -> Exclusive<'_> {
        Exclusive(self.state.write())
    }

    /// The document as it is now, read-locked.
    pub fn read(&self) -> Current<'_> {
        Current(lock::read(&self.state))
    }

    /// The document as it was at apply number `seen` (see the module's comment), read-locked;
    /// `None` when it took too many appends since to tell.
    pub fn read_at(&self, seen: u64) -> Option<View<'_>> {
        let guard = lock::read(&self.state);
        if guard.forgotten > seen {
            return None;
        }
        let mut hidden = Hidden::default();
        for a in guard.recent.iter().filter(|a| a.seq > seen) {
            if a.among {
                hidden.among[hidden.count] = a.ts;
                hidden.count += 1;
            } else if hidden.from.is_none_or(|from| a.ts < from) {
                hidden.from = Some(a.ts);
            }
        }
        Some(View {
            state: Held::Locked(guard),
            hidden,
        })
    }

    /// Whether a writer holds the document's lock.
    #[cfg(test)]
    pub(super) fn is_write_locked(&self) -> bool {
        self.state.is_locked_exclusive()
    }

    /// Asks the CPU for the lines of the document's state (its series' fields, its recent
    /// appends), which an append reads next, so that they arrive together with its lock's
    /// rather than one after another.
    pub(super) fn prefetch(&self) {
        prefetch::value(self.state.data_ptr().cast_const());
    }

    /// Claims the document for an append: no other writer gets in, readers still do until
    /// [`Claimed::upgrade`].
    pub(super) fn claim(&self) -> Claimed<'_> {
        Claimed(lock::upgradable(&self.state))
    }
}

/// A document write-locked by a holder of the collection's write lock.
pub struct Exclusive<'a>(RwLockWriteGuard<'a, State>);

impl Deref for Exclusive<'_> {
    type Target = Series;
    fn deref(&self) -> &Series {
        &self.0.series
    }
}

impl DerefMut for Exclusive<'_> {
    fn deref_mut(&mut self) -> &mut Series {
        &mut self.0.series
    }
}

/// A document read-locked as it is now.
pub struct Current<'a>(RwLockReadGuard<'a, State>);

impl Deref for Current<'_> {
    type Target = Series;
    fn deref(&self) -> &Series {
        &self.0.series
    }
}

/// A document read-locked as a reader's view holds it: its series without the records added
/// since the view was taken. It reads like the series (through `Deref`) except for
/// [`View::latest_at`], which is the one question whose answer leaves those records out.
pub struct View<'a> {
    state: Held<'a>,
    hidden: Hidden,
}

/// The records of a document that a view leaves out, by timestamp: every record from `from` on
/// (appended since the view was taken; all records it holds are older) and the records at the
/// timestamps in `among` (inserted out of order since). Each timestamp holds one record.
#[derive(Debug, Default)]
struct Hidden {
    from: Option<i64>,
    among: [i64; REMEMBERED],
    count: usize,
}

impl Hidden {
    fn hides(&self, ts: i64) -> bool {
        self.from.is_some_and(|from| ts >= from) || self.among[..self.count].contains(&ts)
    }
}

/// How a view holds its document.
enum Held<'a> {
    Locked(RwLockReadGuard<'a, State>),
    /// Unlocked, under a quiet snapshot.
    Quiet(&'a State),
}

impl View<'_> {
    fn state(&self) -> &State {
        match &self.state {
            Held::Locked(guard) => guard,
            Held::Quiet(state) => state,
        }
    }

    /// Position (in the series) of the newest record with `ts <= at` among those the view
    /// holds: the series' own answer below the appended records, stepped back over the hidden
    /// ones (each hides one position, so at most `REMEMBERED` steps).
    pub fn latest_at(&self, at: i64) -> Option<usize> {
        let series = &self.state().series;
        let at = match self.hidden.from {
            Some(from) if from <= at => from.checked_sub(1)?,
            _ => at,
        };
        let mut i = series.latest_at(at)?;
        while self.hidden.hides(series.ts_at(i)) {
            i = i.checked_sub(1)?;
        }
        Some(i)
    }

    /// The newest record with `ts <= at` among those the view holds.
    pub fn latest(&self, at: i64) -> Option<(i64, Data<'_>)> {
        let series = &self.state().series;
        if self.hidden.from.is_none() && self.hidden.count == 0 {
            return series.latest(at);
        }
        Some(series.get(self.latest_at(at)?))
    }
}

impl Deref for View<'_> {
    type Target = Series;
    fn deref(&self) -> &Series {
        &self.state().series
    }
}

/// One reader's view of a collection's documents, taken under the collection's read lock (see
/// `Collection::snapshot`): quiet (no append in progress, none starts until it is dropped, and
/// documents are read without their locks) or at an apply number.
pub struct Snapshot<'c> {
    docs: &'c BTreeMap<String, Arc<Doc>>,
    /// The collection's count of quiet readers, if this is one of them.
    quiet: Option<&'c AtomicUsize>,
    seen: u64,
}

impl<'c> Snapshot<'c> {
    /// `quiet`: registered in that count with no append in progress (the caller checked).
    pub(super) fn new(
        docs: &'c BTreeMap<String, Arc<Doc>>,
        quiet: Option<&'c AtomicUsize>,
        seen: u64,
    ) -> Self {
        Snapshot { docs, quiet, seen }
    }

    /// Every document, in name order.
    pub fn docs(&self) -> impl Iterator<Item = (&'c String, InView<'_, 'c>)> + '_ {
        self.docs
            .iter()
            .map(|(n, doc)| (n, InView { snap: self, doc }))
    }

    /// A document of this snapshot's collection found through a handle rather than by name
    /// (from a remembered selection taken under the same read lock, see `patterns.rs`).
    pub fn handle<'d>(&self, doc: &'d Doc) -> InView<'_, 'd> {
        InView { snap: self, doc }
    }

    /// The document of that name.
    pub fn doc(&self, name: &str) -> Option<(&'c String, InView<'_, 'c>)> {
        let (n, doc) = self.docs.get_key_value(name)?;
        Some((n, InView { snap: self, doc }))
    }

    /// Whether documents are read without their locks.
    pub fn is_quiet(&self) -> bool {
        self.quiet.is_some()
    }

    /// The series of `doc`, read without its lock: `Some` only for a quiet snapshot, for a
    /// document of its collection (see [`InView::view`] for why nothing writes it meanwhile).
    pub(super) fn quiet_series<'s>(&'s self, doc: &'s Doc) -> Option<&'s Series> {
        self.quiet?;
        // SAFETY: as in `InView::view`: a quiet snapshot, borrowed for as long as the series,
        // keeps every writer of its collection's documents out.
        Some(unsafe { &(*doc.state.data_ptr()).series })
    }
}

impl Doc {
    /// Asks the CPU for the lines of the document's series (not the rest of its state).
    pub(super) fn prefetch_series(&self) {
        // SAFETY: only the field's address is computed (no read through the pointer, which
        // points into this live document).
        let series = unsafe { &raw const (*self.state.data_ptr()).series };
        prefetch::value(series);
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        if let Some(count) = self.quiet {
            count.fetch_sub(1, Ordering::Release);
        }
    }
}

/// A document of a snapshot's collection.
pub struct InView<'s, 'd> {
    snap: &'s Snapshot<'s>,
    doc: &'d Doc,
}

impl<'s, 'd: 's> InView<'s, 'd> {
    /// The document as the snapshot sees it; `None` when it took too many appends since the
    /// snapshot was taken to tell (never for a quiet one).
    pub fn view(&self) -> Option<View<'s>> {
        if self.snap.quiet.is_none() {
            return self.doc.read_at(self.snap.seen);
        }
        // SAFETY: the snapshot is registered as a quiet reader of the collection this document
        // belongs to (it came from the snapshot's own map, or from a selection the collection
        // remembered, which holds documents of that map only: its lists go whenever a document
        // leaves it) and was taken under the collection's read lock, which it borrows: no
        // writer holds the collection's write lock, and every append waits, before changing
        // anything, until no quiet reader is registered; an append in progress when the
        // snapshot was taken would have made it not quiet. (A document that had left the map
        // would be written by nobody at all.) So nothing writes the document while this
        // reference lives, and other readers only read.
        let state = unsafe { &*self.doc.state.data_ptr() };
        Some(View {
            state: Held::Quiet(state),
            hidden: Hidden::default(),
        })
    }
}

/// A document claimed for an append: read-locked, with the right to upgrade.
pub(super) struct Claimed<'a>(RwLockUpgradableReadGuard<'a, State>);

impl<'a> Claimed<'a> {
    pub fn series(&self) -> &Series {
        &self.0.series
    }

    /// Write-locks the document, once its readers have left.
    pub fn upgrade(self) -> Appending<'a> {
        Appending(lock::upgrade(self.0))
    }
}

/// A document write-locked for an append.
pub(super) struct Appending<'a>(RwLockWriteGuard<'a, State>);

impl Appending<'_> {
    pub fn series(&self) -> &Series {
        &self.0.series
    }

    /// Adds `records` as apply number `seq`. The caller has checked that they fit the
    /// document and are either newer than every record held, in increasing order, or one
    /// record at a timestamp the document does not hold.
    pub fn append<'r, D: Into<Incoming<'r>>>(
        &mut self,
        seq: u64,
        records: impl Iterator<Item = (i64, D)> + Clone,
    ) -> Result<(), SeriesError> {
        let st = &mut *self.0;
        let Some((ts, _)) = records.clone().next() else {
            return Ok(());
        };
        let among = st.series.newest_ts().is_some_and(|newest| ts < newest);
        let i = st.next;
        st.forgotten = st.recent[i].seq;
        st.recent[i] = Append { seq, ts, among };
        st.next = (i + 1) % REMEMBERED;
        let result = records
            .into_iter()
            .try_for_each(|(ts, data)| st.series.insert_incoming(ts, data.into()));
        // Once for the whole append, however many records it adds.
        st.series.prepare_tail();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(ts: &[i64]) -> Doc {
        let d = Doc::default();
        for &t in ts {
            d.exclusive().insert(t, "x").unwrap();
        }
        d
    }

    #[test]
    fn a_view_holds_the_document_as_it_was() {
        let d = doc(&[10, 20]);
        d.claim()
            .upgrade()
            .append(5, [(30, "a")].into_iter())
            .unwrap();
        d.claim()
            .upgrade()
            .append(7, [(40, "b"), (50, "c")].into_iter())
            .unwrap();
        let at = |seen: u64, ts: i64| d.read_at(seen).unwrap().latest_at(ts);
        assert_eq!(at(4, i64::MAX), Some(1), "before both appends");
        assert_eq!(at(5, i64::MAX), Some(2));
        assert_eq!(at(6, i64::MAX), Some(2));
        assert_eq!(at(7, i64::MAX), Some(4));
        assert_eq!(at(4, 15), Some(0), "older than the view's end");
        assert_eq!(at(4, 5), None);
        assert_eq!(d.read().len(), 5);
        // `latest` gives the record at `latest_at`, with or without records hidden.
        for seen in [4, 5, 7] {
            for ts in [5, 15, 35, 45, i64::MAX] {
                let v = d.read_at(seen).unwrap();
                let want = v.latest_at(ts).map(|i| v.get(i));
                assert_eq!(v.latest(ts), want, "seen {seen}, ts {ts}");
            }
        }
        let v = d.read_at(5).unwrap();
        assert_eq!(
            v.latest(i64::MAX).map(|(t, x)| (t, x.wire())),
            Some((30, "a"))
        );
    }

    #[test]
    fn a_view_older_than_every_remembered_append_is_refused() {
        let d = doc(&[1]);
        for n in 0..REMEMBERED as i64 {
            d.claim()
                .upgrade()
                .append(100 + n as u64, [(10 + n, "x")].into_iter())
                .unwrap();
        }
        assert_eq!(d.read_at(99).unwrap().latest_at(i64::MAX), Some(0));
        d.claim()
            .upgrade()
            .append(200, [(100, "x")].into_iter())
            .unwrap();
        assert!(
            d.read_at(99).is_none(),
            "the append numbered 100 is forgotten"
        );
        assert_eq!(d.read_at(100).unwrap().latest_at(i64::MAX), Some(1));
        assert_eq!(d.read_at(107).unwrap().latest_at(i64::MAX), Some(8));
        assert_eq!(d.read_at(200).unwrap().latest_at(i64::MAX), Some(9));
    }
}
