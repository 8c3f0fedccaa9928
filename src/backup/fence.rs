//! Why a primary is fenced (another primary holds its backup location, or the location holds a
//! longer history than this data folder), as far as the bucket and this data folder tell, and
//! the log line that says so with what the operator can do.

use super::layout::{self, Manifest, SegmentKey};
use super::local;
use crate::objstore::{Error as StoreError, ObjectStore};
use crate::storage::Backend;
use std::path::Path;

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
    /// The manifest names this server, but its log holds what this data folder's does not:
    /// the folder was put back to an earlier moment (a copy or disk snapshot restored under a
    /// running backup) or its log was cut. Writes it took would fork the bucket's history: they
    /// would go into segments the bucket already has (and be skipped), or after a segment
    /// that holds writes this folder lost.
    Behind(Behind),
}

/// Whether the log of the data folder `dir` (writing segment `writing`) falls behind the one
/// the manifest `m`, which names this server, says is uploaded: its segment number is below
/// the manifest's next one, or a segment of this server's generation that both hold differs
/// in size (an uploaded segment was closed for good, so the folder's copy never changes after
/// the upload).
pub fn behind(
    fs: &dyn Backend,
    dir: &Path,
    objects: &dyn ObjectStore,
    writing: u64,
    m: &Manifest,
) -> Result<Option<Behind>, BehindError> {
    if writing < m.next_segment {
        return Ok(Some(Behind::Segments {
            uploaded: m.next_segment,
            writing,
        }));
    }
    // Only this server's own uploads: a promoted replica's folder still holds the segments it
    // logged as a replica, numbered its own way, below the first one it wrote as the primary.
    let Some(ours) = m.history.iter().find(|e| e.generation == m.generation) else {
        return Ok(None);
    };
    for (seq, _, folder) in local::segments(fs, dir).map_err(BehindError::Local)? {
        if seq < ours.from_segment {
            continue;
        }
        if seq >= m.next_segment {
            break;
        }
        let listed = objects.list(&layout::segment_prefix(seq, m.generation))?;
        if let Some(key) = listed.iter().find_map(|o| SegmentKey::parse(&o.key)) {
            if key.size != folder {
                return Ok(Some(Behind::Differs {
                    seq,
                    bucket: key.size,
                    folder,
                }));
            }
        }
    }
    Ok(None)
}

/// Why [`behind`] could not tell.
#[derive(Debug)]
pub enum BehindError {
    Local(std::io::Error),
    Store(StoreError),
}

impl From<StoreError> for BehindError {
    fn from(e: StoreError) -> BehindError {
        BehindError::Store(e)
    }
}

/// How this data folder's log falls behind the bucket's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behind {
    /// The bucket holds segments up to `uploaded - 1`; the folder writes segment `writing`.
    Segments { uploaded: u64, writing: u64 },
    /// Segment `seq` is `bucket` bytes in the bucket and `folder` bytes here.
    Differs { seq: u64, bucket: u64, folder: u64 },
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
            Fence::Behind(behind) => {
                let how = match behind {
                    Behind::Segments { uploaded, writing } => format!(
                        "the bucket's log reaches segment {}, and this data folder writes \
                         segment {writing}",
                        uploaded.saturating_sub(1)
                    ),
                    Behind::Differs {
                        seq,
                        bucket,
                        folder,
                    } => format!(
                        "segment {seq} is {bucket} bytes in the bucket and {folder} bytes in this \
                         data folder"
                    ),
                };
                format!(
                    "{location} holds a longer history than this data folder: {how}. The \
                     folder was put back to an earlier moment (a copy or a disk snapshot) or \
                     its log was cut, and writes taken now would fork the backup's history. \
                     {STOPS}. To go on from the bucket's history, rebuild the folder with \
                     fluxiondb restore --from {location}; to keep this folder's, give it a new \
                     --backup location"
                )
            }
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
