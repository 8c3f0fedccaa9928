//! Why a primary is fenced (another primary holds its backup location), as far as the bucket's
//! manifest and this data folder's `backup.json` tell, and the log line that says so with what
//! the operator can do.

use super::layout::Manifest;

/// Who holds the location a fenced primary lost, as far as the manifest and this data folder's
/// `backup.json` tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fence {
    /// The manifest's history closes the generation this server wrote (`ours`) and names a
    /// newer one: a replica was promoted after it.
    Promoted { ours: u64, theirs: u64 },
    /// The manifest names another primary, and not as this server's successor: one that
    /// started the location from another data folder (generation 1), or a promoted replica
    /// of it (a later generation). `ours` is the generation this folder's `backup.json` names,
    /// if it has one (a restored folder, or a second server's new one, has none).
    Other {
        ours: Option<u64>,
        theirs: u64,
        owner: String,
    },
}

impl Fence {
    /// The fence `m` (the bucket's newest manifest, which does not name this server) puts it
    /// behind, given the generation this folder knows it wrote, if any.
    pub fn of(ours: Option<u64>, m: &Manifest) -> Fence {
        match ours {
            // Only a promotion closes a generation and starts the next one.
            Some(g)
                if m.generation > g
                    && m.history
                        .iter()
                        .any(|e| e.generation == g && e.end_segment.is_some()) =>
            {
                Fence::Promoted {
                    ours: g,
                    theirs: m.generation,
                }
            }
            _ => Fence::Other {
                ours,
                theirs: m.generation,
                owner: m.owner.clone(),
            },
        }
    }

    /// The log line: what happened and what the operator can do about it.
    pub fn describe(&self, location: &str) -> String {
        const STOPS: &str = "This server uploads nothing more and refuses writes (reads are \
                             still served; /readyz answers 503)";
        let remedy = format!(
            "To use this server again, give it a new --backup location, or rebuild it from \
             the bucket as a replica (an empty --data folder with --replica-of {location})"
        );
        match self {
            Fence::Promoted { ours, theirs } => format!(
                "{location} was taken over by a promoted replica: the manifest names \
                 generation {theirs}, this server wrote generation {ours}. {STOPS}; writes go \
                 to the new primary, and what this server acknowledged since the promotion is \
                 not in the bucket. {remedy}"
            ),
            Fence::Other {
                ours,
                theirs,
                owner,
            } => {
                let who = if *theirs > 1 {
                    "a promoted replica"
                } else {
                    "the server that started it"
                };
                let mine = match ours {
                    None => "this data folder never backed up there (a restored folder, or a \
                             second server given the same location)"
                        .to_owned(),
                    Some(g) => format!(
                        "this data folder backed up as generation {g} of another owner (to \
                         another location, or it lost the race to start this one)"
                    ),
                };
                format!(
                    "{location} belongs to another primary ({who}: generation {theirs}, owner \
                     {owner}); {mine}. A location has one primary. {STOPS}. {remedy}, \
                     promoted with kill -USR1 once the other primary is gone"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::layout::Era;

    fn manifest(generation: u64, owner: &str, history: &[(u64, Option<u64>)]) -> Manifest {
        let mut m = Manifest::new(0, owner.into());
        m.generation = generation;
        m.history = history
            .iter()
            .map(|&(generation, end_segment)| Era {
                generation,
                from_segment: 0,
                end_segment,
            })
            .collect();
        m
    }

    #[test]
    fn a_fence_tells_a_promotion_from_another_primary() {
        let promoted = manifest(2, "b", &[(1, Some(5)), (2, None)]);
        assert_eq!(
            Fence::of(Some(1), &promoted),
            Fence::Promoted { ours: 1, theirs: 2 }
        );
        // A folder that never wrote the location: another primary's, however it got there.
        let other = |ours, theirs| Fence::Other {
            ours,
            theirs,
            owner: "b".into(),
        };
        assert_eq!(Fence::of(None, &promoted), other(None, 2));
        let started = manifest(1, "b", &[(1, None)]);
        assert_eq!(Fence::of(None, &started), other(None, 1));
        // The same generation under another owner: two servers started it.
        assert_eq!(Fence::of(Some(1), &started), other(Some(1), 1));
        // A generation the history does not close was not this server's.
        assert_eq!(Fence::of(Some(3), &promoted), other(Some(3), 2));

        let loc = "file:///b";
        let said = Fence::of(Some(1), &promoted).describe(loc);
        assert!(said.contains("taken over by a promoted replica"), "{said}");
        let said = Fence::of(None, &started).describe(loc);
        assert!(said.contains("belongs to another primary (the server that started it"));
        assert!(said.contains("never backed up there"), "{said}");
        for fence in [Fence::of(Some(1), &promoted), Fence::of(None, &started)] {
            let said = fence.describe(loc);
            assert!(said.contains("give it a new --backup location"), "{said}");
            assert!(said.contains("--replica-of file:///b"), "{said}");
            assert!(!said.contains("a replica was promoted"), "{said}");
        }
    }
}
