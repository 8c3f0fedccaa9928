//! Reading runs of records: [`Series::scan`] walks a range of positions either way, each sealed
//! block in the way decoded once (into a buffer of the thread's, or into the block's cache
//! for the newest blocks, see `cache.rs`), the plain block read in place.

use super::block::Decoded;
use super::Series;
use crate::store::data::Data;
use std::ops::{ControlFlow, Range};

thread_local! {
    /// The decode buffer of [`Series::scan`].
    static SCAN_BUF: std::rc::Rc<std::cell::RefCell<Decoded>> = Default::default();
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
        self.scan_stored(positions, reverse, |ts, body| {
            f(ts, Data::new(body, escaped))
        });
    }

    /// [`Series::scan`] with the data as stored.
    fn scan_stored(
        &self,
        positions: Range<usize>,
        reverse: bool,
        mut f: impl FnMut(i64, &str) -> ControlFlow<()>,
    ) {
        let Range { start, end } = positions;
        let end = end.min(self.len());
        let (start, end) = (start + self.dead, end + self.dead);
        if start >= end {
            return;
        }
        let plain = start.max(self.sealed)..end;
        let sealed = start..end.min(self.sealed);
        // One decode buffer per thread, kept between calls (a nested scan gets its own).
        let mut own = Decoded::default();
        let cell = SCAN_BUF.with(|c| c.clone());
        let mut borrowed = if sealed.is_empty() {
            None
        } else {
            cell.try_borrow_mut().ok()
        };
        let buf: &mut Decoded = match borrowed.as_deref_mut() {
            Some(b) => b,
            None => &mut own,
        };
        let mut blocks = |f: &mut dyn FnMut(i64, &str) -> ControlFlow<()>| {
            if sealed.is_empty() {
                return ControlFlow::Continue(());
            }
            let (first, last) = (self.block_of(sealed.start), self.block_of(sealed.end - 1));
            let mut visit = |bi: usize| -> ControlFlow<()> {
                let b = &self.blocks[bi];
                let lo = sealed.start.max(b.pos) - b.pos;
                let hi = sealed.end.min(b.pos + b.count as usize) - b.pos;
                let d: &Decoded = match b.cache.get() {
                    Some(d) => d,
                    None if self.keeps_decoded(bi) => self.cached(bi),
                    None => {
                        b.decode(buf);
                        buf
                    }
                };
                if reverse {
                    for i in (lo..hi).rev() {
                        let (ts, data) = d.get(i);
                        f(ts, data)?;
                    }
                } else {
                    for i in lo..hi {
                        let (ts, data) = d.get(i);
                        f(ts, data)?;
                    }
                }
                ControlFlow::Continue(())
            };
            if reverse {
                (first..=last).rev().try_for_each(&mut visit)
            } else {
                (first..=last).try_for_each(&mut visit)
            }
        };
        let plain_part = |f: &mut dyn FnMut(i64, &str) -> ControlFlow<()>| {
            let it = plain.clone().map(|i| self.entries[i - self.sealed]);
            if reverse {
                it.rev().try_for_each(|e| f(e.ts, self.data(e)))
            } else {
                let mut it = it;
                it.try_for_each(|e| f(e.ts, self.data(e)))
            }
        };
        if reverse {
            if plain_part(&mut f).is_continue() {
                let _ = blocks(&mut f);
            }
        } else if blocks(&mut f).is_continue() {
            let _ = plain_part(&mut f);
        }
        // A block of a few huge records does not stay in the thread's buffer.
        if let Some(b) = borrowed.as_deref_mut() {
            if b.data.capacity() > 256 * 1024 {
                *b = Decoded::default();
            }
        }
    }
}
