//! Retention (issue 13): `sret` / `gret`, the server default, and records past a policy gone from
//! every query at once — with replaced, deleted and out-of-order records, across `dcol` and
//! restarts.

use crate::common::{fixture_keys, wait_until, Client, Server};
use serde_json::{json, Value};
use std::fs;
use std::time::Duration;

/// The timestamps and data of one document, oldest first.
fn records(c: &mut Client, col: &str, doc: &str) -> Vec<(i64, String)> {
    let v = c.ok("qdoc", json!({"col": col, "doc": doc, "to": i64::MAX}));
    v["records"]
        .as_array()
        .expect("records array")
        .iter()
        .map(|r| {
            let ts = r["ts"].as_i64().expect("ts");
            (ts, r["data"].as_str().expect("data").to_string())
        })
        .collect()
}

fn stamps(c: &mut Client, col: &str, doc: &str) -> Vec<i64> {
    records(c, col, doc).into_iter().map(|(ts, _)| ts).collect()
}

fn ins(c: &mut Client, col: &str, doc: &str, ts: i64, data: &str) {
    let v = c.ok(
        "ins",
        json!([{"col": col, "doc": doc, "ts": ts, "data": data}]),
    );
    assert_eq!(v, json!({}), "ins is acknowledged");
}

fn retention(max_age: Value, max_records: Value, default: bool) -> Value {
    json!({"retention": {"max_age": max_age, "max_records": max_records, "default": default}})
}

#[test]
fn sret_and_gret_answers_and_errors() {
    let server = Server::start(&[]);
    let mut c = server.master();
    let unlimited = retention(Value::Null, Value::Null, true);
    assert_eq!(c.ok("gret", json!({"col": "nowhere"})), unlimited);
    assert_eq!(c.ok("sret", json!({"col": "c", "max_age": 100})), json!({}));
    assert_eq!(
        c.ok("gret", json!({"col": "c"})),
        retention(json!(100), Value::Null, false)
    );
    assert_eq!(
        c.ok(
            "sret",
            json!({"col": "c", "max_age": null, "max_records": "7"})
        ),
        json!({})
    );
    assert_eq!(
        c.ok("gret", json!({"col": "c"})),
        retention(Value::Null, json!(7), false)
    );
    // Both members 0: an own policy of "unlimited", not the default.
    c.ok("sret", json!({"col": "c", "max_age": 0, "max_records": 0}));
    assert_eq!(
        c.ok("gret", json!({"col": "c"})),
        retention(Value::Null, Value::Null, false)
    );
    // Neither member: the policy goes.
    c.ok("sret", json!({"col": "c"}));
    assert_eq!(c.ok("gret", json!({"col": "c"})), unlimited);
    assert!(
        crate::common::cols(&mut c).is_empty(),
        "sret creates no collection"
    );

    let errors = [
        (
            "sret",
            json!({"max_age": 5}),
            "invalid payload: col must be a non-empty string",
        ),
        (
            "sret",
            json!({"col": "", "max_age": 5}),
            "invalid payload: col must be a non-empty string",
        ),
        (
            "sret",
            json!({"col": "c", "max_age": -1}),
            "invalid payload: max_age must be a non-negative integer",
        ),
        (
            "sret",
            json!({"col": "c", "max_age": "soon"}),
            "invalid payload: max_age must be a non-negative integer",
        ),
        (
            "sret",
            json!({"col": "c", "max_age": true}),
            "invalid payload: max_age must be a non-negative integer",
        ),
        (
            "sret",
            json!({"col": "c", "max_age": 1, "max_records": -3}),
            "invalid payload: max_records must be a non-negative integer",
        ),
        (
            "sret",
            json!({"col": "c", "max_records": 1e300}),
            "invalid payload: max_records must be a non-negative integer",
        ),
        ("sret", json!([]), "invalid payload: expected a JSON object"),
        (
            "sret",
            json!("{"),
            "invalid payload: data is not valid JSON",
        ),
        (
            "gret",
            json!({}),
            "invalid payload: col must be a non-empty string",
        ),
        (
            "gret",
            json!({"col": 5}),
            "invalid payload: col must be a non-empty string",
        ),
        (
            "gret",
            json!("x"),
            "invalid payload: data is not valid JSON",
        ),
    ];
    for (ty, payload, text) in errors {
        assert_eq!(c.err(ty, payload.clone()), text, "{ty} {payload}");
    }
    assert_eq!(
        c.ok("gret", json!({"col": "c"})),
        unlimited,
        "a refused sret changes nothing"
    );
}

