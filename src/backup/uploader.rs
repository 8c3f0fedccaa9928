//! The primary's backup thread: every interval it closes the log segment being written (when
//! it holds entries), uploads closed segments and staged restore points, uploads the key file
//! when it changed, and moves the manifest on by creating its next version (`If-None-Match`).
//! Finding that version already written by another primary (a promoted replica, or a server
//! that started the location from another data folder) fences this server: it uploads nothing
//! more, refuses writes and answers `/readyz` 503 (reads are still served). Failures of the
//! store are retried at the next round; meanwhile everything stays on local disk (the journal
//! keeps the segments).

use super::fence::{self, BehindError, Fence};
use super::layout::{self, FileRef, Manifest, Point, SegmentKey};
use super::local::{self, PrimaryState};
use super::manifests::{self, Commit};
use super::packing;
use crate::objstore::{Condition, Error as StoreError, ObjectStore};
use crate::persist::{self, Gate, Journal};
use crate::server::Handle;
use crate::storage::Backend;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Why a round stopped early.
#[derive(Debug)]
pub enum RoundError {
    Store(StoreError),
    Local(String),
    /// Another primary holds the bucket, or a longer history than this data folder's.
    Fenced(Fence),
}

impl fmt::Display for RoundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoundError::Store(e) => write!(f, "{e}"),
            RoundError::Local(why) => f.write_str(why),
            RoundError::Fenced(Fence::Promoted { theirs, .. } | Fence::Other { theirs, .. }) => {
                write!(f, "the bucket belongs to generation {theirs}")
            }
            RoundError::Fenced(Fence::Behind(_)) => {
                f.write_str("the bucket holds a longer history than this data folder")
            }
        }
    }
}

impl From<StoreError> for RoundError {
    fn from(e: StoreError) -> Self {
        RoundError::Store(e)
    }
}

fn local(what: &str, path: &std::path::Path, e: std::io::Error) -> RoundError {
    RoundError::Local(format!("{what} {}: {e}", path.display()))
}

pub struct Uploader {
    pub(super) objects: Arc<dyn ObjectStore>,
    /// The data folder's storage backend (the journal's).
    pub(super) fs: Arc<dyn Backend>,
    pub(super) location: String,
    pub(super) dir: PathBuf,
    pub(super) interval: Duration,
    pub(super) keep: Option<Duration>,
    /// Set before a checkpoint that must stage a restore point even if it changed nothing.
    pub(super) force_point: Arc<AtomicBool>,
    /// The manifest as this server last wrote or read it, and its version.
    pub(super) state: Option<(Manifest, u64)>,
    pub(super) known_files: HashSet<String>,
    pub(super) behind_since: Option<Instant>,
    pub(super) last_prune: Instant,
    /// A round progressed since the last prune (which may have been too recent to run again).
    pub(super) prune_owed: bool,
}

/// Installs the checkpoint hook that stages restore points in `dir` (on the journal's backend).
pub fn install_hook(journal: &Journal, dir: PathBuf, force: Arc<AtomicBool>) {
    let fs = journal.shared_backend();
    journal.set_checkpoint_hook(Box::new(move |c| {
        let forced = force.swap(false, Ordering::AcqRel);
        if c.changed == 0 && !forced {
            return;
        }
        if let Err(e) = local::stage(&*fs, &dir, c.first_segment, persist::now_ms(), &c.files) {
            log::error!("backup: staging the restore point of segment {} failed: {e}; the next checkpoint makes another", c.first_segment);
            force.store(true, Ordering::Release);
        }
    }));
}

impl Uploader {
    /// Runs until the server stops or this server is fenced.
    pub fn run(mut self, handle: &Handle) {
        let Some(journal) = handle.journal() else {
            return;
        };
        while self.state.is_none() {
            match self.establish(handle, journal) {
                Ok(()) => {}
                Err(RoundError::Fenced(fence)) => return self.fence(journal, &fence),
                Err(e) => {
                    self.failed(&e);
                    self.measure(journal);
                    if handle.sleep(self.interval) {
                        return;
                    }
                }
            }
        }
        // Rounds start on a fixed cadence (not an interval after the previous one ended), so a
        // write waits at most one interval for its segment to close, however long uploads take.
        let mut next_round = Instant::now() + self.interval;
        loop {
            let stopping = handle.sleep(next_round.saturating_duration_since(Instant::now()));
            next_round = (next_round + self.interval).max(Instant::now());
            if stopping {
                // The server's final checkpoint comes after this thread ends, too late for its
                // restore point to reach the bucket: made here, a restore after a clean stop
                // loads snapshots of the final state instead of replaying the log since the
                // last periodic checkpoint. The server's own checkpoint then finds little to do.
                if let Err(e) = journal.checkpoint(handle.store()) {
                    log::warn!("backup: the checkpoint before the last upload failed: {e}");
                }
            }
            match self.round(journal) {
                Ok(()) => self.caught_up(),
                Err(RoundError::Fenced(fence)) => return self.fence(journal, &fence),
                Err(e) => self.failed(&e),
            }
            self.measure(journal);
            if stopping {
                return;
            }
        }
    }

