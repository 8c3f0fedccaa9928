//! API keys and permissions (docs/protocol.md#permissions-and-api-keys, #keys--api-keys).

use crate::common::{fixture_keys, form_encode, Client, Frame, Server, MASTER};
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Scope {
    Ro,
    Rw,
    Rwd,
    Master,
}

const SCOPES: [Scope; 4] = [Scope::Ro, Scope::Rw, Scope::Rwd, Scope::Master];

#[derive(Clone, Copy, PartialEq, Debug)]
enum Need {
    Read,
    Write,
    Delete,
    Keys,
    Auth,
    Unknown,
}

fn key_of(s: Scope) -> &'static str {
    match s {
        Scope::Ro => "ro-key",
        Scope::Rw => "rw-key",
        Scope::Rwd => "rwd-key",
        Scope::Master => MASTER,
    }
}

const PD: &str = "permission denied";
const MK: &str = "only the master key may manage API keys";
const AUTH: &str = "auth messages are not supported; use the api-key query parameter";

/// What a well-formed request of a type needing `need` gets on a connection of scope `s`:
/// `None` = the normal answer, `Some(error text)` otherwise.
fn expected_error(need: Need, s: Scope) -> Option<&'static str> {
    match (need, s) {
        (Need::Auth, _) => Some(AUTH),
        (Need::Unknown, _) => Some("Unknown message type"),
        (Need::Read, _) => None,
        (Need::Write, Scope::Ro) => Some(PD),
        (Need::Write, _) => None,
        (Need::Delete, Scope::Ro | Scope::Rw) => Some(PD),
        (Need::Delete, _) => None,
        (Need::Keys, Scope::Ro | Scope::Rw) => Some(PD),
        (Need::Keys, Scope::Rwd) => Some(MK),
        (Need::Keys, Scope::Master) => None,
    }
}

/// The observable state of cell collection `c` (and the key list), read on the master connection.
fn state(m: &mut Client, c: &str) -> Value {
    json!({
        "docs": m.ok("qdoc", json!({"col": c, "doc": "d", "to": 100}))["records"],
        "kv": m.ok("gvals", json!({"col": c}))["values"],
        "keys": m.ok("keys", json!({"action": "list"}))["keys"],
    })
}

fn rec(ts: i64, data: &str) -> Value {
    json!({"ts": ts, "data": data})
}

/// One row of the matrix: a message type, the permission it needs, a well-formed payload on cell
/// collection `c`, the normal response (without `id`), and how the state of `c` changes when the
/// request is executed (`None` = unchanged).
struct Row {
    ty: &'static str,
    need: Need,
    payload: fn(&str, &str) -> Value,
    response: fn(&str, &str) -> Option<Value>,
    effect: fn(&str, &str, Value) -> Value,
}

