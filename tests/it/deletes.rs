//! Deletes: `ddoc`, `dcol`, `drec`, `dmrec`, `drrng` and the collection-removal invariant of
//! docs/protocol.md#deletes: a collection exists exactly when it has at least one document or one
//! KV entry.

use crate::common::{cols, fixture, recs, Client, Server};
use serde_json::{json, Value};

fn records(list: &[(i64, &str)]) -> Value {
    json!({"records": list.iter().map(|(t, d)| json!({"ts": t, "data": d})).collect::<Vec<_>>()})
}

fn history(c: &mut Client, col: &str, doc: &str) -> Vec<i64> {
    let v = c.ok("qdoc", json!({"col": col, "doc": doc, "to": i64::MAX}));
    v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ts"].as_i64().unwrap())
        .collect()
}

fn docs(c: &mut Client, col: &str) -> Vec<String> {
    let v = c.ok("qry", json!({"col": col, "ts": i64::MAX}));
    v["records"].as_object().unwrap().keys().cloned().collect()
}

#[test]
fn ddoc_with_collection() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    assert_eq!(
        c.call("ddoc", json!({"col": "sensors", "doc": "probe-9"})),
        json!({})
    );
    assert_eq!(docs(&mut c, "sensors"), vec!["dev-1", "dev-2"]);
    assert_eq!(
        history(&mut c, "sensors", "dev-1"),
        vec![100, 200, 300],
        "other documents untouched"
    );
    // Absent document / collection: no-op.
    assert_eq!(
        c.call("ddoc", json!({"col": "sensors", "doc": "probe-9"})),
        json!({})
    );
    assert_eq!(
        c.call("ddoc", json!({"col": "nope", "doc": "x"})),
        json!({})
    );
    assert_eq!(cols(&mut c), vec!["config", "sensors"]);
    // Removing the last document of a collection without KV entries removes the collection.
    c.ok("ins", recs(&[("solo", "only", 1, "x")]));
    assert_eq!(cols(&mut c), vec!["config", "sensors", "solo"]);
    c.ok("ddoc", json!({"col": "solo", "doc": "only"}));
    assert_eq!(cols(&mut c), vec!["config", "sensors"]);
    // ddoc never touches KV entries, even when the collection has no documents left.
    c.ok(
        "sval",
        json!({"col": "sensors", "key": "unit", "value": "C"}),
    );
    for d in ["dev-1", "dev-2"] {
        c.ok("ddoc", json!({"col": "sensors", "doc": d}));
    }
    assert_eq!(cols(&mut c), vec!["config", "sensors"]);
    assert_eq!(
        c.ok("gval", json!({"col": "sensors", "key": "unit"})),
        json!({"value": "C"})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 1000})),
        json!({"records": {}})
    );
    // A deleted document can be re-created.
    c.ok("ins", recs(&[("sensors", "dev-1", 5, "again")]));
    assert_eq!(
        c.ok("qdoc", json!({"col": "sensors", "doc": "dev-1", "to": 10})),
        records(&[(5, "again")])
    );
}

#[test]
fn ddoc_without_collection_spans_all_collections() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    c.ok(
        "ins",
        recs(&[
            ("alpha", "dev-2", 10, "a"),
            ("beta", "dev-2", 10, "b"),
            ("beta", "keep", 10, "k"),
        ]),
    );
    c.ok("sval", json!({"col": "gamma", "key": "k", "value": "v"}));
    c.ok("ins", recs(&[("gamma", "dev-2", 1, "g")]));
    assert_eq!(c.call("ddoc", json!({"doc": "dev-2"})), json!({}));
    // alpha emptied → removed; beta keeps "keep"; gamma keeps its KV entry; config untouched.
    assert_eq!(cols(&mut c), vec!["beta", "config", "gamma", "sensors"]);
    assert_eq!(docs(&mut c, "sensors"), vec!["dev-1", "probe-9"]);
    assert_eq!(docs(&mut c, "beta"), vec!["keep"]);
    assert_eq!(docs(&mut c, "gamma"), Vec::<String>::new());
    assert_eq!(
        c.ok("gvals", json!({"col": "gamma"})),
        json!({"values": {"k": "v"}})
    );
    // Same with an explicit empty col, on a document that exists nowhere: KV-only collections
    // survive (X-3).
    assert_eq!(
        c.call("ddoc", json!({"col": "", "doc": "nothing-here"})),
        json!({})
    );
    assert_eq!(cols(&mut c), vec!["beta", "config", "gamma", "sensors"]);
    assert_eq!(
        c.ok("gvals", json!({"col": "config"})),
        json!({"values": {"env.prod": "v1", "env.stage": "v2", "region": "eu"}})
    );
    // col null == absent.
    assert_eq!(
        c.call("ddoc", json!({"col": null, "doc": "keep"})),
        json!({})
    );
    assert_eq!(cols(&mut c), vec!["config", "gamma", "sensors"]);
}

