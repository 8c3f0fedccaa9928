//! `make bench`: the standard set against a server binary started afresh for every shape, and
//! its summary of ratios within the run.
//!
//! Every read shape and the single-record inserts are paired with their answer-size ceiling:
//! the server is started and filled, its answer to one request of the shape is captured, the
//! in-process echo server replays that answer under each request's id for the same client and
//! load, and then the server itself is measured. The mixed shape runs beside its readers alone
//! and its writers alone. The timed shapes run in `--rounds` rounds; the summary takes medians.

use crate::args::{MixedArgs, ReadKind, Shape, StandardArgs, Target};
use crate::echo::Reply;
use crate::payload::PayloadKind;
use crate::procfs::Machine;
use crate::report::{self, Row};
use crate::requests::Generator;
use crate::scenarios::{self, Live, Read, Sides};
use crate::subscribe;
use std::path::Path;
use std::time::{Duration, Instant};

const KEY: &str = "bench-secret";
/// The documents matching this among `doc0` … `doc999`: `doc0` … `doc99`.
const DOC_PATTERN: &str = "/^doc[0-9]{1,2}$/";
/// Push latency: subscribers, and the writer's rate (single-record `ins` per second).
const PUSH_SUBSCRIBERS: usize = 100;
const PUSH_RATE: u64 = 500;
/// Flags of a server whose reads are computed every time: the answer cache off. Every shape
/// runs so but the `…-cache-hits` ones, whose requests repeat on an unchanged collection (so,
/// with the cache on, each answer after the first is a hit); a read shape's ceiling serves both.
const UNCACHED: &[&str] = &["--answer-cache-mib", "0"];

type Measured = Result<Vec<Row>, String>;

/// Rows and failures collected over the run.
struct Collected<'a> {
    rows: Vec<Row>,
    failures: Vec<String>,
    only: &'a [String],
}

impl Collected<'_> {
    fn wanted(&self, label: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| label.contains(o.as_str()))
    }

    fn record(&mut self, label: &str, target: &str, round: u32, r: Measured) {
        match r {
            Ok(mut new) => {
                new.iter_mut().for_each(|row| row.round = round);
                report::print_json(&new);
                self.rows.extend(new);
            }
            Err(e) => {
                eprintln!("\n!!! {label} ({target}, round {round}) FAILED: {e}\n");
                self.failures
                    .push(format!("{label} ({target}, round {round}): {e}"));
            }
        }
    }
}

/// Starts a server, prepares it (`prepare` returns the request to capture), captures its
/// answer, measures the echo replaying it, then the server: (echo rows, server rows).
fn paired(
    server: &Path,
    prepare: &dyn Fn(&mut Live) -> Result<Generator, String>,
    measure: &dyn Fn(&mut Live) -> Measured,
) -> (Measured, Measured) {
    let mut ours = match Live::server_with(server, KEY, UNCACHED) {
        Ok(v) => v,
        Err(e) => return (Err(e.clone()), Err(e)),
    };
    let reply = match prepare(&mut ours).and_then(|g| ours.capture(g)) {
        Ok(r) => r,
        Err(e) => return (Err(e.clone()), Err(e)),
    };
    let echo = Live::echo(reply).and_then(|mut e| measure(&mut e));
    (echo, measure(&mut ours))
}

/// The read shapes paired with their ceilings: label, label of the same shape served from the
/// answer cache, shape, records per document, request.
fn read_shapes(base: &Shape) -> Vec<(&'static str, &'static str, Shape, u64, Read)> {
    let latest = Read {
        kind: ReadKind::Qry,
        doc: None,
        limit: 100,
    };
    let newest = Read {
        kind: ReadKind::QdocNewest,
        ..latest.clone()
    };
    let pattern = Read {
        doc: Some(DOC_PATTERN.into()),
        ..latest.clone()
    };
    let thousand = Shape {
        docs: 1000,
        doc_prefix: "doc".into(),
        ..base.clone()
    };
    vec![
        ("qry-100", "qry-100-cache-hits", base.clone(), 1000, latest),
        (
            "qdoc-100-newest",
            "qdoc-100-newest-cache-hits",
            base.clone(),
            1000,
            newest,
        ),
        (
            "qry-doc-pattern",
            "qry-doc-pattern-cache-hits",
            thousand,
            100,
            pattern,
        ),
    ]
}

