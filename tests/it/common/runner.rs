//! Replays the cases of tests/vectors/protocol.json (format described in
//! tests/vectors/README.md) against fresh servers.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use super::matcher::match_json;
use crate::common::{truncate, Client, Frame, Server};

/// Path of the vectors file: `$FLUXIONDB_VECTORS`, else `tests/vectors/protocol.json` in
/// the crate.
pub fn vectors_path() -> PathBuf {
    match std::env::var_os("FLUXIONDB_VECTORS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/protocol.json"
        )),
    }
}

/// Loads the vectors file; panics loudly when it is missing or malformed.
pub fn load_vectors() -> Value {
    let path = vectors_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the protocol vectors at {} ({e}); set FLUXIONDB_VECTORS to the file",
            path.display()
        )
    });
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
    assert_eq!(
        v["format"],
        "fluxiondb-protocol-vectors",
        "{} has an unexpected format",
        path.display()
    );
    v
}

/// Case list `member` (`cases` or `restart_cases`) of the vectors file, filtered by
/// `$FLUXIONDB_VECTOR_FILTER` (substring of the case name) when set.
pub fn cases(vectors: &Value, member: &str) -> Vec<Value> {
    let all = vectors[member]
        .as_array()
        .unwrap_or_else(|| panic!("vectors file has no {member:?} array"))
        .clone();
    assert!(
        !all.is_empty(),
        "vectors file has an empty {member:?} array"
    );
    match std::env::var("FLUXIONDB_VECTOR_FILTER") {
        Ok(f) if !f.is_empty() => all
            .into_iter()
            .filter(|c| c["name"].as_str().unwrap_or("").contains(&f))
            .collect(),
        _ => all,
    }
}

/// Runs `cases` over `threads` worker threads (each case on its own fresh server). Panics at the
/// end with every failure (case name, step index, what differed) if any case failed.
pub fn run_all(cases: Vec<Value>, threads: usize, master_key: &str) {
    let total = cases.len();
    let queue: Arc<Mutex<VecDeque<(usize, Value)>>> =
        Arc::new(Mutex::new(cases.into_iter().enumerate().collect()));
    let failures: Arc<Mutex<BTreeMap<usize, String>>> = Arc::new(Mutex::new(BTreeMap::new()));
    let mut workers = Vec::new();
    for _ in 0..threads.max(1) {
        let queue = Arc::clone(&queue);
        let failures = Arc::clone(&failures);
        let master_key = master_key.to_string();
        workers.push(thread::spawn(move || loop {
            let Some((idx, case)) = queue.lock().unwrap().pop_front() else {
                break;
            };
            let name = case["name"].as_str().unwrap_or("?").to_string();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_case(&case, &master_key)
            }));
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(msg)) => Some(msg),
                Err(p) => Some(format!(
                    "panicked: {}",
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                )),
            };
            if let Some(msg) = failure {
                failures
                    .lock()
                    .unwrap()
                    .insert(idx, format!("{name}: {msg}"));
            }
        }));
    }
    for w in workers {
        w.join().expect("vector worker thread");
    }
    let failures = failures.lock().unwrap();
    eprintln!(
        "protocol vectors: {} of {total} cases passed",
        total - failures.len()
    );
    if !failures.is_empty() {
        let list: Vec<&str> = failures.values().map(|s| s.as_str()).collect();
        panic!(
            "{} of {total} vector cases failed:\n\n{}\n",
            failures.len(),
            list.join("\n\n")
        );
    }
}

fn step_summary(step: &Value) -> String {
    let mut s = step.clone();
    if let Some(o) = s.as_object_mut() {
        for k in [
            "upstream_expect",
            "upstream_stop",
            "note",
            "compare",
            "shared",
            "fixture",
        ] {
            o.remove(k);
        }
        // Keep huge raw frames short.
        if let Some(f) = o.get_mut("send_frame").and_then(|f| f.as_object_mut()) {
            if let Some(Value::String(h)) = f.get("hex") {
                let short = truncate(h, 60);
                f.insert("hex".into(), Value::String(short));
            }
        }
    }
    truncate(&s.to_string(), 600)
}

