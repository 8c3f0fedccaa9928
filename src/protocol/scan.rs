//! Small one-pass JSON scanners for the shapes every SDK sends. Each returns `None` on anything
//! unusual, and the caller falls back to the general reader (serde_json), which decides what the
//! input means and produces the exact error; the scanners never have to report one.

use crate::text::{self, first_escape};
use std::borrow::Cow;

/// The position of the first byte at or after `i` that is not JSON white space.
pub fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let digits = b.get(i..i + 4)?;
    let mut v = 0;
    for &d in digits {
        v = v * 16 + (d as char).to_digit(16)?;
    }
    Some(v)
}

/// The byte each one-letter escape sequence (`\e`) stands for, by its letter; 0 for the
/// letters that are not one (`u` among them). A table rather than a `match`: escaped JSON
/// alternates `\"` and `\\`, and a jump per sequence would mispredict on every change.
const SHORT_ESCAPES: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'/' as usize] = b'/';
    t[b'b' as usize] = 0x08;
    t[b'f' as usize] = 0x0c;
    t[b'n' as usize] = b'\n';
    t[b'r' as usize] = b'\r';
    t[b't' as usize] = b'\t';
    t
};

/// Runs between escapes up to this long are copied byte by byte: inside a string that holds
/// escaped JSON (an `ins` batch in its envelope) they are a few bytes each, too short to pay
/// for a word-wise search.
const SHORT_RUN: usize = 16;

/// The JSON string starting at `i` (its opening quote) and the position after it; `None` for
/// anything unusual (a bad escape, a lone surrogate, a control character, no closing quote).
pub fn string(s: &str, i: usize) -> Option<(Cow<'_, str>, usize)> {
    // Not the rest of the message: each string of a large batch would allocate up to the whole
    // message (1,000 records of 130 KB → 65 MB per request), fragmenting the heap. Nor a floor
    // of a few KiB: a record's data outlives the request in the subscriptions' history of
    // recent writes, where every spare byte of capacity would stay held.
    unescape(s, i, |rest, before_escape| rest.min(2 * before_escape + 64))
}

/// [`string`] for a string that lives as long as its request and is most of the text after it
/// (the envelope's `data`): un-escaped into a string of the rest's length at once, never grown.
pub fn string_to_end(s: &str, i: usize) -> Option<(Cow<'_, str>, usize)> {
    unescape(s, i, |rest, _| rest)
}

/// [`string`], its un-escaped text allocated with `capacity(bytes after the opening quote,
/// bytes before the first escape)`.
fn unescape(
    s: &str,
    i: usize,
    capacity: impl FnOnce(usize, usize) -> usize,
) -> Option<(Cow<'_, str>, usize)> {
    let b = s.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let mut j = start + first_escape(&b[start..])?;
    if b[j] == b'"' {
        return Some((Cow::Borrowed(&s[start..j]), j + 1));
    }
    let mut out = String::with_capacity(capacity(b.len() - start, j - start));
    out.push_str(&s[start..j]);
    loop {
        // `b[j]` is a byte that needs escaping.
        match b[j] {
            b'"' => return Some((Cow::Owned(out), j + 1)),
            b'\\' => {
                let e = *b.get(j + 1)?;
                let short = SHORT_ESCAPES[e as usize];
                if short != 0 {
                    out.push(char::from(short));
                    j += 2;
                } else if e == b'u' {
                    let hi = hex4(b, j + 2)?;
                    if (0xD800..0xDC00).contains(&hi) {
                        if b.get(j + 6..j + 8)? != b"\\u" {
                            return None;
                        }
                        let lo = hex4(b, j + 8)?;
                        if !(0xDC00..0xE000).contains(&lo) {
                            return None;
                        }
                        out.push(char::from_u32(
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00),
                        )?);
                        j += 12;
                    } else {
                        out.push(char::from_u32(hi)?);
                        j += 6;
                    }
                } else {
                    return None;
                }
            }
            _ => return None, // a control character: not JSON
        }
        // The run up to the next byte that needs escaping: short runs of ASCII byte by byte
        // (no call per run), the rest by a word-wise search.
        let run = j;
        loop {
            let c = *b.get(j)?;
            if c >= 0x80 || text::needs_escape(c) || j - run == SHORT_RUN {
                break;
            }
            out.push(char::from(c));
            j += 1;
        }
        if !text::needs_escape(b[j]) {
            // `j` is at a character's first byte, and the search stops at an ASCII one.
            let from = j;
            j += first_escape(&b[j..])?;
            out.push_str(&s[from..j]);
        }
    }
}

