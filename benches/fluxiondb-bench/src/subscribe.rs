//! `subscribe`: the targets of live subscriptions (issue 15), each a ratio measured within one
//! run against servers started here, in memory and with `--data`:
//!
//! * latency: subscribers all watching one collection, one writer sending single-record `ins`
//!   at a steady rate; p99 of (write sent → push received) against p99 of (write sent → ack);
//! * throughput: connections × depth single-record `ins`, with and without subscribers that
//!   each receive every record (and must receive all of them);
//! * fan-out: 1,000-record `ins` with and without subscribers (100 connections × 1, and
//!   100 connections × 10 subscriptions);
//! * a subscriber that stops reading: writers' rate beside it, and its `subend`.

use crate::args::SubscribeArgs;
use crate::delivery::{Delivery, Seen};
use crate::procfs;
use crate::spawn::Process;
use crate::subscribe_conn::{self as raw, Conn, Got};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const COL: &str = "bench.live";
/// Bytes a subscriber that is not timing pushes waits for before its read returns.
const BULK_READ: usize = 256 << 10;
/// The server's per-connection send buffer in the stalled-subscriber run.
const STALLED_SEND_BUFFER_MIB: u32 = 4;

/// A request frame's text: `payload` is a JSON text, carried as a JSON string (it holds no
/// control characters, so only quotes and backslashes are escaped).
fn request(id: &str, ty: &str, payload: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload.len() / 4 + 48);
    out.extend_from_slice(format!(r#"{{"id":"{id}","type":"{ty}","data":""#).as_bytes());
    for b in payload.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.extend_from_slice(b"\"}");
    out
}

fn insert_data(first_ts: u64, batch: u64, doc: &str) -> String {
    let mut s = String::with_capacity(batch as usize * 90 + 2);
    s.push('[');
    for i in 0..batch {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            r#"{{"col":"{COL}","doc":"{doc}","ts":{},"data":"temp:21.5 state:flying"}}"#,
            first_ts + i
        );
    }
    s.push(']');
    s
}

/// Whether an answer is an error answer.
fn refused(answer: &[u8]) -> bool {
    raw::find(answer, b"\"error\"").is_some()
}

/// One subscriber connection with `subs` subscriptions on the collection; checks every push
/// it reads (see `delivery.rs`: each subscription gets every write in `seq` order, `batch`
/// records a push), counts the records and, for latency, records when each timestamp arrived.
struct Subscriber {
    records: Arc<AtomicU64>,
    /// Set by the caller to stop reading (or, for a stalled one, to start draining).
    ended: Arc<AtomicBool>,
    /// The server ended the subscription.
    subend: Arc<AtomicBool>,
    handle: thread::JoinHandle<Read>,
}

/// What a subscriber's thread found.
struct Read {
    latencies: Vec<Duration>,
    /// Pushes also parsed in full to check the scan.
    sampled: u64,
    /// The first push found wrong, or the reading error.
    error: Option<String>,
}

