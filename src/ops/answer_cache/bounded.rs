//! A map of remembered answers under a byte budget, evicting with the CLOCK policy: each entry
//! has a bit set when it is used; to make room, a hand sweeps the entries in a ring, clearing
//! set bits and evicting the first entry whose bit is clear. An entry asked for again since the
//! hand last passed survives a sweep; one nobody asked for goes first. A hit only sets a bit
//! (no reordering), so hits stay cheap.
//!
//! Entries are found by a kind (a small number) and a text, through a hash of both that the
//! caller computes once (it also picks the shard, see `mod.rs`): the index maps that hash to
//! a place in the ring, and a lookup compares the kind and text stored there, so a hash
//! collision is a miss, never a wrong answer. Two keys with one hash cannot both be held: the
//! newer replaces the older. The value is shared (`Arc`) so a hit copies it outside the lock
//! that guards this map.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Bytes counted for an entry besides its text and value: map and ring slots, allocation
/// headers, the value's own fields.
pub const ENTRY_OVERHEAD: usize = 160;

/// What the map needs to know about a value.
pub trait Weigh {
    /// Bytes the value holds.
    fn bytes(&self) -> usize;
}

/// Hashes a `u64` that is already a hash by taking it as it is.
#[derive(Default)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; fold anything else in rather than lose it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Slot<V> {
    hash: u64,
    kind: usize,
    key: Box<str>,
    value: Arc<V>,
    used: bool,
    cost: usize,
}

/// The map. `KINDS` is the number of kinds.
pub struct Bounded<V, const KINDS: usize> {
    /// The place of each entry in `slots`, by the hash of its kind and key.
    index: HashMap<u64, usize, BuildHasherDefault<Prehashed>>,
    /// The ring the hand sweeps; `None`: a free place (listed in `free`).
    slots: Vec<Option<Slot<V>>>,
    free: Vec<usize>,
    hand: usize,
    bytes: usize,
    budget: usize,
}

impl<V: Weigh, const KINDS: usize> Bounded<V, KINDS> {
    /// An empty map that holds at most `budget` bytes (by [`Bounded::cost`]).
    pub fn new(budget: usize) -> Self {
        Bounded {
            index: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            hand: 0,
            bytes: 0,
            budget,
        }
    }

    /// What an entry costs against the budget.
    pub fn cost(key: &str, value: &V) -> usize {
        key.len() + value.bytes() + ENTRY_OVERHEAD
    }

    /// Bytes held now (never more than the budget).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries held now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// The value of `(kind, key)`, whose hash is `hash`, marked used.
    pub fn get(&mut self, hash: u64, kind: usize, key: &str) -> Option<Arc<V>> {
        let &i = self.index.get(&hash)?;
        let slot = self.slots.get_mut(i)?.as_mut()?;
        if slot.kind != kind || *slot.key != *key {
            return None;
        }
        slot.used = true;
        Some(slot.value.clone())
    }

