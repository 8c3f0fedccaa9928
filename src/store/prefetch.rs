//! Cache prefetch hints: an append's document was usually last touched long ago, and asking
//! for its lines early lets them arrive while the append does other work.

/// A hint to load the cache line holding `p` (never dereferenced: a prefetch reads nothing and
/// cannot fault, whatever the address).
#[inline(always)]
pub fn line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86-64 CPU has; it only hints the cache
    // and does not access memory in a way that can fault or be observed.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// [`line`] for every line the value at `p` covers (64-byte lines).
#[inline(always)]
pub fn value<T>(p: *const T) {
    let size = std::mem::size_of::<T>();
    if size == 0 {
        return;
    }
    let p = p.cast::<u8>();
    for offset in (0..size).step_by(64) {
        line(p.wrapping_add(offset));
    }
    // The last byte's line, when the value does not start on a line.
    line(p.wrapping_add(size - 1));
}