    /// Reads (or creates) the manifest and checks this server owns the bucket.
    fn establish(&mut self, handle: &Handle, journal: &Journal) -> Result<(), RoundError> {
        let own = local::read_state::<PrimaryState>(&*self.fs, &self.dir, local::PRIMARY_STATE)
            .map_err(|e| RoundError::Local(format!("reading {}: {e}", local::PRIMARY_STATE)))?;
        match manifests::newest(&*self.objects)? {
            Some(found) => {
                let m: Manifest = serde_json::from_slice(&found.body).map_err(|e| {
                    RoundError::Local(format!("{}: unreadable manifest: {e}", self.location))
                })?;
                if !own.as_ref().is_some_and(|s| s.owns(&m)) {
                    let ours = own.map(|s| s.generation);
                    return Err(RoundError::Fenced(Fence::of(ours, &m)));
                }
                let writing = journal.wal().current_segment();
                match fence::behind(&*self.fs, &self.dir, &*self.objects, writing, &m) {
                    Ok(None) => {}
                    Ok(Some(behind)) => return Err(RoundError::Fenced(Fence::Behind(behind))),
                    Err(BehindError::Store(e)) => return Err(e.into()),
                    Err(BehindError::Local(e)) => return Err(local("listing", &self.dir, e)),
                }
                log::info!(
                    "backup: resuming at {} (generation {}, segment {})",
                    self.location,
                    m.generation,
                    m.next_segment
                );
                self.state = Some((m, found.version));
            }
            None => {
                // A new bucket: a first restore point of everything, then the manifest.
                self.force_point.store(true, Ordering::Release);
                journal
                    .checkpoint(handle.store())
                    .map_err(|e| RoundError::Local(format!("checkpoint: {e}")))?;
                let first = local::staged(&*self.fs, &self.dir)
                    .map_err(|e| local("listing", &self.dir, e))?
                    .last()
                    .map(|s| s.first_segment)
                    .ok_or_else(|| RoundError::Local("no restore point was staged".into()))?;
                // Named here first: a crash right after the PUT must not leave a bucket that
                // this folder's server does not know as its own.
                let owner = layout::new_owner();
                local::write_state(
                    &*self.fs,
                    &self.dir,
                    local::PRIMARY_STATE,
                    &PrimaryState {
                        generation: 1,
                        owner: owner.clone(),
                    },
                )
                .map_err(|e| local("writing", &self.dir.join(local::PRIMARY_STATE), e))?;
                let m = Manifest::new(first, owner);
                let body =
                    serde_json::to_vec_pretty(&m).map_err(|e| RoundError::Local(e.to_string()))?;
                if manifests::commit(&*self.objects, 1, &body)? != Commit::Won {
                    // Another server started this bucket at the same moment: the next try
                    // reads its manifest (and fences this one).
                    return Err(RoundError::Local(format!(
                        "{}: another server created the manifest first",
                        self.location
                    )));
                }
                log::info!(
                    "backup: started {} (generation 1, segment {first})",
                    self.location
                );
                self.state = Some((m, 1));
            }
        }
        if let Some((m, _)) = &self.state {
            journal.keep_segments_from(m.next_segment);
        }
        Ok(())
    }

