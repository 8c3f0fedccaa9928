//! Read replicas and promotion, end to end: a primary backs up to a real `file://` store, a
//! replica (the binary, `--replica-of`) follows it, refuses writes, restarts from its local
//! copy, and, promoted with SIGUSR1 while the old primary still runs, takes the bucket over:
//! the old primary's next conditional manifest write fails its precondition and it fences
//! itself.

use crate::backup::{metric, now_ms, primary, records, restore, serve, Bucket, WAIT};
use crate::common::{form_encode, wait_until, Client, Frame, Server, TempDir};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const READ_ONLY: &str = "read-only replica: writes go to the primary";
const FENCED: &str = "fenced: a newer primary took over; writes go to it";

pub fn replica(bucket: &Bucket, dir: &Path) -> Server {
    replica_checkpointing(bucket, dir, "1")
}

/// A replica polling every 100 ms, checkpointing every `seconds`.
pub fn replica_checkpointing(bucket: &Bucket, dir: &Path, seconds: &str) -> Server {
    let (loc, d) = (bucket.location(), dir.display().to_string());
    Server::start(&[
        "--replica-of",
        &loc,
        "--poll-interval",
        "100ms",
        "--backup-interval",
        "100ms",
        "--data",
        &d,
        "-f",
        seconds,
    ])
}

pub fn insert(c: &mut Client, doc: &str, from: i64, n: i64) {
    let recs: Vec<Value> = (from..from + n)
        .map(|ts| json!({"col": "m", "doc": doc, "ts": ts, "data": format!("v{ts}")}))
        .collect();
    c.ok("ins", Value::Array(recs));
}

