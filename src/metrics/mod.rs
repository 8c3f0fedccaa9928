//! Counters for `GET /metrics` and the slow-request log. Everything here is a process-wide
//! static written with relaxed atomics, so any layer records with one call and no lock:
//! the request path calls [`observe`] once per request; `persist` calls the one-line hooks
//! ([`wal_written`], [`fsync`], [`checkpoint`], [`snapshot_written`], [`storage_failed`]).
//!
//! Request counters are split into shards, one per group of connection threads, each on its
//! own cache lines: a thread only ever adds to its shard, so busy connections do not fight
//! over the same lines. A scrape adds the shards up.

pub mod answer_cache;
pub mod backup;
mod clock;
mod process;
mod render;
mod slow_log;

pub use clock::now;

pub use render::{render, Gauges};

use crate::ops::MsgType;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Request slots: one per message type plus one for requests whose type is unknown.
const TYPES: usize = MsgType::ALL.len() + 1;
const UNKNOWN: usize = TYPES - 1;
/// Shards of the request counters (threads are spread over them round-robin).
const SHARDS: usize = 32;

/// Upper bounds (seconds) of the request-duration buckets; `+Inf` is implied.
const REQUEST_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];
/// Upper bounds (seconds) of the fsync-duration buckets.
const FSYNC_BUCKETS: [f64; 12] = [
    0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// The same bounds in nanoseconds, for the request path (no float work there).
const fn nanos<const N: usize>(secs: [f64; N]) -> [u64; N] {
    let mut out = [0u64; N];
    let mut i = 0;
    while i < N {
        out[i] = (secs[i] * 1e9) as u64;
        i += 1;
    }
    out
}
const REQUEST_BOUNDS: [u64; 16] = nanos(REQUEST_BUCKETS);
const FSYNC_BOUNDS: [u64; 12] = nanos(FSYNC_BUCKETS);

/// Counters of one message type in one shard.
struct TypeStats {
    count: AtomicU64,
    errors: AtomicU64,
    nanos: AtomicU64,
    req_bytes: AtomicU64,
    resp_bytes: AtomicU64,
    /// Per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; REQUEST_BUCKETS.len() + 1],
}

impl TypeStats {
    const fn new() -> Self {
        TypeStats {
            count: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            req_bytes: AtomicU64::new(0),
            resp_bytes: AtomicU64::new(0),
            buckets: [const { AtomicU64::new(0) }; REQUEST_BUCKETS.len() + 1],
        }
    }
}

#[repr(align(128))]
struct Shard {
    types: [TypeStats; TYPES],
}

static SHARD_TABLE: [Shard; SHARDS] = [const {
    Shard {
        types: [const { TypeStats::new() }; TYPES],
    }
}; SHARDS];
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The calling thread's shard of the counters.
fn my_shard_index() -> usize {
    MY_SHARD.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS;
            s.set(i);
        }
        i
    })
}

fn my_shard() -> &'static Shard {
    &SHARD_TABLE[my_shard_index()]
}

fn bucket(bounds: &[u64], v: u64) -> usize {
    bounds.iter().position(|&b| v <= b).unwrap_or(bounds.len())
}

/// Slow-request log thresholds (set once at start-up).
static SLOW_NANOS: AtomicU64 = AtomicU64::new(250_000_000);
static LARGE_BYTES: AtomicU64 = AtomicU64::new(1 << 20);

/// Sets the slow-request log thresholds: a request taking at least `slow` or answered with at
/// least `large` bytes is logged.
pub fn configure(slow: Duration, large: u64) {
    clock::calibrate();
    SLOW_NANOS.store(slow.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
    LARGE_BYTES.store(large, Relaxed);
}

/// One served request, as the session saw it.
pub struct Request<'a> {
    /// `None` when the request was not understood far enough to know its type.
    pub kind: Option<MsgType>,
    pub ok: bool,
    pub elapsed: Duration,
    /// The request's id (empty when it has none).
    pub id: &'a str,
    pub req_bytes: usize,
    pub resp_bytes: usize,
    pub conn: u64,
    pub ip: &'a str,
    pub name: Option<&'a str>,
}

/// Counts one request, and logs it when it is slow or its answer large.
#[inline]
pub fn observe(r: &Request<'_>) {
    let slot = r.kind.map_or(UNKNOWN, |k| (k as usize).min(UNKNOWN));
    let t = &my_shard().types[slot];
    let ns = r.elapsed.as_nanos().min(u64::MAX as u128) as u64;
    t.count.fetch_add(1, Relaxed);
    if !r.ok {
        t.errors.fetch_add(1, Relaxed);
    }
    t.nanos.fetch_add(ns, Relaxed);
    t.req_bytes.fetch_add(r.req_bytes as u64, Relaxed);
    t.resp_bytes.fetch_add(r.resp_bytes as u64, Relaxed);
    t.buckets[bucket(&REQUEST_BOUNDS, ns)].fetch_add(1, Relaxed);
    if ns >= SLOW_NANOS.load(Relaxed) || r.resp_bytes as u64 >= LARGE_BYTES.load(Relaxed) {
        slow_log::slow(r, ns);
    }
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    ConnectionLimit,
    MissingKey,
    UnknownKey,
    ShuttingDown,
    Recovering,
    /// Too many refusals of unknown keys from the same address were being held back.
    GuessesWaiting,
}

