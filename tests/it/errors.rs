//! Malformed input (docs/protocol.md#requests-and-answers, #limits, #error-texts and the
//! rejection vectors): exact
//! error texts, the connection stays usable, nothing changes; frame-level violations close with
//! the right code.

use crate::common::{assert_fixture_intact, fixture, Client, Frame, Server};
use serde_json::{json, Value};

/// Sends `frame` as text and asserts the response equals `want` exactly; then checks that the
/// same connection still works and fixture F is intact.
fn expect_reply(c: &mut Client, frame: &str, want: Value) {
    c.send_text(frame);
    let got = c.next_frame();
    match &got {
        Frame::Text(t) => {
            let v: Value = serde_json::from_str(t)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {t:?} (sent {frame:?})"));
            assert_eq!(v, want, "frame sent: {frame}");
        }
        other => panic!(
            "frame sent: {frame}\nexpected {want}, got {}",
            other.describe()
        ),
    }
}

#[test]
fn envelope_errors() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    let obj = json!({"error": "invalid message: expected a JSON object"});
    let id = json!({"error": "invalid message: id must be a non-empty string"});
    let ty =
        |i: &str| json!({"id": i, "error": "invalid message: type must be a non-empty string"});
    let data =
        |i: &str| json!({"id": i, "error": "invalid message: data must be a non-empty string"});
    let cases: Vec<(&str, Value)> = vec![
        ("hello", obj.clone()),
        ("", obj.clone()),
        ("[1,2]", obj.clone()),
        ("[]", obj.clone()),
        ("null", obj.clone()),
        ("42", obj.clone()),
        ("true", obj.clone()),
        ("\"a string\"", obj.clone()),
        ("{", obj.clone()),
        (
            "{\"id\":\"x\",\"type\":\"cols\",\"data\":\"{}\"",
            obj.clone(),
        ),
        (
            "{\"id\":\"x\",\"type\":\"cols\",\"data\":\"{}\"}}",
            obj.clone(),
        ),
        ("{\"type\":\"cols\",\"data\":\"{}\"}", id.clone()),
        ("{\"id\":7,\"type\":\"cols\",\"data\":\"{}\"}", id.clone()),
        (
            "{\"id\":\"\",\"type\":\"cols\",\"data\":\"{}\"}",
            id.clone(),
        ),
        (
            "{\"id\":null,\"type\":\"cols\",\"data\":\"{}\"}",
            id.clone(),
        ),
        (
            "{\"id\":[\"x\"],\"type\":\"cols\",\"data\":\"{}\"}",
            id.clone(),
        ),
        ("{\"id\":{},\"type\":\"cols\",\"data\":\"{}\"}", id.clone()),
        ("{\"id\":true}", id.clone()),
        ("{}", id.clone()),
        ("{\"id\":\"e5\",\"data\":\"{}\"}", ty("e5")),
        ("{\"id\":\"e5b\",\"type\":\"\",\"data\":\"{}\"}", ty("e5b")),
        ("{\"id\":\"e5c\",\"type\":5,\"data\":\"{}\"}", ty("e5c")),
        ("{\"id\":\"e5d\",\"type\":null}", ty("e5d")),
        ("{\"id\":\"e6\",\"type\":\"cols\"}", data("e6")),
        (
            "{\"id\":\"e7\",\"type\":\"cols\",\"data\":\"\"}",
            data("e7"),
        ),
        (
            "{\"id\":\"e8\",\"type\":\"qry\",\"data\":{\"col\":\"sensors\",\"ts\":1000}}",
            data("e8"),
        ),
        (
            "{\"id\":\"e8b\",\"type\":\"cols\",\"data\":null}",
            data("e8b"),
        ),
        ("{\"id\":\"e8c\",\"type\":\"cols\",\"data\":5}", data("e8c")),
        ("{\"id\":\"e8d\",\"type\":\"ins\",\"data\":[]}", data("e8d")),
        // Envelope checks precede the type checks.
        (
            "{\"id\":\"e8e\",\"type\":\"nope\",\"data\":\"\"}",
            data("e8e"),
        ),
        ("{\"id\":\"e8f\",\"type\":\"auth\"}", data("e8f")),
        (
            "{\"id\":\"e9\",\"type\":\"nope\",\"data\":\"{}\"}",
            json!({"id": "e9", "error": "Unknown message type"}),
        ),
        (
            "{\"id\":\"e10\",\"type\":\"INS\",\"data\":\"[]\"}",
            json!({"id": "e10", "error": "Unknown message type"}),
        ),
        (
            "{\"id\":\"e10b\",\"type\":\" ins\",\"data\":\"[]\"}",
            json!({"id": "e10b", "error": "Unknown message type"}),
        ),
        (
            "{\"id\":\"e10c\",\"type\":\"ready\",\"data\":\"{}\"}",
            json!({"id": "e10c", "error": "Unknown message type"}),
        ),
        (
            "{\"id\":\"e11\",\"type\":\"auth\",\"data\":\"{\\\"key\\\":\\\"master-key\\\"}\"}",
            json!({"id": "e11", "error": "auth messages are not supported; use the api-key query parameter"}),
        ),
        (
            "{\"id\":\"e11b\",\"type\":\"auth\",\"data\":\"not json\"}",
            json!({"id": "e11b", "error": "auth messages are not supported; use the api-key query parameter"}),
        ),
        // Accepted envelopes.
        (
            "{\"id\":\"e13\",\"type\":\"cols\",\"data\":\"{}\",\"extra\":true}",
            json!({"id": "e13", "collections": ["config", "sensors"]}),
        ),
        (
            "{\"id\":\"e14\",\"type\":\"cols\",\"data\":\"x\"}",
            json!({"id": "e14", "collections": ["config", "sensors"]}),
        ),
        (
            " \n{\"data\":\"{}\",\"type\":\"cols\",\"id\":\"ws\"}\t ",
            json!({"id": "ws", "collections": ["config", "sensors"]}),
        ),
        (
            "{\"id\":\"dup-a\",\"id\":\"dup-b\",\"type\":\"cols\",\"data\":\"{}\"}",
            json!({"id": "dup-b", "collections": ["config", "sensors"]}),
        ),
        (
            "{\"id\":\"ü \\\" \\n \\u0000 🚀\",\"type\":\"cols\",\"data\":\"{}\"}",
            json!({"id": "ü \" \n \u{0} 🚀", "collections": ["config", "sensors"]}),
        ),
    ];
    for (frame, want) in cases {
        expect_reply(&mut c, frame, want);
        assert_fixture_intact(&mut c);
    }
}

