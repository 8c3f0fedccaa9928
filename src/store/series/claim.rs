//! The state of a form of a series' records that its readers render (the last-value cache,
//! `tail.rs`; the plain block's rendering, `plain_text.rs`), so that writers pay one store and
//! readers never wait:
//!
//! - a writer, holding `&mut` (so excluding every reader), marks the form stale
//!   ([`Claim::reset`]) before it changes the records;
//! - a reader that finds the form stale claims it with one compare-and-swap (`STALE` → `BUSY`,
//!   [`Claim::try_claim`]); one that loses the claim does not wait but writes its records as
//!   if there were no form;
//! - the claimant brings the form up to date and publishes it ([`Held::publish`]: `READY`, with
//!   release ordering); a claim dropped unpublished leaves the form stale again;
//! - readers use the form only after seeing `READY` with acquire ordering
//!   ([`Claim::is_ready`]).
//!
//! So the form's bytes are written by one thread at a time, the claimant or a holder of
//! `&mut`, and read only once published; nothing writes them again until a holder of `&mut`
//! resets the state. The forms' `Sync` implementations rest on this.

use std::sync::atomic::{AtomicU8, Ordering};

/// Stale: a reader may claim it.
const STALE: u8 = 0;
/// A reader holds the claim and is rendering.
const BUSY: u8 = 1;
/// Published: up to date until the next reset.
const READY: u8 = 2;

/// A reader-rendered form's state (see the module's comment).
#[derive(Debug, Default)]
pub(super) struct Claim(AtomicU8);

/// A reader's claim on a stale form: the right to write it until published.
pub(super) struct Held<'a>(&'a AtomicU8);

impl Claim {
    /// Whether the form is published (acquire: its writes are visible after `true`).
    #[inline(always)]
    pub(super) fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire) == READY
    }

    /// [`Claim::is_ready`] without ordering, for a hint such as a prefetch: the form must not
    /// be read on its strength.
    #[inline(always)]
    pub(super) fn looks_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed) == READY
    }

    /// Claims the form when it is stale and nobody holds it; `None` otherwise.
    #[inline(always)]
    pub(super) fn try_claim(&self) -> Option<Held<'_>> {
        self.0
            .compare_exchange(STALE, BUSY, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Held(&self.0))
    }

    /// Marks the form stale: the records are about to change (a writer, through `&mut`).
    #[inline(always)]
    pub(super) fn reset(&mut self) {
        *self.0.get_mut() = STALE;
    }
}

impl Held<'_> {
    /// Publishes what the claimant wrote (release).
    #[inline(always)]
    pub(super) fn publish(self) {
        self.0.store(READY, Ordering::Release);
    }
}

impl Drop for Held<'_> {
    /// A claim given up unpublished (a panic while rendering) leaves the form stale, to be
    /// brought up to date by whoever claims it next; a published one stays so.
    fn drop(&mut self) {
        let _ = self
            .0
            .compare_exchange(BUSY, STALE, Ordering::Release, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_at_a_time_until_published_then_reset() {
        let mut c = Claim::default();
        assert!(!c.is_ready());
        let held = c.try_claim().expect("a stale form is claimed");
        assert!(c.try_claim().is_none(), "claimed twice");
        assert!(!c.is_ready() && !c.looks_ready());
        held.publish();
        assert!(c.is_ready() && c.looks_ready());
        assert!(c.try_claim().is_none(), "a published form was claimed");
        c.reset();
        assert!(!c.is_ready());
        // Dropped unpublished: stale again, and claimable.
        drop(c.try_claim());
        assert!(!c.is_ready());
        assert!(c.try_claim().is_some());
    }
}
