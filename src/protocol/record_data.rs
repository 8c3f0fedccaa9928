//! The `data` of an `ins` record as the readers hand it on: the text as sent, or — when the
//! request spelled it exactly as the store escapes it — the escaped body borrowed straight from
//! the request, so that storing it neither un-escapes nor escapes it again.

use super::declare::Field;
use super::fields::FieldError;
use super::members::Members;
use super::spec::Value;
use crate::store::Incoming;
use crate::text;
use std::borrow::Cow;

/// One record's data, in either form; both stand for the same text and compare by it.
#[derive(Debug, Clone)]
pub enum RecordData<'a> {
    /// The data as sent.
    Text(Cow<'a, str>),
    /// The body of the JSON string as sent, which is exactly what [`text::escape_into`]
    /// writes for the data (see [`crate::protocol::scan::canonical_string`]).
    Escaped(&'a str),
    /// [`RecordData::Escaped`], un-escaped once out of the envelope's `data` string (where the
    /// batch itself arrives escaped; see `insert_escaped`).
    EscapedOwned(String),
}

impl<'a> RecordData<'a> {
    /// The data as sent: un-escaped (into a new string) only when it holds an escape.
    pub fn text(&self) -> Cow<'_, str> {
        let body = match self {
            RecordData::Text(t) => return Cow::Borrowed(t),
            RecordData::Escaped(body) => body,
            RecordData::EscapedOwned(body) => body.as_str(),
        };
        if !body.contains('\\') {
            return Cow::Borrowed(body);
        }
        let mut out = String::with_capacity(body.len());
        text::unescape_into(&mut out, body);
        Cow::Owned(out)
    }

    /// The data in the form the store takes.
    pub fn incoming(&self) -> Incoming<'_> {
        match self {
            RecordData::Text(t) => Incoming::Text(t),
            RecordData::Escaped(body) => Incoming::Escaped(body),
            RecordData::EscapedOwned(body) => Incoming::Escaped(body),
        }
    }
}

impl PartialEq for RecordData<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl PartialEq<&str> for RecordData<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.text() == *other
    }
}

impl<'a> Field<'a> for RecordData<'a> {
    fn read(f: &mut Members<'a>, i: usize) -> Result<Self, FieldError> {
        f.text(i).map(RecordData::Text)
    }
    fn value(&self) -> Value<'_> {
        let body = match self {
            RecordData::Text(t) => return Value::Text(t),
            RecordData::Escaped(body) => body,
            RecordData::EscapedOwned(body) => body.as_str(),
        };
        if body.contains('\\') {
            Value::Escaped(body)
        } else {
            Value::Text(body)
        }
    }
}

impl super::into_static::IntoStatic for RecordData<'_> {
    type Static = RecordData<'static>;
    fn into_static(self) -> RecordData<'static> {
        RecordData::Text(Cow::Owned(self.text().into_owned()))
    }
}
