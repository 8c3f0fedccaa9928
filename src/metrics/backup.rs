//! The backup's and the replica's gauges and counters (`fluxiondb_backup_*`,
//! `fluxiondb_replica_*`), written by their threads.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static LAG_MS: AtomicU64 = AtomicU64::new(0);
static PENDING_BYTES: AtomicU64 = AtomicU64::new(0);
static UPLOADS: AtomicU64 = AtomicU64::new(0);
static UPLOADED_BYTES: AtomicU64 = AtomicU64::new(0);
static FAILURES: AtomicU64 = AtomicU64::new(0);
static FENCED: AtomicU64 = AtomicU64::new(0);
static ENABLED: AtomicU64 = AtomicU64::new(0);
static REPLICA_LAG_MS: AtomicU64 = AtomicU64::new(0);
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

/// Another primary holds the backup location (see `backup::fence::Fence`).
pub fn backup_fenced() {
    FENCED.store(1, Relaxed);
}

/// The replica's follower: segments applied, and how old the newest applied write is when
/// more wait in the bucket (0 when caught up).
pub fn replica_progress(segments: u64, lag_ms: u64) {
    REPLICA.store(1, Relaxed);
    REPLICA_SEGMENTS.store(segments, Relaxed);
    REPLICA_LAG_MS.store(lag_ms, Relaxed);
}

/// The replica's follower cannot follow (the store fails, or an object is missing or
/// damaged): the lag is the time since it last applied everything in the bucket.
pub fn replica_stalled(lag_ms: u64) {
    REPLICA.store(1, Relaxed);
    REPLICA_LAG_MS.store(lag_ms, Relaxed);
}

/// The replica reloaded from a restore point because the segment it needed was pruned.
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
        line(
            out,
            "fluxiondb_replica_lag_seconds",
            "gauge",
            "Age of the newest applied write while more wait in the bucket; while following fails, the time since the replica last applied everything (0: caught up).",
            REPLICA_LAG_MS.load(Relaxed) as f64 / 1000.0,
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
            "Reloads from the newest restore point because the next segment was pruned from the bucket.",
            REPLICA_RELOADS.load(Relaxed),
        );
    }
}