fn unchanged(_: &str, _: &str, st: Value) -> Value {
    st
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            ty: "qry",
            need: Need::Read,
            payload: |c, _| json!({"col": c, "ts": 10}),
            response: |_, _| Some(json!({"records": {"d": {"ts": 2, "data": "two"}}})),
            effect: unchanged,
        },
        Row {
            ty: "cols",
            need: Need::Read,
            payload: |_, _| json!({}),
            response: |_, _| None,
            effect: unchanged,
        },
        Row {
            ty: "qdoc",
            need: Need::Read,
            payload: |c, _| json!({"col": c, "doc": "d", "to": 10}),
            response: |_, _| Some(json!({"records": [rec(1, "one"), rec(2, "two")]})),
            effect: unchanged,
        },
        Row {
            ty: "gval",
            need: Need::Read,
            payload: |c, _| json!({"col": c, "key": "k"}),
            response: |_, _| Some(json!({"value": "v"})),
            effect: unchanged,
        },
        Row {
            ty: "gvalues",
            need: Need::Read,
            payload: |c, _| json!({"col": c, "key": "/^k$/"}),
            response: |_, _| Some(json!({"values": {"k": "v"}})),
            effect: unchanged,
        },
        Row {
            ty: "gvals",
            need: Need::Read,
            payload: |c, _| json!({"col": c}),
            response: |_, _| Some(json!({"values": {"k": "v"}})),
            effect: unchanged,
        },
        Row {
            ty: "gkeys",
            need: Need::Read,
            payload: |c, _| json!({"col": c}),
            response: |_, _| Some(json!({"keys": ["k"]})),
            effect: unchanged,
        },
        Row {
            ty: "conn",
            need: Need::Read,
            payload: |_, _| json!({}),
            response: |_, _| None,
            effect: unchanged,
        },
        Row {
            ty: "ins",
            need: Need::Write,
            payload: |c, _| json!([{"col": c, "doc": "d", "ts": 3, "data": "three"}]),
            response: |_, _| Some(json!({})),
            effect: |_, _, mut st| {
                st["docs"].as_array_mut().unwrap().push(rec(3, "three"));
                st
            },
        },
        Row {
            ty: "sval",
            need: Need::Write,
            payload: |c, _| json!({"col": c, "key": "k2", "value": "v2"}),
            response: |_, _| Some(json!({})),
            effect: |_, _, mut st| {
                st["kv"]["k2"] = json!("v2");
                st
            },
        },
        Row {
            ty: "ddoc",
            need: Need::Delete,
            payload: |c, _| json!({"col": c, "doc": "d"}),
            response: |_, _| Some(json!({})),
            effect: |_, _, mut st| {
                st["docs"] = json!([]);
                st
            },
        },
        Row {
            ty: "dcol",
            need: Need::Delete,
            payload: |c, _| json!({"col": c}),
            response: |_, _| Some(json!({})),
            effect: |_, _, mut st| {
                st["docs"] = json!([]);
                st["kv"] = json!({});
                st
            },
        },
        Row {
            ty: "drec",
            need: Need::Delete,
            payload: |c, _| json!({"col": c, "doc": "d", "ts": 1}),
            response: |_, _| Some(json!({})),
            effect: |_, _, mut st| {
                st["docs"] = json!([rec(2, "two")]);
                st
            },
        },
        Row {
            ty: "dmrec",
            need: Need::Delete,
            payload: |c, _| json!([{"col": c, "doc": "d", "ts": 1}, {"col": c, "doc": "d", "ts": 2}]),
            response: |_, _| Some(json!({})),
            effect: |_, _, mut st| {
                st["docs"] = json!([]);
                st
            },
        },
        Row {
            ty: "drrng",
            need: Need::Delete,
            payload: |c, _| json!({"col": c, "doc": "d", "fromTs": 2, "toTs": 5}),
            response: |_, _| Some(json!({})),
            effect: |_, _, mut st| {
                st["docs"] = json!([rec(1, "one")]);
                st
            },
        },
        Row {
            ty: "rval",
            need: Need::Delete,
            payload: |c, _| json!({"col": c, "key": "k"}),
            response: |_, _| Some(json!({})),
            effect: |_, _, mut st| {
                st["kv"] = json!({});
                st
            },
        },
        Row {
            ty: "keys",
            need: Need::Keys,
            payload: |_, newkey| json!({"action": "add", "key": newkey, "scope": "Read-Only"}),
            response: |_, _| Some(json!({"status": "ok", "scope": "readonly"})),
            effect: |_, newkey, mut st| {
                let list = st["keys"].as_array_mut().unwrap();
                list.push(json!({"key": newkey, "scope": "readonly", "deletable": true}));
                list.sort_by(|a, b| a["key"].as_str().unwrap().cmp(b["key"].as_str().unwrap()));
                st
            },
        },
        Row {
            ty: "auth",
            need: Need::Auth,
            payload: |_, _| json!({"key": MASTER}),
            response: |_, _| None,
            effect: unchanged,
        },
        Row {
            ty: "bogus",
            need: Need::Unknown,
            payload: |_, _| json!({}),
            response: |_, _| None,
            effect: unchanged,
        },
        Row {
            ty: "INS",
            need: Need::Unknown,
            payload: |c, _| json!([{"col": c, "doc": "d", "ts": 3, "data": "x"}]),
            response: |_, _| None,
            effect: unchanged,
        },
    ]
}

fn sorted_strings(v: &Value) -> bool {
    let list: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    list.windows(2).all(|w| w[0] < w[1])
}

