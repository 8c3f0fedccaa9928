//! The scenarios (`insert`, `fill`, `qry`, `qdoc`, `mixed`, `echo`) and the `standard` set.

use crate::args::{
    FillArgs, LoadArgs, MixedArgs, QueryArgs, ReadKind, Shape, StandardArgs, Target,
};
use crate::client::Endpoint;
use crate::load::{self, Role, Window};
use crate::payload::{Payload, PayloadKind};
use crate::procfs::Machine;
use crate::report::{self, Memory, Row};
use crate::requests::{Batches, Generator};
use crate::spawn::Process;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

/// The server a scenario drives.
pub struct Live {
    process: Option<Process>,
    ep: Endpoint,
    pid: Option<u32>,
    /// `fluxiondb`, `echo` or `external`.
    pub kind: &'static str,
}

impl Live {
    pub fn server(bin: &Path, key: &str) -> Result<Live, String> {
        let p = Process::fluxiondb(bin, key)?;
        Ok(Live {
            ep: Endpoint::from_addr(&p.addr, key)?,
            pid: Some(p.pid),
            process: Some(p),
            kind: "fluxiondb",
        })
    }

    pub fn echo() -> Result<Live, String> {
        let p = Process::echo()?;
        Ok(Live {
            ep: Endpoint::from_addr(&p.addr, "echo")?,
            pid: Some(p.pid),
            process: Some(p),
            kind: "echo",
        })
    }

    fn from_target(t: &Target, echo: bool) -> Result<Live, String> {
        match (&t.url, &t.server) {
            (Some(url), _) => Ok(Live {
                ep: Endpoint::parse(url, &t.key)?,
                pid: t.server_pid,
                process: None,
                kind: "external",
            }),
            (None, Some(_)) if echo => {
                Err("echo starts its own echo server: give --url or nothing".into())
            }
            (None, Some(bin)) => Live::server(bin, &t.key),
            (None, None) if echo => Live::echo(),
            (None, None) => Err("give --url ws://HOST:PORT or --server PATH".into()),
        }
    }

    /// Fails if the server this run started has died.
    fn check_alive(&mut self) -> Result<(), String> {
        let dead = self.process.as_mut().is_some_and(|p| !p.alive());
        if dead {
            return Err(format!("the {} process has exited", self.kind));
        }
        Ok(())
    }

    fn run(&mut self, roles: Vec<Role>, window: Window) -> Result<load::RunResult, String> {
        let r = load::run(&self.ep, roles, window, self.pid);
        self.check_alive()?;
        r
    }
}

fn timed(shape: &Shape) -> Window {
    Window::Timed {
        warmup: shape.warmup,
        duration: shape.duration,
    }
}

fn insert_role(name: &str, shape: &Shape, batches: impl Fn(u32) -> Batches) -> Role {
    let payload = Arc::new(Payload::new(shape.payload, shape.data_size));
    Role {
        name: name.into(),
        conns: shape.conns,
        depth: shape.depth,
        batch: shape.batch,
        gens: (0..shape.conns)
            .map(|i| {
                Generator::insert(
                    &shape.col,
                    shape.docs,
                    shape.batch,
                    payload.clone(),
                    batches(i),
                )
            })
            .collect(),
    }
}

fn read_role(
    name: &str,
    conns: u32,
    depth: u32,
    kind: ReadKind,
    col: &str,
    docs: u64,
    limit: u64,
) -> Role {
    Role {
        name: name.into(),
        conns,
        depth,
        batch: 0,
        gens: (0..conns)
            .map(|_| match kind {
                ReadKind::Qry => Generator::qry(col),
                ReadKind::Qdoc => Generator::qdoc(col, docs, limit, false),
                ReadKind::QdocNewest => Generator::qdoc(col, docs, limit, true),
            })
            .collect(),
    }
}