#[test]
fn many_invalid_frames_do_not_close_the_connection() {
    let s = Server::start(&[]);
    let mut c = s.master();
    for _ in 0..3 {
        for _ in 0..50 {
            expect_reply(
                &mut c,
                "garbage",
                json!({"error": "invalid message: expected a JSON object"}),
            );
        }
        assert_eq!(c.ok("cols", json!({})), json!({"collections": []}));
    }
}

/// `(type, payload text, expected error)`; the payload text is sent verbatim as `data`.
fn payload_cases() -> Vec<(&'static str, String, String)> {
    let mut v: Vec<(&'static str, String, String)> = Vec::new();
    let mut add = |ty: &'static str, data: &str, err: &str| {
        v.push((ty, data.to_string(), format!("invalid payload: {err}")))
    };

    // Not JSON / wrong top-level kind, for every payload-carrying type.
    let object_types = [
        "qry", "qdoc", "ddoc", "dcol", "drec", "drrng", "sval", "gval", "gvalues", "rval", "gvals",
        "gkeys", "keys",
    ];
    for ty in object_types {
        for d in ["{", "nope", "{\"col\":}", "[1,]", "{\"a\":1}x"] {
            add(ty, d, "data is not valid JSON");
        }
        for d in [
            "[]",
            "null",
            "5",
            "\"s\"",
            "true",
            "[{\"col\":\"sensors\"}]",
        ] {
            add(ty, d, "expected a JSON object");
        }
    }
    for ty in ["ins", "dmrec"] {
        for d in ["[{", "nope"] {
            add(ty, d, "data is not valid JSON");
        }
        for d in ["{}", "null", "5", "\"[]\"", "{\"col\":\"x\"}"] {
            add(ty, d, "expected a JSON array");
        }
        for (d, i) in [("[1]", 0), ("[null]", 0), ("[[]]", 0), ("[\"x\"]", 0)] {
            add(ty, d, &format!("[{i}] must be a JSON object"));
        }
    }

    // Type rules per field kind.
    let not_nonempty_string = [
        "\"\"", "5", "1.5", "true", "false", "[]", "[\"x\"]", "{}", "null",
    ];
    let not_string = ["5", "true", "[]", "{}", "0"];
    let not_positive = [
        "0",
        "-1",
        "0.5",
        "-0.5",
        "\"soon\"",
        "\"12abc\"",
        "\"1.5\"",
        "\"\"",
        "true",
        "[]",
        "{}",
        "9223372036854775808",
        "-9223372036854775809",
        "1e19",
        "\"9223372036854775808\"",
        "\"0\"",
    ];
    let not_integer = [
        "\"x\"",
        "\"12abc\"",
        "true",
        "false",
        "[]",
        "{}",
        "\"\"",
        "9223372036854775808",
        "-9223372036854775809",
        "1e19",
        "-1e19",
        "\"--1\"",
    ];
    let not_boolean = ["\"yes\"", "\"true\"", "\"\"", "1.5", "[]", "{}"];

    // qry: col, ts, doc, from, where, filter
    for x in not_nonempty_string {
        add(
            "qry",
            &format!("{{\"col\":{x},\"ts\":1000}}"),
            "col must be a non-empty string",
        );
    }
    for x in not_positive {
        add(
            "qry",
            &format!("{{\"col\":\"sensors\",\"ts\":{x}}}"),
            "ts must be a positive integer",
        );
    }
    add(
        "qry",
        "{\"col\":\"sensors\"}",
        "ts must be a positive integer",
    );
    add(
        "qry",
        "{\"col\":\"sensors\",\"ts\":null}",
        "ts must be a positive integer",
    );
    for x in not_string {
        add(
            "qry",
            &format!("{{\"col\":\"sensors\",\"ts\":1000,\"doc\":{x}}}"),
            "doc must be a string",
        );
        add(
            "qry",
            &format!("{{\"col\":\"sensors\",\"ts\":1000,\"where\":{x}}}"),
            "where must be a string",
        );
        add(
            "qry",
            &format!("{{\"col\":\"sensors\",\"ts\":1000,\"filter\":{x}}}"),
            "filter must be a string",
        );
    }
    for x in not_integer {
        add(
            "qry",
            &format!("{{\"col\":\"sensors\",\"ts\":1000,\"from\":{x}}}"),
            "from must be an integer",
        );
    }
    // Field order: col, ts, doc, from, where, filter.
    add("qry", "{}", "col must be a non-empty string");
    add(
        "qry",
        "{\"ts\":0,\"col\":5}",
        "col must be a non-empty string",
    );
    add(
        "qry",
        "{\"filter\":1,\"where\":1,\"from\":\"x\",\"doc\":1,\"ts\":0,\"col\":\"c\"}",
        "ts must be a positive integer",
    );
    add(
        "qry",
        "{\"filter\":1,\"where\":1,\"from\":\"x\",\"doc\":1,\"ts\":1,\"col\":\"c\"}",
        "doc must be a string",
    );
    add(
        "qry",
        "{\"filter\":1,\"where\":1,\"from\":\"x\",\"ts\":1,\"col\":\"c\"}",
        "from must be an integer",
    );
    add(
        "qry",
        "{\"filter\":1,\"where\":1,\"ts\":1,\"col\":\"c\"}",
        "where must be a string",
    );
    add(
        "qry",
        "{\"filter\":1,\"ts\":1,\"col\":\"c\"}",
        "filter must be a string",
    );
    // Duplicate members: the last one wins.
    add(
        "qry",
        "{\"col\":\"sensors\",\"ts\":1000,\"ts\":0}",
        "ts must be a positive integer",
    );

    // qdoc: col, doc, from, to, limit, reverse, where, filter; then from <= to.
    for x in not_nonempty_string {
        add(
            "qdoc",
            &format!("{{\"col\":{x},\"doc\":\"dev-1\",\"to\":10}}"),
            "col must be a non-empty string",
        );
        add(
            "qdoc",
            &format!("{{\"col\":\"sensors\",\"doc\":{x},\"to\":10}}"),
            "doc must be a non-empty string",
        );
    }
    for x in not_integer {
        add(
            "qdoc",
            &format!("{{\"col\":\"sensors\",\"doc\":\"dev-1\",\"from\":{x},\"to\":10}}"),
            "from must be an integer",
        );
        add(
            "qdoc",
            &format!("{{\"col\":\"sensors\",\"doc\":\"dev-1\",\"to\":10,\"limit\":{x}}}"),
            "limit must be an integer",
        );
    }
    for x in not_positive {
        add(
            "qdoc",
            &format!("{{\"col\":\"sensors\",\"doc\":\"dev-1\",\"to\":{x}}}"),
            "to must be a positive integer",
        );
    }
    add(
        "qdoc",
        "{\"col\":\"sensors\",\"doc\":\"dev-1\"}",
        "to must be a positive integer",
    );
    for x in not_boolean {
        add(
            "qdoc",
            &format!("{{\"col\":\"sensors\",\"doc\":\"dev-1\",\"to\":10,\"reverse\":{x}}}"),
            "reverse must be a boolean",
        );
    }
    for x in not_string {
        add(
            "qdoc",
            &format!("{{\"col\":\"sensors\",\"doc\":\"dev-1\",\"to\":10,\"where\":{x}}}"),
            "where must be a string",
        );
        add(
            "qdoc",
            &format!("{{\"col\":\"sensors\",\"doc\":\"dev-1\",\"to\":10,\"filter\":{x}}}"),
            "filter must be a string",
        );
    }
    add(
        "qdoc",
        "{\"col\":\"sensors\",\"doc\":\"dev-1\",\"from\":300,\"to\":100}",
        "from must not be greater than to",
    );
    add(
        "qdoc",
        "{\"col\":\"sensors\",\"doc\":\"dev-1\",\"from\":\"11\",\"to\":\"10\"}",
        "from must not be greater than to",
    );
    add(
        "qdoc",
        "{\"col\":\"sensors\",\"doc\":\"dev-1\",\"from\":0,\"to\":0}",
        "to must be a positive integer",
    );
    add(
        "qdoc",
        "{\"col\":\"sensors\",\"from\":0,\"to\":10}",
        "doc must be a non-empty string",
    );
    // Field checks precede the cross-field check; order of fields.
    add(
        "qdoc",
        "{\"col\":\"sensors\",\"doc\":\"dev-1\",\"from\":300,\"to\":100,\"filter\":1}",
        "filter must be a string",
    );
    add("qdoc", "{\"filter\":1,\"where\":1,\"reverse\":\"x\",\"limit\":\"x\",\"to\":0,\"from\":\"x\",\"doc\":\"\",\"col\":\"c\"}", "doc must be a non-empty string");
    add("qdoc", "{\"filter\":1,\"where\":1,\"reverse\":\"x\",\"limit\":\"x\",\"to\":0,\"from\":\"x\",\"doc\":\"d\",\"col\":\"c\"}", "from must be an integer");
    add("qdoc", "{\"filter\":1,\"where\":1,\"reverse\":\"x\",\"limit\":\"x\",\"to\":0,\"doc\":\"d\",\"col\":\"c\"}", "to must be a positive integer");
    add("qdoc", "{\"filter\":1,\"where\":1,\"reverse\":\"x\",\"limit\":\"x\",\"to\":1,\"doc\":\"d\",\"col\":\"c\"}", "limit must be an integer");
    add(
        "qdoc",
        "{\"filter\":1,\"where\":1,\"reverse\":\"x\",\"to\":1,\"doc\":\"d\",\"col\":\"c\"}",
        "reverse must be a boolean",
    );
    add(
        "qdoc",
        "{\"filter\":1,\"where\":1,\"to\":1,\"doc\":\"d\",\"col\":\"c\"}",
        "where must be a string",
    );

    // ins: [i].col, [i].doc, [i].ts, [i].data
    let ok = "{\"col\":\"sensors\",\"doc\":\"ok\",\"ts\":1,\"data\":\"x\"}";
    for x in not_nonempty_string {
        add(
            "ins",
            &format!("[{{\"col\":{x},\"doc\":\"d\",\"ts\":1,\"data\":\"x\"}}]"),
            "[0].col must be a non-empty string",
        );
        add(
            "ins",
            &format!("[{ok},{{\"col\":\"c\",\"doc\":{x},\"ts\":1,\"data\":\"x\"}}]"),
            "[1].doc must be a non-empty string",
        );
    }
    for x in not_positive {
        add(
            "ins",
            &format!("[{ok},{ok},{{\"col\":\"c\",\"doc\":\"d\",\"ts\":{x},\"data\":\"x\"}}]"),
            "[2].ts must be a positive integer",
        );
    }
    for x in ["5", "true", "[]", "{\"v\":1}", "null"] {
        add(
            "ins",
            &format!("[{{\"col\":\"c\",\"doc\":\"d\",\"ts\":1,\"data\":{x}}}]"),
            "[0].data must be a string",
        );
    }
    add(
        "ins",
        "[{\"col\":\"c\",\"doc\":\"d\",\"ts\":1}]",
        "[0].data must be a string",
    );
    add("ins", "[{}]", "[0].col must be a non-empty string");
    add(
        "ins",
        "[{\"col\":\"c\"}]",
        "[0].doc must be a non-empty string",
    );
    add(
        "ins",
        "[{\"col\":\"c\",\"doc\":\"d\"}]",
        "[0].ts must be a positive integer",
    );
    add("ins", &format!("[{ok},5]"), "[1] must be a JSON object");
    // The first failing element is reported, element by element.
    add(
        "ins",
        "[{\"col\":\"c\",\"doc\":\"d\",\"ts\":1,\"data\":5},{\"col\":\"\"}]",
        "[0].data must be a string",
    );

    // ddoc: doc, col (may be empty).
    for x in not_nonempty_string {
        add(
            "ddoc",
            &format!("{{\"doc\":{x},\"col\":\"sensors\"}}"),
            "doc must be a non-empty string",
        );
    }
    for x in not_string {
        add(
            "ddoc",
            &format!("{{\"doc\":\"dev-1\",\"col\":{x}}}"),
            "col must be a string",
        );
    }
    add("ddoc", "{\"col\":5}", "doc must be a non-empty string");

    // dcol, gvals, gkeys: col.
    for ty in ["dcol", "gvals", "gkeys"] {
        for x in not_nonempty_string {
            add(
                ty,
                &format!("{{\"col\":{x}}}"),
                "col must be a non-empty string",
            );
        }
        add(ty, "{}", "col must be a non-empty string");
    }

    // drec / dmrec: col, doc, ts.
    for x in not_nonempty_string {
        add(
            "drec",
            &format!("{{\"col\":{x},\"doc\":\"dev-1\",\"ts\":100}}"),
            "col must be a non-empty string",
        );
        add(
            "drec",
            &format!("{{\"col\":\"sensors\",\"doc\":{x},\"ts\":100}}"),
            "doc must be a non-empty string",
        );
        add(
            "dmrec",
            &format!("[{{\"col\":\"sensors\",\"doc\":{x},\"ts\":100}}]"),
            "[0].doc must be a non-empty string",
        );
    }
    for x in not_positive {
        add(
            "drec",
            &format!("{{\"col\":\"sensors\",\"doc\":\"dev-1\",\"ts\":{x}}}"),
            "ts must be a positive integer",
        );
        add("dmrec", &format!("[{{\"col\":\"sensors\",\"doc\":\"dev-1\",\"ts\":100}},{{\"col\":\"sensors\",\"doc\":\"dev-1\",\"ts\":{x}}}]"), "[1].ts must be a positive integer");
    }
    add("drec", "{}", "col must be a non-empty string");
    add("dmrec", "[{}]", "[0].col must be a non-empty string");

    // drrng: col, doc, fromTs, toTs; then fromTs <= toTs.
    for x in not_positive {
        add(
            "drrng",
            &format!("{{\"col\":\"sensors\",\"doc\":\"dev-1\",\"fromTs\":{x},\"toTs\":100}}"),
            "fromTs must be a positive integer",
        );
        add(
            "drrng",
            &format!("{{\"col\":\"sensors\",\"doc\":\"dev-1\",\"fromTs\":1,\"toTs\":{x}}}"),
            "toTs must be a positive integer",
        );
    }
    add(
        "drrng",
        "{\"col\":\"sensors\",\"doc\":\"dev-1\",\"fromTs\":300,\"toTs\":100}",
        "fromTs must not be greater than toTs",
    );
    add(
        "drrng",
        "{\"col\":\"sensors\",\"doc\":\"dev-1\",\"from\":100,\"to\":200}",
        "fromTs must be a positive integer",
    );
    add(
        "drrng",
        "{\"toTs\":0,\"fromTs\":0,\"doc\":\"\",\"col\":\"sensors\"}",
        "doc must be a non-empty string",
    );

    // sval: col, key, value; gval/gvalues/rval: col, key.
    for x in not_nonempty_string {
        add(
            "sval",
            &format!("{{\"col\":{x},\"key\":\"k\",\"value\":\"v\"}}"),
            "col must be a non-empty string",
        );
        add(
            "sval",
            &format!("{{\"col\":\"config\",\"key\":{x},\"value\":\"v\"}}"),
            "key must be a non-empty string",
        );
        add(
            "sval",
            &format!("{{\"col\":\"config\",\"key\":\"k\",\"value\":{x}}}"),
            "value must be a non-empty string",
        );
        for ty in ["gval", "gvalues", "rval"] {
            add(
                ty,
                &format!("{{\"col\":{x},\"key\":\"region\"}}"),
                "col must be a non-empty string",
            );
            add(
                ty,
                &format!("{{\"col\":\"config\",\"key\":{x}}}"),
                "key must be a non-empty string",
            );
        }
    }
    add(
        "sval",
        "{\"value\":\"\",\"key\":\"\",\"col\":\"config\"}",
        "key must be a non-empty string",
    );

    // Names over 4096 bytes.
    let long = "n".repeat(4097);
    add(
        "qry",
        &format!("{{\"col\":\"{long}\",\"ts\":1}}"),
        "col must be at most 4096 bytes",
    );
    add(
        "qdoc",
        &format!("{{\"col\":\"sensors\",\"doc\":\"{long}\",\"to\":1}}"),
        "doc must be at most 4096 bytes",
    );
    add(
        "ins",
        &format!("[{{\"col\":\"{long}\",\"doc\":\"d\",\"ts\":1,\"data\":\"x\"}}]"),
        "[0].col must be at most 4096 bytes",
    );
    add(
        "ins",
        &format!("[{{\"col\":\"c\",\"doc\":\"{long}\",\"ts\":1,\"data\":\"x\"}}]"),
        "[0].doc must be at most 4096 bytes",
    );
    add(
        "sval",
        &format!("{{\"col\":\"config\",\"key\":\"{long}\",\"value\":\"x\"}}"),
        "key must be at most 4096 bytes",
    );
    add(
        "dcol",
        &format!("{{\"col\":\"{long}\"}}"),
        "col must be at most 4096 bytes",
    );
    add(
        "gval",
        &format!("{{\"col\":\"config\",\"key\":\"{long}\"}}"),
        "key must be at most 4096 bytes",
    );
    add(
        "drec",
        &format!("{{\"col\":\"sensors\",\"doc\":\"{long}\",\"ts\":1}}"),
        "doc must be at most 4096 bytes",
    );
    // Where a pattern may stand, a long name is still a name.
    add(
        "qry",
        &format!("{{\"col\":\"sensors\",\"ts\":1,\"doc\":\"{long}\"}}"),
        "doc must be at most 4096 bytes",
    );
    add(
        "gvalues",
        &format!("{{\"col\":\"config\",\"key\":\"{long}\"}}"),
        "key must be at most 4096 bytes",
    );
    v
}

