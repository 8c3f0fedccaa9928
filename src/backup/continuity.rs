//! Whether the bucket's history still continues the one a replica copied. A location can be
//! started over (emptied, then a new primary's first manifest): a replica that went on reading
//! it would find nothing past the segment it is at (and serve its old copy as if caught up), or
//! another history's segments under the numbers it expects. What a replica follows is the
//! manifest's generation, owner and history (its eras) as last seen, kept in `replica.json`
//! ([`Followed`]). A newer manifest continues it when its log reaches at least as far as the
//! replica applied and either
//!
//! - it names the same primary (generation and owner) with the same eras, or
//! - it names a newer generation (a promotion, of this replica or another one) whose history
//!   keeps every era followed, the last of them closed at or after the segment the replica is
//!   at (a promotion closes it where that generation's log ended).
//!
//! Anything else ([`Break`]) is another history: an older generation, another owner of the same
//! one, other eras. The history does not name the owners of past generations, so a location
//! started over and then promoted before the replica looked again is told apart only by its
//! eras (and its length): one whose first era starts at the same segment as the one followed
//! passes for a continuation.

use super::layout::{Era, Manifest};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The history a replica follows: the manifest's generation, owner and eras as it last read
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Followed {
    pub generation: u64,
    pub owner: String,
    pub history: Vec<Era>,
}

impl Followed {
    pub fn of(m: &Manifest) -> Followed {
        Followed {
            generation: m.generation,
            owner: m.owner.clone(),
            history: m.history.clone(),
        }
    }
}

/// Why a manifest does not continue the history a replica followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// Its log ends before the segment the replica is at.
    Shorter { next_segment: u64, applied: u64 },
    /// It names an older generation than the one followed.
    Older { generation: u64, followed: u64 },
    /// It names the generation followed, written by another primary.
    OtherOwner {
        generation: u64,
        owner: String,
        followed: String,
    },
    /// Its eras do not extend the ones followed.
    OtherHistory,
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::Shorter {
                next_segment,
                applied,
            } => write!(
                f,
                "its manifest lists the log up to segment {next_segment}, but this replica applied every segment below {applied}"
            ),
            Break::Older {
                generation,
                followed,
            } => write!(
                f,
                "its manifest names generation {generation}, older than generation {followed} this replica followed"
            ),
            Break::OtherOwner {
                generation,
                owner,
                followed,
            } => write!(
                f,
                "its manifest names generation {generation} of another primary (owner {owner}, this replica followed owner {followed})"
            ),
            Break::OtherHistory => f.write_str(
                "its history (the generations and their segment ranges) does not extend the one this replica followed",
            ),
        }
    }
}

/// Whether `m` continues `followed` for a replica that applied every segment below `applied`;
/// `None` when it does. Without a followed history (a `replica.json` of an older version) only
/// the length of the log is checked.
pub fn check(followed: Option<&Followed>, applied: u64, m: &Manifest) -> Option<Break> {
    if m.next_segment < applied {
        return Some(Break::Shorter {
            next_segment: m.next_segment,
            applied,
        });
    }
    let followed = followed?;
    if m.generation < followed.generation {
        return Some(Break::Older {
            generation: m.generation,
            followed: followed.generation,
        });
    }
    if m.generation == followed.generation {
        if m.owner != followed.owner {
            return Some(Break::OtherOwner {
                generation: m.generation,
                owner: m.owner.clone(),
                followed: followed.owner.clone(),
            });
        }
        return (m.history != followed.history).then_some(Break::OtherHistory);
    }
    // A newer generation: the eras followed, the last one closed by a promotion.
    // (A followed history without eras tells nothing more.)
    let (last, before) = followed.history.split_last()?;
    let (Some(kept), Some(era)) = (m.history.get(..before.len()), m.history.get(before.len()))
    else {
        return Some(Break::OtherHistory);
    };
    let closed = match last.end_segment {
        Some(end) => era.end_segment == Some(end),
        None => era.end_segment.is_some_and(|end| end >= applied),
    };
    let extends = kept == before
        && era.generation == last.generation
        && era.from_segment == last.from_segment
        && closed
        && m.history.len() > followed.history.len();
    (!extends).then_some(Break::OtherHistory)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(generation: u64, owner: &str, history: &[(u64, u64, Option<u64>)]) -> Manifest {
        let mut m = Manifest::new(0, owner.into());
        m.generation = generation;
        m.history = history
            .iter()
            .map(|&(generation, from_segment, end_segment)| Era {
                generation,
                from_segment,
                end_segment,
            })
            .collect();
        m.next_segment = 20;
        m
    }

    #[test]
    fn the_same_primary_moving_on_continues() {
        let m = manifest(1, "a", &[(1, 3, None)]);
        let followed = Followed::of(&m);
        assert_eq!(check(Some(&followed), 12, &m), None);
        assert_eq!(check(Some(&followed), 20, &m), None);
    }

    #[test]
    fn promotions_of_any_replica_continue() {
        let followed = Followed::of(&manifest(1, "a", &[(1, 3, None)]));
        let promoted = manifest(2, "b", &[(1, 3, Some(12)), (2, 13, None)]);
        assert_eq!(check(Some(&followed), 12, &promoted), None);
        assert_eq!(check(Some(&followed), 5, &promoted), None);
        let twice = manifest(
            3,
            "c",
            &[(1, 3, Some(12)), (2, 13, Some(15)), (3, 16, None)],
        );
        assert_eq!(check(Some(&followed), 12, &twice), None);
        assert_eq!(check(Some(&Followed::of(&promoted)), 14, &twice), None);
    }

    #[test]
    fn a_location_started_over_does_not_continue() {
        let followed = Followed::of(&manifest(1, "a", &[(1, 3, None)]));
        // Fewer segments than were applied.
        let mut fresh = manifest(1, "b", &[(1, 1, None)]);
        fresh.next_segment = 4;
        assert_eq!(
            check(Some(&followed), 12, &fresh),
            Some(Break::Shorter {
                next_segment: 4,
                applied: 12
            })
        );
        // As long, or longer: another owner of generation 1.
        let fresh = manifest(1, "b", &[(1, 3, None)]);
        assert!(matches!(
            check(Some(&followed), 12, &fresh),
            Some(Break::OtherOwner { generation: 1, .. })
        ));
        // A replica that followed a promoted primary sees generation 1 again.
        let promoted = Followed::of(&manifest(2, "b", &[(1, 3, Some(12)), (2, 13, None)]));
        assert_eq!(
            check(Some(&promoted), 14, &fresh),
            Some(Break::Older {
                generation: 1,
                followed: 2
            })
        );
        // Started over, then promoted: its first era is not the one followed.
        let other = manifest(2, "c", &[(1, 1, Some(6)), (2, 7, None)]);
        assert_eq!(
            check(Some(&followed), 12, &other),
            Some(Break::OtherHistory)
        );
        // Closed before what this replica applied: not the log it read.
        let short = manifest(2, "c", &[(1, 3, Some(9)), (2, 10, None)]);
        assert_eq!(
            check(Some(&followed), 12, &short),
            Some(Break::OtherHistory)
        );
        // Fewer eras than followed, under a newer generation number.
        let odd = manifest(3, "d", &[(3, 1, None)]);
        assert_eq!(check(Some(&promoted), 14, &odd), Some(Break::OtherHistory));
    }

    #[test]
    fn without_a_followed_history_only_the_length_is_checked() {
        let m = manifest(5, "z", &[(5, 0, None)]);
        assert_eq!(check(None, 20, &m), None);
        assert!(matches!(check(None, 21, &m), Some(Break::Shorter { .. })));
    }
}