/// Read shapes measured once (round 1), without a ceiling: the best case and issue 13's
/// telemetry shapes.
fn extra_reads(base: &Shape) -> Vec<(&'static str, Shape, Read)> {
    let with = |payload| Shape {
        payload,
        ..base.clone()
    };
    let read = |kind| Read {
        kind,
        doc: None,
        limit: 100,
    };
    vec![
        (
            "qry-100-best-case",
            with(PayloadKind::Fixed),
            read(ReadKind::Qry),
        ),
        (
            "qdoc-100-newest-best-case",
            with(PayloadKind::Fixed),
            read(ReadKind::QdocNewest),
        ),
        (
            "qdoc-100-newest-telemetry",
            with(PayloadKind::Telemetry),
            read(ReadKind::QdocNewest),
        ),
        (
            "qdoc-100-telemetry",
            with(PayloadKind::Telemetry),
            read(ReadKind::Qdoc),
        ),
    ]
}

pub fn run(a: &StandardArgs) -> Result<(), String> {
    if !a.server.is_file() {
        return Err(format!(
            "{}: no such server binary (build it with `cargo build --release`)",
            a.server.display()
        ));
    }
    let began = Instant::now();
    let (_, started) = report::now_utc();
    let machine = Machine::describe();
    let base = Shape {
        conns: 1,
        depth: 32,
        batch: 1,
        duration: a.duration,
        warmup: a.warmup,
        docs: 100,
        data_size: 32,
        payload: PayloadKind::Seq,
        col: "bench".into(),
        doc_prefix: "d".into(),
    };
    base.check()?;
    let shape = |c: u32, d: u32, b: u32| Shape {
        conns: c,
        depth: d,
        batch: b,
        ..base.clone()
    };
    let srv = || Live::server_with(&a.server, KEY, UNCACHED);
    let mut set = Collected {
        rows: Vec::new(),
        failures: Vec::new(),
        only: &a.only,
    };

    for round in 1..=a.rounds {
        // Single-record inserts beside the echo replaying our acknowledgement.
        for (c, d) in [(1, 32), (16, 4), (1, 1)] {
            let s = shape(c, d, 1);
            let l = format!("ins-{c}x{d}");
            if set.wanted(&l) {
                let (echo, ours) = paired(&a.server, &|_| Ok(scenarios::one_insert(&s)), &|live| {
                    scenarios::insert(live, &s, &l)
                });
                set.record(&l, "echo", round, echo);
                set.record(&l, "fluxiondb", round, ours);
            }
        }
        // Reads beside the echo replaying our answer to the same request: computed every time,
        // then (same request, same minute) answered from the answer cache.
        for (l, cached, s, per_doc, r) in read_shapes(&base) {
            if set.wanted(l) {
                let (echo, ours) = paired(
                    &a.server,
                    &|live| {
                        scenarios::prefill(live, &s, per_doc)?;
                        let mut role = scenarios::read_role(r.name(), 1, 1, &r, &s);
                        role.gens.pop().ok_or_else(|| "no generator".to_string())
                    },
                    &|live| scenarios::read(live, &s, &r, l),
                );
                set.record(l, "echo", round, echo);
                set.record(l, "fluxiondb", round, ours);
            }
            if set.wanted(cached) {
                let hits = Live::server(&a.server, KEY).and_then(|mut v| {
                    scenarios::prefill(&mut v, &s, per_doc)?;
                    scenarios::read(&mut v, &s, &r, cached)
                });
                set.record(cached, "fluxiondb", round, hits);
            }
        }
        // Readers and writers on one collection, beside each side alone.
        let m = MixedArgs {
            target: Target {
                url: None,
                server: None,
                key: KEY.into(),
                server_pid: None,
            },
            shape: shape(2, 8, 1),
            readers: 2,
            reader_depth: 8,
            read: ReadKind::Qry,
            prefill: 100,
            limit: 100,
        };
        for (l, sides) in [
            ("mixed-readers-alone", Sides::ReadersAlone),
            ("mixed-writers-alone", Sides::WritersAlone),
            ("mixed", Sides::Both),
        ] {
            if set.wanted(l) {
                let r = srv().and_then(|mut v| scenarios::mixed(&mut v, &m, sides, l));
                set.record(l, "fluxiondb", round, r);
            }
        }
        if round == 1 {
            for (l, s, r) in extra_reads(&base) {
                if set.wanted(l) {
                    let out = srv().and_then(|mut v| {
                        scenarios::prefill(&mut v, &s, 1000)?;
                        scenarios::read(&mut v, &s, &r, l)
                    });
                    set.record(l, "fluxiondb", round, out);
                }
            }
        }
    }
    // Bulk loads, 1000 records per ins, 2 connections × 4 in flight, 1000 documents, each
    // into a fresh server whose RSS growth gives the memory per record; the realistic one
    // beside the echo acknowledging the same frames.
    let bulk = |payload| Shape {
        docs: 1000,
        payload,
        ..shape(2, 4, 1000)
    };
    if set.wanted("bulk-2x4-b1000") {
        let s = bulk(PayloadKind::Seq);
        let l = "bulk-2x4-b1000";
        let echo = Live::echo(Reply::ack()).and_then(|mut e| scenarios::insert(&mut e, &s, l));
        set.record(l, "echo", 1, echo);
        let r = srv().and_then(|mut v| scenarios::fill(&mut v, &s, a.fill_records, l));
        set.record(l, "fluxiondb", 1, r);
    }
    for (l, payload, records) in [
        (
            "bulk-2x4-b1000-best-case",
            PayloadKind::Fixed,
            a.fill_records,
        ),
        ("bulk-telemetry", PayloadKind::Telemetry, a.fill_records),
        ("bulk-telemetry-1m", PayloadKind::Telemetry, 1_000_000),
        ("bulk-seq32-1m", PayloadKind::Seq, 1_000_000),
    ] {
        if set.wanted(l) {
            let s = bulk(payload);
            let r = srv().and_then(|mut v| scenarios::fill(&mut v, &s, records, l));
            set.record(l, "fluxiondb", 1, r);
        }
    }
    // Push latency of live subscriptions (the short form of `make bench-subscribe`).
    let mut pushes: Vec<(bool, Duration, Duration)> = Vec::new();
    for data in [false, true] {
        let l = if data { "push-data" } else { "push-memory" };
        if set.wanted(l) {
            let r = subscribe::push_latency(
                &a.server,
                KEY,
                data,
                PUSH_SUBSCRIBERS,
                PUSH_RATE,
                a.duration,
            );
            match r {
                Ok((ack, push)) => {
                    println!(
                        "{{\"label\":\"{l}\",\"subscribers\":{PUSH_SUBSCRIBERS},\"rate\":{PUSH_RATE},\"p99_ack_us\":{},\"p99_push_us\":{}}}",
                        ack.as_micros(),
                        push.as_micros()
                    );
                    pushes.push((data, ack, push));
                }
                Err(e) => set.record(l, "fluxiondb", 1, Err(e)),
            }
        }
    }
    let mut targets = targets(&set.rows);
    targets.extend(push_targets(&pushes));
    let wall = began.elapsed().as_secs_f64();
    let rows = set.rows;
    println!("\n{}", report::table(&rows));
    println!("{}", report::targets_table(&targets));
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    if a.only.is_empty() {
        let settings = serde_json::json!({
            "duration_s": a.duration,
            "warmup_s": a.warmup,
            "fill_records": a.fill_records,
            "rounds": a.rounds,
            "payload": "seq32 JSON unless the row says otherwise",
            "data_bytes": 32,
            "docs": {"inserts": 100, "queries": 100, "doc_pattern": 1000, "bulk": 1000},
            "doc_pattern": DOC_PATTERN,
            "push": {"subscribers": PUSH_SUBSCRIBERS, "rate": PUSH_RATE},
        });
        let res = report::Results {
            started,
            command: std::env::args().collect::<Vec<_>>().join(" "),
            wall_seconds: (wall * 10.0).round() / 10.0,
            loadavg_at_end: std::fs::read_to_string("/proc/loadavg")
                .map(|l| l.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            machine: &machine,
            server_binary: a.server.display().to_string(),
            settings,
            targets: &targets,
            rows: &rows,
            failures: &set.failures,
        };
        let (j, m) = report::write_results(&a.out, &res)?;
        println!("results: {} and {}", j.display(), m.display());
    }
    println!("standard set done in {wall:.0} s");
    if errors > 0 {
        return Err(format!(
            "{errors} requests failed: the figures are not valid"
        ));
    }
    Ok(())
}

/// The median of `xs` (the mean of the middle two for an even count).
fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    }
}

