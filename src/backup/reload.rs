//! A replica that fell behind the bucket's history: the next segment it needs was pruned
//! (`--backup-keep` on the primary), so no amount of retrying brings it back. It reloads from
//! the newest restore point instead: the point and the segments after it are rebuilt in a
//! scratch folder inside the replica's, recovered there like a restore, and the difference is
//! then applied to the running replica as ordinary copied log entries — every collection the
//! replica held is dropped and, collection by collection, the point's are inserted again
//! (1,000 records per entry) with their key/value entries; every retention policy is set first.
//! So the reload is in the replica's own log (a crash mid-way reloads again at restart), and
//! subscribers see `dcol` followed by the collection's records, as if the primary had written
//! them. While a collection is reloaded a reader may find it missing or partly loaded. The
//! reload holds both copies in memory while it runs.

use super::layout::{self, Manifest};
use super::replicated::{Applier, ApplyError};
use super::restore::{self, RestoreError, Restored};
use crate::objstore::ObjectStore;
use crate::persist::{self, FsyncPolicy, WalOp};
use crate::storage::Backend;
use crate::store::{Collection, Policy, Store};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// The scratch folder inside the replica's data folder.
pub const RELOAD_DIR: &str = "replica-reload";
/// Records per copied insert entry.
const CHUNK: usize = 1000;

/// Whether the bucket holds a restore point of the manifest's history that starts after
/// `next_segment`: reloading from it moves the replica on. Told from the keys alone: a point
/// starting past the manifest's log, or outside its generation's range, cannot be whole (see
/// `Point::whole_in`), so it does not count.
pub fn point_after(
    objects: &dyn ObjectStore,
    m: &Manifest,
    next_segment: u64,
) -> Result<bool, RestoreError> {
    Ok(objects.list("points/")?.iter().any(|o| {
        layout::parse_point_key(&o.key).is_some_and(|(seq, generation, _)| {
            seq > next_segment
                && seq <= m.next_segment
                && m.history.iter().any(|e| {
                    e.generation == generation
                        && seq >= e.from_segment
                        && e.end_segment.is_none_or(|end| seq <= end)
                })
        })
    }))
}

/// Rebuilds the newest restore point (and the segments after it) in the scratch folder (on
/// `fs`, the data folder's backend) and applies the difference to the replica through
/// `applier`. The caller waits for the log and flushes the applier.
pub fn reload(
    objects: &dyn ObjectStore,
    location: &str,
    fs: &Arc<dyn Backend>,
    dir: &Path,
    applier: &mut Applier<'_>,
) -> Result<Restored, RestoreError> {
    let scratch = dir.join(RELOAD_DIR);
    let local = |source| RestoreError::Local {
        path: scratch.clone(),
        source,
    };
    remove_scratch(&**fs, dir).map_err(local)?;
    fs.create_dir(&scratch).map_err(local)?;
    let restored = restore::materialize(objects, location, &**fs, &scratch, None)?;
    let damaged = |e: persist::Error| RestoreError::Damaged {
        key: format!("restore point of segment {}", restored.point.first_segment),
        why: e.to_string(),
    };
    let loaded = persist::open(fs.clone(), &scratch, FsyncPolicy::Never, false).map_err(damaged)?;
    let wanted = loaded.store;
    drop(loaded.journal);
    replace(applier, &wanted).map_err(|e| RestoreError::Local {
        path: dir.to_owned(),
        source: std::io::Error::other(e.to_string()),
    })?;
    drop(wanted);
    remove_scratch(&**fs, dir).map_err(local)?;
    Ok(restored)
}

/// Removes the scratch folder a reload left (absent is fine).
pub fn remove_scratch(fs: &dyn Backend, dir: &Path) -> std::io::Result<()> {
    match fs.remove_dir_all(&dir.join(RELOAD_DIR)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Makes the replica's store hold what `wanted` holds, through copied log entries.
fn replace(applier: &mut Applier<'_>, wanted: &Store) -> Result<(), ApplyError> {
    let now = persist::now_ms();
    let held = applier.store().names();
    let mut policies: BTreeSet<String> = applier
        .store()
        .policies()
        .all()
        .into_iter()
        .map(|p| p.0)
        .collect();
    for (col, policy) in wanted.policies().all() {
        policies.remove(&col);
        set_policy(applier, &col, policy, now)?;
    }
    for col in &policies {
        set_policy(applier, col, Policy::default(), now)?;
    }
    let loaded = wanted.all();
    let names: BTreeSet<&str> = held
        .iter()
        .map(String::as_str)
        .chain(loaded.iter().map(|(n, _)| n.as_str()))
        .collect();
    for col in names {
        if held.iter().any(|n| n == col) {
            applier.apply(&WalOp::DropCollection { col }, now)?;
        }
        if let Some((_, handle)) = loaded.iter().find(|(n, _)| n == col) {
            load_collection(applier, col, &handle.read(), now)?;
        }
    }
    Ok(())
}

/// Inserts one collection's records and key/value entries.
fn load_collection(
    applier: &mut Applier<'_>,
    col: &str,
    c: &Collection,
    now: i64,
) -> Result<(), ApplyError> {
    for (doc, d) in &c.docs {
        let series = d.read();
        let mut chunk: Vec<(i64, String)> = Vec::with_capacity(CHUNK);
        for i in 0..series.len() {
            let (ts, data) = series.get(i);
            chunk.push((ts, data.text().into_owned()));
            if chunk.len() == CHUNK || i + 1 == series.len() {
                let records = chunk
                    .iter()
                    .map(|(ts, data)| (doc.as_str(), *ts, data.as_str()))
                    .collect();
                applier.apply(&WalOp::Insert { col, records }, now)?;
                chunk.clear();
            }
        }
    }
    for (key, value) in &c.kv {
        applier.apply(&WalOp::SetValue { col, key, value }, now)?;
    }
    Ok(())
}

fn set_policy(
    applier: &mut Applier<'_>,
    col: &str,
    policy: Policy,
    now: i64,
) -> Result<(), ApplyError> {
    let op = WalOp::SetRetention {
        col,
        max_age: policy.max_age,
        max_records: policy.max_records,
    };
    applier.apply(&op, now).map(|_| ())
}