/// Matches one received frame against a step's `expect`.
pub fn check_expect(expect: &Value, got: &Frame) -> Result<(), String> {
    if let Some(close) = expect.get("$close") {
        assert_eq!(
            expect.as_object().unwrap().len(),
            1,
            "$close must stand alone: {expect}"
        );
        let want_code = close["code"].as_u64().expect("$close.code") as u16;
        let want_reason = close.get("reason").and_then(Value::as_str);
        return match got {
            Frame::Close(Some((code, reason))) => {
                if *code != want_code {
                    Err(format!(
                        "expected close {want_code}, got close {code} {reason:?}"
                    ))
                } else if want_reason.is_some_and(|r| r != reason) {
                    Err(format!(
                        "expected close reason {:?}, got {reason:?}",
                        want_reason.unwrap()
                    ))
                } else {
                    Ok(())
                }
            }
            other => Err(format!(
                "expected close {want_code} {want_reason:?}, got {}",
                other.describe()
            )),
        };
    }
    match got {
        Frame::Text(t) => {
            let actual: Value = serde_json::from_str(t)
                .map_err(|e| format!("text frame is not JSON ({e}): {}", truncate(t, 300)))?;
            match_json(expect, &actual)
                .map_err(|e| format!("{e}\n      actual frame: {}", truncate(t, 600)))
        }
        other => Err(format!(
            "expected a text frame {}, got {}",
            truncate(&expect.to_string(), 300),
            other.describe()
        )),
    }
}

fn send_frame(client: &mut Client, f: &Value) -> Result<Option<thread::JoinHandle<()>>, String> {
    let opcode = match f["opcode"].as_str() {
        Some("text") => 1u8,
        Some("binary") => 2u8,
        other => panic!("unsupported send_frame opcode {other:?}"),
    };
    if let Some(hex) = f.get("hex").and_then(Value::as_str) {
        let bytes = decode_hex(hex);
        client
            .send_raw_frame(opcode, true, &bytes)
            .map_err(|e| format!("raw frame write failed: {e}"))?;
        return Ok(None);
    }
    if let (Some(fill), Some(len)) = (
        f.get("fill").and_then(Value::as_str),
        f.get("length").and_then(Value::as_u64),
    ) {
        assert_eq!(opcode, 1, "fill frames are text frames");
        assert_eq!(fill.len(), 1, "fill must be one byte");
        return Ok(Some(
            client.send_big_text_frame(fill.as_bytes()[0], len as usize),
        ));
    }
    panic!("unsupported send_frame {f}");
}

pub fn decode_hex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn conn<'a>(conns: &'a mut BTreeMap<String, Client>, name: &str) -> Result<&'a mut Client, String> {
    conns
        .get_mut(name)
        .ok_or_else(|| format!("connection {name} is not open"))
}

/// Runs one case on a fresh server. Returns `Err("step N …: what differed")` at the first failure.
pub fn run_case(case: &Value, master_key: &str) -> Result<(), String> {
    let server_opts = case.get("server").cloned().unwrap_or(Value::Null);
    let with_data = server_opts
        .get("data_dir")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut args: Vec<String> = Vec::new();
    if let Some(f) = server_opts.get("fsync").and_then(Value::as_str) {
        args.push("--fsync".into());
        args.push(f.into());
    }
    let arg_refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let mut server = Server::start_full(master_key, &arg_refs, with_data);
    let connections = case["connections"].as_object().cloned().unwrap_or_default();
    let mut conns: BTreeMap<String, Client> = BTreeMap::new();
    let steps = case["steps"].as_array().expect("case without steps");

    let result = (|| -> Result<(), String> {
        for (i, step) in steps.iter().enumerate() {
            run_step(step, &mut server, &connections, &mut conns)
                .map_err(|e| format!("step {i} {}\n      -> {e}", step_summary(step)))?;
        }
        Ok(())
    })();
    drop(conns);
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            let tail = server.stderr_tail();
            let tail: String = tail
                .lines()
                .rev()
                .take(8)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n        ");
            if tail.is_empty() {
                Err(e)
            } else {
                Err(format!("{e}\n      server stderr (tail):\n        {tail}"))
            }
        }
    }
}

