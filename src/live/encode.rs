//! The push frames' JSON: `rec`, `del` and `subend` (docs/protocol.md, "Live subscriptions",
//! "Pushes"). Pushes carry no `id`, which is how a client tells them from replies.

use super::change::{Change, Rec};
use super::filter::Filter;
use crate::protocol::encode::{integer, string};

fn head(out: &mut Vec<u8>, kind: &str, sub: &str, col: &str, seq: u64) {
    out.extend_from_slice(b"{\"type\":");
    string(out, kind);
    out.extend_from_slice(b",\"sub\":");
    string(out, sub);
    out.extend_from_slice(b",\"col\":");
    string(out, col);
    out.extend_from_slice(b",\"seq\":");
    integer(out, seq as i64);
}

fn record(out: &mut Vec<u8>, doc: &str, ts: i64, data: &str) {
    out.extend_from_slice(b"{\"doc\":");
    string(out, doc);
    out.extend_from_slice(b",\"ts\":");
    integer(out, ts);
    out.extend_from_slice(b",\"data\":");
    string(out, data);
    out.push(b'}');
}

/// A `rec` frame of `records` (`(doc, ts, data)`, all already selected).
pub fn rec<'r>(
    sub: &str,
    col: &str,
    seq: u64,
    records: impl Iterator<Item = (&'r str, i64, &'r str)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    rec_into(&mut out, sub, col, seq, records);
    out
}

/// [`rec`], appended to `out`.
fn rec_into<'r>(
    out: &mut Vec<u8>,
    sub: &str,
    col: &str,
    seq: u64,
    records: impl Iterator<Item = (&'r str, i64, &'r str)>,
) {
    head(out, "rec", sub, col, seq);
    out.extend_from_slice(b",\"records\":[");
    for (i, (doc, ts, data)) in records.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        record(out, doc, ts, data);
    }
    out.extend_from_slice(b"]}");
}

/// A `del` frame, appended to `out`.
fn del(
    out: &mut Vec<u8>,
    sub: &str,
    col: &str,
    seq: u64,
    doc: Option<&str>,
    tail: impl FnOnce(&mut Vec<u8>),
) {
    head(out, "del", sub, col, seq);
    if let Some(doc) = doc {
        out.extend_from_slice(b",\"doc\":");
        string(out, doc);
    }
    tail(out);
    out.push(b'}');
}

fn range(out: &mut Vec<u8>, from: i64, to: i64) {
    out.extend_from_slice(b",\"from\":");
    integer(out, from);
    out.extend_from_slice(b",\"to\":");
    integer(out, to);
}

/// The frames one change gives a subscription (none when it selects nothing of it), appended
/// to `out` one after the other; `end` is told where each ends (`out`'s length after it), so
/// that a delivery round keeps all its frames in one buffer instead of one allocation each.
pub fn change(
    out: &mut Vec<u8>,
    sub: &str,
    col: &str,
    seq: u64,
    change: &Change,
    filter: &Filter,
    mut end: impl FnMut(usize),
) {
    match change {
        Change::Insert(recs) => {
            let pick = |r: &&Rec| filter.record(&r.doc, &r.data);
            if recs.iter().any(|r| pick(&r)) {
                let kept = recs.iter().filter(pick);
                rec_into(out, sub, col, seq, kept.map(|r| (&*r.doc, r.ts, &*r.data)));
                end(out.len());
            }
        }
        Change::DeleteRecord { doc, ts } => {
            if filter.doc(doc) {
                del(out, sub, col, seq, Some(doc), |o| range(o, *ts, *ts));
                end(out.len());
            }
        }
        Change::DeleteRange { doc, from, to } => {
            if filter.doc(doc) {
                del(out, sub, col, seq, Some(doc), |o| range(o, *from, *to));
                end(out.len());
            }
        }
        Change::DeleteRecords(docs) => {
            let picked = docs.iter().filter(|(d, _)| filter.doc(d)).count();
            let docs = docs.iter().filter(|(d, _)| filter.doc(d));
            for (i, (doc, ts)) in docs.enumerate() {
                let more = i + 1 < picked;
                del(out, sub, col, seq, Some(doc), |o| {
                    o.extend_from_slice(b",\"ts\":[");
                    for (i, t) in ts.iter().enumerate() {
                        if i > 0 {
                            o.push(b',');
                        }
                        integer(o, *t);
                    }
                    o.push(b']');
                    if more {
                        // Not the write's last frame: a resume point is a whole write.
                        o.extend_from_slice(b",\"more\":true");
                    }
                });
                end(out.len());
            }
        }
        Change::DeleteDoc(doc) => {
            if filter.doc(doc) {
                del(out, sub, col, seq, Some(doc), |_| {});
                end(out.len());
            }
        }
        Change::DropCollection => {
            del(out, sub, col, seq, None, |_| {});
            end(out.len());
        }
    }
}