/// Rows of one label, target and role (all rounds).
#[derive(Clone, Copy)]
struct Pick<'a>(&'a str, &'a str, &'a str);

impl Pick<'_> {
    fn rows<'r>(&self, rows: &'r [Row]) -> Vec<&'r Row> {
        rows.iter()
            .filter(|r| r.label == self.0 && r.target == self.1 && r.role == self.2)
            .collect()
    }
}

/// (ours, reference, ratio): the medians over the rounds of each figure, and of the per-round
/// ratios ours / reference.
fn compare(
    rows: &[Row],
    ours: Pick<'_>,
    reference: Pick<'_>,
    figure: fn(&Row) -> f64,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let o = ours.rows(rows);
    let r = reference.rows(rows);
    let ratios = o
        .iter()
        .filter_map(|x| {
            let y = r.iter().find(|y| y.round == x.round)?;
            let y = figure(y);
            (y > 0.0).then(|| figure(x) / y)
        })
        .collect();
    (
        median(o.iter().map(|x| figure(x)).collect()),
        median(r.iter().map(|x| figure(x)).collect()),
        median(ratios).map(|x| (x * 1000.0).round() / 1000.0),
    )
}

fn req(r: &Row) -> f64 {
    r.req_per_s
}
fn rec(r: &Row) -> f64 {
    r.rec_per_s
}
fn p99(r: &Row) -> f64 {
    r.p99_us
}
/// Server CPU µs per answer (for one-role runs); 0 when unknown.
fn cpu_per_answer(r: &Row) -> f64 {
    match r.server_cpu_s {
        Some(cpu) if r.requests > 0 => cpu * 1e6 / r.requests as f64,
        _ => 0.0,
    }
}