fn subscriber(
    addr: &str,
    key: &str,
    subs: usize,
    batch: u64,
    sent: Option<Arc<Vec<AtomicU64>>>,
    start: Instant,
    read: bool,
) -> Result<Subscriber, String> {
    let mut ws = Conn::open(addr, key)?;
    let mut ids = Vec::with_capacity(subs);
    for i in 0..subs {
        ws.send(&request(
            &format!("s{i}"),
            "sub",
            &format!(r#"{{"col":"{COL}"}}"#),
        ))?;
        let answer = ws.next_text()?;
        ids.push(
            sub_id(&answer)
                .ok_or_else(|| format!("sub refused: {}", String::from_utf8_lossy(&answer)))?,
        );
    }
    let records = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicBool::new(false));
    let subend = Arc::new(AtomicBool::new(false));
    let (r, e, se) = (records.clone(), ended.clone(), subend.clone());
    ws.set_read_timeout(Duration::from_millis(200))?;
    if sent.is_none() && read {
        // Not timing pushes (nor standing for one that stops reading, whose kernel buffer
        // would hold more of what the server is refused): read them in large chunks (see
        // `Conn::read_in_bulk`).
        ws.read_in_bulk(BULK_READ)?;
    }
    let handle = thread::spawn(move || {
        let subend = se;
        let mut lat = Vec::new();
        let mut check = Delivery::new(COL, ids, batch);
        let mut error = None;
        if !read {
            // Stops reading until told to drain.
            while !e.load(Ordering::Acquire) {
                thread::sleep(Duration::from_millis(20));
            }
            e.store(false, Ordering::Release);
        }
        // Reads until told to stop (`ended`) and nothing more comes, or the end.
        let mut quiet = 0;
        let mut over = false;
        while !over && check.error.is_none() {
            let got = ws.read(|push| match check.push(push) {
                Some(Seen::Records(_)) => {
                    if let Some(sent) = &sent {
                        let now = start.elapsed().as_nanos() as u64;
                        for ts in timestamps(push) {
                            if let Some(at) = sent.get(ts) {
                                lat.push(Duration::from_nanos(
                                    now.saturating_sub(at.load(Ordering::Acquire)),
                                ));
                            }
                        }
                    }
                }
                Some(Seen::Subend) => {
                    subend.store(true, Ordering::Release);
                    over = true;
                }
                None => over = true,
            });
            r.store(check.least(), Ordering::Release);
            match got {
                Ok(Got::Frames) => quiet = 0,
                Ok(Got::Quiet) => {
                    quiet += 1;
                    if e.load(Ordering::Acquire) || quiet > 50 {
                        break;
                    }
                }
                Ok(Got::Closed) => break,
                Err(err) => {
                    error = Some(err);
                    break;
                }
            }
        }
        Read {
            latencies: lat,
            sampled: check.sampled,
            error: check.error.or(error),
        }
    });
    Ok(Subscriber {
        records,
        ended,
        subend,
        handle,
    })
}

/// The subscription id of a `sub` answer.
fn sub_id(answer: &[u8]) -> Option<Vec<u8>> {
    let at = raw::find(answer, br#""sub":""#)? + 7;
    let len = answer[at..].iter().position(|&b| b == b'"')?;
    Some(answer[at..at + len].to_vec())
}

/// Tells subscribers to stop and joins them: their latencies, the pushes checked by a full
/// parse, or the first error one found. All are told before the first is joined, so that
/// their last quiet reads (a read timeout each) overlap instead of adding up.
fn finish(subs: Vec<Subscriber>) -> Result<(Vec<Duration>, u64), String> {
    let (mut lat, mut sampled, mut error) = (Vec::new(), 0, None);
    for s in &subs {
        s.ended.store(true, Ordering::Release);
    }
    for s in subs {
        match s.handle.join() {
            Ok(r) => {
                lat.extend(r.latencies);
                sampled += r.sampled;
                error = error.or(r.error);
            }
            Err(_) => error = error.or(Some("a subscriber panicked".into())),
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok((lat, sampled)),
    }
}

/// The `ts` values of a `rec` push.
fn timestamps(push: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = push;
    while let Some(i) = raw::find(rest, b"\"ts\":") {
        rest = &rest[i + 5..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let ts = std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        out.push(ts);
    }
    out
}

fn p99(mut v: Vec<Duration>) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

/// The server under test, with `--data` in `data` when given, and `extra` flags.
fn start_server(
    bin: &Path,
    key: &str,
    data: Option<&Path>,
    extra: &[&str],
) -> Result<Process, String> {
    let folder = data.map(|d| d.display().to_string());
    let mut args: Vec<&str> = extra.to_vec();
    if let Some(folder) = &folder {
        args.extend(["--data", folder.as_str()]);
    }
    Process::fluxiondb_with(bin, key, &args)
}

/// p99 ack and push latency with `subs` subscribers and one writer at `rate` writes/s.
fn latency(
    addr: &str,
    key: &str,
    subs: usize,
    rate: u64,
    secs: f64,
) -> Result<(Duration, Duration), String> {
    let n = (rate as f64 * secs) as usize;
    let start = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..=n).map(|_| AtomicU64::new(0)).collect());
    let readers: Vec<Subscriber> = (0..subs)
        .map(|_| subscriber(addr, key, 1, 1, Some(sent.clone()), start, true))
        .collect::<Result<_, _>>()?;
    let mut w = Conn::open(addr, key)?;
    let mut acks = Vec::with_capacity(n);
    let tick = Duration::from_secs_f64(1.0 / rate as f64);
    let t0 = Instant::now();
    for ts in 1..=n {
        let due = t0 + tick * ts as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let at = Instant::now();
        sent[ts].store(start.elapsed().as_nanos() as u64, Ordering::Release);
        w.send(&request("w", "ins", &insert_data(ts as u64, 1, "d")))?;
        let answer = w.next_text()?;
        if refused(&answer) {
            return Err(format!("ins refused: {}", String::from_utf8_lossy(&answer)));
        }
        acks.push(at.elapsed());
    }
    let want = n as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while readers
        .iter()
        .any(|r| r.records.load(Ordering::Acquire) < want)
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(10));
    }
    drop(w);
    let missing: u64 = readers
        .iter()
        .map(|r| want.saturating_sub(r.records.load(Ordering::Acquire)))
        .sum();
    let (pushes, _) = finish(readers)?;
    if missing > 0 {
        return Err(format!("latency: {missing} pushes missing"));
    }
    Ok((p99(acks), p99(pushes)))
}

