//! The manifest's versions: every change of the manifest is a new object
//! `manifest/<version>.json` (20 decimal digits, so keys sort like numbers), created with
//! [`Condition::IfAbsent`]. Two writers racing for one version therefore have exactly one winner
//! on every store that makes `If-None-Match: *` atomic, which is the fencing guarantee; rewriting
//! one object with `If-Match` is not atomic on every S3-compatible store.
//!
//! Readers list the `manifest/` prefix and take the last key. Old versions are pruned behind a
//! margin of [`KEEP`] versions so listings stay small. A writer whose version fell into a pruned
//! gap (it was stalled while [`KEEP`] newer versions were written) would see its create succeed;
//! that is why [`commit`] lists after it writes and reports such a write as superseded.

use crate::objstore::{Condition, Error, ObjectStore};

/// The folder of the manifest's versions.
pub const PREFIX: &str = "manifest/";

/// How many of the newest versions pruning keeps.
pub const KEEP: u64 = 16;

/// How often a reader retries when the version it listed was pruned before it could read it.
const READ_TRIES: usize = 5;

/// The key of version `version`.
pub fn key(version: u64) -> String {
    format!("{PREFIX}{version:020}.json")
}

/// The version a key names, if it is a manifest version's key.
pub fn parse_key(key: &str) -> Option<u64> {
    let digits = key.strip_prefix(PREFIX)?.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A manifest version as read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub version: u64,
    pub body: Vec<u8>,
}

/// Every version in the store, oldest first.
fn versions(objects: &dyn ObjectStore) -> Result<Vec<u64>, Error> {
    let mut found: Vec<u64> = objects
        .list(PREFIX)?
        .iter()
        .filter_map(|o| parse_key(&o.key))
        .collect();
    found.sort_unstable();
    Ok(found)
}

/// The newest version, or `None` if the store holds none.
pub fn newest(objects: &dyn ObjectStore) -> Result<Option<Version>, Error> {
    for _ in 0..READ_TRIES {
        let Some(&version) = versions(objects)?.last() else {
            return Ok(None);
        };
        // Pruned between the listing and the read only if KEEP newer versions were written
        // meanwhile: list again.
        if let Some(obj) = objects.get(&key(version))? {
            return Ok(Some(Version {
                version,
                body: obj.body,
            }));
        }
    }
    Err(Error::Unavailable(
        "the manifest's newest version kept disappearing while being read".into(),
    ))
}

/// What [`commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// The version was created and is the newest.
    Won,
    /// Another writer created this version first (the store answered 412).
    Taken,
    /// The version was created, but into a gap left by pruning below this newer version:
    /// readers ignore it, and the writer must read the newest version.
    Superseded(u64),
}

/// Creates manifest version `version` with `body`, only if no writer created it before.
pub fn commit(objects: &dyn ObjectStore, version: u64, body: &[u8]) -> Result<Commit, Error> {
    match objects.put(&key(version), body, &Condition::IfAbsent) {
        Ok(_) => {}
        Err(Error::PreconditionFailed) => return Ok(Commit::Taken),
        Err(e) => return Err(e),
    }
    match versions(objects)?.last() {
        Some(&newer) if newer > version => Ok(Commit::Superseded(newer)),
        _ => Ok(Commit::Won),
    }
}

/// Deletes the versions older than the newest [`KEEP`] below `newest`; returns how many.
pub fn prune(objects: &dyn ObjectStore, newest: u64) -> Result<usize, Error> {
    let below = newest.saturating_sub(KEEP - 1);
    let mut removed = 0;
    for version in versions(objects)?.into_iter().filter(|&v| v < below) {
        objects.delete(&key(version))?;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objstore::FileStore;

    #[test]
    fn keys_sort_like_versions_and_round_trip() {
        assert_eq!(key(7), "manifest/00000000000000000007.json");
        assert!(key(9) < key(10));
        assert_eq!(parse_key(&key(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_key("manifest/7.json"), None);
        assert_eq!(parse_key("manifest.json"), None);
        assert!(crate::objstore::valid_key(&key(1)));
    }

    #[test]
    fn one_winner_per_version_newest_read_and_old_versions_pruned() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::Unavailable(e.to_string()))?;
        let store = FileStore::open(dir.path())?;
        assert_eq!(newest(&store)?, None);
        for v in 1..=20 {
            assert_eq!(commit(&store, v, format!("{v}").as_bytes())?, Commit::Won);
        }
        assert_eq!(commit(&store, 20, b"late")?, Commit::Taken);
        assert_eq!(
            newest(&store)?,
            Some(Version {
                version: 20,
                body: b"20".to_vec()
            })
        );
        assert_eq!(prune(&store, 20)?, 4);
        assert_eq!(versions(&store)?, (5..=20).collect::<Vec<_>>());
        // A stalled writer filling a pruned gap learns it is behind.
        assert_eq!(commit(&store, 2, b"stale")?, Commit::Superseded(20));
        Ok(())
    }
}
