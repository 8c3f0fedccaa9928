//! Retention: how many records, and how old, each document of a collection may keep.
//!
//! A collection may have a policy of its own ([`Policy`], kept by name in [`Policies`] so that
//! it outlives the collection); each member it leaves out inherits the server default. The
//! effective [`Limits`] are cached in the collection, so an insert reads nothing shared.
//!
//! The drop itself is one primitive, [`cutoff`] + [`Collection::trim`]: a document keeps the records at or
//! after a cut-off timestamp and loses the older ones. It works through `Series` methods only
//! (`len`, `ts_at`, `range`, `remove_range`), so it does not depend on how a series stores its
//! records; the series makes such a drop of its oldest records lazy (see `series`).

use super::collection::Collection;
use super::series::Series;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The limits one collection applies; `None` = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Keep records with `ts >= newest - max_age` (in the collection's own timestamp units).
    pub max_age: Option<u64>,
    /// Keep the newest `max_records` records of each document.
    pub max_records: Option<u64>,
}

impl Limits {
    /// Limits from the wire convention: 0 = unlimited.
    pub fn from_numbers(max_age: u64, max_records: u64) -> Limits {
        Limits {
            max_age: (max_age > 0).then_some(max_age),
            max_records: (max_records > 0).then_some(max_records),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.max_age.is_none() && self.max_records.is_none()
    }
}

/// A collection's own policy: each member `None` inherits the default, `Some(0)` is
/// unlimited, `Some(n)` a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    pub max_age: Option<u64>,
    pub max_records: Option<u64>,
}

impl Policy {
    /// A policy with neither member is no policy (`sret` then removes the collection's own).
    pub fn is_empty(&self) -> bool {
        self.max_age.is_none() && self.max_records.is_none()
    }

    /// The limits this policy gives over `default`.
    pub fn over(&self, default: Limits) -> Limits {
        let pick = |own: Option<u64>, inherited: Option<u64>| match own {
            None => inherited,
            Some(0) => None,
            Some(n) => Some(n),
        };
        Limits {
            max_age: pick(self.max_age, default.max_age),
            max_records: pick(self.max_records, default.max_records),
        }
    }
}

/// Every collection's own policy, by collection name, and the server default.
///
/// Lock order: this lock is a leaf — nothing else is locked while it is held.
#[derive(Debug, Default)]
pub struct Policies {
    inner: RwLock<PolicyMap>,
    /// What the own policies hold (see [`entry_bytes`]), counted with the store's memory.
    bytes: AtomicUsize,
}

/// The memory one own policy holds, roughly: its name, the name's header and the map's share.
fn entry_bytes(name: &str) -> usize {
    name.len() + 64
}

#[derive(Debug, Default)]
struct PolicyMap {
    default: Limits,
    own: BTreeMap<String, Policy>,
    /// Changed since the last time it was saved.
    dirty: bool,
}

impl Policies {
    pub fn set_default(&self, default: Limits) {
        self.inner.write().default = default;
    }

    /// The effective limits of collection `name`, and whether they are the default (the
    /// collection has no policy of its own).
    pub fn effective(&self, name: &str) -> (Limits, bool) {
        let map = self.inner.read();
        match map.own.get(name) {
            Some(p) => (p.over(map.default), false),
            None => (map.default, true),
        }
    }

    /// The collection's own policy, if it has one.
    pub fn own(&self, name: &str) -> Option<Policy> {
        self.inner.read().own.get(name).copied()
    }

    /// Sets (or, with an empty policy, removes) the policy of `name`; returns the new effective
    /// limits.
    pub fn set(&self, name: &str, policy: Policy) -> Limits {
        let mut map = self.inner.write();
        let changed = if policy.is_empty() {
            let removed = map.own.remove(name).is_some();
            if removed {
                self.bytes.fetch_sub(entry_bytes(name), Ordering::Relaxed);
            }
            removed
        } else {
            let previous = map.own.insert(name.to_owned(), policy);
            if previous.is_none() {
                self.bytes.fetch_add(entry_bytes(name), Ordering::Relaxed);
            }
            previous != Some(policy)
        };
        map.dirty |= changed;
        match map.own.get(name) {
            Some(p) => p.over(map.default),
            None => map.default,
        }
    }

    /// Every own policy, by name.
    pub fn all(&self) -> Vec<(String, Policy)> {
        let map = self.inner.read();
        map.own.iter().map(|(n, p)| (n.clone(), *p)).collect()
    }

    /// Every own policy, by name, if any changed since the last call (for snapshots).
    pub fn take_changed(&self) -> Option<Vec<(String, Policy)>> {
        let mut map = self.inner.write();
        if !std::mem::take(&mut map.dirty) {
            return None;
        }
        Some(map.own.iter().map(|(n, p)| (n.clone(), *p)).collect())
    }

    /// Marks the policies changed again (a save failed).
    pub fn mark_changed(&self) {
        self.inner.write().dirty = true;
    }

    /// Replaces every own policy (start-up, from a snapshot).
    pub fn load(&self, policies: impl IntoIterator<Item = (String, Policy)>) {
        let mut map = self.inner.write();
        map.own = policies
            .into_iter()
            .filter(|(_, p)| !p.is_empty())
            .collect();
        let bytes = map.own.keys().map(|n| entry_bytes(n)).sum();
        self.bytes.store(bytes, Ordering::Relaxed);
    }

