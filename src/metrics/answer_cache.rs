//! The answer cache's counters (`fluxiondb_answer_cache_*`): hits and misses, counted by the
//! request path in per-thread shards (the same shards as the request counters), and the bytes
//! the cache holds, which the scrape asks the cache for.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[repr(align(128))]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
}

static COUNTS: [Counts; super::SHARDS] = [const {
    Counts {
        hits: AtomicU64::new(0),
        misses: AtomicU64::new(0),
    }
}; super::SHARDS];

/// A read was answered from the cache.
#[inline]
pub fn hit() {
    COUNTS[super::my_shard_index()].hits.fetch_add(1, Relaxed);
}

/// A read the cache could serve was computed instead (nothing remembered, or no longer valid).
#[inline]
pub fn miss() {
    COUNTS[super::my_shard_index()].misses.fetch_add(1, Relaxed);
}

pub(super) fn render(out: &mut String, bytes: usize) {
    let (hits, misses) = COUNTS.iter().fold((0, 0), |(h, m), c| {
        (h + c.hits.load(Relaxed), m + c.misses.load(Relaxed))
    });
    let mut one = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    };
    one(
        "fluxiondb_answer_cache_hits_total",
        "counter",
        "Reads (qry, qdoc) answered from the answer cache.",
        hits,
    );
    one(
        "fluxiondb_answer_cache_misses_total",
        "counter",
        "Reads (qry, qdoc) the answer cache could not answer, so computed.",
        misses,
    );
    one(
        "fluxiondb_answer_cache_bytes",
        "gauge",
        "Bytes the answer cache holds (answers, their requests and bookkeeping).",
        bytes as u64,
    );
}
