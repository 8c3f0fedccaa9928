//! A replica and the history it follows. A location started over (emptied, then a new primary
//! on a new data folder) holds another history: the replica says so (not ready until it has
//! reloaded), reloads from the new history's newest restore point and follows that one, instead
//! of serving its old copy as if caught up (and a promotion then takes over the new history,
//! its primary's writes included).
//! A promotion of another replica continues the history and is followed as before, restarts
//! included. And the lag gauge tells how far behind the replica is when the primary cannot
//! upload but goes on acknowledging writes.

use crate::backup::{http_get, metric, now_ms, primary, primary_in, restore, serve, Bucket, WAIT};
use crate::backup_replica::{count, insert, promote, replica};
use crate::backup_replica_live::assert_ready;
use crate::common::{wait_until, Client, Server, TempDir};
use serde_json::{json, Value};

/// The replica's lag gauge, once shown.
fn lag(port: u16) -> Option<f64> {
    metric(port, "fluxiondb_replica_lag_seconds")
}

/// A caught-up replica's lag: its healthy value is up to about one backup interval plus one
/// poll interval (100 ms each here); generous for two loaded cores.
pub fn caught_up(port: u16) -> bool {
    lag(port).is_some_and(|l| l < 2.0)
}

fn state(c: &mut Client) -> Value {
    json!({
        "cols": c.ok("cols", json!({})),
        "old": count(c, "old"),
        "new": count(c, "new"),
        "records": c.ok("qry", json!({"col": "m", "doc": "/.*/", "ts": i64::MAX})),
    })
}

