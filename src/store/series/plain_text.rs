//! The plain block's records rendered as an answer writes them, `,{"ts":…,"data":"…"}`,
//! newest first, so that `qdoc` copies each of them whole and a page newest first in one
//! copy, as it does from the kept sealed blocks (`rendered.rs`). The records sit at the end of
//! their buffer and a newer one is written in front of them, so that rendering one more record
//! moves none of the others.
//!
//! Rendered by readers, a record at a time and each record once: the rendering holds the
//! plain block's first `k` records, and a reader that finds it stale extends it to the whole
//! block. Writers pay one store for an append (the rendering goes back to stale; the records
//! already rendered stay valid, since an append changes none of them) and cut the rendering
//! back to the first record a change touches otherwise (a record inserted before others or
//! replaced, a removal, a seal). Readers extend it under the claim protocol of `claim.rs`
//! (claim, render, publish; never waiting), the last-value cache's (`tail.rs`).
//!
//! Its bytes are allocated by readers, so they are counted where the kept decoded blocks are
//! (`cache.rs`: the process-wide budget, past which nothing more is rendered) rather than in
//! the series' held bytes, which only writers change.

use super::cache::Cached;
use super::claim::Claim;
use super::{Series, ALLOC_OVERHEAD};
use crate::protocol::encode;
use std::cell::UnsafeCell;

/// The plain block's first records, rendered.
#[derive(Debug, Default)]
pub(super) struct PlainText {
    /// Published when every record of the plain block is rendered; stale when records may be
    /// missing at the end.
    claim: Claim,
    /// Boxed, so that a document nobody reads this way holds one pointer.
    rendering: UnsafeCell<Option<Box<Rendering>>>,
}

#[derive(Debug, Default)]
struct Rendering {
    /// The records, newest first, at the end of the buffer (its bytes before them unused).
    buf: Vec<u8>,
    /// Plain record `j` starts `from_end[j]` bytes before the buffer's end and ends where
    /// record `j - 1` starts (at the end for record 0).
    from_end: Vec<usize>,
    /// The record being rendered.
    scratch: Vec<u8>,
    /// Bytes counted in the process-wide budget.
    counted: usize,
}

// SAFETY: `rendering` is written only by a reader holding the claim or by a holder of `&mut`,
// and read only once the claimant published it (`claim.rs`).
unsafe impl Sync for PlainText {}

impl Clone for PlainText {
    /// A clone has nothing rendered (the next reader renders).
    fn clone(&self) -> Self {
        PlainText::default()
    }
}

impl Drop for PlainText {
    fn drop(&mut self) {
        if let Some(r) = self.rendering.get_mut() {
            Cached::uncount(r.counted);
        }
    }
}

/// The rendered records of the plain block, as a reader sees them.
#[derive(Clone, Copy)]
pub(super) struct PlainRecords<'a> {
    buf: &'a [u8],
    from_end: &'a [usize],
}

impl<'a> PlainRecords<'a> {
    /// Where plain record `j` ends, counted back from the buffer's end.
    #[inline(always)]
    fn end_from_end(&self, j: usize) -> usize {
        match j.checked_sub(1) {
            Some(newer) => self.from_end[newer],
            None => 0,
        }
    }

    /// The text of plain records `j - k..j`, newest first, when they are rendered.
    #[inline(always)]
    fn text(&self, j: usize, k: usize) -> Option<&'a str> {
        let newest = j.checked_sub(1)?;
        let start = self.buf.len() - *self.from_end.get(newest)?;
        let end = self.buf.len() - self.end_from_end(j - k);
        let bytes = self.buf.get(start..end)?;
        // SAFETY: the records are `&str` bodies copied whole and the ASCII pieces
        // `record_out` writes, each starting at a `,` and ending after `}`, one after another:
        // a slice between two of their bounds is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    }

    /// Plain record `j`'s text, comma first, when it is rendered.
    #[inline(always)]
    pub(super) fn get(&self, j: usize) -> Option<&'a str> {
        self.text(j + 1, 1)
    }

    /// How many plain records are rendered (the first ones).
    #[inline(always)]
    pub(super) fn rendered(&self) -> usize {
        self.from_end.len()
    }

    /// Plain records `j - 1` down to `j - k`, newest first, as one text (empty unless
    /// `k <= j <= self.rendered()`).
    #[inline(always)]
    pub(super) fn run(&self, j: usize, k: usize) -> &'a str {
        self.text(j, k.min(j)).unwrap_or_default()
    }
}

impl Series {
    /// The plain block's records are about to change by an append at its end: the rendered
    /// ones stay, the rendering is stale.
    #[inline(always)]
    pub(super) fn plain_text_stale(&mut self) {
        self.plain_text.claim.reset();
    }

    /// The plain block changes from its record `i` on (inserted before it, replaced,
    /// removed, sealed): only the records before it stay rendered.
    pub(super) fn plain_text_cut(&mut self, i: usize) {
        self.plain_text.claim.reset();
        if let Some(r) = self.plain_text.rendering.get_mut() {
            // Records before `i` stay where they are, counted from the buffer's end.
            r.from_end.truncate(i);
        }
    }

