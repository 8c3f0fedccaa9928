//! Where a one-pass reader reads a payload's JSON: in the payload's own text (`data` once
//! un-escaped), or still inside the envelope's `data` string, where each quote of the payload
//! arrives as `\"` and the only white space that may stand as it is is the space. The readers
//! of `ins` batches and of `qry`/`qdoc` payloads are written once over [`Spelling`].

use super::scan;
use crate::text;

/// How the payload's JSON is spelled where it is read.
pub(crate) trait Spelling {
    /// A quote of the payload.
    const QUOTE: &'static [u8];
    /// The position of the first byte at or after `i` that is not white space.
    fn skip_ws(b: &[u8], i: usize) -> usize;
}

/// The payload's own text.
pub(crate) struct AsSent;

impl Spelling for AsSent {
    const QUOTE: &'static [u8] = b"\"";
    fn skip_ws(b: &[u8], i: usize) -> usize {
        scan::skip_ws(b, i)
    }
}

/// Inside the envelope's `data` string, still escaped.
pub(crate) struct InEnvelope;

impl Spelling for InEnvelope {
    const QUOTE: &'static [u8] = b"\\\"";
    fn skip_ws(b: &[u8], mut i: usize) -> usize {
        // A tab or a line break inside a JSON string is escaped: another spelling.
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        i
    }
}

/// A string of the payload without escapes or control characters, starting at `i` (its
/// opening quote as `S` spells it): its text and the position after it.
#[inline]
pub(crate) fn plain_string<S: Spelling>(s: &str, i: usize) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    if b.get(i..i + S::QUOTE.len())? != S::QUOTE {
        return None;
    }
    let start = i + S::QUOTE.len();
    // Names and filters are a few bytes: byte by byte, no call for the word-wise search.
    let mut end = start;
    while !text::needs_escape(*b.get(end)?) {
        end += 1;
    }
    // A bare quote inside the envelope's string would end it; a control character is not JSON.
    let after = end + S::QUOTE.len();
    if b.get(end..after)? != S::QUOTE {
        return None;
    }
    Some((&s[start..end], after))
}

/// Walks one JSON object of the payload starting at `i` (its `{`), as `S` spells it: each
/// member's key (a plain string) and the position of its value go to `member`, which reads the
/// value and returns the position after it, or `None` to give up. The position after the `}`.
#[inline]
pub(crate) fn object<'a, S: Spelling>(
    s: &'a str,
    mut i: usize,
    mut member: impl FnMut(&'a str, usize) -> Option<usize>,
) -> Option<usize> {
    let b = s.as_bytes();
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = S::skip_ws(b, i + 1);
    if b.get(i) != Some(&b'}') {
        loop {
            let (key, next) = plain_string::<S>(s, i)?;
            i = S::skip_ws(b, next);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = S::skip_ws(b, member(key, S::skip_ws(b, i + 1))?);
            match b.get(i) {
                Some(b',') => i = S::skip_ws(b, i + 1),
                Some(b'}') => break,
                _ => return None,
            }
        }
    }
    Some(i + 1)
}

/// The envelope's `data` string starting at `i` (its opening quote) read by `payload`, which is
/// handed the position of the payload's first token (spaces skipped) and returns what it read
/// and the position after it: what it read, the string's body as sent and the position after
/// its closing quote. `None` when `payload` declines or anything but spaces follows it.
pub(crate) fn in_envelope<'a, T>(
    frame: &'a str,
    i: usize,
    payload: impl FnOnce(&'a str, usize) -> Option<(T, usize)>,
) -> Option<(T, &'a str, usize)> {
    let b = frame.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let (value, next) = payload(frame, InEnvelope::skip_ws(b, start))?;
    let end = InEnvelope::skip_ws(b, next);
    (b.get(end) == Some(&b'"')).then(|| (value, &frame[start..end], end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_strings_in_both_spellings() {
        assert_eq!(plain_string::<AsSent>(r#""ab" "#, 0), Some(("ab", 4)));
        assert_eq!(plain_string::<AsSent>(r#""é😀""#, 0), Some(("é😀", 8)));
        assert_eq!(plain_string::<InEnvelope>(r#"\"ab\" "#, 0), Some(("ab", 6)));
        for t in [r#""a\"b""#, "\"a\u{1}\"", r#""a"#, "a", r#"\"a\""#, ""] {
            assert_eq!(plain_string::<AsSent>(t, 0), None, "{t}");
        }
        for t in [
            r#"\"a"b\""#,
            r#"\"a\\\"b\""#,
            r#"\"a\nb\""#,
            r#""a""#,
            r#"\"a"#,
            r#"\"a\"#,
            "\\\"a\u{1}\\\"",
        ] {
            assert_eq!(plain_string::<InEnvelope>(t, 0), None, "{t}");
        }
    }

    #[test]
    fn white_space_in_both_spellings() {
        let b = b" \t\n\r x";
        assert_eq!(AsSent::skip_ws(b, 0), 5);
        assert_eq!(InEnvelope::skip_ws(b, 0), 1);
        assert_eq!(InEnvelope::skip_ws(b"  ", 0), 2);
    }
}
