//! What live subscriptions' filters may hold, through real sockets: at most 32 MiB per
//! connection and an eighth of `--max-memory` across the server, refused past either with the
//! documented text, nothing changed, and given back however a subscription ends. The audit
//! (hostile client): a readonly key made the server hold 3.4 MiB per ~100-byte `sub` with three
//! short patterns each compiling to nearly 1 MiB (256 per connection: 880 MiB of RSS), or twice
//! a long literal `where` per `sub`, none of it counted anywhere.

use crate::backup::metric;
use crate::common::{wait_until, Client, Server, MASTER};
use crate::subscriptions::{push, sub};
use regex::Regex;
use serde_json::{json, Value};
use std::time::Duration;

const FILTER_BYTES: &str = "fluxiondb_subscription_filter_bytes";

fn connection_refusal() -> Regex {
    Regex::new(
        r"^subscription filters too large: this connection's would hold (\d+) MiB of its 32 MiB$",
    )
    .unwrap()
}

/// The audit's `sub`: `doc`, `where` and `filter` are short patterns (`/q0_1_0\w{20}/`), each
/// compiling to just under the 1 MiB limit.
fn large_patterns(conn: usize, i: usize) -> Value {
    let p = |k: usize| format!("/q{conn}_{i}_{k}\\w{{20}}/");
    json!({"col": format!("r{conn}"), "doc": p(0), "where": p(1), "filter": p(2)})
}

/// A literal `where` of exactly `bytes` bytes, different for each `i`.
fn long_where(col: &str, i: usize, bytes: usize) -> Value {
    let head = format!("{i:04}");
    json!({"col": col, "where": head.clone() + &"x".repeat(bytes - head.len())})
}

fn rss_kib(server: &Server) -> u64 {
    crate::common::proc_status_kib(server.pid().expect("server running"), "VmRSS").expect("VmRSS")
}

fn reader(server: &Server, key: &str) -> Client {
    let mut m = Client::open(server.port, MASTER, None);
    m.ok("keys", json!({"action":"add","key":key,"scope":"readonly"}));
    let c = Client::open(server.port, key, None);
    c.set_read_timeout(Duration::from_secs(120));
    c
}

/// Sends `payloads` as `sub`s; returns how many were taken (all before the first refusal, with
/// consecutive ids: a refusal uses none up), and every refusal's text.
fn subscribe_all(c: &mut Client, payloads: impl Iterator<Item = Value>) -> (usize, Vec<String>) {
    let (mut ids, mut refused) = (Vec::<u64>::new(), Vec::new());
    for p in payloads {
        let v = c.call("sub", p);
        match v.get("error").and_then(Value::as_str) {
            Some(e) => refused.push(e.to_owned()),
            None => {
                assert!(refused.is_empty(), "taken after a refusal: {v}");
                let id = v["sub"].as_str().and_then(|s| s.strip_prefix('s'));
                ids.push(id.and_then(|n| n.parse().ok()).expect("an id"));
            }
        }
    }
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    (ids.len(), refused)
}

