//! A replica that cannot simply follow. Its next segment was pruned (`--backup-keep`) while it
//! was down: it reloads from the newest restore point instead of retrying forever, ends up with
//! exactly the primary's data, counts the reload in `/metrics`, stays ready, follows on, and
//! keeps the reloaded copy across a restart. Its bucket is unreachable: `/metrics` shows the
//! lag growing, `/readyz` stays ready (it still serves what it has), and it catches up after.

use crate::backup::{metric, now_ms, primary, Bucket, WAIT};
use crate::backup_replica::{insert, replica};
use crate::backup_replica_history::caught_up;
use crate::backup_replica_live::assert_ready;
use crate::common::{wait_until, Client, Server, TempDir};
use crate::subscriptions::{push, sub};
use serde_json::{json, Value};
use std::path::Path;

/// Everything a client can read that the reload must bring over.
fn state(c: &mut Client) -> Value {
    let cols = c.ok("cols", json!({}));
    let mut out = json!({ "cols": cols });
    for col in ["m", "n", "kv-only", "gone"] {
        out[col] = json!({
            "records": c.ok("qry", json!({"col": col, "doc": "/.*/", "ts": i64::MAX})),
            "t": c.ok("qdoc", json!({"col": col, "doc": "t", "to": 1_000_000})),
            "values": c.ok("gvalues", json!({"col": col, "key": "/.*/"})),
            "retention": c.ok("gret", json!({"col": col})),
        });
    }
    out
}

/// The first bucket segment the replica in `dir` has not applied.
fn replica_next(dir: &Path) -> u64 {
    let text = std::fs::read(dir.join("replica.json")).unwrap();
    let v: Value = serde_json::from_slice(&text).unwrap();
    v["next_segment"].as_u64().unwrap()
}

fn oldest_segment(bucket: &Bucket) -> u64 {
    bucket
        .objects("wal")
        .first()
        .map_or(0, |w| u64::from_str_radix(&w[..16], 16).unwrap())
}

/// A primary (`--backup-keep 1s`) and the folder of a replica that followed it, then was
/// killed; the primary wrote on until the segment the replica needs next was pruned. Returns
/// the primary, the segment, and what a client reads from the primary then.
fn pruned_while_down(bucket: &Bucket, dir: &TempDir) -> (Server, u64, Value) {
    let p = primary(bucket, &["--backup-keep", "1s"]);
    assert!(wait_until(WAIT, || bucket.manifest().is_some()));
    let mut pc = p.master();
    insert(&mut pc, "t", 1, 5);
    pc.ok(
        "ins",
        json!([{"col":"gone","doc":"x","ts":1,"data":"later dropped"}]),
    );
    pc.ok("sret", json!({"col":"gone","max_records":3}));
    bucket.wait_uploaded(now_ms() - 60_000, &p);
    let mut r = replica(bucket, dir.data());
    let mut rc = r.master();
    assert!(wait_until(WAIT, || state(&mut rc) == state(&mut pc)));
    r.kill9();
    let next = replica_next(dir.data());

    // While it is down the primary writes on, and --backup-keep prunes what it would need.
    pc.ok("dcol", json!({"col":"gone"}));
    pc.ok("drrng", json!({"col":"m","doc":"t","fromTs":1,"toTs":2}));
    pc.ok("sval", json!({"col":"kv-only","key":"k","value":"v \"q\""}));
    pc.ok("sret", json!({"col":"n","max_age":86_400_000}));
    let mut ts = 100;
    assert!(
        wait_until(WAIT, || {
            ts += 1;
            insert(&mut pc, "t", ts, 1);
            pc.ok("ins", json!([{"col":"n","doc":"t","ts":ts,"data":"n"}]));
            oldest_segment(bucket) > next && bucket.objects("points").len() >= 2
        }),
        "segment {next} was never pruned: {:?}",
        bucket.objects("wal")
    );
    let wanted = state(&mut pc);
    (p, next, wanted)
}

#[test]
fn a_replica_whose_next_segment_was_pruned_reloads_from_the_newest_point() {
    let bucket = Bucket::new();
    let dir = TempDir::new();
    let (p, next, wanted) = pruned_while_down(&bucket, &dir);
    let mut pc = p.master();

    let r = replica(&bucket, dir.data());
    let mut rc = r.master();
    assert!(
        wait_until(WAIT, || state(&mut rc) == wanted),
        "the replica did not reload: {}",
        r.stderr_tail()
    );
    // (Counted once the reload is done, just after its data became visible.)
    assert!(wait_until(WAIT, || metric(
        r.port,
        "fluxiondb_replica_reloads_total"
    ) == Some(1.0)));
    assert!(wait_until(WAIT, || caught_up(r.port)));
    assert_ready(r.port);
    assert!(replica_next(dir.data()) > next);

    // It follows on from the point, and its copy (the reload is in its own log) survives.
    insert(&mut pc, "t", 10_000, 1);
    let wanted = state(&mut pc);
    assert!(wait_until(WAIT, || state(&mut rc) == wanted));
    let mut r = r;
    r.kill9();
    let r = replica(&bucket, dir.data());
    let mut rc = r.master();
    assert!(wait_until(WAIT, || state(&mut rc) == wanted));
    // (Shown once its follower has polled the bucket.)
    assert!(wait_until(WAIT, || metric(
        r.port,
        "fluxiondb_replica_reloads_total"
    )
    .is_some()));
    assert_eq!(metric(r.port, "fluxiondb_replica_reloads_total"), Some(0.0));
}

