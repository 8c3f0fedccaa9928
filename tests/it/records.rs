//! Records: `ins`, `qry`, `qdoc` (docs/protocol.md#records, #patterns-and-predicates,
//! #how-field-values-are-read).

use crate::common::{fixture, fixture_q1, recs, Server};
use serde_json::{json, Value};

fn records(list: &[(i64, &str)]) -> Value {
    json!({"records": list.iter().map(|(t, d)| json!({"ts": t, "data": d})).collect::<Vec<_>>()})
}

#[test]
fn insert_then_query_exact_answers() {
    let s = Server::start(&[]);
    let mut c = s.master();
    assert_eq!(
        c.call("ins", recs(&[("sensors", "dev-1", 100, "temp:20")])),
        json!({})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 1000})),
        json!({"records": {"dev-1": {"ts": 100, "data": "temp:20"}}})
    );
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "sensors", "doc": "dev-1", "to": 1000})
        ),
        records(&[(100, "temp:20")])
    );
    // The raw response frame: exactly `{"id":…}` for an insert.
    let v = c.request(
        "raw-1",
        "ins",
        &recs(&[("sensors", "dev-1", 101, "x")]).to_string(),
    );
    assert_eq!(v, json!({"id": "raw-1"}));
}

#[test]
fn fixture_queries() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 1000})),
        fixture_q1()
    );
    // Upper bound inclusive; dev-2 starts later.
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 100})),
        json!({"records": {"dev-1": {"ts": 100, "data": "temp:20 state:flying"}, "probe-9": {"ts": 50, "data": "temp:5 state:parked"}}})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 99})),
        json!({"records": {"probe-9": {"ts": 50, "data": "temp:5 state:parked"}}})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 49})),
        json!({"records": {}})
    );
    // `from` is a cut-off on the selected record, no search for another one.
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 1000, "from": 150})),
        json!({"records": {"dev-1": {"ts": 300, "data": "temp:22 state:flying quality:bad"}, "dev-2": {"ts": 150, "data": "temp:30 state:flying"}}})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 250, "from": 250})),
        json!({"records": {}})
    );
    // Negative and zero `from` mean no bound.
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 1000, "from": -5})),
        fixture_q1()
    );
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 1000, "from": 0})),
        fixture_q1()
    );
    // Literal doc is exact.
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 1000, "doc": "dev-2"})),
        json!({"records": {"dev-2": {"ts": 150, "data": "temp:30 state:flying"}}})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 1000, "doc": "dev-"})),
        json!({"records": {}})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 1000, "doc": "ghost"})),
        json!({"records": {}})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "nope", "ts": 1000})),
        json!({"records": {}})
    );
    // "" and null mean absent.
    assert_eq!(
        c.ok(
            "qry",
            json!({"col": "sensors", "ts": 1000, "doc": "", "where": null, "filter": ""})
        ),
        fixture_q1()
    );
    // qdoc ranges, inclusive at both ends.
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "sensors", "doc": "dev-1", "from": 100, "to": 200})
        ),
        records(&[(100, "temp:20 state:flying"), (200, "temp:21 state:landed")])
    );
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "sensors", "doc": "dev-1", "from": 101, "to": 299})
        ),
        records(&[(200, "temp:21 state:landed")])
    );
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "sensors", "doc": "dev-1", "from": -50, "to": 120})
        ),
        records(&[(100, "temp:20 state:flying")])
    );
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "sensors", "doc": "dev-1", "from": 301, "to": 400})
        ),
        records(&[])
    );
    assert_eq!(
        c.ok("qdoc", json!({"col": "sensors", "doc": "ghost", "to": 400})),
        records(&[])
    );
    assert_eq!(
        c.ok("qdoc", json!({"col": "nope", "doc": "dev-1", "to": 400})),
        records(&[])
    );
    // No patterns for qdoc.doc.
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "sensors", "doc": "/dev-.*/", "to": 1000})
        ),
        records(&[])
    );
}

#[test]
fn out_of_order_inserts_are_kept_sorted() {
    let s = Server::start(&[]);
    let mut c = s.master();
    for ts in [300, 100, 500, 200, 400] {
        c.ok("ins", recs(&[("c", "d", ts, &format!("v{ts}"))]));
    }
    // And one batch in reverse order, interleaving the existing ones.
    c.ok(
        "ins",
        recs(&[
            ("c", "d", 450, "v450"),
            ("c", "d", 250, "v250"),
            ("c", "d", 50, "v50"),
        ]),
    );
    let want: Vec<(i64, String)> = [50, 100, 200, 250, 300, 400, 450, 500]
        .iter()
        .map(|t| (*t, format!("v{t}")))
        .collect();
    let want_ref: Vec<(i64, &str)> = want.iter().map(|(t, d)| (*t, d.as_str())).collect();
    assert_eq!(
        c.ok("qdoc", json!({"col": "c", "doc": "d", "to": 1000})),
        records(&want_ref)
    );
    let rev: Vec<(i64, &str)> = want_ref.iter().rev().copied().collect();
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "c", "doc": "d", "to": 1000, "reverse": true})
        ),
        records(&rev)
    );
    // qry picks the greatest ts <= bound, whatever the insertion order.
    assert_eq!(
        c.ok("qry", json!({"col": "c", "ts": 449})),
        json!({"records": {"d": {"ts": 400, "data": "v400"}}})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "c", "ts": 450})),
        json!({"records": {"d": {"ts": 450, "data": "v450"}}})
    );
}