/// A `/pattern/` in `qry` `doc`, `gvalues` `key` or `sub` `doc` has the pattern's limit, not a
/// name's: a source of 4096 bytes is a pattern, a longer one is taken literally (and, being
/// longer than any name, matches nothing); neither is refused.
#[test]
fn a_long_pattern_is_a_pattern_not_a_name() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    // `^dev-1$|n…n` with 4096 bytes of source: 4098 with its slashes.
    let source = |len: usize| format!("^dev-1$|{}", "n".repeat(len - 8));
    let fits = format!("/{}/", source(4096));
    let q = c.ok("qry", json!({"col": "sensors", "ts": 1000, "doc": fits}));
    let docs: Vec<&String> = q["records"].as_object().unwrap().keys().collect();
    assert_eq!(docs, ["dev-1"], "{q}");
    let too_long = format!("/{}/", source(4097));
    let q = c.ok(
        "qry",
        json!({"col": "sensors", "ts": 1000, "doc": too_long}),
    );
    assert_eq!(q, json!({"records": {}}));

    // `^env\.|` and 4089 more: 4096 bytes of source.
    let fits = format!("/^env\\.|{}/", "n".repeat(4089));
    let v = c.ok("gvalues", json!({"col": "config", "key": fits}));
    assert_eq!(v, json!({"values": {"env.prod": "v1", "env.stage": "v2"}}));
    // Taken literally: the one key of that name, which has no value.
    let too_long = format!("/^env\\.|{}/", "n".repeat(4090));
    let v = c.ok("gvalues", json!({"col": "config", "key": too_long}));
    assert_eq!(v, json!({"values": {too_long: ""}}));

    let v = c.ok(
        "sub",
        json!({"col": "sensors", "doc": format!("/{}/", source(4096))}),
    );
    let sub = v["sub"].as_str().unwrap().to_owned();
    c.ok(
        "ins",
        json!([{"col": "sensors", "doc": "dev-1", "ts": 400, "data": "x"}]),
    );
    let push = c.recv_json();
    assert_eq!(
        (push["sub"].as_str(), push["type"].as_str()),
        (Some(&*sub), Some("rec")),
        "{push}"
    );
}

