//! The command-line client (`fluxiondb <command>`): the real binary's subcommands against a real
//! server — every command, export → `dcol` → import round trips, archives in the upstream
//! shape (file names built here by hand from the upstream's rules), `import --legacy`, and
//! re-running an import.

use crate::common::{bare_command, cols, Server, MASTER};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        assert!(self.ok, "command failed: {}", self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `fluxiondb ARGS` with `FLUXIONDB_URL` / `FLUXIONDB_APIKEY` (master) set for `s`.
fn cli(s: &Server, args: &[&str]) -> Out {
    let url = format!("ws://127.0.0.1:{}", s.port);
    cli_env(
        args,
        &[
            ("FLUXIONDB_URL", url.as_str()),
            ("FLUXIONDB_APIKEY", MASTER),
        ],
    )
}

fn cli_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut child = bare_command()
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fluxiondb");
    let (mut o, mut e) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let to = thread::spawn(move || {
        let mut s = String::new();
        let _ = o.read_to_string(&mut s);
        s
    });
    let te = thread::spawn(move || {
        let mut s = String::new();
        let _ = e.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("fluxiondb {args:?} did not finish");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Out {
        ok: status.success(),
        stdout: to.join().unwrap(),
        stderr: te.join().unwrap(),
    }
}

/// A temporary folder, removed on drop.
struct Tmp(tempfile::TempDir);

impl Tmp {
    fn new() -> Tmp {
        Tmp(tempfile::Builder::new()
            .prefix("fluxiondb-cli-")
            .tempdir()
            .unwrap())
    }
    fn s(&self) -> &str {
        self.0.path().to_str().unwrap()
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Everything a collection holds: documents with all their records, and the key/values.
fn snapshot(s: &Server, col: &str) -> Value {
    let mut c = s.master();
    let latest = c.ok("qry", json!({"col": col, "ts": i64::MAX}));
    let mut docs = serde_json::Map::new();
    for doc in latest["records"].as_object().unwrap().keys() {
        let recs = c.ok(
            "qdoc",
            json!({"col": col, "doc": doc, "from": 0, "to": i64::MAX}),
        );
        docs.insert(doc.clone(), recs["records"].clone());
    }
    let values = c.ok("gvals", json!({"col": col}))["values"].clone();
    json!({"docs": docs, "values": values})
}

fn keys(s: &Server) -> Value {
    s.master().ok("keys", json!({"action": "list"}))["keys"].clone()
}

#[test]
fn every_command_end_to_end() {
    let s = Server::start(&[]);
    let ok = json!({"status": "ok"});
    for (doc, ts, data) in [("d1", "10", "a"), ("d1", "20", "b"), ("d2", "15", "<c>")] {
        let out = cli(
            &s,
            &[
                "insert-record",
                "--col",
                "c",
                "--doc",
                doc,
                "--ts",
                ts,
                "--data",
                data,
            ],
        );
        assert_eq!(out.json(), ok);
    }
    assert_eq!(cli(&s, &["fetch-collections"]).json(), json!(["c"]));
    let latest = cli(&s, &["fetch-latest", "--col", "c", "--ts", "100"]);
    // Printed as the upstream prints it: two-space indentation, Go's escaping of `<` and `>`.
    assert_eq!(
        latest.stdout,
        "{\n  \"d1\": {\n    \"ts\": 20,\n    \"data\": \"b\"\n  },\n  \"d2\": {\n    \"ts\": 15,\n    \"data\": \"\\u003cc\\u003e\"\n  }\n}\n"
    );
    assert_eq!(
        cli(
            &s,
            &[
                "fetch-latest",
                "--col",
                "c",
                "--ts",
                "100",
                "--doc",
                "/^d2$/"
            ]
        )
        .json(),
        json!({"d2": {"ts": 15, "data": "<c>"}})
    );
    assert_eq!(
        cli(
            &s,
            &["fetch-latest", "--col", "c", "--ts", "100", "--from", "16"]
        )
        .json(),
        json!({"d1": {"ts": 20, "data": "b"}})
    );
    assert_eq!(
        cli(
            &s,
            &[
                "fetch-document",
                "--col",
                "c",
                "--doc",
                "d1",
                "--from",
                "0",
                "--to",
                "100"
            ]
        )
        .json(),
        json!([{"ts": 10, "data": "a"}, {"ts": 20, "data": "b"}])
    );
    assert_eq!(
        cli(
            &s,
            &[
                "fetch-document",
                "--col",
                "c",
                "--doc",
                "d1",
                "--from",
                "0",
                "--to",
                "100",
                "--limit",
                "1",
                "--reverse"
            ]
        )
        .json(),
        json!([{"ts": 20, "data": "b"}])
    );
    let table = cli(
        &s,
        &[
            "fetch-document",
            "--col",
            "c",
            "--doc",
            "d1",
            "--from",
            "0",
            "--to",
            "100",
            "--output",
            "table",
        ],
    );
    assert_eq!(table.stdout, "TS  DATA\n10  a\n20  b\n");

    assert_eq!(
        cli(
            &s,
            &["set-value", "--col", "c", "--key", "k1", "--value", "v1"]
        )
        .json(),
        ok
    );
    assert_eq!(
        cli(
            &s,
            &["set-value", "--col", "c", "--key", "k2", "--value", "v2"]
        )
        .json(),
        ok
    );
    assert_eq!(
        cli(&s, &["get-values", "--col", "c"]).json(),
        json!({"k1": "v1", "k2": "v2"})
    );
    assert_eq!(
        cli(&s, &["get-values", "--col", "c", "--key", "/2$/"]).json(),
        json!({"k2": "v2"})
    );
    assert_eq!(
        cli(&s, &["list-keys", "--col", "c"]).json(),
        json!(["k1", "k2"])
    );
    assert_eq!(
        cli(&s, &["delete-value", "--col", "c", "--key", "k1"]).json(),
        ok
    );
    assert_eq!(cli(&s, &["list-keys", "--col", "c"]).json(), json!(["k2"]));

    let conns = cli(&s, &["connections", "--name", "cli test"]).json();
    let me: Vec<&Value> = conns
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["self"] == true)
        .collect();
    assert_eq!(me.len(), 1, "{conns}");
    assert_eq!(me[0]["name"], "cli test");
    assert_eq!(me[0]["ip"], "127.0.0.1");
    let order: Vec<&String> = me[0].as_object().unwrap().keys().collect();
    let printed = cli(&s, &["connections"]).stdout;
    assert!(
        printed.find("\"ip\"") < printed.find("\"since\"")
            && printed.find("\"self\"") < printed.find("\"name\""),
        "{printed} {order:?}"
    );

    let added = cli(&s, &["add-key", "--key", "reader", "--scope", "READONLY"]).json();
    assert_eq!(
        (added["status"].as_str(), added["scope"].as_str()),
        (Some("ok"), Some("readonly")),
        "{added}"
    );
    assert!(added["id"].is_string());
    let url = format!("ws://127.0.0.1:{}", s.port);
    let as_reader = cli_env(
        &["fetch-collections", "--url", &url, "--apikey", "reader"],
        &[],
    );
    assert_eq!(as_reader.json(), json!(["c"]));
    let denied = cli_env(
        &[
            "delete-collection",
            "--col",
            "c",
            "--url",
            &url,
            "--apikey",
            "reader",
        ],
        &[],
    );
    assert!(
        !denied.ok && denied.stderr.contains("permission denied"),
        "{}",
        denied.stderr
    );
    let removed = cli(&s, &["remove-key", "--key", "reader"]).json();
    assert_eq!(removed["status"], "ok");
    let gone = cli_env(
        &["fetch-collections", "--url", &url, "--apikey", "reader"],
        &[],
    );
    assert!(
        !gone.ok && gone.stderr.contains("Unknown API key"),
        "{}",
        gone.stderr
    );
    assert!(!cli(&s, &["add-key", "--key", "x", "--scope", "admin"]).ok);

    assert_eq!(
        cli(&s, &["delete-document", "--col", "c", "--doc", "d1"]).json(),
        ok
    );
    assert_eq!(
        cli(&s, &["fetch-latest", "--col", "c", "--ts", "100"]).json(),
        json!({"d2": {"ts": 15, "data": "<c>"}})
    );
    assert_eq!(cli(&s, &["delete-collection", "--col", "c"]).json(), ok);
    assert_eq!(cli(&s, &["fetch-collections"]).json(), json!([]));

    // A server-side error is reported, with a failing exit status.
    let bad = cli(
        &s,
        &["set-value", "--col", "c", "--key", "k", "--value", ""],
    );
    assert!(
        !bad.ok && bad.stderr.starts_with("Error: invalid payload"),
        "{}",
        bad.stderr
    );
    let no_url = cli_env(&["fetch-collections"], &[("FLUXIONDB_APIKEY", MASTER)]);
    assert!(
        !no_url.ok
            && no_url
                .stderr
                .contains("missing required --url or FLUXIONDB_URL"),
        "{}",
        no_url.stderr
    );
    let no_key = cli_env(&["fetch-collections", "--url", &url], &[]);
    assert!(
        !no_key.ok
            && no_key
                .stderr
                .contains("missing required --apikey or FLUXIONDB_APIKEY")
    );
}

/// Fills `col` with awkward document names, enough records to need several pages, key/values.
fn populate(s: &Server, col: &str, per_doc: i64) -> Vec<&'static str> {
    let docs = vec![
        "plain",
        "a/b",
        "..",
        "with space",
        "100%",
        "ñandú 東京",
        "$&+:=@;,?#",
        "_",
        "<tag>",
    ];
    let mut c = s.master();
    for (i, doc) in docs.iter().enumerate() {
        let mut batch = Vec::new();
        for ts in 1..=per_doc {
            batch.push(json!({"col": col, "doc": doc, "ts": ts * 3 + i as i64, "data": format!("{{\"v\":{ts},\"s\":\"<&>\u{2028}\"}}")}));
            if batch.len() == 500 {
                c.ok("ins", Value::Array(std::mem::take(&mut batch)));
            }
        }
        if !batch.is_empty() {
            c.ok("ins", Value::Array(batch));
        }
    }
    c.ok(
        "sval",
        json!({"col": col, "key": "region", "value": "eu & <us>"}),
    );
    c.ok("sval", json!({"col": col, "key": "ünï", "value": "v"}));
    docs
}

#[test]
fn export_dcol_import_round_trips_exactly() {
    let s = Server::start(&[]);
    populate(&s, "metrics", 1200);
    populate(&s, "nested/col name", 3);
    let mut c = s.master();
    c.ok(
        "keys",
        json!({"action": "add", "key": "ro-key", "scope": "readonly"}),
    );
    c.ok(
        "keys",
        json!({"action": "add", "key": "rw-key", "scope": "read_write"}),
    );
    let before = (
        snapshot(&s, "metrics"),
        snapshot(&s, "nested/col name"),
        keys(&s),
    );
    let dir = Tmp::new();
    let exported = cli(
        &s,
        &[
            "export",
            "--all",
            "--out-dir",
            dir.s(),
            "--batch",
            "500",
            "--depth",
            "3",
        ],
    )
    .json();
    assert_eq!(exported["outputDir"], dir.s());
    assert_eq!(exported["collections"][0]["collection"], "metrics");
    assert_eq!(exported["collections"][0]["documents"], 9);
    assert_eq!(exported["collections"][0]["records"], 9 * 1200);
    assert_eq!(exported["collections"][1]["collection"], "nested/col name");
    assert_eq!(
        exported["collections"][1]["outputDir"],
        format!("{}/nested/col name", dir.s())
    );
    assert_eq!(
        exported["apiKeys"],
        json!({"keys": 3, "outputFile": format!("{}/apikeys.json", dir.s())})
    );
    // The keys file holds the master key: its user's alone.
    let mode = std::fs::metadata(dir.0.path().join("apikeys.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "apikeys.json mode {mode:o}");
    assert!(dir
        .0
        .path()
        .join("nested/col name/key_value.json")
        .is_file());

    c.ok("dcol", json!({"col": "metrics"}));
    c.ok("dcol", json!({"col": "nested/col name"}));
    c.ok("keys", json!({"action": "remove", "key": "ro-key"}));
    c.ok("keys", json!({"action": "remove", "key": "rw-key"}));
    assert!(cols(&mut c).is_empty());

    let imported = cli(
        &s,
        &["import", "--all", "--in-dir", dir.s(), "--batch", "700"],
    )
    .json();
    assert_eq!(
        imported["collections"][0],
        json!({"collection": "metrics", "documents": 9, "records": 9 * 1200, "keyValues": 2, "inputDir": format!("{}/metrics", dir.s())})
    );
    assert_eq!(
        imported["apiKeys"]["keys"], 2,
        "the exporting server's master key is not re-added"
    );
    let after = (
        snapshot(&s, "metrics"),
        snapshot(&s, "nested/col name"),
        keys(&s),
    );
    assert_eq!(before, after);

    // Running the same import again changes nothing: a record with the same timestamp replaces.
    cli(&s, &["import", "--all", "--in-dir", dir.s()]).json();
    assert_eq!(
        before,
        (
            snapshot(&s, "metrics"),
            snapshot(&s, "nested/col name"),
            keys(&s)
        )
    );
}

/// Pages that end exactly on a document's last record, or just before or after it: every
/// record is written once, in order.
/// A re-export into an earlier export's folder used to empty each document's file when it
/// began the document (`File::create` on its name): one that then failed left documents of the
/// earlier export empty or half-written. Each file is now written under a temporary name and
/// renamed over the old one once whole and fsynced; a failure removes the temporary files.
#[test]
fn a_failed_re_export_leaves_the_earlier_export_whole() {
    let s = Server::start(&[]);
    let mut c = s.master();
    for doc in ["a", "b"] {
        let batch: Vec<Value> = (1..=100)
            .map(|ts| json!({"col": "m", "doc": doc, "ts": ts, "data": format!("{doc}{ts}")}))
            .collect();
        c.ok("ins", Value::Array(batch));
    }
    c.ok("sval", json!({"col": "m", "key": "k", "value": "v"}));
    let dir = Tmp::new();
    let export = |extra: &[&str]| {
        let mut args = vec!["export", "--col", "m", "--out-dir", dir.s()];
        args.extend_from_slice(extra);
        cli(&s, &args)
    };
    export(&[]).json();
    let col = dir.0.path().join("m");
    let read = |name: &str| std::fs::read_to_string(col.join(name)).unwrap();
    let a = read("a.jsonl");
    assert_eq!(a.lines().count(), 100);
    let kv = read("key_value.json");

    // The file of "b" can no longer be replaced: a folder took its name. One connection with
    // two documents in flight: "a" is begun before "b" fails.
    std::fs::remove_file(col.join("b.jsonl")).unwrap();
    write(&col.join("b.jsonl").join("keep"), "x");
    let out = export(&["--parallel", "1", "--depth", "2", "-q"]);
    assert!(!out.ok, "exported over a folder: {}", out.stdout);
    assert!(out.stderr.contains("b.jsonl"), "{}", out.stderr);
    let now = read("a.jsonl");
    assert!(
        now == a,
        "a.jsonl holds {} lines, not 100",
        now.lines().count()
    );
    assert_eq!(read("key_value.json"), kv);
    let expected: BTreeSet<String> = ["a.jsonl", "b.jsonl", "key_value.json"]
        .map(String::from)
        .into();
    assert_eq!(files(&col), expected, "temporary files left");

    // Once it can, the export replaces every file, and leaves only them.
    std::fs::remove_dir_all(col.join("b.jsonl")).unwrap();
    c.ok(
        "ins",
        json!([{"col": "m", "doc": "a", "ts": 101, "data": "a101"}]),
    );
    export(&["-q"]).json();
    assert_eq!(read("a.jsonl").lines().count(), 101);
    assert_eq!(read("b.jsonl").lines().count(), 100);
    assert_eq!(files(&col), expected);
}

#[test]
fn export_pages_end_on_the_last_record() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let batch: Vec<Value> = (1..=1000)
        .map(|ts| json!({"col": "pages", "doc": "d", "ts": ts * 10, "data": format!("r{ts}")}))
        .collect();
    c.ok("ins", Value::Array(batch));
    let expected: String = (1..=1000)
        .map(|ts| format!("{{\"ts\":{},\"doc\":\"d\",\"data\":\"r{ts}\"}}\n", ts * 10))
        .collect();
    for page in ["250", "500", "999", "1000", "1001"] {
        let dir = Tmp::new();
        let out = cli(
            &s,
            &[
                "export",
                "--col",
                "pages",
                "--out-dir",
                dir.s(),
                "--batch",
                page,
            ],
        )
        .json();
        assert_eq!(out["collections"][0]["records"], 1000, "page {page}");
        let text = std::fs::read_to_string(dir.0.path().join("pages/d.jsonl")).unwrap();
        assert!(
            text == expected,
            "page {page}: {} lines",
            text.lines().count()
        );
    }
}

#[test]
fn export_writes_the_upstream_file_names_and_lines() {
    let s = Server::start(&[]);
    let docs = populate(&s, "dir/sub col", 2);
    let dir = Tmp::new();
    let out = cli(
        &s,
        &["export", "--col", "dir/sub col", "--out-dir", dir.s()],
    );
    out.json();
    // Go's url.PathEscape, by hand: only A-Z a-z 0-9 - _ . ~ $ & + : = @ stay as they are.
    let expected: BTreeSet<String> = [
        "plain.jsonl",
        "a%2Fb.jsonl",
        "...jsonl",
        "with%20space.jsonl",
        "100%25.jsonl",
        "%C3%B1and%C3%BA%20%E6%9D%B1%E4%BA%AC.jsonl",
        "$&+:=@%3B%2C%3F%23.jsonl",
        "_.jsonl",
        "%3Ctag%3E.jsonl",
        "key_value.json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(docs.len() + 1, expected.len());
    let col_dir = dir.0.path().join("dir").join("sub col");
    assert_eq!(files(&col_dir), expected);
    // Lines as Go's json.Marshal writes {"ts","doc","data"}; `<`, `>`, `&`, U+2028 escaped.
    let text = std::fs::read_to_string(col_dir.join("%3Ctag%3E.jsonl")).unwrap();
    assert_eq!(
        text,
        "{\"ts\":11,\"doc\":\"\\u003ctag\\u003e\",\"data\":\"{\\\"v\\\":1,\\\"s\\\":\\\"\\u003c\\u0026\\u003e\\u2028\\\"}\"}\n\
         {\"ts\":14,\"doc\":\"\\u003ctag\\u003e\",\"data\":\"{\\\"v\\\":2,\\\"s\\\":\\\"\\u003c\\u0026\\u003e\\u2028\\\"}\"}\n"
    );
    let kv = std::fs::read_to_string(col_dir.join("key_value.json")).unwrap();
    assert_eq!(
        kv,
        "{\n  \"region\": \"eu \\u0026 \\u003cus\\u003e\",\n  \"ünï\": \"v\"\n}\n"
    );
    // `--no-sync` only skips the waits for the disk: the same files, byte for byte.
    let quick = Tmp::new();
    cli(
        &s,
        &[
            "export",
            "--col",
            "dir/sub col",
            "--out-dir",
            quick.s(),
            "--no-sync",
        ],
    )
    .json();
    let quick_dir = quick.0.path().join("dir").join("sub col");
    assert_eq!(files(&quick_dir), expected);
    for name in &expected {
        assert_eq!(
            std::fs::read(quick_dir.join(name)).unwrap(),
            std::fs::read(col_dir.join(name)).unwrap(),
            "{name}"
        );
    }
    // A collection name that a folder cannot give back is refused, nothing written outside.
    let mut c = s.master();
    c.ok(
        "ins",
        json!([{"col": "../escape", "doc": "d", "ts": 1, "data": "x"}]),
    );
    let refused = cli(&s, &["export", "--col", "../escape", "--out-dir", dir.s()]);
    assert!(
        !refused.ok && refused.stderr.contains("cannot be stored as a folder"),
        "{}",
        refused.stderr
    );
    assert!(!dir.0.path().parent().unwrap().join("escape").exists());
}

#[test]
fn imports_an_archive_in_the_upstream_shape() {
    let s = Server::start(&[]);
    let dir = Tmp::new();
    let col = dir.0.path().join("site").join("a b");
    // As the upstream writes them (Go escaping of `<`, `&`), and hand-written variants.
    write(&col.join("a%2Fb.jsonl"), "{\"ts\":1,\"doc\":\"a/b\",\"data\":\"\\u003cx\\u0026y\\u003e\"}\n{\"ts\":2,\"doc\":\"a/b\",\"data\":\"two\"}\n");
    write(
        &col.join("...jsonl"),
        "{\"ts\":5,\"doc\":\"..\",\"data\":\"dots\"}\n",
    );
    write(&col.join("100%25%20x.jsonl"), "{ \"data\": \"spaced\", \"ts\": 7, \"doc\": \"100% x\" }\n\n{\"ts\":8,\"data\":\"no doc member\"}\n");
    write(
        &col.join("%C3%B1%E6%9D%B1.jsonl"),
        "{\"ts\":9,\"doc\":\"ñ東\",\"data\":\"ok\"}\n",
    );
    // `_` is the file of the empty name; the name comes from the file, so it imports as `_`.
    write(
        &col.join("_.jsonl"),
        "{\"ts\":3,\"doc\":\"\",\"data\":\"empty\"}\n",
    );
    write(
        &col.join(".jsonl"),
        "{\"ts\":4,\"doc\":\"\",\"data\":\"skipped\"}\n",
    );
    write(
        &col.join("bad%zz.jsonl"),
        "{\"ts\":4,\"doc\":\"x\",\"data\":\"skipped\"}\n",
    );
    write(&col.join("notes.txt"), "not a document\n");
    write(
        &col.join("key_value.json"),
        "{\n  \"k\": \"v \\u0026 w\"\n}\n",
    );
    write(&dir.0.path().join("apikeys.json"), "[\n  {\"key\": \"old-master\", \"scope\": \"read_write_delete\", \"deletable\": false},\n  {\"key\": \"svc\", \"scope\": \"read-write\", \"deletable\": true}\n]\n");
    let out = cli(&s, &["import", "--all", "--in-dir", dir.s()]).json();
    assert_eq!(out["collections"][0]["collection"], "site/a b");
    assert_eq!(out["collections"][0]["documents"], 5);
    assert_eq!(out["collections"][0]["records"], 7);
    assert_eq!(out["collections"][0]["keyValues"], 1);
    assert_eq!(out["apiKeys"]["keys"], 1);
    assert_eq!(
        snapshot(&s, "site/a b"),
        json!({
            "docs": {
                "a/b": [{"ts": 1, "data": "<x&y>"}, {"ts": 2, "data": "two"}],
                "..": [{"ts": 5, "data": "dots"}],
                "100% x": [{"ts": 7, "data": "spaced"}, {"ts": 8, "data": "no doc member"}],
                "ñ東": [{"ts": 9, "data": "ok"}],
                "_": [{"ts": 3, "data": "empty"}],
            },
            "values": {"k": "v & w"},
        })
    );
    let listed: Vec<String> = keys(&s)
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, vec![MASTER.to_string(), "svc".into()]);

    // A line naming another document than its file is refused.
    let bad = Tmp::new();
    write(
        &bad.0.path().join("c").join("d.jsonl"),
        "{\"ts\":1,\"doc\":\"d\",\"data\":\"x\"}\n{\"ts\":2,\"doc\":\"e\",\"data\":\"x\"}\n",
    );
    let refused = cli(&s, &["import", "--col", "c", "--in-dir", bad.s()]);
    assert!(
        !refused.ok && refused.stderr.contains("document mismatch"),
        "{}",
        refused.stderr
    );
    let missing = cli(&s, &["import", "--in-dir", bad.s()]);
    assert!(
        !missing.ok
            && missing
                .stderr
                .contains("specify at least one of --col, --api-keys, or --all")
    );
    // export and import check their selection the same way; an empty --col is no choice.
    for (args, error) in [
        (
            vec!["export", "--out-dir", bad.s()],
            "specify at least one of --col, --api-keys, or --all",
        ),
        (
            vec!["import", "--in-dir", bad.s(), "--col", ""],
            "specify at least one of --col, --api-keys, or --all",
        ),
    ] {
        let out = cli(&s, &args);
        assert!(!out.ok, "{args:?}");
        assert_eq!(out.stderr, format!("Error: {error}\n"), "{args:?}");
    }
}

#[test]
fn an_interrupted_import_runs_again_without_duplicates() {
    let s = Server::start(&[]);
    let dir = Tmp::new();
    let mut full = String::new();
    for ts in 1..=3000 {
        full.push_str(&format!(
            "{{\"ts\":{ts},\"doc\":\"d\",\"data\":\"v{ts}\"}}\n"
        ));
    }
    let path = dir.0.path().join("c").join("d.jsonl");
    // The first run stops part-way (here: the file was cut), the second is complete.
    let half: String = full.lines().take(1500).map(|l| format!("{l}\n")).collect();
    write(&path, &half);
    cli(
        &s,
        &[
            "import",
            "--col",
            "c",
            "--in-dir",
            dir.s(),
            "--batch",
            "100",
        ],
    )
    .json();
    write(&path, &full);
    for _ in 0..2 {
        let out = cli(
            &s,
            &[
                "import",
                "--col",
                "c",
                "--in-dir",
                dir.s(),
                "--batch",
                "100",
            ],
        )
        .json();
        assert_eq!(out["collections"][0]["records"], 3000);
        let recs = s.master().ok(
            "qdoc",
            json!({"col": "c", "doc": "d", "from": 0, "to": i64::MAX}),
        );
        let recs = recs["records"].as_array().unwrap().clone();
        assert_eq!(recs.len(), 3000);
        assert_eq!(recs[2999], json!({"ts": 3000, "data": "v3000"}));
    }
}

#[test]
fn legacy_import() {
    let s = Server::start(&[]);
    let dir = Tmp::new();
    let col = dir.0.path().join("old");
    write(
        &col.join("dev 1").join("1700000000.json"),
        "{\"data\": \"from the file name\"}",
    );
    write(
        &col.join("dev 1").join("x.json"),
        "{\"ts\": 5, \"data\": {\"k\": [1, 2.50]}}",
    );
    write(
        &col.join("dev 1").join("arr.json"),
        "[{\"timestamp\": \"7\", \"data\": \"b\"}, {\"time\": 8.9, \"v\": \"<1>\"}]",
    );
    write(
        &col.join("dev 1").join("sub").join("9.JSON"),
        "{\"data\":\"nested\"}",
    );
    write(&col.join("dev 1").join("readme.txt"), "ignored");
    write(&col.join("dev2").join("10.json"), "{\"data\":\"d2\"}");
    write(&col.join("empty").join("readme.txt"), "not a document");
    write(&col.join("key_value.json"), "{\"mode\": \"legacy\"}");
    write(&dir.0.path().join("apikeys.json"), "[]");
    let out = cli(
        &s,
        &["import", "--legacy", "--all", "--in-dir", dir.s(), "-q"],
    );
    assert!(
        out.stderr.is_empty(),
        "--quiet prints nothing on stderr: {}",
        out.stderr
    );
    let out = out.json();
    // One collection: "dev 1/sub" belongs to its document, it is no collection "old/dev 1".
    assert_eq!(
        out["collections"],
        json!([{"collection": "old", "documents": 2, "records": 6, "keyValues": 1, "inputDir": format!("{}/old", dir.s())}])
    );
    assert_eq!(
        snapshot(&s, "old"),
        json!({
            "docs": {
                "dev 1": [
                    {"ts": 5, "data": "{\"k\":[1,2.50]}"},
                    {"ts": 7, "data": "b"},
                    {"ts": 8, "data": "{\"time\":8.9,\"v\":\"\\u003c1\\u003e\"}"},
                    {"ts": 9, "data": "nested"},
                    {"ts": 1_700_000_000, "data": "from the file name"},
                ],
                "dev2": [{"ts": 10, "data": "d2"}],
            },
            "values": {"mode": "legacy"},
        })
    );
    // A record without a time anywhere is an error naming the file.
    write(&col.join("dev2").join("nots.json"), "{\"data\":\"x\"}");
    let bad = cli(
        &s,
        &["import", "--legacy", "--col", "old", "--in-dir", dir.s()],
    );
    assert!(
        !bad.ok && bad.stderr.contains("nots.json: missing ts/timestamp/time"),
        "{}",
        bad.stderr
    );
}

#[test]
fn progress_lines_when_not_a_terminal() {
    let s = Server::start(&[]);
    populate(&s, "p", 10);
    let dir = Tmp::new();
    let out = cli(&s, &["export", "--col", "p", "--out-dir", dir.s()]);
    out.json();
    assert!(
        out.stderr
            .contains("export: 100.0% (9/9 documents), 90 records"),
        "{}",
        out.stderr
    );
    let out = cli(&s, &["import", "--col", "p", "--in-dir", dir.s()]);
    out.json();
    assert!(
        out.stderr.contains("import: 100.0%") && out.stderr.contains("records/s"),
        "{}",
        out.stderr
    );
}

/// The server's environment variables are not the client commands': a value only the server
/// reads, in a form it would refuse, used to stop every command with exit 2 naming a flag the
/// user never passed.
#[test]
fn the_servers_environment_does_not_break_client_commands() {
    let s = Server::start(&[]);
    let url = format!("ws://127.0.0.1:{}", s.port);
    let port = s.port.to_string();
    let servers = [
        ("LOG_LEVEL", "DEBUG"),
        ("BIND", "localhost"),
        ("FSYNC", "true"),
        ("METRICS_PUBLIC", "maybe"),
        ("PORT", "not-a-port"),
    ];
    let mut env = vec![
        ("FLUXIONDB_URL", url.as_str()),
        ("FLUXIONDB_APIKEY", MASTER),
    ];
    env.extend_from_slice(&servers[..4]);
    let out = cli_env(&["fetch-collections"], &env);
    assert!(out.ok, "{}", out.stderr);
    // healthcheck reads PORT like the server, and only that.
    let mut env = vec![("PORT", port.as_str())];
    env.extend_from_slice(&servers[..4]);
    let out = cli_env(&["healthcheck"], &env);
    assert!(out.ok, "{}", out.stderr);
}

/// Every file under `dir`, by path relative to it.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap();
                out.insert(rel.to_str().unwrap().to_string());
            }
        }
    }
    out
}