    /// Remembers `value` under `(kind, key)`, replacing what was there, evicting entries until
    /// it fits; `false` (nothing remembered, the old entry gone) when it alone exceeds the
    /// budget. A new entry starts unused: it must be asked for again to outlive the next sweep.
    /// An entry of another key with the same hash is replaced too.
    pub fn insert(&mut self, hash: u64, kind: usize, key: &str, value: V) -> bool {
        if kind >= KINDS {
            return false;
        }
        let cost = Self::cost(key, &value);
        self.remove(hash);
        if cost > self.budget {
            return false;
        }
        while self.bytes + cost > self.budget {
            if !self.evict_one() {
                return false;
            }
        }
        let slot = Slot {
            hash,
            kind,
            key: key.into(),
            value: Arc::new(value),
            used: false,
            cost,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.index.insert(hash, i);
        self.bytes += cost;
        true
    }

    /// Forgets the entry whose hash is `hash`.
    pub fn remove(&mut self, hash: u64) {
        if let Some(i) = self.index.remove(&hash) {
            self.free_slot(i);
        }
    }

    fn free_slot(&mut self, i: usize) {
        if let Some(slot) = self.slots.get_mut(i).and_then(Option::take) {
            self.bytes -= slot.cost;
            self.free.push(i);
        }
    }

    /// Evicts the entry the hand finds first unused (clearing used bits as it passes);
    /// `false` when the map is empty. Two turns of the ring at most.
    fn evict_one(&mut self) -> bool {
        let n = self.slots.len();
        for _ in 0..2 * n {
            let i = self.hand % n;
            self.hand = (i + 1) % n;
            let Some(slot) = self.slots[i].as_mut() else {
                continue;
            };
            if slot.used {
                slot.used = false;
                continue;
            }
            let hash = slot.hash;
            self.index.remove(&hash);
            self.free_slot(i);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Weigh for Vec<u8> {
        fn bytes(&self) -> usize {
            self.len()
        }
    }

    /// A map with room for exactly `n` entries of a 1-byte key and a 40-byte value.
    fn room_for(n: usize) -> Bounded<Vec<u8>, 2> {
        Bounded::new(n * (1 + 40 + ENTRY_OVERHEAD))
    }

    /// The hash the cache would compute: any fixed function of kind and key does here.
    fn hash(kind: usize, key: &str) -> u64 {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        BuildHasherDefault::<DefaultHasher>::default().hash_one((kind, key))
    }

    type Map = Bounded<Vec<u8>, 2>;

    fn put(m: &mut Map, kind: usize, key: &str, v: Vec<u8>) -> bool {
        m.insert(hash(kind, key), kind, key, v)
    }

    fn find(m: &mut Map, kind: usize, key: &str) -> Option<Arc<Vec<u8>>> {
        m.get(hash(kind, key), kind, key)
    }

    fn forget(m: &mut Map, kind: usize, key: &str) {
        m.remove(hash(kind, key))
    }

    #[test]
    fn a_hash_shared_by_two_keys_never_answers_for_the_other() {
        let mut m = room_for(4);
        assert!(m.insert(7, 0, "a", value(1)));
        assert_eq!(m.get(7, 0, "a").as_deref(), Some(&value(1)));
        assert!(m.get(7, 0, "b").is_none(), "another key's entry answered");
        assert!(m.get(7, 1, "a").is_none(), "another kind's entry answered");
        assert!(m.insert(7, 1, "b", value(2)));
        assert!(m.get(7, 0, "a").is_none(), "the replaced entry stayed");
        assert_eq!(m.get(7, 1, "b").as_deref(), Some(&value(2)));
        assert_eq!((m.len(), m.bytes()), (1, 41 + ENTRY_OVERHEAD));
    }

    fn value(fill: u8) -> Vec<u8> {
        vec![fill; 40]
    }

    #[test]
    fn the_budget_holds_and_the_oldest_unused_entry_goes_first() {
        let mut m = room_for(3);
        for k in ["a", "b", "c"] {
            assert!(put(&mut m, 0, k, value(k.as_bytes()[0])));
        }
        assert_eq!((m.len(), m.bytes()), (3, 3 * (41 + ENTRY_OVERHEAD)));
        assert!(put(&mut m, 0, "d", value(b'd')));
        assert_eq!(m.len(), 3);
        assert!(
            find(&mut m, 0, "a").is_none(),
            "the oldest unused entry stayed"
        );
        for k in ["b", "c", "d"] {
            assert_eq!(find(&mut m, 0, k).as_deref(), Some(&value(k.as_bytes()[0])));
        }
        assert!(m.bytes() <= 3 * (41 + ENTRY_OVERHEAD));
    }

    #[test]
    fn an_entry_used_since_the_hand_passed_survives_a_sweep() {
        let mut m = room_for(3);
        for k in ["a", "b", "c"] {
            put(&mut m, 0, k, value(0));
        }
        assert!(find(&mut m, 0, "a").is_some());
        put(&mut m, 0, "d", value(0));
        assert!(find(&mut m, 0, "a").is_some(), "a used entry was evicted");
        assert!(
            find(&mut m, 0, "b").is_none(),
            "b was not used and should have gone"
        );
        // Everything is used now but the new entry: it goes next.
        for k in ["a", "c", "d"] {
            assert!(find(&mut m, 0, k).is_some());
        }
        put(&mut m, 0, "e", value(0));
        assert_eq!(m.len(), 3);
        let left: Vec<bool> = ["a", "c", "d", "e"]
            .iter()
            .map(|k| find(&mut m, 0, k).is_some())
            .collect();
        assert_eq!(left.iter().filter(|&&x| x).count(), 3);
        assert!(
            left[3],
            "the entry just made was evicted to make room for itself"
        );
    }

    #[test]
    fn kinds_are_separate_and_a_replacement_counts_once() {
        let mut m = room_for(4);
        put(&mut m, 0, "a", value(1));
        put(&mut m, 1, "a", value(2));
        assert_eq!(find(&mut m, 0, "a").as_deref(), Some(&value(1)));
        assert_eq!(find(&mut m, 1, "a").as_deref(), Some(&value(2)));
        let before = m.bytes();
        put(&mut m, 1, "a", value(3));
        assert_eq!((m.bytes(), m.len()), (before, 2));
        assert_eq!(find(&mut m, 1, "a").as_deref(), Some(&value(3)));
        forget(&mut m, 0, "a");
        assert!(find(&mut m, 0, "a").is_none());
        assert_eq!(m.len(), 1);
        assert!(!put(&mut m, 2, "a", value(0)), "a kind past KINDS");
    }

    #[test]
    fn an_entry_larger_than_the_budget_is_refused_and_replaces_nothing_stale() {
        let mut m = room_for(2);
        put(&mut m, 0, "a", value(1));
        assert!(!put(&mut m, 0, "a", vec![0; 10_000]));
        assert!(
            find(&mut m, 0, "a").is_none(),
            "the old answer outlived its replacement"
        );
        assert_eq!((m.len(), m.bytes()), (0, 0));
    }

    #[test]
    fn a_flood_of_distinct_keys_stays_under_the_budget_and_reuses_places() {
        let mut m = room_for(16);
        let budget = 16 * (41 + ENTRY_OVERHEAD);
        for i in 0..10_000 {
            let key = format!("{}", i % 10);
            // Keys of varying lengths: costs differ, the budget must hold anyway.
            let key = key.repeat(1 + i % 7);
            assert!(put(&mut m, i % 2, &key, value(0)) || key.len() + 40 + ENTRY_OVERHEAD > budget);
            assert!(m.bytes() <= budget);
        }
        assert!(m.slots.len() <= 16 + 1, "the ring grew: {}", m.slots.len());
        assert_eq!(
            m.bytes(),
            m.slots.iter().flatten().map(|s| s.cost).sum::<usize>()
        );
    }
}