#[test]
fn same_timestamp_replaces() {
    let s = Server::start(&[]);
    let mut c = s.master();
    c.ok(
        "ins",
        recs(&[("c", "d", 1, "a"), ("c", "d", 2, "b"), ("c", "d", 3, "c")]),
    );
    c.ok("ins", recs(&[("c", "d", 2, "B")]));
    assert_eq!(
        c.ok("qdoc", json!({"col": "c", "doc": "d", "to": 10})),
        records(&[(1, "a"), (2, "B"), (3, "c")])
    );
    // Within one batch the last element wins.
    c.ok(
        "ins",
        recs(&[
            ("c", "d", 3, "first"),
            ("c", "d", 3, "second"),
            ("c", "d", 3, "third"),
        ]),
    );
    assert_eq!(
        c.ok("qdoc", json!({"col": "c", "doc": "d", "to": 10})),
        records(&[(1, "a"), (2, "B"), (3, "third")])
    );
    // Replacing with an empty string is allowed and still a record.
    c.ok("ins", recs(&[("c", "d", 1, "")]));
    assert_eq!(
        c.ok("qdoc", json!({"col": "c", "doc": "d", "to": 1})),
        records(&[(1, "")])
    );
    // Same ts in another document or collection is independent.
    c.ok(
        "ins",
        recs(&[("c", "e", 2, "other-doc"), ("c2", "d", 2, "other-col")]),
    );
    assert_eq!(
        c.ok("qdoc", json!({"col": "c", "doc": "d", "from": 2, "to": 2})),
        records(&[(2, "B")])
    );
    assert_eq!(
        c.ok("qdoc", json!({"col": "c2", "doc": "d", "to": 10})),
        records(&[(2, "other-col")])
    );
}

#[test]
fn batch_mixing_collections_and_documents() {
    let s = Server::start(&[]);
    let mut c = s.master();
    c.ok(
        "ins",
        recs(&[
            ("a", "x", 1, "a-x-1"),
            ("b", "x", 1, "b-x-1"),
            ("a", "y", 2, "a-y-2"),
            ("b", "z", 3, "b-z-3"),
        ]),
    );
    assert_eq!(crate::common::cols(&mut c), vec!["a", "b"]);
    assert_eq!(
        c.ok("qry", json!({"col": "a", "ts": 10})),
        json!({"records": {"x": {"ts": 1, "data": "a-x-1"}, "y": {"ts": 2, "data": "a-y-2"}}})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "b", "ts": 10})),
        json!({"records": {"x": {"ts": 1, "data": "b-x-1"}, "z": {"ts": 3, "data": "b-z-3"}}})
    );
    // An empty batch is a no-op and creates nothing.
    assert_eq!(c.call("ins", json!([])), json!({}));
    assert_eq!(crate::common::cols(&mut c), vec!["a", "b"]);
}

#[test]
fn invalid_batch_inserts_nothing() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let bad = json!([
        {"col": "c", "doc": "ok", "ts": 1, "data": "x"},
        {"col": "c2", "doc": "ok", "ts": 2, "data": "y"},
        {"col": "c", "doc": "ok", "ts": 0, "data": "z"}
    ]);
    assert_eq!(
        c.err("ins", bad),
        "invalid payload: [2].ts must be a positive integer"
    );
    assert_eq!(crate::common::cols(&mut c), Vec::<String>::new());
    assert_eq!(
        c.ok("qry", json!({"col": "c", "ts": 10})),
        json!({"records": {}})
    );
}