#[test]
fn dcol_removes_documents_and_values() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    c.ok(
        "sval",
        json!({"col": "sensors", "key": "unit", "value": "C"}),
    );
    assert_eq!(c.call("dcol", json!({"col": "sensors"})), json!({}));
    assert_eq!(cols(&mut c), vec!["config"]);
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 1000})),
        json!({"records": {}})
    );
    assert_eq!(
        c.ok("gval", json!({"col": "sensors", "key": "unit"})),
        json!({"value": ""})
    );
    assert_eq!(
        c.call("dcol", json!({"col": "sensors"})),
        json!({}),
        "unknown collection: no-op"
    );
    assert_eq!(c.call("dcol", json!({"col": "config"})), json!({}));
    assert_eq!(
        c.ok("gvals", json!({"col": "config"})),
        json!({"values": {}})
    );
    assert_eq!(cols(&mut c), Vec::<String>::new());
    // Re-created from scratch: nothing of the old content comes back.
    c.ok("ins", recs(&[("sensors", "dev-1", 999, "new")]));
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 1000})),
        json!({"records": {"dev-1": {"ts": 999, "data": "new"}}})
    );
    assert_eq!(
        c.ok("gvals", json!({"col": "sensors"})),
        json!({"values": {}})
    );
}

#[test]
fn drec_exact_timestamp_only() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    assert_eq!(
        c.call("drec", json!({"col": "sensors", "doc": "dev-1", "ts": 200})),
        json!({})
    );
    assert_eq!(history(&mut c, "sensors", "dev-1"), vec![100, 300]);
    for (col, doc, ts) in [
        ("sensors", "dev-1", 250),
        ("sensors", "dev-1", 200),
        ("sensors", "ghost", 100),
        ("nope", "dev-1", 100),
    ] {
        assert_eq!(
            c.call("drec", json!({"col": col, "doc": doc, "ts": ts})),
            json!({})
        );
    }
    assert_eq!(history(&mut c, "sensors", "dev-1"), vec![100, 300]);
    // Last record → document gone.
    c.ok(
        "drec",
        json!({"col": "sensors", "doc": "probe-9", "ts": 50}),
    );
    assert_eq!(docs(&mut c, "sensors"), vec!["dev-1", "dev-2"]);
    // Last record of the collection → collection gone (§3 [Δ]).
    c.ok("ins", recs(&[("tmp", "a", 1, "x")]));
    c.ok("drec", json!({"col": "tmp", "doc": "a", "ts": 1}));
    assert_eq!(cols(&mut c), vec!["config", "sensors"]);
    // ... unless it holds KV entries.
    c.ok("ins", recs(&[("mixed", "a", 1, "x")]));
    c.ok("sval", json!({"col": "mixed", "key": "k", "value": "v"}));
    c.ok("drec", json!({"col": "mixed", "doc": "a", "ts": 1}));
    assert_eq!(cols(&mut c), vec!["config", "mixed", "sensors"]);
    assert_eq!(
        c.ok("gkeys", json!({"col": "mixed"})),
        json!({"keys": ["k"]})
    );
    // ts digit strings accepted; i64::MAX deletable.
    c.ok(
        "ins",
        json!([{"col": "sensors", "doc": "edge", "ts": i64::MAX, "data": "m"}]),
    );
    c.ok(
        "drec",
        json!({"col": "sensors", "doc": "edge", "ts": i64::MAX.to_string()}),
    );
    assert_eq!(history(&mut c, "sensors", "edge"), Vec::<i64>::new());
}

