//! A record's data as the store keeps it: the body of its JSON string, escaped once when the
//! record is stored, so that a response copies it instead of scanning and escaping it again.
//! Whoever needs the data as it was sent (`where`/`filter`, snapshots, pushes) asks for
//! [`Data::text`], which un-escapes only data that holds an escape sequence.

use crate::text;
use std::borrow::Cow;

/// One record's stored data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data<'a> {
    body: &'a str,
    /// Nonzero when the body may hold escape sequences (0: it is exactly the data as sent).
    /// A word rather than a `bool`: readers hand a `Data` on by value, through memory, and a
    /// one-byte flag written and then copied on as part of a word cannot be forwarded from the
    /// store to the load: every record read this way stalled for the store to complete.
    escaped: usize,
}

impl<'a> Data<'a> {
    pub(super) fn new(body: &'a str, escaped: bool) -> Self {
        Data {
            body,
            escaped: usize::from(escaped),
        }
    }

    /// The data escaped as inside a JSON string, without the quotes: what a response holds.
    pub fn wire(&self) -> &'a str {
        self.body
    }

    /// The data as it was sent.
    pub fn text(&self) -> Cow<'a, str> {
        if !self.has_escapes() {
            return Cow::Borrowed(self.body);
        }
        let mut out = String::with_capacity(self.body.len());
        text::unescape_into(&mut out, self.body);
        Cow::Owned(out)
    }

    /// The data as it was sent, un-escaped into `scratch` only when it must be.
    pub fn text_in<'s>(&self, scratch: &'s mut String) -> &'s str
    where
        'a: 's,
    {
        if !self.has_escapes() {
            return self.body;
        }
        scratch.clear();
        text::unescape_into(scratch, self.body);
        scratch
    }

    fn has_escapes(&self) -> bool {
        // An escaped body holds a backslash exactly where the data held a byte to escape.
        self.escaped != 0 && self.body.as_bytes().contains(&b'\\')
    }
}

/// A record's data on its way into the store: as it was sent, or already in the stored form
/// (escaped exactly as [`text::escape_into`] writes it, which an `ins` reader can often borrow
/// straight from the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// The data as sent.
    Text(&'a str),
    /// The escaped body, byte for byte what [`text::escape_into`] writes for the data.
    Escaped(&'a str),
}

impl Incoming<'_> {
    /// Bytes as given, in whichever form: a cheap bound that needs no scan.
    pub fn given_len(&self) -> usize {
        match *self {
            Incoming::Text(s) | Incoming::Escaped(s) => s.len(),
        }
    }

    /// At most the bytes the data takes stored, without a scan: text may grow six times
    /// when escaped (`\u00XX` for a control byte).
    pub fn max_stored_len(&self) -> usize {
        match *self {
            Incoming::Text(t) => t.len().saturating_mul(6),
            Incoming::Escaped(body) => body.len(),
        }
    }

    /// Bytes the data takes stored (escaped).
    pub fn stored_len(&self) -> usize {
        match *self {
            Incoming::Text(t) => text::escaped_len(t),
            Incoming::Escaped(body) => body.len(),
        }
    }
}

impl<'a> From<&'a str> for Incoming<'a> {
    fn from(text: &'a str) -> Self {
        Incoming::Text(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_undoes_the_escaping_and_borrows_when_it_can() {
        let d = Data::new(r#"{\"a\":\"x\\y\n\"}"#, true);
        assert_eq!(d.text(), "{\"a\":\"x\\y\n\"}");
        let mut scratch = String::new();
        assert_eq!(d.text_in(&mut scratch), "{\"a\":\"x\\y\n\"}");
        assert!(matches!(
            Data::new("plain", true).text(),
            Cow::Borrowed("plain")
        ));
        assert!(matches!(
            Data::new("a\\nb", false).text(),
            Cow::Borrowed("a\\nb")
        ));
    }
}