/// One name that cannot be stored used to stop `export --all` where it was met: a document
/// whose file name is over the file system's limit (or one of 245 bytes, whose temporary name
/// `NAME.tmp-PID` was over it), a collection that cannot be a folder (refused before anything
/// was written). Now everything else is written, each name left out is named on stderr, and
/// the export exits 1 with a summary.
#[test]
fn export_all_leaves_out_only_the_names_that_cannot_be_stored() {
    let s = Server::start(&[]);
    let fits = "x".repeat(245); // x….jsonl: 251 bytes, within 255
    let over = "東".repeat(100); // %E6%9D%B1…: 906 bytes
    let mut c = s.master();
    for (col, doc, ts) in [
        ("a", "ok1", 5),
        ("long", fits.as_str(), 6),
        ("long", over.as_str(), 7),
        ("long", "n", 8),
        ("logs/", "d", 9),
        ("z", "ok2", 10),
    ] {
        c.ok(
            "ins",
            json!([{"col": col, "doc": doc, "ts": ts, "data": format!("v{ts}")}]),
        );
    }
    c.ok("sval", json!({"col": "z", "key": "k", "value": "v"}));
    c.ok(
        "keys",
        json!({"action": "add", "key": "ro-key", "scope": "readonly"}),
    );
    let before: Vec<Value> = ["a", "long", "z"].iter().map(|c| snapshot(&s, c)).collect();
    let keys_before = keys(&s);

    let dir = Tmp::new();
    let out = cli(&s, &["export", "--all", "--out-dir", dir.s(), "-q"]);
    assert!(!out.ok, "an incomplete export exits 1: {}", out.stdout);
    assert_eq!(
        out.stderr,
        format!(
            "warning: left out of the export: collection \"logs/\": it cannot be stored as a folder (an empty, '.' or '..' part between slashes would not come back unchanged)\n\
             warning: left out of the export: document \"{over}\" of collection \"long\": its file name would be 906 bytes, over the file system's limit of 255\n\
             Error: export incomplete: 2 names left out (1 collection that cannot be stored as a folder, 1 document whose file name or path is too long for the file system), each named above; everything else was written\n"
        )
    );
    // The summary still says what was written, and lists what was not.
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    let written: Vec<(&str, u64)> = summary["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["collection"].as_str().unwrap(),
                c["documents"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(written, vec![("a", 1), ("long", 2), ("z", 1)]);
    assert_eq!(summary["apiKeys"]["keys"], 2);
    assert_eq!(
        summary["leftOut"][1],
        json!({"collection": "long", "document": over, "reason": "its file name would be 906 bytes, over the file system's limit of 255"})
    );
    let expected: BTreeSet<String> = [
        "apikeys.json".to_string(),
        "a/ok1.jsonl".into(),
        "a/key_value.json".into(),
        format!("long/{fits}.jsonl"),
        "long/n.jsonl".into(),
        "long/key_value.json".into(),
        "z/ok2.jsonl".into(),
        "z/key_value.json".into(),
    ]
    .into();
    assert_eq!(tree(dir.0.path()), expected, "no temporary file is left");

    // Everything written comes back.
    for col in ["a", "long", "z", "logs/"] {
        c.ok("dcol", json!({"col": col}));
    }
    c.ok("keys", json!({"action": "remove", "key": "ro-key"}));
    cli(&s, &["import", "--all", "--in-dir", dir.s(), "-q"]).json();
    let mut long = before[1].clone();
    long["docs"].as_object_mut().unwrap().remove(&over);
    assert_eq!(snapshot(&s, "a"), before[0]);
    assert_eq!(snapshot(&s, "long"), long);
    assert_eq!(snapshot(&s, "z"), before[2]);
    assert_eq!(keys(&s), keys_before);
    assert_eq!(cols(&mut c), vec!["a", "long", "z"]);
}

/// `import --legacy --all` took every folder holding `*.json` files as a collection, so a
/// document's sub-folder became a collection `<col>/<doc>` of its own; and `--all` on an
/// archive without `apikeys.json` (every legacy one, any made with `export --col`) failed with
/// exit 1 after importing everything. Only DIR's own folders are legacy collections now, and
/// `--all` takes the keys there are (none: a note on stderr); `--api-keys` fails before
/// importing anything.
#[test]
fn legacy_all_takes_top_level_folders_and_needs_no_keys_file() {
    let s = Server::start(&[]);
    let dir = Tmp::new();
    let lc = dir.0.path().join("lc");
    write(
        &lc.join("doc1").join("x.json"),
        "{\"ts\": 10, \"data\": \"a\"}",
    );
    write(
        &lc.join("doc1").join("sub").join("y.json"),
        "[{\"timestamp\": \"11\", \"data\": {\"k\": 1}}, {\"time\": 12.7, \"v\": 2}]",
    );
    write(&lc.join("doc2").join("1700000000.json"), "{\"v\": 3}");
    write(&dir.0.path().join("stray.json"), "{\"ts\": 1}");
    let note = format!(
        "note: the archive holds no API keys ({}/apikeys.json not found): none were imported\n",
        dir.s()
    );
    let out = cli(
        &s,
        &["import", "--legacy", "--all", "--in-dir", dir.s(), "-q"],
    );
    assert_eq!(out.stderr, note);
    let summary = out.json();
    assert_eq!(
        summary,
        json!({"inputDir": dir.s(), "collections": [{"collection": "lc", "documents": 2, "records": 4, "keyValues": 0, "inputDir": format!("{}/lc", dir.s())}]})
    );
    let mut c = s.master();
    assert_eq!(cols(&mut c), vec!["lc"]);
    assert_eq!(
        snapshot(&s, "lc"),
        json!({
            "docs": {
                "doc1": [
                    {"ts": 10, "data": "a"},
                    {"ts": 11, "data": "{\"k\":1}"},
                    {"ts": 12, "data": "{\"time\":12.7,\"v\":2}"},
                ],
                "doc2": [{"ts": 1_700_000_000, "data": "{\"v\":3}"}],
            },
            "values": {},
        })
    );

    // An archive made with `export --col`: `--all` imports it whole, exit 0.
    let exported = Tmp::new();
    cli(
        &s,
        &["export", "--col", "lc", "--out-dir", exported.s(), "-q"],
    )
    .json();
    c.ok("dcol", json!({"col": "lc"}));
    let out = cli(&s, &["import", "--all", "--in-dir", exported.s(), "-q"]);
    assert_eq!(
        out.stderr,
        format!(
            "note: the archive holds no API keys ({}/apikeys.json not found): none were imported\n",
            exported.s()
        )
    );
    assert_eq!(out.json()["collections"][0]["records"], 4);
    assert_eq!(cols(&mut c), vec!["lc"]);

    // `--api-keys` needs the file: refused before anything is imported.
    c.ok("dcol", json!({"col": "lc"}));
    let out = cli(
        &s,
        &[
            "import",
            "--api-keys",
            "--col",
            "lc",
            "--in-dir",
            exported.s(),
        ],
    );
    assert!(!out.ok);
    assert_eq!(
        out.stderr,
        format!(
            "Error: api keys file {}/apikeys.json not found\n",
            exported.s()
        )
    );
    // A keys file that cannot be used is refused before anything is imported too.
    write(
        &exported.0.path().join("apikeys.json"),
        "[{\"key\": \"k2\", \"scope\": \"superuser\", \"deletable\": true}]",
    );
    let out = cli(&s, &["import", "--all", "--in-dir", exported.s()]);
    assert!(!out.ok);
    assert_eq!(out.stderr, "Error: key k2: invalid scope \"superuser\"\n");
    assert!(
        cols(&mut c).is_empty(),
        "nothing imported before the refusal"
    );
    // An empty folder holds nothing to import.
    let empty = Tmp::new();
    let out = cli(&s, &["import", "--all", "--in-dir", empty.s()]);
    assert_eq!(
        out.stderr,
        format!(
            "Error: nothing to import: {} holds no collection and no apikeys.json\n",
            empty.s()
        )
    );
}

/// Names the file system refuses although the file name itself fits: a collection folder whose
/// name is over the limit, and a document whose path (deep in nested collection folders) is
/// over `PATH_MAX` — its temporary file is written, the rename into place is refused. Both are
/// left out like the names above; the rest of their collections is written.
#[test]
fn export_leaves_out_names_the_file_system_refuses() {
    let s = Server::start(&[]);
    let long_col = "c".repeat(300);
    // 16 folders of 240 bytes: about 3,880 bytes of path before the documents' names.
    let deep = vec!["d".repeat(240); 16].join("/");
    let far = "f".repeat(230);
    let mut c = s.master();
    for (col, doc, ts) in [
        (long_col.as_str(), "x", 1),
        (deep.as_str(), "near", 2),
        (deep.as_str(), far.as_str(), 3),
        ("ok", "y", 4),
    ] {
        c.ok(
            "ins",
            json!([{"col": col, "doc": doc, "ts": ts, "data": "v"}]),
        );
    }
    c.ok("sval", json!({"col": deep, "key": "k", "value": "v"}));
    let dir = Tmp::new();
    assert!(dir.s().len() + deep.len() + far.len() + 8 > 4096);
    assert!(dir.s().len() + deep.len() + 40 < 4096);
    let out = cli(&s, &["export", "--all", "--out-dir", dir.s(), "-q"]);
    assert!(!out.ok);
    assert_eq!(
        out.stderr,
        format!(
            "warning: left out of the export: collection \"{long_col}\": the file system refused its file name or path as too long (ENAMETOOLONG)\n\
             warning: left out of the export: document \"{far}\" of collection \"{deep}\": the file system refused its file name or path as too long (ENAMETOOLONG)\n\
             Error: export incomplete: 2 names left out (1 collection whose folder name or path is too long for the file system, 1 document whose file name or path is too long for the file system), each named above; everything else was written\n"
        )
    );
    let expected: BTreeSet<String> = [
        "apikeys.json".to_string(),
        format!("{deep}/near.jsonl"),
        format!("{deep}/key_value.json"),
        "ok/y.jsonl".into(),
        "ok/key_value.json".into(),
    ]
    .into();
    assert_eq!(tree(dir.0.path()), expected, "no temporary file is left");
}