#[test]
fn payload_errors_exact_text_and_no_effect() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    let cases = payload_cases();
    let mut failures = Vec::new();
    for (i, (ty, data, want)) in cases.iter().enumerate() {
        let id = format!("p{i}");
        let frame = json!({"id": id, "type": ty, "data": data}).to_string();
        c.send_text(&frame);
        match c.next_frame() {
            Frame::Text(t) => {
                let got: Value = serde_json::from_str(&t).unwrap();
                let expected = json!({"id": id, "error": want});
                if got != expected {
                    failures.push(format!(
                        "{ty} data={}\n    expected {expected}\n    got      {got}",
                        crate::common::truncate(data, 200)
                    ));
                }
            }
            other => panic!("{ty} data={data}: connection broke: {}", other.describe()),
        }
        // The same connection still works and the data is intact after every rejection.
        let q = c.ok("qry", json!({"col": "sensors", "ts": 1000}));
        if q != crate::common::fixture_q1() {
            failures.push(format!(
                "after {ty} data={}: sensors changed to {q}",
                crate::common::truncate(data, 200)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} payload cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_fixture_intact(&mut c);
    assert_eq!(crate::common::cols(&mut c), vec!["config", "sensors"]);
}

#[test]
fn null_means_absent() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 1000, "doc": null, "from": null, "where": null, "filter": null})),
        crate::common::fixture_q1()
    );
    assert_eq!(
        c.ok("qdoc", json!({"col": "sensors", "doc": "dev-1", "to": 150, "from": null, "limit": null, "reverse": null, "where": null, "filter": null})),
        json!({"records": [{"ts": 100, "data": "temp:20 state:flying"}]})
    );
    // Unknown payload members are ignored.
    assert_eq!(
        c.ok(
            "qry",
            json!({"col": "sensors", "ts": 1000, "bogus": [1, 2]})
        ),
        crate::common::fixture_q1()
    );
    // Integer fields in every accepted form.
    assert_eq!(
        c.ok("qdoc", json!({"col": "sensors", "doc": "dev-1", "from": "-9223372036854775808", "to": " 150\t", "limit": "+5"})),
        json!({"records": [{"ts": 100, "data": "temp:20 state:flying"}]})
    );
    let raw = "{\"col\":\"sensors\",\"doc\":\"dev-1\",\"from\":-9223372036854775808,\"to\":9223372036854775807,\"limit\":-9223372036854775808}";
    assert_eq!(
        c.call("qdoc", json!(raw))["records"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn binary_frame_closes_1003() {
    let s = Server::start(&[]);
    let mut a = s.master();
    fixture(&mut a);
    let mut b = s.master();
    b.send_raw_frame(2, true, b"{}").unwrap();
    assert_eq!(b.recv_close(), (1003, "text frames only".to_string()));
    // Other connections and the data are unaffected.
    assert_fixture_intact(&mut a);
    // Also through tungstenite's own binary message, with a valid request inside.
    let mut c = s.master();
    c.send_message(tungstenite::Message::binary(
        b"{\"id\":\"x\",\"type\":\"cols\",\"data\":\"{}\"}".to_vec(),
    ));
    assert_eq!(c.recv_close(), (1003, "text frames only".to_string()));
}

#[test]
fn invalid_utf8_closes_1007() {
    let s = Server::start(&[]);
    let mut a = s.master();
    fixture(&mut a);
    let mut b = s.master();
    let mut bytes = b"{\"id\":\"e17".to_vec();
    bytes.extend_from_slice(&[0xc3, 0x28]);
    bytes.extend_from_slice(
        b"\",\"type\":\"qry\",\"data\":\"{\\\"col\\\":\\\"sensors\\\",\\\"ts\\\":1000}\"}",
    );
    b.send_raw_frame(1, true, &bytes).unwrap();
    let (code, _) = b.recv_close();
    assert_eq!(code, 1007);
    // A lone continuation byte, and a truncated sequence at the end.
    for bad in [&[0x80u8][..], &[b'{', 0xe2, 0x82][..], &[0xff, 0xfe][..]] {
        let mut c = s.master();
        c.send_raw_frame(1, true, bad).unwrap();
        assert_eq!(c.recv_close().0, 1007, "bytes {bad:02x?}");
    }
    assert_fixture_intact(&mut a);
}

#[test]
fn fragmented_message_is_reassembled() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let frame = json!({"id": "frag", "type": "ins", "data": json!([{"col": "c", "doc": "d", "ts": 1, "data": "é".repeat(100)}]).to_string()}).to_string();
    let bytes = frame.as_bytes();
    // Split in three, including inside a multi-byte character.
    let cut1 = frame.find('é').unwrap() + 1;
    let cut2 = bytes.len() - 5;
    c.send_raw_frame(1, false, &bytes[..cut1]).unwrap();
    c.send_raw_frame(0, false, &bytes[cut1..cut2]).unwrap();
    c.send_raw_frame(0, true, &bytes[cut2..]).unwrap();
    assert_eq!(c.recv_json(), json!({"id": "frag"}));
    assert_eq!(
        c.ok("qdoc", json!({"col": "c", "doc": "d", "to": 1})),
        json!({"records": [{"ts": 1, "data": "é".repeat(100)}]})
    );
}

#[test]
fn oversize_message_closes_1009() {
    let s = Server::start(&[]);
    let mut a = s.master();
    fixture(&mut a);
    let mut b = s.master();
    let got = b.send_oversize(16 * 1024 * 1024 + 1);
    assert_eq!(
        got,
        Frame::Close(Some((1009, "message too big".to_string()))),
        "got {}",
        got.describe()
    );
    assert_fixture_intact(&mut a);
}

#[test]
fn message_of_exactly_16_mib_is_accepted() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let limit = 16 * 1024 * 1024;
    let head = "{\"id\":\"big\",\"type\":\"ins\",\"data\":\"[{\\\"col\\\":\\\"c\\\",\\\"doc\\\":\\\"d\\\",\\\"ts\\\":1,\\\"data\\\":\\\"";
    let tail = "\\\"}]\"}";
    let fill = limit - head.len() - tail.len();
    let mut frame = String::with_capacity(limit);
    frame.push_str(head);
    frame.extend(std::iter::repeat_n('y', fill));
    frame.push_str(tail);
    assert_eq!(frame.len(), limit);
    c.send_text(&frame);
    drop(frame);
    c.set_read_timeout(std::time::Duration::from_secs(20));
    assert_eq!(c.recv_json(), json!({"id": "big"}));
    let v = c.ok("qdoc", json!({"col": "c", "doc": "d", "to": 1}));
    assert_eq!(v["records"][0]["data"].as_str().map(str::len), Some(fill));
}

