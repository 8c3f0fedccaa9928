//! Decoded sealed blocks kept in their blocks' `cache`, in the form answers write them
//! ([`Rendered`]): one decoded by
//! [`Series::get`] lives until the document's next change; the newest [`TAIL_CACHED`] ones,
//! decoded by [`Series::scan`] while the process keeps less than [`TAIL_BUDGET`] of them, also
//! outlive appends (which leave sealed blocks alone). Each document counts the bytes it keeps
//! (`Series::cache_bytes`), the process the bytes all documents keep.

use super::block::Decoded;
use super::rendered::Rendered;
use super::{Series, ALLOC_OVERHEAD};
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Newest sealed blocks whose decoded form [`Series::scan`] keeps (a page of 100 records
/// reaches into at most two).
pub(super) const TAIL_CACHED: usize = 2;

thread_local! {
    /// The columns a block is decoded into before it is rendered for its cache.
    static DECODE_BUF: std::cell::RefCell<Decoded> = Default::default();
}

/// Bytes of decoded blocks held in `Block::cache`s, in the whole process.
static CACHED: AtomicUsize = AtomicUsize::new(0);

/// Most bytes of decoded blocks the process keeps for the newest sealed blocks of documents
/// that are read (see `Series::scan`); past it, such blocks are decoded for each read again.
pub(super) const TAIL_BUDGET: usize = 64 * 1024 * 1024;

/// A block decoded and kept, counted in the process-wide figure while it lives.
#[derive(Debug)]
pub(super) struct Cached(Rendered);

impl Cached {
    pub(super) fn new(d: Rendered) -> Box<Cached> {
        CACHED.fetch_add(d.heap_bytes() + ALLOC_OVERHEAD, Ordering::Relaxed);
        Box::new(Cached(d))
    }

    /// Bytes it holds, as counted.
    pub(super) fn bytes(&self) -> usize {
        self.0.heap_bytes() + ALLOC_OVERHEAD
    }

    /// Counts `bytes` more held by readers' renderings (`plain_text.rs`) in the budget.
    pub(super) fn count(bytes: usize) {
        CACHED.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` fewer (a rendering dropped).
    pub(super) fn uncount(bytes: usize) {
        CACHED.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Whether the process keeps fewer decoded blocks than [`TAIL_BUDGET`].
    pub(super) fn within_budget() -> bool {
        CACHED.load(Ordering::Relaxed) < TAIL_BUDGET
    }
}

impl Deref for Cached {
    type Target = Rendered;
    fn deref(&self) -> &Rendered {
        &self.0
    }
}

impl Drop for Cached {
    fn drop(&mut self) {
        CACHED.fetch_sub(self.bytes(), Ordering::Relaxed);
    }
}

impl Series {
    /// Block `bi` decoded and rendered, from its cache (made first if need be).
    pub(super) fn cached(&self, bi: usize) -> &Rendered {
        let b = &self.blocks[bi];
        b.cache.get_or_init(|| {
            let d = DECODE_BUF.with_borrow_mut(|d| {
                b.decode(d);
                let r = Rendered::new(d);
                d.release_if_large();
                r
            });
            let d = Cached::new(d);
            self.cache_bytes.fetch_add(d.bytes(), Ordering::Relaxed);
            d
        })
    }

    /// Whether [`Series::scan`] keeps block `bi` decoded once it has decoded it: one of the
    /// newest [`TAIL_CACHED`], while the process is within [`TAIL_BUDGET`].
    pub(super) fn keeps_decoded(&self, bi: usize) -> bool {
        bi + TAIL_CACHED >= self.blocks.len() && Cached::within_budget()
    }

    /// Before a block is sealed onto the end: the block that then leaves the newest
    /// [`TAIL_CACHED`] keeps no cache.
    pub(super) fn drop_cache_leaving_tail(&mut self) {
        if let Some(bi) = (self.blocks.len() + 1).checked_sub(TAIL_CACHED + 1) {
            self.drop_cache(bi);
        }
    }

    /// Bytes of decoded blocks cached by [`Series::get`] (written by readers, so not part of
    /// [`Series::heap_bytes`], which only changes under the write lock; dropped at the
    /// document's next change).
    pub fn cache_bytes(&self) -> usize {
        self.cache_bytes.load(Ordering::Relaxed)
    }

    /// Drops the decoded caches (any change of sealed history).
    pub(super) fn drop_caches(&mut self) {
        if *self.cache_bytes.get_mut() == 0 {
            return;
        }
        for b in &mut self.blocks {
            b.cache.take();
        }
        *self.cache_bytes.get_mut() = 0;
    }

    /// Drops the decoded caches but those of the newest [`TAIL_CACHED`] blocks (a change of
    /// the plain block alone, which leaves sealed blocks as they are).
    pub(super) fn drop_caches_but_tail(&mut self) {
        let held = *self.cache_bytes.get_mut();
        if held == 0 {
            return;
        }
        let tail = self.blocks.len().saturating_sub(TAIL_CACHED);
        let tail_bytes: usize = self.blocks[tail..]
            .iter()
            .filter_map(|b| b.cache.get().map(|d| d.bytes()))
            .sum();
        if tail_bytes == held {
            return;
        }
        for b in &mut self.blocks[..tail] {
            b.cache.take();
        }
        *self.cache_bytes.get_mut() = tail_bytes;
    }

    /// Drops block `bi`'s cache.
    fn drop_cache(&mut self, bi: usize) {
        if let Some(d) = self.blocks.get_mut(bi).and_then(|b| b.cache.take()) {
            *self.cache_bytes.get_mut() -= d.bytes();
        }
    }
}