#[test]
fn dmrec_applies_each_element() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    c.ok(
        "ins",
        recs(&[("other", "x", 1, "a"), ("other", "x", 2, "b")]),
    );
    let batch = json!([
        {"col": "sensors", "doc": "dev-1", "ts": 100},
        {"col": "sensors", "doc": "dev-2", "ts": 150},
        {"col": "ghost", "doc": "x", "ts": 1},
        {"col": "other", "doc": "x", "ts": 1},
        {"col": "other", "doc": "x", "ts": 2},
        {"col": "sensors", "doc": "dev-1", "ts": 100}
    ]);
    assert_eq!(c.call("dmrec", batch), json!({}));
    assert_eq!(history(&mut c, "sensors", "dev-1"), vec![200, 300]);
    assert_eq!(docs(&mut c, "sensors"), vec!["dev-1", "probe-9"]);
    assert_eq!(
        cols(&mut c),
        vec!["config", "sensors"],
        "other emptied → removed, ghost never created"
    );
    assert_eq!(c.call("dmrec", json!([])), json!({}));
    // An invalid element rejects the whole batch.
    let bad =
        json!([{"col": "sensors", "doc": "dev-1", "ts": 200}, {"col": "sensors", "doc": "dev-1"}]);
    assert_eq!(
        c.err("dmrec", bad),
        "invalid payload: [1].ts must be a positive integer"
    );
    let bad = json!([{"col": "sensors", "doc": "dev-1", "ts": 200}, {"col": "", "doc": "dev-1", "ts": 1}]);
    assert_eq!(
        c.err("dmrec", bad),
        "invalid payload: [1].col must be a non-empty string"
    );
    let bad = json!([{"col": "sensors", "doc": "dev-1", "ts": 200}, "x"]);
    assert_eq!(
        c.err("dmrec", bad),
        "invalid payload: [1] must be a JSON object"
    );
    assert_eq!(
        history(&mut c, "sensors", "dev-1"),
        vec![200, 300],
        "nothing deleted by rejected batches"
    );
}

#[test]
fn drrng_inclusive_range() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let items: Vec<(&str, &str, i64, &str)> = (1..=10).map(|t| ("c", "d", t * 10, "v")).collect();
    c.ok("ins", recs(&items));
    assert_eq!(
        c.call(
            "drrng",
            json!({"col": "c", "doc": "d", "fromTs": 20, "toTs": 40})
        ),
        json!({})
    );
    assert_eq!(history(&mut c, "c", "d"), vec![10, 50, 60, 70, 80, 90, 100]);
    c.ok(
        "drrng",
        json!({"col": "c", "doc": "d", "fromTs": 55, "toTs": 65}),
    );
    assert_eq!(history(&mut c, "c", "d"), vec![10, 50, 70, 80, 90, 100]);
    c.ok(
        "drrng",
        json!({"col": "c", "doc": "d", "fromTs": 70, "toTs": 70}),
    );
    assert_eq!(history(&mut c, "c", "d"), vec![10, 50, 80, 90, 100]);
    // Nothing in range / unknown names: no-op.
    c.ok(
        "drrng",
        json!({"col": "c", "doc": "d", "fromTs": 101, "toTs": 200}),
    );
    c.ok(
        "drrng",
        json!({"col": "c", "doc": "ghost", "fromTs": 1, "toTs": 200}),
    );
    c.ok(
        "drrng",
        json!({"col": "ghost", "doc": "d", "fromTs": 1, "toTs": 200}),
    );
    assert_eq!(history(&mut c, "c", "d"), vec![10, 50, 80, 90, 100]);
    assert_eq!(cols(&mut c), vec!["c"]);
    // Rejections change nothing.
    assert_eq!(
        c.err(
            "drrng",
            json!({"col": "c", "doc": "d", "fromTs": 90, "toTs": 10})
        ),
        "invalid payload: fromTs must not be greater than toTs"
    );
    assert_eq!(
        c.err(
            "drrng",
            json!({"col": "c", "doc": "d", "fromTs": 0, "toTs": 10})
        ),
        "invalid payload: fromTs must be a positive integer"
    );
    assert_eq!(
        c.err(
            "drrng",
            json!({"col": "c", "doc": "d", "fromTs": 1, "toTs": -10})
        ),
        "invalid payload: toTs must be a positive integer"
    );
    assert_eq!(
        c.err(
            "drrng",
            json!({"col": "c", "doc": "d", "from": 1, "to": 100})
        ),
        "invalid payload: fromTs must be a positive integer"
    );
    assert_eq!(history(&mut c, "c", "d"), vec![10, 50, 80, 90, 100]);
    // Whole range → document and collection gone.
    c.ok(
        "drrng",
        json!({"col": "c", "doc": "d", "fromTs": 1, "toTs": i64::MAX}),
    );
    assert_eq!(cols(&mut c), Vec::<String>::new());
}

