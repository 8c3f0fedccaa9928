//! Persistence end to end (issue 3): every mutating message type survives a restart, deletes stay
//! deleted, a clean shutdown snapshots, API keys persist without the master key, the folder is
//! locked against a second server, and an unusable folder is a clear start-up error.

use crate::common::{Client, Server, MASTER};
use serde_json::{json, Value};
use std::fs;
use std::time::Duration;

/// Every mutation type, applied on a fresh persistent server.
fn mutate_everything(c: &mut Client) {
    let ins = |col: &str, doc: &str, ts: i64, data: &str| json!([{"col": col, "doc": doc, "ts": ts, "data": data}]);
    c.ok(
        "ins",
        json!([
            {"col":"s","doc":"a","ts":1,"data":"a1"},{"col":"s","doc":"a","ts":2,"data":"a2"},
            {"col":"s","doc":"a","ts":3,"data":"a3"},{"col":"s","doc":"a","ts":4,"data":"a4"},
            {"col":"s","doc":"b","ts":1,"data":"b1"},{"col":"s","doc":"c","ts":1,"data":"c1"},
            {"col":"other","doc":"c","ts":9,"data":"c9"},{"col":"gone","doc":"x","ts":1,"data":"x"}
        ]),
    );
    c.ok("ins", ins("s", "a", 2, "a2-replaced"));
    c.ok("drec", json!({"col":"s","doc":"a","ts":1}));
    c.ok(
        "dmrec",
        json!([{"col":"s","doc":"b","ts":1},{"col":"s","doc":"a","ts":4}]),
    );
    c.ok("ins", ins("s", "r", 10, "r10"));
    c.ok("ins", json!([{"col":"s","doc":"r","ts":11,"data":"r11"},{"col":"s","doc":"r","ts":20,"data":"r20"}]));
    c.ok("drrng", json!({"col":"s","doc":"r","fromTs":10,"toTs":11}));
    c.ok("ddoc", json!({"col":"s","doc":"c"}));
    c.ok("ddoc", json!({"doc":"c"}));
    c.ok("dcol", json!({"col":"gone"}));
    c.ok("sval", json!({"col":"kv","key":"k1","value":"v1"}));
    c.ok("sval", json!({"col":"kv","key":"k2","value":"v2"}));
    c.ok("sval", json!({"col":"kv","key":"k1","value":"v1b"}));
    c.ok("rval", json!({"col":"kv","key":"k2"}));
    c.ok(
        "keys",
        json!({"action":"add","key":"ro-key","scope":"readonly"}),
    );
    c.ok(
        "keys",
        json!({"action":"add","key":"tmp-key","scope":"readonly"}),
    );
    c.ok(
        "keys",
        json!({"action":"add","key":"ro-key","scope":"read_write"}),
    );
    c.ok("keys", json!({"action":"remove","key":"tmp-key"}));
}

/// The state `mutate_everything` leaves, checked on a new connection.
fn assert_state(server: &Server) {
    let mut c = server.master();
    assert_eq!(c.ok("cols", json!({})), json!({"collections":["kv","s"]}));
    assert_eq!(
        c.ok("qdoc", json!({"col":"s","doc":"a","to":100})),
        json!({"records":[{"ts":2,"data":"a2-replaced"},{"ts":3,"data":"a3"}]})
    );
    assert_eq!(
        c.ok("qry", json!({"col":"s","ts":100})),
        json!({"records":{"a":{"ts":3,"data":"a3"},"r":{"ts":20,"data":"r20"}}})
    );
    assert_eq!(
        c.ok("gvals", json!({"col":"kv"})),
        json!({"values":{"k1":"v1b"}})
    );
    assert_eq!(
        c.ok("keys", json!({"action":"list"})),
        json!({"status":"ok","keys":[
            {"key":MASTER,"scope":"read_write_delete","deletable":false},
            {"key":"ro-key","scope":"read_write","deletable":true}
        ]})
    );
    let (code, reason) = Client::open_expect_close(server.port, "/?api-key=tmp-key");
    assert_eq!((code, reason.as_str()), (1008, "Unknown API key"));
    // The re-scoped key writes (and the master undoes it, so the state stays the same).
    let mut rw = server.open("ro-key", None);
    assert_eq!(
        rw.ok("ins", json!([{"col":"s","doc":"w","ts":1,"data":"rw"}])),
        json!({})
    );
    assert_eq!(
        rw.err("drec", json!({"col":"s","doc":"w","ts":1})),
        "permission denied"
    );
    c.ok("drec", json!({"col":"s","doc":"w","ts":1}));
}

