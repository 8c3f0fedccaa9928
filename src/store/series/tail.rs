//! The newest record rendered for reads (a last-value cache): `<ts>,"data":"<body>"}`, the end
//! of a `qry` member after its head (`"name":{"ts":`), so that a quiet `qry` for "now" copies
//! two short runs per document instead of writing the timestamp's digits and the data.
//!
//! Rendered lazily, by the first reader that wants it after a change, so that writers pay
//! almost nothing: every change of the records marks it stale (one store: inserts funnel
//! through `insert_stored`, removals through `remove_positions`), and the holder of the
//! document's write lock, once its change is made, only makes sure the buffer has room for the
//! newest record ([`Series::prepare_tail`]: a comparison, an allocation only when the newest
//! record is longer than any before; once per append however many records it adds). A reader
//! renders into that room under the claim protocol of `claim.rs` (claim, render, publish;
//! never waiting). So a tail is either absent or exactly the newest record: a change marks it
//! stale before anything else, and nothing renders while a writer holds the document.
//!
//! The buffer is counted in the series' heap bytes; only writers change its size, so the
//! collection's held bytes stay exact.

use super::claim::Claim;
use super::{Series, ALLOC_OVERHEAD};
use crate::protocol::record_out;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

/// Data (escaped) longer than this gets no tail: the copy it saves is small beside the data's
/// own, and the memory a tail holds stays bounded per document.
pub const TAIL_MAX_BODY: usize = 256;

/// The rendered newest record and the room for it.
#[derive(Debug, Default)]
pub(super) struct Tail {
    claim: Claim,
    /// Bytes rendered (meaningful while published).
    len: AtomicU32,
    /// The rendered record's timestamp (meaningful while published). The series' newest
    /// time, kept here too: read beside the claim, it saved ~3 instructions a document against
    /// `Series::newest_ts` (callgrind, `qry` 16,684 against 16,979 an answer).
    ts: AtomicI64,
    /// The room, sized by writers only; its bytes written by a reader holding the claim.
    buf: Box<[UnsafeCell<u8>]>,
}

// SAFETY: the bytes of `buf` are written only by a reader holding the claim or by a holder of
// `&mut`, and read only once the claimant published them (`claim.rs`); the other fields are
// atomics or are changed only through `&mut`.
unsafe impl Sync for Tail {}

impl Clone for Tail {
    /// A clone has room of the same size and nothing rendered (the next reader renders).
    fn clone(&self) -> Self {
        Tail {
            buf: room(self.buf.len()),
            ..Tail::default()
        }
    }
}

fn room(n: usize) -> Box<[UnsafeCell<u8>]> {
    (0..n).map(|_| UnsafeCell::new(0)).collect()
}

impl Tail {
    /// Heap bytes the room takes.
    pub(super) fn heap_bytes(&self) -> usize {
        match self.buf.len() {
            0 => 0,
            n => n + ALLOC_OVERHEAD,
        }
    }
}

impl Series {
    /// Marks the tail stale: the records are about to change.
    #[inline(always)]
    pub(super) fn forget_tail(&mut self) {
        self.tail.claim.reset();
    }

    /// Makes room for the newest record's tail, unless its data is over [`TAIL_MAX_BODY`]
    /// bytes or it sits in sealed history. Call once a change is complete (a reader renders
    /// the tail when it first wants it).
    pub fn prepare_tail(&mut self) {
        let Some(e) = self.entries.last() else {
            return;
        };
        let len = e.len as usize;
        if len <= TAIL_MAX_BODY && self.tail.buf.len() < len + record_out::TAIL_EXTRA {
            // Rounded up, so that data growing by a few bytes does not reallocate each time.
            self.tail.buf = room((len + record_out::TAIL_EXTRA).next_multiple_of(32));
        }
    }

    /// The newest record's timestamp and its rendered tail, when the newest record is at or
    /// before `at` (the "now" of a `qry`) and a tail is rendered or this reader can render it;
    /// `None` otherwise (the caller writes the record itself).
    #[inline(always)]
    pub fn latest_rendered(&self, at: i64) -> Option<(i64, &[u8])> {
        if !self.tail.claim.is_ready() {
            return self.render_tail(at);
        }
        let ts = self.tail.ts.load(Ordering::Relaxed);
        if ts > at {
            return None;
        }
        Some((ts, self.tail_bytes()))
    }

    /// The rendered bytes.
    fn tail_bytes(&self) -> &[u8] {
        let len = (self.tail.len.load(Ordering::Relaxed) as usize).min(self.tail.buf.len());
        // SAFETY: called once the tail is seen published (acquire): the claimant's writes of
        // these bytes happened before, and nothing writes them until a holder of `&mut` resets
        // the state (see `Tail`'s `Sync`). `UnsafeCell<u8>` has the layout of `u8`, and `len` is
        // within the room.
        unsafe { std::slice::from_raw_parts(UnsafeCell::raw_get(self.tail.buf.as_ptr()), len) }
    }

    /// [`Series::latest_rendered`] when nothing is rendered yet: renders the tail if the
    /// newest record is at or before `at`, fits the room and no other reader holds the claim.
    #[inline(never)]
    fn render_tail(&self, at: i64) -> Option<(i64, &[u8])> {
        let e = *self.entries.last()?;
        let len = e.len as usize;
        if e.ts > at || self.tail.buf.len() < len + record_out::TAIL_EXTRA {
            return None;
        }
        let start = e.start as usize;
        let body = self.arena.as_bytes().get(start..start + len)?;
        let held = self.tail.claim.try_claim()?;
        // SAFETY: this thread holds the claim, so no other thread reads or writes the room's
        // bytes (see `Tail`'s `Sync`); the room is `len + TAIL_EXTRA` bytes or
        // more (checked above), what `store_tail` may write.
        let n = unsafe {
            record_out::store_tail(UnsafeCell::raw_get(self.tail.buf.as_ptr()), e.ts, body)
        };
        self.tail.len.store(n as u32, Ordering::Relaxed);
        self.tail.ts.store(e.ts, Ordering::Relaxed);
        held.publish();
        Some((e.ts, self.tail_bytes()))
    }