#[test]
fn patterns_on_document_names() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    let dev1 = json!({"ts": 300, "data": "temp:22 state:flying quality:bad"});
    let dev2 = json!({"ts": 150, "data": "temp:30 state:flying"});
    let probe = json!({"ts": 50, "data": "temp:5 state:parked"});
    let q = |c: &mut crate::common::Client, doc: &str| {
        c.ok("qry", json!({"col": "sensors", "ts": 1000, "doc": doc}))
    };
    assert_eq!(
        q(&mut c, "/^dev-/"),
        json!({"records": {"dev-1": dev1, "dev-2": dev2}})
    );
    assert_eq!(q(&mut c, "/DEV-2/i"), json!({"records": {"dev-2": dev2}}));
    assert_eq!(q(&mut c, "/DEV-2/"), json!({"records": {}}));
    assert_eq!(
        q(&mut c, "/-[0-9]$/"),
        json!({"records": {"dev-1": dev1, "dev-2": dev2, "probe-9": probe}})
    );
    assert_eq!(
        q(&mut c, "/be-/"),
        json!({"records": {"probe-9": probe}}),
        "search is unanchored"
    );
    assert_eq!(
        q(&mut c, "//"),
        fixture_q1(),
        "the empty pattern matches everything"
    );
    assert_eq!(
        q(&mut c, "/dev/x"),
        json!({"records": {}}),
        "unknown flag makes it literal"
    );
    assert_eq!(
        q(&mut c, "/dev/ii"),
        json!({"records": {"dev-1": dev1, "dev-2": dev2}}),
        "repeated flags"
    );
    assert_eq!(
        q(&mut c, "/^dev-/g"),
        json!({"records": {}}),
        "g is an unknown flag"
    );

    // Documents whose names look like patterns.
    c.ok(
        "ins",
        recs(&[
            ("sensors", "/[/", 7, "bracket"),
            ("sensors", "/dev/x", 8, "slashy"),
            ("sensors", "a/b", 9, "ab"),
        ]),
    );
    // Invalid pattern: literal.
    assert_eq!(
        q(&mut c, "/[/"),
        json!({"records": {"/[/": {"ts": 7, "data": "bracket"}}})
    );
    // A literal with unknown flag selects the document of that exact name.
    assert_eq!(
        q(&mut c, "/dev/x"),
        json!({"records": {"/dev/x": {"ts": 8, "data": "slashy"}}})
    );
    // Escaped slash inside a pattern.
    assert_eq!(
        q(&mut c, r"/^a\/b$/"),
        json!({"records": {"a/b": {"ts": 9, "data": "ab"}}})
    );
    // `m` and `s` flags.
    c.ok("ins", recs(&[("pat", "ml", 1, "line1\nstate:flying")]));
    let w = |c: &mut crate::common::Client, wh: &str| {
        c.ok("qry", json!({"col": "pat", "ts": 10, "where": wh}))
    };
    let ml = json!({"records": {"ml": {"ts": 1, "data": "line1\nstate:flying"}}});
    assert_eq!(w(&mut c, "/^state/m"), ml);
    assert_eq!(w(&mut c, "/^state/"), json!({"records": {}}));
    assert_eq!(w(&mut c, "/line1.state/s"), ml);
    assert_eq!(w(&mut c, "/line1.state/"), json!({"records": {}}));
    assert_eq!(w(&mut c, "/LINE1.STATE/si"), ml);
    // Unicode-aware case folding.
    c.ok("ins", recs(&[("uni", "Ärger", 1, "x")]));
    assert_eq!(
        c.ok("qry", json!({"col": "uni", "ts": 10, "doc": "/^ärger$/i"})),
        json!({"records": {"Ärger": {"ts": 1, "data": "x"}}})
    );
}

