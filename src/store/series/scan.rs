//! Reading runs of records: [`Series::scan`] walks a range of positions either way, each sealed
//! block in the way decoded once (into a buffer of the thread's, or into the block's cache
//! for the newest blocks, see `cache.rs`, where it is kept rendered), the plain block read in
//! place.

use super::block::Decoded;
use super::Series;
use crate::store::data::Data;
use std::ops::{ControlFlow, Range};

thread_local! {
    /// The decode buffer of [`Series::scan`].
    static SCAN_BUF: std::rc::Rc<std::cell::RefCell<Decoded>> = Default::default();
}

/// A scan's step for each record: its time, its data as stored and, where it is kept
/// rendered, its text. A trait rather than a closure so that a step can be forced inline into
/// the scan's loops (`#[inline(always)]` on its method).
trait Visit {
    fn visit(&mut self, ts: i64, body: &str, text: Option<&str>) -> ControlFlow<()>;

    /// Up to `n` records, newest first, all kept rendered: `run(k)` is the text of the first
    /// `k` of them, one after another. Returns how many the step took whole; the rest come
    /// one by one through `visit`. A step that wants each record takes none.
    #[inline(always)]
    fn visit_run<'r>(&mut self, _n: usize, _run: impl Fn(usize) -> &'r str) -> usize {
        0
    }
}

/// A closure as a [`Visit`], its argument types spelled out so that it is general over the
/// records' lifetimes.
fn visitor<F: FnMut(i64, &str, Option<&str>) -> ControlFlow<()>>(f: F) -> F {
    f
}

impl<F: FnMut(i64, &str, Option<&str>) -> ControlFlow<()>> Visit for F {
    #[inline(always)]
    fn visit(&mut self, ts: i64, body: &str, text: Option<&str>) -> ControlFlow<()> {
        self(ts, body, text)
    }
}

/// [`Series::scan_texts`]' step: up to `limit` records into `sink`.
struct Texts<'s, S> {
    sink: &'s mut S,
    given: usize,
    limit: usize,
    escaped: bool,
}

impl<S: RecordSink> Visit for Texts<'_, S> {
    #[inline(always)]
    fn visit(&mut self, ts: i64, body: &str, text: Option<&str>) -> ControlFlow<()> {
        if self.given == self.limit {
            return ControlFlow::Break(());
        }
        self.given += 1;
        match text {
            Some(text) => self.sink.rendered(text),
            None => self.sink.record(ts, Data::new(body, self.escaped)),
        }
        ControlFlow::Continue(())
    }

    #[inline(always)]
    fn visit_run<'r>(&mut self, n: usize, run: impl Fn(usize) -> &'r str) -> usize {
        let k = n.min(self.limit - self.given);
        if k > 0 {
            self.sink.rendered(run(k));
            self.given += k;
        }
        k
    }
}

