//! The request envelope `{id, type, data}` (PROTOCOL.md §2.1) and its error stages (§2.3).

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

#[cfg(test)]
mod tests {
    use super::*;

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