#[test]
fn where_and_filter_predicates() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    let dev1 = json!({"ts": 300, "data": "temp:22 state:flying quality:bad"});
    let dev2 = json!({"ts": 150, "data": "temp:30 state:flying"});
    let probe = json!({"ts": 50, "data": "temp:5 state:parked"});
    let q = |c: &mut crate::common::Client, extra: Value| {
        let mut p = json!({"col": "sensors", "ts": 1000});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c.ok("qry", p)
    };
    assert_eq!(
        q(&mut c, json!({"where": "state:flying"})),
        json!({"records": {"dev-1": dev1, "dev-2": dev2}})
    );
    // No fallback to an older record when the latest fails.
    assert_eq!(
        q(
            &mut c,
            json!({"where": "state:flying", "filter": "quality:bad"})
        ),
        json!({"records": {"dev-2": dev2}})
    );
    assert_eq!(
        q(&mut c, json!({"filter": "quality:bad"})),
        json!({"records": {"dev-2": dev2, "probe-9": probe}})
    );
    assert_eq!(
        q(&mut c, json!({"filter": "/TEMP/i"})),
        json!({"records": {}})
    );
    assert_eq!(
        q(&mut c, json!({"where": "/TEMP/"})),
        json!({"records": {}})
    );
    assert_eq!(
        q(&mut c, json!({"where": "STATE:FLYING"})),
        json!({"records": {}}),
        "literal is case-sensitive"
    );
    assert_eq!(
        q(&mut c, json!({"where": "/state:(flying|parked)$/"})),
        json!({"records": {"dev-2": dev2, "probe-9": probe}})
    );
    assert_eq!(
        c.ok(
            "qry",
            json!({"col": "sensors", "ts": 250, "where": "/state:(flying|parked)/"})
        ),
        json!({"records": {"dev-2": dev2, "probe-9": probe}})
    );
    // Predicate combined with a doc pattern.
    assert_eq!(
        q(&mut c, json!({"doc": "/^dev/", "filter": "bad"})),
        json!({"records": {"dev-2": dev2}})
    );
    // Invalid pattern: literal substring, slashes included.
    c.ok("ins", recs(&[("sensors", "odd", 5, "has /[/ inside")]));
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 5, "where": "/[/"})),
        json!({"records": {"odd": {"ts": 5, "data": "has /[/ inside"}}})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 5, "filter": "/[/"})),
        json!({"records": {}})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 5, "filter": "/[]/"})),
        json!({"records": {"odd": {"ts": 5, "data": "has /[/ inside"}}})
    );
    // qdoc: predicates run before the limit.
    assert_eq!(
        c.ok("qdoc", json!({"col": "sensors", "doc": "dev-1", "to": 1000, "where": "state:flying", "filter": "quality:bad"})),
        records(&[(100, "temp:20 state:flying")])
    );
    assert_eq!(
        c.ok("qdoc", json!({"col": "sensors", "doc": "dev-1", "to": 1000, "where": "/state:fly/", "reverse": true, "limit": 1})),
        records(&[(300, "temp:22 state:flying quality:bad")])
    );
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "sensors", "doc": "dev-1", "to": 1000, "filter": "flying", "limit": 5})
        ),
        records(&[(200, "temp:21 state:landed")])
    );
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "sensors", "doc": "dev-1", "to": 1000, "where": "temp", "limit": 2})
        ),
        records(&[(100, "temp:20 state:flying"), (200, "temp:21 state:landed")])
    );
    // Predicates see the raw data, not its JSON-escaped form.
    c.ok("ins", recs(&[("raw", "j", 1, "{\"k\":\"v\"}\ttab")]));
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "raw", "doc": "j", "to": 1, "where": "\"k\":\"v\"}\t"})
        ),
        records(&[(1, "{\"k\":\"v\"}\ttab")])
    );
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "raw", "doc": "j", "to": 1, "where": "\\\"k"})
        ),
        records(&[])
    );
}

#[test]
fn limit_and_reverse() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let items: Vec<(&str, &str, i64, String)> = (1..=6)
        .map(|t| ("c", "d", t * 10, format!("r{t}")))
        .collect();
    let items_ref: Vec<(&str, &str, i64, &str)> = items
        .iter()
        .map(|(a, b, t, d)| (*a, *b, *t, d.as_str()))
        .collect();
    c.ok("ins", recs(&items_ref));
    let q = |c: &mut crate::common::Client, extra: Value| {
        let mut p = json!({"col": "c", "doc": "d", "from": 20, "to": 50});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c.ok("qdoc", p)
    };
    let asc = records(&[(20, "r2"), (30, "r3"), (40, "r4"), (50, "r5")]);
    let desc = records(&[(50, "r5"), (40, "r4"), (30, "r3"), (20, "r2")]);
    assert_eq!(q(&mut c, json!({})), asc);
    assert_eq!(q(&mut c, json!({"limit": 0})), asc);
    assert_eq!(q(&mut c, json!({"limit": -1})), asc);
    assert_eq!(q(&mut c, json!({"limit": 100})), asc);
    assert_eq!(
        q(&mut c, json!({"limit": 2})),
        records(&[(20, "r2"), (30, "r3")])
    );
    assert_eq!(
        q(&mut c, json!({"limit": 1, "reverse": false})),
        records(&[(20, "r2")])
    );
    assert_eq!(q(&mut c, json!({"reverse": true})), desc);
    assert_eq!(
        q(&mut c, json!({"reverse": true, "limit": 3})),
        records(&[(50, "r5"), (40, "r4"), (30, "r3")])
    );
    assert_eq!(
        q(&mut c, json!({"reverse": 1, "limit": 1})),
        records(&[(50, "r5")])
    );
    assert_eq!(
        q(&mut c, json!({"reverse": 7, "limit": 1})),
        records(&[(50, "r5")])
    );
    assert_eq!(
        q(&mut c, json!({"reverse": 0, "limit": 1})),
        records(&[(20, "r2")])
    );
    assert_eq!(
        q(&mut c, json!({"reverse": null, "limit": "1"})),
        records(&[(20, "r2")])
    );
    assert_eq!(
        q(&mut c, json!({"limit": 2.9})),
        records(&[(20, "r2"), (30, "r3")]),
        "fraction truncated"
    );
    // from == to is a valid single-point range.
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "c", "doc": "d", "from": 30, "to": 30})
        ),
        records(&[(30, "r3")])
    );
}