/// Where [`Series::scan_texts`] gives its records.
pub trait RecordSink {
    /// A record as an answer writes it, comma first (`,{"ts":…,"data":"…"}`).
    fn rendered(&mut self, text: &str);
    /// A record by its time and data.
    fn record(&mut self, ts: i64, data: Data<'_>);
}

impl Series {
    /// Calls `f` with the records at `positions` (a range of positions, as [`Series::range`]
    /// gives), oldest first or, with `reverse`, newest first, until it breaks. Each sealed
    /// block in the way is decoded once, into a buffer of this call.
    pub fn scan(
        &self,
        positions: Range<usize>,
        reverse: bool,
        mut f: impl FnMut(i64, Data<'_>) -> ControlFlow<()>,
    ) {
        let escaped = self.special;
        let mut step = visitor(|ts, body, _| f(ts, Data::new(body, escaped)));
        self.scan_stored(positions, reverse, false, &mut step);
    }

    /// The records at `positions`, oldest first or with `reverse` newest first, for an answer
    /// that tests nothing on them: at most `limit`, each given to `sink` whole when it is kept
    /// rendered (see `rendered.rs`, `plain_text.rs`) and by its time and data otherwise.
    /// Returns how many it gave (all of `positions` but past `limit`).
    pub fn scan_texts(
        &self,
        positions: Range<usize>,
        reverse: bool,
        limit: usize,
        sink: &mut impl RecordSink,
    ) -> usize {
        let mut texts = Texts {
            sink,
            given: 0,
            limit,
            escaped: self.special,
        };
        self.scan_stored(positions, reverse, true, &mut texts);
        texts.given
    }

    /// The records at `positions` given to `f` with their data as stored, and with the text
    /// of those kept rendered (the plain block's only with `render`: it is rendered first if
    /// need be, see `plain_text.rs`). Generic all the way down, so that a step forced inline
    /// lands in each loop (through `dyn FnMut` each record paid a call and the saving of six
    /// registers).
    fn scan_stored<F>(&self, positions: Range<usize>, reverse: bool, render: bool, f: &mut F)
    where
        F: Visit,
    {
        let Range { start, end } = positions;
        let end = end.min(self.len());
        let (start, end) = (start + self.dead, end + self.dead);
        if start >= end {
            return;
        }
        let plain = start.max(self.sealed)..end;
        let sealed = start..end.min(self.sealed);
        if reverse {
            if self.scan_plain(plain, true, render, f).is_continue() {
                let _ = self.scan_sealed(sealed, true, f);
            }
        } else if self.scan_sealed(sealed, false, f).is_continue() {
            let _ = self.scan_plain(plain, false, render, f);
        }
    }

    /// The plain block's part of a scan (internal positions).
    fn scan_plain<F>(
        &self,
        plain: Range<usize>,
        reverse: bool,
        render: bool,
        f: &mut F,
    ) -> ControlFlow<()>
    where
        F: Visit,
    {
        if plain.is_empty() {
            return ControlFlow::Continue(());
        }
        let plain = plain.start - self.sealed..plain.end - self.sealed;
        let texts = if render { self.plain_records() } else { None };
        let mut plain = plain;
        if reverse {
            // The newest records of the page whole, when they are rendered.
            if let Some(t) = texts.filter(|t| plain.end <= t.rendered()) {
                let end = plain.end;
                plain.end -= f.visit_run(plain.len(), |k| t.run(end, k));
            }
        }
        let first = plain.start;
        let entries = &self.entries[plain];
        // Over the slice, not by index: no bounds check per record.
        if reverse {
            for (i, &e) in entries.iter().enumerate().rev() {
                f.visit(e.ts, self.data(e), texts.and_then(|t| t.get(first + i)))?;
            }
        } else {
            for (i, &e) in entries.iter().enumerate() {
                f.visit(e.ts, self.data(e), texts.and_then(|t| t.get(first + i)))?;
            }
        }
        ControlFlow::Continue(())
    }

    /// The sealed blocks' part of a scan (internal positions): each block in the way from
    /// its cache, or decoded into the thread's buffer.
    fn scan_sealed<F>(&self, sealed: Range<usize>, reverse: bool, f: &mut F) -> ControlFlow<()>
    where
        F: Visit,
    {
        if sealed.is_empty() {
            return ControlFlow::Continue(());
        }
        // One decode buffer per thread, kept between calls (a nested scan gets its own).
        let mut own = Decoded::default();
        let cell = SCAN_BUF.with(|c| c.clone());
        let mut borrowed = cell.try_borrow_mut().ok();
        let buf: &mut Decoded = match borrowed.as_deref_mut() {
            Some(b) => b,
            None => &mut own,
        };
        let (first, last) = (self.block_of(sealed.start), self.block_of(sealed.end - 1));
        let mut visit = |bi: usize| -> ControlFlow<()> {
            let b = &self.blocks[bi];
            let lo = sealed.start.max(b.pos) - b.pos;
            let hi = sealed.end.min(b.pos + b.count as usize) - b.pos;
            let r = match b.cache.get() {
                Some(r) => r,
                None if self.keeps_decoded(bi) => self.cached(bi),
                None => {
                    b.decode(buf);
                    let buf = &*buf;
                    return each(lo..hi, reverse, f, |i| {
                        let (ts, data) = buf.get(i);
                        (ts, data, None)
                    });
                }
            };
            // A page newest first takes the block's records in it whole.
            let hi = if reverse {
                hi - f.visit_run(hi - lo, |k| r.run(hi, k))
            } else {
                hi
            };
            each(lo..hi, reverse, f, |i| {
                let (ts, data, text) = r.record(i);
                (ts, data, Some(text))
            })
        };
        let flow = if reverse {
            (first..=last).rev().try_for_each(&mut visit)
        } else {
            (first..=last).try_for_each(&mut visit)
        };
        // A block of a few huge records does not stay in the thread's buffer.
        if let Some(b) = borrowed.as_deref_mut() {
            b.release_if_large();
        }
        flow
    }
}

/// Calls `f` with the records `record` gives for `positions`, either way.
#[inline(always)]
fn each<'r, F: Visit>(
    positions: Range<usize>,
    reverse: bool,
    f: &mut F,
    record: impl Fn(usize) -> (i64, &'r str, Option<&'r str>),
) -> ControlFlow<()> {
    if reverse {
        for i in positions.rev() {
            let (ts, data, text) = record(i);
            f.visit(ts, data, text)?;
        }
    } else {
        for i in positions {
            let (ts, data, text) = record(i);
            f.visit(ts, data, text)?;
        }
    }
    ControlFlow::Continue(())
}