#[test]
fn sret_needs_read_write_delete_and_gret_readonly() {
    let server = Server::start(&[]);
    let mut m = server.master();
    fixture_keys(&mut m);
    let own = retention(json!(9), Value::Null, false);
    for (key, may_set) in [("ro-key", false), ("rw-key", false), ("rwd-key", true)] {
        let mut c = server.open(key, None);
        let col = format!("p-{key}");
        let set = c.call("sret", json!({"col": col, "max_age": 9}));
        if may_set {
            assert_eq!(set, json!({}), "{key}");
            assert_eq!(c.ok("gret", json!({"col": col})), own, "{key}");
        } else {
            assert_eq!(set, json!({"error": "permission denied"}), "{key}");
            assert_eq!(
                c.ok("gret", json!({"col": col})),
                retention(Value::Null, Value::Null, true),
                "{key}"
            );
        }
    }
}

#[test]
fn the_server_default_and_an_own_policy() {
    let server = Server::start(&["--max-age", "50", "--max-records", "3"]);
    let mut c = server.master();
    assert_eq!(
        c.ok("gret", json!({"col": "plain"})),
        retention(json!(50), json!(3), true)
    );
    for ts in 1..=5 {
        ins(&mut c, "plain", "d", ts, "x");
    }
    assert_eq!(
        stamps(&mut c, "plain", "d"),
        [3, 4, 5],
        "default max_records"
    );
    ins(&mut c, "plain", "d", 60, "x");
    assert_eq!(stamps(&mut c, "plain", "d"), [60], "default max_age");

    // Own policy: records unlimited, age inherited.
    c.ok("sret", json!({"col": "own", "max_records": 0}));
    assert_eq!(
        c.ok("gret", json!({"col": "own"})),
        retention(json!(50), Value::Null, false)
    );
    for ts in [10, 20, 30, 40, 55] {
        ins(&mut c, "own", "d", ts, "x");
    }
    assert_eq!(stamps(&mut c, "own", "d"), [10, 20, 30, 40, 55]);
    ins(&mut c, "own", "d", 70, "x");
    assert_eq!(stamps(&mut c, "own", "d"), [20, 30, 40, 55, 70]);

    // Back to the default: applied at once.
    c.ok("sret", json!({"col": "own"}));
    assert_eq!(
        c.ok("gret", json!({"col": "own"})),
        retention(json!(50), json!(3), true)
    );
    assert_eq!(stamps(&mut c, "own", "d"), [40, 55, 70]);
}

#[test]
fn max_age_with_replaced_deleted_and_out_of_order_records() {
    let server = Server::start(&[]);
    let mut c = server.master();
    c.ok("sret", json!({"col": "c", "max_age": 10}));
    for ts in [100, 95, 105] {
        ins(&mut c, "c", "d", ts, &format!("v{ts}"));
    }
    assert_eq!(
        stamps(&mut c, "c", "d"),
        [95, 100, 105],
        "late but in window"
    );
    // Older than newest - max_age: acknowledged, not kept.
    ins(&mut c, "c", "d", 94, "late");
    assert_eq!(stamps(&mut c, "c", "d"), [95, 100, 105]);
    // A replace inside the window keeps the record with its new data.
    ins(&mut c, "c", "d", 100, "v100b");
    assert_eq!(
        records(&mut c, "c", "d"),
        [
            (95, "v95".to_string()),
            (100, "v100b".to_string()),
            (105, "v105".to_string())
        ]
    );
    // A newer record moves the window: 95 and 100 go from every query at once.
    ins(&mut c, "c", "d", 112, "v112");
    assert_eq!(stamps(&mut c, "c", "d"), [105, 112]);
    assert_eq!(
        c.ok("qry", json!({"col": "c", "ts": 104})),
        json!({"records": {}})
    );
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "c", "doc": "d", "from": 90, "to": 104})
        ),
        json!({"records": []})
    );
    // Replacing a record that already went is an insert past the window.
    ins(&mut c, "c", "d", 100, "again");
    assert_eq!(stamps(&mut c, "c", "d"), [105, 112]);
    // Deleting the newest moves the window back; what went stays gone, but older records
    // within the new window are accepted again.
    c.ok("drec", json!({"col": "c", "doc": "d", "ts": 112}));
    assert_eq!(stamps(&mut c, "c", "d"), [105]);
    ins(&mut c, "c", "d", 96, "v96");
    assert_eq!(stamps(&mut c, "c", "d"), [96, 105]);
    assert_eq!(
        c.ok("qry", json!({"col": "c", "ts": 104})),
        json!({"records": {"d": {"ts": 96, "data": "v96"}}})
    );
    // A whole batch of which part is already past the window, across documents.
    c.ok(
        "ins",
        json!([
            {"col": "c", "doc": "e", "ts": 1000, "data": "a"},
            {"col": "c", "doc": "e", "ts": 5, "data": "old"},
            {"col": "c", "doc": "d", "ts": 200, "data": "b"},
            {"col": "c", "doc": "e", "ts": 995, "data": "c"}
        ]),
    );
    assert_eq!(stamps(&mut c, "c", "e"), [995, 1000]);
    assert_eq!(stamps(&mut c, "c", "d"), [200]);
}