#[test]
fn integer_coercion_and_i64_extremes() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let max = i64::MAX;
    c.ok(
        "ins",
        json!([{"col": "c", "doc": "edge", "ts": max, "data": "max"}]),
    );
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "c", "doc": "edge", "from": 0, "to": max})
        ),
        json!({"records": [{"ts": max, "data": "max"}]})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "c", "ts": max})),
        json!({"records": {"edge": {"ts": max, "data": "max"}}})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "c", "ts": max - 1})),
        json!({"records": {}})
    );
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "c", "doc": "edge", "from": i64::MIN, "to": max})
        ),
        json!({"records": [{"ts": max, "data": "max"}]})
    );
    // Fractions truncate toward zero; digit strings (trimmed, signed) are accepted.
    c.ok(
        "ins",
        json!([
            {"col": "c", "doc": "co", "ts": 600.9, "data": "f"},
            {"col": "c", "doc": "co", "ts": "700", "data": "g"},
            {"col": "c", "doc": "co", "ts": " 800 ", "data": "h"},
            {"col": "c", "doc": "co", "ts": "+900", "data": "i"},
            {"col": "c", "doc": "co", "ts": 1e3, "data": "j"}
        ]),
    );
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "c", "doc": "co", "to": "1000", "from": "-5"})
        ),
        records(&[(600, "f"), (700, "g"), (800, "h"), (900, "i"), (1000, "j")])
    );
    // Out of range or non-integers are rejected.
    for bad in [
        json!(9223372036854775808u64),
        json!("9223372036854775808"),
        json!(1e19),
        json!(-1),
        json!(0),
        json!(0.5),
        json!("12abc"),
        json!("1.5"),
        json!(""),
        json!(true),
        json!([1]),
        json!({"v": 1}),
    ] {
        assert_eq!(
            c.err(
                "ins",
                json!([{"col": "c", "doc": "co", "ts": bad, "data": "x"}])
            ),
            "invalid payload: [0].ts must be a positive integer",
            "ts {bad}"
        );
    }
    assert_eq!(
        c.ok("qdoc", json!({"col": "c", "doc": "co", "to": 1000})),
        records(&[(600, "f"), (700, "g"), (800, "h"), (900, "i"), (1000, "j")]),
        "rejected inserts changed nothing"
    );
}

#[test]
fn hostile_names_round_trip() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let names = [
        "../x",
        "../../etc/passwd",
        "a/b",
        "..",
        ".",
        "/",
        "d\u{0}x",
        "\u{1}\u{1f}\n\t\r",
        "with space",
        "名前🚀",
        "C:\\Windows\\system32",
        "%2e%2e",
        "\u{7f}",
        "\"quoted\"",
    ];
    for (i, n) in names.iter().enumerate() {
        c.ok(
            "ins",
            json!([{"col": n, "doc": n, "ts": i as i64 + 1, "data": n}]),
        );
    }
    let mut want: Vec<&str> = names.to_vec();
    want.sort(); // byte order of UTF-8 == order of Rust str
    assert_eq!(crate::common::cols(&mut c), want);
    for (i, n) in names.iter().enumerate() {
        let ts = i as i64 + 1;
        let mut recs_map = serde_json::Map::new();
        recs_map.insert(n.to_string(), json!({"ts": ts, "data": n}));
        // A name that looks like a pattern would be interpreted as one by qry.doc; use qdoc.
        assert_eq!(
            c.ok("qry", json!({"col": n, "ts": 100})),
            json!({ "records": Value::Object(recs_map) }),
            "collection {n:?}"
        );
        assert_eq!(
            c.ok("qdoc", json!({"col": n, "doc": n, "to": 100})),
            json!({"records": [{"ts": ts, "data": n}]})
        );
    }
    // NUL literal in qry.doc.
    assert_eq!(
        c.ok("qry", json!({"col": "d\u{0}x", "ts": 10, "doc": "d\u{0}x"})),
        json!({"records": {"d\u{0}x": {"ts": 7, "data": "d\u{0}x"}}})
    );
    // The raw wire form of control characters in the response is escaped JSON (parsed above); and
    // a name with NUL differs from the name truncated at NUL.
    assert_eq!(
        c.ok("qry", json!({"col": "d", "ts": 10})),
        json!({"records": {}})
    );
}