#[test]
fn collection_exists_iff_it_has_documents_or_values() {
    let s = Server::start(&[]);
    let mut c = s.master();
    // Through the KV half.
    c.ok("sval", json!({"col": "k", "key": "a", "value": "1"}));
    c.ok("sval", json!({"col": "k", "key": "b", "value": "2"}));
    assert_eq!(cols(&mut c), vec!["k"]);
    c.ok("rval", json!({"col": "k", "key": "a"}));
    assert_eq!(cols(&mut c), vec!["k"]);
    c.ok("rval", json!({"col": "k", "key": "b"}));
    assert_eq!(
        cols(&mut c),
        Vec::<String>::new(),
        "rval of the last key removes the collection"
    );
    // Through both halves, removing them in either order.
    for docs_first in [true, false] {
        c.ok("ins", recs(&[("both", "d", 1, "x")]));
        c.ok("sval", json!({"col": "both", "key": "a", "value": "1"}));
        let del_docs = json!({"col": "both", "doc": "d", "ts": 1});
        let del_kv = json!({"col": "both", "key": "a"});
        if docs_first {
            c.ok("drec", del_docs);
            assert_eq!(cols(&mut c), vec!["both"]);
            c.ok("rval", del_kv);
        } else {
            c.ok("rval", del_kv);
            assert_eq!(cols(&mut c), vec!["both"]);
            c.ok("drec", del_docs);
        }
        assert_eq!(cols(&mut c), Vec::<String>::new());
    }
    // dmrec and drrng emptying several collections.
    c.ok(
        "ins",
        recs(&[("p", "d", 1, "x"), ("q", "d", 1, "x"), ("r", "d", 5, "x")]),
    );
    c.ok(
        "dmrec",
        json!([{"col": "p", "doc": "d", "ts": 1}, {"col": "q", "doc": "d", "ts": 1}]),
    );
    assert_eq!(cols(&mut c), vec!["r"]);
    c.ok(
        "drrng",
        json!({"col": "r", "doc": "d", "fromTs": 1, "toTs": 10}),
    );
    assert_eq!(cols(&mut c), Vec::<String>::new());
    // A removed collection reappears empty of old content when re-created.
    c.ok("sval", json!({"col": "p", "key": "z", "value": "1"}));
    assert_eq!(
        c.ok("qry", json!({"col": "p", "ts": 100})),
        json!({"records": {}})
    );
    assert_eq!(
        c.ok("gvals", json!({"col": "p"})),
        json!({"values": {"z": "1"}})
    );
}

#[test]
fn delete_validation_errors_change_nothing() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "ddoc",
            json!({"col": "sensors"}),
            "invalid payload: doc must be a non-empty string",
        ),
        (
            "ddoc",
            json!({"col": "sensors", "doc": ""}),
            "invalid payload: doc must be a non-empty string",
        ),
        (
            "ddoc",
            json!({"col": 5, "doc": "dev-1"}),
            "invalid payload: col must be a string",
        ),
        ("ddoc", json!([]), "invalid payload: expected a JSON object"),
        (
            "dcol",
            json!({"col": ""}),
            "invalid payload: col must be a non-empty string",
        ),
        (
            "dcol",
            json!({}),
            "invalid payload: col must be a non-empty string",
        ),
        (
            "dcol",
            json!({"col": ["sensors"]}),
            "invalid payload: col must be a non-empty string",
        ),
        (
            "drec",
            json!({"col": "sensors", "doc": "dev-1", "ts": 0}),
            "invalid payload: ts must be a positive integer",
        ),
        (
            "drec",
            json!({"col": "sensors", "ts": 100}),
            "invalid payload: doc must be a non-empty string",
        ),
        (
            "drec",
            json!({"doc": "dev-1", "ts": 100}),
            "invalid payload: col must be a non-empty string",
        ),
        (
            "drec",
            json!({"col": "sensors", "doc": "dev-1", "ts": "100x"}),
            "invalid payload: ts must be a positive integer",
        ),
        ("dmrec", json!({}), "invalid payload: expected a JSON array"),
        (
            "dmrec",
            json!([5]),
            "invalid payload: [0] must be a JSON object",
        ),
        (
            "dmrec",
            json!([{"col": "sensors", "doc": "dev-1", "ts": -1}]),
            "invalid payload: [0].ts must be a positive integer",
        ),
        (
            "drrng",
            json!({"col": "sensors", "doc": "dev-1", "fromTs": 300, "toTs": 100}),
            "invalid payload: fromTs must not be greater than toTs",
        ),
        (
            "drrng",
            json!({"col": "sensors", "fromTs": 1, "toTs": 2}),
            "invalid payload: doc must be a non-empty string",
        ),
    ];
    for (ty, payload, want) in cases {
        let shown = payload.to_string();
        assert_eq!(c.err(ty, payload), want, "{ty} {shown}");
    }
    crate::common::assert_fixture_intact(&mut c);
    assert_eq!(cols(&mut c), vec!["config", "sensors"]);
}
