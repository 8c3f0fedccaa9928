//! Which key a `qry` or `qdoc` is asked and remembered under, over a real socket. With `type`
//! before `data` and the payload in the SDKs' shape, the cache is asked with `data` still
//! escaped before the payload is read (`Data::Pending`); every other spelling under its text.
//! Each frame goes to a server with the cache and to one without it, whose answers must be the
//! same bytes; the cached server's hit and miss counters say which key answered.

use crate::backup::metric;
use crate::common::{recs, Client, Frame, Server};

const HITS: &str = "fluxiondb_answer_cache_hits_total";
const MISSES: &str = "fluxiondb_answer_cache_misses_total";

/// A server with the answer cache and one without, each with a master connection.
struct Twins {
    cached: Server,
    /// Kept running for `b`.
    _plain: Server,
    a: Client,
    b: Client,
}

impl Twins {
    fn start() -> Twins {
        let cached = Server::start(&[]);
        let plain = Server::start(&["--answer-cache-mib", "0"]);
        let (mut a, mut b) = (cached.master(), plain.master());
        let mut items = Vec::new();
        for ts in 1..=30 {
            items.push(("c", ["d0", "d1", "d2"][ts as usize % 3], ts, "{\"n\":1}"));
        }
        for c in [&mut a, &mut b] {
            c.ok("ins", recs(&items));
        }
        Twins {
            cached,
            _plain: plain,
            a,
            b,
        }
    }

    /// Sends `frame` to both servers: the answers must be the same bytes. The answer.
    fn send(&mut self, frame: &str) -> String {
        let cached = answer(&mut self.a, frame);
        let plain = answer(&mut self.b, frame);
        assert_eq!(
            cached, plain,
            "{frame}: the cached server answered differently"
        );
        cached
    }

    /// The cached server's hits and misses so far.
    fn counts(&self) -> (f64, f64) {
        let read = |name| metric(self.cached.port, name).expect("the counter is exported");
        (read(HITS), read(MISSES))
    }

    /// Sends `frame` and checks that it was a hit (`true`) or a miss on the cached server.
    fn expect(&mut self, frame: &str, hit: bool) -> String {
        let (hits, misses) = self.counts();
        let a = self.send(frame);
        let want = if hit {
            (hits + 1.0, misses)
        } else {
            (hits, misses + 1.0)
        };
        assert_eq!(self.counts(), want, "{frame}: hit {hit} expected; {a}");
        a
    }

    /// An insert sent to both.
    fn write(&mut self, col: &str, doc: &str, ts: i64) {
        for c in [&mut self.a, &mut self.b] {
            c.ok("ins", recs(&[(col, doc, ts, "{\"n\":2}")]));
        }
    }
}

fn answer(c: &mut Client, frame: &str) -> String {
    c.send_text(frame);
    match c.next_frame() {
        Frame::Text(t) => t,
        other => panic!("{frame}: no answer: {}", other.describe()),
    }
}