#[test]
fn name_length_limits() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let n4096 = "é".repeat(2048); // 4096 bytes, 2048 chars
    let n4097 = format!("{}a", "é".repeat(2048));
    let a4096 = "a".repeat(4096);
    let a4097 = "a".repeat(4097);
    assert_eq!(n4096.len(), 4096);
    c.ok(
        "ins",
        json!([{"col": n4096, "doc": a4096, "ts": 1, "data": "ok"}]),
    );
    assert_eq!(
        c.ok("qdoc", json!({"col": n4096, "doc": a4096, "to": 1})),
        json!({"records": [{"ts": 1, "data": "ok"}]})
    );
    assert_eq!(crate::common::cols(&mut c), vec![n4096.clone()]);
    assert_eq!(
        c.err(
            "ins",
            json!([{"col": n4097, "doc": "d", "ts": 1, "data": "x"}])
        ),
        "invalid payload: [0].col must be at most 4096 bytes"
    );
    assert_eq!(
        c.err(
            "ins",
            json!([{"col": "c", "doc": a4097, "ts": 1, "data": "x"}])
        ),
        "invalid payload: [0].doc must be at most 4096 bytes"
    );
    assert_eq!(
        c.err("ins", json!([{"col": "c", "doc": "d", "ts": 1, "data": "x"}, {"col": a4097, "doc": "d", "ts": 1, "data": "x"}])),
        "invalid payload: [1].col must be at most 4096 bytes"
    );
    assert_eq!(
        crate::common::cols(&mut c),
        vec![n4096.clone()],
        "rejected batches created nothing"
    );
    // Data is limited only by the message size.
    let big = "x".repeat(1 << 20);
    c.ok(
        "ins",
        json!([{"col": "c", "doc": "d", "ts": 1, "data": big}]),
    );
    let v = c.ok("qdoc", json!({"col": "c", "doc": "d", "to": 1}));
    assert_eq!(
        v["records"][0]["data"].as_str().map(str::len),
        Some(1 << 20)
    );
}

#[test]
fn data_is_opaque_and_byte_exact() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let samples = [
        "",
        "{\"temp\":21.5,\"nested\":{\"a\":[1,2,3]}}",
        "not json at all {",
        "quote \" backslash \\ slash / ",
        "control \u{0} \u{1} \u{8} \u{c} \n \r \t \u{1f}",
        "unicode é 名前 🚀 \u{fffd} \u{2028}",
        "null",
    ];
    for (i, d) in samples.iter().enumerate() {
        c.ok(
            "ins",
            json!([{"col": "c", "doc": "d", "ts": i as i64 + 1, "data": d}]),
        );
    }
    let want: Vec<Value> = samples
        .iter()
        .enumerate()
        .map(|(i, d)| json!({"ts": i as i64 + 1, "data": d}))
        .collect();
    assert_eq!(
        c.ok("qdoc", json!({"col": "c", "doc": "d", "to": 100})),
        json!({"records": want})
    );
}

#[test]
fn wire_format_is_compact_with_id_first_and_raw_utf8() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let data = "é 名 🚀 \u{1} \u{1f} \u{7f} \n \r \t \u{8} \u{c} \" \\ / <>&";
    c.ok(
        "ins",
        json!([{"col": "c", "doc": "d", "ts": 1, "data": data}]),
    );
    c.send_text(
        &json!({"id": "w", "type": "qdoc", "data": "{\"col\":\"c\",\"doc\":\"d\",\"to\":1}"})
            .to_string(),
    );
    let raw = match c.next_frame() {
        crate::common::Frame::Text(t) => t,
        other => panic!("{}", other.describe()),
    };
    assert!(
        raw.starts_with("{\"id\":\"w\","),
        "id must be the first member: {raw}"
    );
    let v: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(v, json!({"id": "w", "records": [{"ts": 1, "data": data}]}));
    // serde_json's compact form escapes exactly as §2.5 requires (", \\, control characters
    // as \b \f \n \r \t or \u00XX, everything else raw); same length = same escaping, no spaces.
    let compact = serde_json::to_string(&v).unwrap();
    assert_eq!(
        raw.len(),
        compact.len(),
        "not compact or escaped differently:\n{raw}\n{compact}"
    );
    for needle in [
        "é 名 🚀",
        "\\n \\r \\t \\b \\f",
        "\\\" \\\\ / <>&",
        "\u{7f}",
    ] {
        assert!(
            raw.contains(needle),
            "{needle:?} not written raw/short-escaped in {raw}"
        );
    }
    let lower = raw.to_lowercase();
    assert!(
        lower.contains("\\u0001 \\u001f"),
        "control characters must be \\u00XX: {raw}"
    );
}