/// The audit's attack on one connection with a readonly key (256 `sub`s of three large
/// patterns: all taken before, RSS +880 MiB), cut to 48 `sub`s to keep a debug build quick
/// (before: all taken, RSS +160 MiB). Refused past the connection's 32 MiB, with the server's
/// RSS growing by a fraction of that; the subscriptions taken work as ever.
#[test]
fn large_patterns_are_refused_past_the_connections_limit_and_the_rest_work() {
    let server = Server::start(&[]);
    let mut r = reader(&server, "reader");
    // A first subscription, so that what the connection and the hub hold once is in the figure.
    r.ok("sub", json!({"col":"warm"}));
    r.ok("unsub", json!({"sub":"s1"}));
    let before = rss_kib(&server);
    const SUBS: usize = 48;
    let (taken, refused) = subscribe_all(&mut r, (0..SUBS).map(|i| large_patterns(0, i)));
    let grown_mib = rss_kib(&server).saturating_sub(before) / 1024;
    assert!(
        (2..20).contains(&taken),
        "{taken} taken; refusals: {:?}",
        refused.first()
    );
    assert_eq!(refused.len(), SUBS - taken);
    for e in &refused {
        let caps = connection_refusal()
            .captures(e)
            .unwrap_or_else(|| panic!("{e}"));
        assert!(caps[1].parse::<u64>().unwrap() > 32, "{e}");
    }
    assert!(
        grown_mib < 64,
        "RSS grew by {grown_mib} MiB for {taken} subscriptions"
    );
    // The ids refused were not used up, and the subscriptions taken still select as asked.
    let mut w = Client::open(server.port, MASTER, None);
    let tail = "abcdefghijklmnopqrst";
    w.ok(
        "ins",
        json!([
            {"col":"r0","doc":format!("q0_1_0{tail}"),"ts":1,"data":format!("q0_1_1{tail}")},
            {"col":"r0","doc":format!("q0_0_0{tail}"),"ts":1,"data":format!("q0_0_1{tail} q0_0_2{tail}")},
            {"col":"r0","doc":format!("q0_0_0{tail}"),"ts":2,"data":format!("q0_0_1{tail}")},
        ]),
    );
    let mut got: Vec<Value> = vec![push(&mut r), push(&mut r)];
    got.sort_by_key(|v| v["sub"].as_str().unwrap().to_owned());
    assert_eq!(got[0]["sub"], "s2", "{got:?}");
    assert_eq!(
        got[0]["records"],
        json!([{"doc":format!("q0_0_0{tail}"),"ts":2,"data":format!("q0_0_1{tail}")}])
    );
    assert_eq!(got[1]["sub"], "s3", "{got:?}");
    assert_eq!(got[1]["records"][0]["ts"], 1);
    assert_eq!(
        r.ok("sub", json!({"col":"r0"}))["sub"],
        format!("s{}", taken + 2)
    );
}

/// Long literal `where` texts, each held once: seven of 4 MiB fit in 32 MiB, an eighth is
/// refused, a smaller one still fits. Before: every one taken, each held twice (32 of them:
/// +272 MiB).
#[test]
fn long_literal_wheres_are_refused_past_the_connections_limit() {
    let server = Server::start(&[]);
    let mut r = reader(&server, "reader");
    r.ok("sub", json!({"col":"warm"}));
    r.ok("unsub", json!({"sub":"s1"}));
    let before = rss_kib(&server);
    let (taken, refused) = subscribe_all(&mut r, (0..32).map(|i| long_where("c", i, 4 << 20)));
    assert_eq!(taken, 7, "refusals: {:?}", refused.first());
    for e in &refused {
        assert_eq!(
            e,
            "subscription filters too large: this connection's would hold 33 MiB of its 32 MiB"
        );
    }
    assert_eq!(r.ok("sub", long_where("c", 99, 3 << 20))["sub"], "s9");
    let grown_mib = rss_kib(&server).saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "RSS grew by {grown_mib} MiB for 31 MiB of where texts"
    );
    // Each subscription tests its own text.
    let mut w = Client::open(server.port, MASTER, None);
    let data = "0005".to_owned() + &"x".repeat((4 << 20) - 4);
    w.ok("ins", json!([{"col":"c","doc":"d","ts":1,"data":data}]));
    let v = push(&mut r);
    assert_eq!(
        (v["sub"].as_str(), &v["records"][0]["ts"]),
        (Some("s7"), &json!(1))
    );
}

/// Ordinary filters fit: 256 subscriptions with a document pattern and literal `where` and
/// `filter` texts, all different, on one connection.
#[test]
fn ordinary_filters_fill_the_subscription_cap_on_one_connection() {
    let server = Server::start(&[]);
    let mut r = reader(&server, "reader");
    for i in 0..256 {
        let (id, _) = sub(
            &mut r,
            json!({"col":"c","doc":format!("/^dev-{i}-\\d+$/"),"where":"state:","filter":format!("quality:bad{i}")}),
        );
        assert_eq!(id, format!("s{}", i + 1));
    }
    assert_eq!(
        r.err("sub", json!({"col":"c"})),
        "too many subscriptions: at most 256 per connection"
    );
    // About 70 KiB each, mostly the allowances for the pattern's lazy DFA cache (2 × 16 KiB)
    // and the engine's fixed structures (16 KiB).
    let held_kib = metric(server.port, FILTER_BYTES).unwrap() / 1024.0;
    assert!(
        (8.0 * 1024.0..24.0 * 1024.0).contains(&held_kib),
        "{held_kib} KiB held"
    );
    let mut w = Client::open(server.port, MASTER, None);
    w.ok(
        "ins",
        json!([{"col":"c","doc":"dev-7-12","ts":1,"data":"state:ok quality:bad8"}]),
    );
    let v = push(&mut r);
    assert_eq!(v["sub"], "s8");
    assert_eq!(v["records"][0]["doc"], "dev-7-12");
}