/// The frame of a request with `type` first (`id` escaped as JSON), `data` as this text.
fn type_first(id: &str, ty: &str, data: &str) -> String {
    let id = serde_json::to_string(id).expect("a string");
    let data = serde_json::to_string(data).expect("a string");
    format!(r#"{{"id":{id},"type":"{ty}","data":{data}}}"#)
}

/// The same request with `data` first.
fn data_first(id: &str, ty: &str, data: &str) -> String {
    let id = serde_json::to_string(id).expect("a string");
    let data = serde_json::to_string(data).expect("a string");
    format!(r#"{{"data":{data},"id":{id},"type":"{ty}"}}"#)
}

const QRY: &str = r#"{"col":"c","ts":9223372036854775807}"#;
const QDOC: &str = r#"{"col":"c","doc":"d1","to":9223372036854775807,"limit":4,"reverse":true}"#;

#[test]
fn a_repeated_request_is_a_hit_until_its_collection_changes() {
    let mut t = Twins::start();
    for (ty, data) in [("qry", QRY), ("qdoc", QDOC)] {
        let first = t.expect(&type_first("r1", ty, data), false);
        assert!(first.starts_with(r#"{"id":"r1","records":"#), "{first}");
        t.expect(&type_first("r2", ty, data), true);
        // Another id, with characters to escape: the head is written for it.
        let long = format!("r\"\\{}", "x".repeat(40));
        t.expect(&type_first(&long, ty, data), true);
        // Another collection changed: still a hit.
        t.write("other", "d1", 5);
        t.expect(&type_first("r3", ty, data), true);
        // Its own collection changed: computed again, with the new record, then a hit.
        let new = 31 + (ty == "qdoc") as i64;
        t.write("c", "d1", new);
        let after = t.expect(&type_first("r4", ty, data), false);
        assert!(after.contains(&format!(r#"{{"ts":{new},"#)), "{after}");
        assert_ne!(after.replace("r4", "r1"), first);
        t.expect(&type_first("r5", ty, data), true);
    }
}

#[test]
fn both_envelope_orders_are_remembered_under_keys_of_their_own() {
    let mut t = Twins::start();
    for (ty, data) in [("qry", QRY), ("qdoc", QDOC)] {
        // `data` first is read as text: the other kind of key.
        let a = t.expect(&type_first("r", ty, data), false);
        assert_eq!(t.expect(&data_first("r", ty, data), false), a);
        assert_eq!(t.expect(&type_first("r", ty, data), true), a);
        assert_eq!(t.expect(&data_first("r", ty, data), true), a);
    }
    // A payload in the SDKs' string but not their shape (a repeated member, which the
    // envelope's reader declines): asked with its escaped body, missed, then remembered under
    // its text, which the same request with `data` first then finds.
    let repeated = r#"{"col":"c","ts":1,"ts":30,"doc":"d0"}"#;
    let a = t.expect(&type_first("r", "qry", repeated), false);
    assert!(a.contains(r#""d0":{"ts":30"#), "{a}");
    assert_eq!(t.expect(&type_first("r", "qry", repeated), true), a);
    assert_eq!(t.expect(&data_first("r", "qry", repeated), true), a);
}

#[test]
fn escaped_data_equal_to_another_requests_text_answers_only_for_itself() {
    let mut t = Twins::start();
    // `body` is one request's `data` as sent and, as text, another's (not a JSON object).
    let body = r#"{\"col\":\"c\",\"ts\":30}"#;
    let escaped = format!(r#"{{"id":"r","type":"qry","data":"{body}"}}"#);
    for round in 0..3 {
        let as_text = t.expect(&type_first("r", "qry", body), false);
        assert!(as_text.starts_with(r#"{"id":"r","error":"#), "{as_text}");
        let a = t.expect(&escaped, round > 0);
        assert!(a.starts_with(r#"{"id":"r","records":{"#), "{a}");
        let as_text = t.expect(&data_first("r", "qry", body), false);
        assert!(as_text.starts_with(r#"{"id":"r","error":"#), "{as_text}");
    }
}

#[test]
fn odd_envelopes_answer_as_the_uncached_server_every_time() {
    let mut t = Twins::start();
    let q = r#"{\"col\":\"c\",\"ts\":30}"#;
    let d = r#"{\"col\":\"c\",\"doc\":\"d1\",\"to\":30}"#;
    let frames = [
        // `type` again after `data`: the general reader decides.
        format!(r#"{{"id":"r","type":"qry","data":"{q}","type":"qdoc"}}"#),
        format!(r#"{{"id":"r","type":"qdoc","data":"{d}","type":"qdoc"}}"#),
        format!(r#"{{"id":"r","type":"qry","data":"{d}"}}"#),
        // `data` twice: the last one.
        format!(r#"{{"id":"r","type":"qry","data":"{d}","data":"{q}"}}"#),
        format!(r#"{{"id":"r","type":"qry","data":"{q}","data":"{d}"}}"#),
        // Spaces, escapes the SDKs do not write, broken strings and envelopes.
        format!(r#" {{ "id" : "r" , "type" : "qry" , "data" : " {q} " }} "#),
        r#"{"id":"r","type":"qry","data":"{\"col\":\"\u0063\",\"ts\":30}"}"#.to_string(),
        r#"{"id":"r","type":"qry","data":"{\"col\":\"c\",\n\"ts\":30}"}"#.to_string(),
        r#"{"id":"r","type":"qry","data":"{\"col\":\"c\",\"ts\":30}\\"}"#.to_string(),
        r#"{"id":"r","type":"qry","data":"{\"col\":\"c\",\"ts\":30}\x"}"#.to_string(),
        "{\"id\":\"r\",\"type\":\"qry\",\"data\":\"{\\\"col\\\":\\\"c\u{1}\\\"}\"}".to_string(),
        format!(r#"{{"id":"r","type":"qry","data":"{q}"}} x"#),
        format!(r#"{{"id":"r","type":"qry","data":"{q}""#),
        format!(r#"{{"id":"","type":"qry","data":"{q}"}}"#),
        format!(r#"{{"type":"qry","data":"{q}"}}"#),
        r#"{"id":"r","type":"qry","data":""}"#.to_string(),
        r#"{"id":"r","type":"qry","data":"\""}"#.to_string(),
        format!(r#"{{"id":"r","type":"qry","data":"{q}","x":1}}"#),
    ];
    for round in 0..3 {
        if round == 2 {
            t.write("c", "d1", 29);
        }
        for f in &frames {
            t.send(f);
            t.send(f);
        }
    }
}