/// Every spelling JSON allows for the same text, at both levels of an `ins` (the envelope's
/// `data` string and the batch's strings inside it), read by the one-pass readers or by the
/// general one, stores the same record: the answers are byte for byte the same.
#[test]
fn every_spelling_of_an_insert_stores_the_same_bytes() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let long = "x".repeat(40);
    let data = format!(
        "{{\"a\":\"{long}é/{long}\",\"b\":\"\\\"q\\\"\",\"c\":\"😀\u{1}\u{7f}\\\\\",\"d\":[1,2]}}\t\n\"{long}\u{1f}\u{b}"
    );
    // A JSON string literal with `/` written `\/` and every non-ASCII character as `\uXXXX`
    // (a surrogate pair above the BMP): text that reads the same, spelled otherwise.
    let respell = |literal: &str| -> String {
        let mut out = String::new();
        for ch in literal.chars() {
            match ch {
                '/' => out.push_str("\\/"),
                c if c.is_ascii() => out.push(c),
                c => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
            }
        }
        out
    };
    let mut answers = Vec::new();
    let mut n = 0;
    // The batch's data as encoders write it (the form the server stores, kept as it is), with
    // `\/` and `\uXXXX` for non-ASCII, with a short form's character as `\u000a`, or with
    // uppercase hex: each must store the same bytes. One spelling at a time, so that each is
    // the only one the reader must notice.
    let respell_control = |literal: &str, from: &str, to: &str| {
        let other = literal.replace(from, to);
        assert_ne!(other, literal, "{from}");
        other
    };
    for respell_batch in 0..4 {
        for respell_envelope in [false, true] {
            // The fast readers, then the general ones (a float `ts` and an extra envelope
            // member send the batch and the envelope there).
            for general in [false, true] {
                n += 1;
                let doc = format!("d{n}");
                let ts = if general { "1.0" } else { "1" };
                let data_literal = serde_json::to_string(&data).unwrap();
                let data_literal = match respell_batch {
                    0 => data_literal,
                    1 => respell(&data_literal),
                    2 => respell_control(&data_literal, "\\n", "\\u000a"),
                    _ => respell_control(&data_literal, "\\u001f", "\\u001F"),
                };
                let batch = format!(
                    "[{{\"col\":\"c\",\"doc\":\"{doc}\",\"ts\":{ts},\"data\":{data_literal}}}]"
                );
                let batch_literal = serde_json::to_string(&batch).unwrap();
                let batch_literal = if respell_envelope {
                    respell(&batch_literal)
                } else {
                    batch_literal
                };
                let extra = if general { ",\"extra\":true" } else { "" };
                c.send_text(&format!(
                    "{{\"id\":\"i\",\"type\":\"ins\",\"data\":{batch_literal}{extra}}}"
                ));
                match c.next_frame() {
                    crate::common::Frame::Text(t) => assert_eq!(t, "{\"id\":\"i\"}", "{doc}"),
                    other => panic!("{}", other.describe()),
                }
                c.send_text(
                    &json!({"id": "q", "type": "qdoc", "data": json!({"col": "c", "doc": doc, "to": 9}).to_string()})
                        .to_string(),
                );
                match c.next_frame() {
                    crate::common::Frame::Text(t) => answers.push(t),
                    other => panic!("{}", other.describe()),
                }
            }
        }
    }
    let want = format!(
        "{{\"id\":\"q\",\"records\":[{{\"ts\":1,\"data\":{}}}]}}",
        serde_json::to_string(&data).unwrap()
    );
    for (i, got) in answers.iter().enumerate() {
        assert_eq!(got, &want, "spelling {}", i + 1);
    }
    // A batch cut inside an escape sequence is refused with the general reader's error.
    let cut = "[{\"col\":\"c\",\"doc\":\"d\",\"ts\":1,\"data\":\"a\\";
    assert_eq!(
        c.request("e", "ins", cut),
        json!({"id": "e", "error": "invalid payload: data is not valid JSON"})
    );
}