#[test]
fn a_replica_that_cannot_reach_the_bucket_shows_its_lag_and_stays_ready() {
    let bucket = Bucket::new();
    let dir = TempDir::new();
    let p = primary(&bucket, &[]);
    assert!(wait_until(WAIT, || bucket.manifest().is_some()));
    let mut pc = p.master();
    insert(&mut pc, "t", 1, 3);
    bucket.wait_uploaded(now_ms() - 60_000, &p);
    let r = replica(&bucket, dir.data());
    let mut rc = r.master();
    assert!(wait_until(WAIT, || state(&mut rc) == state(&mut pc)));
    assert!(wait_until(WAIT, || caught_up(r.port)));

    // The store fails for both: its folder is moved away and a plain file takes its place.
    let away = std::path::PathBuf::from(format!("{}.away", bucket.path().display()));
    std::fs::rename(bucket.path(), &away).unwrap();
    std::fs::write(bucket.path(), b"not a folder").unwrap();
    insert(&mut pc, "t", 10, 1);
    assert!(
        wait_until(WAIT, || metric(r.port, "fluxiondb_replica_lag_seconds")
            .is_some_and(|lag| lag >= 3.0)),
        "the replica's lag does not show: {}",
        r.stderr_tail()
    );
    assert!(wait_until(WAIT, || r
        .stderr_tail()
        .contains("replica: following")));
    assert_ready(r.port);
    assert_eq!(
        rc.ok("qdoc", json!({"col":"m","doc":"t","to":1_000_000}))["records"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    // Back: it catches up and says so.
    std::fs::remove_file(bucket.path()).unwrap();
    std::fs::rename(&away, bucket.path()).unwrap();
    let wanted = state(&mut pc);
    assert!(wait_until(WAIT, || state(&mut rc) == wanted));
    assert!(wait_until(WAIT, || caught_up(r.port)));
    assert!(wait_until(WAIT, || r.stderr_tail().contains("again after")));
    assert_ready(r.port);
}

#[test]
fn a_reload_reaches_the_replicas_subscribers_as_dcol_then_the_records() {
    let bucket = Bucket::new();
    let dir = TempDir::new();
    let (mut p, _, wanted) = pruned_while_down(&bucket, &dir);
    p.sigterm();
    // The replica starts while its bucket is away (an empty folder in its place), so that a
    // subscriber is in place before the reload.
    let away = std::path::PathBuf::from(format!("{}.away", bucket.path().display()));
    std::fs::rename(bucket.path(), &away).unwrap();
    std::fs::create_dir(bucket.path()).unwrap();
    let r = replica(&bucket, dir.data());
    let mut s = r.master();
    s.set_read_timeout(WAIT);
    let (_, seq) = sub(&mut s, json!({"col":"m"}));
    assert_eq!(
        s.ok("qdoc", json!({"col":"m","doc":"t","to":1_000_000}))["records"]
            .as_array()
            .map(Vec::len),
        Some(5),
        "the replica did not start from its own copy"
    );
    std::fs::remove_dir(bucket.path()).unwrap();
    std::fs::rename(&away, bucket.path()).unwrap();

    assert_eq!(
        push(&mut s),
        json!({"type":"del","sub":"s1","col":"m","seq":seq + 1})
    );
    let records: Vec<Value> = wanted["m"]["t"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!({"doc":"t","ts":r["ts"],"data":r["data"]}))
        .collect();
    // One insert entry (one push) per 1,000 records.
    let mut pushed: Vec<Value> = Vec::new();
    for (i, chunk) in records.chunks(1000).enumerate() {
        let p = push(&mut s);
        assert_eq!(
            p,
            json!({"type":"rec","sub":"s1","col":"m","seq":seq + 2 + i as u64,"records":chunk})
        );
        pushed.extend_from_slice(chunk);
    }
    assert_eq!(pushed.len(), records.len());
    let mut rc = r.master();
    assert!(wait_until(WAIT, || state(&mut rc) == wanted));
    assert!(wait_until(WAIT, || metric(
        r.port,
        "fluxiondb_replica_reloads_total"
    ) == Some(1.0)));
}
