//! Snapshot format guard: a data folder written by the release before compressed blocks
//! (`tests/fixtures/snapshot-v1/`) must keep loading. `write_fixture` (ignored) made it; the
//! fixture is never rewritten by the suite.

use crate::common::{Server, TempDir};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/snapshot-v1")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "LOCK" || name.to_string_lossy().ends_with(".lock") {
            continue;
        }
        std::fs::copy(entry.path(), to.join(name)).unwrap();
    }
}

/// Enough records per document to fill several blocks of any layout, replaced and deleted ones
/// included, plus a plain and an escaped data document and a key/value entry.
fn telemetry(i: i64) -> String {
    format!("{{\"i\":{i},\"v\":{}.{:02}}}", 20 + i % 7, (i * 37) % 100)
}

fn expected_records(doc: &str) -> Vec<Value> {
    match doc {
        "t" => (1..=1000)
            .filter(|i| i % 10 != 3 && !(500..=520).contains(i))
            .map(|i| {
                let data = if i % 100 == 7 {
                    format!("replaced {i}")
                } else {
                    telemetry(i)
                };
                json!({"ts": i * 1000, "data": data})
            })
            .collect(),
        "esc" => vec![
            json!({"ts": 5, "data": "quote \" backslash \\ tab \t é😀"}),
            json!({"ts": 7, "data": ""}),
        ],
        _ => unreachable!(),
    }
}

#[test]
#[ignore = "writes tests/fixtures/snapshot-v1 with the binary under test; run once per format"]
fn write_fixture() {
    let mut server = Server::with_data_dir_args(&["-f", "3600"]);
    let mut c = server.master();
    for chunk in (1..=1000i64).collect::<Vec<_>>().chunks(100) {
        let recs: Vec<Value> = chunk
            .iter()
            .map(|&i| json!({"col":"m","doc":"t","ts":i * 1000,"data":telemetry(i)}))
            .collect();
        c.ok("ins", Value::Array(recs));
    }
    for i in (7..=1000).step_by(100) {
        c.ok(
            "ins",
            json!([{"col":"m","doc":"t","ts":i * 1000,"data":format!("replaced {i}")}]),
        );
    }
    for i in (3..=1000).step_by(10) {
        c.ok("drec", json!({"col":"m","doc":"t","ts":i * 1000}));
    }
    c.ok(
        "drrng",
        json!({"col":"m","doc":"t","fromTs":500_000,"toTs":520_000}),
    );
    c.ok(
        "ins",
        json!([
            {"col":"m","doc":"esc","ts":7,"data":""},
            {"col":"m","doc":"esc","ts":5,"data":"quote \" backslash \\ tab \t é😀"}
        ]),
    );
    c.ok("sval", json!({"col":"kv","key":"k","value":"v"}));
    drop(c);
    server.sigterm();
    let out = fixture_dir();
    let _ = std::fs::remove_dir_all(&out);
    copy_dir(server.data_dir().unwrap(), &out);
}

#[test]
fn a_snapshot_of_the_previous_format_loads() {
    let dir = TempDir::new();
    copy_dir(&fixture_dir(), dir.data());
    assert!(
        std::fs::read_dir(dir.data()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("snap-")),
        "the fixture holds a snapshot"
    );
    let data = dir.data().to_str().unwrap().to_string();
    let server = Server::start(&["--data", &data]);
    let mut c = server.master();
    for doc in ["t", "esc"] {
        assert_eq!(
            c.ok("qdoc", json!({"col":"m","doc":doc,"from":0,"to":i64::MAX})),
            json!({"records": expected_records(doc)}),
            "document {doc}"
        );
    }
    assert_eq!(
        c.ok("gvals", json!({"col":"kv"})),
        json!({"values":{"k":"v"}})
    );
    assert_eq!(
        c.ok("qry", json!({"col":"m","ts":i64::MAX})),
        json!({"records":{"esc":{"ts":7,"data":""},"t":{"ts":1_000_000,"data":telemetry(1000)}}})
    );
    // It stays writable and consistent after more writes and a restart.
    c.ok(
        "ins",
        json!([{"col":"m","doc":"t","ts":1_000_500,"data":"new"}]),
    );
    drop(c);
    drop(server);
}
