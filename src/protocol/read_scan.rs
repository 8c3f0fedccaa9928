//! The one-pass readers of the `qry` and `qdoc` payloads the SDKs and the bench send (see
//! [`super::scan`]): one object of known members, names and filters as plain strings (no
//! escapes), numbers as plain JSON integers, `reverse` as `true`/`false`. `None` for anything
//! else — an unknown or repeated member, an escape, another type, a broken rule, text after the
//! object — and the general reader then decides, with its exact errors.
//!
//! Each reads the payload's text ([`fast_qry`], [`fast_qdoc`]) or, written once over
//! [`Spelling`], the same payload still inside the envelope's escaped `data` string
//! ([`escaped_qry`], [`escaped_qdoc`]), so that `data` is not first un-escaped into a copy.

use super::fields::{is_name, MAX_NAME_BYTES};
use super::payload::{Qdoc, Qry};
use super::scan::integer;
use super::spelling::{in_envelope, object, plain_string, AsSent, InEnvelope, Spelling};
use std::borrow::Cow;

/// A value as the fast readers accept it.
enum Plain<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// A string without escapes, borrowed.
    Str(&'a str),
}

fn plain_value<S: Spelling>(s: &str, i: usize) -> Option<(Plain<'_>, usize)> {
    let b = s.as_bytes();
    match b.get(i)? {
        b'"' | b'\\' => plain_string::<S>(s, i).map(|(v, next)| (Plain::Str(v), next)),
        b't' if b.get(i..i + 4) == Some(b"true") => Some((Plain::Bool(true), i + 4)),
        b'f' if b.get(i..i + 5) == Some(b"false") => Some((Plain::Bool(false), i + 5)),
        b'n' if b.get(i..i + 4) == Some(b"null") => Some((Plain::Null, i + 4)),
        _ => integer(b, i).map(|(v, next)| (Plain::Int(v), next)),
    }
}

/// Walks one JSON object starting at `i` (its `{`), handing each member's slot and plain value
/// to `member`, which returns `None` to give up; the position after its `}`. `slot` numbers
/// the keys `member` takes (0 to 7; `None` for any other key, which gives up), and a repeated
/// key gives up too. A `match` on the key, where a list of names would be searched with a
/// `memcmp` call for each.
fn plain_object<'a, S: Spelling>(
    data: &'a str,
    i: usize,
    slot: impl Fn(&str) -> Option<usize>,
    mut member: impl FnMut(usize, Plain<'a>) -> Option<()>,
) -> Option<usize> {
    let mut seen = [false; 8];
    object::<S>(data, i, |key, at| {
        let k = slot(key)?;
        if std::mem::replace(seen.get_mut(k)?, true) {
            return None;
        }
        let (value, next) = plain_value::<S>(data, at)?;
        member(k, value)?;
        Some(next)
    })
}

/// `read` applied to the whole of a payload's text: white space around it, nothing else.
fn whole<'a, T>(
    data: &'a str,
    read: impl FnOnce(&'a str, usize) -> Option<(T, usize)>,
) -> Option<T> {
    let b = data.as_bytes();
    let (value, next) = read(data, AsSent::skip_ws(b, 0))?;
    (AsSent::skip_ws(b, next) == b.len()).then_some(value)
}

