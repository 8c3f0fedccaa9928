//! One-time import of a seed (Qt) server's data folder (`--import-seed`,
//! README.md#migrating-from-the-upstream-servers): records, replacements across flush files,
//! key/value maps and API keys arrive; the import happens once; a damaged or misplaced import
//! changes nothing.

use crate::common::{refused_start, Client, Server, TempDir, MASTER};
use serde_json::{json, Value};
use std::fs;
use std::path::Path;

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// The seed layout: collections → documents → `<flush-ms>.json`, `key_value.json`, and
/// `config/api_keys.json`, with names a file system allows but a naive server would mangle.
fn seed_folder() -> TempDir {
    let s = TempDir::new();
    let root = s.data().to_owned();
    let dev1 = root.join("sensors").join("dev-1");
    // Written out of order on purpose: the flush time in the name decides, not the write time.
    write(
        &dev1.join("2000.json"),
        r#"[{"ts":200,"data":"B"},{"ts":300,"data":"c"}]"#,
    );
    write(
        &dev1.join("1000.json"),
        r#"[{"ts":100,"data":"a"},{"ts":200,"data":"b"}]"#,
    );
    write(&dev1.join("notes.txt"), "not a record file");
    write(
        &root.join("sensors").join("dev 2 é").join("1500.json"),
        r#"[{"ts":1.7e12,"data":"{\"temp\":21}"},{"ts":0,"data":"no timestamp"}]"#,
    );
    write(
        &root.join("sensors").join("key_value.json"),
        r#"{"unit":"celsius","a/b":"x"}"#,
    );
    write(&root.join("sensors").join("README"), "ignored");
    write(
        &root.join("config").join("api_keys.json"),
        r#"{"ro-key":{"scope":"readonly","deletable":true},"rw-key":{"scope":"Read-Write","deletable":true}}"#,
    );
    write(&root.join("stray.txt"), "ignored");
    s
}

fn check_imported(m: &mut Client) {
    assert_eq!(m.ok("cols", json!({})), json!({"collections": ["sensors"]}));
    assert_eq!(
        m.ok(
            "qdoc",
            json!({"col": "sensors", "doc": "dev-1", "to": 1000})
        ),
        json!({"records": [
            {"ts": 100, "data": "a"}, {"ts": 200, "data": "B"}, {"ts": 300, "data": "c"}
        ]})
    );
    assert_eq!(
        m.ok("qry", json!({"col": "sensors", "ts": 2_000_000_000_000i64}))["records"]["dev 2 é"],
        json!({"ts": 1_700_000_000_000i64, "data": "{\"temp\":21}"})
    );
    assert_eq!(
        m.ok("gvals", json!({"col": "sensors"})),
        json!({"values": {"a/b": "x", "unit": "celsius"}})
    );
}

fn seed_arg(seed: &TempDir) -> String {
    seed.data().to_str().unwrap().to_string()
}

#[test]
fn a_seed_folder_is_imported_once_and_persists() {
    let seed = seed_folder();
    let arg = seed_arg(&seed);
    let mut s = Server::with_data_dir_args(&["--import-seed", &arg]);
    let mut m = s.master();
    check_imported(&mut m);
    // Keys keep their (normalised) scopes.
    let mut ro = s.open("ro-key", None);
    assert_eq!(
        ro.err(
            "ins",
            json!([{"col": "c", "doc": "d", "ts": 1, "data": "x"}])
        ),
        "permission denied"
    );
    let mut rw = s.open("rw-key", None);
    rw.ok(
        "ins",
        json!([{"col": "sensors", "doc": "dev-1", "ts": 400, "data": "d"}]),
    );
    // Killed and restarted with the flag still given: the import does not happen again, and
    // what was written after it stays.
    drop((m, ro, rw));
    s.restart();
    let mut m = s.master();
    assert_eq!(
        m.ok(
            "qdoc",
            json!({"col": "sensors", "doc": "dev-1", "to": 1000})
        )["records"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    m.ok("ddoc", json!({"col": "sensors", "doc": "dev 2 é"}));
    drop(m);
    s.restart();
    let mut m = s.master();
    assert!(
        m.ok("qry", json!({"col": "sensors", "ts": 2_000_000_000_000i64}))["records"]
            .get("dev 2 é")
            .is_none()
    );
    // The seed folder itself was only read.
    assert!(seed
        .data()
        .join("sensors")
        .join("dev-1")
        .join("1000.json")
        .exists());
}

#[test]
fn importing_into_a_folder_that_holds_data_is_refused() {
    let seed = seed_folder();
    let mut s = Server::with_data_dir();
    s.master()
        .ok("sval", json!({"col": "mine", "key": "k", "value": "v"}));
    let dir = s.data_dir().unwrap().to_owned();
    s.sigterm();
    let err = refused_start(&dir, &["--import-seed", &seed_arg(&seed)]);
    assert!(
        err.contains("imports only into an empty data folder"),
        "{err}"
    );
    s.start_again();
    assert_eq!(
        s.master().ok("cols", json!({})),
        json!({"collections": ["mine"]})
    );
}

#[test]
fn a_damaged_seed_file_imports_nothing_and_names_the_file() {
    let seed = seed_folder();
    let broken = seed.data().join("sensors").join("dev-1").join("3000.json");
    write(&broken, r#"[{"ts":400,"data":"d"}"#);
    let dir = TempDir::new();
    let err = refused_start(dir.data(), &["--import-seed", &seed_arg(&seed)]);
    assert!(
        err.contains("3000.json") && err.contains("not valid JSON"),
        "{err}"
    );
    let left: Vec<String> = fs::read_dir(dir.data())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "LOCK" && !n.starts_with("wal-"))
        .collect();
    assert!(
        left.is_empty(),
        "files written by a failed import: {left:?}"
    );
    // Records of the wrong shape are refused the same way.
    write(&broken, r#"[{"ts":400,"data":7}]"#);
    let err = refused_start(dir.data(), &["--import-seed", &seed_arg(&seed)]);
    assert!(err.contains("a string `data`"), "{err}");
    // Once repaired, the import goes through.
    write(&broken, r#"[{"ts":400,"data":"d"}]"#);
    let seed_path = seed_arg(&seed);
    let s = Server::with_data_dir_args(&["--import-seed", &seed_path]);
    let v: Value = s.master().ok(
        "qdoc",
        json!({"col": "sensors", "doc": "dev-1", "to": 1000}),
    );
    assert_eq!(v["records"].as_array().map(Vec::len), Some(4));
}

#[test]
fn import_needs_a_data_folder() {
    let (status, _, err) = crate::common::run_binary(
        &["--secret-key", MASTER, "--import-seed", "/nonexistent"],
        std::time::Duration::from_secs(10),
    );
    assert!(!status.expect("exits").success());
    assert!(err.contains("--import-seed needs --data"), "{err}");
}
