//! A read replica's follower thread: every poll interval it reads the manifest, checks that it
//! continues the history the replica copied (see [`continuity`]; a location started over is
//! reloaded from its newest restore point), copies the segments it has not applied yet
//! (logging each entry in the replica's own journal with the primary's write time, then
//! applying it), and takes the primary's key file when it changed. On promotion it applies
//! everything in the bucket, moves the manifest to the next generation with a conditional PUT,
//! opens the journal to writes and becomes the backup uploader.

use super::continuity::{self, Followed};
use super::layout::{Era, Manifest};
use super::local::{self, PrimaryState, ReplicaState};
use super::manifests::{self, Commit};
use super::reload;
use super::replicated::Applier;
use super::restore::{self, RestoreError};
use super::uploader::{self, Uploader};
use crate::objstore::ObjectStore;
use crate::persist::{self, Gate, Journal};
use crate::server::Handle;
use crate::storage::Backend;
use crate::store::Handles;
use parking_lot::{Condvar, Mutex};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Asks a replica to become the primary (SIGUSR1, or [`crate::launch::Running::promote`]).
#[derive(Default)]
pub struct Promotion {
    /// Requests made, and how many of them an attempt has taken.
    asked: Mutex<(u64, u64)>,
    cv: Condvar,
}

impl Promotion {
    pub fn ask(&self) {
        self.asked.lock().0 += 1;
        self.cv.notify_all();
    }

    /// Takes the requests made so far, as an attempt starts: one made during the attempt
    /// stays pending (a failed attempt is then tried again at once).
    fn take(&self) {
        let mut asked = self.asked.lock();
        asked.1 = asked.0;
    }

    /// Waits up to `d` for a promotion request; true if one is pending.
    fn wait(&self, d: Duration) -> bool {
        let mut asked = self.asked.lock();
        if asked.0 == asked.1 {
            self.cv.wait_for(&mut asked, d);
        }
        asked.0 > asked.1
    }
}

pub struct Follower {
    pub(super) objects: Arc<dyn ObjectStore>,
    /// The data folder's storage backend (the journal's).
    pub(super) fs: Arc<dyn Backend>,
    pub(super) location: String,
    pub(super) dir: PathBuf,
    pub(super) poll: Duration,
    pub(super) next_segment: u64,
    pub(super) keys_crc: Option<u32>,
    pub(super) promotion: Arc<Promotion>,
    /// What the uploader needs once promoted.
    pub(super) interval: Duration,
    pub(super) keep: Option<Duration>,
    pub(super) applied: u64,
    pub(super) behind_since: Option<Instant>,
    /// The history `next_segment` counts in (see [`continuity`]); `None` until the first
    /// manifest read when `replica.json` was written by an older version.
    pub(super) followed: Option<Followed>,
    /// Every write the primary acknowledged up to this time (its clock, ms) is applied here:
    /// the `updated_ms` of the newest manifest whose segments are all applied (the primary
    /// rewrites it every round, a heartbeat), or the newest applied write while more wait.
    pub(super) as_of_ms: i64,
}

impl Follower {
    pub fn run(mut self, handle: &Handle) {
        let Some(journal) = handle.journal() else {
            return;
        };
        let mut handles = Handles::default();
        // Published before the first poll, which may take long (a reload): the gauge counts
        // from what the replica held when it started, never from the epoch.
        crate::metrics::backup::replica_as_of(self.as_of_ms);
        if let Err(e) = reload::remove_scratch(&*self.fs, &self.dir) {
            log::warn!("replica: removing an earlier reload's scratch folder failed: {e}");
        }
        loop {
            if !self.follow(handle, journal, &mut handles) {
                return;
            }
            self.promotion.take();
            match self.promote(handle, journal, &mut handles) {
                Ok(uploader) => return uploader.run(handle),
                Err(e) => {
                    // Still a replica, and it goes on following: a promotion can be asked
                    // again. Segments it set aside for the new primary's log are let go.
                    crate::metrics::backup::backup_failed();
                    log::error!(
                        "replica: promotion failed: {e}; still a read replica of {}, \
                         following it; ask again to retry",
                        self.location
                    );
                    journal.keep_segments_from(u64::MAX);
                }
            }
        }
    }