fn run_step(
    step: &Value,
    server: &mut Server,
    connections: &serde_json::Map<String, Value>,
    conns: &mut BTreeMap<String, Client>,
) -> Result<(), String> {
    if let Some(name) = step.get("open").and_then(Value::as_str) {
        let spec = connections
            .get(name)
            .ok_or_else(|| format!("case has no connection {name}"))?;
        let path = spec["path"].as_str().unwrap_or("/");
        let pq = match spec.get("query").and_then(Value::as_str) {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
        let mut client = Client::connect(server.port, &pq)?;
        let got = client.next_frame();
        let r = check_expect(&step["expect"], &got);
        conns.insert(name.to_string(), client);
        return r;
    }
    if let Some(name) = step.get("close").and_then(Value::as_str) {
        let mut client = conns
            .remove(name)
            .ok_or_else(|| format!("connection {name} is not open"))?;
        return match client.close() {
            Frame::Close(_) => Ok(()),
            other => Err(format!(
                "closing {name}: expected the server's close frame, got {}",
                other.describe()
            )),
        };
    }
    if let Some(r) = step.get("restart") {
        return restart(r, server, conns);
    }
    if let Some(c) = step.get("check_data_dir") {
        return check_data_dir(c, server);
    }
    if let Some(name) = step.get("conn").and_then(Value::as_str) {
        let client = conn(conns, name)?;
        let mut writer = None;
        if let Some(text) = step.get("send").and_then(Value::as_str) {
            client
                .try_send_text(text)
                .map_err(|e| format!("send on {name} failed: {e}"))?;
        } else if let Some(f) = step.get("send_frame") {
            writer = send_frame(client, f)?;
        }
        let r = match step.get("expect") {
            Some(expect) => {
                let got = client.next_frame();
                check_expect(expect, &got)
            }
            None => Ok(()),
        };
        if let Some(w) = writer {
            // The writer ends once the frame is written or the socket fails; make sure it does
            // not outlive the case by shutting the socket down first.
            let _ = client.stream().shutdown(std::net::Shutdown::Both);
            let _ = w.join();
        }
        return r;
    }
    panic!("unsupported step {step}");
}

fn restart(
    r: &Value,
    server: &mut Server,
    conns: &mut BTreeMap<String, Client>,
) -> Result<(), String> {
    let signal = r["signal"].as_str().expect("restart.signal");
    match signal {
        "SIGKILL" => server.kill9(),
        "SIGTERM" => {
            server.send_sigterm();
            if let Some(expect_close) = r.get("expect_close").and_then(Value::as_object) {
                for (name, close) in expect_close {
                    let client = conn(conns, name)?;
                    let got = client.next_frame();
                    check_expect(&serde_json::json!({ "$close": close }), &got)
                        .map_err(|e| format!("on SIGTERM, connection {name}: {e}"))?;
                }
            }
            let status = server
                .wait_exit(Duration::from_secs(10))
                .ok_or_else(|| "server did not exit within 10 s of SIGTERM".to_string())?;
            if let Some(code) = r.get("expect_exit_code").and_then(Value::as_i64) {
                if status.code() != Some(code as i32) {
                    return Err(format!(
                        "exit status after SIGTERM: expected {code}, got {status:?}"
                    ));
                }
            }
        }
        other => panic!("unsupported restart signal {other}"),
    }
    conns.clear();
    match r.get("master_key").and_then(Value::as_str) {
        Some(k) => server.restart_with_secret(k),
        None => server.restart(),
    }
    Ok(())
}

fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => walk_files(&p, out),
                Ok(_) => out.push(p),
                Err(_) => {}
            }
        }
    }
}

fn check_data_dir(c: &Value, server: &Server) -> Result<(), String> {
    let dir = server
        .data_dir()
        .ok_or("check_data_dir on a server without a data folder")?;
    if let Some(needle) = c.get("no_file_contains").and_then(Value::as_str) {
        let mut files = Vec::new();
        walk_files(dir, &mut files);
        for f in files {
            let bytes = std::fs::read(&f).map_err(|e| format!("read {}: {e}", f.display()))?;
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                return Err(format!("{} contains {needle:?}", f.display()));
            }
        }
    }
    if c.get("nothing_outside").and_then(Value::as_bool) == Some(true) {
        let parent = server.data_parent().unwrap();
        let mut entries: Vec<String> = std::fs::read_dir(parent)
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        if entries != ["data"] {
            return Err(format!(
                "the data folder's parent holds {entries:?}, expected only [\"data\"]"
            ));
        }
    }
    Ok(())
}