/// A required name: non-empty, at most [`MAX_NAME_BYTES`].
fn name(v: Plain<'_>) -> Option<Cow<'_, str>> {
    match v {
        Plain::Str(s) if is_name(s) => Some(Cow::Borrowed(s)),
        _ => None,
    }
}

/// An optional string (`null` and `""` are `None`), at most `limit` bytes.
fn opt_text(v: Plain<'_>, limit: usize) -> Option<Option<Cow<'_, str>>> {
    match v {
        Plain::Null => Some(None),
        Plain::Str("") => Some(None),
        Plain::Str(s) if s.len() <= limit => Some(Some(Cow::Borrowed(s))),
        _ => None,
    }
}

fn int(v: Plain<'_>) -> Option<i64> {
    match v {
        Plain::Int(n) => Some(n),
        _ => None,
    }
}

/// A `qry` payload in the SDKs' shape, read in one pass; `None` for anything else.
pub(crate) fn fast_qry(data: &str) -> Option<Qry<'_>> {
    whole(data, qry::<AsSent>)
}

/// [`fast_qry`] of the envelope's `data` string starting at `i` (its opening quote), read
/// where it stands: the payload, the string's body as sent and the position after it.
pub(crate) fn escaped_qry(frame: &str, i: usize) -> Option<(Qry<'_>, &str, usize)> {
    in_envelope(frame, i, qry::<InEnvelope>)
}

/// A `qry` payload's object starting at `i`, and the position after it.
fn qry<S: Spelling>(data: &str, i: usize) -> Option<(Qry<'_>, usize)> {
    let slot = |key: &str| match key {
        "col" => Some(0),
        "ts" => Some(1),
        "doc" => Some(2),
        "from" => Some(3),
        "where" => Some(4),
        "filter" => Some(5),
        _ => None,
    };
    let (mut col, mut ts, mut doc, mut from) = (None, None, None, 0);
    let (mut where_, mut filter) = (None, None);
    let next = plain_object::<S>(data, i, slot, |at, v| {
        match at {
            0 => col = Some(name(v)?),
            1 => ts = Some(int(v).filter(|&t| t > 0)?),
            2 => doc = opt_text(v, MAX_NAME_BYTES)?,
            3 => from = int(v)?,
            4 => where_ = opt_text(v, usize::MAX)?,
            _ => filter = opt_text(v, usize::MAX)?,
        }
        Some(())
    })?;
    let q = Qry {
        col: col?,
        ts: ts?,
        doc,
        from,
        where_,
        filter,
    };
    Some((q, next))
}

/// A `qdoc` payload in the SDKs' shape, read in one pass; `None` for anything else (a `from`
/// after `to` among it).
pub(crate) fn fast_qdoc(data: &str) -> Option<Qdoc<'_>> {
    whole(data, qdoc::<AsSent>)
}

/// [`fast_qdoc`] of the envelope's `data` string starting at `i`, as [`escaped_qry`].
pub(crate) fn escaped_qdoc(frame: &str, i: usize) -> Option<(Qdoc<'_>, &str, usize)> {
    in_envelope(frame, i, qdoc::<InEnvelope>)
}

