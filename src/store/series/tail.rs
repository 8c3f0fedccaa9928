//! The newest record rendered ahead of time (a last-value cache): `<ts>,"data":"<body>"}`,
//! the end of a `qry` member after its head (`"name":{"ts":`), so that a quiet `qry` for "now"
//! copies two short runs per document instead of writing the timestamp's digits and the data.
//!
//! Writers keep it: every change of the records empties it first (inserts funnel through
//! `insert_stored`, removals through `remove_positions`), and the holder of the document's
//! write lock renders it again once its whole change is made ([`Series::render_tail`]: once
//! per document per request, not per record). A tail is therefore either empty or exactly the
//! newest record: never stale. Readers only read it, under the same rules as the rest of the
//! series (a quiet snapshot or the document's lock), so it needs no lock of its own.

use super::Series;
use crate::protocol::encode;

/// Data (escaped) longer than this gets no tail: the copy it saves is small beside the data's
/// own, and the memory a tail holds stays bounded per document.
pub const TAIL_MAX_BODY: usize = 256;

impl Series {
    /// Empties the tail: the records are about to change. Keeps its buffer for the next one.
    #[inline(always)]
    pub(super) fn forget_tail(&mut self) {
        self.tail.clear();
    }

    /// Renders the newest record as the tail, unless it is rendered already, the series is
    /// empty, the newest record sits in sealed history or its data is over
    /// [`TAIL_MAX_BODY`] bytes. Call once a change is complete.
    pub fn render_tail(&mut self) {
        if !self.tail.is_empty() {
            return;
        }
        let Some(&e) = self.entries.last() else {
            return;
        };
        let len = e.len as usize;
        if len > TAIL_MAX_BODY {
            return;
        }
        let start = e.start as usize;
        let Some(body) = self.arena.as_bytes().get(start..start + len) else {
            return;
        };
        encode::record_tail(&mut self.tail, e.ts, body);
        self.tail_ts = e.ts;
    }

    /// The newest record's timestamp and its rendered tail, when it is rendered and the
    /// newest record is at or before `at` (the "now" of a `qry`); `None` otherwise (the caller
    /// reads the record instead).
    #[inline(always)]
    pub fn latest_rendered(&self, at: i64) -> Option<(i64, &[u8])> {
        if self.tail.is_empty() || self.tail_ts > at {
            return None;
        }
        Some((self.tail_ts, &self.tail))
    }

    /// Where the rendered tail starts, when there is one (for a prefetch).
    pub(super) fn tail_ptr(&self) -> Option<*const u8> {
        (!self.tail.is_empty()).then_some(self.tail.as_ptr())
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

    /// After any change, the tail is empty or equal to the newest record; after
    /// `render_tail`, it is present whenever the newest record is plain and short.
    fn check(s: &mut Series, what: &str) {
        if let Some(t) = rendered(s) {
            assert_eq!(Some(t), expected(s), "stale tail after {what}");
        }
        s.render_tail();
        if let Some(t) = rendered(s) {
            assert_eq!(Some(t), expected(s), "wrong tail rendered after {what}");
        }
    }

    #[test]
    fn every_change_leaves_no_stale_tail() {
        let mut s = Series::new();
        s.render_tail();
        assert_eq!(rendered(&s), None, "empty");
        s.insert(10, "a").unwrap();
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
        assert_eq!(rendered(&twin), rendered(&s), "a clone keeps the tail");
        twin.insert(1000, "in the clone").unwrap();
        check(&mut twin, "insert into a clone");
        assert_eq!(rendered(&s).map(|(ts, _)| ts), Some(189), "the original");
        s.insert(2000, &"x".repeat(TAIL_MAX_BODY + 1)).unwrap();
        s.render_tail();
        assert_eq!(rendered(&s), None, "long data gets no tail");
        s.insert(2001, &"y".repeat(TAIL_MAX_BODY)).unwrap();
        check(&mut s, "data at the limit");
        assert!(rendered(&s).is_some());
        let n = s.len();
        assert_eq!(s.remove_range(i64::MIN, i64::MAX), n);
        check(&mut s, "emptied");
        assert_eq!(rendered(&s), None);
    }

    #[test]
    fn the_tail_is_counted_in_heap_bytes() {
        let mut s = Series::new();
        s.insert(1, "abc").unwrap();
        let before = s.heap_bytes();
        s.render_tail();
        assert!(s.heap_bytes() >= before + s.tail.len());
    }
}