    /// The plain block's records rendered, extended first by this reader when they are stale
    /// and nobody else holds the claim; `None` when they are stale and this reader cannot
    /// render them (the caller writes its records itself).
    pub(super) fn plain_records(&self) -> Option<PlainRecords<'_>> {
        let pt = &self.plain_text;
        if !pt.claim.is_ready() {
            if !Cached::within_budget() {
                return None;
            }
            let held = pt.claim.try_claim()?;
            // SAFETY: this thread holds the claim, so no other thread reads or writes the
            // rendering (see `PlainText`'s `Sync`).
            let r = unsafe { &mut *pt.rendering.get() };
            self.extend(r.get_or_insert_with(Box::default));
            held.publish();
        }
        // SAFETY: the rendering was seen published (acquire) or published by this thread: its
        // writes happened before, and nothing writes it until a holder of `&mut` resets the
        // claim.
        let r = unsafe { (*pt.rendering.get()).as_deref() }?;
        Some(PlainRecords {
            buf: &r.buf,
            from_end: &r.from_end,
        })
    }

    /// Renders the plain records after those `r` holds, each in front of the ones before.
    fn extend(&self, r: &mut Rendering) {
        let done = r.from_end.len();
        if done >= self.entries.len() {
            return;
        }
        for &e in &self.entries[done..] {
            r.scratch.clear();
            // Written by the answer's own writer (a `qdoc` item after the first).
            encode::escaped_record_item(&mut r.scratch, false, e.ts, self.data(e));
            let used = r.from_end.last().copied().unwrap_or(0);
            let need = used + r.scratch.len();
            if need > r.buf.len() {
                // Room for as much again in front, the records moved to the new end.
                let mut grown = vec![0u8; need * 2 + 256];
                let (old, new) = (r.buf.len(), grown.len());
                grown[new - used..].copy_from_slice(&r.buf[old - used..]);
                r.buf = grown;
            }
            let end = r.buf.len() - used;
            r.buf[end - r.scratch.len()..end].copy_from_slice(&r.scratch);
            r.from_end.push(need);
        }
        let bytes = size_of::<Rendering>()
            + r.buf.capacity()
            + r.from_end.capacity() * size_of::<usize>()
            + r.scratch.capacity()
            + 4 * ALLOC_OVERHEAD;
        Cached::count(bytes.saturating_sub(r.counted));
        r.counted = r.counted.max(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::data::Data;
    use crate::store::series::RecordSink;

    /// What `scan_texts` gives, newest first: each record's text, and whether it came
    /// rendered.
    #[derive(Default)]
    struct Texts(Vec<(String, bool)>);

    impl RecordSink for Texts {
        /// A run of records: each starts with `,{"ts":` (a bare quote is never inside
        /// escaped data).
        fn rendered(&mut self, text: &str) {
            let starts: Vec<usize> = text.match_indices(",{\"ts\":").map(|(i, _)| i).collect();
            for (n, &start) in starts.iter().enumerate() {
                let end = starts.get(n + 1).copied().unwrap_or(text.len());
                self.0.push((text[start..end].to_owned(), true));
            }
        }
        fn record(&mut self, ts: i64, data: Data<'_>) {
            let body = data.wire();
            self.0
                .push((format!(",{{\"ts\":{ts},\"data\":\"{body}\"}}"), false));
        }
    }

    fn read(s: &Series) -> Vec<(String, bool)> {
        let mut texts = Texts::default();
        assert_eq!(
            s.scan_texts(0..s.len(), true, usize::MAX, &mut texts),
            s.len()
        );
        texts.0
    }

    /// Every plain record comes rendered, as an answer writes it.
    fn assert_rendered(s: &Series) {
        let got = read(s);
        for (i, e) in s.entries.iter().rev().enumerate() {
            let (ts, data) = (e.ts, s.data(*e));
            let want = format!(",{{\"ts\":{ts},\"data\":\"{data}\"}}");
            assert_eq!(got[i], (want, true));
        }
    }

    #[test]
    fn each_change_leaves_the_plain_records_rendered_as_they_are() {
        let mut s = Series::new();
        for ts in (10..60).step_by(2) {
            s.insert(ts, &format!("v{ts} \"q\"")).unwrap();
        }
        assert_rendered(&s);
        s.insert(70, "appended").unwrap();
        assert_rendered(&s);
        s.insert(30, "replaced").unwrap();
        assert_rendered(&s);
        s.insert(31, "between").unwrap();
        assert_rendered(&s);
        s.remove_oldest(5);
        assert_rendered(&s);
        for ts in 100..300 {
            s.insert(ts, "past a seal").unwrap();
        }
        assert_rendered(&s);
    }

    #[test]
    fn four_readers_at_once_read_the_same_records() {
        let mut s = Series::new();
        for ts in 1..50 {
            s.insert(ts, &format!("r{ts}")).unwrap();
        }
        let text = |ts: i64, data: &str| format!(",{{\"ts\":{ts},\"data\":\"{data}\"}}");
        let older: Vec<String> = (1..50)
            .rev()
            .map(|ts| text(ts, &format!("r{ts}")))
            .collect();
        for round in 0..20 {
            s.insert(100 + round, "next").unwrap();
            let want: Vec<String> = (0..=round)
                .rev()
                .map(|r| text(100 + r, "next"))
                .chain(older.iter().cloned())
                .collect();
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(|| {
                        let got: Vec<String> = read(&s).into_iter().map(|(t, _)| t).collect();
                        assert_eq!(got, want);
                    });
                }
            });
            assert_rendered(&s);
        }
    }
}