/// Writes `n` records to `doc` in rounds far enough apart to land in several segments.
fn insert_in_segments(c: &mut Client, doc: &str, from: i64, n: i64) {
    for ts in from..from + n {
        insert(c, doc, ts, 1);
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
}

#[test]
fn a_replica_of_a_location_started_over_reloads_the_new_history_and_follows_it() {
    let bucket = Bucket::new();
    let mut p = primary(&bucket, &[]);
    assert!(wait_until(WAIT, || bucket.manifest().is_some()));
    let mut pc = p.master();
    insert_in_segments(&mut pc, "old", 1, 8);
    bucket.wait_uploaded(now_ms() - 60_000, &p);
    let dir = TempDir::new();
    let r = replica(&bucket, dir.data());
    let mut rc = r.master();
    assert!(wait_until(WAIT, || count(&mut rc, "old") == 8));
    drop(pc);
    p.sigterm();

    // The location is started over: emptied, then a primary on a new data folder writes
    // other data there.
    for entry in std::fs::read_dir(bucket.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            std::fs::remove_dir_all(path).unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }
    // Its first manifest arrives a round before its first restore point: with a round an hour
    // away, the replica knows its copy is another history's and cannot reload yet.
    let d2 = TempDir::new();
    let mut p2 = primary_in(d2.data(), &bucket, "1h");
    assert!(wait_until(WAIT, || bucket.manifest().is_some()));
    assert!(
        wait_until(WAIT, || metric(r.port, "fluxiondb_replica_diverged")
            == Some(1.0)),
        "{}",
        r.stderr_tail()
    );
    let (status, body) = http_get(r.port, "/readyz");
    assert_eq!(
        (status, body.trim()),
        (
            503,
            format!(
                "replica out of date: {} holds another history than this replica's copy; reloading from it",
                bucket.location()
            )
            .as_str()
        )
    );
    assert!(wait_until(WAIT, || r
        .stderr_tail()
        .contains("the backup holds no restore point yet")));
    assert_eq!(count(&mut rc, "old"), 8);
    // Stopped, it uploads its first point; restarted, it backs up every 100 ms.
    p2.sigterm();
    let p2 = primary_in(d2.data(), &bucket, "100ms");
    let mut p2c = p2.master();
    insert(&mut p2c, "new", 1, 3);
    bucket.wait_uploaded(now_ms() - 60_000, &p2);
    let wanted = state(&mut p2c);
    assert!(
        wait_until(WAIT, || state(&mut rc) == wanted),
        "the replica does not serve the new history: {}\n{}",
        state(&mut rc),
        r.stderr_tail()
    );
    assert_eq!(count(&mut rc, "old"), 0);
    assert!(wait_until(WAIT, || r
        .stderr_tail()
        .contains("no longer holds the history this replica copied")));
    assert!(wait_until(WAIT, || metric(
        r.port,
        "fluxiondb_replica_reloads_total"
    ) == Some(1.0)));
    assert_eq!(metric(r.port, "fluxiondb_replica_diverged"), Some(0.0));
    assert!(wait_until(WAIT, || caught_up(r.port)));
    assert_ready(r.port);

    // It follows the new primary on, segment by segment.
    insert(&mut p2c, "new", 100, 2);
    let wanted = state(&mut p2c);
    assert!(wait_until(WAIT, || state(&mut rc) == wanted));

    // Promoted, it takes the new history over: what the new primary uploaded is in it.
    promote(&r);
    assert!(
        wait_until(WAIT, || rc
            .call(
                "ins",
                json!([{"col":"m","doc":"new","ts":1000,"data":"after the promotion"}])
            )
            .get("error")
            .is_none()),
        "the promoted replica does not take writes: {}",
        r.stderr_tail()
    );
    let since = now_ms() - 1;
    insert(&mut rc, "new", 1001, 1);
    bucket.wait_uploaded(since, &r);
    let target = TempDir::new();
    let (ok, _, err) = restore(&bucket, target.data(), None);
    assert!(ok, "{err}");
    let s = serve(target.data());
    let mut sc = s.master();
    assert_eq!((count(&mut sc, "new"), count(&mut sc, "old")), (7, 0));
}

#[test]
fn a_replica_follows_another_replicas_promotion_without_reloading() {
    let bucket = Bucket::new();
    let p = primary(&bucket, &[]);
    assert!(wait_until(WAIT, || bucket.manifest().is_some()));
    let mut pc = p.master();
    insert_in_segments(&mut pc, "old", 1, 4);
    bucket.wait_uploaded(now_ms() - 60_000, &p);
    let (d1, d2) = (TempDir::new(), TempDir::new());
    let r1 = replica(&bucket, d1.data());
    let mut r2 = replica(&bucket, d2.data());
    let (mut c1, mut c2) = (r1.master(), r2.master());
    assert!(wait_until(WAIT, || count(&mut c1, "old") == 4
        && count(&mut c2, "old") == 4));

    promote(&r1);
    assert!(
        wait_until(WAIT, || c1
            .call("ins", json!([{"col":"m","doc":"new","ts":1,"data":"x"}]))
            .get("error")
            .is_none()),
        "the promoted replica does not take writes: {}",
        r1.stderr_tail()
    );
    assert_eq!(bucket.manifest().unwrap()["generation"], 2);
    insert(&mut c1, "new", 2, 2);
    assert!(
        wait_until(WAIT, || count(&mut c2, "new") == 3),
        "the other replica does not follow the promoted one: {}",
        r2.stderr_tail()
    );
    // Restarted, it still takes the promoted primary's history for the one it copied.
    r2.kill9();
    insert(&mut c1, "new", 10, 2);
    let r2 = replica(&bucket, d2.data());
    let mut c2 = r2.master();
    assert!(wait_until(WAIT, || count(&mut c2, "new") == 5));
    assert_eq!(count(&mut c2, "old"), 4);
    assert!(wait_until(WAIT, || caught_up(r2.port)));
    assert_eq!(
        metric(r2.port, "fluxiondb_replica_reloads_total"),
        Some(0.0)
    );
    assert_eq!(metric(r2.port, "fluxiondb_replica_diverged"), Some(0.0));
    assert!(!r2.stderr_tail().contains("no longer holds"));
    assert_ready(r2.port);
}

#[test]
fn the_lag_gauge_grows_while_the_primary_cannot_upload_but_acknowledges_writes() {
    let bucket = Bucket::new();
    // The primary reaches the bucket through a symbolic link the test breaks (for it only).
    let links = tempfile::tempdir().unwrap();
    let link = links.path().join("location");
    std::os::unix::fs::symlink(bucket.path(), &link).unwrap();
    let location = format!("file://{}", link.display());
    let p = Server::with_data_dir_args(&[
        "--backup",
        &location,
        "--backup-interval",
        "200ms",
        "-f",
        "1",
    ]);
    assert!(wait_until(WAIT, || bucket.manifest().is_some()));
    let mut pc = p.master();
    insert(&mut pc, "t", 1, 3);
    bucket.wait_uploaded(now_ms() - 60_000, &p);
    let dir = TempDir::new();
    let r = replica(&bucket, dir.data());
    let mut rc = r.master();
    assert!(wait_until(WAIT, || count(&mut rc, "t") == 3));
    assert!(
        wait_until(WAIT, || caught_up(r.port)),
        "lag {:?}",
        lag(r.port)
    );

    // The primary's uploads fail; it goes on acknowledging writes the replica never gets.
    std::fs::remove_file(&link).unwrap();
    std::fs::write(&link, b"not a folder").unwrap();
    let mut ts = 100;
    assert!(
        wait_until(WAIT, || {
            ts += 1;
            insert(&mut pc, "t", ts, 1);
            lag(r.port).is_some_and(|l| l >= 3.0)
        }),
        "the replica's lag does not grow past the backup interval: {:?}\n{}",
        lag(r.port),
        r.stderr_tail()
    );
    assert_eq!(count(&mut rc, "t"), 3);
    // It serves what it has, and is ready: behind, not wrong.
    assert_ready(r.port);
    assert_eq!(http_get(r.port, "/readyz").0, 200);

    // The primary uploads again: the replica catches up and its lag falls back.
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(bucket.path(), &link).unwrap();
    let all = 3 + (ts - 100) as usize;
    assert!(
        wait_until(WAIT, || count(&mut rc, "t") == all),
        "{}",
        r.stderr_tail()
    );
    assert!(
        wait_until(WAIT, || caught_up(r.port)),
        "lag {:?}",
        lag(r.port)
    );
}