/// Timed single- or multi-record inserts, each connection into its own documents.
fn insert(live: &mut Live, shape: &Shape, label: &str) -> Result<Vec<Row>, String> {
    let role = insert_role("ins", shape, |conn| Batches::Local { conn });
    let scenario = if live.kind == "echo" {
        "echo"
    } else {
        "insert"
    };
    let run = live.run(vec![role], timed(shape))?;
    Ok(report::rows(label, scenario, live.kind, &run, None))
}

/// Inserts `records` records into `docs` documents as fast as the shape allows, and reports
/// the server's RSS growth per record.
fn fill(live: &mut Live, shape: &Shape, records: u64, label: &str) -> Result<Vec<Row>, String> {
    let total = records.div_ceil(shape.batch as u64);
    let next = Arc::new(AtomicU64::new(0));
    let role = insert_role("fill", shape, |_| Batches::Shared {
        next: next.clone(),
        total,
    });
    let run = live.run(vec![role], Window::UntilDone)?;
    let inserted = run.roles.iter().map(|r| r.counters.records).sum::<u64>();
    let memory = run.server.map(|s| {
        let grown = s[2].rss_bytes as f64 - s[0].rss_bytes as f64;
        Memory {
            records: inserted,
            rss_before_mib: (s[0].rss_bytes as f64 / 1048576.0 * 10.0).round() / 10.0,
            rss_after_mib: (s[2].rss_bytes as f64 / 1048576.0 * 10.0).round() / 10.0,
            bytes_per_record: (grown / inserted.max(1) as f64 * 10.0).round() / 10.0,
            payload_bytes_per_record: Payload::new(shape.payload, shape.data_size).mean_len() + 8.0,
        }
    });
    Ok(report::rows(label, "fill", live.kind, &run, memory))
}

/// Loads `per_doc` records into each of `docs` documents `d0…` (untimed); returns the number
/// of records written.
fn prefill(live: &mut Live, shape: &Shape, per_doc: u64) -> Result<u64, String> {
    let records = shape.docs * per_doc;
    if records == 0 {
        return Ok(0);
    }
    let batch = records.min(1000) as u32;
    let total = records.div_ceil(batch as u64);
    let next = Arc::new(AtomicU64::new(0));
    let role = Role {
        name: "prefill".into(),
        conns: 1,
        depth: 4,
        batch,
        gens: vec![Generator::insert(
            &shape.col,
            shape.docs,
            batch,
            Arc::new(Payload::new(shape.payload, shape.data_size)),
            Batches::Shared { next, total },
        )],
    };
    let run = live.run(vec![role], Window::UntilDone)?;
    let c = &run.roles[0].counters;
    if c.errors > 0 {
        return Err(format!(
            "prefill: {} error responses, first: {}",
            c.errors,
            c.first_error.as_deref().unwrap_or("?")
        ));
    }
    Ok(total * batch as u64)
}

fn query(
    live: &mut Live,
    shape: &Shape,
    kind: ReadKind,
    per_doc: u64,
    limit: u64,
    label: &str,
) -> Result<Vec<Row>, String> {
    prefill(live, shape, per_doc)?;
    let name = match kind {
        ReadKind::Qry => "qry",
        ReadKind::Qdoc => "qdoc",
        ReadKind::QdocNewest => "qdoc-newest",
    };
    let role = read_role(
        name,
        shape.conns,
        shape.depth,
        kind,
        &shape.col,
        shape.docs,
        limit,
    );
    let run = live.run(vec![role], timed(shape))?;
    Ok(report::rows(label, name, live.kind, &run, None))
}

/// Writers appending to the documents the readers read.
fn mixed(live: &mut Live, a: &MixedArgs, label: &str) -> Result<Vec<Row>, String> {
    let shape = &a.shape;
    let written = prefill(live, shape, a.prefill)?;
    // Continue the prefill's numbering: new records become each document's latest.
    let first = written.div_ceil(shape.batch as u64);
    let next = Arc::new(AtomicU64::new(first));
    let writers = insert_role("write", shape, |_| Batches::Shared {
        next: next.clone(),
        total: u64::MAX,
    });
    let readers = read_role(
        "read",
        a.readers,
        a.reader_depth,
        a.read,
        &shape.col,
        shape.docs,
        a.limit,
    );
    let run = live.run(vec![writers, readers], timed(shape))?;
    Ok(report::rows(label, "mixed", live.kind, &run, None))
}