    /// One round: rotate, upload, move the manifest on.
    pub(super) fn round(&mut self, journal: &Journal) -> Result<(), RoundError> {
        let Some((mut m, version)) = self.state.clone() else {
            return Ok(());
        };
        // A bucket an older version started moves on to this version's format.
        m.format = m.format.max(layout::FORMAT);
        // The restore points to upload, listed before the rotation: each was staged at the end
        // of its checkpoint, so the segment being written now is the one that checkpoint ended
        // in, or a later one; the rotation closes it, and this round uploads it before the
        // points (see `Point::last_segment`). Points staged meanwhile wait for the next round.
        let points = local::staged(&*self.fs, &self.dir);
        let written_at_listing = journal.wal().current_segment();
        // A segment that cannot be closed stays where writes go, and nothing of it leaves the
        // machine: what is closed is still uploaded, and the round then fails (so the backup
        // counts as falling behind) instead of passing for caught up.
        let mut unclosed = None;
        // Every write acknowledged before this moment is in a segment the rotation closes (or
        // an earlier one): it was appended before, to the segment being written now, which
        // holds entries then. What the manifest says is uploaded (see `Manifest::updated_ms`).
        let covered_ms = persist::now_ms();
        if journal.wal().segment_has_entries() {
            // Written out and fsynced outside the log's lock first, so the rotation itself
            // holds appends back only for the last few entries.
            let rotated = journal
                .wal()
                .sync_all()
                .and_then(|()| journal.wal().rotate());
            unclosed = rotated.err();
        }
        let before = m.clone();
        let current = journal.wal().current_segment();
        let segs =
            local::segments(&*self.fs, &self.dir).map_err(|e| local("listing", &self.dir, e))?;
        for (seq, path, _) in segs {
            if seq < m.next_segment || seq >= current {
                continue;
            }
            if seq > m.next_segment {
                log::error!(
                    "backup: segments {:016x} to {:016x} are missing from the data folder; restores from earlier points stop there",
                    m.next_segment,
                    seq - 1
                );
            }
            let body = self
                .fs
                .read(&path)
                .map_err(|e| local("reading", &path, e))?;
            let (mut first_ms, mut last_ms) = (0, 0);
            let end = persist::read_segment_bytes(&body, |e| {
                if let Some(t) = e.time_ms {
                    if first_ms == 0 {
                        first_ms = t;
                    }
                    last_ms = t;
                }
                Ok(())
            });
            // A closed segment was written whole and fsynced (recovery trims a torn tail):
            // one that does not read clean was damaged on this disk since, and uploaded, its
            // checksum would vouch for the damage.
            if let Some(why) = end.damage() {
                return Err(RoundError::Local(format!(
                    "{}: {why}; not uploaded",
                    path.display()
                )));
            }
            let key = SegmentKey {
                seq,
                generation: m.generation,
                first_ms,
                last_ms,
                size: body.len() as u64,
                crc: crc32fast::hash(&body),
            }
            .key();
            let stored = packing::pack(&body);
            self.objects.put(&key, &stored, &Condition::Always)?;
            crate::metrics::backup::backup_uploaded(stored.len());
            m.next_segment = seq + 1;
            // Progress is kept even if a later upload of this round fails.
            self.state = Some((m.clone(), version));
        }
        let points = points.map_err(|e| local("listing", &self.dir, e))?;
        // Not rotated because nothing was written to it since the listing: the points' writes
        // are all in the segments before it, which are uploaded now.
        let last_segment = if unclosed.is_some() {
            written_at_listing
        } else {
            written_at_listing.min(current.saturating_sub(1))
        };
        self.upload_points(&m, points, last_segment)?;
        self.upload_keys(&mut m)?;
        // Every round writes the manifest's next version, conditionally: it is this primary's
        // heartbeat, and the write that finds out first when a promoted replica took the
        // bucket over.
        let progressed = m != before;
        if unclosed.is_none() {
            m.updated_ms = covered_ms;
        }
        let body = serde_json::to_vec_pretty(&m).map_err(|e| RoundError::Local(e.to_string()))?;
        let next = version + 1;
        match manifests::commit(&*self.objects, next, &body)? {
            Commit::Won => {}
            Commit::Taken => {
                log::warn!(
                    "backup: manifest version {next} at {} failed its precondition (another server wrote it first)",
                    self.location
                );
                return self.recheck(m);
            }
            Commit::Superseded(newer) => {
                log::warn!(
                    "backup: manifest version {next} at {} is behind version {newer}",
                    self.location
                );
                return self.recheck(m);
            }
        }
        if next % manifests::KEEP == 0 {
            if let Err(e) = manifests::prune(&*self.objects, next) {
                log::warn!("backup: pruning old manifest versions failed: {e}; retried later");
            }
        }
        self.prune_owed |= progressed;
        let pruning = self.prune_owed && self.last_prune.elapsed() >= Duration::from_secs(1);
        journal.keep_segments_from(m.next_segment);
        self.state = Some((m, next));
        if self.keep.is_some() && pruning {
            self.last_prune = Instant::now();
            self.prune_owed = false;
            if let Err(e) = self.prune() {
                log::warn!("backup: pruning old history failed: {e}; retried later");
            }
        }
        match unclosed {
            Some(e) => Err(RoundError::Local(format!(
                "closing the log segment failed: {e}"
            ))),
            None => Ok(()),
        }
    }

