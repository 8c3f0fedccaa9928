//! Slows down key guessing: after a few connections from one address present an unknown API key,
//! each further refusal from that address waits longer before it is sent
//! (docs/protocol.md#refused-connections). Addresses are grouped as a client controls them: one
//! IPv4 address, or one IPv6 /64. Only refusals wait; a connection with a valid key is never
//! delayed.
//!
//! A refusal held back holds a connection slot meanwhile, so one address could fill every
//! `--max-connections` slot with guesses. At most [`MAX_WAITING`] refusals of one address wait
//! at once; while that many do, its new connections are refused before their key is looked at
//! (so a refusal that comes sooner says nothing about the key), and other addresses keep their
//! slots.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures from one address answered at once.
const FREE_FAILURES: u32 = 5;
/// The delay of the first slowed refusal; it doubles with every further failure.
const FIRST_DELAY: Duration = Duration::from_millis(250);
/// The longest delay.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// An address without a failure for this long starts over.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Addresses remembered at most; past it, those idle longest are forgotten first.
const MAX_ADDRESSES: usize = 10_000;
/// Refusals of one address held back at once, at most.
pub const MAX_WAITING: u32 = 8;

#[derive(Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
}

#[derive(Default)]
pub struct Throttle {
    by_source: Mutex<HashMap<u128, Record>>,
    /// Refusals being held back, by source (absent: none).
    waiting: Mutex<HashMap<u128, u32>>,
}

/// One refusal held back: counted for its source until dropped.
pub struct Waiting<'a> {
    throttle: &'a Throttle,
    source: u128,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut waiting = self.throttle.waiting.lock();
        if let Some(n) = waiting.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                waiting.remove(&self.source);
            }
        }
    }
}

/// The part of an address one client controls.
fn source(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => 1 << 32 | u32::from(v4) as u128,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => 1 << 32 | u32::from(v4) as u128,
            // The /64 prefix, tagged so that it never equals an IPv4 source.
            None => (u128::from(v6) >> 64) << 64 | 1,
        },
    }
}

/// The delay after `failures` failures in a row.
fn delay(failures: u32) -> Duration {
    if failures <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES - 1).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

impl Throttle {
    /// Whether [`MAX_WAITING`] refusals of `ip`'s source are being held back now: its new
    /// connections are then refused before their key is looked at.
    pub fn crowded(&self, ip: IpAddr) -> bool {
        self.waiting
            .lock()
            .get(&source(ip))
            .is_some_and(|&n| n >= MAX_WAITING)
    }

    /// Counts a refusal of `ip` held back until the guard is dropped.
    pub fn waiting(&self, ip: IpAddr) -> Waiting<'_> {
        let source = source(ip);
        *self.waiting.lock().entry(source).or_insert(0) += 1;
        Waiting {
            throttle: self,
            source,
        }
    }

    /// Records a failed authentication from `ip` and returns how long to wait before answering.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Duration {
        let mut map = self.by_source.lock();
        if map.len() >= MAX_ADDRESSES {
            map.retain(|_, r| now.saturating_duration_since(r.last) < FORGET_AFTER);
            if map.len() >= MAX_ADDRESSES {
                // Everyone is recent: forget the idlest half.
                let mut lasts: Vec<Instant> = map.values().map(|r| r.last).collect();
                lasts.sort_unstable();
                let cut = lasts[lasts.len() / 2];
                map.retain(|_, r| r.last > cut);
            }
        }
        let r = map.entry(source(ip)).or_insert(Record {
            failures: 0,
            last: now,
        });
        if now.saturating_duration_since(r.last) >= FORGET_AFTER {
            r.failures = 0;
        }
        r.failures = r.failures.saturating_add(1);
        r.last = now;
        let wait = delay(r.failures);
        if r.failures == FREE_FAILURES + 1 {
            log::warn!(
                "{} failed API key checks from {ip}: slowing down its refusals",
                r.failures
            );
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_cap_and_are_forgotten() {
        let t = Throttle::default();
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let start = Instant::now();
        let got: Vec<u128> = (0..12).map(|_| t.failed(ip, start).as_millis()).collect();
        assert_eq!(got, [0, 0, 0, 0, 0, 250, 500, 1000, 2000, 4000, 5000, 5000]);
        let other: IpAddr = "10.0.0.8".parse().unwrap();
        assert_eq!(t.failed(other, start), Duration::ZERO);
        let later = start + FORGET_AFTER;
        assert_eq!(t.failed(ip, later), Duration::ZERO);
    }

    #[test]
    fn an_address_is_crowded_while_its_most_refusals_wait() {
        let t = Throttle::default();
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let other: IpAddr = "10.0.0.8".parse().unwrap();
        let held: Vec<Waiting<'_>> = (0..MAX_WAITING).map(|_| t.waiting(ip)).collect();
        assert!(t.crowded(ip));
        assert!(!t.crowded(other));
        drop(held);
        assert!(!t.crowded(ip));
        assert!(t.waiting.lock().is_empty());
    }

    #[test]
    fn one_ipv6_prefix_is_one_source() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source(a), source(b));
        assert_ne!(source(a), source(c));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(source(mapped), source("10.0.0.7".parse().unwrap()));
        assert_ne!(
            source("0.0.0.1".parse().unwrap()),
            source("::1".parse().unwrap())
        );
    }

    #[test]
    fn the_table_stays_bounded() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            t.failed(IpAddr::V4(i.into()), now + Duration::from_millis(i as u64));
        }
        assert!(t.by_source.lock().len() <= MAX_ADDRESSES);
    }
}
