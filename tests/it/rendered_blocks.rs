//! The newest sealed blocks of a document that is read are kept in the form answers write
//! their records (the store's `series/rendered.rs`), and so is its plain block, by its readers
//! (`series/plain_text.rs`), so a `qdoc` copies each record whole. A
//! `qdoc` with a `filter` that drops nothing (`"\u0001"`, which no record here holds) has each
//! record written from its time and data instead: the two answers must be the same bytes, in
//! both orders, for every window and limit, on the first read of a block (which renders it)
//! and the next ones (which copy), and after changes to the blocks.

use crate::common::{recs, Client, Server};
use serde_json::{json, Value};

/// Data with quotes, escapes, non-ASCII text and lengths around the short-copy sizes.
fn data(ts: i64) -> String {
    match ts % 5 {
        0 => format!("{{\"seq\":{ts},\"pad\":\"a\\\"b\"}}"),
        1 => "é".repeat((ts % 40) as usize),
        2 => String::new(),
        3 => format!("line\n{ts}\ttab \u{2} ctl"),
        _ => "x".repeat((ts % 130) as usize),
    }
}

/// Asserts that `qdoc` over `doc` answers alike with and without the filter, and that the
/// answer holds the records it should, for windows across blocks and the plain block.
fn check(c: &mut Client, doc: &str, what: &str) {
    let windows = [
        (i64::MIN, i64::MAX),
        (0, 63),
        (64, 64),
        (100, 250),
        (1, 1_700_000_000_100),
    ];
    for (from, to) in windows {
        for reverse in [false, true] {
            for limit in [0, 1, 7, 64, 100, 1000] {
                let mut q = json!({"col": "c", "doc": doc, "from": from, "to": to,
                                   "reverse": reverse, "limit": limit});
                // Twice: the first read of a block renders it, the second copies it.
                let first = c.answer_text("q", "qdoc", &q);
                let fast = c.answer_text("q", "qdoc", &q);
                q["filter"] = json!("\u{1}");
                let slow = c.answer_text("q", "qdoc", &q);
                let at = format!("{what}: {from}..={to} reverse {reverse} limit {limit}");
                assert_eq!(first, slow, "{at}, first read");
                assert_eq!(fast, slow, "{at}, second read");
                let v: Value = serde_json::from_str(&fast).unwrap();
                for r in v["records"].as_array().unwrap() {
                    let ts = r["ts"].as_i64().unwrap();
                    assert!((from..=to).contains(&ts), "{at}: {ts} outside the window");
                    if ts < 1_000_000 {
                        assert_eq!(r["data"], json!(data(ts)), "{at}: data of {ts}");
                    }
                }
            }
        }
    }
}

fn ins(c: &mut Client, doc: &str, stamps: impl Iterator<Item = i64>) {
    let items: Vec<(i64, String)> = stamps.map(|t| (t, data(t))).collect();
    ins_data(c, doc, &items);
}

fn ins_data(c: &mut Client, doc: &str, items: &[(i64, String)]) {
    let items: Vec<(&str, &str, i64, &str)> = items
        .iter()
        .map(|(t, x)| ("c", doc, *t, x.as_str()))
        .collect();
    assert_eq!(c.call("ins", recs(&items)), json!({}));
}

/// Asserts that `qdoc` over all of `doc`, either way, whole and its first 10, answers alike
/// with and without the filter.
fn quick_check(c: &mut Client, doc: &str, what: &str) {
    for reverse in [false, true] {
        for limit in [0, 10] {
            let mut q = json!({"col": "c", "doc": doc, "from": 1, "to": i64::MAX,
                               "reverse": reverse, "limit": limit});
            let fast = c.answer_text("q", "qdoc", &q);
            q["filter"] = json!("\u{1}");
            let slow = c.answer_text("q", "qdoc", &q);
            assert_eq!(fast, slow, "{what}: reverse {reverse} limit {limit}");
        }
    }
}

#[test]
fn qdoc_from_rendered_blocks_answers_as_records_written_one_by_one() {
    // No answer cache: every `qdoc` scans the series.
    let s = Server::start(&["--answer-cache-mib", "0"]);
    let mut c = s.master();
    // Several sealed blocks (64 records each) and a plain block, in batches and one by one.
    ins(&mut c, "d", 10..210);
    for t in 210..240 {
        ins(&mut c, "d", std::iter::once(t));
    }
    check(&mut c, "d", "appended");
    // A late record into sealed history, a replacement in the newest block, a far timestamp.
    ins(&mut c, "d", [3, 150, 1_700_000_000_000].into_iter());
    check(&mut c, "d", "late, replaced and far records");
    let v = c.call("drec", json!({"col": "c", "doc": "d", "ts": 151}));
    assert!(v.get("error").is_none(), "drec failed: {v}");
    check(&mut c, "d", "a record deleted from a kept block");
    let v = c.call(
        "drrng",
        json!({"col": "c", "doc": "d", "fromTs": 120, "toTs": 210}),
    );
    assert!(v.get("error").is_none(), "drrng failed: {v}");
    check(&mut c, "d", "a range deleted across blocks");
    ins(&mut c, "d", 240..400);
    check(&mut c, "d", "appended again");
}

#[test]
fn qdoc_of_the_plain_block_follows_every_change_between_reads() {
    let s = Server::start(&["--answer-cache-mib", "0"]);
    let mut c = s.master();
    // Even stamps, fewer than a block: all plain.
    ins(&mut c, "p", (100..140).step_by(2));
    quick_check(&mut c, "p", "first read");
    let mut newest = 140;
    for step in 0..60i64 {
        let what = match step % 6 {
            0 => {
                ins(&mut c, "p", std::iter::once(newest));
                newest += 2;
                "an append"
            }
            1 => {
                // A plain record replaced with other data.
                let ts = newest - 2 * (1 + step % 5);
                ins_data(&mut c, "p", &[(ts, format!("replaced \"{step}\""))]);
                "a replacement"
            }
            2 => {
                // An odd stamp between two plain records.
                let ts = newest - 2 * (1 + step % 7) + 1;
                ins_data(&mut c, "p", &[(ts, format!("between {step}"))]);
                "an insert between records"
            }
            3 => {
                let ts = newest - 2 * (1 + step % 3);
                let v = c.call("drec", json!({"col": "c", "doc": "p", "ts": ts}));
                assert!(v.get("error").is_none(), "drec failed: {v}");
                "a deletion"
            }
            4 => {
                // Past a seal: the plain block starts again.
                ins(&mut c, "p", (newest..newest + 140).step_by(2));
                newest += 140;
                "a batch across a seal"
            }
            _ => {
                ins(&mut c, "p", std::iter::once(newest));
                ins(&mut c, "p", std::iter::once(newest + 2));
                newest += 4;
                "two appends"
            }
        };
        quick_check(&mut c, "p", &format!("step {step}, after {what}"));
    }
}