    /// Follows the bucket until a promotion is asked (true) or the server stops (false).
    fn follow(&mut self, handle: &Handle, journal: &Journal, handles: &mut Handles) -> bool {
        loop {
            if let Err(e) = self.poll_once(handle, journal, handles) {
                crate::metrics::backup::backup_failed();
                // (The gauge grows from the last time the replica knew it was caught up.)
                crate::metrics::backup::replica_as_of(self.as_of_ms);
                if self.behind_since.is_none() {
                    self.behind_since = Some(Instant::now());
                    log::warn!("replica: following {} failed: {e}; retrying", self.location);
                }
            } else if let Some(since) = self.behind_since.take() {
                log::info!(
                    "replica: following {} again after {:.1} s",
                    self.location,
                    since.elapsed().as_secs_f64()
                );
            }
            if self.wait(handle) {
                return true;
            }
            if handle.stopping() {
                return false;
            }
        }
    }

    /// Sleeps one poll interval; true when a promotion was asked for.
    fn wait(&self, handle: &Handle) -> bool {
        let deadline = Instant::now() + self.poll;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || handle.stopping() {
                return false;
            }
            if self.promotion.wait(left.min(Duration::from_millis(100))) {
                return true;
            }
        }
    }

    /// Applies every segment the manifest lists that this replica lacks; returns the manifest
    /// and its version as read.
    fn poll_once(
        &mut self,
        handle: &Handle,
        journal: &Journal,
        handles: &mut Handles,
    ) -> Result<(Manifest, u64), RestoreError> {
        let (mut m, mut version) = restore::read_manifest(&*self.objects, &self.location)?;
        if let Some(why) = continuity::check(self.followed.as_ref(), self.next_segment, &m) {
            self.start_over(handle, journal, handles, &why)?;
            (m, version) = restore::read_manifest(&*self.objects, &self.location)?;
            if let Some(why) = continuity::check(self.followed.as_ref(), self.next_segment, &m) {
                return Err(RestoreError::Diverged(why.to_string()));
            }
        }
        crate::metrics::backup::replica_diverged(false);
        // Saved with the next segment applied: a replica restarted before reads a promotion
        // (the only change of generation that continues) as a continuation all the same.
        self.followed = Some(Followed::of(&m));
        if let Some(keys) = &m.keys {
            if self.keys_crc != Some(keys.crc) {
                let body = self
                    .objects
                    .get(&keys.key)?
                    .ok_or_else(|| RestoreError::Missing(keys.key.clone()))?
                    .body;
                super::layout::verify(&keys.key, &body, keys.size, keys.crc).map_err(|why| {
                    RestoreError::Damaged {
                        key: keys.key.clone(),
                        why,
                    }
                })?;
                let decoded =
                    persist::decode_keys(body, &keys.key).map_err(|e| RestoreError::Damaged {
                        key: keys.key.clone(),
                        why: e.to_string(),
                    })?;
                take_keys(handle, journal, &decoded)?;
                self.keys_crc = Some(keys.crc);
            }
        }
        let todo = m.segments_from(self.next_segment);
        for (seq, generation) in todo {
            let s = match restore::find_segment(&*self.objects, seq, generation) {
                Ok(s) => s,
                Err(RestoreError::Missing(key))
                    if reload::point_after(&*self.objects, &m, self.next_segment)? =>
                {
                    // Once per stall: a reload that fails is tried again at every poll.
                    log::log!(
                        self.once_per_stall(),
                        "replica: {key} is no longer in {} (pruned by the primary's --backup-keep) and this replica had not applied it; reloading from the newest restore point",
                        self.location
                    );
                    self.reload(handle, journal, handles)?;
                    return Ok((m, version));
                }
                Err(e) => return Err(e),
            };
            let body = restore::fetch_segment(&*self.objects, &s)?;
            // Uploaded segments read clean: the rest of one that does not is not skipped
            // quietly (the replica would miss those writes for good), and nothing of it is
            // applied (at every poll, its intact part would be logged and pushed again).
            if let Some(why) = persist::read_segment_bytes(&body, |_| Ok(())).damage() {
                return Err(RestoreError::Damaged { key: s.key(), why });
            }
            let mut applier = Applier::new(journal, handle.store(), handle.live(), handles);
            let mut failure = None;
            persist::read_segment_bytes(&body, |e| {
                if failure.is_none() {
                    if let Err(err) = applier.apply_bytes(e.op, e.time_ms.unwrap_or(0)) {
                        failure = Some(err);
                    }
                }
                Ok(())
            });
            // What was applied is in the log, and its pushes leave (a failed entry stops the
            // segment, which is applied again from its start at the next poll).
            applier.settle().map_err(|e| local_error(journal, e))?;
            if let Some(err) = failure {
                return Err(RestoreError::Damaged {
                    key: s.key(),
                    why: err.to_string(),
                });
            }
            self.next_segment = seq + 1;
            self.applied += 1;
            // Every write up to the segment's last one is applied (the primary wrote them in
            // order); an empty segment tells nothing new.
            self.as_of_ms = self.as_of_ms.max(s.last_ms);
            self.save_state(journal)?;
            crate::metrics::backup::replica_applied(self.applied);
            crate::metrics::backup::replica_as_of(self.as_of_ms);
        }
        // Everything the manifest lists is applied: every write the primary acknowledged
        // before its round closed the log is here, and it wrote the manifest just after.
        self.as_of_ms = self.as_of_ms.max(m.updated_ms);
        crate::metrics::backup::replica_applied(self.applied);
        crate::metrics::backup::replica_as_of(self.as_of_ms);
        Ok((m, version))
    }

    /// Warn the first time in a stall, debug after (a failing step is retried at every poll).
    fn once_per_stall(&self) -> log::Level {
        if self.behind_since.is_none() {
            log::Level::Warn
        } else {
            log::Level::Debug
        }
    }

    /// The bucket's history does not continue the one this replica copied (the location was
    /// started over): what it holds is another primary's data, so it reloads from the newest
    /// restore point of the bucket's history and follows that one. Until it has, `/readyz`
    /// answers 503 and `fluxiondb_replica_diverged` is 1.
    fn start_over(
        &mut self,
        handle: &Handle,
        journal: &Journal,
        handles: &mut Handles,
        why: &continuity::Break,
    ) -> Result<(), RestoreError> {
        crate::metrics::backup::replica_diverged(true);
        log::log!(
            self.once_per_stall(),
            "replica: {} no longer holds the history this replica copied ({why}): the location was started over; reloading from its newest restore point",
            self.location
        );
        let restored = match self.reload(handle, journal, handles) {
            Ok(restored) => restored,
            Err(e) => {
                // A new primary writes its manifest before its first restore point: waiting
                // for that is expected; anything else is an error.
                let level = match (&e, self.behind_since) {
                    (_, Some(_)) => log::Level::Debug,
                    (RestoreError::NoPoint { .. }, None) => log::Level::Warn,
                    _ => log::Level::Error,
                };
                log::log!(
                    level,
                    "replica: reloading from {} failed: {e}; this replica serves the data of a history the location no longer holds, and /readyz answers 503 until a reload succeeds (tried again at every poll)",
                    self.location
                );
                return Err(e);
            }
        };
        // The new history's keys (the next poll takes a key file; a primary without one has
        // no API keys, and the old history's must not go on opening this replica).
        self.keys_crc = None;
        if restored.manifest.keys.is_none() {
            take_keys(handle, journal, &[])?;
        }
        Ok(())
    }

    /// Loads the newest restore point of the bucket's history instead of following segment by
    /// segment (see [`reload`]): the next segment was pruned, or the history is another one.
    fn reload(
        &mut self,
        handle: &Handle,
        journal: &Journal,
        handles: &mut Handles,
    ) -> Result<restore::Restored, RestoreError> {
        let mut applier = Applier::new(journal, handle.store(), handle.live(), handles);
        let reloaded = reload::reload(
            &*self.objects,
            &self.location,
            &self.fs,
            &self.dir,
            &mut applier,
        );
        applier.settle().map_err(|e| local_error(journal, e))?;
        let restored = reloaded?;
        self.next_segment = restored.next_segment;
        self.followed = Some(Followed::of(&restored.manifest));
        // (A history started over may have an older clock's times: not kept at the old ones.)
        self.as_of_ms = restored.manifest.updated_ms;
        self.save_state(journal)?;
        crate::metrics::backup::replica_reloaded();
        crate::metrics::backup::replica_as_of(self.as_of_ms);
        log::info!(
            "replica: reloaded the restore point of segment {} and {} segments after it; following generation {} (owner {}) from segment {}",
            restored.point.first_segment,
            restored.segments,
            restored.manifest.generation,
            restored.manifest.owner,
            self.next_segment
        );
        Ok(restored)
    }

    /// Records how far the replica has applied. Its log is fsynced first, whatever the fsync
    /// policy: under `everysec` what it applied may still be only in the page cache, and a
    /// power cut would take it while the state file, already durable, says it was applied
    /// (the replica would never fetch it again).
    fn save_state(&self, journal: &Journal) -> Result<(), RestoreError> {
        journal
            .wal()
            .sync_all()
            .map_err(|e| local_error(journal, e))?;
        local::write_state(
            &*self.fs,
            &self.dir,
            local::REPLICA_STATE,
            &ReplicaState {
                next_segment: self.next_segment,
                followed: self.followed.clone(),
                as_of_ms: Some(self.as_of_ms),
            },
        )
        .map_err(|source| RestoreError::Local {
            path: self.dir.join(local::REPLICA_STATE),
            source,
        })
    }

    /// Catches up, then takes the bucket over as the next generation.
    fn promote(
        &mut self,
        handle: &Handle,
        journal: &Journal,
        handles: &mut Handles,
    ) -> Result<Uploader, String> {
        log::info!(
            "replica: promotion asked; applying everything in {}",
            self.location
        );
        for _ in 0..10 {
            let (m, version) = self
                .poll_once(handle, journal, handles)
                .map_err(|e| e.to_string())?;
            let generation = m.generation + 1;
            let from = m.next_segment.max(journal.wal().current_segment() + 1);
            journal
                .wal()
                .rotate_to(from)
                .map_err(|e| format!("starting log segment {from}: {e}"))?;
            journal.keep_segments_from(from);
            let mut next = m.clone();
            if let Some(last) = next.history.last_mut() {
                last.end_segment = Some(m.next_segment);
            }
            next.history.push(Era {
                generation,
                from_segment: from,
                end_segment: None,
            });
            next.generation = generation;
            next.owner = super::layout::new_owner();
            next.next_segment = from;
            // Named here first (see the uploader's start): a crash after the PUT leaves a
            // folder that knows it is the new primary.
            local::write_state(
                &*self.fs,
                &self.dir,
                local::PRIMARY_STATE,
                &PrimaryState {
                    generation,
                    owner: next.owner.clone(),
                },
            )
            .map_err(|e| format!("writing the primary's state: {e}"))?;
            next.updated_ms = persist::now_ms();
            let body = serde_json::to_vec_pretty(&next).map_err(|e| e.to_string())?;
            // A new version, created only if absent: the old primary's heartbeat racing for the
            // same version loses (and fences itself), or this promotion catches up again.
            let committed = match manifests::commit(&*self.objects, version + 1, &body) {
                // The PUT may have landed though its answer was lost: the bucket says.
                Err(e) => match self.newest_is(&next) {
                    Some(true) => Ok(Commit::Won),
                    _ => Err(e),
                },
                other => other,
            };
            match committed {
                Ok(Commit::Won) => {
                    // The bucket names this server now: whatever fails from here on, it is
                    // the primary (the old one fences itself at its next heartbeat).
                    if let Err(e) = local::remove_state(&*self.fs, &self.dir, local::REPLICA_STATE)
                    {
                        log::error!(
                            "replica: removing the replica's state after the promotion: {e}"
                        );
                    }
                    journal.set_gate(Gate::Open);
                    log::info!(
                        "replica: promoted to primary of {} (generation {generation}, log from segment {from})",
                        self.location
                    );
                    let force = Arc::new(AtomicBool::new(true));
                    uploader::install_hook(journal, self.dir.clone(), force.clone());
                    if let Err(e) = journal.checkpoint(handle.store()) {
                        log::error!("replica: the first checkpoint as primary failed: {e}");
                    }
                    crate::metrics::backup::backup_enabled();
                    crate::metrics::backup::replica_promoted();
                    return Ok(Uploader {
                        objects: self.objects.clone(),
                        fs: self.fs.clone(),
                        location: self.location.clone(),
                        dir: self.dir.clone(),
                        interval: self.interval,
                        keep: self.keep,
                        force_point: force,
                        state: Some((next, version + 1)),
                        known_files: HashSet::new(),
                        behind_since: None,
                        last_prune: Instant::now(),
                        prune_owed: false,
                    });
                }
                Ok(Commit::Taken | Commit::Superseded(_)) => {
                    log::warn!(
                        "replica: the manifest changed during the promotion; catching up again"
                    );
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("the manifest kept changing".into())
    }

    /// Whether the bucket's newest manifest is `mine` (same generation and owner); `None` when
    /// it cannot be read, in three tries.
    fn newest_is(&self, mine: &Manifest) -> Option<bool> {
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
            let Ok(found) = manifests::newest(&*self.objects) else {
                continue;
            };
            let theirs: Manifest = serde_json::from_slice(&found?.body).ok()?;
            return Some(theirs.same_primary(mine));
        }
        None
    }
}

/// Replaces the replica's API keys with the primary's (the master key stays this server's).
/// Connections that authenticated with a key the primary removed are closed as `keys remove`
/// closes them there (`subend` `API key revoked`, then 1008), once the change is saved. Saved
/// first: a key file that cannot be written changes nothing, and the next poll tries again
/// (taken in memory only, the file a promotion uploads would have stayed the old one).
fn take_keys(
    handle: &Handle,
    journal: &Journal,
    keys: &[(String, crate::auth::Scope)],
) -> Result<(), RestoreError> {
    let ring = handle.keys();
    let change = ring.changing();
    journal
        .write_keys(keys)
        .map_err(|e| local_error(journal, e))?;
    let wanted: HashSet<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    let mut removed = Vec::new();
    for (key, _) in ring.scoped() {
        if !wanted.contains(key.as_str()) {
            if let Ok(entry) = ring.remove(&key) {
                removed.push(entry);
            }
        }
    }
    for (key, scope) in keys {
        ring.add(key, *scope);
    }
    drop(change);
    for entry in &removed {
        handle.revoke(entry);
    }
    if !removed.is_empty() {
        log::info!(
            "replica: {} API keys removed on the primary; their connections are closed",
            removed.len()
        );
    }
    Ok(())
}

/// The replica's own log failed.
fn local_error(journal: &Journal, e: persist::Error) -> RestoreError {
    RestoreError::Local {
        path: journal.dir().to_owned(),
        source: std::io::Error::other(e.to_string()),
    }
}
