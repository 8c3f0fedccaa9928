//! One document: its series behind a lock of its own, and what a reader needs to see the
//! document as it was when the reader's view of the collection was taken.
//!
//! Appends to an existing document take only this lock (the collection's lock is read-held, see
//! [`Collection::append`](super::Collection::append)); each gets the collection's next apply
//! number, and the document remembers its last few appends as (number, length before). A
//! reader that took its view at number `seen` sees each document as its prefix before the first
//! append numbered after `seen`: appends only add records newer than every record held, so that
//! prefix is exactly the document at `seen`. Every other change takes the collection's write
//! lock, which no reader holds a view across.

use super::lock;
use super::series::{Series, SeriesError};
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::ops::Deref;

/// Appends a document remembers. A reader whose view is older than all of them (the document
/// took this many appends while the reader was going through the collection) cannot see the
/// document as it was and reads again under the collection's write lock.
const REMEMBERED: usize = 8;

/// One remembered append: its apply number (0: none yet) and the document's length before it.
#[derive(Debug, Default, Clone, Copy)]
struct Append {
    seq: u64,
    len_before: usize,
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

    /// The series, for a holder of the collection's write lock (no locking).
    pub fn get_mut(&mut self) -> &mut Series {
        &mut self.state.get_mut().series
    }

    pub fn into_series(self) -> Series {
        self.state.into_inner().series
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
        let len = guard
            .recent
            .iter()
            .filter(|a| a.seq > seen)
            .map(|a| a.len_before)
            .fold(guard.series.len(), usize::min);
        Some(View { guard, len })
    }

    /// Write-locks the document for an append.
    pub(super) fn write(&self) -> Appending<'_> {
        Appending(lock::write(&self.state))
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

/// A document read-locked as a reader's view holds it: the first `len` records of its series.
/// It reads like the series (through `Deref`) except for [`View::latest_at`], which is the one
/// question whose answer depends on the records after `len`.
pub struct View<'a> {
    guard: RwLockReadGuard<'a, State>,
    len: usize,
}

impl View<'_> {
    /// Position of the newest record with `ts <= at` among those the view holds. The records
    /// past the view are newer than all of those, so the answer is the series' own, capped.
    pub fn latest_at(&self, at: i64) -> Option<usize> {
        let i = self.guard.series.latest_at(at)?;
        if i < self.len {
            Some(i)
        } else {
            self.len.checked_sub(1)
        }
    }
}

impl Deref for View<'_> {
    type Target = Series;
    fn deref(&self) -> &Series {
        &self.guard.series
    }
}

/// A document write-locked for an append.
pub(super) struct Appending<'a>(RwLockWriteGuard<'a, State>);

impl Appending<'_> {
    pub fn series(&self) -> &Series {
        &self.0.series
    }

    /// Appends `records` as apply number `seq`. The caller has checked that they are newer
    /// than every record held, in increasing order, and fit the document.
    pub fn append<'r>(
        &mut self,
        seq: u64,
        records: impl Iterator<Item = (i64, &'r str)>,
    ) -> Result<(), SeriesError> {
        let st = &mut *self.0;
        let len_before = st.series.len();
        let i = st.next;
        st.forgotten = st.recent[i].seq;
        st.recent[i] = Append { seq, len_before };
        st.next = (i + 1) % REMEMBERED;
        records
            .into_iter()
            .try_for_each(|(ts, data)| st.series.insert(ts, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(ts: &[i64]) -> Doc {
        let mut s = Series::default();
        for &t in ts {
            s.insert(t, "x").unwrap();
        }
        Doc::new(s)
    }

    #[test]
    fn a_view_holds_the_document_as_it_was() {
        let d = doc(&[10, 20]);
        d.write().append(5, [(30, "a")].into_iter()).unwrap();
        d.write()
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
    }

    #[test]
    fn a_view_older_than_every_remembered_append_is_refused() {
        let d = doc(&[1]);
        for n in 0..REMEMBERED as i64 {
            d.write()
                .append(100 + n as u64, [(10 + n, "x")].into_iter())
                .unwrap();
        }
        assert_eq!(d.read_at(99).unwrap().latest_at(i64::MAX), Some(0));
        d.write().append(200, [(100, "x")].into_iter()).unwrap();
        assert!(
            d.read_at(99).is_none(),
            "the append numbered 100 is forgotten"
        );
        assert_eq!(d.read_at(100).unwrap().latest_at(i64::MAX), Some(1));
        assert_eq!(d.read_at(107).unwrap().latest_at(i64::MAX), Some(8));
        assert_eq!(d.read_at(200).unwrap().latest_at(i64::MAX), Some(9));
    }
}
