//! The scenarios (`insert`, `fill`, `qry`, `qdoc`, `mixed`, `echo`) and the pieces the
//! standard set is made of: a server (or echo) to drive, roles, prefill, answer capture.

use crate::args::{FillArgs, LoadArgs, MixedArgs, QueryArgs, ReadKind, Shape, Target};
use crate::client::{Client, Endpoint};
use crate::echo::{EchoServer, Reply};
use crate::load::{self, Role, Window};
use crate::payload::Payload;
use crate::procfs::Probe;
use crate::report::{self, Memory, Row};
use crate::requests::{Batches, Generator};
use crate::spawn::Process;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The server a scenario drives.
pub struct Live {
    process: Option<Process>,
    /// The in-process echo server (the answer-size ceiling), when that is the target.
    _echo: Option<EchoServer>,
    ep: Endpoint,
    /// Where the server's CPU and memory are read.
    probe: Option<Probe>,
    /// `fluxiondb`, `echo` or `external`.
    pub kind: &'static str,
}

impl Live {
    pub fn server(bin: &Path, key: &str) -> Result<Live, String> {
        Live::server_with(bin, key, &[])
    }

    /// [`Live::server`] started with `extra` flags.
    pub fn server_with(bin: &Path, key: &str, extra: &[&str]) -> Result<Live, String> {
        let p = Process::fluxiondb_with(bin, key, extra)?;
        Ok(Live {
            ep: Endpoint::from_addr(&p.addr, key)?,
            probe: Some(Probe::Process(p.pid)),
            process: Some(p),
            _echo: None,
            kind: "fluxiondb",
        })
    }

    /// The echo server answering every request with `reply`. It runs inside this process; its
    /// CPU is that of its connection threads.
    pub fn echo(reply: Reply) -> Result<Live, String> {
        let e = EchoServer::start(reply)?;
        Ok(Live {
            ep: Endpoint::from_addr(&e.addr(), "echo")?,
            probe: Some(Probe::Threads(e.threads())),
            process: None,
            _echo: Some(e),
            kind: "echo",
        })
    }

    fn from_target(t: &Target, echo: bool) -> Result<Live, String> {
        match (&t.url, &t.server) {
            (Some(url), _) => Ok(Live {
                ep: Endpoint::parse(url, &t.key)?,
                probe: t.server_pid.map(Probe::Process),
                process: None,
                _echo: None,
                kind: "external",
            }),
            (None, Some(_)) if echo => {
                Err("echo starts its own echo server: give --url or nothing".into())
            }
            (None, Some(bin)) => Live::server(bin, &t.key),
            (None, None) if echo => Live::echo(Reply::ack()),
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
        let r = load::run(&self.ep, roles, window, self.probe.as_ref());
        self.check_alive()?;
        r
    }

    /// This server's answer to request 1 of `gen`, ready to be replayed by the echo server.
    pub fn capture(&mut self, mut gen: Generator) -> Result<Reply, String> {
        let mut c = Client::connect(&self.ep, "bench-capture", u64::MAX)?;
        let answer = c.ask(&mut gen, 1);
        c.close();
        self.check_alive()?;
        Reply::from_answer(&answer.map_err(|e| format!("capturing an answer: {e}"))?)
    }
}

/// What readers ask for.
#[derive(Clone, Debug)]
pub struct Read {
    pub kind: ReadKind,
    /// `qry` only: a literal document or a `/pattern/flags`.
    pub doc: Option<String>,
    /// `qdoc` limit.
    pub limit: u64,
}

impl Read {
    pub fn name(&self) -> &'static str {
        match (self.kind, &self.doc) {
            (ReadKind::Qry, None) => "qry",
            (ReadKind::Qry, Some(_)) => "qry-doc",
            (ReadKind::Qdoc, _) => "qdoc",
            (ReadKind::QdocNewest, _) => "qdoc-newest",
        }
    }

    fn generator(&self, shape: &Shape) -> Generator {
        match self.kind {
            ReadKind::Qry => Generator::qry(&shape.col, self.doc.as_deref()),
            ReadKind::Qdoc | ReadKind::QdocNewest => Generator::qdoc(
                &shape.col,
                &shape.doc_prefix,
                shape.docs,
                self.limit,
                self.kind == ReadKind::QdocNewest,
            ),
        }
    }
}

pub fn timed(shape: &Shape) -> Window {
    Window::Timed {
        warmup: shape.warmup,
        duration: shape.duration,
    }
}

pub fn insert_role(name: &str, shape: &Shape, batches: impl Fn(u32) -> Batches) -> Role {
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
                    &shape.doc_prefix,
                    shape.docs,
                    shape.batch,
                    payload.clone(),
                    batches(i),
                )
            })
            .collect(),
    }
}