    /// The manifest moved on without this server: fenced if another generation (or owner)
    /// holds it now, otherwise (its own earlier write) adopted.
    fn recheck(&mut self, mine: Manifest) -> Result<(), RoundError> {
        match manifests::newest(&*self.objects)? {
            Some(found) => {
                let theirs: Manifest = serde_json::from_slice(&found.body)
                    .map_err(|e| RoundError::Local(format!("unreadable manifest: {e}")))?;
                if !theirs.same_primary(&mine) {
                    let ours = Some(mine.generation);
                    return Err(RoundError::Fenced(Fence::of(ours, &theirs)));
                }
                self.state = Some((theirs, found.version));
                Ok(())
            }
            None => Err(RoundError::Local(
                "the manifest disappeared from the bucket".into(),
            )),
        }
    }

    /// Uploads a data-folder file unless an object of the same content is known to be there;
    /// `pack`: compressed when that pays (every file but the key file, which replicas copy
    /// as it is).
    fn upload_file(&mut self, name: &str, body: &[u8], pack: bool) -> Result<FileRef, RoundError> {
        let (size, crc) = (body.len() as u64, crc32fast::hash(body));
        let key = layout::file_key(name, size, crc);
        if !self.known_files.contains(&key) {
            let stored = if pack {
                packing::pack(body)
            } else {
                Cow::Borrowed(body)
            };
            self.objects.put(&key, &stored, &Condition::Always)?;
            crate::metrics::backup::backup_uploaded(stored.len());
            self.known_files.insert(key.clone());
        }
        Ok(FileRef {
            name: name.to_owned(),
            key,
            size,
            crc,
        })
    }

    /// Uploads the staged points `listed`, each the last object of its own (so a point in the
    /// bucket has all its files), recording `last_segment` in each.
    fn upload_points(
        &mut self,
        m: &Manifest,
        listed: Vec<local::Staged>,
        last_segment: u64,
    ) -> Result<(), RoundError> {
        for staged in listed {
            // An entry that cannot be read fails the round: a point missing a file would
            // restore without that collection.
            let names = local::staged_files(&*self.fs, &staged)
                .map_err(|e| local("listing", &staged.dir, e))?;
            let mut files = Vec::new();
            for name in names {
                let path = staged.dir.join(&name);
                let body = self
                    .fs
                    .read(&path)
                    .map_err(|e| local("reading", &path, e))?;
                files.push(self.upload_file(&name, &body, true)?);
            }
            let point = Point {
                generation: m.generation,
                first_segment: staged.first_segment,
                time_ms: staged.time_ms,
                files,
                last_segment: Some(last_segment),
            };
            let key = layout::point_key(point.first_segment, point.generation, point.time_ms);
            let body =
                serde_json::to_vec_pretty(&point).map_err(|e| RoundError::Local(e.to_string()))?;
            self.objects.put(&key, &body, &Condition::Always)?;
            crate::metrics::backup::backup_uploaded(body.len());
            // A point lists every file; what the next ones may share with the bucket is what
            // this one holds. Remembering every key ever uploaded grew without bound when no
            // --backup-keep prunes the bucket (a file of an older point seen again is only
            // uploaded again).
            self.known_files = point.files.iter().map(|f| f.key.clone()).collect();
            local::remove_staged(&*self.fs, &staged)
                .map_err(|e| local("removing", &staged.dir, e))?;
        }
        Ok(())
    }

