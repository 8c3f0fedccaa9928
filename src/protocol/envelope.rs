//! The request envelope `{id, type, data}` (docs/protocol.md#the-request-envelope) and its error
//! stages (docs/protocol.md#how-errors-are-chosen).

use super::json::{read_object, Scalar};
use std::borrow::Cow;

/// A request whose envelope is well formed; `kind` is not yet looked up.
#[derive(Debug, PartialEq)]
pub struct Envelope<'a> {
    pub id: Cow<'a, str>,
    pub kind: Cow<'a, str>,
    pub data: Cow<'a, str>,
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
    match fast::parse(frame) {
        Some(env) => Ok(env),
        None => parse_general(frame),
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
/// always agree.
mod fast {
    use super::Envelope;
    use crate::protocol::scan::{skip_ws, string, string_to_end};

    pub fn parse(frame: &str) -> Option<Envelope<'_>> {
        let b = frame.as_bytes();
        let mut i = skip_ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        let (mut id, mut kind, mut data) = (None, None, None);
        i += 1;
        loop {
            let (key, next) = string(frame, skip_ws(b, i))?;
            i = skip_ws(b, next);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let at = skip_ws(b, i + 1);
            let (value, next) = if &*key == "data" {
                string_to_end(frame, at)?
            } else {
                string(frame, at)?
            };
            match &*key {
                "id" => id = Some(value),
                "type" => kind = Some(value),
                "data" => data = Some(value),
                _ => return None,
            }
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
        if id.is_empty() || kind.is_empty() || data.is_empty() {
            return None;
        }
        Some(Envelope { id, kind, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_agrees_with_the_general_reader() {
        let frames = [
            r#"{"id":"a","type":"ins","data":"[{\"ts\":1,\"doc\":\"d\",\"data\":\"x\",\"col\":\"c\"}]"}"#,
            r#" { "data" : "{}" , "type":"cols", "id":"z" } "#,
            r#"{"id":"\u00e9\ud83d\ude00\/\b\f\n\r\t","type":"t","data":"é😀"}"#,
            r#"{"id":"a","type":"cols","data":"x","id":"b"}"#,
        ];
        for f in frames {
            let fast = fast::parse(f).unwrap_or_else(|| panic!("fast path declined {f}"));
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
            assert!(fast::parse(f).is_none(), "fast path accepted {f}");
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