fn files(server: &Server) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(server.data_dir().expect("data dir"))
        .expect("read data dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Waits (bounded) until the folder holds a snapshot and no log entry older than it.
fn wait_for_snapshot(server: &Server) {
    let written = crate::common::wait_until(Duration::from_secs(10), || {
        files(server).iter().any(|f| f.starts_with("snap-"))
    });
    assert!(written, "no snapshot after 10 s: {:?}", files(server));
}

#[test]
fn every_mutation_survives_kill9_from_the_log_alone() {
    for policy in ["always", "everysec", "never"] {
        let mut server = Server::with_data_dir_args(&["--fsync", policy, "-f", "3600"]);
        mutate_everything(&mut server.master());
        server.restart();
        assert_state(&server);
        assert!(
            !files(&server).iter().any(|f| f.starts_with("snap-")),
            "no snapshot was expected yet"
        );
    }
}

#[test]
fn every_mutation_survives_kill9_across_snapshots() {
    let mut server = Server::with_data_dir_args(&["--fsync", "always", "-f", "1"]);
    let mut c = server.master();
    c.ok("ins", json!([{"col":"s","doc":"a","ts":1,"data":"a1"},{"col":"s","doc":"zap","ts":5,"data":"z"},{"col":"gone","doc":"x","ts":1,"data":"x"}]));
    c.ok("sval", json!({"col":"kv","key":"k2","value":"old"}));
    wait_for_snapshot(&server);
    // Deletes after the snapshot must hold although the snapshot still has the data.
    mutate_everything(&mut c);
    c.ok("drec", json!({"col":"s","doc":"zap","ts":5}));
    server.restart();
    assert_state(&server);
    // And once more after a checkpoint covered everything.
    let before = files(&server);
    wait_for_snapshot(&server);
    server.restart();
    assert_state(&server);
    let _ = before;
}

#[test]
fn sigterm_snapshots_and_exits_zero() {
    let mut server = Server::with_data_dir_args(&["-f", "3600"]);
    let mut c = server.master();
    mutate_everything(&mut c);
    let status = server.sigterm();
    assert!(status.success(), "exit status {status:?}");
    let (code, reason) = c.recv_close();
    assert_eq!((code, reason.as_str()), (1001, "server shutting down"));
    let names = files(&server);
    assert!(
        names.iter().any(|f| f.starts_with("snap-")),
        "final snapshot missing: {names:?}"
    );
    server.start_again();
    assert_state(&server);
}

#[test]
fn emptied_and_dropped_collections_do_not_come_back() {
    let mut server = Server::with_data_dir_args(&["--fsync", "always", "-f", "1"]);
    let mut c = server.master();
    c.ok(
        "ins",
        json!([{"col":"a","doc":"d","ts":1,"data":"x"},{"col":"b","doc":"d","ts":1,"data":"x"}]),
    );
    c.ok("sval", json!({"col":"c","key":"k","value":"v"}));
    wait_for_snapshot(&server);
    c.ok("drec", json!({"col":"a","doc":"d","ts":1}));
    c.ok("dcol", json!({"col":"b"}));
    c.ok("rval", json!({"col":"c","key":"k"}));
    // Recreate b with new content after its drop.
    c.ok("ins", json!([{"col":"b","doc":"new","ts":2,"data":"y"}]));
    server.restart();
    let mut c = server.master();
    assert_eq!(c.ok("cols", json!({})), json!({"collections":["b"]}));
    assert_eq!(
        c.ok("qry", json!({"col":"b","ts":10})),
        json!({"records":{"new":{"ts":2,"data":"y"}}})
    );
    // After a checkpoint the stale snapshot files are gone too.
    let cleaned = crate::common::wait_until(Duration::from_secs(10), || {
        files(&server)
            .iter()
            .filter(|f| f.starts_with("snap-"))
            .count()
            == 1
    });
    assert!(cleaned, "stale snapshots remain: {:?}", files(&server));
    server.restart();
    assert_eq!(
        server.master().ok("cols", json!({})),
        json!({"collections":["b"]})
    );
}

#[test]
fn master_key_is_never_written_and_a_new_one_replaces_it() {
    let mut server = Server::with_data_dir_args(&["--fsync", "always"]);
    let mut c = server.master();
    c.ok(
        "keys",
        json!({"action":"add","key":"ro-key","scope":"readonly"}),
    );
    c.ok(
        "keys",
        json!({"action":"add","key":MASTER,"scope":"readonly"}),
    );
    c.ok("ins", json!([{"col":"s","doc":MASTER,"ts":1,"data":"x"}]));
    c.ok("ddoc", json!({"col":"s","doc":MASTER}));
    server.sigterm();
    for name in files(&server) {
        let bytes = fs::read(server.data_dir().unwrap().join(&name)).unwrap();
        if name == "keys.bin" {
            assert!(
                !bytes.windows(MASTER.len()).any(|w| w == MASTER.as_bytes()),
                "{name} holds the master key"
            );
        }
    }
    server.start_again();
    server.restart_with_secret("other");
    let (code, reason) = Client::open_expect_close(server.port, "/?api-key=master-key");
    assert_eq!((code, reason.as_str()), (1008, "Unknown API key"));
    let mut ro = server.open("ro-key", None);
    assert_eq!(ro.err("ins", json!([])), "permission denied");
    server.open("other", None).ok("cols", json!({}));
}

#[cfg(unix)]
#[test]
fn data_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mut server = Server::with_data_dir_args(&["--fsync", "always"]);
    let mut c = server.master();
    c.ok("keys", json!({"action":"add","key":"k","scope":"readonly"}));
    c.ok("ins", json!([{"col":"s","doc":"a","ts":1,"data":"x"}]));
    server.sigterm();
    for name in files(&server) {
        let mode = fs::metadata(server.data_dir().unwrap().join(&name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
    }
}

/// The error line of a refused start-up: stderr holds exactly one line starting with
/// `fluxiondb: `, and no log line repeats it.
fn single_error_line(err: &str) -> &str {
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("fluxiondb: "))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected: {err}");
    let line = lines[0];
    let message = &line["fluxiondb: ".len()..];
    assert_eq!(
        err.matches(message).count(),
        1,
        "the error should be printed once: {err}"
    );
    line
}

#[test]
fn a_second_server_on_the_same_folder_is_refused() {
    let server = Server::with_data_dir();
    let dir = server.data_dir().unwrap().to_path_buf();
    let err = crate::common::refused_start(&dir, &[]);
    let line = single_error_line(&err);
    assert!(
        line.contains("in use by another fluxiondb process"),
        "stderr: {err}"
    );
    assert_eq!(
        line.matches(dir.to_str().unwrap()).count(),
        1,
        "the folder is named once: {line}"
    );
}

#[test]
fn an_unusable_data_folder_is_a_clear_startup_error() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let dir = file.path().join("data");
    let err = crate::common::refused_start(&dir, &[]);
    let on_file = crate::common::refused_start(file.path(), &[]);
    assert!(
        single_error_line(&err).contains(dir.to_str().unwrap()),
        "stderr should name the folder: {err}"
    );
    assert_eq!(
        single_error_line(&on_file),
        format!("fluxiondb: {} is not a directory", file.path().display())
    );
}