/// Whether the escape sequence at the start of `seq` (a backslash and what follows) is the one
/// [`text::escape_into`] writes for the character it stands for, and its length: the short
/// forms for `"`, `\\`, newline, return, tab, backspace and form feed; `\u00XX` in lowercase
/// hex for the other control characters. `None` for every other spelling (`\/`, `\u00e9`,
/// `\u000A`, a bad escape).
pub(crate) fn canonical_escape(seq: &[u8]) -> Option<usize> {
    match *seq.get(1)? {
        b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f' => Some(2),
        b'u' => {
            let digits = seq.get(2..6)?;
            let lower_hex = |d: u8| d.is_ascii_digit() || (b'a'..=b'f').contains(&d);
            if digits[0] != b'0' || digits[1] != b'0' || !digits[2..].iter().all(|&d| lower_hex(d))
            {
                return None;
            }
            let c = hex4(seq, 2)?;
            (c < 0x20 && !matches!(c, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d)).then_some(6)
        }
        _ => None,
    }
}

/// The JSON string starting at `i` (its opening quote) when its body is exactly what
/// [`text::escape_into`] writes for the text it stands for: that body, borrowed, and the
/// position after the string. `None` for any other string (it may still be valid: read it with
/// [`string`]) and for anything that is not one.
pub fn canonical_string(s: &str, i: usize) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let mut j = start + first_escape(&b[start..])?;
    loop {
        // `b[j]` is a byte that needs escaping.
        match b[j] {
            b'"' => return Some((&s[start..j], j + 1)),
            b'\\' => j += canonical_escape(&b[j..])?,
            _ => return None, // a control character: not JSON
        }
        // As in [`string`]: the short runs between the escapes of escaped JSON byte by byte,
        // longer ones by the word-wise search.
        let run = j;
        while !text::needs_escape(*b.get(j)?) && j - run < SHORT_RUN {
            j += 1;
        }
        if !text::needs_escape(b[j]) {
            j += first_escape(&b[j..])?;
        }
    }
}

