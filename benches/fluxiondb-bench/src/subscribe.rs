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
use crate::spawn::Process;
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<TcpStream>;

const COL: &str = "bench.live";

fn connect(addr: &str, key: &str) -> Result<Ws, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let key: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
    let url = format!("ws://{addr}/?api-key={key}");
    let (mut ws, _) = tungstenite::client(url.as_str(), stream)
        .map_err(|e| format!("handshake with {addr}: {e}"))?;
    next_text(&mut ws)?; // ready
    Ok(ws)
}

fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return Ok(t.to_string()),
            Ok(Message::Close(c)) => return Err(format!("closed: {c:?}")),
            Ok(_) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn send(ws: &mut Ws, id: &str, ty: &str, data: &str) -> Result<(), String> {
    let frame = serde_json::json!({"id": id, "type": ty, "data": data}).to_string();
    ws.send(Message::text(frame)).map_err(|e| e.to_string())
}

fn insert_data(first_ts: u64, batch: u64, doc: &str) -> String {
    let mut s = String::from("[");
    for i in 0..batch {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"col":"{COL}","doc":"{doc}","ts":{},"data":"temp:21.5 state:flying"}}"#,
            first_ts + i
        ));
    }
    s.push(']');
    s
}

/// One subscriber connection with `subs` subscriptions on the collection; counts the records
/// pushed and, for latency, records when each timestamp arrived.
struct Subscriber {
    records: Arc<AtomicU64>,
    /// Set by the caller to stop reading (or, for a stalled one, to start draining).
    ended: Arc<AtomicBool>,
    /// The server ended the subscription.
    subend: Arc<AtomicBool>,
    handle: thread::JoinHandle<Vec<Duration>>,
}

fn subscriber(
    addr: &str,
    key: &str,
    subs: usize,
    sent: Option<Arc<Vec<AtomicU64>>>,
    start: Instant,
    read: bool,
) -> Result<Subscriber, String> {
    let mut ws = connect(addr, key)?;
    for i in 0..subs {
        send(
            &mut ws,
            &format!("s{i}"),
            "sub",
            &format!(r#"{{"col":"{COL}"}}"#),
        )?;
        let answer = next_text(&mut ws)?;
        if !answer.contains("\"sub\"") {
            return Err(format!("sub refused: {answer}"));
        }
    }
    let records = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicBool::new(false));
    let subend = Arc::new(AtomicBool::new(false));
    let (r, e, se) = (records.clone(), ended.clone(), subend.clone());
    let _ = ws
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)));
    let handle = thread::spawn(move || {
        let subend = se;
        let mut lat = Vec::new();
        if !read {
            // Stops reading until told to drain.
            while !e.load(Ordering::Acquire) {
                thread::sleep(Duration::from_millis(20));
            }
            e.store(false, Ordering::Release);
        }
        // Reads until told to stop (`ended`) and nothing more comes, or the end.
        let mut quiet = 0;
        loop {
            let text = match ws.read() {
                Ok(Message::Text(t)) => t.to_string(),
                Ok(Message::Close(_)) => break,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(err))
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    quiet += 1;
                    if e.load(Ordering::Acquire) || quiet > 50 {
                        break;
                    }
                    continue;
                }
                Err(_) => break,
            };
            quiet = 0;
            // Scanned, not parsed: the subscribers share the machine with the server.
            if text.starts_with(r#"{"type":"rec""#) {
                let mut n = 0;
                let now = start.elapsed().as_nanos() as u64;
                for part in text.split(r#""ts":"#).skip(1) {
                    n += 1;
                    if let Some(sent) = &sent {
                        let digits = part.bytes().take_while(u8::is_ascii_digit).count();
                        let ts: usize = part[..digits].parse().unwrap_or(0);
                        if let Some(at) = sent.get(ts) {
                            lat.push(Duration::from_nanos(
                                now.saturating_sub(at.load(Ordering::Acquire)),
                            ));
                        }
                    }
                }
                r.fetch_add(n, Ordering::AcqRel);
            } else if text.starts_with(r#"{"type":"subend""#) {
                subend.store(true, Ordering::Release);
                break;
            }
        }
        lat
    });
    Ok(Subscriber {
        records,
        ended,
        subend,
        handle,
    })
}

fn p99(mut v: Vec<Duration>) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

