//! Primaries fenced at start, end to end (real binaries, a real `file://` store): a second
//! server given a running primary's location, and a folder restored from a location and
//! started on it. Each refuses writes, still serves reads, answers `/readyz` 503 with the
//! location (so `fluxiondb healthcheck` fails) and logs who holds the location and what to do.
//! The fence after a real promotion is in `backup_replica.rs`.

use crate::backup::{
    http_get, metric, now_ms, primary, primary_in, records, restore, Bucket, WAIT,
};
use crate::common::{wait_until, Server, TempDir};
use serde_json::json;

const FENCED: &str = "fenced: a newer primary took over; writes go to it";

/// `fluxiondb healthcheck --port PORT`: its exit code and what it printed.
pub fn healthcheck(port: u16) -> (Option<i32>, String) {
    let port = port.to_string();
    crate::lifecycle::healthcheck(&[], &["--host", "127.0.0.1", "--port", &port])
}

/// The readiness answer of a server fenced off `bucket`.
pub fn not_ready_text(bucket: &Bucket) -> String {
    format!(
        "fenced: the backup location {} belongs to another primary",
        bucket.location()
    )
}

/// Waits until `s` is fenced, then checks what it answers: `/readyz`, the health check, a
/// write; the log names `cause` and the remedies, and blames no promotion.
pub fn assert_fenced(s: &Server, bucket: &Bucket, cause: &[&str]) {
    assert!(
        wait_until(WAIT, || metric(s.port, "fluxiondb_backup_fenced")
            == Some(1.0)),
        "not fenced: {}",
        s.stderr_tail()
    );
    let reason = not_ready_text(bucket);
    assert_eq!(http_get(s.port, "/readyz"), (503, format!("{reason}\n")));
    let (code, text) = healthcheck(s.port);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("not ready: 503 {reason}")), "{text}");
    let mut c = s.master();
    assert_eq!(
        c.err("ins", json!([{"col":"m","doc":"t","ts":99,"data":"x"}])),
        FENCED
    );
    let log = s.stderr_tail();
    for said in cause.iter().chain(&[
        "give it a new --backup location",
        &format!("--replica-of {}", bucket.location()) as &str,
        "reads are still served",
    ]) {
        assert!(log.contains(said), "{said:?} is not in the log:\n{log}");
    }
    assert!(!log.contains("a replica was promoted"), "{log}");
}

#[test]
fn a_primary_fenced_at_start_is_not_ready_and_says_who_holds_the_location() {
    let bucket = Bucket::new();
    let first = primary(&bucket, &[]);
    assert!(wait_until(WAIT, || bucket.manifest().is_some()));
    let mut fc = first.master();
    fc.ok(
        "ins",
        json!([{"col":"m","doc":"t","ts":1,"data":"a"},{"col":"m","doc":"t","ts":2,"data":"b"}]),
    );
    bucket.wait_uploaded(now_ms() - 60_000, &first);
    let owner = bucket.manifest().unwrap()["owner"]
        .as_str()
        .unwrap()
        .to_owned();
    let started_by_other = format!(
        "belongs to another primary (the server that started it: generation 1, owner {owner})"
    );

    // A second server, its own data folder, the same location.
    let second = primary(&bucket, &[]);
    assert_fenced(
        &second,
        &bucket,
        &[&started_by_other, "this data folder never backed up there"],
    );
    // The first one is untouched.
    assert_eq!(http_get(first.port, "/readyz"), (200, "ready\n".into()));
    let since = now_ms();
    fc.ok("ins", json!([{"col":"m","doc":"t","ts":3,"data":"c"}]));
    bucket.wait_uploaded(since, &first);
    drop(fc);
    drop(first);

    // A folder restored from the location and started on it: reads are still served.
    let target = TempDir::new();
    let (ok, _, err) = restore(&bucket, target.data(), None);
    assert!(ok, "{err}");
    let restored = primary_in(target.data(), &bucket, "100ms");
    assert_fenced(
        &restored,
        &bucket,
        &[&started_by_other, "this data folder never backed up there"],
    );
    let mut rc = restored.master();
    assert_eq!(
        records(&mut rc, "m", "t")["records"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}