    /// Whether `name` has a policy of its own.
    pub fn has_own(&self, name: &str) -> bool {
        self.inner.read().own.contains_key(name)
    }

    /// The memory the own policies hold, roughly.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// The timestamp before which `series` holds records that `limits` no longer allow, if it
/// holds any: the records with `ts < cutoff` must go, the others stay.
pub fn cutoff(series: &Series, limits: Limits) -> Option<i64> {
    let len = series.len();
    if len == 0 || limits.is_unlimited() {
        return None;
    }
    let mut cut = i64::MIN;
    if let Some(age) = limits.max_age {
        let newest = series.ts_at(len - 1);
        let age = i64::try_from(age).unwrap_or(i64::MAX);
        cut = cut.max(newest.saturating_sub(age));
    }
    if let Some(keep) = limits.max_records {
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        if len > keep {
            cut = cut.max(series.ts_at(len - keep));
        }
    }
    (cut > i64::MIN && !series.range(i64::MIN, cut - 1).is_empty()).then_some(cut)
}

impl Collection {
    /// The retention limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The documents among `docs` that hold records past the limits, each with its cut-off
    /// (see [`cutoff`]), each document once.
    pub fn cutoffs<'d>(&self, docs: impl IntoIterator<Item = &'d str>) -> Vec<(&'d str, i64)> {
        if self.limits.is_unlimited() {
            return Vec::new();
        }
        let mut cuts: Vec<(&'d str, i64)> = docs
            .into_iter()
            .filter_map(|doc| Some((doc, cutoff(&self.docs.get(doc)?.read(), self.limits)?)))
            .collect();
        if cuts.len() > 1 {
            cuts.sort_unstable();
            cuts.dedup();
        }
        cuts
    }

    /// Drops the records of `doc` older than `cut`; returns how many went.
    pub fn trim(&mut self, doc: &str, cut: i64) -> usize {
        match cut.checked_sub(1) {
            Some(last) => self.remove_range(doc, i64::MIN, last),
            None => 0,
        }
    }
}

/// Whether a record of `doc` at `ts` is past the cuts (sorted by document, as
/// [`Collection::cutoffs`] gives them).
pub fn cut_off(cuts: &[(&str, i64)], doc: &str, ts: i64) -> bool {
    cuts.binary_search_by(|(d, _)| (*d).cmp(doc))
        .is_ok_and(|i| ts < cuts[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(ts: &[i64]) -> Series {
        let mut s = Series::new();
        for &t in ts {
            s.insert(t, "x").unwrap();
        }
        s
    }

    fn kept(s: &Series) -> Vec<i64> {
        (0..s.len()).map(|i| s.ts_at(i)).collect()
    }

    #[test]
    fn age_is_measured_back_from_the_newest_record() {
        let mut c = Collection::default();
        for ts in [10, 20, 30, 40] {
            c.insert("d", ts, "x").unwrap();
        }
        c.set_limits(Limits::from_numbers(20, 0));
        assert_eq!(c.cutoffs(["d", "e", "d"]), [("d", 20)]);
        assert_eq!(c.trim("d", 20), 1);
        assert_eq!(kept(&c.docs["d"].read()), [20, 30, 40]);
        assert!(c.cutoffs(["d"]).is_empty(), "the edge of the window stays");
        assert_eq!(c.trim("d", i64::MIN), 0);
        assert_eq!(c.trim("d", 50), 3);
        assert!(c.is_empty(), "a trimmed-out document goes");
    }

    #[test]
    fn count_keeps_the_newest_and_the_stricter_limit_wins() {
        let s = series(&[1, 2, 3, 4, 5]);
        assert_eq!(cutoff(&s, Limits::from_numbers(0, 2)), Some(4));
        assert_eq!(cutoff(&s, Limits::from_numbers(3, 4)), Some(2));
        assert_eq!(cutoff(&s, Limits::from_numbers(1, 4)), Some(4));
        assert_eq!(cutoff(&s, Limits::from_numbers(0, 5)), None);
        assert_eq!(cutoff(&s, Limits::default()), None);
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let s = series(&[i64::MIN, -5, i64::MAX]);
        assert_eq!(cutoff(&s, Limits::from_numbers(u64::MAX, 0)), Some(0));
        let s = series(&[i64::MIN, i64::MIN + 1]);
        assert_eq!(cutoff(&s, Limits::from_numbers(u64::MAX, 0)), None);
        assert_eq!(cutoff(&s, Limits::from_numbers(0, u64::MAX)), None);
    }

    #[test]
    fn own_members_override_the_default_and_zero_is_unlimited() {
        let p = Policies::default();
        p.set_default(Limits::from_numbers(100, 10));
        assert_eq!(p.effective("c"), (Limits::from_numbers(100, 10), true));
        let own = Policy {
            max_age: Some(0),
            max_records: None,
        };
        assert_eq!(p.set("c", own), Limits::from_numbers(0, 10));
        assert_eq!(p.effective("c"), (Limits::from_numbers(0, 10), false));
        assert!(p.take_changed().is_some());
        assert!(p.take_changed().is_none());
        assert_eq!(p.set("c", Policy::default()), Limits::from_numbers(100, 10));
        assert!(p.effective("c").1);
        assert_eq!(p.take_changed(), Some(vec![]));
    }
}