/// `conns` × `depth` readers sending `read` over the documents of `shape`.
pub fn read_role(name: &str, conns: u32, depth: u32, read: &Read, shape: &Shape) -> Role {
    Role {
        name: name.into(),
        conns,
        depth,
        batch: 0,
        gens: (0..conns).map(|_| read.generator(shape)).collect(),
    }
}

/// One `ins` of the shape into a connection's own documents that no load writes to, for
/// capturing the acknowledgement.
pub fn one_insert(shape: &Shape) -> Generator {
    Generator::insert(
        &shape.col,
        &shape.doc_prefix,
        shape.docs,
        shape.batch,
        Arc::new(Payload::new(shape.payload, shape.data_size)),
        Batches::Local { conn: u32::MAX },
    )
}

/// The label rows carry for the shape's payload.
pub fn payload_label(shape: &Shape) -> String {
    shape.payload.label(shape.data_size)
}

/// Timed single- or multi-record inserts, each connection into its own documents.
pub fn insert(live: &mut Live, shape: &Shape, label: &str) -> Result<Vec<Row>, String> {
    let role = insert_role("ins", shape, |conn| Batches::Local { conn });
    let scenario = if live.kind == "echo" {
        "echo"
    } else {
        "insert"
    };
    let run = live.run(vec![role], timed(shape))?;
    Ok(report::rows(
        label,
        scenario,
        live.kind,
        &payload_label(shape),
        &run,
        None,
    ))
}

/// Inserts `records` records into `docs` documents as fast as the shape allows, and reports
/// the server's RSS growth per record.
pub fn fill(live: &mut Live, shape: &Shape, records: u64, label: &str) -> Result<Vec<Row>, String> {
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
    Ok(report::rows(
        label,
        "fill",
        live.kind,
        &payload_label(shape),
        &run,
        memory,
    ))
}

/// Loads `per_doc` records into each of the shape's documents `<prefix>0…` (untimed);
/// returns the number of records written.
pub fn prefill(live: &mut Live, shape: &Shape, per_doc: u64) -> Result<u64, String> {
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
            &shape.doc_prefix,
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

/// Timed reads (`shape.conns` × `shape.depth`) of what is stored.
pub fn read(live: &mut Live, shape: &Shape, read: &Read, label: &str) -> Result<Vec<Row>, String> {
    let name = read.name();
    let role = read_role(name, shape.conns, shape.depth, read, shape);
    let run = live.run(vec![role], timed(shape))?;
    Ok(report::rows(
        label,
        name,
        live.kind,
        &payload_label(shape),
        &run,
        None,
    ))
}

/// Which side of the mixed shape runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sides {
    Both,
    ReadersAlone,
    WritersAlone,
}

/// Writers appending to the documents the readers read (or one side alone, on the same
/// prefilled data, for comparison).
pub fn mixed(
    live: &mut Live,
    a: &MixedArgs,
    sides: Sides,
    label: &str,
) -> Result<Vec<Row>, String> {
    let shape = &a.shape;
    let written = prefill(live, shape, a.prefill)?;
    // Continue the prefill's numbering: new records become each document's latest.
    let first = written.div_ceil(shape.batch as u64);
    let next = Arc::new(AtomicU64::new(first));
    let writers = insert_role("write", shape, |_| Batches::Shared {
        next: next.clone(),
        total: u64::MAX,
    });
    let r = Read {
        kind: a.read,
        doc: None,
        limit: a.limit,
    };
    let readers = read_role("read", a.readers, a.reader_depth, &r, shape);
    let roles = match sides {
        Sides::Both => vec![writers, readers],
        Sides::ReadersAlone => vec![readers],
        Sides::WritersAlone => vec![writers],
    };
    let run = live.run(roles, timed(shape))?;
    Ok(report::rows(
        label,
        "mixed",
        live.kind,
        &payload_label(shape),
        &run,
        None,
    ))
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
    if a.doc.is_some() && kind != ReadKind::Qry {
        return Err("--doc is for qry (qdoc reads the documents in turn)".into());
    }
    let mut live = Live::from_target(&a.target, false)?;
    let r = Read {
        kind,
        doc: a.doc.clone(),
        limit: a.limit,
    };
    let l = format!("{}-{}x{}", r.name(), a.shape.conns, a.shape.depth);
    prefill(&mut live, &a.shape, a.prefill)?;
    finish(&read(&mut live, &a.shape, &r, &l)?)
}

pub fn cmd_mixed(a: &MixedArgs) -> Result<(), String> {
    a.shape.check()?;
    let mut live = Live::from_target(&a.target, false)?;
    finish(&mixed(&mut live, a, Sides::Both, "mixed")?)
}