#[test]
fn permission_matrix() {
    let s = Server::start(&[]);
    let mut m = s.master();
    fixture_keys(&mut m);
    let mut conns: Vec<(Scope, Client)> = SCOPES
        .iter()
        .map(|&sc| {
            (
                sc,
                if sc == Scope::Master {
                    s.master()
                } else {
                    s.open(key_of(sc), None)
                },
            )
        })
        .collect();
    let rows = rows();
    let mut failures = Vec::new();
    for row in &rows {
        for (scope, conn) in conns.iter_mut() {
            let scope = *scope;
            let cell = format!("pm.{}.{:?}", row.ty, scope);
            let newkey = format!("{cell}.newkey");
            // Set up the cell collection on the master connection.
            m.ok("ins", json!([{"col": cell, "doc": "d", "ts": 1, "data": "one"}, {"col": cell, "doc": "d", "ts": 2, "data": "two"}]));
            m.ok("sval", json!({"col": cell, "key": "k", "value": "v"}));
            let before = state(&mut m, &cell);
            let resp = conn.call(row.ty, (row.payload)(&cell, &newkey));
            let after = state(&mut m, &cell);
            let want_err = expected_error(row.need, scope);
            let label = format!("{} on {:?}", row.ty, scope);
            match want_err {
                Some(e) => {
                    if resp != json!({ "error": e }) {
                        failures.push(format!("{label}: expected error {e:?}, got {resp}"));
                    }
                    if after != before {
                        failures.push(format!(
                            "{label}: refused request changed state {before} -> {after}"
                        ));
                    }
                }
                None => {
                    let ok_shape = match row.ty {
                        "cols" => {
                            let list = &resp["collections"];
                            resp.as_object().unwrap().len() == 1
                                && list.as_array().is_some_and(|l| l.contains(&json!(cell)))
                                && sorted_strings(list)
                        }
                        "conn" => {
                            let list = resp["connections"].as_array();
                            resp.as_object().unwrap().len() == 1
                                && list.is_some_and(|l| {
                                    l.len() == 5
                                        && l.iter().filter(|e| e["self"] == json!(true)).count()
                                            == 1
                                })
                        }
                        _ => Some(&resp) == (row.response)(&cell, &newkey).as_ref(),
                    };
                    if !ok_shape {
                        failures.push(format!(
                            "{label}: unexpected response {resp} (expected {:?})",
                            (row.response)(&cell, &newkey)
                        ));
                    }
                    let want_state = (row.effect)(&cell, &newkey, before.clone());
                    if after != want_state {
                        failures.push(format!(
                            "{label}: state after is {after}, expected {want_state}"
                        ));
                    }
                }
            }
        }
    }
    // Every connection is still open and usable.
    for (scope, conn) in conns.iter_mut() {
        let v = conn.call("cols", json!({}));
        if v.get("collections").is_none() {
            failures.push(format!(
                "connection {scope:?} unusable after the matrix: {v}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} permission-matrix cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn permission_precedes_payload_validation() {
    let s = Server::start(&[]);
    let mut m = s.master();
    fixture_keys(&mut m);
    let mut ro = s.open("ro-key", None);
    let mut rw = s.open("rw-key", None);
    let mut rwd = s.open("rwd-key", None);
    for ty in ["ins", "sval"] {
        assert_eq!(ro.err(ty, json!("not json at all")), PD, "{ty}");
        assert_eq!(
            rw.err(ty, json!("not json at all")),
            "invalid payload: data is not valid JSON",
            "{ty}"
        );
    }
    for ty in ["ddoc", "dcol", "drec", "dmrec", "drrng", "rval"] {
        assert_eq!(ro.err(ty, json!("garbage")), PD, "{ty}");
        assert_eq!(rw.err(ty, json!("garbage")), PD, "{ty}");
        assert_eq!(
            rwd.err(ty, json!("garbage")),
            "invalid payload: data is not valid JSON",
            "{ty}"
        );
    }
    assert_eq!(ro.err("keys", json!("garbage")), PD);
    assert_eq!(rw.err("keys", json!("garbage")), PD);
    assert_eq!(rwd.err("keys", json!("garbage")), MK);
    assert_eq!(
        m.err("keys", json!("garbage")),
        "invalid payload: data is not valid JSON"
    );
    assert_eq!(
        m.err("keys", json!([])),
        "invalid payload: expected a JSON object"
    );
    // auth is answered before the permission check, for every scope, whatever its data.
    for c in [&mut ro, &mut rw, &mut rwd, &mut m] {
        assert_eq!(c.err("auth", json!("x")), AUTH);
    }
    // cols and conn never parse their data.
    assert_eq!(ro.ok("cols", json!("garbage")), json!({"collections": []}));
    assert!(ro.ok("conn", json!("[")).get("connections").is_some());
}

#[test]
fn keys_business_rules() {
    let s = Server::start(&[]);
    let mut m = s.master();
    let add = |m: &mut Client, key: Value, scope: Value| {
        m.call("keys", json!({"action": "add", "key": key, "scope": scope}))
    };
    // Scope aliases (§7.1).
    let aliases = [
        ("readonly", "readonly"),
        ("read_only", "readonly"),
        ("Read-Only", "readonly"),
        ("read only", "readonly"),
        ("  READONLY\t", "readonly"),
        ("read_write", "read_write"),
        ("read-write", "read_write"),
        ("ReadWrite", "read_write"),
        ("read,write", "read_write"),
        ("read_write_delete", "read_write_delete"),
        ("read, write, delete", "read_write_delete"),
        ("READ-WRITE-DELETE", "read_write_delete"),
        ("\nread write delete\n", "read_write_delete"),
    ];
    for (i, (alias, canon)) in aliases.iter().enumerate() {
        assert_eq!(
            add(&mut m, json!(format!("alias{i:02}")), json!(alias)),
            json!({"status": "ok", "scope": canon}),
            "{alias:?}"
        );
    }
    for bad in [
        json!("admin"),
        json!(""),
        json!("read"),
        json!("write"),
        json!("readonly!"),
        json!(1),
        json!(null),
    ] {
        assert_eq!(
            add(&mut m, json!("kx"), bad.clone()),
            json!({"error": "invalid scope"}),
            "scope {bad}"
        );
    }
    // Scope is checked before the key.
    assert_eq!(
        m.call("keys", json!({"action": "add", "key": "k4"})),
        json!({"error": "invalid scope"})
    );
    assert_eq!(
        add(&mut m, json!(""), json!("readonly")),
        json!({"error": "api key cannot be empty"})
    );
    assert_eq!(
        m.call("keys", json!({"action": "add", "scope": "readonly"})),
        json!({"error": "api key cannot be empty"})
    );
    assert_eq!(
        add(&mut m, json!(7), json!("readonly")),
        json!({"error": "api key cannot be empty"})
    );
    assert_eq!(
        add(&mut m, json!("k".repeat(4097)), json!("readonly")),
        json!({"error": "invalid payload: key must be at most 4096 bytes"})
    );
    assert_eq!(
        add(&mut m, json!("k".repeat(4096)), json!("readonly")),
        json!({"status": "ok", "scope": "readonly"})
    );
    // The master key: a no-op reporting the effective scope.
    assert_eq!(
        add(&mut m, json!(MASTER), json!("readonly")),
        json!({"status": "ok", "scope": "read_write_delete"})
    );
    assert_eq!(
        m.call("keys", json!({"action": "remove", "key": MASTER})),
        json!({"error": "api key cannot be removed"})
    );
    assert_eq!(
        m.call("keys", json!({"action": "remove", "key": "ghost"})),
        json!({"error": "api key not found"})
    );
    assert_eq!(
        m.call("keys", json!({"action": "remove", "key": ""})),
        json!({"error": "api key not found"})
    );
    assert_eq!(
        m.call("keys", json!({"action": "remove"})),
        json!({"error": "api key not found"})
    );
    // Actions.
    for bad in [
        json!({"action": "rotate", "key": "x"}),
        json!({}),
        json!({"action": 1}),
        json!({"action": ""}),
    ] {
        assert_eq!(
            m.call("keys", bad.clone()),
            json!({"error": "unknown action"}),
            "{bad}"
        );
    }
    assert_eq!(
        m.call(
            "keys",
            json!({"action": " A-D_D, ", "key": "normalised", "scope": "read only"})
        ),
        json!({"status": "ok", "scope": "readonly"})
    );
    // list: sorted by key, master included, deletable flags.
    let v = m.ok("keys", json!({"action": "LIST"}));
    assert_eq!(v["status"], "ok");
    let list = v["keys"].as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|e| e["key"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "keys list must be sorted by key");
    assert_eq!(list.len(), aliases.len() + 3, "{v}");
    let master = list
        .iter()
        .find(|e| e["key"] == MASTER)
        .expect("master listed");
    assert_eq!(
        master,
        &json!({"key": MASTER, "scope": "read_write_delete", "deletable": false})
    );
    assert_eq!(
        list.iter().find(|e| e["key"] == "alias05").unwrap(),
        &json!({"key": "alias05", "scope": "read_write", "deletable": true})
    );
    // Re-scoping keeps the entry (one entry per key).
    assert_eq!(
        add(&mut m, json!("alias05"), json!("readonly")),
        json!({"status": "ok", "scope": "readonly"})
    );
    let v = m.ok("keys", json!({"action": "list"}));
    let entries: Vec<&Value> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["key"] == "alias05")
        .collect();
    assert_eq!(
        entries,
        vec![&json!({"key": "alias05", "scope": "readonly", "deletable": true})]
    );
    // remove, then list no longer shows it.
    assert_eq!(
        m.call("keys", json!({"action": "remove", "key": "alias05"})),
        json!({"status": "ok"})
    );
    let v = m.ok("keys", json!({"action": "list"}));
    assert!(!v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["key"] == "alias05"));
}

#[test]
fn live_rescope() {
    let s = Server::start(&[]);
    let mut m = s.master();
    fixture_keys(&mut m);
    let mut b = s.open("ro-key", None);
    let mut b2 = s.open("ro-key", Some("second"));
    let ins = json!([{"col": "c", "doc": "d", "ts": 1, "data": "x"}]);
    assert_eq!(b.err("ins", ins.clone()), PD);
    assert_eq!(
        m.ok(
            "keys",
            json!({"action": "add", "key": "ro-key", "scope": "read_write"})
        ),
        json!({"status": "ok", "scope": "read_write"})
    );
    // Same connections, new scope, effective for the next request.
    assert_eq!(b.call("ins", ins.clone()), json!({}));
    assert_eq!(
        b2.call(
            "ins",
            json!([{"col": "c", "doc": "d", "ts": 2, "data": "y"}])
        ),
        json!({})
    );
    assert_eq!(b.err("dcol", json!({"col": "c"})), PD);
    m.ok(
        "keys",
        json!({"action": "add", "key": "ro-key", "scope": "read_write_delete"}),
    );
    assert_eq!(
        b.call("drec", json!({"col": "c", "doc": "d", "ts": 2})),
        json!({})
    );
    assert_eq!(
        b.err("keys", json!({"action": "list"})),
        MK,
        "a non-master key never manages keys"
    );
    m.ok(
        "keys",
        json!({"action": "add", "key": "ro-key", "scope": "readonly"}),
    );
    assert_eq!(b.err("ins", ins.clone()), PD);
    assert_eq!(b2.err("drec", json!({"col": "c", "doc": "d", "ts": 1})), PD);
    assert_eq!(
        b.ok("qdoc", json!({"col": "c", "doc": "d", "to": 10})),
        json!({"records": [{"ts": 1, "data": "x"}]})
    );
    // New connections get the current scope too.
    let mut b3 = s.open("ro-key", None);
    assert_eq!(b3.err("ins", ins), PD);
    // Other keys' connections are not affected.
    let mut c = s.open("rw-key", None);
    assert_eq!(
        c.call(
            "ins",
            json!([{"col": "c", "doc": "e", "ts": 1, "data": "z"}])
        ),
        json!({})
    );
}

#[test]
fn revocation_closes_before_the_masters_ok() {
    let s = Server::start(&[]);
    let mut m = s.master();
    fixture_keys(&mut m);
    let mut b = s.open("ro-key", None);
    let mut b2 = s.open("ro-key", Some("other"));
    let mut c = s.open("rw-key", None);
    m.send_text(
        &json!({"id": "rm", "type": "keys", "data": "{\"action\":\"remove\",\"key\":\"ro-key\"}"})
            .to_string(),
    );
    assert_eq!(m.recv_json(), json!({"id": "rm", "status": "ok"}));
    // The close frames were sent before the ok: they must be readable right away.
    b.set_read_timeout(std::time::Duration::from_millis(1000));
    b2.set_read_timeout(std::time::Duration::from_millis(1000));
    assert_eq!(b.recv_close(), (1008, "API key revoked".to_string()));
    assert_eq!(b2.recv_close(), (1008, "API key revoked".to_string()));
    // The key no longer authenticates.
    assert_eq!(
        Client::open_expect_close(s.port, "/?api-key=ro-key"),
        (1008, "Unknown API key".to_string())
    );
    // Other connections are unaffected.
    assert_eq!(
        c.call(
            "ins",
            json!([{"col": "c", "doc": "d", "ts": 1, "data": "x"}])
        ),
        json!({})
    );
    let v = m.ok("conn", json!({}));
    assert_eq!(
        v["connections"].as_array().unwrap().len(),
        2,
        "revoked connections are gone: {v}"
    );
    // Re-adding the key makes it usable again (new connections).
    m.ok(
        "keys",
        json!({"action": "add", "key": "ro-key", "scope": "readonly"}),
    );
    let mut b4 = s.open("ro-key", None);
    assert_eq!(b4.ok("gkeys", json!({"col": "none"})), json!({"keys": []}));
}

#[test]
fn handshake_failures() {
    let s = Server::start(&[]);
    let missing = (1008, "Missing API key parameter".to_string());
    assert_eq!(Client::open_expect_close(s.port, "/"), missing);
    assert_eq!(Client::open_expect_close(s.port, "/?"), missing);
    assert_eq!(Client::open_expect_close(s.port, "/?api-key="), missing);
    assert_eq!(Client::open_expect_close(s.port, "/?name=ops"), missing);
    assert_eq!(
        Client::open_expect_close(s.port, "/?api-key=&api-key=master-key"),
        missing,
        "first occurrence wins"
    );
    let unknown = (1008, "Unknown API key".to_string());
    assert_eq!(Client::open_expect_close(s.port, "/?api-key=nope"), unknown);
    assert_eq!(
        Client::open_expect_close(s.port, "/?api-key=nope&api-key=master-key"),
        unknown,
        "first occurrence wins"
    );
    assert_eq!(
        Client::open_expect_close(s.port, "/?api-key=MASTER-KEY"),
        unknown,
        "keys are case-sensitive"
    );
    assert_eq!(
        Client::open_expect_close(s.port, "/?api-key=master-key%20"),
        unknown
    );
    // Accepted forms, kept open: each is listed from before its `ready` frame.
    let mut accepted = [
        "/?api-key=master-key&api-key=nope",
        "/any/path?api-key=master-key",
        "/ws?x=1&api-key=master-key&y=2",
        "/?api-key=master%2Dkey",
    ]
    .map(|path| Client::open_path(s.port, path));
    // A refused connection never appears in conn: only the four accepted ones and this one.
    let mut m = s.master();
    let v = m.ok("conn", json!({}));
    assert_eq!(v["connections"].as_array().unwrap().len(), 5, "{v}");
    // A session leaves the list before its close handshake completes: once each close is
    // answered, only this connection remains.
    for c in &mut accepted {
        assert_eq!(c.close(), Frame::Close(Some((1000, String::new()))));
    }
    let v = m.ok("conn", json!({}));
    assert_eq!(v["connections"].as_array().unwrap().len(), 1, "{v}");
}

#[test]
fn form_decoding_of_key_and_name() {
    let s = Server::start(&[]);
    let mut m = s.master();
    for (k, scope) in [
        ("a+b c", "readonly"),
        ("a b c", "read_write"),
        ("x%y", "readonly"),
        ("é/ü?&=#", "readonly"),
    ] {
        m.ok("keys", json!({"action": "add", "key": k, "scope": scope}));
    }
    // `%2B` is a plus, `+` is a space.
    let mut c = Client::open_path(s.port, "/?api-key=a%2Bb+c");
    assert_eq!(
        c.err(
            "ins",
            json!([{"col": "c", "doc": "d", "ts": 1, "data": "x"}])
        ),
        PD,
        "a%2Bb+c is the readonly key 'a+b c'"
    );
    let mut c = Client::open_path(s.port, "/?api-key=a+b+c");
    assert_eq!(
        c.call(
            "ins",
            json!([{"col": "c", "doc": "d", "ts": 1, "data": "x"}])
        ),
        json!({}),
        "a+b+c is 'a b c' (read_write)"
    );
    Client::open_path(s.port, "/?api-key=a%20b%20c");
    Client::open_path(s.port, "/?api-key=x%25y");
    Client::open_path(s.port, &format!("/?api-key={}", form_encode("é/ü?&=#")));
    assert_eq!(
        Client::open_expect_close(s.port, "/?api-key=a+b%2Bc").0,
        1008
    );
    // Names.
    let names = [
        ("my+app", json!("my app")),
        ("my%2Bapp", json!("my+app")),
        ("caf%C3%A9%20bar", json!("café bar")),
        ("a%26b%3Dc", json!("a&b=c")),
        ("", json!(null)),
    ];
    for (raw, want) in names {
        let mut c = Client::open_path(s.port, &format!("/?api-key=master-key&name={raw}"));
        let v = c.ok("conn", json!({}));
        let own: Vec<&Value> = v["connections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["self"] == json!(true))
            .collect();
        assert_eq!(own.len(), 1, "{v}");
        assert_eq!(own[0]["name"], want, "name={raw}");
    }
    // No name parameter at all → null; first occurrence wins.
    let mut c = Client::open_path(s.port, "/?api-key=master-key");
    let v = c.ok("conn", json!({}));
    let own = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["self"] == json!(true))
        .unwrap()
        .clone();
    assert_eq!(own["name"], Value::Null);
    let mut c = Client::open_path(s.port, "/?name=first&api-key=master-key&name=second");
    let v = c.ok("conn", json!({}));
    let own = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["self"] == json!(true))
        .unwrap()
        .clone();
    assert_eq!(own["name"], "first");
}

/// Key guessing is slowed down (docs/protocol.md#refused-connections): after five unknown keys from
/// one address, each further refusal waits longer (250 ms, then 500 ms, …) before it is sent, while
/// a connection with a valid key from the same address is served at once.
#[test]
fn repeated_unknown_keys_are_refused_ever_more_slowly() {
    let s = Server::start(&[]);
    let refuse = |port: u16| {
        let t0 = std::time::Instant::now();
        let close = Client::open_expect_close(port, "/?api-key=guess");
        assert_eq!(close, (1008, "Unknown API key".to_string()));
        t0.elapsed()
    };
    for _ in 0..5 {
        refuse(s.port);
    }
    let sixth = refuse(s.port);
    assert!(
        sixth >= std::time::Duration::from_millis(200),
        "the sixth unknown key was refused after {sixth:?}"
    );
    // The seventh, eighth and ninth wait 0.5, 1 and 2 s once upgraded (whichever connection
    // fails last waits longest); a valid key connecting meanwhile is answered before the
    // slowest of those refusals. Three guessers rather than one, so that the window is 2 s and
    // a loaded machine's slow connect cannot close it.
    let (upgraded_tx, upgraded) = std::sync::mpsc::channel();
    let (done, refused) = std::sync::mpsc::channel();
    let port = s.port;
    let guessers: Vec<_> = (0..3)
        .map(|_| {
            let (upgraded_tx, done) = (upgraded_tx.clone(), done.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(port, "/?api-key=guess").unwrap();
                upgraded_tx.send(()).unwrap();
                assert_eq!(c.recv_close(), (1008, "Unknown API key".to_string()));
                done.send(()).unwrap();
            })
        })
        .collect();
    for _ in 0..3 {
        upgraded.recv().unwrap();
    }
    let mut m = s.master();
    assert_eq!(m.ok("cols", json!({})), json!({"collections": []}));
    let refusals_before = refused.try_iter().count();
    assert!(
        refusals_before < 3,
        "the valid key waited for every throttled refusal"
    );
    for g in guessers {
        g.join().unwrap();
    }
}