/// An `ins` whose `type` comes before its `data` (the SDKs' envelope) is read straight from the
/// escaped `data` string when its batch allows; with `data` first it is un-escaped and read
/// after. Both ways, every batch — valid, refused, spelled oddly — gets the same answer byte for
/// byte and stores the same records.
#[test]
fn an_insert_read_with_its_envelope_is_answered_and_stored_as_one_read_after_it() {
    let long_name = "n".repeat(4097);
    let batches: Vec<String> = vec![
        json!([{"col": "c", "doc": "d1", "ts": 1, "data": "{\"seq\":1,\"pad\":\"xx\"}"}]).to_string(),
        json!([{"ts": 2, "doc": "d1", "data": "a\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}é😀/", "col": "c"},
               {"col": "c2", "doc": "dé", "ts": 3, "data": ""}])
        .to_string(),
        r#" [ { "col" : "c" , "doc" : "d2" , "ts" : 4 , "data" : "x" } ] "#.into(),
        r#"[{"col":"c","doc":"d2","ts":5,"data":"a\/b\u00e9\u000a\u001F"}]"#.into(),
        r#"[{"col":"c","doc":"d3","ts":6,"data":"x","ts":7}]"#.into(),
        r#"[{"col":"c","doc":"d3","ts":8,"data":"{\"a\":\"\\\"\"}"}]"#.into(),
        "[{\"col\":\"c\",\"doc\":\"d4\",\"ts\":9,\n\"data\":\"x\"}]".into(),
        r#"[{"col":"c","doc":"d4","ts":10.0,"data":"x"}]"#.into(),
        r#"[{"col":"c","doc":"d4","ts":"11","data":"x"}]"#.into(),
        r#"[]"#.into(),
        // Refused, each with its own error.
        r#"[{"col":"","doc":"d","ts":1,"data":"x"}]"#.into(),
        format!(r#"[{{"col":"c","doc":"{long_name}","ts":1,"data":"x"}}]"#),
        r#"[{"col":"c","doc":"d","ts":0,"data":"x"}]"#.into(),
        r#"[{"col":"c","doc":"d","ts":-3,"data":"x"}]"#.into(),
        r#"[{"col":"c","doc":"d","ts":1,"data":{"v":1}}]"#.into(),
        r#"[{"col":"c","doc":"d","ts":1}]"#.into(),
        r#"[{"col":"c","doc":"d","ts":1,"data":"x","x":1}]"#.into(),
        r#"[{"col":"c","doc":"d","ts":1,"data":"x"},]"#.into(),
        r#"[{"col":"c","doc":"d","ts":1,"data":"x"}] x"#.into(),
        r#"[{"col":"c","doc":"d","ts":1,"data":"x\q"}]"#.into(),
        r#"[{"col":"c","doc":"d","ts":1,"data":"x\u00"}]"#.into(),
        "[{\"col\":\"c\",\"doc\":\"d\",\"ts\":1,\"data\":\"a\nb\"}]".into(),
        r#"[1]"#.into(),
        r#"{}"#.into(),
    ];
    let (with, after) = (Server::start(&[]), Server::start(&[]));
    let (mut w, mut a) = (with.master(), after.master());
    let answer = |c: &mut crate::common::Client, frame: &str| {
        c.send_text(frame);
        match c.next_frame() {
            crate::common::Frame::Text(t) => t,
            other => panic!("{}", other.describe()),
        }
    };
    for (i, batch) in batches.iter().enumerate() {
        let literal = serde_json::to_string(batch).unwrap();
        let id = format!("i{i}");
        let sdk = format!(r#"{{"id":"{id}","type":"ins","data":{literal}}}"#);
        let data_first = format!(r#"{{"data":{literal},"id":"{id}","type":"ins"}}"#);
        assert_eq!(answer(&mut w, &sdk), answer(&mut a, &data_first), "{batch}");
    }
    for (col, docs) in [("c", &["d1", "d2", "d3", "d4"][..]), ("c2", &["dé"][..])] {
        let q =
            json!({"id": "q", "type": "qry", "data": json!({"col": col, "ts": 99}).to_string()});
        let stored = answer(&mut w, &q.to_string());
        assert_eq!(stored, answer(&mut a, &q.to_string()));
        for doc in docs {
            let q = json!({"id": "q", "type": "qdoc",
                "data": json!({"col": col, "doc": doc, "to": 99}).to_string()});
            let stored = answer(&mut w, &q.to_string());
            assert!(stored.contains("\"ts\""), "{stored}");
            assert_eq!(stored, answer(&mut a, &q.to_string()), "{col}/{doc}");
        }
    }
}

/// An `ins` read with its envelope (see above) is logged, pushed to subscribers and recovered
/// after a crash as the same text: its data once un-escaped from the envelope is the stored
/// form, and the log and the feed get the text it stands for.
#[test]
fn an_insert_read_with_its_envelope_is_logged_and_pushed_as_its_text() {
    let mut s = Server::with_data_dir();
    let texts = [
        "{\"seq\":1,\"pad\":\"xx\"}",
        "a\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}é😀/",
        "plain",
    ];
    let mut sub = s.master();
    let v = sub.ok("sub", json!({"col": "c"}));
    let (id, seq) = (v["sub"].clone(), v["seq"].as_u64().unwrap());
    let mut w = s.master();
    for (i, text) in texts.iter().enumerate() {
        let batch = json!([{"ts": i + 1, "doc": "d", "data": text, "col": "c"}]).to_string();
        let literal = serde_json::to_string(&batch).unwrap();
        w.send_text(&format!(r#"{{"id":"w{i}","type":"ins","data":{literal}}}"#));
        assert_eq!(w.recv_json(), json!({"id": format!("w{i}")}));
        let pushed = sub.recv_json();
        assert_eq!(
            pushed,
            json!({"type": "rec", "sub": id, "col": "c", "seq": seq + 1 + i as u64,
                   "records": [{"doc": "d", "ts": i + 1, "data": text}]}),
        );
    }
    let want = records(&[(1, texts[0]), (2, texts[1]), (3, texts[2])]);
    let q = json!({"col": "c", "doc": "d", "to": 9});
    assert_eq!(w.ok("qdoc", q.clone()), want);
    drop((w, sub));
    s.restart();
    assert_eq!(s.master().ok("qdoc", q), want);
}
