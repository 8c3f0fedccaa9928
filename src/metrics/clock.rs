//! The clock of request durations, read once per request. `Instant::now()` costs about 90 ns
//! in a virtual machine (a tenth of the lock-free counting it would time is 20 ns); the CPU's
//! time-stamp counter costs about 35 ns. The counter is used where the kernel reports it
//! constant-rate and running in every sleep state (`constant_tsc`, `nonstop_tsc`), converted to
//! nanoseconds with a rate measured once at start-up; elsewhere the monotonic clock is used.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Nanoseconds per counter tick, in 32.32 fixed point; 0 while the counter is not used.
static NS_PER_TICK: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// A point in time: counter ticks when the counter is used, else nanoseconds since the first
/// reading. Only differences of stamps mean anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(u64);

impl Stamp {
    /// Time from `self` to `later` (zero if `later` is earlier).
    #[inline]
    pub fn until(self, later: Stamp) -> Duration {
        let d = later.0.saturating_sub(self.0);
        match NS_PER_TICK.load(Relaxed) {
            0 => Duration::from_nanos(d),
            rate => Duration::from_nanos(((d as u128 * rate as u128) >> 32) as u64),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn ticks() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU and has no side effects.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn ticks() -> u64 {
    0
}

/// Now.
#[inline]
pub fn now() -> Stamp {
    if NS_PER_TICK.load(Relaxed) != 0 {
        Stamp(ticks())
    } else {
        let epoch = *EPOCH.get_or_init(Instant::now);
        Stamp(epoch.elapsed().as_nanos() as u64)
    }
}

/// Measures the counter's rate over a few milliseconds and starts using it, if the kernel
/// says it is invariant. Called once at start-up, before any request is timed.
pub(super) fn calibrate() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = flags
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    if !(has("constant_tsc") && has("nonstop_tsc")) {
        return;
    }
    let (i0, t0) = (Instant::now(), ticks());
    std::thread::sleep(Duration::from_millis(5));
    let (i1, t1) = (Instant::now(), ticks());
    let ns = i1.duration_since(i0).as_nanos();
    let dt = t1.saturating_sub(t0) as u128;
    if dt == 0 || ns == 0 {
        return;
    }
    let rate = ((ns << 32) / dt).min(u64::MAX as u128) as u64;
    if rate != 0 {
        NS_PER_TICK.store(rate, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_measure_real_time() {
        calibrate();
        let a = now();
        std::thread::sleep(Duration::from_millis(20));
        let d = a.until(now());
        assert!(
            d >= Duration::from_millis(19) && d < Duration::from_millis(500),
            "{d:?}"
        );
        assert_eq!(now().until(a), Duration::ZERO);
    }
}