pub fn count(c: &mut Client, doc: &str) -> usize {
    records(c, "m", doc)["records"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Asks the replica `r` to promote itself (SIGUSR1).
pub fn promote(r: &Server) {
    let pid = r.pid().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-USR1", &pid])
        .status()
        .unwrap()
        .success());
}

pub fn key_works(port: u16, key: &str) -> bool {
    Client::connect(port, &format!("/?api-key={}", form_encode(key)))
        .is_ok_and(|mut c| matches!(c.next_frame(), Frame::Text(t) if t.contains("ready")))
}

#[test]
fn a_replica_follows_the_primary_refuses_writes_and_restarts_from_its_copy() {
    let bucket = Bucket::new();
    let p = primary(&bucket, &[]);
    // Writes made before the backup's first restore point land in it, not in a segment that
    // `wait_uploaded` could see: write once the bucket is set up.
    assert!(wait_until(WAIT, || bucket.manifest().is_some()));
    let mut pc = p.master();
    pc.ok(
        "keys",
        json!({"action":"add","key":"reader","scope":"readonly"}),
    );
    insert(&mut pc, "t", 1, 10);
    bucket.wait_uploaded(now_ms() - 60_000, &p);

    let dir = TempDir::new();
    let mut r = replica(&bucket, dir.data());
    let mut rc = r.master();
    assert!(wait_until(WAIT, || count(&mut rc, "t") == 10));
    insert(&mut pc, "t", 100, 5);
    assert!(
        wait_until(WAIT, || count(&mut rc, "t") == 15),
        "the replica did not apply the new segment"
    );
    assert!(
        key_works(r.port, "reader"),
        "the primary's key is not known"
    );
    pc.ok(
        "keys",
        json!({"action":"add","key":"late","scope":"readonly"}),
    );
    assert!(wait_until(WAIT, || key_works(r.port, "late")));

    for (ty, payload) in [
        ("ins", json!([{"col":"m","doc":"t","ts":7,"data":"x"}])),
        ("sval", json!({"col":"m","key":"k","value":"v"})),
        ("dcol", json!({"col":"nothing-here"})),
        ("drec", json!({"col":"m","doc":"t","ts":1})),
        ("sret", json!({"col":"m","max_records":1})),
        (
            "keys",
            json!({"action":"add","key":"k2","scope":"readonly"}),
        ),
        ("keys", json!({"action":"remove","key":"reader"})),
    ] {
        assert_eq!(rc.err(ty, payload), READ_ONLY, "{ty}");
    }
    assert_eq!(count(&mut rc, "t"), 15);
    assert_eq!(rc.ok("keys", json!({"action":"list"}))["status"], "ok");
    let (_, body) = crate::backup::http_get(r.port, "/readyz");
    assert!(!body.is_empty());

    // Restarted, it keeps its copy and follows on from where it was.
    r.kill9();
    insert(&mut pc, "t", 200, 5);
    let r = replica(&bucket, dir.data());
    assert!(wait_until(WAIT, || r
        .stderr_tail()
        .contains("restarting from the local copy")));
    let mut rc = r.master();
    assert!(wait_until(WAIT, || count(&mut rc, "t") == 20));
    assert_eq!(rc.err("ins", json!([])), READ_ONLY);
}

#[test]
fn a_promoted_replica_takes_over_and_the_old_primary_fences_itself() {
    let bucket = Bucket::new();
    let p = primary(&bucket, &[]);
    // Writes made before the backup's first restore point land in it, not in a segment that
    // `wait_uploaded` could see: write once the bucket is set up.
    assert!(wait_until(WAIT, || bucket.manifest().is_some()));
    let mut pc = p.master();
    insert(&mut pc, "t", 1, 10);
    bucket.wait_uploaded(now_ms() - 60_000, &p);
    let dir = TempDir::new();
    let r = replica(&bucket, dir.data());
    let mut rc = r.master();
    assert!(wait_until(WAIT, || count(&mut rc, "t") == 10));

    promote(&r);
    assert!(
        wait_until(WAIT, || rc
            .call(
                "ins",
                json!([{"col":"m","doc":"new","ts":1,"data":"from the new primary"}])
            )
            .get("error")
            .is_none()),
        "the promoted replica does not take writes: {}",
        r.stderr_tail()
    );
    assert_eq!(bucket.manifest().unwrap()["generation"], 2);

    // The old primary's next manifest write fails its precondition: it stops and refuses.
    let mut ts = 1000;
    assert!(
        wait_until(WAIT, || {
            ts += 1;
            let answer = pc.call("ins", json!([{"col":"m","doc":"old","ts":ts,"data":"x"}]));
            answer.get("error") == Some(&json!(FENCED))
        }),
        "the old primary still takes writes: {}",
        p.stderr_tail()
    );
    // (The log arrives through a pipe: waited for, not raced.)
    assert!(
        wait_until(WAIT, || {
            let log = p.stderr_tail();
            log.contains("failed its precondition")
                && log.contains(
                    "was taken over by a promoted replica: the manifest names generation 2, \
                     this server wrote generation 1",
                )
        }),
        "{}",
        p.stderr_tail()
    );
    assert_eq!(metric(p.port, "fluxiondb_backup_fenced"), Some(1.0));
    assert_eq!(
        pc.err("sval", json!({"col":"m","key":"k","value":"v"})),
        FENCED
    );
    // Not ready for a primary's traffic any more (the health check fails), though reads are
    // still served; the log says what to do.
    let reason = crate::backup_fencing::not_ready_text(&bucket);
    assert_eq!(
        crate::backup::http_get(p.port, "/readyz"),
        (503, format!("{reason}\n"))
    );
    let (code, text) = crate::backup_fencing::healthcheck(p.port);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(count(&mut pc, "t"), 10);
    let log = p.stderr_tail();
    assert!(log.contains("give it a new --backup location"), "{log}");
    let uploads = metric(p.port, "fluxiondb_backup_uploads_total");

    // The new primary's writes are what a restore gets.
    let since = now_ms();
    insert(&mut rc, "new", 2, 3);
    bucket.wait_uploaded(since, &r);
    assert_eq!(metric(p.port, "fluxiondb_backup_uploads_total"), uploads);
    let target = TempDir::new();
    let (ok, _, err) = restore(&bucket, target.data(), None);
    assert!(ok, "{err}");
    let s = serve(target.data());
    let mut sc = s.master();
    assert_eq!(count(&mut sc, "t"), 10);
    assert_eq!(count(&mut sc, "new"), 4);
    assert_eq!(count(&mut sc, "old"), 0);
}

/// `cargo test --test it backup_replica::measure_replica_lag -- --ignored --nocapture`: a
/// writer inserts one record every 50 ms for 20 s into a primary (`--backup-interval 1s`); the
/// replica (`--poll-interval 1s`) is polled every 10 ms; prints the p50 / p99 / max of write
/// acknowledged → visible on the replica. A figure, never asserted.
#[test]
#[ignore = "a measurement (20 s); prints figures"]
fn measure_replica_lag() {
    let bucket = Bucket::new();
    let p =
        Server::with_data_dir_args(&["--backup", &bucket.location(), "--backup-interval", "1s"]);
    let mut pc = p.master();
    insert(&mut pc, "t", 1, 1);
    bucket.wait_uploaded(now_ms() - 60_000, &p);
    let dir = TempDir::new();
    let (loc, d) = (bucket.location(), dir.data().display().to_string());
    let r = Server::start(&["--replica-of", &loc, "--poll-interval", "1s", "--data", &d]);
    let mut rc = r.master();
    let latest = |rc: &mut Client| {
        rc.ok("qry", json!({"col":"m","ts":1_000_000_000}))["records"]["t"]["ts"]
            .as_i64()
            .unwrap_or(0)
    };
    let started = std::time::Instant::now();
    let mut acked: Vec<(i64, std::time::Instant)> = Vec::new();
    let mut lags = Vec::new();
    let mut next_write = started;
    let mut ts = 1;
    while lags.len() < acked.len() || started.elapsed() < std::time::Duration::from_secs(20) {
        let now = std::time::Instant::now();
        if now >= next_write && started.elapsed() < std::time::Duration::from_secs(20) {
            ts += 1;
            insert(&mut pc, "t", ts, 1);
            acked.push((ts, std::time::Instant::now()));
            next_write = now + std::time::Duration::from_millis(50);
        }
        let seen = latest(&mut rc);
        while lags.len() < acked.len() && acked[lags.len()].0 <= seen {
            lags.push(acked[lags.len()].1.elapsed().as_secs_f64());
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the replica stopped following"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    lags.sort_by(f64::total_cmp);
    let at = |q: f64| lags[((lags.len() - 1) as f64 * q) as usize];
    println!(
        "replica lag over {} writes (interval 1 s, poll 1 s): p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        lags.len(),
        at(0.5),
        at(0.99),
        lags[lags.len() - 1]
    );
}
