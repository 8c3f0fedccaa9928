//! The retention policies' snapshot: `retention.bin`, every collection's own policy, written
//! at a checkpoint when a policy changed. Policies are kept by collection name and outlive the
//! collections, so they have a file of their own rather than a place in a collection's
//! snapshot; changes between checkpoints are in the log (`WalOp::SetRetention`).

use super::codec;
use super::error::{Damage, Error};
use super::framed;
use crate::storage::{Backend, Op};
use crate::store::{Policy, Store};
use bincode::{Decode, Encode};
use std::path::Path;

pub const POLICIES_FILE: &str = "retention.bin";
const MAGIC: &[u8; 8] = b"FLXRETN1";

/// `(collection, max_age, max_records)`, members as `sret` gave them.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
struct PoliciesImage {
    own: Vec<(String, Option<u64>, Option<u64>)>,
}

/// Writes the policies if any changed since the last save; true when the file was written.
/// On failure they count as changed again, so the next checkpoint retries.
pub fn save(fs: &dyn Backend, dir: &Path, store: &Store) -> Result<bool, Error> {
    let Some(own) = store.policies().take_changed() else {
        return Ok(false);
    };
    let image = PoliciesImage {
        own: own
            .into_iter()
            .map(|(name, p)| (name, p.max_age, p.max_records))
            .collect(),
    };
    let mut payload = Vec::new();
    let written = codec::encode_into(&image, &mut payload)
        .map_err(Error::Encode)
        .and_then(|()| framed::write(fs, dir, POLICIES_FILE, MAGIC, &payload));
    if written.is_err() {
        store.policies().mark_changed();
    }
    written.map(|()| true)
}

/// Reads the policies file; an absent file holds no policy.
pub fn read(fs: &dyn Backend, path: &Path) -> Result<Vec<(String, Policy)>, Error> {
    if !fs.exists(path).map_err(Error::io(Op::Stat, path))? {
        return Ok(Vec::new());
    }
    let payload = framed::read(fs, path, MAGIC)?;
    let image: PoliciesImage = codec::decode(&payload).map_err(|e| Error::Corrupt {
        path: path.to_owned(),
        damage: Damage::Undecodable(e),
    })?;
    Ok(image
        .own
        .into_iter()
        .map(|(name, max_age, max_records)| {
            (
                name,
                Policy {
                    max_age,
                    max_records,
                },
            )
        })
        .collect())
}
