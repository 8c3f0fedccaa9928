//! Request payloads built from pre-formatted byte templates: only ids, timestamps and document
//! numbers are formatted per request (no serde on the hot path).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::payload::Payload;

/// Appends `s` as the inside of a JSON string that is itself inside a JSON string (record data
/// in an `ins` payload in the envelope).
fn push_escaped_twice(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\\\\\""),
            b'\\' => out.extend_from_slice(b"\\\\\\\\"),
            _ => out.push(b),
        }
    }
}

/// The decimal digits of `n`, written at the end of `buf`.
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Appends the decimal form of `n`.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(decimal(n, &mut buf));
}

/// Where an insert generator takes its batch numbers from.
#[derive(Clone)]
pub enum Batches {
    /// Its own counter; documents are private to the connection (`d<conn>_<n>`).
    Local { conn: u32 },
    /// A counter shared by all connections, up to `total` batches; documents `d<n>`.
    Shared { next: Arc<AtomicU64>, total: u64 },
}

/// What one connection sends.
pub enum Generator {
    Insert(InsertGen),
    /// A constant request except for its id.
    Fixed {
        head: Vec<u8>,
        tail: Vec<u8>,
    },
    Qdoc(QdocGen),
}

pub struct InsertGen {
    batches: Batches,
    local_next: u64,
    batch: u64,
    docs: u64,
    /// `\",\"data\":\"`
    rec_mid: Vec<u8>,
    /// `\",\"col\":\"<col>\"}`
    rec_tail: Vec<u8>,
    doc_prefix: Vec<u8>,
    payload: Arc<Payload>,
    scratch: String,
}

pub struct QdocGen {
    head: Vec<u8>,
    mid: Vec<u8>,
    tail: Vec<u8>,
    docs: u64,
}

const ID_HEAD: &[u8] = b"{\"id\":\"";

impl Generator {
    /// `ins` of `batch` records of `payload` into documents named `<doc_prefix><n>` (shared
    /// batches) or `<doc_prefix><conn>_<n>` (a connection's own documents).
    pub fn insert(
        col: &str,
        doc_prefix: &str,
        docs: u64,
        batch: u32,
        payload: Arc<Payload>,
        batches: Batches,
    ) -> Self {
        let mut rec_mid = b"\\\",\\\"data\\\":\\\"".to_vec();
        let mut rec_tail = Vec::new();
        if let Some(data) = payload.constant() {
            push_escaped_twice(&mut rec_mid, data);
        }
        rec_tail.extend_from_slice(b"\\\",\\\"col\\\":\\\"");
        rec_tail.extend_from_slice(col.as_bytes());
        rec_tail.extend_from_slice(b"\\\"}");
        let doc_prefix = match &batches {
            Batches::Local { conn } => format!("{doc_prefix}{conn}_").into_bytes(),
            Batches::Shared { .. } => doc_prefix.as_bytes().to_vec(),
        };
        Generator::Insert(InsertGen {
            batches,
            local_next: 0,
            batch: batch as u64,
            docs,
            rec_mid,
            rec_tail,
            doc_prefix,
            payload,
            scratch: String::new(),
        })
    }

    /// `qry` for the latest record of every document, or (`doc`) of the documents a literal
    /// name or a `/pattern/flags` selects.
    pub fn qry(col: &str, doc: Option<&str>) -> Self {
        let mut payload = serde_json::Map::new();
        payload.insert("col".into(), col.into());
        if let Some(d) = doc {
            payload.insert("doc".into(), d.into());
        }
        payload.insert("ts".into(), i64::MAX.into());
        let inner = serde_json::Value::Object(payload).to_string();
        let mut tail = b"\",\"type\":\"qry\",\"data\":".to_vec();
        tail.extend_from_slice(serde_json::Value::String(inner).to_string().as_bytes());
        tail.push(b'}');
        Generator::Fixed {
            head: ID_HEAD.to_vec(),
            tail,
        }
    }

