//! A map of remembered answers under a byte budget, evicting with the CLOCK policy: each entry
//! has a bit set when it is used; to make room, a hand sweeps the entries in a ring, clearing
//! set bits and evicting the first entry whose bit is clear. An entry asked for again since the
//! hand last passed survives a sweep; one nobody asked for goes first. A hit only sets a bit
//! (no reordering), so hits stay cheap.
//!
//! Entries are found by a kind (a small number) and a text; the value is shared (`Arc`) so a
//! hit copies it outside the lock that guards this map.

use std::collections::HashMap;
use std::sync::Arc;

/// Bytes counted for an entry besides its text and value: map and ring slots, allocation
/// headers, the value's own fields.
pub const ENTRY_OVERHEAD: usize = 160;

/// What the map needs to know about a value.
pub trait Weigh {
    /// Bytes the value holds.
    fn bytes(&self) -> usize;
}

struct Slot<V> {
    kind: usize,
    key: Arc<str>,
    value: Arc<V>,
    used: bool,
    cost: usize,
}

/// The map. `KINDS` is the number of kinds (each has its own index).
pub struct Bounded<V, const KINDS: usize> {
    index: [HashMap<Arc<str>, usize>; KINDS],
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
            index: std::array::from_fn(|_| HashMap::new()),
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

    /// The value of `(kind, key)`, marked used.
    pub fn get(&mut self, kind: usize, key: &str) -> Option<Arc<V>> {
        let &i = self.index.get(kind)?.get(key)?;
        let slot = self.slots.get_mut(i)?.as_mut()?;
        slot.used = true;
        Some(slot.value.clone())
    }

    /// Remembers `value` under `(kind, key)`, replacing what was there, evicting entries until
    /// it fits; `false` (nothing remembered, the old entry gone) when it alone exceeds the
    /// budget. A new entry starts unused: it must be asked for again to outlive the next sweep.
    pub fn insert(&mut self, kind: usize, key: &str, value: V) -> bool {
        if kind >= KINDS {
            return false;
        }
        let cost = Self::cost(key, &value);
        self.remove(kind, key);
        if cost > self.budget {
            return false;
        }
        while self.bytes + cost > self.budget {
            if !self.evict_one() {
                return false;
            }
        }
        let key: Arc<str> = Arc::from(key);
        let slot = Slot {
            kind,
            key: key.clone(),
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
        self.index[kind].insert(key, i);
        self.bytes += cost;
        true
    }

    /// Forgets `(kind, key)`.
    pub fn remove(&mut self, kind: usize, key: &str) {
        let Some(i) = self.index.get_mut(kind).and_then(|m| m.remove(key)) else {
            return;
        };
        self.free_slot(i);
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
            let (kind, key) = (slot.kind, slot.key.clone());
            self.index[kind].remove(&*key);
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

    fn value(fill: u8) -> Vec<u8> {
        vec![fill; 40]
    }

    #[test]
    fn the_budget_holds_and_the_oldest_unused_entry_goes_first() {
        let mut m = room_for(3);
        for k in ["a", "b", "c"] {
            assert!(m.insert(0, k, value(k.as_bytes()[0])));
        }
        assert_eq!((m.len(), m.bytes()), (3, 3 * (41 + ENTRY_OVERHEAD)));
        assert!(m.insert(0, "d", value(b'd')));
        assert_eq!(m.len(), 3);
        assert!(m.get(0, "a").is_none(), "the oldest unused entry stayed");
        for k in ["b", "c", "d"] {
            assert_eq!(m.get(0, k).as_deref(), Some(&value(k.as_bytes()[0])));
        }
        assert!(m.bytes() <= 3 * (41 + ENTRY_OVERHEAD));
    }

    #[test]
    fn an_entry_used_since_the_hand_passed_survives_a_sweep() {
        let mut m = room_for(3);
        for k in ["a", "b", "c"] {
            m.insert(0, k, value(0));
        }
        assert!(m.get(0, "a").is_some());
        m.insert(0, "d", value(0));
        assert!(m.get(0, "a").is_some(), "a used entry was evicted");
        assert!(
            m.get(0, "b").is_none(),
            "b was not used and should have gone"
        );
        // Everything is used now but the new entry: it goes next.
        for k in ["a", "c", "d"] {
            assert!(m.get(0, k).is_some());
        }
        m.insert(0, "e", value(0));
        assert_eq!(m.len(), 3);
        let left: Vec<bool> = ["a", "c", "d", "e"]
            .iter()
            .map(|k| m.get(0, k).is_some())
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
        m.insert(0, "a", value(1));
        m.insert(1, "a", value(2));
        assert_eq!(m.get(0, "a").as_deref(), Some(&value(1)));
        assert_eq!(m.get(1, "a").as_deref(), Some(&value(2)));
        let before = m.bytes();
        m.insert(1, "a", value(3));
        assert_eq!((m.bytes(), m.len()), (before, 2));
        assert_eq!(m.get(1, "a").as_deref(), Some(&value(3)));
        m.remove(0, "a");
        assert!(m.get(0, "a").is_none());
        assert_eq!(m.len(), 1);
        assert!(!m.insert(2, "a", value(0)), "a kind past KINDS");
    }

    #[test]
    fn an_entry_larger_than_the_budget_is_refused_and_replaces_nothing_stale() {
        let mut m = room_for(2);
        m.insert(0, "a", value(1));
        assert!(!m.insert(0, "a", vec![0; 10_000]));
        assert!(
            m.get(0, "a").is_none(),
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
            assert!(m.insert(i % 2, &key, value(0)) || key.len() + 40 + ENTRY_OVERHEAD > budget);
            assert!(m.bytes() <= budget);
        }
        assert!(m.slots.len() <= 16 + 1, "the ring grew: {}", m.slots.len());
        assert_eq!(
            m.bytes(),
            m.slots.iter().flatten().map(|s| s.cost).sum::<usize>()
        );
    }
}