/// One summary line; `qt`/`uws` 0 when upstream has no figure for it.
struct Line<'a> {
    name: &'a str,
    unit: &'a str,
    kind: &'a str,
    goal: Option<&'a str>,
    qt: f64,
    uws: f64,
}

impl Line<'_> {
    fn with(&self, figures: (Option<f64>, Option<f64>, Option<f64>)) -> report::Target {
        let (ours, reference, ratio) = figures;
        report::Target {
            name: self.name.into(),
            unit: self.unit.into(),
            ours,
            reference_kind: self.kind.into(),
            reference,
            ratio,
            goal: self.goal.map(Into::into),
            upstream_qt: (self.qt > 0.0).then_some(self.qt),
            upstream_uws: (self.uws > 0.0).then_some(self.uws),
        }
    }
}

/// The summary. Upstream figures: issue 17's run for the realistic shapes (newer upstream,
/// another machine and hour), the original seed and HEAD measurements for the best cases.
fn targets(rows: &[Row]) -> Vec<report::Target> {
    let line = |name, unit, kind, goal, qt, uws| Line {
        name,
        unit,
        kind,
        goal,
        qt,
        uws,
    };
    let ceiling = |label: &'static str, role: &'static str| {
        (Pick(label, "fluxiondb", role), Pick(label, "echo", role))
    };
    let mut out = Vec::new();
    let (o, e) = ceiling("qry-100", "qry");
    out.push(
        line(
            "`qry` → 100 records, 1 conn × 32",
            "req/s",
            "ceiling",
            Some("≥ 90 %"),
            0.0,
            37e3,
        )
        .with(compare(rows, o, e, req)),
    );
    let (o, e) = ceiling("qdoc-100-newest", "qdoc-newest");
    out.push(
        line(
            "`qdoc` → newest 100 records of a document, 1 conn × 32",
            "req/s",
            "ceiling",
            Some("≥ 90 %"),
            0.0,
            49e3,
        )
        .with(compare(rows, o, e, req)),
    );
    let (o, e) = ceiling("qry-doc-pattern", "qry-doc");
    out.push(
        line(
            "`qry` doc = `/^doc[0-9]{1,2}$/` over 1,000 docs (100 match), 1 conn × 32",
            "req/s",
            "ceiling",
            Some("≥ 80 %"),
            0.0,
            2.8e3,
        )
        .with(compare(rows, o, e, req)),
    );
    // The same reads answered from the answer cache, against the same ceilings.
    for (cached, label, role, name) in [
        (
            "qry-100-cache-hits",
            "qry-100",
            "qry",
            "`qry` → 100 records, answer cache hits",
        ),
        (
            "qdoc-100-newest-cache-hits",
            "qdoc-100-newest",
            "qdoc-newest",
            "`qdoc` → newest 100, answer cache hits",
        ),
        (
            "qry-doc-pattern-cache-hits",
            "qry-doc-pattern",
            "qry-doc",
            "`qry` doc pattern, answer cache hits",
        ),
    ] {
        let (o, e) = (Pick(cached, "fluxiondb", role), Pick(label, "echo", role));
        let goal = if label == "qry-doc-pattern" {
            "≥ 80 %"
        } else {
            "≥ 90 %"
        };
        out.push(
            line(name, "req/s", "ceiling", Some(goal), 0.0, 0.0).with(compare(rows, o, e, req)),
        );
        let cpu = format!("{name}: server CPU per answer");
        let per_answer = Line {
            name: &cpu,
            unit: "µs",
            kind: "ceiling",
            goal: None,
            qt: 0.0,
            uws: 0.0,
        };
        out.push(per_answer.with(compare(rows, o, e, cpu_per_answer)));
    }
    let (o, e) = ceiling("ins-16x4", "ins");
    out.push(
        line(
            "1-record `ins`, 16 conns × 4: throughput",
            "req/s",
            "ceiling",
            Some("≥ 90 %"),
            60e3,
            180e3,
        )
        .with(compare(rows, o, e, req)),
    );
    out.push(
        line(
            "1-record `ins`, 16 conns × 4: p99",
            "µs",
            "ceiling",
            Some("≤ 2×"),
            0.0,
            692.0,
        )
        .with(compare(rows, o, e, p99)),
    );
    // What each answer costs the server against the echo: steadier than rates when the
    // machine is shared, because a starved server loses rate but not CPU per answer.
    for (label, role, name) in [
        (
            "qry-100",
            "qry",
            "`qry` → 100 records: server CPU per answer",
        ),
        (
            "qdoc-100-newest",
            "qdoc-newest",
            "`qdoc` → newest 100: server CPU per answer",
        ),
        (
            "qry-doc-pattern",
            "qry-doc",
            "`qry` doc pattern: server CPU per answer",
        ),
        (
            "ins-16x4",
            "ins",
            "1-record `ins`, 16 × 4: server CPU per answer",
        ),
    ] {
        let (o, e) = ceiling(label, role);
        out.push(line(name, "µs", "ceiling", None, 0.0, 0.0).with(compare(
            rows,
            o,
            e,
            cpu_per_answer,
        )));
    }
    let mixed = |role| Pick("mixed", "fluxiondb", role);
    let alone_r = Pick("mixed-readers-alone", "fluxiondb", "read");
    let alone_w = Pick("mixed-writers-alone", "fluxiondb", "write");
    for (name, unit, ours, alone, figure, goal) in [
        (
            "mixed (2 writers × 8 `ins` + 2 readers × 8 `qry` → 100): readers' throughput",
            "req/s",
            mixed("read"),
            alone_r,
            req as fn(&Row) -> f64,
            Some("≥ 70 %"),
        ),
        (
            "mixed: readers' p99",
            "µs",
            mixed("read"),
            alone_r,
            p99,
            Some("≤ 2×"),
        ),
        (
            "mixed: writers' throughput",
            "req/s",
            mixed("write"),
            alone_w,
            req,
            Some("≥ 80 %"),
        ),
        (
            "mixed: writers' p99",
            "µs",
            mixed("write"),
            alone_w,
            p99,
            None,
        ),
    ] {
        out.push(
            line(name, unit, "alone", goal, 0.0, 0.0).with(compare(rows, ours, alone, figure)),
        );
    }
    let (o, e) = ceiling("ins-1x32", "ins");
    out.push(
        line(
            "1-record `ins`, 1 conn × 32",
            "req/s",
            "ceiling",
            None,
            51e3,
            91e3,
        )
        .with(compare(rows, o, e, req)),
    );
    let (o, e) = ceiling("ins-1x1", "ins");
    out.push(
        line(
            "p99 latency, 1-record `ins`, 1 conn × 1",
            "µs",
            "ceiling",
            None,
            0.0,
            0.0,
        )
        .with(compare(rows, o, e, p99)),
    );
    out.push(
        line(
            "bulk load, 1000 records per `ins`, 2 conns × 4",
            "rec/s",
            "ceiling",
            None,
            0.0,
            0.0,
        )
        .with(compare(
            rows,
            Pick("bulk-2x4-b1000", "fluxiondb", "fill"),
            Pick("bulk-2x4-b1000", "echo", "ins"),
            rec,
        )),
    );
    let alone = |label| {
        compare(
            rows,
            Pick(label, "fluxiondb", "fill"),
            Pick("", "", ""),
            rec,
        )
    };
    out.push(
        line(
            "bulk load, 1000 records per `ins`, 2 conns × 4 (best case)",
            "rec/s",
            "-",
            None,
            120e3,
            251e3,
        )
        .with(alone("bulk-2x4-b1000-best-case")),
    );
    for (label, name, qt, uws) in [
        (
            "bulk-2x4-b1000",
            "RSS per record, seq32 JSON, --fill-records (1000 docs)",
            0.0,
            0.0,
        ),
        (
            "bulk-2x4-b1000-best-case",
            "RSS per record, --fill-records (best case)",
            131.0,
            107.0,
        ),
        (
            "bulk-telemetry",
            "RSS per record, telemetry, --fill-records (target ≤ 32 B at 10 M)",
            0.0,
            170.0,
        ),
        (
            "bulk-telemetry-1m",
            "RSS per record, telemetry, first 1 M (target ≤ 40 B)",
            0.0,
            174.0,
        ),
        (
            "bulk-seq32-1m",
            "RSS per record, seq32 JSON, first 1 M (target ≤ 56 B)",
            131.0,
            107.0,
        ),
    ] {
        let m = Pick(label, "fluxiondb", "fill")
            .rows(rows)
            .first()
            .and_then(|r| r.memory.clone());
        let name = match &m {
            Some(m) => format!("{name}: {} records", m.records),
            None => name.to_string(),
        };
        out.push(
            Line {
                name: &name,
                unit: "B",
                kind: "-",
                goal: None,
                qt,
                uws,
            }
            .with((m.map(|m| m.bytes_per_record), None, None)),
        );
    }
    for (label, role, name, qt, uws) in [
        (
            "qry-100-best-case",
            "qry",
            "`qry` → 100 records, 1 conn × 32 (best case)",
            2.3e3,
            20e3,
        ),
        (
            "qdoc-100-newest-best-case",
            "qdoc-newest",
            "`qdoc` → newest 100 records, 1 conn × 32 (best case)",
            4.0e3,
            36e3,
        ),
        (
            "qdoc-100-newest-telemetry",
            "qdoc-newest",
            "`qdoc` → newest 100 telemetry records, 1 conn × 32",
            0.0,
            0.0,
        ),
        (
            "qdoc-100-telemetry",
            "qdoc",
            "`qdoc` → oldest 100 (sealed) telemetry records, 1 conn × 32",
            0.0,
            0.0,
        ),
    ] {
        out.push(line(name, "req/s", "-", None, qt, uws).with(compare(
            rows,
            Pick(label, "fluxiondb", role),
            Pick("", "", ""),
            req,
        )));
    }
    out
}

/// Push p99 against ack p99 of the same writes, in memory and with `--data`.
fn push_targets(pushes: &[(bool, Duration, Duration)]) -> Vec<report::Target> {
    pushes
        .iter()
        .map(|&(data, ack, push)| {
            let name = format!(
                "push p99 ({PUSH_SUBSCRIBERS} subscribers, 1 writer at {PUSH_RATE} `ins`/s), {}",
                if data { "--data" } else { "in memory" }
            );
            let us = |d: Duration| (d.as_nanos() as f64 / 100.0).round() / 10.0;
            let ratio = (ack > Duration::ZERO)
                .then(|| (push.as_secs_f64() / ack.as_secs_f64() * 1000.0).round() / 1000.0);
            Line {
                name: &name,
                unit: "µs",
                kind: "ack p99",
                goal: Some("≤ 1.5×"),
                qt: 0.0,
                uws: 0.0,
            }
            .with((Some(us(push)), Some(us(ack)), ratio))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
