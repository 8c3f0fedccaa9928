//! Readers for the two shapes that carry nearly all the bytes of an export or import — an
//! archive line `{"ts":N,"doc":"…","data":"…"}` and a `qdoc` answer
//! `{"id":"…","records":[{"ts":N,"data":"…"},…]}` — that pick out the JSON tokens without a
//! full decoder. Anything else (white space, another member order, an invalid escape) gives
//! `None`, and the caller decodes it with serde_json, which also reports errors properly.

/// A JSON string token at the start of `s` (quotes included), what follows it, and whether it
/// holds a byte that Go's encoder escapes (`<`, `>`, `&`, or the lead byte of U+2028/U+2029).
pub fn string_token(s: &str) -> Option<(&str, &str, bool)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut special = false;
    let mut i = 1;
    loop {
        // Skip the bytes that need no attention (nearly all of them) a table look-up each.
        while i < b.len() && CLASS[b[i] as usize] == PLAIN {
            i += 1;
        }
        match CLASS[*b.get(i)? as usize] {
            QUOTE => return Some((&s[..=i], &s[i + 1..], special)),
            ESCAPE => match b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' if b.get(i + 2..i + 6)?.iter().all(u8::is_ascii_hexdigit) => i += 6,
                _ => return None,
            },
            CONTROL => return None,
            _ => {
                special = true;
                i += 1;
            }
        }
    }
}

const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const ESCAPE: u8 = 2;
const CONTROL: u8 = 3;
const GO_SPECIAL: u8 = 4;

/// What a byte inside a JSON string is, for [`string_token`].
static CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = CONTROL;
        c += 1;
    }
    t[b'"' as usize] = QUOTE;
    t[b'\\' as usize] = ESCAPE;
    t[b'<' as usize] = GO_SPECIAL;
    t[b'>' as usize] = GO_SPECIAL;
    t[b'&' as usize] = GO_SPECIAL;
    t[0xE2] = GO_SPECIAL;
    t
};

/// The digits of an integer at the start of `s`, and what follows them.
fn integer(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let start = usize::from(b.first() == Some(&b'-'));
    let end = start + b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
    (end > start).then(|| s.split_at(end))
}

/// `{"ts":N,"doc":"…","data":"…"}` exactly: the timestamp and the two string tokens.
pub fn fast_line(line: &[u8]) -> Option<(i64, &str, &str)> {
    let s = std::str::from_utf8(line).ok()?;
    let (ts, rest) = integer(s.strip_prefix("{\"ts\":")?)?;
    let (doc, rest, _) = string_token(rest.strip_prefix(",\"doc\":")?)?;
    let (data, rest, _) = string_token(rest.strip_prefix(",\"data\":")?)?;
    (rest == "}").then_some((ts.parse().ok()?, doc, data))
}

/// One record of a `qdoc` answer: the timestamp's digits and value, the data token, and
/// whether the token needs Go's extra escaping.
pub struct PageRecord<'a> {
    pub ts_text: &'a str,
    pub ts: i64,
    pub data: &'a str,
    pub special: bool,
}

/// The records of a `qdoc` answer as our server writes it.
pub fn fast_page(answer: &str) -> Option<Vec<PageRecord<'_>>> {
    let rest = answer.strip_prefix("{\"id\":")?;
    let (_, rest, _) = string_token(rest)?;
    let mut rest = rest.strip_prefix(",\"records\":[")?;
    let mut out = Vec::new();
    if let Some(end) = rest.strip_prefix("]}") {
        return end.is_empty().then_some(out);
    }
    loop {
        let (ts_text, r) = integer(rest.strip_prefix("{\"ts\":")?)?;
        let (data, r, special) = string_token(r.strip_prefix(",\"data\":")?)?;
        let r = r.strip_prefix('}')?;
        out.push(PageRecord {
            ts_text,
            ts: ts_text.parse().ok()?,
            data,
            special,
        });
        if let Some(r) = r.strip_prefix(',') {
            rest = r;
        } else {
            return (r == "]}").then_some(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(
            fast_line(br#"{"ts":12,"doc":"a\"b","data":"x\u003cy"}"#),
            Some((12, r#""a\"b""#, r#""x\u003cy""#))
        );
        assert_eq!(fast_line(br#"{"ts": 12,"doc":"a","data":"x"}"#), None);
        assert_eq!(fast_line(br#"{"ts":12,"doc":"a","data":"x\q"}"#), None);
        assert_eq!(fast_line(br#"{"ts":12,"doc":"a","data":1}"#), None);
        assert_eq!(fast_line(br#"{"ts":12,"doc":"a","data":"x"} "#), None);
        assert_eq!(fast_line(br#"{"ts":1.5,"doc":"a","data":"x"}"#), None);
    }

    #[test]
    fn pages() {
        let p =
            fast_page(r#"{"id":"7","records":[{"ts":1,"data":"a<"},{"ts":-2,"data":"\"b\""}]}"#)
                .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].ts_text, p[0].ts, p[0].data, p[0].special),
            ("1", 1, "\"a<\"", true)
        );
        assert_eq!(
            (p[1].ts, p[1].data, p[1].special),
            (-2, r#""\"b\"""#, false)
        );
        assert_eq!(fast_page(r#"{"id":"7","records":[]}"#).unwrap().len(), 0);
        assert!(fast_page(r#"{"id":"7","records":[{"ts":1,"data":"a"}]} "#).is_none());
        assert!(fast_page(r#"{"records":[],"id":"7"}"#).is_none());
    }
}
