//! The one-pass readers of the `qry` and `qdoc` payloads the SDKs and the bench send (see
//! [`super::scan`]): one object of known members, names and filters as plain strings (no
//! escapes), numbers as plain JSON integers, `reverse` as `true`/`false`. `None` for anything
//! else — an unknown or repeated member, an escape, another type, a broken rule, text after the
//! object — and the general reader then decides, with its exact errors.

use super::fields::{is_name, MAX_NAME_BYTES};
use super::payload::{Qdoc, Qry};
use super::scan::{integer, skip_ws};
use std::borrow::Cow;

/// A value as the fast readers accept it.
enum Plain<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// A string without escapes, borrowed.
    Str(&'a str),
}

/// A string without escapes or control characters starting at `i` (its opening quote), and
/// the position after it.
fn plain_string(s: &str, i: usize) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let len = b
        .get(start..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    let end = start + len;
    (b[end] == b'"').then(|| (&s[start..end], end + 1))
}

fn plain_value(s: &str, i: usize) -> Option<(Plain<'_>, usize)> {
    let b = s.as_bytes();
    match b.get(i)? {
        b'"' => plain_string(s, i).map(|(v, next)| (Plain::Str(v), next)),
        b't' if b.get(i..i + 4) == Some(b"true") => Some((Plain::Bool(true), i + 4)),
        b'f' if b.get(i..i + 5) == Some(b"false") => Some((Plain::Bool(false), i + 5)),
        b'n' if b.get(i..i + 4) == Some(b"null") => Some((Plain::Null, i + 4)),
        _ => integer(b, i).map(|(v, next)| (Plain::Int(v), next)),
    }
}

/// Walks one JSON object that is the whole of `data`, handing each member's key and plain
/// value to `member`, which returns `None` to give up. Repeated keys give up too (`names` is the
/// list of the keys `member` takes, in any order: at most 8).
fn plain_object<'a>(
    data: &'a str,
    names: &[&str],
    mut member: impl FnMut(usize, Plain<'a>) -> Option<()>,
) -> Option<()> {
    let b = data.as_bytes();
    let mut seen = [false; 8];
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) != Some(&b'}') {
        loop {
            let (key, next) = plain_string(data, i)?;
            let at = names.iter().position(|n| *n == key)?;
            if std::mem::replace(seen.get_mut(at)?, true) {
                return None;
            }
            i = skip_ws(b, next);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let (value, next) = plain_value(data, skip_ws(b, i + 1))?;
            member(at, value)?;
            i = skip_ws(b, next);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => break,
                _ => return None,
            }
        }
    }
    (skip_ws(b, i + 1) == b.len()).then_some(())
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
    const NAMES: [&str; 6] = ["col", "ts", "doc", "from", "where", "filter"];
    let (mut col, mut ts, mut doc, mut from) = (None, None, None, 0);
    let (mut where_, mut filter) = (None, None);
    plain_object(data, &NAMES, |at, v| {
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
    Some(Qry {
        col: col?,
        ts: ts?,
        doc,
        from,
        where_,
        filter,
    })
}

/// A `qdoc` payload in the SDKs' shape, read in one pass; `None` for anything else (a `from`
/// after `to` among it).
pub(crate) fn fast_qdoc(data: &str) -> Option<Qdoc<'_>> {
    const NAMES: [&str; 8] = [
        "col", "doc", "from", "to", "limit", "reverse", "where", "filter",
    ];
    let (mut col, mut doc, mut from, mut to, mut limit) = (None, None, 0, None, 0);
    let (mut reverse, mut where_, mut filter) = (false, None, None);
    plain_object(data, &NAMES, |at, v| {
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
    Some(Qdoc {
        col: col?,
        doc: doc?,
        from,
        to,
        limit,
        reverse,
        where_,
        filter,
    })
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
    /// server runs always answers as the general reader does.
    fn agree(d: &str) -> (bool, bool) {
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
}