fn finish(rows: &[Row]) -> Result<(), String> {
    report::print_json(rows);
    println!("\n{}", report::table(rows));
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    if errors > 0 {
        return Err(format!("{errors} requests failed (see above)"));
    }
    Ok(())
}

fn label(shape: &Shape, what: &str) -> String {
    format!("{what}-{}x{}-b{}", shape.conns, shape.depth, shape.batch)
}

pub fn cmd_insert(a: &LoadArgs) -> Result<(), String> {
    a.shape.check()?;
    let mut live = Live::from_target(&a.target, false)?;
    finish(&insert(&mut live, &a.shape, &label(&a.shape, "ins"))?)
}

pub fn cmd_echo(a: &LoadArgs) -> Result<(), String> {
    a.shape.check()?;
    let mut live = Live::from_target(&a.target, true)?;
    finish(&insert(&mut live, &a.shape, &label(&a.shape, "ins"))?)
}

pub fn cmd_fill(a: &FillArgs) -> Result<(), String> {
    a.shape.check()?;
    let mut live = Live::from_target(&a.target, false)?;
    finish(&fill(
        &mut live,
        &a.shape,
        a.records,
        &label(&a.shape, "fill"),
    )?)
}

pub fn cmd_query(a: &QueryArgs, kind: ReadKind) -> Result<(), String> {
    a.shape.check()?;
    let mut live = Live::from_target(&a.target, false)?;
    let name = if kind == ReadKind::Qry { "qry" } else { "qdoc" };
    let l = format!("{name}-{}x{}", a.shape.conns, a.shape.depth);
    finish(&query(&mut live, &a.shape, kind, a.prefill, a.limit, &l)?)
}

pub fn cmd_mixed(a: &MixedArgs) -> Result<(), String> {
    a.shape.check()?;
    let mut live = Live::from_target(&a.target, false)?;
    finish(&mixed(&mut live, a, "mixed")?)
}