/// A held-back refusal holds its connection slot, so one address's guesses could fill every
/// slot: while eight refusals of an address wait, its new connections are refused at once with
/// 1013, before their key is looked at (a valid key included, so that the answer says nothing
/// about the key).
#[test]
fn an_address_whose_refusals_crowd_is_turned_away_before_its_key_is_looked_at() {
    let s = Server::start(&[]);
    // Five free refusals, then four slowed ones (0.25, 0.5, 1 and 2 s): the next ones wait 4 s
    // and more, long enough to be waiting all at once on a loaded machine.
    for _ in 0..9 {
        let close = Client::open_expect_close(s.port, "/?api-key=guess");
        assert_eq!(close, (1008, "Unknown API key".to_string()));
    }
    let port = s.port;
    let mut waiting = Vec::new();
    for _ in 0..8 {
        // Upgraded: its refusal is being held back.
        waiting.push(Client::connect(port, "/?api-key=guess").unwrap());
    }
    let close = Client::open_expect_close(port, &format!("/?api-key={MASTER}"));
    assert_eq!(
        close,
        (
            1013,
            "too many refused connections waiting from this address".to_string()
        )
    );
    // The held-back refusals still come as ever.
    for mut c in waiting {
        c.set_read_timeout(crate::common::SLOW_READ_TIMEOUT);
        assert_eq!(c.recv_close(), (1008, "Unknown API key".to_string()));
    }
    // And the address is served again once they are out.
    assert_eq!(s.master().ok("cols", json!({})), json!({"collections": []}));
}