#[test]
fn hostile_names_round_trip_and_stay_inside_the_folder() {
    let mut server = Server::with_data_dir_args(&["--fsync", "always", "-f", "1"]);
    let long = "n".repeat(4096);
    let names: Vec<String> = vec![
        "../x".into(),
        "/".into(),
        "../../etc/passwd".into(),
        "a\u{0}b".into(),
        ".".into(),
        "..".into(),
        long.clone(),
        "é/😀".into(),
    ];
    let mut c = server.master();
    for (i, n) in names.iter().enumerate() {
        c.ok(
            "ins",
            json!([{"col": n, "doc": n, "ts": i as i64 + 1, "data": n}]),
        );
        c.ok("sval", json!({"col": n, "key": n, "value": n}));
    }
    wait_for_snapshot(&server);
    c.ok(
        "ins",
        json!([{"col":"../x","doc":"after","ts":1,"data":"late"}]),
    );
    server.restart();
    let mut c = server.master();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(c.ok("cols", json!({})), json!({"collections": expected}));
    for (i, n) in names.iter().enumerate() {
        let got = c.ok("qry", json!({"col": n, "ts": 100, "doc": n}));
        assert_eq!(
            got,
            json!({"records": {n.as_str(): {"ts": i as i64 + 1, "data": n}}}),
            "name {n:?}"
        );
        assert_eq!(
            c.ok("gval", json!({"col": n, "key": n})),
            json!({"value": n})
        );
    }
    let parent = server.data_parent().unwrap();
    let outside: Vec<Value> = fs::read_dir(parent)
        .unwrap()
        .map(|e| json!(e.unwrap().file_name().to_string_lossy()))
        .collect();
    assert_eq!(
        outside,
        vec![json!("data")],
        "only the data folder may exist in its parent"
    );
    for name in files(&server) {
        assert!(
            name == "LOCK"
                || name == "keys.bin"
                || name.starts_with("snap-")
                || name.starts_with("wal-"),
            "unexpected file {name:?}"
        );
    }
}