#[test]
fn max_records_with_replaced_deleted_and_out_of_order_records() {
    let server = Server::start(&[]);
    let mut c = server.master();
    c.ok("sret", json!({"col": "c", "max_records": 3}));
    for ts in [10, 30, 20] {
        ins(&mut c, "c", "d", ts, &format!("v{ts}"));
    }
    assert_eq!(stamps(&mut c, "c", "d"), [10, 20, 30]);
    // Older than all the kept records with none to spare: acknowledged, not kept.
    ins(&mut c, "c", "d", 5, "v5");
    assert_eq!(stamps(&mut c, "c", "d"), [10, 20, 30]);
    // Late but newer than the oldest: the oldest goes.
    ins(&mut c, "c", "d", 25, "v25");
    assert_eq!(stamps(&mut c, "c", "d"), [20, 25, 30]);
    // A replace does not count twice.
    ins(&mut c, "c", "d", 20, "v20b");
    assert_eq!(
        records(&mut c, "c", "d"),
        [
            (20, "v20b".to_string()),
            (25, "v25".to_string()),
            (30, "v30".to_string())
        ]
    );
    // After a delete there is room for one more, however old.
    c.ok("drec", json!({"col": "c", "doc": "d", "ts": 30}));
    ins(&mut c, "c", "d", 1, "v1");
    assert_eq!(stamps(&mut c, "c", "d"), [1, 20, 25]);
    c.ok(
        "drrng",
        json!({"col": "c", "doc": "d", "fromTs": 20, "toTs": 25}),
    );
    ins(&mut c, "c", "d", 40, "v40");
    ins(&mut c, "c", "d", 50, "v50");
    ins(&mut c, "c", "d", 60, "v60");
    assert_eq!(stamps(&mut c, "c", "d"), [40, 50, 60]);
    assert_eq!(
        c.ok("qry", json!({"col": "c", "ts": 39})),
        json!({"records": {}})
    );
}

#[test]
fn sret_applies_to_the_data_already_held() {
    let server = Server::start(&[]);
    let mut c = server.master();
    let batch: Vec<Value> = (1..=20)
        .flat_map(|ts| {
            ["a", "b"].map(|doc| json!({"col": "c", "doc": doc, "ts": ts * 10, "data": "x"}))
        })
        .collect();
    c.ok("ins", Value::Array(batch));
    c.ok("sval", json!({"col": "c", "key": "k", "value": "v"}));
    c.ok("sret", json!({"col": "c", "max_records": 2}));
    assert_eq!(stamps(&mut c, "c", "a"), [190, 200]);
    assert_eq!(stamps(&mut c, "c", "b"), [190, 200]);
    c.ok("sret", json!({"col": "c", "max_age": 5}));
    assert_eq!(stamps(&mut c, "c", "a"), [200]);
    // Removing the policy brings nothing back; key/value entries are not records.
    c.ok("sret", json!({"col": "c"}));
    assert_eq!(stamps(&mut c, "c", "a"), [200]);
    assert_eq!(
        c.ok("gval", json!({"col": "c", "key": "k"})),
        json!({"value": "v"})
    );
}

#[test]
fn sret_reaches_every_document_of_a_large_collection() {
    // More documents than one hold of the collection's lock trims.
    let server = Server::start(&[]);
    let mut c = server.master();
    let batch: Vec<Value> = (0..150)
        .flat_map(|d| {
            (1..=3)
                .map(move |ts| json!({"col": "c", "doc": format!("d{d}"), "ts": ts, "data": "x"}))
        })
        .collect();
    c.ok("ins", Value::Array(batch));
    c.ok("sret", json!({"col": "c", "max_records": 1}));
    for d in 0..150 {
        assert_eq!(stamps(&mut c, "c", &format!("d{d}")), [3], "d{d}");
    }
}

#[test]
fn a_policy_survives_dcol() {
    let server = Server::start(&[]);
    let mut c = server.master();
    c.ok("sret", json!({"col": "c", "max_records": 2}));
    ins(&mut c, "c", "d", 1, "x");
    c.ok("dcol", json!({"col": "c"}));
    assert_eq!(
        c.ok("gret", json!({"col": "c"})),
        retention(Value::Null, json!(2), false)
    );
    for ts in 1..=4 {
        ins(&mut c, "c", "d", ts, "x");
    }
    assert_eq!(stamps(&mut c, "c", "d"), [3, 4]);
}

