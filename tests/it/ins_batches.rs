//! `ins` batches in the SDKs' envelope (`type` before `data`), read straight from the escaped
//! string into a vector that the connection's thread keeps between requests
//! (`protocol/batch_spare.rs`): whatever came before on the connection — a batch larger than
//! the kept vector, a batch refused part-way — the next batch stores exactly its own records.

use crate::common::{Client, Server};
use serde_json::{json, Value};

/// Sends `records` as an `ins` in the SDKs' envelope and returns the answer without its id.
fn ins(c: &mut Client, id: &str, records: &Value) -> Value {
    let data = Value::String(records.to_string());
    c.send_text(&format!(r#"{{"id":"{id}","type":"ins","data":{data}}}"#));
    let mut v = c.recv_json();
    assert_eq!(v["id"], json!(id), "answer to {id}: {v}");
    v.as_object_mut().unwrap().remove("id");
    v
}

/// A record whose data needs escaping (quotes, a newline), as clients send JSON.
fn record(doc: &str, ts: i64) -> Value {
    json!({"col": "c", "doc": doc, "ts": ts, "data": format!("{{\"n\":{ts},\"s\":\"{doc}\\n\"}}")})
}

/// `(ts, data)` of every record `doc` holds, oldest first.
fn held(c: &mut Client, doc: &str) -> Vec<(i64, String)> {
    let v = c.ok("qdoc", json!({"col": "c", "doc": doc, "to": i64::MAX}));
    v["records"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|r| {
                    (
                        r["ts"].as_i64().unwrap(),
                        r["data"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn expected(doc: &str, stamps: impl IntoIterator<Item = i64>) -> Vec<(i64, String)> {
    stamps
        .into_iter()
        .map(|ts| {
            let r = record(doc, ts);
            (ts, r["data"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn small_batches_after_a_large_one_store_exactly_their_records() {
    let s = Server::start(&[]);
    let mut c = s.master();
    // Larger than the kept vector (16 records), over two documents.
    let large: Vec<Value> = (1..=300)
        .map(|ts| record(if ts % 2 == 0 { "a" } else { "b" }, ts))
        .collect();
    assert_eq!(ins(&mut c, "large", &json!(large)), json!({}));
    for ts in 301..=310 {
        assert_eq!(
            ins(&mut c, &format!("one{ts}"), &json!([record("a", ts)])),
            json!({})
        );
    }
    let three = json!([record("b", 311), record("a", 312), record("b", 313)]);
    assert_eq!(ins(&mut c, "three", &three), json!({}));
    let a: Vec<i64> = (2..=300).step_by(2).chain(301..=310).chain([312]).collect();
    let b: Vec<i64> = (1..=299).step_by(2).chain([311, 313]).collect();
    assert_eq!(held(&mut c, "a"), expected("a", a));
    assert_eq!(held(&mut c, "b"), expected("b", b));
}

#[test]
fn a_batch_refused_part_way_leaves_nothing_behind_for_the_next() {
    let s = Server::start(&[]);
    let mut c = s.master();
    assert_eq!(ins(&mut c, "first", &json!([record("a", 1)])), json!({}));
    // Its third record is refused (`ts` must be positive): nothing of the batch is stored.
    let refused = json!([
        record("a", 2),
        record("b", 3),
        record("a", 0),
        record("b", 4)
    ]);
    let answer = ins(&mut c, "refused", &refused);
    assert!(answer["error"].is_string(), "{answer}");
    // A document name that cannot be one, after two good records.
    let bad_name = json!([record("a", 5), record("b", 6), record("", 7)]);
    let answer = ins(&mut c, "bad-name", &bad_name);
    assert!(answer["error"].is_string(), "{answer}");
    assert_eq!(ins(&mut c, "next", &json!([record("b", 8)])), json!({}));
    assert_eq!(
        ins(&mut c, "last", &json!([record("a", 9), record("a", 10)])),
        json!({})
    );
    assert_eq!(held(&mut c, "a"), expected("a", [1, 9, 10]));
    assert_eq!(held(&mut c, "b"), expected("b", [8]));
}