    /// `qdoc` over the whole time range of document `<doc_prefix><n>` (n cycling over `docs`).
    /// `reverse`: the newest records first.
    pub fn qdoc(col: &str, doc_prefix: &str, docs: u64, limit: u64, reverse: bool) -> Self {
        let mut mid = b"\",\"type\":\"qdoc\",\"data\":\"{\\\"col\\\":\\\"".to_vec();
        mid.extend_from_slice(col.as_bytes());
        mid.extend_from_slice(b"\\\",\\\"doc\\\":\\\"");
        mid.extend_from_slice(doc_prefix.as_bytes());
        let mut tail =
            b"\\\",\\\"from\\\":0,\\\"to\\\":9223372036854775807,\\\"limit\\\":".to_vec();
        push_u64(&mut tail, limit);
        if reverse {
            tail.extend_from_slice(b",\\\"reverse\\\":true");
        }
        tail.extend_from_slice(b"}\"}");
        Generator::Qdoc(QdocGen {
            head: ID_HEAD.to_vec(),
            mid,
            tail,
            docs,
        })
    }

    /// Writes request `seq` into `out`; returns the records it inserts, or None when a shared
    /// batch counter is exhausted.
    pub fn write(&mut self, seq: u64, out: &mut Vec<u8>) -> Option<u64> {
        match self {
            Generator::Insert(g) => g.write(seq, out),
            Generator::Fixed { head, tail } => {
                out.extend_from_slice(head);
                push_u64(out, seq);
                out.extend_from_slice(tail);
                Some(0)
            }
            Generator::Qdoc(g) => {
                out.extend_from_slice(&g.head);
                push_u64(out, seq);
                out.extend_from_slice(&g.mid);
                push_u64(out, seq % g.docs);
                out.extend_from_slice(&g.tail);
                Some(0)
            }
        }
    }
}