fn files(server: &Server) -> Vec<String> {
    let dir = server.data_dir().expect("data dir");
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read data dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Policies set, changed, removed and applied; returns what the server then answers.
fn mutate(c: &mut Client) -> Value {
    c.ok("sret", json!({"col": "c", "max_records": 2}));
    for ts in 1..=5 {
        ins(c, "c", "d", ts, "x");
    }
    // Relaxed again: what went stays gone, what comes now is kept.
    c.ok("sret", json!({"col": "c", "max_records": 0}));
    for ts in 6..=8 {
        ins(c, "c", "d", ts, "y");
    }
    c.ok("sret", json!({"col": "gone", "max_age": 10}));
    ins(c, "gone", "d", 100, "x");
    c.ok("dcol", json!({"col": "gone"}));
    c.ok("sret", json!({"col": "removed", "max_age": 3}));
    c.ok("sret", json!({"col": "removed"}));
    ins(c, "removed", "d", 1, "x");
    ins(c, "removed", "d", 100, "x");
    observe(c)
}

fn observe(c: &mut Client) -> Value {
    json!({
        "c": [c.ok("gret", json!({"col": "c"})), records(c, "c", "d")],
        "gone": [c.ok("gret", json!({"col": "gone"})), records(c, "gone", "d")],
        "removed": [c.ok("gret", json!({"col": "removed"})), records(c, "removed", "d")],
    })
}

#[test]
fn policies_and_drops_survive_a_restart_from_the_log() {
    let mut server = Server::with_data_dir_args(&["--fsync", "always", "-f", "3600"]);
    let before = mutate(&mut server.master());
    assert_eq!(
        before["c"][1],
        json!([[4, "x"], [5, "x"], [6, "y"], [7, "y"], [8, "y"]])
    );
    server.restart();
    let mut c = server.master();
    assert_eq!(observe(&mut c), before);
    // The policy is in force after the restart too.
    for ts in 101..=103 {
        ins(&mut c, "gone", "d", ts, "x");
    }
    ins(&mut c, "gone", "d", 90, "late");
    assert_eq!(stamps(&mut c, "gone", "d"), [101, 102, 103]);
}

#[test]
fn policies_and_drops_survive_a_restart_across_snapshots() {
    let mut server = Server::with_data_dir_args(&["--fsync", "always", "-f", "1"]);
    let mut c = server.master();
    c.ok("sret", json!({"col": "early", "max_records": 1}));
    let before = mutate(&mut c);
    let snapshotted = wait_until(Duration::from_secs(10), || {
        let f = files(&server);
        f.iter().any(|n| n == "retention.bin") && f.iter().any(|n| n.starts_with("snap-"))
    });
    assert!(snapshotted, "no snapshot: {:?}", files(&server));
    // More changes after the snapshot, only in the log.
    c.ok("sret", json!({"col": "c", "max_records": 4}));
    c.ok("sret", json!({"col": "early"}));
    let after = observe(&mut c);
    assert_ne!(after, before);
    server.restart();
    let mut c = server.master();
    assert_eq!(observe(&mut c), after);
    assert_eq!(
        c.ok("gret", json!({"col": "early"})),
        retention(Value::Null, Value::Null, true)
    );
    // Once more with everything covered by a snapshot.
    let _ = fs::remove_file(server.data_dir().expect("data dir").join("retention.bin"));
    ins(&mut c, "c", "d", 9, "z");
    c.ok("sret", json!({"col": "c", "max_records": 3}));
    let after = observe(&mut c);
    let rewritten = wait_until(Duration::from_secs(10), || {
        files(&server).iter().any(|n| n == "retention.bin")
    });
    assert!(rewritten, "policies not snapshotted: {:?}", files(&server));
    server.restart();
    assert_eq!(observe(&mut server.master()), after);
}

#[test]
fn a_tighter_default_applies_at_start_up() {
    let mut server = Server::with_data_dir_args(&["--fsync", "always"]);
    let mut c = server.master();
    for ts in 1..=5 {
        ins(&mut c, "c", "d", ts, "x");
    }
    c.ok("sret", json!({"col": "own", "max_records": 0}));
    for ts in 1..=5 {
        ins(&mut c, "own", "d", ts, "x");
    }
    server.kill9();
    server.start_again_with(&["--max-records", "2"]);
    let mut c = server.master();
    assert_eq!(stamps(&mut c, "c", "d"), [4, 5]);
    assert_eq!(
        stamps(&mut c, "own", "d"),
        [1, 2, 3, 4, 5],
        "own policy wins"
    );
    // The start-up drop is logged: it holds after another restart.
    server.restart();
    assert_eq!(stamps(&mut server.master(), "c", "d"), [4, 5]);
}