/// Where the subscription id's text starts in a `rec` or `del` frame: right after
/// `{"type":"rec","sub":"`.
const SUB_AT: usize = r#"{"type":"rec","sub":""#.len();

/// The subscription id `sub` as its text appears between the quotes of a JSON string.
pub fn sub_text(sub: &str) -> Box<[u8]> {
    let mut quoted = Vec::with_capacity(sub.len() + 2);
    string(&mut quoted, sub);
    quoted[1..quoted.len() - 1].into()
}

/// The length of `template` (a frame made for the subscription id `""`) once the id text
/// `sub` (see [`sub_text`]) is put in.
pub fn spliced_len(template: &[u8], sub: &[u8]) -> usize {
    template.len() + sub.len()
}

/// `template` cut where a subscription id's text goes: a subscription's frame is the first
/// part, its id text (see [`sub_text`]), then the second part.
pub fn split(template: &[u8]) -> (&[u8], &[u8]) {
    template.split_at(SUB_AT)
}

/// `{"type":"subend","sub":…,"error":…}`.
pub fn subend(sub: &str, error: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"type\":\"subend\",\"sub\":");
    string(&mut out, sub);
    out.extend_from_slice(b",\"error\":");
    string(&mut out, error);
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(c: &Change, f: &Filter) -> Vec<String> {
        let (mut out, mut ends) = (Vec::new(), vec![0]);
        change(&mut out, "s1", "c", 7, c, f, |end| ends.push(end));
        ends.windows(2)
            .map(|w| String::from_utf8(out[w[0]..w[1]].to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn each_push_shape() {
        let all = Filter::default();
        let ins = Change::Insert(vec![
            Rec {
                doc: "a".into(),
                ts: 1,
                data: "x\"".into(),
            },
            Rec {
                doc: "b".into(),
                ts: 2,
                data: "y".into(),
            },
        ]);
        assert_eq!(
            texts(&ins, &all),
            [
                r#"{"type":"rec","sub":"s1","col":"c","seq":7,"records":[{"doc":"a","ts":1,"data":"x\""},{"doc":"b","ts":2,"data":"y"}]}"#
            ]
        );
        assert!(texts(&ins, &Filter::new(Some("z"), None, None)).is_empty());
        assert_eq!(
            texts(
                &Change::DeleteRecords(vec![("a".into(), vec![1, 3]), ("b".into(), vec![2])]),
                &Filter::new(Some("a"), None, None)
            ),
            [r#"{"type":"del","sub":"s1","col":"c","seq":7,"doc":"a","ts":[1,3]}"#]
        );
        assert_eq!(
            texts(
                &Change::DeleteRecords(vec![("a".into(), vec![1]), ("b".into(), vec![2])]),
                &all
            ),
            [
                r#"{"type":"del","sub":"s1","col":"c","seq":7,"doc":"a","ts":[1],"more":true}"#,
                r#"{"type":"del","sub":"s1","col":"c","seq":7,"doc":"b","ts":[2]}"#
            ]
        );
        assert_eq!(
            texts(
                &Change::DeleteRecord {
                    doc: "a".into(),
                    ts: 4
                },
                &all
            ),
            [r#"{"type":"del","sub":"s1","col":"c","seq":7,"doc":"a","from":4,"to":4}"#]
        );
        assert_eq!(
            texts(&Change::DeleteDoc("a".into()), &all),
            [r#"{"type":"del","sub":"s1","col":"c","seq":7,"doc":"a"}"#]
        );
        assert_eq!(
            texts(&Change::DropCollection, &all),
            [r#"{"type":"del","sub":"s1","col":"c","seq":7}"#]
        );
        let mut template = b"before".to_vec();
        let mut ends = Vec::new();
        change(
            &mut template,
            "",
            "c",
            7,
            &Change::DeleteDoc("a".into()),
            &all,
            |end| ends.push(end),
        );
        assert_eq!(ends, [template.len()]);
        let template = template.split_off(b"before".len());
        let (head, body) = split(&template);
        let id = sub_text("s\"2");
        let spliced = [head, &id[..], body].concat();
        assert_eq!(spliced_len(&template, &sub_text("s\"2")), spliced.len());
        assert_eq!(
            String::from_utf8(spliced).unwrap(),
            r#"{"type":"del","sub":"s\"2","col":"c","seq":7,"doc":"a"}"#
        );
        assert_eq!(
            String::from_utf8(subend("s1", "resume point lost")).unwrap(),
            r#"{"type":"subend","sub":"s1","error":"resume point lost"}"#
        );
    }
}