/// Inserts per second from `conns` writers keeping `depth` `ins` of `batch` records in flight
/// for `secs`; returns (records/s, records acknowledged).
fn writers(
    addr: &str,
    key: &str,
    conns: usize,
    depth: usize,
    batch: u64,
    secs: f64,
) -> Result<Written, String> {
    let stop = Instant::now() + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..conns)
        .map(|c| {
            let (addr, key) = (addr.to_string(), key.to_string());
            thread::spawn(move || -> Result<u64, String> {
                let mut ws = Conn::open(&addr, &key)?;
                let doc = format!("w{c}");
                let (mut next, mut acked, mut inflight) = (1u64, 0u64, 0usize);
                loop {
                    while inflight < depth && Instant::now() < stop {
                        ws.send(&request("w", "ins", &insert_data(next, batch, &doc)))?;
                        next += batch;
                        inflight += 1;
                    }
                    if inflight == 0 {
                        return Ok(acked);
                    }
                    let answer = ws.next_text()?;
                    if refused(&answer) {
                        return Err(format!("ins refused: {}", String::from_utf8_lossy(&answer)));
                    }
                    inflight -= 1;
                    acked += batch;
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    let mut each = Vec::with_capacity(conns);
    for h in handles {
        each.push(h.join().map_err(|_| "writer panicked".to_string())??);
    }
    let total: u64 = each.iter().sum();
    let least = each.iter().copied().min().unwrap_or(0);
    Ok(Written {
        rate: total as f64 / t0.elapsed().as_secs_f64(),
        total,
        least_share: least as f64 * conns as f64 / total.max(1) as f64,
    })
}

/// What the writers of a run wrote.
struct Written {
    /// Records per second, all connections together.
    rate: f64,
    total: u64,
    /// The records of the connection that wrote the fewest, over the mean of all of them
    /// (1: every connection served alike).
    least_share: f64,
}

/// Throughput with `conns` subscriber connections × `per` subscriptions; checks every record
/// reached every subscription. Returns the rate, how many pushes were parsed in full to check
/// the scan, and the least-served writer connection's share.
fn with_subscribers(
    addr: &str,
    key: &str,
    conns: usize,
    per: usize,
    load: (usize, usize, u64, f64),
) -> Result<(f64, u64, f64), String> {
    let start = Instant::now();
    let subs: Vec<Subscriber> = (0..conns)
        .map(|_| subscriber(addr, key, per, load.2, None, start, true))
        .collect::<Result<_, _>>()?;
    let written = writers(addr, key, load.0, load.1, load.2, load.3)?;
    // Every subscription must receive every record.
    let want = written.total;
    let deadline = Instant::now() + Duration::from_secs(60);
    while subs
        .iter()
        .any(|s| s.records.load(Ordering::Acquire) < want)
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(20));
    }
    let missing: u64 = subs
        .iter()
        .map(|s| want.saturating_sub(s.records.load(Ordering::Acquire)))
        .sum();
    let (_, sampled) = finish(subs)?;
    if missing > 0 {
        return Err(format!(
            "{missing} pushed records missing ({conns}×{per} subscriptions)"
        ));
    }
    Ok((written.rate, sampled, written.least_share))
}

/// The short form `make bench` runs: p99 of (write sent → ack) and of (write sent → push) with
/// `subs` subscribers and one writer at `rate` writes/s, against a server started here (in
/// memory, or with `--data` in a temporary folder).
pub fn push_latency(
    bin: &Path,
    key: &str,
    data: bool,
    subs: usize,
    rate: u64,
    secs: f64,
) -> Result<(Duration, Duration), String> {
    let dir = std::env::temp_dir().join(format!(
        "fluxiondb-bench-push-{}-{}",
        std::process::id(),
        u8::from(data)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let p = start_server(bin, key, data.then_some(dir.as_path()), &[])?;
    let out = latency(&p.addr, key, subs, rate, secs);
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// CPU seconds the server and this process (writers and subscribers) spent in one run, from
/// its start to the last push read: on a machine shared with other work the CPU spent per
/// record is a steadier figure than the rates.
#[derive(Clone, Copy, Default)]
struct Cpu {
    server: f64,
    clients: f64,
}

impl Cpu {
    /// The microseconds of CPU each side spent per record written, `rate` records/s having
    /// been written for `secs`.
    fn json(&self, rate: f64, secs: f64) -> String {
        let per = |cpu: f64| cpu / (rate * secs).max(1e-9) * 1e6;
        format!(
            "{{\"server_us_per_rec\":{:.2},\"clients_us_per_rec\":{:.2}}}",
            per(self.server),
            per(self.clients)
        )
    }
}

/// How the runs' lines say delivery was checked (see `delivery.rs`).
const CHECKED: &str = "\"delivery_check\":\"every push scanned (sub, seq, record count; each subscription in seq order, none missing), each subscription's first and one per MiB read also parsed in full\"";

/// Runs one measurement against a server of its own (in memory, or with `--data` in a
/// temporary folder); remembers the CPU the server and this process spent, and the server's
/// peak resident memory.
struct Runner<'a> {
    bin: &'a Path,
    key: &'a str,
    data: bool,
    dir: std::path::PathBuf,
    /// The CPU of the last run.
    cpu: std::cell::Cell<Cpu>,
    /// The server's peak resident memory in the last run.
    peak: std::cell::Cell<u64>,
}

impl Runner<'_> {
    fn run<T>(
        &self,
        extra: &[&str],
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, String> {
        let _ = std::fs::remove_dir_all(&self.dir);
        let p = start_server(
            self.bin,
            self.key,
            self.data.then_some(self.dir.as_path()),
            extra,
        )?;
        let before = (procfs::sample(Some(p.pid)), procfs::sample(None));
        let out = f(&p.addr);
        let after = (procfs::sample(Some(p.pid)), procfs::sample(None));
        if let (Ok(s1), _) = &after {
            self.peak.set(s1.hwm_bytes);
        }
        if let ((Ok(s0), Ok(c0)), (Ok(s1), Ok(c1))) = (before, after) {
            self.cpu.set(Cpu {
                server: s1.cpu_s - s0.cpu_s,
                clients: c1.cpu_s - c0.cpu_s,
            });
        }
        drop(p);
        let _ = std::fs::remove_dir_all(&self.dir);
        out
    }
}

pub fn cmd_subscribe(a: &SubscribeArgs) -> Result<(), String> {
    let key = a.key.as_str();
    let secs = a.duration;
    for data in [false, true] {
        let mode = if data { "--data" } else { "memory" };
        if a.mode
            .as_deref()
            .is_some_and(|m| m != mode.trim_start_matches('-'))
        {
            continue;
        }
        let runner = Runner {
            bin: a.server.as_path(),
            key,
            data,
            dir: std::env::temp_dir().join(format!("fluxiondb-bench-sub-{}", std::process::id())),
            cpu: std::cell::Cell::new(Cpu::default()),
            peak: std::cell::Cell::new(0),
        };
        if a.wants("latency") {
            let (ack, push) =
                runner.run(&[], |addr| latency(addr, key, a.subscribers, a.rate, secs))?;
            println!(
                "{{\"scenario\":\"subscribe-latency\",\"mode\":\"{mode}\",\"subscribers\":{},\"rate\":{},\"p99_ack_us\":{},\"p99_push_us\":{},\"ratio\":{:.2}}}",
                a.subscribers, a.rate, ack.as_micros(), push.as_micros(),
                push.as_secs_f64() / ack.as_secs_f64().max(1e-9)
            );
        }
        let load = (16, 4, 1, secs);
        if a.wants("throughput") {
            let base = runner.run(&[], |addr| {
                writers(addr, key, load.0, load.1, load.2, load.3)
            })?;
            let base_cpu = runner.cpu.get();
            let (with, parsed, with_share) = runner.run(&[], |addr| {
                with_subscribers(addr, key, a.subscribers, 1, load)
            })?;
            let with_cpu = runner.cpu.get();
            println!(
                "{{\"scenario\":\"subscribe-throughput\",\"mode\":\"{mode}\",\"subscribers\":{},\"ins_per_s_without\":{:.0},\"ins_per_s_with\":{with:.0},\"ratio\":{:.2},\"least_served_writer_share_without\":{:.2},\"least_served_writer_share_with\":{with_share:.2},\"cpu_without\":{},\"cpu_with\":{},{CHECKED},\"pushes_parsed_in_full\":{parsed}}}",
                a.subscribers, base.rate, with / base.rate.max(1e-9), base.least_share,
                base_cpu.json(base.rate, secs), with_cpu.json(with, secs)
            );
        }
        if a.wants("fanout") {
            let bulk = (1, 2, 1000, secs);
            let base = runner.run(&[], |addr| {
                writers(addr, key, bulk.0, bulk.1, bulk.2, bulk.3)
            })?;
            let bulk_cpu = runner.cpu.get();
            let (fan, p1, _) = runner.run(&[], |addr| with_subscribers(addr, key, 100, 1, bulk))?;
            let fan_cpu = runner.cpu.get();
            let (wide, p2, _) =
                runner.run(&[], |addr| with_subscribers(addr, key, 100, 10, bulk))?;
            let wide_cpu = runner.cpu.get();
            let (base, parsed) = (base.rate, p1 + p2);
            println!(
                "{{\"scenario\":\"subscribe-fanout\",\"mode\":\"{mode}\",\"records_per_s_without\":{base:.0},\"with_100\":{fan:.0},\"ratio_100\":{:.2},\"with_1000_over_100_conns\":{wide:.0},\"ratio_1000\":{:.2},\"cpu_without\":{},\"cpu_with_100\":{},\"cpu_with_1000\":{},{CHECKED},\"pushes_parsed_in_full\":{parsed}}}",
                fan / base.max(1e-9), wide / base.max(1e-9), bulk_cpu.json(base, secs),
                fan_cpu.json(fan, secs), wide_cpu.json(wide, secs)
            );
        }
        if a.wants("stalled") {
            // A send buffer of 4 MiB (64 by default) fills within the run, so the stalled
            // subscriber's end is seen, not only the writers' rate beside it.
            let buffer = STALLED_SEND_BUFFER_MIB.to_string();
            let (rate, ended, kept) = runner.run(&["--send-buffer-mib", &buffer], |addr| {
                let start = Instant::now();
                let stalled = subscriber(addr, key, 1, load.2, None, start, false)?;
                let rate = writers(addr, key, load.0, load.1, load.2, load.3)?.rate;
                stalled.ended.store(true, Ordering::Release); // now drain what was kept for it
                while stalled.ended.load(Ordering::Acquire) {
                    thread::sleep(Duration::from_millis(5)); // until the reader took the signal
                }
                let (records, subend) = (stalled.records.clone(), stalled.subend.clone());
                finish(vec![stalled])?;
                Ok((
                    rate,
                    subend.load(Ordering::Acquire),
                    records.load(Ordering::Acquire),
                ))
            })?;
            println!(
                "{{\"scenario\":\"subscribe-stalled\",\"mode\":\"{mode}\",\"send_buffer_mib\":{STALLED_SEND_BUFFER_MIB},\"ins_per_s_beside_a_stalled_subscriber\":{rate:.0},\"subend\":{ended},\"records_kept\":{kept},\"server_peak_rss_mib\":{:.1}}}",
                runner.peak.get() as f64 / (1024.0 * 1024.0)
            );
        }
    }
    Ok(())
}
