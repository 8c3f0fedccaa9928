//! Record data for inserts. Realistic by default: a fixed-size JSON form `{"seq":N,"pad":"…"}`
//! (for size sweeps) or telemetry from a fixed, seeded generator (issue 13); both are JSON text
//! full of quotes, which the server must escape again in every answer. The constant string of
//! `x` stays available as the **best case** (nothing to escape, everything compresses) and is
//! labelled so wherever it is printed. The telemetry records look like
//!
//! `{"lat":52.389837,"lon":4.884869,"alt":107.9,"spd":9.87,"hdg":101,"bat":43,"state":"flying"}`
//!
//! latitude/longitude (6 decimals) a random walk with steps of σ = 2·10⁻⁵°, altitude (1 decimal)
//! σ 0.3 m, speed (2 decimals, ≥ 0) σ 0.2, heading ±3° per record, battery −1 with p = 0.01
//! (back to 100 below 5), the state word changing with p = 0.005.

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PayloadKind {
    /// The best case: `--data-size` bytes of `x`, nothing to escape (not what clients send).
    #[value(alias = "best-case")]
    Fixed,
    /// `{"seq":N,"pad":"xx…"}` padded to `--data-size` bytes (N the record's number).
    Seq,
    /// The seeded telemetry walk (~92 bytes; `--data-size` is ignored).
    Telemetry,
}

impl PayloadKind {
    /// How the payload is named in rows and tables; the constant one says it is the best case.
    pub fn label(self, size: usize) -> String {
        match self {
            PayloadKind::Fixed => format!("x{size} (best case)"),
            PayloadKind::Seq => format!("seq{size} JSON"),
            PayloadKind::Telemetry => "telemetry JSON".into(),
        }
    }
}

/// Records in the telemetry table a load cycles through: document `d`'s `k`-th record is entry
/// `(k + d * PHASE) % TABLE`, so every document walks the same track from its own point.
pub const TABLE: usize = 10_000;
const PHASE: u64 = 7_919;
pub const SEED: u64 = 13;

/// Data for record number `g` (document `doc`, position `k` in it).
pub enum Payload {
    Fixed(String),
    Seq(usize),
    Telemetry(Vec<String>),
}

impl Payload {
    pub fn new(kind: PayloadKind, size: usize) -> Payload {
        match kind {
            PayloadKind::Fixed => Payload::Fixed("x".repeat(size)),
            PayloadKind::Seq => Payload::Seq(size),
            PayloadKind::Telemetry => Payload::Telemetry(telemetry(SEED, TABLE)),
        }
    }

    /// Appends the data of record `g` (the `k`-th of document `doc`), unescaped.
    pub fn write(&self, g: u64, doc: u64, k: u64, out: &mut String) {
        match self {
            Payload::Fixed(s) => out.push_str(s),
            Payload::Seq(size) => seq(g, *size, out),
            Payload::Telemetry(table) => {
                out.push_str(&table[((k + doc * PHASE) % table.len() as u64) as usize])
            }
        }
    }

    /// Average data bytes per record.
    pub fn mean_len(&self) -> f64 {
        match self {
            Payload::Fixed(s) => s.len() as f64,
            Payload::Seq(size) => (*size).max(20) as f64,
            Payload::Telemetry(t) => {
                t.iter().map(String::len).sum::<usize>() as f64 / t.len() as f64
            }
        }
    }

    /// Whether the data is the same for every record (the request template can hold it).
    pub fn constant(&self) -> Option<&str> {
        match self {
            Payload::Fixed(s) => Some(s),
            _ => None,
        }
    }
}

/// `{"seq":N,"pad":"x…"}` of `size` bytes (longer if N alone does not fit).
pub fn seq(n: u64, size: usize, out: &mut String) {
    use std::fmt::Write;
    let start = out.len();
    let _ = write!(out, "{{\"seq\":{n},\"pad\":\"");
    let used = out.len() - start + 2;
    out.extend(std::iter::repeat_n('x', size.saturating_sub(used)));
    out.push_str("\"}");
}

/// SplitMix64: small, fast and fixed forever (the fixture depends on it).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const STATES: [&str; 5] = ["flying", "hovering", "landing", "landed", "takeoff"];

/// `n` telemetry records of one seeded walk.
pub fn telemetry(seed: u64, n: usize) -> Vec<String> {
    let mut rng = Rng(seed);
    let (mut lat, mut lon, mut alt, mut spd) = (52.389837f64, 4.884869f64, 107.9f64, 9.87f64);
    let (mut hdg, mut bat, mut state) = (101i64, 43i64, 0usize);
    (0..n)
        .map(|_| {
            let rec = format!(
                "{{\"lat\":{lat:.6},\"lon\":{lon:.6},\"alt\":{alt:.1},\"spd\":{spd:.2},\"hdg\":{hdg},\"bat\":{bat},\"state\":\"{}\"}}",
                STATES[state]
            );
            lat += 2e-5 * rng.normal();
            lon += 2e-5 * rng.normal();
            alt += 0.3 * rng.normal();
            spd = (spd + 0.2 * rng.normal()).max(0.0);
            hdg = (hdg + rng.below(7) as i64 - 3).rem_euclid(360);
            if rng.unit() < 0.01 {
                bat -= 1;
                if bat < 5 {
                    bat = 100;
                }
            }
            if rng.unit() < 0.005 {
                state = (state + 1 + rng.below(STATES.len() as u64 - 1) as usize) % STATES.len();
            }
            rec
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_has_the_size() {
        let mut s = String::new();
        seq(1234567, 32, &mut s);
        assert_eq!(s.len(), 32);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&s).unwrap()["seq"],
            1234567
        );
    }

    /// The realistic payloads are JSON objects whose text holds quotes (so an answer must
    /// escape them), record after record; the best case holds none.
    #[test]
    fn realistic_payloads_are_json_with_quotes() {
        for (kind, size) in [
            (PayloadKind::Seq, 32),
            (PayloadKind::Seq, 200),
            (PayloadKind::Telemetry, 0),
        ] {
            let p = Payload::new(kind, size);
            for g in [0u64, 1, 99, 12_345_678] {
                let mut s = String::new();
                p.write(g, g % 100, g / 100, &mut s);
                assert!(s.contains('"'), "{kind:?}: {s}");
                let v: serde_json::Value = serde_json::from_str(&s).unwrap();
                assert!(v.is_object(), "{kind:?}: {s}");
                if kind == PayloadKind::Seq {
                    assert_eq!(s.len(), size);
                    assert_eq!(v["seq"], g);
                }
            }
        }
        let mut s = String::new();
        Payload::new(PayloadKind::Fixed, 32).write(5, 5, 0, &mut s);
        assert_eq!(s, "x".repeat(32));
        assert!(PayloadKind::Fixed.label(32).contains("best case"));
        assert!(!PayloadKind::Seq.label(32).contains("best case"));
    }

    /// The committed fixture is this generator's output: a change to it shows here.
    #[test]
    fn telemetry_matches_the_fixture() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/telemetry-10k.jsonl"
        );
        let fixture = std::fs::read_to_string(path).unwrap();
        let lines: Vec<&str> = fixture.lines().collect();
        let made = telemetry(SEED, TABLE);
        assert_eq!(lines.len(), made.len());
        assert!(lines.iter().zip(&made).all(|(a, b)| a == b));
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["state"], "flying");
    }
}
