//! The slow-request log line, at most [`LINES_PER_SECOND`] a second: a client that makes
//! every request slow or large (answers past `--large-response-kib` are easy to ask for)
//! would otherwise write a line per request. Lines left out are counted, and the next line
//! written says how many.

use super::Request;
use crate::clipped::Clipped;
use crate::ops::MsgType;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

/// Slow-request lines written per second at most.
pub const LINES_PER_SECOND: u32 = 20;

/// A per-second budget of lines, and the count of those left out.
pub struct Budget {
    second: AtomicU64,
    written: AtomicU32,
    left_out: AtomicU64,
}

impl Budget {
    pub const fn new() -> Self {
        Budget {
            second: AtomicU64::new(0),
            written: AtomicU32::new(0),
            left_out: AtomicU64::new(0),
        }
    }

    /// Whether a line may be written in second `now`: `Some(n)` with the lines left out since
    /// the last one written, or `None` (counted as left out). Races between threads at a
    /// second's turn can let a line or two more through, never fewer.
    pub fn take(&self, now: u64) -> Option<u64> {
        let second = self.second.load(Relaxed);
        if second != now
            && self
                .second
                .compare_exchange(second, now, Relaxed, Relaxed)
                .is_ok()
        {
            self.written.store(0, Relaxed);
        }
        if self.written.fetch_add(1, Relaxed) >= LINES_PER_SECOND {
            self.left_out.fetch_add(1, Relaxed);
            return None;
        }
        Some(self.left_out.swap(0, Relaxed))
    }
}

static BUDGET: Budget = Budget::new();

/// Logs one slow or large request, within the budget.
#[cold]
pub fn slow(r: &Request<'_>, ns: u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let Some(left_out) = BUDGET.take(now) else {
        return;
    };
    let note = if left_out > 0 {
        format!(" ({left_out} slow requests not logged before this one: over {LINES_PER_SECOND} a second)")
    } else {
        String::new()
    };
    log::warn!(
        "slow request: conn={} name={} ip={} id={} type={} request_bytes={} response_bytes={} elapsed_ms={:.3}{note}",
        r.conn,
        Clipped(r.name.unwrap_or("")),
        r.ip,
        Clipped(r.id),
        r.kind.map_or("unknown", MsgType::name),
        r.req_bytes,
        r.resp_bytes,
        ns as f64 / 1e6
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_budget_a_second_and_the_next_line_counts_those_left_out() {
        let b = Budget::new();
        for _ in 0..LINES_PER_SECOND {
            assert_eq!(b.take(7), Some(0));
        }
        assert_eq!(b.take(7), None);
        assert_eq!(b.take(7), None);
        assert_eq!(b.take(8), Some(2));
        assert_eq!(b.take(8), Some(0));
    }
}
