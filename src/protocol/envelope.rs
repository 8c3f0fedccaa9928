//! The request envelope `{id, type, data}` (docs/protocol.md#the-request-envelope) and its error
//! stages (docs/protocol.md#how-errors-are-chosen).

use super::json::{read_object, Scalar};
use super::payload::{NewRecord, Qdoc, Qry};
use std::borrow::Cow;

/// A request whose envelope is well formed; `kind` is not yet looked up. `data` is its text
/// ([`parse`]) or, for the dispatcher, [`Data`] ([`read`]).
#[derive(Debug, PartialEq)]
pub struct Envelope<'a, D = Cow<'a, str>> {
    pub id: Cow<'a, str>,
    pub kind: Cow<'a, str>,
    pub data: D,
}

/// The envelope's `data` as the dispatcher takes it.
#[derive(Debug)]
pub enum Data<'a> {
    /// The text of `data`.
    Text(Cow<'a, str>),
    /// The payload of an `ins`, `qry` or `qdoc` (`type` comes before `data`) in the shape the
    /// SDKs send, read straight from the escaped string (`insert_escaped`, `read_scan`): the
    /// payload, and the string's body as sent. The same payload its decoder makes of the text.
    Read { escaped: &'a str, payload: Read<'a> },
    /// A `qry` or `qdoc` payload not read yet ([`read_pending`]): the body of the envelope's
    /// `data` string as sent (`type` before `data`, no control character, no escape but `\"`,
    /// not empty), its opening quote at `at` in the frame, and the type it was seen for.
    /// [`Data::settle`] reads it as [`read`] would have.
    Pending {
        escaped: &'a str,
        at: usize,
        kind: &'static str,
    },
}

/// A payload read with its envelope ([`Data::Read`]). The queries are boxed: held inline they
/// made every envelope, `ins` ones included, large enough that moving one took a call to
/// `memcpy` (+190 instructions per single-record insert, callgrind).
#[derive(Debug)]
pub enum Read<'a> {
    /// An `ins` batch's records.
    Ins(Vec<NewRecord<'a>>),
    Qry(Box<Qry<'a>>),
    Qdoc(Box<Qdoc<'a>>),
}

impl Read<'_> {
    /// The message type it was read for.
    fn kind(&self) -> &'static str {
        match self {
            Read::Ins(_) => "ins",
            Read::Qry(_) => "qry",
            Read::Qdoc(_) => "qdoc",
        }
    }
}

impl<'a> Data<'a> {
    /// The text of `data`.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Data::Text(t) => Cow::Borrowed(t),
            Data::Read { escaped, .. } | Data::Pending { escaped, .. } => unescaped(escaped),
        }
    }

    /// The text of `data` and, when it was read with the envelope, its payload: what [`read`]
    /// hands the dispatcher, a pending payload read now (`frame` is the one it came from).
    pub fn settle(self, frame: &'a str) -> (Cow<'a, str>, Option<Read<'a>>) {
        match self {
            Data::Text(text) => (text, None),
            Data::Read { escaped, payload } => (Cow::Borrowed(escaped), Some(payload)),
            Data::Pending { escaped, at, kind } => match fast::read(kind, frame, at) {
                Some((payload, escaped, _)) => (Cow::Borrowed(escaped), Some(payload)),
                // A string with no escape but `\"` and no control character: its text is what
                // `string_to_end` makes of it.
                None => (unescaped(escaped), None),
            },
        }
    }
}

/// The text of a string's body as sent.
fn unescaped(escaped: &str) -> Cow<'_, str> {
    if !escaped.contains('\\') {
        return Cow::Borrowed(escaped);
    }
    let mut out = String::with_capacity(escaped.len());
    crate::text::unescape_into(&mut out, escaped);
    Cow::Owned(out)
}

impl PartialEq for Data<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

/// An envelope that cannot be served: the error text and the id, when one could be read.
#[derive(Debug, PartialEq)]
pub struct EnvelopeError<'a> {
    pub id: Option<Cow<'a, str>>,
    pub message: &'static str,
}

pub const NOT_AN_OBJECT: &str = "invalid message: expected a JSON object";
pub const BAD_ID: &str = "invalid message: id must be a non-empty string";
pub const BAD_TYPE: &str = "invalid message: type must be a non-empty string";
pub const BAD_DATA: &str = "invalid message: data must be a non-empty string";