impl Refusal {
    const ALL: [Refusal; 6] = [
        Refusal::ConnectionLimit,
        Refusal::MissingKey,
        Refusal::UnknownKey,
        Refusal::ShuttingDown,
        Refusal::Recovering,
        Refusal::GuessesWaiting,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::ConnectionLimit => "connection_limit",
            Refusal::MissingKey => "missing_key",
            Refusal::UnknownKey => "unknown_key",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::Recovering => "recovering",
            Refusal::GuessesWaiting => "guesses_waiting",
        }
    }
}

static ACCEPTED: AtomicU64 = AtomicU64::new(0);
static REFUSED: [AtomicU64; Refusal::ALL.len()] = [const { AtomicU64::new(0) }; Refusal::ALL.len()];
static HTTP_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// A TCP connection was accepted.
pub fn connection_accepted() {
    ACCEPTED.fetch_add(1, Relaxed);
}

/// A connection was refused (or dropped) for `why`.
pub fn connection_refused(why: Refusal) {
    REFUSED[why as usize].fetch_add(1, Relaxed);
}

/// A plain HTTP request was answered.
pub fn http_request() {
    HTTP_REQUESTS.fetch_add(1, Relaxed);
}

static WAL_BYTES: AtomicU64 = AtomicU64::new(0);
static FSYNC_COUNT: AtomicU64 = AtomicU64::new(0);
static FSYNC_NANOS: AtomicU64 = AtomicU64::new(0);
static FSYNC_HIST: [AtomicU64; FSYNC_BUCKETS.len() + 1] =
    [const { AtomicU64::new(0) }; FSYNC_BUCKETS.len() + 1];
static CHECKPOINTS: AtomicU64 = AtomicU64::new(0);
static CHECKPOINT_FAILURES: AtomicU64 = AtomicU64::new(0);
static CHECKPOINT_UNIX_MS: AtomicU64 = AtomicU64::new(0);
static CHECKPOINT_NANOS: AtomicU64 = AtomicU64::new(0);
static SNAPSHOT_BYTES: AtomicU64 = AtomicU64::new(0);
static RECOVERY_NANOS: AtomicU64 = AtomicU64::new(0);
static STORAGE_FAILED: AtomicBool = AtomicBool::new(false);

/// `n` bytes were written to the write-ahead log.
pub fn wal_written(n: usize) {
    WAL_BYTES.fetch_add(n as u64, Relaxed);
}

/// Runs one fsync (or fdatasync) and counts it with its duration.
pub fn fsync<T>(f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let ns = started.elapsed().as_nanos().min(u64::MAX as u128) as u64;
    FSYNC_COUNT.fetch_add(1, Relaxed);
    FSYNC_NANOS.fetch_add(ns, Relaxed);
    FSYNC_HIST[bucket(&FSYNC_BOUNDS, ns)].fetch_add(1, Relaxed);
    out
}

/// A checkpoint (snapshot round) finished after `took`.
pub fn checkpoint(took: Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    CHECKPOINTS.fetch_add(1, Relaxed);
    CHECKPOINT_UNIX_MS.store(now.as_millis() as u64, Relaxed);
    CHECKPOINT_NANOS.store(took.as_nanos() as u64, Relaxed);
}

/// A checkpoint did not save everything (a snapshot or the log's rotation failed, or it
/// panicked): the log keeps what it did not save, and the last-checkpoint gauges stay put.
pub fn checkpoint_failed() {
    CHECKPOINT_FAILURES.fetch_add(1, Relaxed);
}

/// A snapshot file of `n` bytes was written.
pub fn snapshot_written(n: u64) {
    SNAPSHOT_BYTES.fetch_add(n, Relaxed);
}

/// Start-up recovery took `took`.
pub fn recovered(took: Duration) {
    RECOVERY_NANOS.store(took.as_nanos() as u64, Relaxed);
}

/// The storage stopped taking writes (the log refuses every later write).
pub fn storage_failed() {
    STORAGE_FAILED.store(true, Relaxed);
}

/// Whether the storage stopped taking writes.
pub fn storage_is_failed() -> bool {
    STORAGE_FAILED.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        assert_eq!(bucket(&REQUEST_BOUNDS, 0), 0);
        assert_eq!(bucket(&REQUEST_BOUNDS, 50_000), 0);
        assert_eq!(bucket(&REQUEST_BOUNDS, 50_001), 1);
        assert_eq!(bucket(&REQUEST_BOUNDS, u64::MAX), REQUEST_BUCKETS.len());
        assert_eq!(REQUEST_BOUNDS[13], 1_000_000_000);
    }

    #[test]
    fn every_type_has_its_own_slot() {
        for (i, t) in MsgType::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i);
        }
    }
}
