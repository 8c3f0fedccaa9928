//! The Prometheus text exposition format, version 0.0.4.

use super::*;
use std::fmt::Write;

/// What the caller counts at scrape time (the store and the session list).
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    pub open_connections: usize,
    pub collections: usize,
    pub documents: usize,
    pub records: usize,
    pub store_bytes: usize,
    pub persistent: bool,
    /// Bytes the answer cache holds.
    pub answer_cache_bytes: usize,
    /// Bytes live subscriptions' filters may hold (`live::budget`).
    pub subscription_filter_bytes: usize,
}

/// Totals of one message type over every shard.
#[derive(Default)]
struct Totals {
    count: u64,
    errors: u64,
    nanos: u64,
    req_bytes: u64,
    resp_bytes: u64,
    buckets: [u64; REQUEST_BUCKETS.len() + 1],
}

fn totals(slot: usize) -> Totals {
    let mut t = Totals::default();
    for shard in &SHARD_TABLE {
        let s = &shard.types[slot];
        t.count += s.count.load(Relaxed);
        t.errors += s.errors.load(Relaxed);
        t.nanos += s.nanos.load(Relaxed);
        t.req_bytes += s.req_bytes.load(Relaxed);
        t.resp_bytes += s.resp_bytes.load(Relaxed);
        for (sum, b) in t.buckets.iter_mut().zip(&s.buckets) {
            *sum += b.load(Relaxed);
        }
    }
    t
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn one(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    head(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

fn secs(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// Writes one histogram series: cumulative buckets, sum and count. `labels` is empty or ends
/// with a comma.
fn histogram(out: &mut String, name: &str, labels: &str, bounds: &[f64], counts: &[u64], sum: f64) {
    let mut cumulative = 0;
    for (i, c) in counts.iter().enumerate() {
        cumulative += c;
        match bounds.get(i) {
            Some(b) => {
                let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{b}\"}} {cumulative}");
            }
            None => {
                let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {cumulative}");
            }
        }
    }
    let plain = labels.trim_end_matches(',');
    let braces = if plain.is_empty() {
        String::new()
    } else {
        format!("{{{plain}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {sum}");
    let _ = writeln!(out, "{name}_count{braces} {cumulative}");
}

fn type_label(slot: usize) -> &'static str {
    MsgType::ALL.get(slot).map_or("unknown", |t| t.name())
}

/// The whole exposition.
pub fn render(g: &Gauges) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let all: Vec<Totals> = (0..TYPES).map(totals).collect();
    let per_type = |out: &mut String, name: &str, help: &str, f: &dyn Fn(&Totals) -> u64| {
        head(out, name, "counter", help);
        for (slot, t) in all.iter().enumerate() {
            let _ = writeln!(out, "{name}{{type=\"{}\"}} {}", type_label(slot), f(t));
        }
    };
    per_type(
        &mut out,
        "fluxiondb_requests_total",
        "WebSocket requests served, by message type (unknown: not understood far enough to tell).",
        &|t| t.count,
    );
    per_type(
        &mut out,
        "fluxiondb_request_errors_total",
        "Requests answered with an error, by message type.",
        &|t| t.errors,
    );
    per_type(
        &mut out,
        "fluxiondb_request_bytes_total",
        "Bytes of request messages, by message type.",
        &|t| t.req_bytes,
    );
    per_type(
        &mut out,
        "fluxiondb_response_bytes_total",
        "Bytes of response messages, by message type.",
        &|t| t.resp_bytes,
    );
    head(
        &mut out,
        "fluxiondb_request_duration_seconds",
        "histogram",
        "Time to execute a request and encode its answer, by message type.",
    );
    for (slot, t) in all.iter().enumerate() {
        histogram(
            &mut out,
            "fluxiondb_request_duration_seconds",
            &format!("type=\"{}\",", type_label(slot)),
            &REQUEST_BUCKETS,
            &t.buckets,
            secs(t.nanos),
        );
    }

    one(
        &mut out,
        "fluxiondb_open_connections",
        "gauge",
        "Authenticated WebSocket connections open now.",
        g.open_connections,
    );
    one(
        &mut out,
        "fluxiondb_connections_accepted_total",
        "counter",
        "TCP connections accepted (WebSocket and plain HTTP).",
        ACCEPTED.load(Relaxed),
    );
    head(
        &mut out,
        "fluxiondb_connections_refused_total",
        "counter",
        "Connections refused, by reason.",
    );
    for r in Refusal::ALL {
        let _ = writeln!(
            out,
            "fluxiondb_connections_refused_total{{reason=\"{}\"}} {}",
            r.label(),
            REFUSED[r as usize].load(Relaxed)
        );
    }
    one(
        &mut out,
        "fluxiondb_http_requests_total",
        "counter",
        "Plain HTTP requests answered (health, readiness, metrics and errors).",
        HTTP_REQUESTS.load(Relaxed),
    );

    one(
        &mut out,
        "fluxiondb_collections",
        "gauge",
        "Collections in the store.",
        g.collections,
    );
    one(
        &mut out,
        "fluxiondb_documents",
        "gauge",
        "Documents in the store.",
        g.documents,
    );
    one(
        &mut out,
        "fluxiondb_records",
        "gauge",
        "Records in the store.",
        g.records,
    );
    one(
        &mut out,
        "fluxiondb_store_bytes",
        "gauge",
        "Bytes held by records and key/value entries (data, timestamps, names).",
        g.store_bytes,
    );
    one(
        &mut out,
        "fluxiondb_subscription_filter_bytes",
        "gauge",
        "Bytes live subscriptions' filters may hold (texts, patterns and their match caches).",
        g.subscription_filter_bytes,
    );

    one(
        &mut out,
        "fluxiondb_persistence_enabled",
        "gauge",
        "1 when the server runs with a data folder.",
        u8::from(g.persistent),
    );
    one(
        &mut out,
        "fluxiondb_storage_available",
        "gauge",
        "0 once the write-ahead log has failed and writes are refused.",
        u8::from(!storage_is_failed()),
    );
    one(
        &mut out,
        "fluxiondb_wal_bytes_written_total",
        "counter",
        "Bytes written to the write-ahead log.",
        WAL_BYTES.load(Relaxed),
    );
    one(
        &mut out,
        "fluxiondb_fsyncs_total",
        "counter",
        "fsync/fdatasync calls on the write-ahead log.",
        FSYNC_COUNT.load(Relaxed),
    );
    head(
        &mut out,
        "fluxiondb_fsync_duration_seconds",
        "histogram",
        "Duration of fsync/fdatasync calls on the write-ahead log.",
    );
    let fsync_counts: Vec<u64> = FSYNC_HIST.iter().map(|c| c.load(Relaxed)).collect();
    histogram(
        &mut out,
        "fluxiondb_fsync_duration_seconds",
        "",
        &FSYNC_BUCKETS,
        &fsync_counts,
        secs(FSYNC_NANOS.load(Relaxed)),
    );
    one(
        &mut out,
        "fluxiondb_checkpoints_total",
        "counter",
        "Checkpoints (snapshot rounds) completed.",
        CHECKPOINTS.load(Relaxed),
    );
    one(
        &mut out,
        "fluxiondb_checkpoint_failures_total",
        "counter",
        "Checkpoints that did not save everything (the log keeps what they did not).",
        CHECKPOINT_FAILURES.load(Relaxed),
    );
    one(
        &mut out,
        "fluxiondb_last_checkpoint_timestamp_seconds",
        "gauge",
        "Unix time the last checkpoint completed (0: none yet).",
        CHECKPOINT_UNIX_MS.load(Relaxed) as f64 / 1e3,
    );
    one(
        &mut out,
        "fluxiondb_last_checkpoint_duration_seconds",
        "gauge",
        "Duration of the last checkpoint.",
        secs(CHECKPOINT_NANOS.load(Relaxed)),
    );
    one(
        &mut out,
        "fluxiondb_snapshot_bytes_written_total",
        "counter",
        "Bytes of snapshot files written.",
        SNAPSHOT_BYTES.load(Relaxed),
    );
    one(
        &mut out,
        "fluxiondb_recovery_duration_seconds",
        "gauge",
        "Time start-up recovery of the data folder took.",
        secs(RECOVERY_NANOS.load(Relaxed)),
    );
    super::answer_cache::render(&mut out, g.answer_cache_bytes);
    process::render(&mut out);
    super::backup::render(&mut out);
    out
}