fn non_empty(s: Scalar<'_>) -> Option<Cow<'_, str>> {
    match s {
        Scalar::Str(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// Reads the envelope of one text frame.
pub fn parse(frame: &str) -> Result<Envelope<'_>, EnvelopeError<'_>> {
    match fast::parse(frame, fast::Payloads::Text) {
        Some(Envelope {
            id,
            kind,
            data: Data::Text(data),
        }) => Ok(Envelope { id, kind, data }),
        _ => parse_general(frame),
    }
}

/// [`parse`] for the dispatcher: an `ins`, `qry` or `qdoc` payload in the SDKs' shape comes
/// already read ([`Data::Read`]); everything else, errors included, exactly as [`parse`] has
/// it.
pub fn read(frame: &str) -> Result<Envelope<'_, Data<'_>>, EnvelopeError<'_>> {
    read_with(frame, fast::Payloads::Read)
}

/// [`read`], except that a `qry` or `qdoc` payload it would read is left [`Data::Pending`] when
/// its string allows: the answer cache is asked with the string's body as sent before the
/// payload is read. Every other envelope, errors included, exactly as [`read`] has it; a
/// pending one is well formed, with the id and type [`read`] gives it.
pub fn read_pending(frame: &str) -> Result<Envelope<'_, Data<'_>>, EnvelopeError<'_>> {
    read_with(frame, fast::Payloads::Pending)
}

fn read_with(
    frame: &str,
    payloads: fast::Payloads,
) -> Result<Envelope<'_, Data<'_>>, EnvelopeError<'_>> {
    match fast::parse(frame, payloads) {
        Some(env) => Ok(env),
        None => parse_general(frame).map(|env| Envelope {
            id: env.id,
            kind: env.kind,
            data: Data::Text(env.data),
        }),
    }
}

/// The general reader: every shape, every error stage.
fn parse_general(frame: &str) -> Result<Envelope<'_>, EnvelopeError<'_>> {
    let [id, kind, data] =
        read_object(frame, &["id", "type", "data"]).map_err(|_| EnvelopeError {
            id: None,
            message: NOT_AN_OBJECT,
        })?;
    let id = non_empty(id).ok_or(EnvelopeError {
        id: None,
        message: BAD_ID,
    })?;
    let Some(kind) = non_empty(kind) else {
        return Err(EnvelopeError {
            id: Some(id),
            message: BAD_TYPE,
        });
    };
    let Some(data) = non_empty(data) else {
        return Err(EnvelopeError {
            id: Some(id),
            message: BAD_DATA,
        });
    };
    Ok(Envelope { id, kind, data })
}

/// The envelope every SDK sends — an object of the three string members, in any order — read
/// in one pass without a general JSON parser. Anything else (another member, another value
/// type, an odd escape, an error) returns `None` and is left to the general reader, so both
/// always agree. With [`Payloads`], an `ins`, `qry` or `qdoc` payload is read straight from the
/// escaped `data` when its shape allows (see [`Data::Read`]), or left pending.
mod fast {
    use super::{Data, Envelope, Read};
    use crate::protocol::scan::{skip_ws, string, string_to_end};
    use crate::protocol::{insert_escaped, quoted_body, read_scan};
    use std::borrow::Cow;

    /// What becomes of the payload in `data`.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub enum Payloads {
        /// Its text ([`Data::Text`]).
        Text,
        /// Read with the envelope when it can be ([`Data::Read`]).
        Read,
        /// As `Read`, but a `qry`'s or `qdoc`'s left [`Data::Pending`] when it can be.
        Pending,
    }

    /// The body of the string whose opening quote is at `at` and the position after its
    /// closing quote, when it is not empty and has no control character and no escape but
    /// `\"` (a `qry` or `qdoc` payload in the SDKs' shape has none: see `spelling.rs`).
    pub fn pending_body(frame: &str, at: usize) -> Option<(&str, usize)> {
        let b = frame.as_bytes();
        if b.get(at) != Some(&b'"') {
            return None;
        }
        let start = at + 1;
        let end = start + quoted_body::end(b.get(start..)?)?;
        (end > start).then(|| frame.get(start..end).map(|body| (body, end + 1)))?
    }

    /// A member's name at `i` (its opening quote) and the position after it, as [`string`]
    /// reads it; the envelope's three, spelled without escapes as every SDK writes them, are
    /// compared in place (constant widths: no call to `memcmp`).
    #[inline]
    pub fn name(frame: &str, i: usize) -> Option<(Cow<'_, str>, usize)> {
        let b = frame.as_bytes();
        if matches!(b.get(i..i + 4), Some(b"\"id\"")) {
            return Some((Cow::Borrowed("id"), i + 4));
        }
        match b.get(i..i + 6) {
            Some(b"\"type\"") => Some((Cow::Borrowed("type"), i + 6)),
            Some(b"\"data\"") => Some((Cow::Borrowed("data"), i + 6)),
            _ => string(frame, i),
        }
    }

    /// A `type`'s value at `i`, as [`name`]: the types whose payloads this reader takes compared
    /// in place.
    #[inline]
    pub fn type_name(frame: &str, i: usize) -> Option<(Cow<'_, str>, usize)> {
        let b = frame.as_bytes();
        match b.get(i..i + 5) {
            Some(b"\"qry\"") => return Some((Cow::Borrowed("qry"), i + 5)),
            Some(b"\"ins\"") => return Some((Cow::Borrowed("ins"), i + 5)),
            _ => {}
        }
        match b.get(i..i + 6) {
            Some(b"\"qdoc\"") => Some((Cow::Borrowed("qdoc"), i + 6)),
            _ => string(frame, i),
        }
    }

    /// The payload of a `kind` request read straight from the envelope's `data` string at `at`
    /// (its body as sent, the position after it), when its type is one of those and the
    /// payload has the SDKs' shape.
    pub fn read<'a>(kind: &str, frame: &'a str, at: usize) -> Option<(Read<'a>, &'a str, usize)> {
        match kind {
            "ins" => insert_escaped::read(frame, at).map(|(r, e, n)| (Read::Ins(r), e, n)),
            "qry" => read_scan::escaped_qry(frame, at).map(|(q, e, n)| (Read::Qry(q.into()), e, n)),
            "qdoc" => {
                read_scan::escaped_qdoc(frame, at).map(|(q, e, n)| (Read::Qdoc(q.into()), e, n))
            }
            _ => None,
        }
    }

    #[inline]
    pub fn parse(frame: &str, payloads: Payloads) -> Option<Envelope<'_, Data<'_>>> {
        let b = frame.as_bytes();
        let mut i = skip_ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        let (mut id, mut kind, mut data) = (None, None::<Cow<'_, str>>, None);
        i += 1;
        loop {
            let (key, next) = name(frame, skip_ws(b, i))?;
            i = skip_ws(b, next);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let at = skip_ws(b, i + 1);
            let next = match &*key {
                "data" => {
                    let pending = match (&kind, payloads) {
                        (Some(kind), Payloads::Pending) => match &**kind {
                            "qry" => Some("qry"),
                            "qdoc" => Some("qdoc"),
                            _ => None,
                        },
                        _ => None,
                    }
                    .and_then(|kind| {
                        pending_body(frame, at)
                            .map(|(escaped, next)| (Data::Pending { escaped, at, kind }, next))
                    });
                    let read = match &kind {
                        Some(kind) if pending.is_none() && payloads != Payloads::Text => {
                            read(kind, frame, at)
                        }
                        _ => None,
                    };
                    let (value, next) = match (pending, read) {
                        (Some(pending), _) => pending,
                        (None, Some((payload, escaped, next))) => {
                            (Data::Read { escaped, payload }, next)
                        }
                        (None, None) => {
                            let (text, next) = string_to_end(frame, at)?;
                            (Data::Text(text), next)
                        }
                    };
                    data = Some(value);
                    next
                }
                "id" | "type" => {
                    let (value, next) = if &*key == "type" {
                        type_name(frame, at)?
                    } else {
                        string(frame, at)?
                    };
                    *(if &*key == "id" { &mut id } else { &mut kind }) = Some(value);
                    next
                }
                _ => return None,
            };
            i = skip_ws(b, next);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => break,
                _ => return None,
            }
        }
        if skip_ws(b, i + 1) != b.len() {
            return None;
        }
        let (id, kind, data) = (id?, kind?, data?);
        let data_ok = match &data {
            Data::Text(text) => !text.is_empty(),
            // A later `type` may have replaced the one it was read for: then the general
            // reader decides.
            Data::Read { payload, .. } => kind == payload.kind(),
            Data::Pending { kind: read_as, .. } => kind == *read_as,
        };
        if id.is_empty() || kind.is_empty() || !data_ok {
            return None;
        }
        Some(Envelope { id, kind, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::scan::string;

    #[test]
    fn fast_path_agrees_with_the_general_reader() {
        let frames = [
            r#"{"id":"a","type":"ins","data":"[{\"ts\":1,\"doc\":\"d\",\"data\":\"x\",\"col\":\"c\"}]"}"#,
            r#" { "data" : "{}" , "type":"cols", "id":"z" } "#,
            r#"{"id":"\u00e9\ud83d\ude00\/\b\f\n\r\t","type":"t","data":"é😀"}"#,
            r#"{"id":"a","type":"cols","data":"x","id":"b"}"#,
        ];
        for f in frames {
            let fast = parse(f).unwrap();
            assert!(
                matches!(
                    fast::parse(f, fast::Payloads::Text),
                    Some(Envelope {
                        data: Data::Text(_),
                        ..
                    })
                ),
                "fast path declined {f}"
            );
            assert_eq!(fast, parse_general(f).unwrap(), "{f}");
        }
        let declined = [
            r#"{"id":"a","type":"cols","data":"{}","extra":true}"#,
            r#"{"id":7,"type":"cols","data":"{}"}"#,
            r#"{"id":"a","type":"cols","data":"{}"} x"#,
            r#"{"id":"a","type":"cols","data":"\ud800"}"#,
            r#"{"id":"a","type":"cols","data":"\x"}"#,
            "{\"id\":\"a\u{1}\",\"type\":\"cols\",\"data\":\"{}\"}",
            r#"{"id":"","type":"cols","data":"{}"}"#,
            r#"{"id":"a","type":"cols"}"#,
            r#"{"id":"a","type":"cols","data":"{}""#,
            r#"{"id":"a","type":"cols","data":"{}",}"#,
            r#"{}"#,
            r#"[]"#,
        ];
        for f in declined {
            assert!(
                fast::parse(f, fast::Payloads::Read).is_none(),
                "fast path accepted {f}"
            );
        }
    }

    #[test]
    fn read_takes_payloads_with_the_envelope_and_agrees_with_parse() {
        let batch = r#"[{\"ts\":1,\"doc\":\"d\",\"data\":\"{\\\"a\\\":1}\",\"col\":\"c\"}]"#;
        let qry = r#"{\"col\":\"c\",\"ts\":9}"#;
        let qdoc = r#"{\"col\":\"c\",\"doc\":\"d\",\"to\":9,\"reverse\":true}"#;
        let frames = [
            (
                format!(r#"{{"id":"a","type":"ins","data":"{batch}"}}"#),
                true,
            ),
            // `data` first, another type, `type` given again after `data`: the text.
            (
                format!(r#"{{"id":"a","data":"{batch}","type":"ins"}}"#),
                false,
            ),
            (
                format!(r#"{{"id":"a","type":"qry","data":"{batch}"}}"#),
                false,
            ),
            (
                format!(r#"{{"id":"a","type":"ins","data":"{batch}","type":"qry"}}"#),
                false,
            ),
            (
                format!(r#"{{"id":"a","type":"ins","data":"{batch}","type":"ins"}}"#),
                true,
            ),
            (
                format!(r#"{{"id":"a","type":"ins","data":"{batch}","x":1}}"#),
                false,
            ),
        ];
        // `qry` and `qdoc` alike; a payload of another type, an escape the SDKs do not write:
        // the text.
        let reads = [
            (r#"{"id":"a","type":"qry","data":"QRY"}"#, true),
            (r#"{"type":"qdoc","id":"a","data":"QDOC"}"#, true),
            (
                r#" { "type" : "qry" , "data" : " QRY " , "id" : "a" } "#,
                true,
            ),
            (r#"{"id":"a","data":"QRY","type":"qry"}"#, false),
            (r#"{"id":"a","type":"qdoc","data":"QRY"}"#, false),
            (r#"{"id":"a","type":"qry","data":"QDOC"}"#, false),
            (
                r#"{"id":"a","type":"qry","data":"QRY","type":"qdoc"}"#,
                false,
            ),
            (
                r#"{"id":"a","type":"qdoc","data":"QDOC","type":"qdoc"}"#,
                true,
            ),
            (
                r#"{"id":"a","type":"qry","data":"{\"col\":\"\u0063\",\"ts\":9}"}"#,
                false,
            ),
        ]
        .map(|(f, straight)| (f.replace("QDOC", qdoc).replace("QRY", qry), straight));
        for (frame, straight) in frames.iter().chain(&reads) {
            let read = read(frame).unwrap();
            assert_eq!(matches!(read.data, Data::Read { .. }), *straight, "{frame}");
            if let Data::Read { escaped, payload } = &read.data {
                assert_eq!(payload.kind(), read.kind, "{frame}");
                assert!(frame.contains(&format!(r#""{escaped}""#)), "{frame}");
            }
            let parsed = parse(frame).unwrap();
            assert_eq!(
                (&read.id, &read.kind),
                (&parsed.id, &parsed.kind),
                "{frame}"
            );
            assert_eq!(read.data.text(), parsed.data, "{frame}");
        }
        for frame in [
            "hello",
            r#"{"id":"e","type":"ins"}"#,
            r#"{"id":"e","type":"ins","data":""}"#,
            r#"{"id":"e","type":"qry","data":""}"#,
            r#"{"type":"qry","data":"{\"col\":\"c\",\"ts\":9}"}"#,
            r#"{"id":"","type":"qdoc","data":"{\"col\":\"c\",\"ts\":9}"}"#,
            r#"{"id":"e","type":"qry","data":"{\"col\":\"c\",\"ts\":9}"} x"#,
        ] {
            assert_eq!(
                read(frame).unwrap_err(),
                parse(frame).unwrap_err(),
                "{frame}"
            );
        }
    }

    #[test]
    fn a_pending_payload_settles_as_read_reads_it() {
        let qry = r#"{\"col\":\"c\",\"ts\":9}"#;
        let qdoc = r#"{\"col\":\"c\",\"doc\":\"d\",\"to\":9,\"reverse\":true}"#;
        let repeated = r#"{\"col\":\"c\",\"ts\":1,\"ts\":9}"#;
        let frames = [
            (format!(r#"{{"id":"a","type":"qry","data":"{qry}"}}"#), true),
            (
                format!(r#"{{"type":"qdoc","id":"a","data":"{qdoc}"}}"#),
                true,
            ),
            (
                format!(r#" {{ "type" : "qry" , "data" : " {qry} " , "id" : "a" }} "#),
                true,
            ),
            // Read as text once settled: another type's payload, a repeated member.
            (
                format!(r#"{{"id":"a","type":"qdoc","data":"{qry}"}}"#),
                true,
            ),
            (
                format!(r#"{{"id":"a","type":"qry","data":"{repeated}"}}"#),
                true,
            ),
            (r#"{"id":"a","type":"qry","data":"x"}"#.to_string(), true),
            // Not pending: `data` first, another type, `type` again, escapes but `\"`, a
            // control character, an empty or broken string, a broken envelope.
            (
                format!(r#"{{"id":"a","data":"{qry}","type":"qry"}}"#),
                false,
            ),
            (
                format!(r#"{{"id":"a","type":"cols","data":"{qry}"}}"#),
                false,
            ),
            (
                format!(r#"{{"id":"a","type":"qry","data":"{qry}","type":"qdoc"}}"#),
                false,
            ),
            (
                format!(r#"{{"id":"a","type":"qry","data":"{qry}","type":"qry"}}"#),
                true,
            ),
            (
                r#"{"id":"a","type":"qry","data":"{\"col\":\"\u0063\",\"ts\":9}"}"#.into(),
                false,
            ),
            (
                r#"{"id":"a","type":"qry","data":"{\"col\":\"c\\\"}"}"#.into(),
                false,
            ),
            (r#"{"id":"a","type":"qry","data":"a\nb"}"#.into(), false),
            (
                "{\"id\":\"a\",\"type\":\"qry\",\"data\":\"a\u{1}\"}".into(),
                false,
            ),
            (r#"{"id":"a","type":"qry","data":""}"#.into(), false),
            (r#"{"id":"a","type":"qry","data":"\x"}"#.into(), false),
            (r#"{"id":"a","type":"qry","data":"ab"#.into(), false),
            (
                format!(r#"{{"id":"a","type":"qry","data":"{qry}"}} x"#),
                false,
            ),
            (format!(r#"{{"id":"","type":"qry","data":"{qry}"}}"#), false),
            (format!(r#"{{"type":"qry","data":"{qry}"}}"#), false),
        ];
        for (frame, pending) in &frames {
            let (now, later) = (read(frame), read_pending(frame));
            let (now, later) = match (now, later) {
                (Ok(now), Ok(later)) => (now, later),
                (now, later) => {
                    assert!(!pending, "{frame}");
                    assert_eq!(now.unwrap_err(), later.unwrap_err(), "{frame}");
                    continue;
                }
            };
            assert_eq!(
                matches!(later.data, Data::Pending { .. }),
                *pending,
                "{frame}"
            );
            if let Data::Pending { escaped, .. } = &later.data {
                assert!(frame.contains(&format!(r#""{escaped}""#)), "{frame}");
            }
            assert_eq!((&now.id, &now.kind), (&later.id, &later.kind), "{frame}");
            assert_eq!(now.data.text(), later.data.text(), "{frame}");
            let (now, later) = (now.data.settle(frame), later.data.settle(frame));
            assert_eq!(format!("{now:?}"), format!("{later:?}"), "{frame}");
        }
    }

    #[test]
    fn names_compared_in_place_read_as_any_string() {
        for text in [
            r#""id":"#,
            r#""type""#,
            r#""data" "#,
            r#""qry""#,
            r#""qdoc""#,
            r#""ins","#,
            r#""dat""#,
            r#""datas""#,
            r#""qdo""#,
            r#""i\u0064""#,
            r#""ty\"pe""#,
            r#""type"#,
            r#""id"#,
            r#""""#,
            "x",
            r#"""#,
        ] {
            assert_eq!(fast::name(text, 0), string(text, 0), "{text}");
            assert_eq!(fast::type_name(text, 0), string(text, 0), "{text}");
        }
        assert!(matches!(
            fast::name(r#""data""#, 0),
            Some((Cow::Borrowed("data"), 6))
        ));
    }

    #[test]
    fn a_pending_body_ends_at_its_closing_quote() {
        let cases = [
            (r#""ab" "#, Some(("ab", 4))),
            (r#""a\"b\"c""#, Some((r#"a\"b\"c"#, 9))),
            (r#""\"""#, Some((r#"\""#, 4))),
            (r#""""#, None),
            (r#""a"#, None),
            (r#""a\""#, None),
            (r#""a\\b""#, None),
            (r#""a\nb""#, None),
            ("\"a\u{1f}b\"", None),
            ("ab\"", None),
        ];
        for (text, want) in cases {
            assert_eq!(fast::pending_body(text, 0), want, "{text}");
        }
    }

    fn msg(frame: &str) -> (Option<String>, &'static str) {
        let e = parse(frame).unwrap_err();
        (e.id.map(|s| s.into_owned()), e.message)
    }

    #[test]
    fn stages() {
        assert_eq!(msg("hello"), (None, NOT_AN_OBJECT));
        assert_eq!(msg("[1,2]"), (None, NOT_AN_OBJECT));
        assert_eq!(msg(r#"{"type":"cols","data":"{}"}"#), (None, BAD_ID));
        assert_eq!(msg(r#"{"id":7,"type":"cols","data":"{}"}"#), (None, BAD_ID));
        assert_eq!(
            msg(r#"{"id":"e5","data":"{}"}"#),
            (Some("e5".into()), BAD_TYPE)
        );
        assert_eq!(
            msg(r#"{"id":"e6","type":"cols"}"#),
            (Some("e6".into()), BAD_DATA)
        );
        assert_eq!(
            msg(r#"{"id":"e7","type":"cols","data":""}"#),
            (Some("e7".into()), BAD_DATA)
        );
        assert_eq!(
            msg(r#"{"id":"e8","type":"qry","data":{"col":"s"}}"#),
            (Some("e8".into()), BAD_DATA)
        );
        let ok = parse(r#"{"id":"a","type":"cols","data":"{}","extra":true}"#).unwrap();
        assert_eq!((&*ok.id, &*ok.kind, &*ok.data), ("a", "cols", "{}"));
    }
}