/// The standard set.
pub fn standard(a: &StandardArgs) -> Result<(), String> {
    if !a.server.is_file() {
        return Err(format!(
            "{}: no such server binary (build it with `cargo build --release`)",
            a.server.display()
        ));
    }
    let key = "bench-secret";
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
        payload: PayloadKind::Fixed,
        col: "bench".into(),
    };
    base.check()?;
    let shape = |c: u32, d: u32, b: u32| Shape {
        conns: c,
        depth: d,
        batch: b,
        ..base.clone()
    };
    let wanted = |l: &str| a.only.is_empty() || a.only.iter().any(|o| l.contains(o.as_str()));
    let mut rows: Vec<Row> = Vec::new();
    let srv = || Live::server(&a.server, key);

    let mut failures: Vec<String> = Vec::new();
    let mut record = |label: &str, target: &str, round: u32, r: Result<Vec<Row>, String>| match r {
        Ok(mut new) => {
            new.iter_mut().for_each(|row| row.round = round);
            report::print_json(&new);
            rows.extend(new);
        }
        Err(e) => {
            eprintln!("\n!!! {label} ({target}, round {round}) FAILED: {e}\n");
            failures.push(format!("{label} ({target}, round {round}): {e}"));
        }
    };

    for round in 1..=a.rounds {
        // Single-record inserts: the echo ceiling, then the server, same client, same shape.
        for (c, d) in [(1, 32), (16, 4), (1, 1)] {
            let s = shape(c, d, 1);
            let l = format!("ins-{c}x{d}");
            if wanted(&l) {
                let echo = Live::echo().and_then(|mut e| insert(&mut e, &s, &l));
                record(&l, "echo", round, echo);
                let ours = srv().and_then(|mut v| insert(&mut v, &s, &l));
                record(&l, "fluxiondb", round, ours);
            }
        }
        // Queries answering 100 records (100 documents of 1000 records): `qdoc-100` the oldest
        // 100 of a document (sealed history), `qdoc-100-newest` the newest 100 (`reverse`);
        // the `-telemetry` forms with realistic data.
        for (l, kind, payload) in [
            ("qry-100", ReadKind::Qry, PayloadKind::Fixed),
            ("qdoc-100", ReadKind::Qdoc, PayloadKind::Fixed),
            ("qry-100-telemetry", ReadKind::Qry, PayloadKind::Telemetry),
            ("qdoc-100-telemetry", ReadKind::Qdoc, PayloadKind::Telemetry),
            (
                "qdoc-100-newest-telemetry",
                ReadKind::QdocNewest,
                PayloadKind::Telemetry,
            ),
        ] {
            if wanted(l) {
                let s = Shape {
                    payload,
                    ..shape(1, 32, 1)
                };
                let r = srv().and_then(|mut v| query(&mut v, &s, kind, 1000, 100, l));
                record(l, "fluxiondb", round, r);
            }
        }
        if wanted("mixed") {
            let m = MixedArgs {
                target: Target {
                    url: None,
                    server: None,
                    key: key.into(),
                    server_pid: None,
                },
                shape: shape(2, 8, 1),
                readers: 2,
                reader_depth: 8,
                read: ReadKind::Qry,
                prefill: 100,
                limit: 100,
            };
            let r = srv().and_then(|mut v| mixed(&mut v, &m, "mixed"));
            record("mixed", "fluxiondb", round, r);
        }
    }
    // Bulk load: 1000 records per ins, 2 connections × 4 in flight, 1000 documents, into a
    // fresh server whose RSS growth gives the memory per record.
    if wanted("bulk") {
        let s = Shape {
            docs: 1000,
            ..shape(2, 4, 1000)
        };
        let l = "bulk-2x4-b1000";
        let echo = Live::echo().and_then(|mut e| insert(&mut e, &s, l));
        record(l, "echo", 1, echo);
        let r = srv().and_then(|mut v| fill(&mut v, &s, a.fill_records, l));
        record(l, "fluxiondb", 1, r);
    }
    // Memory per record for the shapes of issue 13, each into a fresh server: telemetry for
    // `--fill-records` and for the first million, 32-byte `{"seq":N,"pad":"…"}` for the first
    // million.
    for (l, payload, records) in [
        ("bulk-telemetry", PayloadKind::Telemetry, a.fill_records),
        ("bulk-telemetry-1m", PayloadKind::Telemetry, 1_000_000),
        ("bulk-seq32-1m", PayloadKind::Seq, 1_000_000),
    ] {
        if wanted(l) {
            let s = Shape {
                docs: 1000,
                payload,
                ..shape(2, 4, 1000)
            };
            let r = srv().and_then(|mut v| fill(&mut v, &s, records, l));
            record(l, "fluxiondb", 1, r);
        }
    }
    let targets = targets(&rows);
    let wall = began.elapsed().as_secs_f64();
    println!("\n{}", report::table(&rows));
    println!("{}", report::targets_table(&targets));
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    if a.only.is_empty() {
        let settings = serde_json::json!({
            "duration_s": a.duration,
            "warmup_s": a.warmup,
            "fill_records": a.fill_records,
            "rounds": a.rounds,
            "data_bytes": 32,
            "docs": {"inserts": 100, "queries": 100, "bulk": 1000},
        });
        let res = report::Results {
            started,
            wall_seconds: (wall * 10.0).round() / 10.0,
            machine: &machine,
            server_binary: a.server.display().to_string(),
            settings,
            targets: &targets,
            rows: &rows,
            failures: &failures,
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

/// The summary: each figure is the median over the rounds, and each ratio to echo the median
/// of the per-round ratios (echo and server measured back to back).
fn targets(rows: &[Row]) -> Vec<report::Target> {
    let runs = |label: &str, target: &str| -> Vec<&Row> {
        rows.iter()
            .filter(|r| r.label == label && r.target == target)
            .collect()
    };
    let find = |label: &str, target: &str| runs(label, target).first().copied();
    let mut out = Vec::new();
    // (label, figure of a row) → (ours, echo, ratio), medians over the rounds.
    let paired = |label: &str, figure: &dyn Fn(&Row) -> f64| {
        let ours = runs(label, "fluxiondb");
        let echo = runs(label, "echo");
        let ratios = ours
            .iter()
            .filter_map(|o| {
                let e = echo.iter().find(|e| e.round == o.round)?;
                let e = figure(e);
                (e > 0.0).then(|| figure(o) / e)
            })
            .collect();
        (
            median(ours.iter().map(|r| figure(r)).collect()),
            median(echo.iter().map(|r| figure(r)).collect()),
            median(ratios).map(|r| (r * 1000.0).round() / 1000.0),
        )
    };
    let mut push = |name: &str,
                    unit: &str,
                    figures: (Option<f64>, Option<f64>, Option<f64>),
                    qt: f64,
                    uws: f64| {
        let (ours, echo, ratio) = figures;
        out.push(report::Target {
            name: name.into(),
            unit: unit.into(),
            ours,
            echo_ceiling: echo,
            ratio_vs_echo: ratio,
            upstream_qt: (qt > 0.0).then_some(qt),
            upstream_uws: (uws > 0.0).then_some(uws),
        });
    };
    let rec = |l: &str| paired(l, &|r: &Row| r.rec_per_s);
    let req = |l: &str| paired(l, &|r: &Row| r.req_per_s);
    push(
        "bulk load, 1000 rec/ins, 2 conns × 4",
        "rec/s",
        rec("bulk-2x4-b1000"),
        120e3,
        251e3,
    );
    push(
        "1-rec ins, 1 conn × 32",
        "req/s",
        req("ins-1x32"),
        51e3,
        91e3,
    );
    push(
        "1-rec ins, 16 conns × 4",
        "req/s",
        req("ins-16x4"),
        60e3,
        78e3,
    );
    push(
        "qry → 100 records, 1 conn × 32",
        "req/s",
        req("qry-100"),
        2.3e3,
        20e3,
    );
    push(
        "qdoc → 100 records, 1 conn × 32",
        "req/s",
        req("qdoc-100"),
        4.0e3,
        36e3,
    );
    let mem = find("bulk-2x4-b1000", "fluxiondb").and_then(|r| r.memory.clone());
    let name = format!(
        "RSS per record after {} records (1000 docs, 32-byte data; payload 40 B)",
        mem.as_ref().map(|m| m.records).unwrap_or(0)
    );
    let per_record = mem.map(|m| m.bytes_per_record);
    push(&name, "B", (per_record, None, None), 131.0, 107.0);
    // Issue 13's memory shapes (upstream figures from the issue; 0 = not measured there).
    for (label, name, qt, uws) in [
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
            "RSS per record, 32-byte seq JSON, first 1 M (target ≤ 56 B)",
            131.0,
            107.0,
        ),
    ] {
        let m = find(label, "fluxiondb").and_then(|r| r.memory.clone());
        push(
            name,
            "B",
            (m.map(|m| m.bytes_per_record), None, None),
            qt,
            uws,
        );
    }
    for (label, name) in [
        (
            "qdoc-100-newest-telemetry",
            "qdoc → newest 100 telemetry records, 1 conn × 32",
        ),
        (
            "qdoc-100-telemetry",
            "qdoc → oldest 100 (sealed) telemetry records, 1 conn × 32",
        ),
    ] {
        push(name, "req/s", req(label), 0.0, 0.0);
    }
    push(
        "p99 latency, 1-rec ins, 1 conn × 1",
        "µs",
        paired("ins-1x1", &|r: &Row| r.p99_us),
        0.0,
        0.0,
    );
    out
}