fn start_server(bin: &Path, key: &str, data: Option<&Path>) -> Result<Process, String> {
    match data {
        Some(d) => Process::fluxiondb_with(bin, key, &["--data", &d.display().to_string()]),
        None => Process::fluxiondb(bin, key),
    }
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
        .map(|_| subscriber(addr, key, 1, Some(sent.clone()), start, true))
        .collect::<Result<_, _>>()?;
    let mut w = connect(addr, key)?;
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
        send(&mut w, "w", "ins", &insert_data(ts as u64, 1, "d"))?;
        next_text(&mut w)?;
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
    let mut pushes = Vec::new();
    let missing: u64 = readers
        .iter()
        .map(|r| want.saturating_sub(r.records.load(Ordering::Acquire)))
        .sum();
    for r in readers {
        r.ended.store(true, Ordering::Release);
        pushes.extend(r.handle.join().unwrap_or_default());
    }
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
) -> Result<(f64, u64), String> {
    let stop = Instant::now() + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..conns)
        .map(|c| {
            let (addr, key) = (addr.to_string(), key.to_string());
            thread::spawn(move || -> Result<u64, String> {
                let mut ws = connect(&addr, &key)?;
                let doc = format!("w{c}");
                let (mut next, mut acked, mut inflight) = (1u64, 0u64, 0usize);
                loop {
                    while inflight < depth && Instant::now() < stop {
                        send(&mut ws, "w", "ins", &insert_data(next, batch, &doc))?;
                        next += batch;
                        inflight += 1;
                    }
                    if inflight == 0 {
                        return Ok(acked);
                    }
                    next_text(&mut ws)?;
                    inflight -= 1;
                    acked += batch;
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    let mut total = 0;
    for h in handles {
        total += h.join().map_err(|_| "writer panicked".to_string())??;
    }
    Ok((total as f64 / t0.elapsed().as_secs_f64(), total))
}

/// Throughput with `conns` subscriber connections × `per` subscriptions; checks every record
/// reached every subscription.
fn with_subscribers(
    addr: &str,
    key: &str,
    conns: usize,
    per: usize,
    load: (usize, usize, u64, f64),
) -> Result<f64, String> {
    let start = Instant::now();
    let subs: Vec<Subscriber> = (0..conns)
        .map(|_| subscriber(addr, key, per, None, start, true))
        .collect::<Result<_, _>>()?;
    let (rate, total) = writers(addr, key, load.0, load.1, load.2, load.3)?;
    let want = total * per as u64;
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
    for s in subs {
        s.ended.store(true, Ordering::Release);
        let _ = s.handle.join();
    }
    if missing > 0 {
        return Err(format!(
            "{missing} pushed records missing ({conns}×{per} subscriptions)"
        ));
    }
    Ok(rate)
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
    let p = start_server(bin, key, data.then_some(dir.as_path()))?;
    let out = latency(&p.addr, key, subs, rate, secs);
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
    out
}

pub fn cmd_subscribe(a: &SubscribeArgs) -> Result<(), String> {
    let bin = a.server.as_path();
    let key = a.key.as_str();
    let secs = a.duration;
    for data in [false, true] {
        let mode = if data { "--data" } else { "memory" };
        let dir = std::env::temp_dir().join(format!("fluxiondb-bench-sub-{}", std::process::id()));
        let run = |f: &dyn Fn(&str) -> Result<String, String>| -> Result<String, String> {
            let _ = std::fs::remove_dir_all(&dir);
            let p = start_server(bin, key, data.then_some(dir.as_path()))?;
            let out = f(&p.addr);
            drop(p);
            let _ = std::fs::remove_dir_all(&dir);
            out
        };
        let line = run(&|addr| {
            let (ack, push) = latency(addr, key, a.subscribers, a.rate, secs)?;
            Ok(format!(
                "{{\"scenario\":\"subscribe-latency\",\"mode\":\"{mode}\",\"subscribers\":{},\"rate\":{},\"p99_ack_us\":{},\"p99_push_us\":{},\"ratio\":{:.2}}}",
                a.subscribers, a.rate, ack.as_micros(), push.as_micros(),
                push.as_secs_f64() / ack.as_secs_f64().max(1e-9)
            ))
        })?;
        println!("{line}");
        let load = (16, 4, 1, secs);
        let base = run(&|addr| {
            writers(addr, key, load.0, load.1, load.2, load.3).map(|r| r.0.to_string())
        })?;
        let with = run(&|addr| {
            with_subscribers(addr, key, a.subscribers, 1, load).map(|r| r.to_string())
        })?;
        let (base, with): (f64, f64) = (base.parse().unwrap_or(0.0), with.parse().unwrap_or(0.0));
        println!(
            "{{\"scenario\":\"subscribe-throughput\",\"mode\":\"{mode}\",\"subscribers\":{},\"ins_per_s_without\":{base:.0},\"ins_per_s_with\":{with:.0},\"ratio\":{:.2}}}",
            a.subscribers, with / base.max(1e-9)
        );
        let bulk = (1, 2, 1000, secs);
        let base = run(&|addr| {
            writers(addr, key, bulk.0, bulk.1, bulk.2, bulk.3).map(|r| r.0.to_string())
        })?;
        let fan = run(&|addr| with_subscribers(addr, key, 100, 1, bulk).map(|r| r.to_string()))?;
        let wide = run(&|addr| with_subscribers(addr, key, 100, 10, bulk).map(|r| r.to_string()))?;
        let (base, fan, wide): (f64, f64, f64) = (
            base.parse().unwrap_or(0.0),
            fan.parse().unwrap_or(0.0),
            wide.parse().unwrap_or(0.0),
        );
        println!(
            "{{\"scenario\":\"subscribe-fanout\",\"mode\":\"{mode}\",\"records_per_s_without\":{base:.0},\"with_100\":{fan:.0},\"ratio_100\":{:.2},\"with_1000_over_100_conns\":{wide:.0},\"ratio_1000\":{:.2}}}",
            fan / base.max(1e-9), wide / base.max(1e-9)
        );
        let slow = run(&|addr| {
            let start = Instant::now();
            let stalled = subscriber(addr, key, 1, None, start, false)?;
            let (rate, _) = writers(addr, key, load.0, load.1, load.2, load.3)?;
            stalled.ended.store(true, Ordering::Release); // now drain what was kept for it
            while stalled.ended.load(Ordering::Acquire) {
                thread::sleep(Duration::from_millis(5)); // until the reader took the signal
            }
            stalled.ended.store(true, Ordering::Release);
            let got = stalled.records.load(Ordering::Acquire);
            let _ = stalled.handle.join();
            let ended = stalled.subend.load(Ordering::Acquire);
            Ok(format!(
                "{rate:.0},\"subend\":{ended},\"records_kept\":{got}"
            ))
        })?;
        println!(
            "{{\"scenario\":\"subscribe-stalled\",\"mode\":\"{mode}\",\"ins_per_s_beside_a_stalled_subscriber\":{slow}}}"
        );
    }
    Ok(())
}