/// A checkpoint that cannot write a snapshot is counted as failed
/// (`fluxiondb_checkpoint_failures_total`), and the last-checkpoint time stops moving until
/// one saves everything again: before, every such round counted as completed, so an alert on
/// a stale checkpoint never fired while the log grew.
#[test]
fn a_checkpoint_that_cannot_write_a_snapshot_is_counted_as_failed() {
    use crate::backup::metric;
    use crate::common::wait_until;
    let s = Server::with_data_dir_args(&["-f", "1"]);
    let dir = s.data_dir().expect("data folder").to_owned();
    // The snapshot files' temporary names, taken by folders: opening them for writing fails.
    let blockers: Vec<_> = (0..4)
        .map(|id| dir.join(format!("snap-{id:016x}.bin.tmp")))
        .collect();
    for b in &blockers {
        fs::create_dir(b).unwrap();
    }
    let mut c = s.master();
    c.ok("ins", json!([{"col":"c","doc":"d","ts":1,"data":"x"}]));
    let failures = || metric(s.port, "fluxiondb_checkpoint_failures_total").unwrap_or(0.0);
    let last = || metric(s.port, "fluxiondb_last_checkpoint_timestamp_seconds").unwrap_or(0.0);
    let wait = Duration::from_secs(30);
    assert!(
        wait_until(wait, || failures() >= 1.0),
        "no failed checkpoint counted"
    );
    let stale = last();
    let seen = failures();
    assert!(
        wait_until(wait, || failures() > seen),
        "the next checkpoint did not fail too"
    );
    assert_eq!(
        last(),
        stale,
        "a failed checkpoint moved the last-checkpoint time"
    );
    for b in &blockers {
        fs::remove_dir(b).unwrap();
    }
    assert!(
        wait_until(wait, || last() > stale),
        "no checkpoint succeeded once the snapshot could be written"
    );
}