/// What a subscription held is given back when it ends: `unsub` makes room on the
/// connection, and closing the connection gives back the server's figure.
#[test]
fn the_limit_comes_back_when_subscriptions_end() {
    let server = Server::start(&[]);
    let mut r = reader(&server, "reader");
    let (taken, refused) = subscribe_all(&mut r, (0..12).map(|i| large_patterns(0, i)));
    assert!((1..12).contains(&taken), "{taken}: {refused:?}");
    assert!(connection_refusal().is_match(&refused[0]), "{}", refused[0]);
    r.ok("unsub", json!({"sub":"s1"}));
    // Room for one more, and then none.
    let (again, _) = subscribe_all(&mut r, (0..2).map(|i| large_patterns(0, i)));
    assert_eq!(again, 1);
    assert!(metric(server.port, FILTER_BYTES).unwrap() > 0.0);
    drop(r);
    assert!(
        wait_until(Duration::from_secs(10), || metric(
            server.port,
            FILTER_BYTES
        ) == Some(0.0)),
        "the closed connection's filters are still counted"
    );
    let mut again = Client::open(server.port, "reader", None);
    again.set_read_timeout(Duration::from_secs(120));
    let (retaken, _) = subscribe_all(&mut again, (0..12).map(|i| large_patterns(0, i)));
    assert_eq!(retaken, taken);
}

/// The server-wide limit: an eighth of `--max-memory`, at least 16 MiB, shared by every
/// connection, and given back by `unsub`, by a connection closing and by a key revoked.
#[test]
fn the_servers_limit_is_shared_by_connections_and_given_back() {
    let server = Server::start(&["--max-memory", "64MiB"]);
    let full = "subscription filters too large: the server's would hold 17 MiB of its 16 MiB";
    let mut a = Client::open(server.port, MASTER, None);
    a.set_read_timeout(Duration::from_secs(60));
    let mut b = reader(&server, "temp");
    let (taken, refused) = subscribe_all(&mut a, (0..4).map(|i| long_where("c", i, 4 << 20)));
    assert_eq!(
        (taken, refused.as_slice()),
        (3, [full.to_owned()].as_slice())
    );
    assert_eq!(b.err("sub", long_where("c", 10, 4 << 20)), full);
    // Small filters still fit in what is left.
    assert_eq!(b.ok("sub", json!({"col":"c","doc":"d"}))["sub"], "s1");
    a.ok("unsub", json!({"sub":"s2"}));
    assert_eq!(b.ok("sub", long_where("c", 11, 4 << 20))["sub"], "s2");
    assert_eq!(b.err("sub", long_where("c", 12, 4 << 20)), full);
    // A connection closing gives back what its subscriptions held.
    drop(a);
    assert!(wait_until(Duration::from_secs(10), || {
        let v = b.call("sub", long_where("c", 13, 4 << 20));
        v.get("error").is_none()
    }));
    // So does a key revoked (its connection's subscriptions end).
    let mut m = Client::open(server.port, MASTER, None);
    m.set_read_timeout(Duration::from_secs(60));
    m.ok("keys", json!({"action":"remove","key":"temp"}));
    assert!(
        wait_until(Duration::from_secs(10), || metric(
            server.port,
            FILTER_BYTES
        ) == Some(0.0)),
        "the revoked key's filters are still counted"
    );
    let (retaken, refused) = subscribe_all(&mut m, (20..24).map(|i| long_where("c", i, 4 << 20)));
    assert_eq!(
        (retaken, refused.as_slice()),
        (3, [full.to_owned()].as_slice())
    );
}
