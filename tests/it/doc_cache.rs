//! A connection's remembered documents (`store/doc_cache.rs`): an insert that finds its
//! document in the connection's cache must land in the collection's document of that name as
//! it is now, whatever came and went since — documents deleted and re-created, collections
//! dropped and re-created, from this connection or another, and more documents than the cache
//! holds. A `qdoc` finds its document through the same cache, so every read here (`stamps`)
//! checks that path too, from connections whose entries went stale.

use crate::common::{Client, Server};
use serde_json::json;

fn ins(c: &mut Client, col: &str, doc: &str, ts: i64) {
    let v = c.ok(
        "ins",
        json!([{"col": col, "doc": doc, "ts": ts, "data": format!("{doc}@{ts}")}]),
    );
    assert_eq!(v, json!({}), "ins is acknowledged");
}

/// The timestamps `doc` holds, oldest first; empty when there is no such document.
fn stamps(c: &mut Client, col: &str, doc: &str) -> Vec<i64> {
    let v = c.ok("qdoc", json!({"col": col, "doc": doc, "to": i64::MAX}));
    v["records"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|r| {
                    let ts = r["ts"].as_i64().unwrap();
                    assert_eq!(
                        r["data"],
                        json!(format!("{doc}@{ts}")),
                        "data of {doc}@{ts}"
                    );
                    ts
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_insert_after_ddoc_lands_in_the_new_document_from_either_connection() {
    let s = Server::start(&[]);
    let (mut a, mut b) = (s.master(), s.master());
    // The second insert appends, and the connection remembers the document.
    ins(&mut a, "c", "d", 1);
    ins(&mut a, "c", "d", 2);
    ins(&mut a, "c", "other", 1);
    a.ok("ddoc", json!({"col": "c", "doc": "d"}));
    assert!(stamps(&mut a, "c", "d").is_empty());
    // Re-created by this connection (a write), then appended to.
    ins(&mut a, "c", "d", 3);
    ins(&mut a, "c", "d", 4);
    assert_eq!(stamps(&mut b, "c", "d"), [3, 4]);
    // Deleted by another connection while this one remembers it.
    b.ok("ddoc", json!({"col": "c", "doc": "d"}));
    ins(&mut a, "c", "d", 5);
    ins(&mut a, "c", "d", 6);
    assert_eq!(stamps(&mut b, "c", "d"), [5, 6]);
    // Deleted and re-created by another connection: both write into the one document.
    ins(&mut b, "c", "d", 7);
    b.ok("ddoc", json!({"col": "c", "doc": "d"}));
    ins(&mut b, "c", "d", 8);
    ins(&mut b, "c", "d", 9);
    ins(&mut a, "c", "d", 10);
    ins(&mut b, "c", "d", 11);
    ins(&mut a, "c", "d", 12);
    assert_eq!(stamps(&mut a, "c", "d"), [8, 9, 10, 11, 12]);
    assert_eq!(stamps(&mut b, "c", "other"), [1]);
}

#[test]
fn an_insert_after_dcol_lands_in_the_new_collection_from_either_connection() {
    let s = Server::start(&[]);
    let (mut a, mut b) = (s.master(), s.master());
    for ts in 1..=3 {
        ins(&mut a, "c", "d", ts);
        ins(&mut b, "c", "e", ts);
    }
    a.ok("dcol", json!({"col": "c"}));
    // The re-created collection's document sets start over: an entry remembered in the old
    // one must not match the new one's.
    ins(&mut a, "c", "d", 4);
    ins(&mut a, "c", "d", 5);
    ins(&mut b, "c", "e", 4);
    ins(&mut b, "c", "e", 5);
    assert_eq!(stamps(&mut b, "c", "d"), [4, 5]);
    assert_eq!(stamps(&mut a, "c", "e"), [4, 5]);
    // Dropped by the other connection, re-created, written by both.
    b.ok("dcol", json!({"col": "c"}));
    ins(&mut b, "c", "d", 6);
    ins(&mut a, "c", "d", 7);
    ins(&mut b, "c", "d", 8);
    ins(&mut a, "c", "e", 6);
    ins(&mut a, "c", "e", 7);
    assert_eq!(stamps(&mut a, "c", "d"), [6, 7, 8]);
    assert_eq!(stamps(&mut b, "c", "e"), [6, 7]);
    // A collection of another name whose documents have the same names.
    ins(&mut a, "c2", "d", 1);
    ins(&mut a, "c2", "d", 2);
    assert_eq!(stamps(&mut b, "c2", "d"), [1, 2]);
    assert_eq!(stamps(&mut b, "c", "d"), [6, 7, 8]);
}

#[test]
fn more_documents_than_a_connection_remembers_all_get_their_records() {
    let s = Server::start(&[]);
    let (mut a, mut b) = (s.master(), s.master());
    // Over twice the cache's 256 entries, in rounds, so that entries are pushed out and
    // found again; names long and short (over 64 bytes are never remembered).
    let names: Vec<String> = (0..600)
        .map(|i| match i % 3 {
            0 => format!("d{i}"),
            1 => format!("document-{i}-{}", "x".repeat(i % 80)),
            _ => format!("{i}"),
        })
        .collect();
    for ts in 1..=3 {
        for n in &names {
            ins(&mut a, "c", n, ts);
        }
    }
    // Every other document deleted by the other connection, then all written again.
    for n in names.iter().step_by(2) {
        b.ok("ddoc", json!({"col": "c", "doc": n}));
    }
    for ts in 4..=5 {
        for n in &names {
            ins(&mut a, "c", n, ts);
        }
    }
    for (i, n) in names.iter().enumerate() {
        let want: Vec<i64> = if i % 2 == 0 {
            vec![4, 5]
        } else {
            vec![1, 2, 3, 4, 5]
        };
        assert_eq!(stamps(&mut b, "c", n), want, "document {n}");
    }
}

#[test]
fn records_trimmed_by_retention_then_appends_again() {
    let s = Server::start(&[]);
    let (mut a, mut b) = (s.master(), s.master());
    for ts in 1..=4 {
        ins(&mut a, "c", "d", ts);
    }
    // Retention in force: inserts take the write path and trim the document.
    b.ok("sret", json!({"col": "c", "max_records": 2}));
    assert_eq!(stamps(&mut b, "c", "d"), [3, 4]);
    ins(&mut a, "c", "d", 5);
    assert_eq!(stamps(&mut b, "c", "d"), [4, 5]);
    // Lifted: appends again, into the same document.
    b.ok("sret", json!({"col": "c"}));
    ins(&mut a, "c", "d", 6);
    ins(&mut a, "c", "d", 7);
    b.ok("ddoc", json!({"col": "c", "doc": "d"}));
    ins(&mut a, "c", "d", 8);
    ins(&mut a, "c", "d", 9);
    assert_eq!(stamps(&mut b, "c", "d"), [8, 9]);
}
