//! Key/value messages: `sval`, `gval`, `gvalues`, `rval`, `gvals`, `gkeys`
//! (docs/protocol.md#keyvalue-entries).

use crate::common::{cols, fixture, recs, Server};
use serde_json::{json, Value};

#[test]
fn set_get_overwrite_remove() {
    let s = Server::start(&[]);
    let mut c = s.master();
    assert_eq!(
        c.call(
            "sval",
            json!({"col": "config", "key": "region", "value": "eu"})
        ),
        json!({})
    );
    assert_eq!(
        c.ok("gval", json!({"col": "config", "key": "region"})),
        json!({"value": "eu"})
    );
    c.ok(
        "sval",
        json!({"col": "config", "key": "region", "value": "us"}),
    );
    assert_eq!(
        c.ok("gval", json!({"col": "config", "key": "region"})),
        json!({"value": "us"})
    );
    assert_eq!(
        c.ok("gval", json!({"col": "config", "key": "missing"})),
        json!({"value": ""})
    );
    assert_eq!(
        c.ok("gval", json!({"col": "nope", "key": "region"})),
        json!({"value": ""})
    );
    assert_eq!(
        c.call("rval", json!({"col": "config", "key": "region"})),
        json!({})
    );
    assert_eq!(
        c.ok("gval", json!({"col": "config", "key": "region"})),
        json!({"value": ""})
    );
    assert_eq!(
        c.call("rval", json!({"col": "config", "key": "region"})),
        json!({}),
        "absent key: no-op"
    );
    assert_eq!(
        c.call("rval", json!({"col": "nope", "key": "x"})),
        json!({}),
        "absent collection: no-op"
    );
    assert_eq!(cols(&mut c), Vec::<String>::new());
}

#[test]
fn gvals_and_gkeys_are_sorted_by_bytes() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let keys = ["b", "B", "a", "é", "Z", "aa", "a b", "10", "9", "~", "名"];
    for (i, k) in keys.iter().enumerate() {
        c.ok(
            "sval",
            json!({"col": "kv", "key": k, "value": format!("v{i}")}),
        );
    }
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort();
    assert_eq!(
        c.ok("gkeys", json!({"col": "kv"})),
        json!({ "keys": sorted })
    );
    let mut map = serde_json::Map::new();
    for (i, k) in keys.iter().enumerate() {
        map.insert(k.to_string(), json!(format!("v{i}")));
    }
    let v = c.ok("gvals", json!({"col": "kv"}));
    assert_eq!(v, json!({ "values": Value::Object(map) }));
    // The member order on the wire (a JSON object used as a map) must also be sorted (§0).
    let raw = {
        c.send_text(&json!({"id": "raw", "type": "gvals", "data": "{\"col\":\"kv\"}"}).to_string());
        match c.next_frame() {
            crate::common::Frame::Text(t) => t,
            other => panic!("{}", other.describe()),
        }
    };
    let mut last = 0;
    for k in &sorted {
        let needle = format!("{}:", json!(k));
        let pos = raw
            .find(&needle)
            .unwrap_or_else(|| panic!("{needle} not in {raw}"));
        assert!(pos >= last, "values not in byte order: {raw}");
        last = pos;
    }
    // Unknown collection, or one with documents only.
    c.ok("ins", recs(&[("docsonly", "d", 1, "x")]));
    assert_eq!(
        c.ok("gkeys", json!({"col": "docsonly"})),
        json!({"keys": []})
    );
    assert_eq!(
        c.ok("gvals", json!({"col": "docsonly"})),
        json!({"values": {}})
    );
    assert_eq!(c.ok("gkeys", json!({"col": "nope"})), json!({"keys": []}));
    assert_eq!(c.ok("gvals", json!({"col": "nope"})), json!({"values": {}}));
    // gvals ignores a key member.
    assert_eq!(
        c.ok("gvals", json!({"col": "kv", "key": "b"}))["values"]
            .as_object()
            .unwrap()
            .len(),
        keys.len()
    );
}