    fn upload_keys(&mut self, m: &mut Manifest) -> Result<(), RoundError> {
        let path = self.dir.join(persist::KEYS_FILE);
        let body = match self.fs.read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(local("reading", &path, e)),
        };
        let same = m
            .keys
            .as_ref()
            .is_some_and(|k| k.size == body.len() as u64 && k.crc == crc32fast::hash(&body));
        if !same {
            m.keys = Some(self.upload_file(persist::KEYS_FILE, &body, false)?);
        }
        Ok(())
    }

    /// Deletes restore points older than `--backup-keep` (keeping the newest of them, which
    /// the oldest moment in the window restores from), the segments before the oldest kept
    /// point, and the files no kept point uses.
    fn prune(&mut self) -> Result<(), RoundError> {
        let (Some(keep), Some((m, _))) = (self.keep, self.state.clone()) else {
            return Ok(());
        };
        let cutoff = persist::now_ms() - keep.as_millis() as i64;
        let mut points: Vec<(String, u64, i64)> = self
            .objects
            .list("points/")?
            .into_iter()
            .filter_map(|o| layout::parse_point_key(&o.key).map(|(seq, _, t)| (o.key, seq, t)))
            .collect();
        points.sort_by_key(|p| (p.2, p.1));
        // The newest point older than the window that a restore can use (see
        // `Point::whole_in`) is kept with everything after it: one that is not whole (a
        // deposed primary's last, uploaded without its manifest) cannot stand in for it.
        let mut first_kept = 0;
        for i in (0..points
            .iter()
            .rposition(|p| p.2 < cutoff)
            .map_or(0, |i| i + 1))
            .rev()
        {
            let key = &points[i].0;
            let Some(obj) = self.objects.get(key)? else {
                continue;
            };
            let point: Point = serde_json::from_slice(&obj.body)
                .map_err(|e| RoundError::Local(format!("{key}: {e}")))?;
            if point.whole_in(&m) {
                first_kept = i;
                break;
            }
        }
        if first_kept == 0 {
            return Ok(());
        }
        let (old, kept) = points.split_at(first_kept);
        let oldest_segment = kept.iter().map(|p| p.1).min().unwrap_or(0);
        let mut used: HashSet<String> = m.keys.iter().map(|k| k.key.clone()).collect();
        for (key, _, _) in kept {
            if let Some(obj) = self.objects.get(key)? {
                let point: Point = serde_json::from_slice(&obj.body)
                    .map_err(|e| RoundError::Local(format!("{key}: {e}")))?;
                used.extend(point.files.into_iter().map(|f| f.key));
            }
        }
        for (key, _, _) in old {
            self.objects.delete(key)?;
        }
        for obj in self.objects.list("wal/")? {
            if SegmentKey::parse(&obj.key).is_some_and(|s| s.seq < oldest_segment) {
                self.objects.delete(&obj.key)?;
            }
        }
        for obj in self.objects.list("files/")? {
            if !used.contains(&obj.key) {
                self.objects.delete(&obj.key)?;
                self.known_files.remove(&obj.key);
            }
        }
        log::info!(
            "backup: pruned {} restore points older than the --backup-keep window",
            old.len()
        );
        Ok(())
    }

    fn failed(&mut self, e: &RoundError) {
        if self.behind_since.is_none() {
            self.behind_since = Some(Instant::now());
            log::warn!(
                "backup: {} is falling behind: {e}; the backlog stays on local disk and is uploaded when the store answers again",
                self.location
            );
        } else {
            log::debug!("backup: still failing: {e}");
        }
        crate::metrics::backup::backup_failed();
    }

    fn caught_up(&mut self) {
        if let Some(since) = self.behind_since.take() {
            log::info!(
                "backup: {} caught up after {:.1} s behind",
                self.location,
                since.elapsed().as_secs_f64()
            );
        }
    }

    fn fence(&mut self, journal: &Journal, fence: &Fence) {
        journal.set_gate(Gate::Fenced);
        crate::metrics::backup::backup_fenced(matches!(fence, Fence::Behind(_)));
        log::error!("backup: {}", fence.describe(&self.location));
    }

    /// Updates the lag gauges from what waits on local disk.
    fn measure(&self, journal: &Journal) {
        let next = self.state.as_ref().map_or(0, |(m, _)| m.next_segment);
        let current = journal.wal().current_segment();
        let mut pending = 0;
        let mut oldest: Option<SystemTime> = None;
        for (seq, path, size) in local::segments(&*self.fs, &self.dir).unwrap_or_default() {
            if seq >= next && seq < current {
                pending += size;
                if oldest.is_none() {
                    oldest = self.fs.metadata(&path).ok().and_then(|m| m.modified);
                }
            }
        }
        for staged in local::staged(&*self.fs, &self.dir).unwrap_or_default() {
            pending += local::folder_size(&*self.fs, &staged.dir);
        }
        let lag = oldest
            .and_then(|t| t.elapsed().ok())
            .map_or(0, |d| d.as_millis() as u64);
        crate::metrics::backup::backup_lag(lag, pending);
    }
}
