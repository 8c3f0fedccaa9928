//! Fixture F of the protocol vectors (tests/vectors/README.md#a-case) and small request helpers.

use super::*;

/// Builds an `ins` payload (array) from `(col, doc, ts, data)` tuples.
pub fn recs(items: &[(&str, &str, i64, &str)]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|(c, d, t, x)| json!({"col": c, "doc": d, "ts": t, "data": x}))
            .collect(),
    )
}

/// Inserts the fixture F of the protocol vectors (tests/vectors/protocol.json) (without the API
/// keys) on a master connection.
pub fn fixture(c: &mut Client) {
    c.ok(
        "ins",
        recs(&[
            ("sensors", "dev-1", 100, "temp:20 state:flying"),
            ("sensors", "dev-1", 200, "temp:21 state:landed"),
            ("sensors", "dev-1", 300, "temp:22 state:flying quality:bad"),
            ("sensors", "dev-2", 150, "temp:30 state:flying"),
            ("sensors", "probe-9", 50, "temp:5 state:parked"),
        ]),
    );
    for (k, v) in [("env.prod", "v1"), ("env.stage", "v2"), ("region", "eu")] {
        c.ok("sval", json!({"col": "config", "key": k, "value": v}));
    }
}

/// Adds the three scoped keys of fixture F (`ro-key`, `rw-key`, `rwd-key`).
pub fn fixture_keys(c: &mut Client) {
    for (k, s) in [
        ("ro-key", "readonly"),
        ("rw-key", "read_write"),
        ("rwd-key", "read_write_delete"),
    ] {
        let v = c.ok("keys", json!({"action": "add", "key": k, "scope": s}));
        assert_eq!(v, json!({"status": "ok", "scope": s}));
    }
}

/// The `qry` answer of fixture F at ts 1000.
pub fn fixture_q1() -> Value {
    json!({"records": {
        "dev-1": {"ts": 300, "data": "temp:22 state:flying quality:bad"},
        "dev-2": {"ts": 150, "data": "temp:30 state:flying"},
        "probe-9": {"ts": 50, "data": "temp:5 state:parked"}
    }})
}

/// Asserts that fixture F is intact (records and key/values).
pub fn assert_fixture_intact(c: &mut Client) {
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 1000})),
        fixture_q1(),
        "fixture records changed"
    );
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "sensors", "doc": "dev-1", "to": 1000})
        ),
        json!({"records": [
            {"ts": 100, "data": "temp:20 state:flying"},
            {"ts": 200, "data": "temp:21 state:landed"},
            {"ts": 300, "data": "temp:22 state:flying quality:bad"}
        ]}),
        "fixture dev-1 history changed"
    );
    assert_eq!(
        c.ok("gvals", json!({"col": "config"})),
        json!({"values": {"env.prod": "v1", "env.stage": "v2", "region": "eu"}}),
        "fixture key/values changed"
    );
}

/// `cols` answer as a list of strings.
pub fn cols(c: &mut Client) -> Vec<String> {
    let v = c.ok("cols", json!({}));
    let list = v["collections"]
        .as_array()
        .unwrap_or_else(|| panic!("cols: no collections array: {v}"));
    list.iter()
        .map(|x| x.as_str().expect("collection name").to_string())
        .collect()
}

/// A `cols` request frame with id `id`, padded (with an ignored `pad` member) to exactly `len`
/// bytes: for testing message size limits.
pub fn padded_cols_frame(id: &str, len: usize) -> String {
    let head = format!("{{\"id\":\"{id}\",\"type\":\"cols\",\"data\":\"{{}}\",\"pad\":\"");
    let tail = "\"}";
    let frame = format!("{head}{}{tail}", "p".repeat(len - head.len() - tail.len()));
    assert_eq!(frame.len(), len);
    frame
}
