//! Model-based test of the store (issue 7): a seeded generator of random operation sequences —
//! every message type, overlapping timestamps, replaces, range deletes, patterns and predicates,
//! invalid payloads, a readonly connection — applied both to the real server over the wire and
//! to a deliberately simple model made of BTreeMaps. Every response must equal the model's.
//!
//! `model_matches_the_dispatcher_in_process` compares the same way with no socket: in-process
//! sessions hand each request straight to the server's dispatcher.
//!
//! `model_matches_server` runs a few thousand operations (in `make test`); the ignored `soak`
//! runs for `FLUXIONDB_SOAK_SECONDS` (`make soak`). A failure prints the seed and the operation
//! number; `FLUXIONDB_MODEL_SEED=N` replays one seed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::{Client, Server, MASTER};
use fluxiondb::LocalSession;
use serde_json::{json, Map, Value};
use std::collections::VecDeque;

// ---------------------------------------------------------------------------------------------
// Random numbers

/// fastrand's generator (seeded: a printed seed replays the run) plus two helpers.
use fastrand::Rng;

trait Pick {
    /// True with probability `num / den`.
    fn chance(&mut self, num: usize, den: usize) -> bool;
    fn pick<T: Clone>(&mut self, items: &[T]) -> T;
}

impl Pick for Rng {
    fn chance(&mut self, num: usize, den: usize) -> bool {
        self.usize(..den) < num
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.usize(..items.len())].clone()
    }
}

// ---------------------------------------------------------------------------------------------
// The model

#[derive(Default, Clone)]
struct Col {
    docs: BTreeMap<String, BTreeMap<i64, String>>,
    kv: BTreeMap<String, String>,
}

#[derive(Default)]
struct Model {
    cols: BTreeMap<String, Col>,
    /// Scoped API keys → canonical scope (the master key is implicit).
    keys: BTreeMap<String, &'static str>,
}

impl Model {
    /// A collection exists exactly while it has a document or a key/value entry (§3).
    fn prune(&mut self) {
        for c in self.cols.values_mut() {
            c.docs.retain(|_, d| !d.is_empty());
        }
        self.cols
            .retain(|_, c| !c.docs.is_empty() || !c.kv.is_empty());
    }
}

/// A `/pattern/flags` with its meaning computed by hand (no regex engine in the model).
#[derive(Clone, Debug)]
enum Pat {
    All,
    Contains(String),
    ContainsNoCase(String),
    Prefix(String),
    Suffix(String),
    Exact(String),
    Either(String, String),
    /// `^s` with the `m` flag: at the start or right after a `\n`.
    LineStart(String),
    /// `a.b`; with the `s` flag `.` also matches `\n`.
    Dot(String, String, bool),
}

impl Pat {
    fn source(&self) -> String {
        fn esc(s: &str) -> String {
            s.replace('.', "\\.")
        }
        match self {
            Pat::All => "//".into(),
            Pat::Contains(s) => format!("/{}/", esc(s)),
            Pat::ContainsNoCase(s) => format!("/{}/i", esc(&s.to_ascii_uppercase())),
            Pat::Prefix(s) => format!("/^{}/", esc(s)),
            Pat::Suffix(s) => format!("/{}$/", esc(s)),
            Pat::Exact(s) => format!("/^{}$/", esc(s)),
            Pat::Either(a, b) => format!("/(?:{}|{})/", esc(a), esc(b)),
            Pat::LineStart(s) => format!("/^{}/m", esc(s)),
            Pat::Dot(a, b, s) => format!("/{}.{}/{}", esc(a), esc(b), if *s { "s" } else { "" }),
        }
    }

    fn matches(&self, hay: &str) -> bool {
        match self {
            Pat::All => true,
            Pat::Contains(s) => hay.contains(s.as_str()),
            Pat::ContainsNoCase(s) => hay.to_ascii_lowercase().contains(s.as_str()),
            Pat::Prefix(s) => hay.starts_with(s.as_str()),
            Pat::Suffix(s) => hay.ends_with(s.as_str()),
            Pat::Exact(s) => hay == s,
            Pat::Either(a, b) => hay.contains(a.as_str()) || hay.contains(b.as_str()),
            Pat::LineStart(s) => hay.starts_with(s.as_str()) || hay.contains(&format!("\n{s}")),
            Pat::Dot(a, b, dotall) => hay.match_indices(a.as_str()).any(|(i, _)| {
                let rest = &hay[i + a.len()..];
                let mut it = rest.chars();
                match it.next() {
                    Some(c) if *dotall || c != '\n' => it.as_str().starts_with(b.as_str()),
                    _ => false,
                }
            }),
        }
    }
}