#[test]
fn gvalues_literal_and_patterns() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    let gv = |c: &mut crate::common::Client, key: &str| {
        c.ok("gvalues", json!({"col": "config", "key": key}))
    };
    let envs = json!({"values": {"env.prod": "v1", "env.stage": "v2"}});
    assert_eq!(gv(&mut c, "/^env[.]/"), envs);
    assert_eq!(gv(&mut c, "/^ENV/i"), envs);
    assert_eq!(
        gv(&mut c, "/^ENV/"),
        json!({"values": {}}),
        "a pattern matching nothing gives {{}}"
    );
    assert_eq!(gv(&mut c, "region"), json!({"values": {"region": "eu"}}));
    assert_eq!(gv(&mut c, "nope"), json!({"values": {"nope": ""}}));
    assert_eq!(
        gv(&mut c, "env"),
        json!({"values": {"env": ""}}),
        "a literal is exact, not a prefix"
    );
    assert_eq!(
        gv(&mut c, "/^env/g"),
        json!({"values": {"/^env/g": ""}}),
        "unknown flag → literal"
    );
    assert_eq!(
        gv(&mut c, "/[/"),
        json!({"values": {"/[/": ""}}),
        "invalid pattern → literal"
    );
    assert_eq!(
        gv(&mut c, "/(?<=e)nv/"),
        json!({"values": {"/(?<=e)nv/": ""}}),
        "look-behind does not compile → literal"
    );
    assert_eq!(
        gv(&mut c, "//"),
        json!({"values": {"env.prod": "v1", "env.stage": "v2", "region": "eu"}})
    );
    assert_eq!(
        gv(&mut c, "/o/"),
        json!({"values": {"env.prod": "v1", "region": "eu"}})
    );
    assert_eq!(
        c.ok("gvalues", json!({"col": "nope", "key": "region"})),
        json!({"values": {}}),
        "unknown collection → {{}} even for a literal"
    );
    assert_eq!(
        c.ok("gvalues", json!({"col": "nope", "key": "//"})),
        json!({"values": {}})
    );
    // Escaped slash in a pattern; a literal key containing slashes.
    c.ok("sval", json!({"col": "config", "key": "a/b", "value": "x"}));
    assert_eq!(gv(&mut c, r"/^a\/b$/"), json!({"values": {"a/b": "x"}}));
    assert_eq!(gv(&mut c, "a/b"), json!({"values": {"a/b": "x"}}));
    // A key that is itself a valid pattern text can only be found by gval or an anchored pattern.
    c.ok(
        "sval",
        json!({"col": "config", "key": "/x/", "value": "slashes"}),
    );
    assert_eq!(
        c.ok("gval", json!({"col": "config", "key": "/x/"})),
        json!({"value": "slashes"})
    );
    assert_eq!(
        gv(&mut c, r"/^\/x\/$/"),
        json!({"values": {"/x/": "slashes"}})
    );
}

#[test]
fn gval_and_rval_never_use_patterns() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    assert_eq!(
        c.ok("gval", json!({"col": "config", "key": "/env/"})),
        json!({"value": ""})
    );
    c.ok("rval", json!({"col": "config", "key": "//"}));
    c.ok("rval", json!({"col": "config", "key": "/^env/"}));
    assert_eq!(
        c.ok("gvals", json!({"col": "config"})),
        json!({"values": {"env.prod": "v1", "env.stage": "v2", "region": "eu"}})
    );
}

