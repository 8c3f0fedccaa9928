//! What one subscriber connection of the `subscribe` scenario checks of the pushes it reads:
//! every subscription receives every write, in `seq` order with no gap, each push with the
//! records of one write. Pushes are read with [`push_scan::scan`]; each subscription's first
//! push, then one push after every [`SAMPLE_BYTES`] read, is also parsed in full to check the
//! scan (a full parse costs tens of scans: sampled by count, the parses of the bulk pushes
//! would cost the subscribers more than their reading).

use crate::push_scan::{self, Kind};

/// A push is parsed in full after this many bytes of pushes were read since the last one.
const SAMPLE_BYTES: u64 = 1 << 20;

/// What a push was, for the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A `rec` push of this many records.
    Records(u64),
    /// The server ended a subscription.
    Subend,
}

struct Track {
    /// The id as the server gave it.
    id: Vec<u8>,
    last: Option<u64>,
    records: u64,
}

pub struct Delivery {
    col: Vec<u8>,
    subs: Vec<Track>,
    /// The records every `rec` push must hold (one write's worth).
    batch: u64,
    /// Bytes of pushes read since the last full parse.
    unchecked: u64,
    /// Pushes parsed in full too.
    pub sampled: u64,
    /// The first thing found wrong.
    pub error: Option<String>,
}

impl Delivery {
    pub fn new(col: &str, ids: Vec<Vec<u8>>, batch: u64) -> Self {
        Delivery {
            col: col.as_bytes().to_vec(),
            subs: ids
                .into_iter()
                .map(|id| Track {
                    id,
                    last: None,
                    records: 0,
                })
                .collect(),
            batch,
            unchecked: 0,
            sampled: 0,
            error: None,
        }
    }

    fn fail(&mut self, what: String) -> Option<Seen> {
        self.error.get_or_insert(what);
        None
    }

    /// Checks one text frame; what it was, when it was a push of a subscription of this
    /// connection that was right.
    pub fn push(&mut self, frame: &[u8]) -> Option<Seen> {
        let Some(p) = push_scan::scan(frame, &self.col) else {
            return self.fail(format!("not a push: {}", lossy(frame)));
        };
        let Some(i) = self.subs.iter().position(|t| push_scan::same(&t.id, p.sub)) else {
            return self.fail(format!("push of an unknown subscription: {}", lossy(frame)));
        };
        self.unchecked += frame.len() as u64;
        if self.unchecked >= SAMPLE_BYTES || self.subs[i].last.is_none() {
            self.unchecked = 0;
            self.sampled += 1;
            if !push_scan::agrees(frame, &self.col) {
                return self.fail(format!("the scan misread a push: {}", lossy(frame)));
            }
        }
        let t = &mut self.subs[i];
        match (p.kind, p.seq) {
            (Kind::Subend, _) => Some(Seen::Subend),
            (Kind::Rec, Some(seq)) => {
                if t.last.is_some_and(|last| seq != last + 1) {
                    let (sub, last) = (lossy(&t.id), t.last.unwrap_or(0));
                    return self.fail(format!("subscription {sub}: seq {seq} after {last}"));
                }
                t.last = Some(seq);
                t.records += p.records;
                if p.records != self.batch {
                    let want = self.batch;
                    return self.fail(format!(
                        "push seq {seq} holds {} records, not {want}",
                        p.records
                    ));
                }
                Some(Seen::Records(p.records))
            }
            _ => self.fail(format!("unexpected push: {}", lossy(frame))),
        }
    }

    /// The fewest records any subscription has received.
    pub fn least(&self) -> u64 {
        self.subs.iter().map(|t| t.records).min().unwrap_or(0)
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(sub: &str, seq: u64, n: usize) -> Vec<u8> {
        let recs: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"doc":"d","ts":{i},"data":"x{{y}}"}}"#))
            .collect();
        format!(
            r#"{{"type":"rec","sub":"{sub}","col":"c","seq":{seq},"records":[{}]}}"#,
            recs.join(",")
        )
        .into_bytes()
    }

    #[test]
    fn gaps_reorders_and_short_pushes_are_caught() {
        let mut d = Delivery::new("c", vec![b"s1".to_vec(), b"s2".to_vec()], 2);
        assert_eq!(d.push(&rec("s1", 5, 2)), Some(Seen::Records(2)));
        assert_eq!(d.push(&rec("s2", 5, 2)), Some(Seen::Records(2)));
        assert_eq!(d.push(&rec("s1", 6, 2)), Some(Seen::Records(2)));
        assert_eq!(d.least(), 2);
        assert_eq!(d.push(&rec("s2", 6, 2)), Some(Seen::Records(2)));
        assert_eq!(d.least(), 4);
        assert!(d.error.is_none());
        assert_eq!(d.push(&rec("s2", 8, 2)), None);
        assert!(d.error.as_deref().unwrap_or("").contains("seq 8 after 6"));

        let mut d = Delivery::new("c", vec![b"s1".to_vec()], 2);
        assert_eq!(d.push(&rec("s1", 1, 1)), None);
        assert!(d.error.is_some());
        let mut d = Delivery::new("c", vec![b"s1".to_vec()], 2);
        assert_eq!(d.push(&rec("s9", 1, 2)), None);
        assert_eq!(
            d.push(br#"{"type":"subend","sub":"s1","error":"subscriber too slow"}"#),
            Some(Seen::Subend)
        );
    }
}
