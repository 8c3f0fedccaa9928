//! Small one-pass JSON scanners for the shapes every SDK sends. Each returns `None` on anything
//! unusual, and the caller falls back to the general reader (serde_json), which decides what the
//! input means and produces the exact error; the scanners never have to report one.

use crate::text::first_escape;
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

/// The JSON string starting at `i` (its opening quote) and the position after it; `None` for
/// anything unusual (a bad escape, a lone surrogate, a control character, no closing quote).
pub fn string(s: &str, i: usize) -> Option<(Cow<'_, str>, usize)> {
    let b = s.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let mut j = start + first_escape(&b[start..])?;
    if b[j] == b'"' {
        return Some((Cow::Borrowed(&s[start..j]), j + 1));
    }
    // Not the rest of the message: each string of a large batch would allocate up to the whole
    // message (1,000 records of 130 KB → 65 MB per request), fragmenting the heap.
    let mut out = String::with_capacity((b.len() - start).min(2 * (j - start) + 64));
    out.push_str(&s[start..j]);
    loop {
        match b[j] {
            b'"' => return Some((Cow::Owned(out), j + 1)),
            b'\\' => {
                let (c, used) = match *b.get(j + 1)? {
                    b'"' => ('"', 2),
                    b'\\' => ('\\', 2),
                    b'/' => ('/', 2),
                    b'b' => ('\u{8}', 2),
                    b'f' => ('\u{c}', 2),
                    b'n' => ('\n', 2),
                    b'r' => ('\r', 2),
                    b't' => ('\t', 2),
                    b'u' => {
                        let hi = hex4(b, j + 2)?;
                        if (0xD800..0xDC00).contains(&hi) {
                            if b.get(j + 6..j + 8)? != b"\\u" {
                                return None;
                            }
                            let lo = hex4(b, j + 8)?;
                            if !(0xDC00..0xE000).contains(&lo) {
                                return None;
                            }
                            (
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?,
                                12,
                            )
                        } else {
                            (char::from_u32(hi)?, 6)
                        }
                    }
                    _ => return None,
                };
                out.push(c);
                j += used;
            }
            _ => return None, // a control character: not JSON
        }
        let run = j;
        j += first_escape(b.get(j..)?)?;
        out.push_str(&s[run..j]);
    }
}

/// A JSON integer (no fraction, no exponent) starting at `i` that fits an `i64`, and the
/// position after it.
pub fn integer(b: &[u8], i: usize) -> Option<(i64, usize)> {
    let mut j = i;
    if b.get(j) == Some(&b'-') {
        j += 1;
    }
    let digits = j;
    while b.get(j).is_some_and(u8::is_ascii_digit) {
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
    std::str::from_utf8(&b[i..j])
        .ok()?
        .parse()
        .ok()
        .map(|v| (v, j))
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
        for t in [
            "9223372036854775808",
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
}
