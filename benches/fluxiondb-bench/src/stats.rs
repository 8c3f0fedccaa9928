//! Latency histogram (log-linear, under 1% error, constant memory) and per-connection counters.

use std::time::{Duration, Instant};

/// Sub-buckets per power of two: values are kept with 7 significant bits.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this are counted exactly.
const EXACT: u64 = 2 * SUB;
const BUCKETS: usize = (EXACT + (64 - SUB_BITS as u64 - 1) * SUB) as usize;

/// Latencies in nanoseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    n: u64,
    sum: u128,
    max: u64,
}

fn index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let mantissa = v >> shift; // in [SUB, 2 * SUB)
    (EXACT + (shift as u64 - 1) * SUB + (mantissa - SUB)) as usize
}

/// The highest value that falls in bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let shift = (i - EXACT) / SUB + 1;
    let mantissa = (i - EXACT) % SUB + SUB;
    ((((mantissa + 1) as u128) << shift) - 1).min(u64::MAX as u128) as u64
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            n: 0,
            sum: 0,
            max: 0,
        }
    }

    #[inline]
    pub fn record(&mut self, d: Duration) {
        let v = d.as_nanos().min(u64::MAX as u128) as u64;
        self.counts[index(v)] += 1;
        self.n += 1;
        self.sum += v as u128;
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.n += o.n;
        self.sum += o.sum;
        self.max = self.max.max(o.max);
    }

    /// The value at quantile `q` (0..=1), in nanoseconds (bucket upper bound, capped at max).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum as f64 / self.n as f64
        }
    }
}

/// What one connection (or, merged, one role) measured.
#[derive(Clone)]
pub struct Counters {
    /// Responses received inside the measured window.
    pub responses: u64,
    /// Records those requests inserted (`ins`) or that the responses held (queries).
    pub records: u64,
    /// Error responses (anywhere in the run, warm-up included).
    pub errors: u64,
    pub first_error: Option<String>,
    /// Records in the first query response (a check that the shape is the intended one).
    pub sample_records: Option<u64>,
    pub latency: Histogram,
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// When the last measured response arrived.
    pub last_response: Option<Instant>,
}

impl Counters {
    pub fn new() -> Self {
        Counters {
            responses: 0,
            records: 0,
            errors: 0,
            first_error: None,
            sample_records: None,
            latency: Histogram::new(),
            bytes_out: 0,
            bytes_in: 0,
            last_response: None,
        }
    }

    pub fn merge(&mut self, o: &Counters) {
        self.responses += o.responses;
        self.records += o.records;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
        if self.sample_records.is_none() {
            self.sample_records = o.sample_records;
        }
        self.latency.merge(&o.latency);
        self.bytes_out += o.bytes_out;
        self.bytes_in += o.bytes_in;
        self.last_response = self.last_response.max(o.last_response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..2_000_000u64).step_by(7).chain([u64::MAX / 2, u64::MAX]) {
            let i = index(v);
            assert!(i < BUCKETS);
            assert!(i >= last);
            last = i;
            let u = upper(i);
            assert!(u >= v, "{v} -> bucket {i} upper {u}");
            assert!((u - v) as f64 <= v as f64 / SUB as f64 + 1.0);
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5) as f64 / 1000.0;
        let p99 = h.quantile(0.99) as f64 / 1000.0;
        assert!((p50 - 500.0).abs() < 5.0, "{p50}");
        assert!((p99 - 990.0).abs() < 10.0, "{p99}");
        assert_eq!(h.max(), 1_000_000);
    }
}