#[test]
fn values_are_byte_exact_and_independent_of_documents() {
    let s = Server::start(&[]);
    let mut c = s.master();
    let values = [
        "plain",
        " leading and trailing ",
        "{\"json\":[1,2]}",
        "nul \u{0} ctl \u{1f} nl \n",
        "é 名 🚀",
        "\\ \" /",
    ];
    for (i, v) in values.iter().enumerate() {
        c.ok(
            "sval",
            json!({"col": "mixed", "key": format!("k{i}"), "value": v}),
        );
    }
    for (i, v) in values.iter().enumerate() {
        assert_eq!(
            c.ok("gval", json!({"col": "mixed", "key": format!("k{i}")})),
            json!({"value": v})
        );
    }
    // Documents and KV entries share the collection but not the namespace.
    c.ok("ins", recs(&[("mixed", "k0", 1, "a record")]));
    assert_eq!(
        c.ok("gval", json!({"col": "mixed", "key": "k0"})),
        json!({"value": "plain"})
    );
    assert_eq!(
        c.ok("qry", json!({"col": "mixed", "ts": 10})),
        json!({"records": {"k0": {"ts": 1, "data": "a record"}}})
    );
    c.ok("rval", json!({"col": "mixed", "key": "k0"}));
    assert_eq!(
        c.ok("qry", json!({"col": "mixed", "ts": 10}))["records"]["k0"]["data"],
        "a record"
    );
    // Long names and values.
    let key4096 = "k".repeat(4096);
    let big = "v".repeat(10_000);
    c.ok(
        "sval",
        json!({"col": "mixed", "key": key4096, "value": big}),
    );
    assert_eq!(
        c.ok("gval", json!({"col": "mixed", "key": key4096})),
        json!({"value": big})
    );
    assert_eq!(
        c.err(
            "sval",
            json!({"col": "mixed", "key": "k".repeat(4097), "value": "x"})
        ),
        "invalid payload: key must be at most 4096 bytes"
    );
    assert_eq!(
        c.err(
            "sval",
            json!({"col": "c".repeat(4097), "key": "k", "value": "x"})
        ),
        "invalid payload: col must be at most 4096 bytes"
    );
}

#[test]
fn kv_validation_errors() {
    let s = Server::start(&[]);
    let mut c = s.master();
    fixture(&mut c);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "sval",
            json!({"col": "config", "key": "empty", "value": ""}),
            "invalid payload: value must be a non-empty string",
        ),
        (
            "sval",
            json!({"col": "config", "key": "n", "value": 5}),
            "invalid payload: value must be a non-empty string",
        ),
        (
            "sval",
            json!({"col": "config", "key": "n", "value": {"a": 1}}),
            "invalid payload: value must be a non-empty string",
        ),
        (
            "sval",
            json!({"col": "config", "key": "n", "value": null}),
            "invalid payload: value must be a non-empty string",
        ),
        (
            "sval",
            json!({"col": "config", "value": "x"}),
            "invalid payload: key must be a non-empty string",
        ),
        (
            "sval",
            json!({"col": "config", "key": 1, "value": "x"}),
            "invalid payload: key must be a non-empty string",
        ),
        (
            "sval",
            json!({"key": "k", "value": "x"}),
            "invalid payload: col must be a non-empty string",
        ),
        (
            "sval",
            json!({"col": "", "key": "", "value": ""}),
            "invalid payload: col must be a non-empty string",
        ),
        ("sval", json!([]), "invalid payload: expected a JSON object"),
        (
            "sval",
            json!("{\"col\":"),
            "invalid payload: data is not valid JSON",
        ),
        (
            "gval",
            json!({"col": "config"}),
            "invalid payload: key must be a non-empty string",
        ),
        (
            "gval",
            json!({"key": "region"}),
            "invalid payload: col must be a non-empty string",
        ),
        (
            "gvalues",
            json!({"col": "config"}),
            "invalid payload: key must be a non-empty string",
        ),
        (
            "gvalues",
            json!({"col": "config", "key": ""}),
            "invalid payload: key must be a non-empty string",
        ),
        (
            "rval",
            json!({"col": "config", "key": false}),
            "invalid payload: key must be a non-empty string",
        ),
        (
            "gvals",
            json!({}),
            "invalid payload: col must be a non-empty string",
        ),
        (
            "gkeys",
            json!({"col": 3}),
            "invalid payload: col must be a non-empty string",
        ),
        (
            "gkeys",
            json!(["config"]),
            "invalid payload: expected a JSON object",
        ),
    ];
    for (ty, payload, want) in cases {
        let shown = payload.to_string();
        assert_eq!(c.err(ty, payload), want, "{ty} {shown}");
    }
    crate::common::assert_fixture_intact(&mut c);
    assert_eq!(cols(&mut c), vec!["config", "sensors"]);
}