#[test]
fn long_strings() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let ten_k = "z".repeat(10_240);
    // 10 KB id, data, value, where.
    let v = c.request(&ten_k, "cols", "{}");
    assert_eq!(v, json!({"id": ten_k, "collections": []}));
    c.ok(
        "ins",
        json!([{"col": "c", "doc": "d", "ts": 1, "data": format!("a{ten_k}b")}]),
    );
    c.ok("sval", json!({"col": "c", "key": "k", "value": ten_k}));
    assert_eq!(
        c.ok("gval", json!({"col": "c", "key": "k"})),
        json!({"value": ten_k})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "c", "ts": 1, "where": ten_k}))["records"]["d"]["ts"],
        1
    );
    assert_eq!(
        c.ok("qry", json!({"col": "c", "ts": 1, "filter": ten_k})),
        json!({"records": {}})
    );
    // 10 KB unknown type.
    let v = c.request("t", &ten_k, "{}");
    assert_eq!(v, json!({"id": "t", "error": "Unknown message type"}));
    // 10 KB names are rejected.
    assert_eq!(
        c.err(
            "ins",
            json!([{"col": "c", "doc": ten_k, "ts": 1, "data": "x"}])
        ),
        "invalid payload: [0].doc must be at most 4096 bytes"
    );
    // A pattern source over 4096 bytes is treated as a literal.
    let pat = format!("/{}/", "a".repeat(5000));
    c.ok("ins", json!([{"col": "p", "doc": "lit", "ts": 1, "data": format!("x{pat}x")}, {"col": "p", "doc": "plain", "ts": 1, "data": "a".repeat(6000)}]));
    assert_eq!(
        c.ok("qry", json!({"col": "p", "ts": 1, "where": pat})),
        json!({"records": {"lit": {"ts": 1, "data": format!("x{pat}x")}}})
    );
    // A pathological pattern runs in linear time (no catastrophic backtracking).
    c.ok(
        "ins",
        json!([{"col": "redos", "doc": "d", "ts": 1, "data": format!("{}!", "a".repeat(5000))}]),
    );
    // Not timed: a backtracking engine would not finish this in any lifetime, so a generous
    // wait for the answer tells the two apart without measuring speed.
    c.set_read_timeout(crate::common::SLOW_READ_TIMEOUT);
    assert_eq!(
        c.ok(
            "qry",
            json!({"col": "redos", "ts": 1, "where": "/^(a+)+$/"})
        ),
        json!({"records": {}})
    );
}