impl InsertGen {
    fn write(&mut self, seq: u64, out: &mut Vec<u8>) -> Option<u64> {
        let b = match &self.batches {
            Batches::Local { .. } => {
                self.local_next += 1;
                self.local_next - 1
            }
            Batches::Shared { next, total } => {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= *total {
                    return None;
                }
                b
            }
        };
        out.extend_from_slice(ID_HEAD);
        push_u64(out, seq);
        out.extend_from_slice(b"\",\"type\":\"ins\",\"data\":\"[");
        // Record g of the load goes to document g % docs at ts g / docs + 1: (doc, ts) pairs
        // never repeat, and each document's timestamps grow with g.
        let first = b * self.batch;
        for g in first..first + self.batch {
            if g > first {
                out.push(b',');
            }
            out.extend_from_slice(b"{\\\"ts\\\":");
            push_u64(out, g / self.docs + 1);
            out.extend_from_slice(b",\\\"doc\\\":\\\"");
            out.extend_from_slice(&self.doc_prefix);
            push_u64(out, g % self.docs);
            out.extend_from_slice(&self.rec_mid);
            if self.payload.constant().is_none() {
                self.scratch.clear();
                self.payload
                    .write(g, g % self.docs, g / self.docs, &mut self.scratch);
                push_escaped_twice(out, &self.scratch);
            }
            out.extend_from_slice(&self.rec_tail);
        }
        out.extend_from_slice(b"]\"}");
        Some(self.batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::PayloadKind;

    #[test]
    fn json_payloads_are_escaped_twice() {
        for kind in [PayloadKind::Seq, PayloadKind::Telemetry] {
            let mut g = Generator::insert(
                "c",
                "d",
                3,
                4,
                Arc::new(Payload::new(kind, 32)),
                Batches::Local { conn: 0 },
            );
            let env: serde_json::Value = serde_json::from_str(&text(&mut g, 1)).unwrap();
            let recs: serde_json::Value =
                serde_json::from_str(env["data"].as_str().unwrap()).unwrap();
            for r in recs.as_array().unwrap() {
                let data: serde_json::Value =
                    serde_json::from_str(r["data"].as_str().unwrap()).unwrap();
                assert!(data.is_object(), "{kind:?}: {data}");
            }
        }
    }

    fn text(g: &mut Generator, seq: u64) -> String {
        let mut out = Vec::new();
        g.write(seq, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The envelope and its `data` payload are valid JSON of the documented shapes.
    #[test]
    fn requests_are_valid_json() {
        let mut g = Generator::insert(
            "bench",
            "d",
            10,
            3,
            Arc::new(Payload::new(PayloadKind::Fixed, 4)),
            Batches::Local { conn: 7 },
        );
        let env: serde_json::Value = serde_json::from_str(&text(&mut g, 42)).unwrap();
        assert_eq!(env["id"], "42");
        assert_eq!(env["type"], "ins");
        let recs: serde_json::Value = serde_json::from_str(env["data"].as_str().unwrap()).unwrap();
        assert_eq!(
            recs,
            serde_json::json!([
                {"ts":1,"doc":"d7_0","data":"xxxx","col":"bench"},
                {"ts":1,"doc":"d7_1","data":"xxxx","col":"bench"},
                {"ts":1,"doc":"d7_2","data":"xxxx","col":"bench"}
            ])
        );
        let mut q = Generator::qry("c1", None);
        let env: serde_json::Value = serde_json::from_str(&text(&mut q, 5)).unwrap();
        let p: serde_json::Value = serde_json::from_str(env["data"].as_str().unwrap()).unwrap();
        assert_eq!(p, serde_json::json!({"col":"c1","ts":i64::MAX}));
        let mut q = Generator::qdoc("c1", "d", 100, 100, false);
        let env: serde_json::Value = serde_json::from_str(&text(&mut q, 105)).unwrap();
        assert_eq!(env["type"], "qdoc");
        let p: serde_json::Value = serde_json::from_str(env["data"].as_str().unwrap()).unwrap();
        assert_eq!(
            p,
            serde_json::json!({"col":"c1","doc":"d5","from":0,"to":i64::MAX,"limit":100})
        );
        let mut q = Generator::qdoc("c1", "doc", 10, 100, true);
        let env: serde_json::Value = serde_json::from_str(&text(&mut q, 13)).unwrap();
        let p: serde_json::Value = serde_json::from_str(env["data"].as_str().unwrap()).unwrap();
        assert_eq!(
            p,
            serde_json::json!({"col":"c1","doc":"doc3","from":0,"to":i64::MAX,"limit":100,"reverse":true})
        );
        let mut q = Generator::qry("c1", Some(r"/^doc[0-9]{1,2}$/\d"));
        let env: serde_json::Value = serde_json::from_str(&text(&mut q, 8)).unwrap();
        assert_eq!(env["id"], "8");
        let p: serde_json::Value = serde_json::from_str(env["data"].as_str().unwrap()).unwrap();
        assert_eq!(
            p,
            serde_json::json!({"col":"c1","doc":r"/^doc[0-9]{1,2}$/\d","ts":i64::MAX})
        );
        let mut g = Generator::insert(
            "c",
            "doc",
            1000,
            1,
            Arc::new(Payload::new(PayloadKind::Seq, 32)),
            Batches::Shared {
                next: Arc::new(AtomicU64::new(1001)),
                total: u64::MAX,
            },
        );
        let env: serde_json::Value = serde_json::from_str(&text(&mut g, 1)).unwrap();
        let recs: serde_json::Value = serde_json::from_str(env["data"].as_str().unwrap()).unwrap();
        assert_eq!(recs[0]["doc"], "doc1");
        assert_eq!(recs[0]["ts"], 2);
    }

    #[test]
    fn shared_batches_stop_at_the_total() {
        let next = Arc::new(AtomicU64::new(0));
        let mut g = Generator::insert(
            "c",
            "d",
            2,
            1,
            Arc::new(Payload::new(PayloadKind::Fixed, 1)),
            Batches::Shared {
                next: next.clone(),
                total: 2,
            },
        );
        let mut out = Vec::new();
        assert_eq!(g.write(0, &mut out), Some(1));
        assert_eq!(g.write(1, &mut out), Some(1));
        assert_eq!(g.write(2, &mut out), None);
    }
}