    /// Where the rendered tail starts, when there is one (for a prefetch).
    pub(super) fn tail_ptr(&self) -> Option<*const u8> {
        self.tail
            .claim
            .looks_ready()
            .then_some(UnsafeCell::raw_get(self.tail.buf.as_ptr()).cast_const())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(s: &Series) -> Option<(i64, String)> {
        s.latest_rendered(i64::MAX)
            .map(|(ts, t)| (ts, String::from_utf8(t.to_vec()).unwrap()))
    }

    /// What the tail must be: the newest record rendered from scratch.
    fn expected(s: &Series) -> Option<(i64, String)> {
        let (ts, data) = s.latest(i64::MAX)?;
        Some((ts, format!("{ts},\"data\":\"{}\"}}", data.wire())))
    }

    /// After any change, the tail is absent or equal to the newest record, before and after
    /// `prepare_tail`; after it, present whenever the newest record is plain and short.
    fn check(s: &mut Series, what: &str) {
        if let Some(t) = rendered(s) {
            assert_eq!(Some(t), expected(s), "stale tail after {what}");
        }
        s.prepare_tail();
        if let Some(t) = rendered(s) {
            assert_eq!(Some(t), expected(s), "wrong tail rendered after {what}");
        }
        // Read again: from the rendered bytes this time.
        assert_eq!(rendered(s), rendered(s), "{what}");
    }

    #[test]
    fn every_change_leaves_no_stale_tail() {
        let mut s = Series::new();
        s.prepare_tail();
        assert_eq!(rendered(&s), None, "empty");
        s.insert(10, "a").unwrap();
        assert_eq!(rendered(&s), None, "no room before prepare_tail");
        check(&mut s, "first insert");
        assert_eq!(rendered(&s), Some((10, "10,\"data\":\"a\"}".into())));
        assert_eq!(
            s.latest_rendered(9),
            None,
            "a time before the newest record"
        );
        assert_eq!(s.latest_rendered(10).map(|(ts, _)| ts), Some(10));
        // Appends past a seal, a replace of the newest, a late record, an escape.
        for ts in 11..200 {
            s.insert(ts, &format!("v{ts}")).unwrap();
            check(&mut s, "append");
        }
        s.insert(199, "replaced \"newest\"").unwrap();
        check(&mut s, "replace of the newest");
        assert_eq!(
            rendered(&s),
            Some((199, "199,\"data\":\"replaced \\\"newest\\\"\"}".into()))
        );
        s.insert(5, "late").unwrap();
        check(&mut s, "late record into sealed history");
        s.insert(150, "late plain").unwrap();
        check(&mut s, "replace in the plain block");
        s.insert(20, "replaced sealed").unwrap();
        check(&mut s, "replace in sealed history");
        assert!(s.remove(199));
        check(&mut s, "removal of the newest");
        assert_eq!(rendered(&s).map(|(ts, _)| ts), Some(198));
        assert!(s.remove(100));
        check(&mut s, "removal of another");
        assert!(s.remove_range(190, 1000) > 0);
        check(&mut s, "range removal of the newest");
        assert_eq!(rendered(&s).map(|(ts, _)| ts), Some(189));
        assert!(s.remove_before(50) > 0);
        check(&mut s, "retention by age");
        assert!(s.remove_oldest(3) > 0);
        check(&mut s, "retention by count");
        let mut twin = s.clone();
        assert_eq!(rendered(&twin), rendered(&s), "a clone renders the same");
        twin.insert(1000, "in the clone").unwrap();
        check(&mut twin, "insert into a clone");
        assert_eq!(rendered(&s).map(|(ts, _)| ts), Some(189), "the original");
        s.insert(2000, &"x".repeat(TAIL_MAX_BODY + 1)).unwrap();
        s.prepare_tail();
        assert_eq!(rendered(&s), None, "long data gets no tail");
        s.insert(2001, &"y".repeat(TAIL_MAX_BODY)).unwrap();
        check(&mut s, "data at the limit");
        assert!(rendered(&s).is_some());
        // Shorter data after longer keeps the room and renders into it.
        s.insert(2002, "z").unwrap();
        check(&mut s, "short after long");
        assert_eq!(rendered(&s), Some((2002, "2002,\"data\":\"z\"}".into())));
        let n = s.len();
        assert_eq!(s.remove_range(i64::MIN, i64::MAX), n);
        check(&mut s, "emptied");
        assert_eq!(rendered(&s), None);
    }

    #[test]
    fn the_room_is_counted_in_heap_bytes_and_changed_only_by_writers() {
        let mut s = Series::new();
        s.insert(1, "abc").unwrap();
        let before = s.heap_bytes();
        s.prepare_tail();
        let prepared = s.heap_bytes();
        assert!(prepared >= before + 3 + record_out::TAIL_EXTRA);
        assert!(rendered(&s).is_some());
        assert_eq!(
            s.heap_bytes(),
            prepared,
            "a reader's render allocates nothing"
        );
    }

    #[test]
    fn readers_on_many_threads_render_once_and_agree() {
        let mut s = Series::new();
        for ts in 1..=100 {
            s.insert(ts, &format!("record {ts}")).unwrap();
        }
        s.prepare_tail();
        let want = expected(&s);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        if let Some(t) = rendered(&s) {
                            assert_eq!(Some(t), want);
                        }
                    }
                });
            }
        });
        assert_eq!(rendered(&s), want);
    }
}