/// A JSON integer (no fraction, no exponent) starting at `i` that fits an `i64`, and the
/// position after it.
pub fn integer(b: &[u8], i: usize) -> Option<(i64, usize)> {
    let negative = b.get(i) == Some(&b'-');
    let digits = i + usize::from(negative);
    // One pass: the digits' value in a `u64` (exact for the 19 digits at most kept below:
    // 10^19 < 2^64), the sign and the range checked once at the end.
    let mut j = digits;
    let mut v: u64 = 0;
    while let Some(d) = b.get(j).map(|c| c.wrapping_sub(b'0')).filter(|&d| d < 10) {
        v = v.wrapping_mul(10).wrapping_add(u64::from(d));
        j += 1;
    }
    let n = j - digits;
    if n == 0
        || n > 19
        || (n > 1 && b[digits] == b'0')
        || matches!(b.get(j), Some(b'.' | b'e' | b'E'))
    {
        return None;
    }
    let v = if negative {
        // `i64::MIN` is 2^63, one past `i64::MAX`.
        (v <= 1 << 63).then(|| (v as i64).wrapping_neg())?
    } else {
        i64::try_from(v).ok()?
    };
    Some((v, j))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        let f = |t: &str| integer(t.as_bytes(), 0);
        assert_eq!(f("12,"), Some((12, 2)));
        assert_eq!(f("-7}"), Some((-7, 2)));
        assert_eq!(f("9223372036854775807"), Some((i64::MAX, 19)));
        assert_eq!(f("-9223372036854775808"), Some((i64::MIN, 20)));
        assert_eq!(f("-9223372036854775807"), Some((-i64::MAX, 20)));
        assert_eq!(f("-0"), Some((0, 2)));
        assert_eq!(f("1234567890123456789 "), Some((1234567890123456789, 19)));
        for t in [
            "9223372036854775808",
            "-9223372036854775809",
            "9999999999999999999",
            "01",
            "1.5",
            "1e3",
            "-",
            "",
            "x",
            "18446744073709551616",
        ] {
            assert_eq!(f(t), None, "{t}");
        }
    }

    #[test]
    fn integers_agree_with_the_standard_parser() {
        // Around every power of ten and the ends of the range, both signs, with 1 to 20 digits.
        let mut texts = Vec::new();
        for k in 0..=20u32 {
            let p = 10u128.pow(k);
            for v in [p.saturating_sub(1), p, p + 1, p * 9, p * 9 + 8] {
                texts.push(v.to_string());
            }
        }
        texts.extend(["9223372036854775807", "9223372036854775808"].map(String::from));
        for t in texts.clone() {
            texts.push(format!("-{t}"));
        }
        for t in &texts {
            let expected = t.parse::<i64>().ok().map(|v| (v, t.len()));
            assert_eq!(integer(t.as_bytes(), 0), expected, "{t}");
        }
    }

    #[test]
    fn strings() {
        let f = |t: &str| string(t, 0).map(|(s, n)| (s.into_owned(), n));
        assert_eq!(f(r#""ab" "#), Some(("ab".into(), 4)));
        assert_eq!(
            f(r#""a\"b\u00e9\ud83d\ude00""#),
            Some(("a\"bé😀".into(), 24))
        );
        for t in [r#""a"#, r#""\x""#, r#""\ud800""#, "\"a\u{1}\"", "a"] {
            assert_eq!(f(t), None, "{t}");
        }
    }

    #[test]
    fn canonical_strings_are_what_the_store_would_write() {
        let long = "x".repeat(SHORT_RUN * 3);
        let mut texts: Vec<String> = (0u32..0x80)
            .chain([0xe9, 0x2028, 0x1f600])
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}{c}b"))
            .collect();
        texts.push(format!("{long}\"\\\u{1f}\u{1}\t{long}é😀"));
        texts.push(String::new());
        for text in texts {
            let mut body = String::new();
            text::escape_into_string(&mut body, &text);
            let quoted = format!("\"{body}\" ");
            assert_eq!(
                canonical_string(&quoted, 0),
                Some((body.as_str(), quoted.len() - 1)),
                "{quoted}"
            );
            assert_eq!(string(&quoted, 0).unwrap().0, text, "{quoted}");
            // Cut anywhere before the closing quote: never a string.
            for cut in 1..quoted.len() - 1 {
                if quoted.is_char_boundary(cut) {
                    assert_eq!(
                        canonical_string(&quoted[..cut], 0),
                        None,
                        "{}",
                        &quoted[..cut]
                    );
                }
            }
        }
        // Valid spellings the store would write otherwise, and strings that are not JSON.
        for other in [
            r#""\/""#,
            r#""\u00e9""#,
            r#""\u0041""#,
            r#""\u001F""#,
            r#""\u000a""#,
            r#""\u0009""#,
            r#""\u0008""#,
            r#""\u000c""#,
            r#""\u000d""#,
            r#""\ud83d\ude00""#,
            r#""\x""#,
            r#""\u00""#,
            "\"a\u{1}\"",
            "a",
        ] {
            assert_eq!(canonical_string(other, 0), None, "{other}");
        }
    }

    #[test]
    fn strings_with_escapes_agree_with_serde_json() {
        // Runs shorter and longer than SHORT_RUN, non-ASCII inside and after them, escapes
        // back to back, escaped JSON inside escaped JSON.
        let long = "x".repeat(SHORT_RUN * 3);
        let texts = [
            format!("a\"{long}\"b"),
            format!("\"{long}é{long}\\"),
            "é\"ü\"😀\"".to_string(),
            "\"\\\"\\\n\t\r\u{8}\u{c}\u{1}\u{7f}/".to_string(),
            r#"[{"ts":1,"doc":"d","data":"{\"seq\":1,\"pad\":\"xx\"}","col":"c"}]"#.to_string(),
            format!("{long}é\""),
        ];
        for text in texts {
            let quoted = serde_json::to_string(&text).unwrap();
            let (got, end) = string(&quoted, 0).unwrap();
            assert_eq!((&*got, end), (text.as_str(), quoted.len()), "{quoted}");
            assert_eq!(string_to_end(&quoted, 0), Some((got, end)), "{quoted}");
            // With a slash escaped and a character written as \u, as other encoders may.
            let other = quoted.replace('/', "\\/").replace('é', "\\u00e9");
            assert_eq!(string(&other, 0).unwrap().0, text, "{other}");
            // Cut anywhere before the closing quote: never a string.
            for cut in 1..quoted.len() - 1 {
                if quoted.is_char_boundary(cut) {
                    assert_eq!(string(&quoted[..cut], 0), None, "{}", &quoted[..cut]);
                }
            }
        }
    }
}
