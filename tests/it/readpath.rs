//! The read path: data stored escaped answers byte for byte as before and is filtered as sent;
//! remembered document patterns follow documents that come and go.

use crate::common::{recs, Client, Frame, Server};
use serde_json::{json, Value};

/// `qry` with a document pattern over collection `c`, newest records.
fn latest(c: &mut Client, doc: &str) -> Value {
    c.ok("qry", json!({"col": "c", "ts": i64::MAX, "doc": doc}))
}

fn names(v: &Value) -> Vec<String> {
    v["records"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn put(c: &mut Client, doc: &str, ts: i64) {
    let data = format!("{{\"doc\":\"{doc}\",\"ts\":{ts}}}");
    assert_eq!(c.call("ins", recs(&[("c", doc, ts, &data)])), json!({}));
}

#[test]
fn remembered_patterns_follow_documents_added_and_removed() {
    let s = Server::start(&[]);
    let mut c = s.master();
    for doc in [
        "drone-1",
        "drone-2",
        "drone-3",
        "drone",
        "dronf-1",
        "drond-1",
        "x-drone-9",
    ] {
        put(&mut c, doc, 1);
    }
    let pattern = "/^drone-[0-9]+$/";
    let want = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names(&latest(&mut c, pattern)),
        want(&["drone-1", "drone-2", "drone-3"])
    );
    // Asked again (remembered): the same names, and appends show their newest data.
    put(&mut c, "drone-1", 2);
    let v = latest(&mut c, pattern);
    assert_eq!(names(&v), want(&["drone-1", "drone-2", "drone-3"]));
    assert_eq!(
        v["records"]["drone-1"],
        json!({"ts": 2, "data": "{\"doc\":\"drone-1\",\"ts\":2}"})
    );
    // A new document joins at once, in name order.
    put(&mut c, "drone-10", 1);
    assert_eq!(
        names(&latest(&mut c, pattern)),
        want(&["drone-1", "drone-10", "drone-2", "drone-3"])
    );
    // A deleted document leaves at once: by ddoc, and by losing its last record.
    assert_eq!(
        c.call("ddoc", json!({"col": "c", "doc": "drone-2"})),
        json!({})
    );
    assert_eq!(
        names(&latest(&mut c, pattern)),
        want(&["drone-1", "drone-10", "drone-3"])
    );
    assert_eq!(
        c.call("drec", json!({"col": "c", "doc": "drone-3", "ts": 1})),
        json!({})
    );
    assert_eq!(
        names(&latest(&mut c, pattern)),
        want(&["drone-1", "drone-10"])
    );
    put(&mut c, "drone-2", 5);
    assert_eq!(
        names(&latest(&mut c, pattern)),
        want(&["drone-1", "drone-10", "drone-2"])
    );
    // The same source under other flags is its own pattern; unanchored ones scan every name.
    assert_eq!(
        names(&latest(&mut c, "/^DRONE-[0-9]+$/i")),
        want(&["drone-1", "drone-10", "drone-2"])
    );
    assert_eq!(names(&latest(&mut c, "/drone-9/")), want(&["x-drone-9"]));
    // A flood of distinct patterns does not disturb the answers.
    for i in 0..200 {
        assert_eq!(
            names(&latest(&mut c, &format!("/^drone-{i}$/"))).len(),
            usize::from(matches!(i, 1 | 2 | 10))
        );
    }
    assert_eq!(
        names(&latest(&mut c, pattern)),
        want(&["drone-1", "drone-10", "drone-2"])
    );
    // The collection goes and comes back: nothing remembered survives it.
    assert_eq!(c.call("dcol", json!({"col": "c"})), json!({}));
    assert_eq!(latest(&mut c, pattern), json!({"records": {}}));
    put(&mut c, "drone-7", 1);
    assert_eq!(names(&latest(&mut c, pattern)), want(&["drone-7"]));
}

/// The raw text of the answer to `qdoc` or `qry` (`payload` as the data), id included.
fn raw(c: &mut Client, id: &str, ty: &str, payload: Value) -> String {
    c.answer_text(id, ty, &payload)
}

#[test]
fn escaped_data_answers_exactly_and_is_filtered_as_sent() {
    let s = Server::with_data_dir();
    let mut c = s.master();
    // 200 records, so most sit in sealed blocks; each needs escaping.
    let data = |ts: i64| format!("{{\"n\":{ts},\"s\":\"a\\b\n\u{1}\"}}");
    let batch: Vec<(&str, &str, i64, String)> =
        (1..=200).map(|ts| ("c", "d", ts, data(ts))).collect();
    let rows: Vec<(&str, &str, i64, &str)> = batch
        .iter()
        .map(|(c, d, t, x)| (*c, *d, *t, x.as_str()))
        .collect();
    assert_eq!(c.call("ins", recs(&rows)), json!({}));
    let body = |ts: i64| format!(r#"{{"ts":{ts},"data":"{{\"n\":{ts},\"s\":\"a\\b\n\u0001\"}}"}}"#);
    assert_eq!(
        raw(
            &mut c,
            "q1",
            "qdoc",
            json!({"col": "c", "doc": "d", "from": 5, "to": 7})
        ),
        format!(
            r#"{{"id":"q1","records":[{},{},{}]}}"#,
            body(5),
            body(6),
            body(7)
        )
    );
    assert_eq!(
        raw(&mut c, "q2", "qry", json!({"col": "c", "ts": 100})),
        format!(r#"{{"id":"q2","records":{{"d":{}}}}}"#, body(100))
    );
    // `where` and `filter` see the data as sent: a newline, not the `\n` of its escaped form.
    let count =
        |c: &mut Client, p: Value| c.ok("qdoc", p)["records"].as_array().map_or(0, Vec::len);
    let q = |extra: Value| {
        let mut p = json!({"col": "c", "doc": "d", "to": 1000});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        p
    };
    assert_eq!(count(&mut c, q(json!({"where": "b\n\u{1}\"}"}))), 200);
    assert_eq!(count(&mut c, q(json!({"where": "b\\n"}))), 0);
    assert_eq!(count(&mut c, q(json!({"where": "u0001"}))), 0);
    assert_eq!(count(&mut c, q(json!({"where": "\\n"}))), 0);
    assert_eq!(count(&mut c, q(json!({"where": "\"n\":7,"}))), 1);
    assert_eq!(
        count(&mut c, q(json!({"where": "/^\\{\"n\":1[0-9]\\b/"}))),
        10
    );
    assert_eq!(count(&mut c, q(json!({"filter": "a\\b"}))), 0);
    assert_eq!(count(&mut c, q(json!({"filter": "u0001"}))), 200);
    assert_eq!(
        c.ok(
            "qry",
            json!({"col": "c", "ts": 100, "where": "\"n\":100,\"s\":\"a\\b"})
        ),
        json!({"records": {"d": {"ts": 100, "data": data(100)}}})
    );
    // A snapshot (a clean shutdown writes one) keeps the data as sent, and the server started
    // from it answers the same bytes.
    let before = raw(
        &mut c,
        "q3",
        "qdoc",
        json!({"col": "c", "doc": "d", "to": 1000}),
    );
    drop(c);
    let mut s = s;
    assert!(s.sigterm().success());
    s.start_again();
    let mut c = s.master();
    assert_eq!(
        raw(
            &mut c,
            "q3",
            "qdoc",
            json!({"col": "c", "doc": "d", "to": 1000})
        ),
        before
    );
}

/// A pattern answers its documents in name order, written exactly (the raw text, so the order
/// is checked too), for a dense and a sparse selection, computed and then remembered, and again
/// after a document is added between remembered ones.
#[test]
fn pattern_answers_are_exact_for_dense_and_sparse_selections() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let docs: Vec<String> = (0..60).map(|i| format!("doc{i}")).collect();
    let rows: Vec<(&str, &str, i64, &str)> = docs
        .iter()
        .map(|d| ("c", d.as_str(), 1, d.as_str()))
        .collect();
    assert_eq!(c.call("ins", recs(&rows)), json!({}));
    let answer = |names: &[&str]| {
        let records: Vec<String> = names
            .iter()
            .map(|n| format!(r#""{n}":{{"ts":1,"data":"{n}"}}"#))
            .collect();
        format!(r#"{{"id":"p","records":{{{}}}}}"#, records.join(","))
    };
    let qry =
        |c: &mut Client, doc: &str| raw(c, "p", "qry", json!({"col": "c", "ts": 9, "doc": doc}));
    // 11 of 60 (dense), then 1 of 60 (sparse); each asked twice (computed, then remembered).
    let dense: Vec<String> = std::iter::once("doc1".to_string())
        .chain((10..20).map(|i| format!("doc{i}")))
        .collect();
    let dense: Vec<&str> = dense.iter().map(String::as_str).collect();
    for _ in 0..2 {
        assert_eq!(qry(&mut c, "/^doc1[0-9]?$/"), answer(&dense));
        assert_eq!(qry(&mut c, "/^doc42$/"), answer(&["doc42"]));
    }
    // A new document sorts between remembered ones.
    assert_eq!(
        c.call("ins", recs(&[("c", "doc10a", 1, "doc10a")])),
        json!({})
    );
    let want = [
        "doc1", "doc10", "doc10a", "doc11", "doc12", "doc13", "doc14", "doc15", "doc16", "doc17",
        "doc18", "doc19",
    ];
    for _ in 0..2 {
        assert_eq!(qry(&mut c, "/^doc1[0-9]?a?$/"), answer(&want));
    }
}

/// A record as an answer holds it: `{"ts":…,"data":"…"}` with the data escaped.
fn record_text(ts: i64, data: &str) -> String {
    format!(
        r#"{{"ts":{ts},"data":{}}}"#,
        serde_json::to_string(data).unwrap()
    )
}

/// `qry` without `doc` is answered from the map the first time the set of documents is seen and
/// from a remembered list after that: the same bytes either way, names that need escaping
/// included, following documents that come and go and records that are appended.
#[test]
fn latest_of_every_document_is_exact_whether_remembered_or_not() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let mut docs: Vec<(String, i64, String)> = ["a\"q", "b\\s", "c\u{1}", "dé", "e"]
        .iter()
        .map(|d| (d.to_string(), 1, format!("{{\"d\":\"{d}\"}}")))
        .collect();
    let insert = |c: &mut Client, doc: &str, ts: i64, data: &str| {
        assert_eq!(c.call("ins", recs(&[("c", doc, ts, data)])), json!({}));
    };
    for (doc, ts, data) in &docs {
        insert(&mut c, doc, *ts, data);
    }
    let want = |docs: &[(String, i64, String)]| {
        let members: Vec<String> = docs
            .iter()
            .map(|(d, ts, data)| {
                format!(
                    "{}:{}",
                    serde_json::to_string(d).unwrap(),
                    record_text(*ts, data)
                )
            })
            .collect();
        format!(r#"{{"id":"a","records":{{{}}}}}"#, members.join(","))
    };
    let all = |c: &mut Client| raw(c, "a", "qry", json!({"col": "c", "ts": i64::MAX}));
    for step in 0..4 {
        // Asked three times: read from the map, then remembered, then from the list.
        for _ in 0..3 {
            assert_eq!(all(&mut c), want(&docs), "step {step}");
        }
        match step {
            0 => {
                // An append keeps the list; the answer shows the new record.
                insert(&mut c, "dé", 2, "\"new\"");
                docs[3] = ("dé".into(), 2, "\"new\"".into());
            }
            1 => {
                insert(&mut c, "b0", 5, "b0");
                docs.push(("b0".into(), 5, "b0".into()));
                docs.sort();
            }
            2 => {
                assert_eq!(
                    c.call("ddoc", json!({"col": "c", "doc": "a\"q"})),
                    json!({})
                );
                docs.remove(0);
            }
            _ => {}
        }
    }
}

/// A page of the newest records reaches past the plain block into the newest sealed blocks,
/// which stay decoded between requests: the page stays exact while records are appended (the
/// plain block sealing twice on the way) and after a late record changes sealed history.
#[test]
fn newest_pages_stay_exact_while_records_are_appended() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let data = |ts: i64| format!("{{\"seq\":{ts},\"q\":\"\\\"x\\\"\"}}");
    let mut model: Vec<(i64, String)> = (1..=300).map(|ts| (ts * 10, data(ts))).collect();
    let rows: Vec<(&str, &str, i64, &str)> = model
        .iter()
        .map(|(ts, d)| ("c", "d", *ts, d.as_str()))
        .collect();
    assert_eq!(c.call("ins", recs(&rows)), json!({}));
    let page = |c: &mut Client| {
        raw(
            c,
            "n",
            "qdoc",
            json!({"col": "c", "doc": "d", "to": 1_000_000, "limit": 100, "reverse": true}),
        )
    };
    let want = |model: &[(i64, String)]| {
        let records: Vec<String> = model
            .iter()
            .rev()
            .take(100)
            .map(|(ts, d)| record_text(*ts, d))
            .collect();
        format!(r#"{{"id":"n","records":[{}]}}"#, records.join(","))
    };
    for ts in 301..=440 {
        assert_eq!(page(&mut c), want(&model), "before {ts}");
        assert_eq!(page(&mut c), want(&model), "again before {ts}");
        let d = data(ts);
        assert_eq!(c.call("ins", recs(&[("c", "d", ts * 10, &d)])), json!({}));
        model.push((ts * 10, d));
    }
    // A late record among the newest sealed ones (between two held timestamps).
    let late = (4395, "late \"one\"".to_string());
    assert_eq!(
        c.call("ins", recs(&[("c", "d", late.0, &late.1)])),
        json!({})
    );
    let at = model.partition_point(|(ts, _)| *ts < late.0);
    model.insert(at, late);
    assert_eq!(page(&mut c), want(&model));
    assert_eq!(page(&mut c), want(&model));
}

/// One document as the test expects it: its name and its records, oldest first.
type Model = Vec<(String, Vec<(i64, String)>)>;

/// The exact text of a `qry` answer, computed from `model` as the protocol states it: each
/// document's newest record at or before `ts`, left out when older than `from` or refused by
/// `where`/`filter` (substrings of the data as sent), in name order.
fn qry_text(
    id: &str,
    model: &Model,
    select: impl Fn(&str) -> bool,
    ts: i64,
    from: i64,
    where_: &str,
    filter: &str,
) -> String {
    let mut docs: Vec<&(String, Vec<(i64, String)>)> =
        model.iter().filter(|(n, _)| select(n)).collect();
    docs.sort_by(|a, b| a.0.cmp(&b.0));
    let members: Vec<String> = docs
        .iter()
        .filter_map(|(name, records)| {
            let (t, data) = records.iter().rev().find(|(t, _)| *t <= ts)?;
            let kept = *t >= from
                && (where_.is_empty() || data.contains(where_))
                && (filter.is_empty() || !data.contains(filter));
            kept.then(|| {
                format!(
                    "{}:{}",
                    serde_json::to_string(name).unwrap(),
                    record_text(*t, data)
                )
            })
        })
        .collect();
    format!(r#"{{"id":"{id}","records":{{{}}}}}"#, members.join(","))
}

/// `qry` reads a collection's documents through a view of each while appends are recent and,
/// once they pause, straight and ahead of time (a quiet snapshot): the same bytes either way.
/// Each question is asked right after an append (so the first answers come from views) and
/// then again until well past the reads it takes to go quiet, over data with escapes, names
/// with escapes, sealed history (a time in the past), a document emptied by a range delete,
/// `from` cut-offs, `where`/`filter` on the data as sent, and a remembered pattern.
#[test]
fn latest_answers_the_same_bytes_read_quietly_or_through_views() {
    // Without the answer cache, which would answer every repeated question itself.
    let s = Server::start(&["--answer-cache-mib", "0"]);
    let mut c = s.master();
    let quoted = |ts: i64| format!("{{\"n\":{ts},\"s\":\"x\"y\\z\n\"}}");
    let mut model: Model = vec![
        ("a\"q".into(), (1..=150).map(|t| (t, quoted(t))).collect()),
        (
            "b".into(),
            vec![(10, "b10".into()), (20, "b20".into()), (30, "b30".into())],
        ),
        ("c\u{1}".into(), vec![(5, "c5".into())]),
        ("p1".into(), vec![(3, "p1 at 3".into())]),
        ("p2".into(), vec![(40, "p2 at 40".into())]),
        ("p10".into(), vec![(1, "p10 at 1".into())]),
    ];
    for (doc, records) in &model {
        let rows: Vec<(&str, &str, i64, &str)> = records
            .iter()
            .map(|(t, d)| ("q", doc.as_str(), *t, d.as_str()))
            .collect();
        assert_eq!(c.call("ins", recs(&rows)), json!({}));
    }
    // A document whose every record is deleted answers nothing.
    assert_eq!(c.call("ins", recs(&[("q", "e", 7, "e7")])), json!({}));
    assert_eq!(
        c.call(
            "drrng",
            json!({"col": "q", "doc": "e", "fromTs": 1, "toTs": 100})
        ),
        json!({})
    );
    let all = |_: &str| true;
    let pattern = |n: &str| n == "p1" || n == "p2";
    // (payload extras, selection, ts, from, where, filter)
    type Case<'a> = (Value, &'a dyn Fn(&str) -> bool, i64, i64, &'a str, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (json!({"ts": i64::MAX}), &all, i64::MAX, i64::MIN, "", ""),
        (json!({"ts": 25}), &all, 25, i64::MIN, "", ""),
        (json!({"ts": 64}), &all, 64, i64::MIN, "", ""),
        (
            json!({"ts": i64::MAX, "from": 30}),
            &all,
            i64::MAX,
            30,
            "",
            "",
        ),
        (json!({"ts": 25, "from": 10}), &all, 25, 10, "", ""),
        (
            json!({"ts": i64::MAX, "where": "x\"y\\z\n"}),
            &all,
            i64::MAX,
            i64::MIN,
            "x\"y\\z\n",
            "",
        ),
        (
            json!({"ts": i64::MAX, "where": "x\\\"y"}),
            &all,
            i64::MAX,
            i64::MIN,
            "x\\\"y",
            "",
        ),
        (
            json!({"ts": i64::MAX, "filter": "b"}),
            &all,
            i64::MAX,
            i64::MIN,
            "",
            "b",
        ),
        (
            json!({"ts": i64::MAX, "filter": "\"n\":"}),
            &all,
            i64::MAX,
            i64::MIN,
            "",
            "\"n\":",
        ),
        (
            json!({"ts": i64::MAX, "doc": "/^p[0-9]$/"}),
            &pattern,
            i64::MAX,
            i64::MIN,
            "",
            "",
        ),
        (
            json!({"ts": 20, "doc": "/^p[0-9]$/"}),
            &pattern,
            20,
            i64::MIN,
            "",
            "",
        ),
        (
            json!({"ts": i64::MAX, "doc": "/^p[0-9]$/", "from": 4}),
            &pattern,
            i64::MAX,
            4,
            "",
            "",
        ),
    ];
    let mut next = 100;
    for (extra, select, ts, from, where_, filter) in cases {
        // An append (to a document every question either selects or not, as it says).
        next += 1;
        let text = format!("p10 at {next}");
        assert_eq!(c.call("ins", recs(&[("q", "p10", next, &text)])), json!({}));
        model[5].1.push((next, text));
        let mut payload = json!({"col": "q"});
        payload
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let want = qry_text("L", &model, select, ts, from, where_, filter);
        for round in 0..20 {
            assert_eq!(
                raw(&mut c, "L", "qry", payload.clone()),
                want,
                "{payload}, read {round} after the append"
            );
        }
    }
}

/// Timestamps of every length answer as their decimal text, in `qry` members (read quietly,
/// from the remembered selection of every document) and in `qdoc` items (sealed history and
/// plain records, both orders): answers write their digits in whole words, and this pins the
/// words' edges (one digit, 13, 16, 17 and 19 digits, a power of ten and the number before).
#[test]
fn timestamps_of_every_length_answer_as_their_decimal_text() {
    let s = Server::start(&["--answer-cache-mib", "0"]);
    let mut c = s.master();
    let mut stamps = vec![1i64, 2, 9, 1_733_500_000_123, i64::MAX];
    let mut p = 10i64;
    while let Some(next) = p.checked_mul(10) {
        stamps.extend([p - 1, p, p + 1, next / 10 * 9 + 7]);
        p = next;
    }
    stamps.extend([p - 1, p, p + 1]);
    stamps.sort_unstable();
    stamps.dedup();
    // One document per timestamp, and every timestamp in document `all`.
    let names: Vec<String> = (0..stamps.len()).map(|i| format!("t{i:03}")).collect();
    let mut rows: Vec<(&str, &str, i64, &str)> = stamps
        .iter()
        .zip(&names)
        .map(|(ts, name)| ("c", name.as_str(), *ts, "x\"y"))
        .collect();
    rows.extend(stamps.iter().map(|ts| ("c", "all", *ts, "x\"y")));
    assert_eq!(c.call("ins", recs(&rows)), json!({}));
    let mut model: Model = stamps
        .iter()
        .zip(&names)
        .map(|(ts, name)| (name.clone(), vec![(*ts, "x\"y".to_string())]))
        .collect();
    model.push((
        "all".into(),
        stamps.iter().map(|ts| (*ts, "x\"y".to_string())).collect(),
    ));
    let want = qry_text("q", &model, |_| true, i64::MAX, 0, "", "");
    // Asked until the collection is read quietly, then some more.
    for _ in 0..40 {
        assert_eq!(
            raw(&mut c, "q", "qry", json!({"col": "c", "ts": i64::MAX})),
            want
        );
    }
    for reverse in [false, true] {
        let mut items: Vec<String> = stamps.iter().map(|ts| record_text(*ts, "x\"y")).collect();
        if reverse {
            items.reverse();
        }
        let want = format!(r#"{{"id":"d","records":[{}]}}"#, items.join(","));
        let payload =
            json!({"col": "c", "doc": "all", "from": 0, "to": i64::MAX, "reverse": reverse});
        assert_eq!(raw(&mut c, "d", "qdoc", payload), want);
    }
}

/// The raw answer to `ty` with `payload` sent as this exact text.
fn raw_text(c: &mut Client, ty: &str, payload: &str) -> String {
    let frame = json!({"id": "r", "type": ty, "data": payload}).to_string();
    c.send_text(&frame);
    match c.next_frame() {
        Frame::Text(t) => t,
        other => panic!("no answer: {other:?}"),
    }
}

/// `qry` and `qdoc` payloads in the SDKs' plain shape (read in one pass) answer byte for byte
/// as the same requests spelled so that only the general reader takes them (an escaped key, an
/// unknown member, a number as a string), answers and errors alike.
#[test]
fn plain_and_unusual_spellings_of_reads_answer_alike() {
    let s = Server::start(&[]);
    let mut c = s.master();
    for ts in 1..=30 {
        put(&mut c, &format!("d{}", ts % 3), ts);
    }
    let pairs = [
        (
            "qry",
            r#"{"col":"c","ts":9223372036854775807}"#,
            r#"{"c\u006fl":"c","ts":"9223372036854775807","x":1}"#,
        ),
        (
            "qry",
            r#" { "doc" : "d1" , "ts" : 20 , "col" : "c" , "from" : 3 } "#,
            r#"{"col":"c","ts":20.5,"doc":"d\u0031","from":3}"#,
        ),
        (
            "qry",
            r#"{"col":"c","ts":30,"doc":"","where":null,"filter":""}"#,
            r#"{"col":"c","ts":30,"doc":null,"where":"","filter":null,"limit":1}"#,
        ),
        (
            "qdoc",
            r#"{"col":"c","doc":"d2","from":0,"to":9223372036854775807,"limit":4,"reverse":true}"#,
            r#"{"col":"c","doc":"d2","from":0,"to":9223372036854775807,"limit":"4","reverse":1}"#,
        ),
        (
            "qdoc",
            r#"{"reverse":false,"to":25,"doc":"d0","col":"c","from":6}"#,
            r#"{"col":"c","doc":"d0","from":6.0,"to":25,"reverse":0,"ts":1}"#,
        ),
        (
            "qdoc",
            r#"{"col":"c","doc":"d0","from":26,"to":25}"#,
            r#"{"col":"c","doc":"d\u0030","from":26,"to":25}"#,
        ),
        ("qry", r#"{"col":"c","ts":0}"#, r#"{"col":"c","ts":"0"}"#),
    ];
    for (ty, plain, unusual) in pairs {
        let a = raw_text(&mut c, ty, plain);
        assert!(a.len() > 20, "{a}");
        assert_eq!(a, raw_text(&mut c, ty, unusual), "{ty} {plain} / {unusual}");
    }
    // A repeated member: the general reader's rule (the last one wins) decides.
    assert_eq!(
        raw_text(&mut c, "qry", r#"{"col":"c","ts":1,"ts":30,"doc":"d0"}"#),
        raw_text(&mut c, "qry", r#"{"col":"c","ts":30,"doc":"d0"}"#)
    );
}

/// The raw answer to a frame sent as this exact text.
fn answer(c: &mut Client, frame: &str) -> String {
    c.send_text(frame);
    match c.next_frame() {
        Frame::Text(t) => t,
        other => panic!("no answer: {other:?}"),
    }
}

/// `qry` and `qdoc` with `type` before `data` (the SDKs' envelope: a payload in their shape is
/// read straight out of the escaped string) answer byte for byte as the same requests with
/// `data` first (un-escaped, then read as text), answers and errors alike; with the answer
/// cache off, and on, where a request is remembered under either spelling and an insert still
/// makes it answer anew.
#[test]
fn both_envelope_orders_answer_alike() {
    let payloads = [
        ("qry", r#"{"col":"c","ts":9223372036854775807}"#),
        ("qry", r#"{"ts":20,"col":"c","doc":"d1","from":3}"#),
        (
            "qry",
            r#" { "col" : "c" , "ts" : 30 , "doc" : "/^d[01]$/" } "#,
        ),
        (
            "qry",
            r#"{"col":"c","ts":30,"doc":"","where":null,"filter":""}"#,
        ),
        (
            "qry",
            r#"{"col":"c","ts":30,"where":"/d\\d/","filter":"\"ts\""}"#,
        ),
        ("qry", r#"{"col":"c","ts":30,"doc":"dé"}"#),
        ("qry", r#"{"col":"c","ts":30,"doc":"d\u00e9"}"#),
        ("qry", "{\"col\":\"c\",\n\"ts\":30}"),
        ("qry", r#"{"col":"c","ts":1,"ts":30,"doc":"d0"}"#),
        ("qry", r#"{"col":"c","ts":0}"#),
        ("qry", r#"{"col":"c","ts":"5"}"#),
        ("qry", r#"{"col":"c","ts":99999999999999999999}"#),
        ("qry", r#"{"col":"","ts":5}"#),
        ("qry", r#"{"col":"c","ts":5,"x":1}"#),
        ("qry", r#"{"col":"c","ts":5"#),
        (
            "qdoc",
            r#"{"col":"c","doc":"d2","from":0,"to":9223372036854775807,"limit":4,"reverse":true}"#,
        ),
        (
            "qdoc",
            r#"{"reverse":false,"to":25,"doc":"d0","col":"c","from":6}"#,
        ),
        ("qdoc", r#"{"col":"c","doc":"dé","to":99,"filter":"é"}"#),
        (
            "qdoc",
            r#"{"col":"c","doc":"d1","to":99,"where":"/\"ts\":1[0-9]/"}"#,
        ),
        (
            "qdoc",
            r#"{"col":"c","doc":"d1","to":99,"limit":2,"limit":3}"#,
        ),
        ("qdoc", r#"{"col":"c","doc":"d0","from":26,"to":25}"#),
        ("qdoc", r#"{"col":"c","doc":"d0","to":25,"reverse":1}"#),
        ("qdoc", r#"{"col":"c","doc":"d0","to":25,"limit":01}"#),
        ("qdoc", r#"{"col":"c","ts":5}"#),
    ];
    for args in [&["--answer-cache-mib", "0"][..], &[][..]] {
        let s = Server::start(args);
        let mut c = s.master();
        for ts in 1..=30 {
            put(&mut c, &format!("d{}", ts % 3), ts);
            put(&mut c, "dé", ts);
        }
        let mut records = 0;
        for round in 0..2 {
            if round == 1 {
                // Every collection changed: remembered answers may not be served.
                put(&mut c, "d1", 40);
                put(&mut c, "dé", 41);
            }
            for (ty, payload) in payloads {
                let quoted = serde_json::to_string(payload).unwrap();
                let type_first = format!(r#"{{"id":"r","type":"{ty}","data":{quoted}}}"#);
                let data_first = format!(r#"{{"data":{quoted},"id":"r","type":"{ty}"}}"#);
                let a = answer(&mut c, &type_first);
                assert_eq!(a, answer(&mut c, &data_first), "{args:?} {ty} {payload}");
                assert_eq!(a, answer(&mut c, &type_first), "{args:?} {ty} {payload}");
                records += a.matches(r#"{"ts":"#).count();
                if round == 1 && ty == "qry" && payload.contains("9223372036854775807") {
                    assert!(a.contains(r#""d1":{"ts":40"#), "{a}");
                }
            }
        }
        assert!(records > 100, "{records}");
        // One request's `data` still escaped is another's text (not a JSON object): each is
        // answered as itself, whichever came first.
        let body = r#"{\"col\":\"c\",\"ts\":30}"#;
        let escaped = format!(r#"{{"id":"r","type":"qry","data":"{body}"}}"#);
        let as_text = format!(
            r#"{{"id":"r","type":"qry","data":{}}}"#,
            serde_json::to_string(body).unwrap()
        );
        for _ in 0..2 {
            let a = answer(&mut c, &escaped);
            assert!(a.starts_with(r#"{"id":"r","records":{"#), "{a}");
            let b = answer(&mut c, &as_text);
            assert!(b.starts_with(r#"{"id":"r","error":"#), "{b}");
        }
    }
}
