//! Taking a busy lock: a collection's, a document's, or a collection's apply order. Writers
//! hold them for well under a microsecond, so a waiter first spins, then yields its CPU (so that a holder preempted on the
//! same CPU can finish), and only then parks. Parking after a few tries, as the lock does on its
//! own, turned every preempted holder into a convoy: with 16 writers on 2 cores, parked writers
//! kept missing their turn and the p99 latency of single-record inserts grew to 3 ms. The wait
//! before parking is bounded (64 pauses, then 64 yields). Nobody polls a lock that readers hold:
//! a writer then queues at once (the lock stops admitting new readers, so a stream of queries
//! cannot starve it), and a reader that finds the lock free but cannot get in queues too.

use parking_lot::{
    Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockUpgradableReadGuard, RwLockWriteGuard,
};

/// Polls that only pause the CPU.
const SPINS: u32 = 64;
/// Polls after those that yield the CPU.
const YIELDS: u32 = 64;

/// What one look at the lock found.
enum Poll<G> {
    Got(G),
    /// A writer holds it: keep polling.
    Busy,
    /// Readers hold it (or a reader lost a race): wait in the lock's queue.
    Queue,
}

fn acquire<G>(mut poll: impl FnMut() -> Poll<G>, queue: impl FnOnce() -> G) -> G {
    for i in 0..SPINS + YIELDS {
        match poll() {
            Poll::Got(guard) => return guard,
            Poll::Queue => break,
            Poll::Busy => {}
        }
        if i < SPINS {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    queue()
}

// The state is read before trying, so that waiters do not keep taking the cache line.

pub(super) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    let poll = || {
        if lock.is_locked_exclusive() {
            Poll::Busy
        } else if lock.is_locked() {
            Poll::Queue
        } else {
            lock.try_write().map_or(Poll::Busy, Poll::Got)
        }
    };
    acquire(poll, || lock.write())
}

pub(super) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    let poll = || {
        if lock.is_locked_exclusive() {
            Poll::Busy
        } else {
            lock.try_read().map_or(Poll::Queue, Poll::Got)
        }
    };
    acquire(poll, || lock.read())
}

/// Read-locks with the right to upgrade: readers still get in, writers and other upgradable
/// readers do not. Polled like [`write`], as its holders are writers.
pub(super) fn upgradable<T>(lock: &RwLock<T>) -> RwLockUpgradableReadGuard<'_, T> {
    let poll = || {
        if lock.is_locked_exclusive() {
            Poll::Busy
        } else {
            lock.try_upgradable_read().map_or(Poll::Busy, Poll::Got)
        }
    };
    acquire(poll, || lock.upgradable_read())
}

/// Turns an upgradable read lock into the write lock, once the readers (each in for one short
/// read) have left: polled, then yielding, then queued.
pub(super) fn upgrade<T>(guard: RwLockUpgradableReadGuard<'_, T>) -> RwLockWriteGuard<'_, T> {
    let mut guard = guard;
    for i in 0..SPINS + YIELDS {
        match RwLockUpgradableReadGuard::try_upgrade(guard) {
            Ok(write) => return write,
            Err(back) => guard = back,
        }
        if i < SPINS {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    RwLockUpgradableReadGuard::upgrade(guard)
}

/// Returns once `done` holds: for a condition that other threads make true within one short
/// read (polled, then yielding the CPU so that a preempted reader can finish).
pub(super) fn wait_until(done: impl Fn() -> bool) {
    let mut i = 0u32;
    while !done() {
        if i < SPINS {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
        i = i.saturating_add(1);
    }
}

/// A mutex held for a few instructions: polled like a write-held lock, then queued.
pub(super) fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    let poll = || {
        if lock.is_locked() {
            Poll::Busy
        } else {
            lock.try_lock().map_or(Poll::Busy, Poll::Got)
        }
    };
    acquire(poll, || lock.lock())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Collection;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Readers that always hold the lock between them do not keep a writer out: it queues
    /// behind them instead of polling (a liveness check; the 30 s bound is only a backstop).
    #[test]
    fn a_stream_of_readers_does_not_starve_a_writer() {
        let lock = Arc::new(RwLock::new(Collection::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (lock, stop) = (lock.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let c = read(&lock);
                        std::hint::black_box(c.is_empty());
                        std::thread::sleep(Duration::from_micros(50));
                    }
                })
            })
            .collect();
        let start = Instant::now();
        for ts in 1..=200 {
            write(&lock).insert("d", ts, "x").unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(lock.read().record_count(), 200);
        assert!(start.elapsed() < Duration::from_secs(30), "writers starved");
    }

    /// Writers on many threads: every insert lands exactly once.
    #[test]
    fn contending_writers_lose_nothing() {
        let lock = Arc::new(RwLock::new(Collection::default()));
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for ts in 1..=2000 {
                        write(&lock).insert(&format!("w{w}"), ts, "x").unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(lock.read().record_count(), 16_000);
    }
}