/// A `qdoc` payload's object starting at `i`, and the position after it.
fn qdoc<S: Spelling>(data: &str, i: usize) -> Option<(Qdoc<'_>, usize)> {
    let slot = |key: &str| match key {
        "col" => Some(0),
        "doc" => Some(1),
        "from" => Some(2),
        "to" => Some(3),
        "limit" => Some(4),
        "reverse" => Some(5),
        "where" => Some(6),
        "filter" => Some(7),
        _ => None,
    };
    let (mut col, mut doc, mut from, mut to, mut limit) = (None, None, 0, None, 0);
    let (mut reverse, mut where_, mut filter) = (false, None, None);
    let next = plain_object::<S>(data, i, slot, |at, v| {
        match at {
            0 => col = Some(name(v)?),
            1 => doc = Some(name(v)?),
            2 => from = int(v)?,
            3 => to = Some(int(v).filter(|&t| t > 0)?),
            4 => limit = int(v)?,
            5 => match v {
                Plain::Bool(b) => reverse = b,
                _ => return None,
            },
            6 => where_ = opt_text(v, usize::MAX)?,
            _ => filter = opt_text(v, usize::MAX)?,
        }
        Some(())
    })?;
    let to = to?;
    if from > to {
        return None;
    }
    let q = Qdoc {
        col: col?,
        doc: doc?,
        from,
        to,
        limit,
        reverse,
        where_,
        filter,
    };
    Some((q, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::declare::Declared;
    use crate::protocol::members::Members;
    use crate::protocol::spec::Payload;
    use crate::protocol::PayloadError;

    fn general_qry(d: &str) -> Result<Qry<'_>, PayloadError> {
        Qry::read(&mut Members::object(d, &Qry::SPEC)?)
    }

    fn general_qdoc(d: &str) -> Result<Qdoc<'_>, PayloadError> {
        Qdoc::read(&mut Members::object(d, &Qdoc::SPEC)?)
    }

    /// Whenever the fast reader answers, the general one answers the same; the decoder the
    /// server runs always answers as the general reader does; and the readers of the
    /// envelope's string agree with them ([`escaped_agree`]).
    fn agree(d: &str) -> (bool, bool) {
        escaped_agree(d);
        let qry = fast_qry(d);
        if let Some(fast) = &qry {
            assert_eq!(general_qry(d).as_ref(), Ok(fast), "qry {d}");
        }
        assert_eq!(Qry::decode(d), general_qry(d), "qry {d}");
        let qdoc = fast_qdoc(d);
        if let Some(fast) = &qdoc {
            assert_eq!(general_qdoc(d).as_ref(), Ok(fast), "qdoc {d}");
        }
        assert_eq!(Qdoc::decode(d), general_qdoc(d), "qdoc {d}");
        (qry.is_some(), qdoc.is_some())
    }

    /// `d` as the envelope's `data` string, as JSON encoders write it, read where it stands:
    /// the reader answers exactly when the reader of the text does and `d` has no white space
    /// but spaces (a tab or a line break is escaped in the string: another spelling), with the
    /// same payload, which the general reader makes of the text too; it reads the whole string
    /// and nothing after it, and declines the string cut anywhere.
    fn escaped_agree(d: &str) {
        let quoted = serde_json::to_string(d).unwrap();
        let framed = format!("{quoted},\"x\":1}}");
        let sdk = !d.contains(['\t', '\n', '\r']);
        let body = &quoted[1..quoted.len() - 1];
        let qry = escaped_qry(&framed, 0).map(|(q, escaped, next)| {
            assert_eq!((escaped, next), (body, quoted.len()), "qry {d}");
            assert_eq!(general_qry(d).as_ref(), Ok(&q), "qry {d}");
            q
        });
        assert_eq!(qry, fast_qry(d).filter(|_| sdk), "qry {d}");
        let qdoc = escaped_qdoc(&framed, 0).map(|(q, escaped, next)| {
            assert_eq!((escaped, next), (body, quoted.len()), "qdoc {d}");
            assert_eq!(general_qdoc(d).as_ref(), Ok(&q), "qdoc {d}");
            q
        });
        assert_eq!(qdoc, fast_qdoc(d).filter(|_| sdk), "qdoc {d}");
        if qry.is_some() || qdoc.is_some() {
            for cut in 0..quoted.len() {
                if quoted.is_char_boundary(cut) {
                    let part = &quoted[..cut];
                    assert!(escaped_qry(part, 0).is_none(), "qry {part}");
                    assert!(escaped_qdoc(part, 0).is_none(), "qdoc {part}");
                }
            }
        }
    }

    /// Every order of `members` (rotations, each reversed too), joined with `sep`.
    fn spellings(members: &[String], sep: &str, colon: &str) -> Vec<String> {
        let mut out = Vec::new();
        for r in 0..members.len().max(1) {
            let mut m: Vec<&String> = members.iter().collect();
            m.rotate_left(r);
            for reversed in [false, true] {
                if reversed {
                    m.reverse();
                }
                let body: Vec<String> = m
                    .iter()
                    .map(|s| s.replacen("\":", &format!("\"{colon}:"), 1))
                    .collect();
                out.push(format!(
                    "{{{sep}{}{sep}}}",
                    body.join(&format!("{sep},{sep}"))
                ));
            }
        }
        out
    }

    /// Every subset of `optional` (by bit mask) added to `required`.
    fn subsets(required: &[&str], optional: &[&str]) -> Vec<Vec<String>> {
        (0..1u32 << optional.len())
            .map(|mask| {
                let mut m: Vec<String> = required.iter().map(|s| s.to_string()).collect();
                for (i, o) in optional.iter().enumerate() {
                    if mask & (1 << i) != 0 {
                        m.push(o.to_string());
                    }
                }
                m
            })
            .collect()
    }

    #[test]
    fn the_bench_and_sdk_shapes_are_read_fast() {
        assert!(fast_qry(r#"{"col":"c1","ts":9223372036854775807}"#).is_some());
        assert!(fast_qry(r#"{"col":"c1","doc":"d7","ts":9223372036854775807}"#).is_some());
        assert!(fast_qdoc(
            r#"{"col":"c1","doc":"d7","from":0,"to":9223372036854775807,"limit":100,"reverse":true}"#
        )
        .is_some());
    }

    #[test]
    fn every_spelling_of_qry_agrees_with_the_general_reader() {
        let optional = [
            r#""doc":"d-1""#,
            r#""from":-5"#,
            r#""where":"/^a/i""#,
            r#""filter":"temp""#,
        ];
        let mut fast = 0;
        for members in subsets(&[r#""col":"s""#, r#""ts":1000"#], &optional) {
            for (sep, colon) in [("", ""), (" ", " "), ("\n\t", "\r")] {
                for d in spellings(&members, sep, colon) {
                    let (q, _) = agree(&d);
                    assert!(q, "{d}");
                    fast += 1;
                }
            }
        }
        assert!(fast > 100);
        for d in [
            r#"{"col":"s","ts":1,"doc":"","where":"","filter":null}"#,
            r#"{"col":"s","ts":1,"doc":null,"where":null,"filter":""}"#,
            r#"{"col":"s","ts":1,"from":0}"#,
            r#"{"col":"s","ts":1,"from":-9223372036854775808}"#,
            r#"  {"col":"é","ts":1}  "#,
        ] {
            assert!(agree(d).0, "{d}");
        }
    }

    #[test]
    fn every_spelling_of_qdoc_agrees_with_the_general_reader() {
        let optional = [
            r#""from":3"#,
            r#""limit":100"#,
            r#""reverse":true"#,
            r#""where":"/x/""#,
            r#""filter":"temp""#,
        ];
        let mut fast = 0;
        for members in subsets(&[r#""col":"s""#, r#""doc":"d""#, r#""to":10"#], &optional) {
            for (sep, colon) in [("", ""), (" ", " ")] {
                for d in spellings(&members, sep, colon) {
                    let (_, q) = agree(&d);
                    assert!(q, "{d}");
                    fast += 1;
                }
            }
        }
        assert!(fast > 100);
        for d in [
            r#"{"col":"s","doc":"d","to":10,"reverse":false,"limit":-1,"from":10}"#,
            r#"{"col":"s","doc":"d","to":1,"from":-3,"where":null,"filter":""}"#,
        ] {
            assert!(agree(d).1, "{d}");
        }
    }

    #[test]
    fn invalid_or_unusual_forms_are_declined_or_read_alike() {
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        let max = "n".repeat(MAX_NAME_BYTES);
        let forms = [
            // Wrong types and broken rules.
            r#"{"col":1,"ts":1}"#.to_string(),
            r#"{"col":"","ts":1}"#.to_string(),
            r#"{"col":null,"ts":1}"#.to_string(),
            r#"{"col":"s","ts":0}"#.to_string(),
            r#"{"col":"s","ts":-1}"#.to_string(),
            r#"{"col":"s","ts":"5"}"#.to_string(),
            r#"{"col":"s","ts":1.5}"#.to_string(),
            r#"{"col":"s","ts":1e3}"#.to_string(),
            r#"{"col":"s","ts":01}"#.to_string(),
            r#"{"col":"s","ts":-0}"#.to_string(),
            r#"{"col":"s","ts":9223372036854775808}"#.to_string(),
            r#"{"col":"s","ts":-9223372036854775809}"#.to_string(),
            r#"{"col":"s","ts":1,"from":"x"}"#.to_string(),
            r#"{"col":"s","ts":1,"from":null}"#.to_string(),
            r#"{"col":"s","ts":1,"from":true}"#.to_string(),
            r#"{"col":"s","ts":1,"where":5}"#.to_string(),
            r#"{"col":"s","ts":1,"where":{}}"#.to_string(),
            r#"{"col":"s","ts":1,"filter":[]}"#.to_string(),
            r#"{"col":"s","ts":1,"doc":5}"#.to_string(),
            r#"{"col":"s","doc":"d","to":10,"reverse":1}"#.to_string(),
            r#"{"col":"s","doc":"d","to":10,"reverse":"yes"}"#.to_string(),
            r#"{"col":"s","doc":"d","to":10,"reverse":null}"#.to_string(),
            r#"{"col":"s","doc":"d","to":10,"limit":"ten"}"#.to_string(),
            r#"{"col":"s","doc":"d","to":0}"#.to_string(),
            r#"{"col":"s","doc":"d","from":11,"to":10}"#.to_string(),
            r#"{"col":"s","doc":"","to":10}"#.to_string(),
            r#"{"col":"s","to":10}"#.to_string(),
            r#"{"col":"s","doc":"d"}"#.to_string(),
            format!(r#"{{"col":"{long}","ts":1}}"#),
            format!(r#"{{"col":"{max}","ts":1}}"#),
            format!(r#"{{"col":"s","ts":1,"doc":"{long}"}}"#),
            format!(r#"{{"col":"s","doc":"{long}","to":1}}"#),
            format!(r#"{{"col":"s","ts":1,"where":"{long}"}}"#),
            // Duplicates and unknown members.
            r#"{"col":"s","ts":1,"ts":2}"#.to_string(),
            r#"{"col":"s","col":"t","ts":1}"#.to_string(),
            r#"{"col":"s","doc":"d","to":10,"to":11}"#.to_string(),
            r#"{"col":"s","ts":1,"x":1}"#.to_string(),
            r#"{"col":"s","ts":1,"limit":1}"#.to_string(),
            r#"{"col":"s","doc":"d","to":10,"ts":1}"#.to_string(),
            // Escapes in names and values.
            r#"{"c\u006fl":"s","ts":1}"#.to_string(),
            r#"{"col":"s\u0041","ts":1}"#.to_string(),
            r#"{"col":"s\"","ts":1}"#.to_string(),
            r#"{"col":"s","ts":1,"where":"/a\\d/"}"#.to_string(),
            "{\"col\":\"s\u{1}\",\"ts\":1}".to_string(),
            // Not one object.
            "".to_string(),
            "[]".to_string(),
            "null".to_string(),
            "{}".to_string(),
            r#"{"col":"s","ts":1} x"#.to_string(),
            r#"{"col":"s","ts":1}{}"#.to_string(),
            r#"{"col":"s","ts":1,}"#.to_string(),
            r#"{,"col":"s","ts":1}"#.to_string(),
            r#"{"col":"s" "ts":1}"#.to_string(),
            r#"{"col":"s","ts":1 1}"#.to_string(),
            r#"{"col":"s","ts":1,"doc":nul}"#.to_string(),
            r#"{"col":"s","doc":"d","to":1,"reverse":tru}"#.to_string(),
            r#"{"col":'s',"ts":1}"#.to_string(),
            "\u{feff}{\"col\":\"s\",\"ts\":1}".to_string(),
        ];
        for d in &forms {
            agree(d);
        }
        // Cut at every byte: declined, or (a prefix that is itself a payload) read alike.
        let whole = [
            r#" {"col":"c1","doc":"d7","from":0,"to":9223372036854775807,"limit":100,"reverse":true} "#,
            r#"{ "col" : "é" , "ts" : 1000 , "doc" : "d" , "from" : -1 , "where" : "w" , "filter" : null }"#,
        ];
        for d in whole {
            assert!(agree(d) != (false, false), "{d}");
            for cut in 0..d.len() {
                if d.is_char_boundary(cut) {
                    agree(&d[..cut]);
                }
            }
        }
    }

    #[test]
    fn the_envelope_strings_the_sdks_send_are_read_where_they_stand() {
        let d = r#"{"col":"c1","ts":9223372036854775807,"doc":"/^d[0-9]$/"}"#;
        assert!(fast_qry(d).is_some());
        let frame = format!("{},\"type\":\"qry\"}}", serde_json::to_string(d).unwrap());
        let (q, _, next) = escaped_qry(&frame, 0).unwrap();
        assert_eq!(
            (q, &frame[next..]),
            (fast_qry(d).unwrap(), ",\"type\":\"qry\"}")
        );
        let d = r#"{"col":"c1","doc":"d7","from":0,"to":9223372036854775807,"limit":100,"reverse":true}"#;
        let quoted = serde_json::to_string(d).unwrap();
        assert_eq!(escaped_qdoc(&quoted, 0).unwrap().0, fast_qdoc(d).unwrap());
        // Not the string's own start, or not a string.
        assert!(escaped_qdoc(&quoted, 1).is_none());
        assert!(escaped_qdoc(d, 0).is_none());
    }

    /// Spellings of the envelope's string that JSON encoders do not write, but a client may:
    /// declined, so that the string is un-escaped and read as text.
    #[test]
    fn other_spellings_of_the_envelope_string_are_declined() {
        for raw in [
            // Escapes that stand for the payload's quotes, slashes or letters.
            r#""{\u0022col\":\"c\",\"ts\":1}""#,
            r#""{\"col\u0022:\"c\",\"ts\":1}""#,
            r#""{\"col\":\"c\/d\",\"ts\":1}""#,
            r#""{\"col\":\"\u0063\",\"ts\":1}""#,
            r#""{\"col\":\"c\",\"ts\":\u0031}""#,
            // Escaped escapes inside the payload's strings: the reader of the text declines
            // them too.
            r#""{\"col\":\"c\\\"\",\"ts\":1}""#,
            r#""{\"col\":\"c\\n\",\"ts\":1}""#,
            r#""{\"col\":\"c\",\"ts\":1,\"where\":\"/a\\\\d/\"}""#,
            // White space escaped, or raw where JSON forbids it.
            r#""{\"col\":\"c\",\n\"ts\":1}""#,
            r#""{\"col\":\"c\",\t\"ts\":1}""#,
            "\"{\\\"col\\\":\\\"c\\\",\t\\\"ts\\\":1}\"",
            "\"{\\\"col\\\":\\\"c\u{1}\\\",\\\"ts\\\":1}\"",
            // A bare quote: the envelope's string ends inside the payload.
            r#""{"col\":\"c\",\"ts\":1}""#,
            r#""{\"col":\"c\",\"ts\":1}""#,
            // Text after the payload inside the string, or the string not closed.
            r#""{\"col\":\"c\",\"ts\":1} x""#,
            r#""{\"col\":\"c\",\"ts\":1}\n""#,
            r#""{\"col\":\"c\",\"ts\":1}"#,
            r#""{\"col\":\"c\",\"ts\":1}\""#,
        ] {
            assert!(escaped_qry(raw, 0).is_none(), "{raw}");
        }
        // The same payload spelled plainly is read; spaces around it are white space.
        let plain = r#"" {\"col\" : \"c\", \"ts\":1 } ""#;
        assert_eq!(
            escaped_qry(plain, 0).unwrap().0,
            fast_qry(r#"{"col":"c","ts":1}"#).unwrap()
        );
    }

    #[test]
    fn unicode_and_escapes_in_names_and_filters_read_alike() {
        for d in [
            r#"{"col":"é😀","ts":1,"doc":"dév","where":"/ü+/i","filter":"日本"}"#,
            "{\"col\":\"c\",\"ts\":1,\"where\":\"a\u{2028}b\"}",
            "{\"col\":\"c\",\"ts\":1,\"filter\":\"\u{7f}\"}",
            r#"{"col":"c","doc":"d","to":5,"where":"/x\\d/","filter":"a\"b"}"#,
            r#"{"col":"c\u00e9","doc":"d","to":5}"#,
            r#"{"col":"c","doc":"d\/e","to":5}"#,
            r#"{"col":"c","doc":"d","to":5,"filter":"\n"}"#,
            r#"{"col":"c","ts":1,"doc":"\ud83d\ude00"}"#,
            r#"{"col":"c","doc":"d","to":5,"limit":1,"limit":2}"#,
            r#"{"col":"c","ts":1,"where":"a","where":"b"}"#,
            r#"{"col":"c","doc":"d","to":5,"limit":007}"#,
            r#"{"col":"c","doc":"d","to":5,"limit":99999999999999999999}"#,
            r#"{"col":"c","doc":"d","to":5,"limit":-}"#,
            r#"{"col":"c","doc":"d","to":+5}"#,
        ] {
            agree(d);
        }
    }
}
