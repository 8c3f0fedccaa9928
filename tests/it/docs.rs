//! docs/protocol.md is held to what the server does:
//!
//! * every example (a fenced block of `→` request and `←` answer lines) is replayed, in page
//!   order, on one server started with the master key `dev-secret`, and each answer must match
//!   the one shown (a `since` of `conn` may be any non-negative integer);
//! * every text of the tables under "Field rules", "All texts" and "Close codes" must really be
//!   sent: it is an expectation of tests/vectors/protocol.json, an answer of the page's own
//!   (replayed) examples, or a string literal in the server's source.

use crate::common::matcher::match_json;
use crate::common::runner::{load_vectors, vectors_path};
use crate::common::{truncate, Client, Frame, Server};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The master key of the page's examples.
const EXAMPLE_KEY: &str = "dev-secret";

fn doc_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/protocol.md")
}

fn read_doc() -> String {
    let path = doc_path();
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {} ({e})", path.display()))
}

/// One line of an example: sent by the client (`→`) or expected from the server (`←`).
struct Line {
    send: bool,
    text: String,
    /// 1-based line number in the page.
    at: usize,
}

/// The example lines of every fenced block made only of `→ ` and `← ` lines, in page order.
fn examples(doc: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut block: Option<Vec<Line>> = None;
    for (i, line) in doc.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            match block.take() {
                None => block = Some(Vec::new()),
                Some(lines) => {
                    let all_frames = !lines.is_empty() && lines.iter().all(|l| !l.text.is_empty());
                    if all_frames {
                        out.extend(lines);
                    }
                }
            }
            continue;
        }
        if let Some(lines) = block.as_mut() {
            if line.trim().is_empty() {
                continue;
            }
            let frame = |prefix: &str| line.strip_prefix(prefix).map(str::to_owned);
            let (send, text) = match (frame("→ "), frame("← ")) {
                (Some(t), _) => (true, t),
                (_, Some(t)) => (false, t),
                // Not an example block: marked by an empty text, dropped at the fence.
                _ => (true, String::new()),
            };
            lines.push(Line {
                send,
                text,
                at: i + 1,
            });
        }
    }
    assert!(
        block.is_none(),
        "{}: unclosed code fence",
        doc_path().display()
    );
    out
}

/// `since` in `conn` answers is a duration: any non-negative integer matches.
fn loosen_since(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                if k == "since" && item.is_i64() {
                    *item = serde_json::json!({"$any": "integer", "$min": 0});
                } else {
                    loosen_since(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(loosen_since),
        _ => {}
    }
}

#[test]
fn protocol_examples_are_what_the_server_answers() {
    let doc = read_doc();
    let lines = examples(&doc);
    let sends = lines.iter().filter(|l| l.send).count();
    assert!(
        sends >= 40,
        "only {sends} example requests found in {}",
        doc_path().display()
    );
    let server = Server::start_full(EXAMPLE_KEY, &[], false);
    let mut client = Client::connect(server.port, &format!("/?api-key={EXAMPLE_KEY}&name=ops"))
        .unwrap_or_else(|e| panic!("{e}"));
    for line in &lines {
        let place = format!("docs/protocol.md line {}", line.at);
        if line.send {
            client
                .try_send_text(&line.text)
                .unwrap_or_else(|e| panic!("{place}: send failed: {e}"));
            continue;
        }
        let mut expected: Value = serde_json::from_str(&line.text)
            .unwrap_or_else(|e| panic!("{place}: the answer shown is not JSON ({e})"));
        loosen_since(&mut expected);
        let actual = match client.next_frame() {
            Frame::Text(t) => serde_json::from_str::<Value>(&t).unwrap_or_else(|e| {
                panic!("{place}: the server sent a frame that is not JSON ({e}): {t}")
            }),
            other => panic!(
                "{place}: expected {}, got {}\n  server stderr: {}",
                truncate(&line.text, 300),
                other.describe(),
                server.stderr_tail()
            ),
        };
        if let Err(diff) = match_json(&expected, &actual) {
            panic!(
                "{place}: the server answers differently: {diff}\n  shown:  {}\n  actual: {}",
                truncate(&line.text, 400),
                truncate(&actual.to_string(), 400)
            );
        }
    }
}

/// The backquoted texts in column `column` (0-based) of the first table after the heading
/// `heading`.
fn table_texts(doc: &str, heading: &str, column: usize) -> Vec<String> {
    let mut lines = doc.lines().skip_while(|l| l.trim() != heading);
    assert!(
        lines.next().is_some(),
        "{}: no heading {heading:?}",
        doc_path().display()
    );
    let rows: Vec<&str> = lines
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // the header and its separator
        .collect();
    rows.iter()
        .map(|row| {
            let cell = row.split('|').nth(column + 1).unwrap_or("").trim();
            let text = cell
                .strip_prefix('`')
                .and_then(|c| c.strip_suffix('`'))
                .filter(|t| !t.contains('`'))
                .unwrap_or_else(|| {
                    panic!("{heading}: the cell {cell:?} is not one backquoted text")
                });
            text.to_owned()
        })
        .collect()
}

/// Every error text and close reason the vectors expect.
fn vector_texts() -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(e)) = map.get("error") {
                    out.insert(e.clone());
                }
                if let Some(Value::String(r)) = map.get("reason") {
                    out.insert(r.clone());
                }
                map.values().for_each(|item| walk(item, out));
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(&load_vectors(), &mut out);
    out
}

/// The error texts of the page's example answers (checked by the replay test).
fn example_texts(doc: &str) -> BTreeSet<String> {
    examples(doc)
        .iter()
        .filter(|l| !l.send)
        .filter_map(|l| serde_json::from_str::<Value>(&l.text).ok())
        .filter_map(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// The text of every Rust file under `src/`.
fn source_text() -> String {
    fn walk(dir: &Path, out: &mut String) {
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read {} ({e})", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
                out.push('\n');
            }
        }
    }
    let mut out = String::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out
}

#[test]
fn documented_error_texts_and_close_reasons_are_really_sent() {
    let doc = read_doc();
    let known: BTreeSet<String> = vector_texts()
        .into_iter()
        .chain(example_texts(&doc))
        .collect();
    let source = source_text();
    let in_source = |t: &str| source.contains(&format!("\"{t}\""));

    let mut missing = Vec::new();
    let tables = [
        ("### All texts", 0, 20),
        ("### Close codes", 1, 10),
        ("### Field rules", 0, 6),
    ];
    for (heading, column, at_least) in tables {
        let texts = table_texts(&doc, heading, column);
        assert!(
            texts.len() >= at_least,
            "{heading}: only {} rows found in {}",
            texts.len(),
            doc_path().display()
        );
        for t in texts {
            let rule_used =
                heading == "### Field rules" && known.iter().any(|k| k.ends_with(&format!(" {t}")));
            if !(known.contains(&t) || in_source(&t) || rule_used) {
                missing.push(format!("{heading}: `{t}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "texts of {} that neither {} expects, nor the page's examples show, nor src/ contains:\n  {}",
        doc_path().display(),
        vectors_path().display(),
        missing.join("\n  ")
    );
}
