//! The backup's and the replica's gauges and counters (`fluxiondb_backup_*`,
//! `fluxiondb_replica_*`), written by their threads.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

static LAG_MS: AtomicU64 = AtomicU64::new(0);
static PENDING_BYTES: AtomicU64 = AtomicU64::new(0);
static UPLOADS: AtomicU64 = AtomicU64::new(0);
static UPLOADED_BYTES: AtomicU64 = AtomicU64::new(0);
static FAILURES: AtomicU64 = AtomicU64::new(0);
static FENCED: AtomicU64 = AtomicU64::new(0);
static ENABLED: AtomicU64 = AtomicU64::new(0);
static REPLICA_AS_OF_MS: AtomicI64 = AtomicI64::new(0);
static FENCED_BEHIND: AtomicBool = AtomicBool::new(false);
static REPLICA_DIVERGED: AtomicU64 = AtomicU64::new(0);
static REPLICA_SEGMENTS: AtomicU64 = AtomicU64::new(0);
static REPLICA: AtomicU64 = AtomicU64::new(0);
static REPLICA_RELOADS: AtomicU64 = AtomicU64::new(0);

/// The backup runs (its metrics are shown).
pub fn backup_enabled() {
    ENABLED.store(1, Relaxed);
}

/// How far the backup is behind: the age of the oldest write not in the bucket, and the bytes
/// waiting on local disk.
pub fn backup_lag(lag_ms: u64, pending_bytes: u64) {
    LAG_MS.store(lag_ms, Relaxed);
    PENDING_BYTES.store(pending_bytes, Relaxed);
}

pub fn backup_uploaded(bytes: usize) {
    UPLOADS.fetch_add(1, Relaxed);
    UPLOADED_BYTES.fetch_add(bytes as u64, Relaxed);
}

pub fn backup_failed() {
    FAILURES.fetch_add(1, Relaxed);
}

/// Another primary holds the backup location, or (`behind`) a longer history than this data
/// folder (see `backup::fence::Fence`).
pub fn backup_fenced(behind: bool) {
    FENCED_BEHIND.store(behind, Relaxed);
    FENCED.store(1, Relaxed);
}

/// Whether the fence is because the location holds a longer history than this data folder.
pub fn fenced_behind() -> bool {
    FENCED_BEHIND.load(Relaxed)
}

/// The replica's follower: segments applied so far.
pub fn replica_applied(segments: u64) {
    REPLICA.store(1, Relaxed);
    REPLICA_SEGMENTS.store(segments, Relaxed);
}

/// The replica's follower: every write the primary acknowledged up to `as_of_ms` (the
/// primary's clock) is applied here. The lag gauge is the time since, read at each scrape, so
/// it grows while the replica cannot follow and while the primary does not upload.
pub fn replica_as_of(as_of_ms: i64) {
    REPLICA.store(1, Relaxed);
    REPLICA_AS_OF_MS.store(as_of_ms, Relaxed);
}

/// The bucket's history does not continue the one the replica copied (`true`), until the
/// replica has reloaded from it (`false`); `/readyz` answers 503 meanwhile.
pub fn replica_diverged(diverged: bool) {
    REPLICA.store(1, Relaxed);
    REPLICA_DIVERGED.store(u64::from(diverged), Relaxed);
}

/// Whether the replica serves a history the bucket no longer holds (see [`replica_diverged`]).
pub fn replica_is_diverged() -> bool {
    REPLICA_DIVERGED.load(Relaxed) == 1
}

/// The replica was promoted: its metrics are no longer shown (the backup's are).
pub fn replica_promoted() {
    REPLICA.store(0, Relaxed);
    REPLICA_DIVERGED.store(0, Relaxed);
}

/// The replica reloaded from a restore point: the segment it needed was pruned, or the
/// location was started over.
pub fn replica_reloaded() {
    REPLICA.store(1, Relaxed);
    REPLICA_RELOADS.fetch_add(1, Relaxed);
}

fn line(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

pub(super) fn render(out: &mut String) {
    if ENABLED.load(Relaxed) == 1 {
        let secs = |ms: &AtomicU64| ms.load(Relaxed) as f64 / 1000.0;
        line(
            out,
            "fluxiondb_backup_lag_seconds",
            "gauge",
            "Time since the last write to the oldest log segment not yet in the object store (0: caught up); its oldest write is older by up to one backup interval.",
            secs(&LAG_MS),
        );
        line(
            out,
            "fluxiondb_backup_pending_bytes",
            "gauge",
            "Bytes of log segments and snapshots kept on local disk until they are uploaded.",
            PENDING_BYTES.load(Relaxed),
        );
        line(
            out,
            "fluxiondb_backup_uploads_total",
            "counter",
            "Objects uploaded to the object store.",
            UPLOADS.load(Relaxed),
        );
        line(
            out,
            "fluxiondb_backup_uploaded_bytes_total",
            "counter",
            "Bytes uploaded to the object store.",
            UPLOADED_BYTES.load(Relaxed),
        );
        line(
            out,
            "fluxiondb_backup_failures_total",
            "counter",
            "Object store requests of the backup that failed (retried at the next round).",
            FAILURES.load(Relaxed),
        );
        line(
            out,
            "fluxiondb_backup_fenced",
            "gauge",
            "1 when another primary holds the backup location (a promoted replica, or a server that started it from another data folder): this server uploads and accepts no more writes, and /readyz answers 503.",
            FENCED.load(Relaxed),
        );
    }
    if REPLICA.load(Relaxed) == 1 {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64);
        let lag_ms = now_ms.saturating_sub(REPLICA_AS_OF_MS.load(Relaxed)).max(0);
        line(
            out,
            "fluxiondb_replica_lag_seconds",
            "gauge",
            "Time since the newest moment up to which the replica holds every write the primary acknowledged: the moment the primary's last round closed its log (in the manifest, rewritten every backup interval) when all its segments are applied, or the newest applied write while more segments wait. Healthy: up to about one backup interval plus one poll interval; it grows while the replica cannot follow and while the primary does not upload (or is down). Compares the primary's clock with the replica's.",
            lag_ms as f64 / 1000.0,
        );
        line(
            out,
            "fluxiondb_replica_diverged",
            "gauge",
            "1 while the backup location holds another history than the one this replica copied (it was started over) and the replica has not reloaded from it yet: it serves the old history's data, and /readyz answers 503.",
            REPLICA_DIVERGED.load(Relaxed),
        );
        line(
            out,
            "fluxiondb_replica_segments_applied_total",
            "counter",
            "Log segments copied from the bucket and applied.",
            REPLICA_SEGMENTS.load(Relaxed),
        );
        line(
            out,
            "fluxiondb_replica_reloads_total",
            "counter",
            "Reloads from the newest restore point: the next segment was pruned from the bucket, or the location was started over with another history.",
            REPLICA_RELOADS.load(Relaxed),
        );
    }
}