/// A `doc`/`key`/`where`/`filter` text: a literal or a pattern (or text that looks like one but
/// is taken literally).
#[derive(Clone, Debug)]
enum Sel {
    Lit(String),
    Pat(Pat),
}

impl Sel {
    fn text(&self) -> String {
        match self {
            Sel::Lit(s) => s.clone(),
            Sel::Pat(p) => p.source(),
        }
    }
    /// As a `where`/`filter` predicate on record data.
    fn data_matches(&self, data: &str) -> bool {
        match self {
            Sel::Lit(s) => data.contains(s.as_str()),
            Sel::Pat(p) => p.matches(data),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generation

const COLS: &[&str] = &["c0", "c1", "sensors", "é/..", "q\"uote\\", "ctl\u{1}\t"];
const DOCS: &[&str] = &["d0", "d1", "dev-1", "dev-2", "Dev-3", "x/y", "ü😀", "a\nb"];
const KEYS: &[&str] = &["k0", "k1", "env.prod", "env.stage", "region", "K\"2"];
const TOKENS: &[&str] = &[
    "d", "dev", "ev-", "1", "2", "temp:2", "state:", "fly", "k", "env.", "x",
];
const WORDS: &[&str] = &[
    "temp:20",
    "temp:21",
    "state:flying",
    "state:landed",
    "quality:bad",
    "é€😀",
    "\"q\"",
    "a\\b",
    "line1\nstate:flying",
    "x.y",
    "",
];

fn data(rng: &mut Rng) -> String {
    let n = rng.usize(..3);
    let mut parts: Vec<String> = (0..n).map(|_| rng.pick(WORDS).to_string()).collect();
    if rng.chance(1, 3) {
        parts.push(format!("n:{}", rng.usize(..1000)));
    }
    parts.join(" ")
}

fn ts(rng: &mut Rng) -> i64 {
    match rng.usize(..20) {
        0 => i64::MAX,
        1 => 1,
        _ => 1 + rng.usize(..40) as i64,
    }
}

fn pat(rng: &mut Rng) -> Pat {
    let t = |rng: &mut Rng| rng.pick(TOKENS).to_string();
    match rng.usize(..9) {
        0 => Pat::All,
        1 => Pat::Contains(t(rng)),
        2 => Pat::ContainsNoCase(t(rng)),
        3 => Pat::Prefix(t(rng)),
        4 => Pat::Suffix(t(rng)),
        5 => Pat::Exact(
            rng.pick(&["d0", "dev-1", "k0", "temp:20", "region"])
                .to_string(),
        ),
        6 => Pat::Either(t(rng), t(rng)),
        7 => Pat::LineStart(rng.pick(&["state", "line1", "temp"]).to_string()),
        _ => Pat::Dot("line1".into(), "state".into(), rng.chance(1, 2)),
    }
}

/// A selector for document names (`qry` `doc`) or KV keys (`gvalues` `key`).
fn name_sel(rng: &mut Rng, names: &[&str]) -> Sel {
    match rng.usize(..10) {
        0..=3 => Sel::Lit(rng.pick(names).to_string()),
        4 => Sel::Lit(rng.pick(&["/[/", "/d/g", "/(a)\\1/", "/d"]).to_string()),
        _ => Sel::Pat(pat(rng)),
    }
}

/// A `where`/`filter` predicate, or none.
fn data_sel(rng: &mut Rng) -> Option<Sel> {
    match rng.usize(..8) {
        0..=3 => None,
        4 => Some(Sel::Lit(
            rng.pick(&["temp:2", "state:flying", "/[/", "\n", "é"])
                .to_string(),
        )),
        _ => Some(Sel::Pat(pat(rng))),
    }
}

fn opt_json(v: &mut Map<String, Value>, key: &str, val: Option<Value>) {
    if let Some(val) = val {
        v.insert(key.into(), val);
    }
}

/// One request with the response the model prescribes (without `id`).
struct Step {
    ty: &'static str,
    payload: Value,
    expect: Value,
    /// Sent on the readonly connection.
    readonly: bool,
}

fn err(text: &str) -> Value {
    json!({ "error": text })
}

fn record(ts: i64, data: &str) -> Value {
    json!({"ts": ts, "data": data})
}

/// Generates one operation and applies it to the model.
fn step(rng: &mut Rng, m: &mut Model) -> Step {
    let col = |rng: &mut Rng| rng.pick(COLS).to_string();
    let doc = |rng: &mut Rng| rng.pick(DOCS).to_string();
    let kind = rng.usize(..100);
    let mut s = Step {
        ty: "cols",
        payload: json!({}),
        expect: json!({}),
        readonly: false,
    };
    match kind {
        // ins: a batch mixing collections and documents, with repeated timestamps.
        0..=21 => {
            s.ty = "ins";
            let n = rng.usize(..7);
            let mut recs = Vec::new();
            let bad = if rng.chance(1, 15) && n > 0 {
                Some(rng.usize(..n))
            } else {
                None
            };
            let mut items = Vec::new();
            for i in 0..n {
                let (c, d, t, x) = (col(rng), doc(rng), ts(rng), data(rng));
                if Some(i) == bad {
                    items.push(json!({"col": c, "doc": d, "ts": 0, "data": x}));
                } else {
                    items.push(json!({"col": c, "doc": d, "ts": t, "data": x}));
                    recs.push((c, d, t, x));
                }
            }
            s.payload = Value::Array(items);
            match bad {
                Some(i) => {
                    s.expect = err(&format!(
                        "invalid payload: [{i}].ts must be a positive integer"
                    ))
                }
                None => {
                    for (c, d, t, x) in recs {
                        m.cols
                            .entry(c)
                            .or_default()
                            .docs
                            .entry(d)
                            .or_default()
                            .insert(t, x);
                    }
                }
            }
        }
        // qry
        22..=33 => {
            s.ty = "qry";
            s.readonly = rng.chance(1, 4);
            let c = col(rng);
            let at = ts(rng);
            let sel = if rng.chance(1, 3) {
                None
            } else {
                Some(name_sel(rng, DOCS))
            };
            let from: Option<i64> = match rng.usize(..4) {
                0 => Some(rng.usize(..40) as i64),
                1 => Some(-(rng.usize(..5) as i64)),
                _ => None,
            };
            let (w, f) = (data_sel(rng), data_sel(rng));
            let mut p = Map::new();
            p.insert("col".into(), json!(c));
            p.insert("ts".into(), json!(at));
            opt_json(&mut p, "doc", sel.as_ref().map(|x| json!(x.text())));
            opt_json(&mut p, "from", from.map(|x| json!(x)));
            opt_json(&mut p, "where", w.as_ref().map(|x| json!(x.text())));
            opt_json(&mut p, "filter", f.as_ref().map(|x| json!(x.text())));
            s.payload = Value::Object(p);
            let mut out = Map::new();
            if let Some(cc) = m.cols.get(&c) {
                for (name, recs) in &cc.docs {
                    let chosen = match &sel {
                        None => true,
                        Some(Sel::Lit(l)) => l == name,
                        Some(Sel::Pat(p)) => p.matches(name),
                    };
                    if !chosen {
                        continue;
                    }
                    let Some((&t, x)) = recs.range(..=at).next_back() else {
                        continue;
                    };
                    if t < from.unwrap_or(0) {
                        continue;
                    }
                    if w.as_ref().is_some_and(|w| !w.data_matches(x))
                        || f.as_ref().is_some_and(|f| f.data_matches(x))
                    {
                        continue;
                    }
                    out.insert(name.clone(), record(t, x));
                }
            }
            s.expect = json!({ "records": out });
        }
        // qdoc
        34..=45 => {
            s.ty = "qdoc";
            s.readonly = rng.chance(1, 4);
            let (c, d) = (col(rng), doc(rng));
            let to = ts(rng);
            let from: Option<i64> = match rng.usize(..5) {
                0 => None,
                1 => Some(-(rng.usize(..3) as i64)),
                2 if rng.chance(1, 3) => Some(to.saturating_add(1)), // inverted range
                _ => Some(1 + rng.usize(..to.min(40) as usize) as i64),
            };
            let limit: Option<i64> = match rng.usize(..4) {
                0 => Some(1 + rng.usize(..4) as i64),
                1 => Some(-(rng.usize(..2) as i64)),
                _ => None,
            };
            let reverse = match rng.usize(..3) {
                0 => None,
                1 => Some(json!(true)),
                _ => Some(json!(rng.usize(..2))),
            };
            let (w, f) = (data_sel(rng), data_sel(rng));
            let mut p = Map::new();
            p.insert("col".into(), json!(c));
            p.insert("doc".into(), json!(d));
            opt_json(&mut p, "from", from.map(|x| json!(x)));
            p.insert("to".into(), json!(to));
            opt_json(&mut p, "limit", limit.map(|x| json!(x)));
            opt_json(&mut p, "reverse", reverse.clone());
            opt_json(&mut p, "where", w.as_ref().map(|x| json!(x.text())));
            opt_json(&mut p, "filter", f.as_ref().map(|x| json!(x.text())));
            s.payload = Value::Object(p);
            let from = from.unwrap_or(0);
            if from > to {
                s.expect = err("invalid payload: from must not be greater than to");
            } else {
                let rev = match reverse {
                    Some(Value::Bool(b)) => b,
                    Some(Value::Number(n)) => n.as_i64() != Some(0),
                    _ => false,
                };
                let mut recs: Vec<(i64, String)> = m
                    .cols
                    .get(&c)
                    .and_then(|cc| cc.docs.get(&d))
                    .map(|r| r.range(from..=to).map(|(t, x)| (*t, x.clone())).collect())
                    .unwrap_or_default();
                if rev {
                    recs.reverse();
                }
                let mut kept: Vec<Value> = recs
                    .into_iter()
                    .filter(|(_, x)| {
                        w.as_ref().is_none_or(|w| w.data_matches(x))
                            && !f.as_ref().is_some_and(|f| f.data_matches(x))
                    })
                    .map(|(t, x)| record(t, &x))
                    .collect();
                if let Some(l) = limit.filter(|l| *l > 0) {
                    kept.truncate(l as usize);
                }
                s.expect = json!({ "records": kept });
            }
        }
        46..=48 => {
            s.ty = "cols";
            s.readonly = rng.chance(1, 3);
            s.payload = json!("{}");
            s.expect = json!({ "collections": m.cols.keys().collect::<Vec<_>>() });
        }
        // ddoc, in one collection or in all
        49..=51 => {
            s.ty = "ddoc";
            let d = doc(rng);
            let c = match rng.usize(..4) {
                0 => None,
                1 => Some(String::new()),
                _ => Some(col(rng)),
            };
            s.payload = match &c {
                None => json!({"doc": d}),
                Some(c) => json!({"doc": d, "col": c}),
            };
            for (name, cc) in m.cols.iter_mut() {
                if c.as_deref().is_none_or(|c| c.is_empty() || c == name) {
                    cc.docs.remove(&d);
                }
            }
        }
        52..=53 => {
            s.ty = "dcol";
            let c = col(rng);
            s.payload = json!({ "col": c });
            m.cols.remove(&c);
        }
        // drec / dmrec
        54..=61 => {
            let single = rng.chance(1, 2);
            let n = if single { 1 } else { rng.usize(..5) };
            let mut refs = Vec::new();
            for _ in 0..n {
                refs.push((col(rng), doc(rng), ts(rng)));
            }
            let items: Vec<Value> = refs
                .iter()
                .map(|(c, d, t)| json!({"col": c, "doc": d, "ts": t}))
                .collect();
            if single {
                s.ty = "drec";
                s.payload = items[0].clone();
            } else {
                s.ty = "dmrec";
                s.payload = Value::Array(items);
            }
            for (c, d, t) in refs {
                if let Some(r) = m.cols.get_mut(&c).and_then(|cc| cc.docs.get_mut(&d)) {
                    r.remove(&t);
                }
            }
        }
        // drrng
        62..=67 => {
            s.ty = "drrng";
            let (c, d) = (col(rng), doc(rng));
            let a = ts(rng);
            let b = if rng.chance(1, 10) {
                a - 1
            } else {
                a.saturating_add(rng.usize(..15) as i64)
            };
            s.payload = json!({"col": c, "doc": d, "fromTs": a, "toTs": b});
            if b < 1 {
                s.expect = err("invalid payload: toTs must be a positive integer");
            } else if a > b {
                s.expect = err("invalid payload: fromTs must not be greater than toTs");
            } else if let Some(r) = m.cols.get_mut(&c).and_then(|cc| cc.docs.get_mut(&d)) {
                r.retain(|t, _| *t < a || *t > b);
            }
        }
        // sval
        68..=75 => {
            s.ty = "sval";
            let (c, k) = (col(rng), rng.pick(KEYS).to_string());
            let v = if rng.chance(1, 12) {
                String::new()
            } else {
                format!(
                    "{}{}",
                    rng.pick(&["v", "é", "x\ny", "\"", "eu"]),
                    rng.usize(..50)
                )
            };
            s.payload = json!({"col": c, "key": k, "value": v});
            if v.is_empty() {
                s.expect = err("invalid payload: value must be a non-empty string");
            } else {
                m.cols.entry(c).or_default().kv.insert(k, v);
            }
        }
        76..=78 => {
            s.ty = "gval";
            s.readonly = rng.chance(1, 3);
            let (c, k) = (col(rng), rng.pick(KEYS).to_string());
            s.payload = json!({"col": c, "key": k});
            let v = m.cols.get(&c).and_then(|cc| cc.kv.get(&k)).cloned();
            s.expect = json!({ "value": v.unwrap_or_default() });
        }
        79..=82 => {
            s.ty = "gvalues";
            s.readonly = rng.chance(1, 3);
            let c = col(rng);
            let sel = name_sel(rng, KEYS);
            s.payload = json!({"col": c, "key": sel.text()});
            let mut out = Map::new();
            if let Some(cc) = m.cols.get(&c) {
                match &sel {
                    Sel::Pat(p) => {
                        for (k, v) in &cc.kv {
                            if p.matches(k) {
                                out.insert(k.clone(), json!(v));
                            }
                        }
                    }
                    Sel::Lit(l) => {
                        out.insert(l.clone(), json!(cc.kv.get(l).cloned().unwrap_or_default()));
                    }
                }
            }
            s.expect = json!({ "values": out });
        }
        83..=85 => {
            s.ty = "rval";
            let (c, k) = (col(rng), rng.pick(KEYS).to_string());
            s.payload = json!({"col": c, "key": k});
            if let Some(cc) = m.cols.get_mut(&c) {
                cc.kv.remove(&k);
            }
        }
        86..=87 => {
            s.ty = "gvals";
            s.readonly = rng.chance(1, 3);
            let c = col(rng);
            s.payload = json!({ "col": c });
            let kv = m.cols.get(&c).map(|cc| cc.kv.clone()).unwrap_or_default();
            s.expect = json!({ "values": kv });
        }
        88..=89 => {
            s.ty = "gkeys";
            s.readonly = rng.chance(1, 3);
            let c = col(rng);
            s.payload = json!({ "col": c });
            let keys: Vec<String> = m
                .cols
                .get(&c)
                .map(|cc| cc.kv.keys().cloned().collect())
                .unwrap_or_default();
            s.expect = json!({ "keys": keys });
        }
        // keys: add (with aliases), remove, list. `ro-key` (the readonly connection's key) is
        // never touched.
        90..=93 => {
            s.ty = "keys";
            let key = rng.pick(&["gk0", "gk1", "gk2", MASTER]).to_string();
            match rng.usize(..3) {
                0 => {
                    let (alias, canon) = rng.pick(&[
                        ("Read-Only", Some("readonly")),
                        ("read_write", Some("read_write")),
                        ("READ, WRITE, DELETE", Some("read_write_delete")),
                        ("admin", None),
                    ]);
                    s.payload = json!({"action": " Add ", "key": key, "scope": alias});
                    s.expect = match canon {
                        None => err("invalid scope"),
                        Some(_) if key == MASTER => {
                            json!({"status": "ok", "scope": "read_write_delete"})
                        }
                        Some(canon) => {
                            m.keys.insert(key, canon);
                            json!({"status": "ok", "scope": canon})
                        }
                    };
                }
                1 => {
                    s.payload = json!({"action": "remove", "key": key});
                    s.expect = if key == MASTER {
                        err("api key cannot be removed")
                    } else if m.keys.remove(&key).is_some() {
                        json!({"status": "ok"})
                    } else {
                        err("api key not found")
                    };
                }
                _ => {
                    s.payload = json!({"action": "list"});
                    let mut list: Vec<(String, &str, bool)> =
                        m.keys.iter().map(|(k, v)| (k.clone(), *v, true)).collect();
                    list.push((MASTER.into(), "read_write_delete", false));
                    list.sort();
                    let keys: Vec<Value> = list
                        .into_iter()
                        .map(|(k, sc, del)| json!({"key": k, "scope": sc, "deletable": del}))
                        .collect();
                    s.expect = json!({"status": "ok", "keys": keys});
                }
            }
        }
        94..=95 => {
            s.ty = "conn";
            s.readonly = rng.chance(1, 2);
            s.payload = json!("{}");
            // Checked apart (`since` varies): see `check_conn`.
            s.expect = Value::Null;
        }
        // A write, delete or `keys` on the readonly connection, or an unknown type.
        _ => {
            let (ty, payload) = rng.pick(&[
                (
                    "ins",
                    json!([{"col": "c0", "doc": "d0", "ts": 1, "data": "x"}]),
                ),
                ("sval", json!({"col": "c0", "key": "k0", "value": "v"})),
                ("dcol", json!({"col": "c0"})),
                (
                    "drrng",
                    json!({"col": "c0", "doc": "d0", "fromTs": 1, "toTs": 99}),
                ),
                ("keys", json!({"action": "list"})),
                ("INS", json!([])),
            ]);
            s.ty = ty;
            s.payload = payload;
            s.readonly = ty != "INS";
            s.expect = err(if ty == "INS" {
                "Unknown message type"
            } else {
                "permission denied"
            });
        }
    }
    m.prune();
    s
}

// ---------------------------------------------------------------------------------------------
// Running

struct Run {
    server: Host,
    master: Link,
    ro: Link,
    next_id: u64,
}

/// The server under test: the binary, or the library in this process.
enum Host {
    Binary(Server),
    InProcess(fluxiondb::Server),
}

/// One connection: a WebSocket client, or an in-process session that hands each request
/// straight to the server's dispatcher (its replies are queued as a socket would queue them).
enum Link {
    Ws(Client),
    Local(LocalSession, VecDeque<String>),
}

impl Link {
    fn send_text(&mut self, frame: &str) {
        match self {
            Link::Ws(c) => c.send_text(frame),
            Link::Local(s, replies) => replies.push_back(
                s.request(frame)
                    .unwrap_or_else(|c| panic!("closed {c:?} on {frame}")),
            ),
        }
    }

    fn recv_json(&mut self) -> Value {
        match self {
            Link::Ws(c) => c.recv_json(),
            Link::Local(_, replies) => {
                let r = replies.pop_front().expect("a reply");
                serde_json::from_str(&r).unwrap_or_else(|e| panic!("not JSON ({e}): {r}"))
            }
        }
    }

    /// A request that must succeed; the reply without its id.
    fn ok(&mut self, ty: &str, payload: Value) -> Value {
        if let Link::Ws(c) = self {
            return c.ok(ty, payload);
        }
        let frame = json!({"id": "ok", "type": ty, "data": payload.to_string()}).to_string();
        self.send_text(&frame);
        let mut v = self.recv_json();
        assert_eq!(
            v.as_object_mut().and_then(|o| o.remove("id")),
            Some(json!("ok"))
        );
        assert!(v.get("error").is_none(), "{frame} failed: {v}");
        v
    }
}

fn open_pair(server: &Host) -> (Link, Link) {
    match server {
        Host::Binary(server) => (
            Link::Ws(server.open(MASTER, Some("model"))),
            Link::Ws(server.open("ro-key", Some("ro"))),
        ),
        Host::InProcess(server) => {
            let open = |key, name| {
                let s = server.local_session(key, Some(name)).expect("a known key");
                Link::Local(s, VecDeque::new())
            };
            (open(MASTER, "model"), open("ro-key", "ro"))
        }
    }
}

impl Run {
    fn start(args: &[&str], data_dir: bool, in_process: bool) -> Run {
        let add_ro = json!({"action": "add", "key": "ro-key", "scope": "readonly"});
        let added = json!({"status": "ok", "scope": "readonly"});
        let server = if in_process {
            let server = crate::seams::start(args);
            let mut master =
                Link::Local(server.local_session(MASTER, None).unwrap(), VecDeque::new());
            assert_eq!(master.ok("keys", add_ro), added);
            Host::InProcess(server)
        } else {
            let server = if data_dir {
                Server::with_data_dir_args(args)
            } else {
                Server::start(args)
            };
            let mut master = server.open(MASTER, Some("model"));
            assert_eq!(master.ok("keys", add_ro), added);
            // A clean close: the server lists a connection until it has seen it go.
            assert!(matches!(master.close(), crate::common::Frame::Close(_)));
            Host::Binary(server)
        };
        let (master, ro) = open_pair(&server);
        Run {
            server,
            master,
            ro,
            next_id: 0,
        }
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        // Ids with characters that need escaping are echoed verbatim.
        match self.next_id % 4 {
            0 => format!("m{}", self.next_id),
            1 => format!("é\"{}\\", self.next_id),
            2 => format!("{}\u{1}", self.next_id),
            _ => format!("{}", self.next_id),
        }
    }
}

fn check_conn(v: &Value, readonly: bool) -> Result<(), String> {
    let list = v["connections"]
        .as_array()
        .ok_or_else(|| format!("conn: no connections array: {v}"))?;
    let got: Vec<(Value, Value, Value)> = list
        .iter()
        .map(|c| (c["ip"].clone(), c["name"].clone(), c["self"].clone()))
        .collect();
    let want = vec![
        (json!("127.0.0.1"), json!("model"), json!(!readonly)),
        (json!("127.0.0.1"), json!("ro"), json!(readonly)),
    ];
    if got != want
        || !list
            .iter()
            .all(|c| c["since"].as_i64().is_some_and(|s| s >= 0))
    {
        return Err(format!("conn: got {v}"));
    }
    Ok(())
}

/// Compares the whole state: collections, every document's records, every KV map.
fn full_state_check(run: &mut Run, m: &Model) -> Result<(), String> {
    let cols = run.master.ok("cols", json!({}));
    let want = json!({ "collections": m.cols.keys().collect::<Vec<_>>() });
    if cols != want {
        return Err(format!("cols: got {cols}, model {want}"));
    }
    for (name, c) in &m.cols {
        let latest = run.master.ok("qry", json!({"col": name, "ts": i64::MAX}));
        let want: Map<String, Value> = c
            .docs
            .iter()
            .map(|(d, r)| {
                let (t, x) = r.iter().next_back().unwrap();
                (d.clone(), record(*t, x))
            })
            .collect();
        if latest != json!({ "records": want }) {
            return Err(format!("qry {name:?}: got {latest}, model {want:?}"));
        }
        for (d, r) in &c.docs {
            let got = run.master.ok(
                "qdoc",
                json!({"col": name, "doc": d, "from": i64::MIN, "to": i64::MAX}),
            );
            let want: Vec<Value> = r.iter().map(|(t, x)| record(*t, x)).collect();
            if got != json!({ "records": want }) {
                return Err(format!("qdoc {name:?}/{d:?}: got {got}, model {want:?}"));
            }
        }
        let kv = run.master.ok("gvals", json!({ "col": name }));
        if kv != json!({ "values": c.kv }) {
            return Err(format!("gvals {name:?}: got {kv}, model {:?}", c.kv));
        }
    }
    Ok(())
}

/// Applies `ops` random operations from `seed`, in pipelined windows, comparing every answer.
/// With `restart_every`, the server (which must have a data folder) is killed with SIGKILL and
/// restarted every that many operations, and must come back with exactly the model's state.
fn run_model(seed: u64, ops: usize, data_dir: bool, restart_every: Option<usize>) -> Stats {
    run_model_with(seed, ops, data_dir, restart_every, None, false)
}

/// What a run covered, so a test can check that the comparisons were not trivial.
#[derive(Default, Debug)]
struct Stats {
    /// Answers compared, by type; answers that carried records or values; error answers.
    compared: BTreeMap<&'static str, usize>,
    non_empty: BTreeMap<&'static str, usize>,
    errors: usize,
}

/// `sabotage`: the model forgets the first effective `ins` from that operation number on (to prove that a wrong
/// model is caught).
fn run_model_with(
    seed: u64,
    ops: usize,
    data_dir: bool,
    restart_every: Option<usize>,
    mut sabotage: Option<usize>,
    in_process: bool,
) -> Stats {
    let mut rng = Rng::with_seed(seed);
    let mut run = Run::start(&[], data_dir, in_process);
    let mut m = Model::default();
    m.keys.insert("ro-key".into(), "readonly");
    let mut done = 0;
    let mut last_restart = 0;
    let mut last_check = 0;
    let mut stats = Stats::default();
    let mut sabotaged = false;
    while done < ops {
        // A window of requests on one connection, sent back to back, then answered in order.
        let readonly_window = rng.chance(1, 5);
        let n = 1 + rng.usize(..16);
        let mut window = Vec::new();
        for _ in 0..n {
            let before = sabotage.map(|_| m.cols.clone());
            let s = step(&mut rng, &mut m);
            let effective = s.ty == "ins" && s.expect == json!({}) && s.payload != json!([]);
            if sabotage.is_some_and(|at| done + window.len() >= at) && effective {
                m.cols = before.unwrap_or_default();
                sabotage = None;
                sabotaged = true;
            }
            // A step for the other connection ends the window (its effects are in the model
            // already, so it must be sent now): flush what is queued first.
            if s.readonly != readonly_window {
                if !window.is_empty() {
                    exchange(&mut run, &window, readonly_window, seed, done, &mut stats);
                    done += window.len();
                    window.clear();
                }
                exchange(&mut run, &[s], !readonly_window, seed, done, &mut stats);
                done += 1;
                continue;
            }
            window.push(s);
        }
        if !window.is_empty() {
            exchange(&mut run, &window, readonly_window, seed, done, &mut stats);
            done += window.len();
        }
        if done - last_check >= 500 || std::mem::take(&mut sabotaged) {
            last_check = done;
            if let Err(e) = full_state_check(&mut run, &m) {
                panic!("seed {seed}, after {done} operations: {e}");
            }
        }
        if let Some(every) = restart_every {
            if done - last_restart >= every {
                last_restart = done;
                let Host::Binary(server) = &mut run.server else {
                    unreachable!("restarts need the binary")
                };
                server.restart();
                let (master, ro) = open_pair(&run.server);
                run.master = master;
                run.ro = ro;
                if let Err(e) = full_state_check(&mut run, &m) {
                    panic!("seed {seed}, after a restart at {done} operations: {e}");
                }
            }
        }
    }
    if let Err(e) = full_state_check(&mut run, &m) {
        panic!("seed {seed}, at the end ({done} operations): {e}");
    }
    stats
}

fn exchange(
    run: &mut Run,
    window: &[Step],
    readonly: bool,
    seed: u64,
    done: usize,
    stats: &mut Stats,
) {
    let mut sent = Vec::new();
    for s in window {
        let id = run.id();
        let data = match &s.payload {
            Value::String(t) => t.clone(),
            other => other.to_string(),
        };
        let frame = json!({"id": id, "type": s.ty, "data": data}).to_string();
        let c = if readonly {
            &mut run.ro
        } else {
            &mut run.master
        };
        c.send_text(&frame);
        sent.push((id, frame));
    }
    for (i, (s, (id, frame))) in window.iter().zip(sent).enumerate() {
        let c = if readonly {
            &mut run.ro
        } else {
            &mut run.master
        };
        let mut got = c.recv_json();
        let at = done + i;
        let ctx = || format!("seed {seed}, operation {at}: request {frame}");
        let got_id = got.as_object_mut().and_then(|o| o.remove("id"));
        assert_eq!(got_id, Some(json!(id)), "{}: id not echoed", ctx());
        if s.ty == "conn" && got.get("error").is_none() {
            if let Err(e) = check_conn(&got, readonly) {
                panic!("{}: {e}", ctx());
            }
            continue;
        }
        assert_eq!(got, s.expect, "{}: server and model differ", ctx());
        *stats.compared.entry(s.ty).or_default() += 1;
        if got.get("error").is_some() {
            stats.errors += 1;
        }
        let filled = ["records", "values", "collections", "keys"]
            .iter()
            .any(|k| match got.get(*k) {
                Some(Value::Object(o)) => !o.is_empty(),
                Some(Value::Array(a)) => !a.is_empty(),
                _ => false,
            });
        if filled || got.get("value").is_some_and(|v| v != "") {
            *stats.non_empty.entry(s.ty).or_default() += 1;
        }
    }
}

#[test]
fn model_matches_server() {
    if let Ok(seed) = std::env::var("FLUXIONDB_MODEL_SEED") {
        run_model(seed.parse().expect("numeric seed"), 5000, false, None);
        return;
    }
    let mut total = Stats::default();
    for seed in 1..=4 {
        let st = run_model(seed, 2500, false, None);
        for (k, v) in st.compared {
            *total.compared.entry(k).or_default() += v;
        }
        for (k, v) in st.non_empty {
            *total.non_empty.entry(k).or_default() += v;
        }
        total.errors += st.errors;
    }
    eprintln!("model: {total:?}");
    // The comparisons are not trivial: every type was compared, reads found data.
    for ty in [
        "ins", "qry", "qdoc", "cols", "ddoc", "dcol", "drec", "dmrec", "drrng", "sval", "gval",
        "gvalues", "rval", "gvals", "gkeys", "keys",
    ] {
        assert!(
            total.compared.get(ty).copied().unwrap_or(0) >= 20,
            "{ty}: {total:?}"
        );
    }
    for ty in ["qry", "qdoc", "gval", "gvalues", "gvals", "gkeys", "cols"] {
        assert!(
            total.non_empty.get(ty).copied().unwrap_or(0) >= 20,
            "{ty}: {total:?}"
        );
    }
    assert!(total.errors >= 100, "{total:?}");
}

#[test]
fn model_matches_the_dispatcher_in_process() {
    // The same comparison with no socket: each request goes straight to the server's
    // dispatcher through an in-process session.
    for seed in 11..=12 {
        run_model_with(seed, 2500, false, None, None, true);
    }
}

#[test]
fn model_test_catches_a_wrong_model() {
    // A model that forgets one insert must be caught by the comparison.
    let caught = std::panic::catch_unwind(|| {
        run_model_with(5, 1000, false, None, Some(200), false);
    });
    assert!(caught.is_err(), "a wrong model went unnoticed");
}

#[test]
fn model_matches_server_across_restarts() {
    // With a data folder: the state after every SIGKILL + restart is exactly the model's.
    run_model(101, 1200, true, Some(400));
}

/// `make soak`: random operation sequences (new seed each round, with and without a data
/// folder) for `FLUXIONDB_SOAK_SECONDS` seconds (default 60).
#[test]
#[ignore]
fn soak() {
    let seconds: u64 = std::env::var("FLUXIONDB_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let end = Instant::now() + Duration::from_secs(seconds);
    let base: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut rounds = 0u64;
    let mut ops = 0usize;
    while Instant::now() < end {
        let seed = base + rounds;
        let persistent = rounds % 4 == 3;
        eprintln!(
            "soak round {rounds}: seed {seed}{}",
            if persistent {
                " (data folder, restarts)"
            } else {
                ""
            }
        );
        if persistent {
            run_model(seed, 4000, true, Some(1000));
        } else {
            run_model(seed, 20_000, false, None);
        }
        ops += if persistent { 4000 } else { 20_000 };
        rounds += 1;
    }
    eprintln!("soak: {rounds} rounds, {ops} operations, no difference from the model");
}
