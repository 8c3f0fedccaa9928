//! Response encoding written straight into a byte buffer
//! (docs/protocol.md#frames-the-server-sends): compact JSON, `id` first, non-ASCII raw, `"` `\` and
//! control characters escaped.

use super::record_out;
use crate::text::escape_into;

/// The frame sent once, right after the upgrade.
pub const READY: &str = r#"{"type":"ready","message":"Authentication successful"}"#;

/// Appends `s` as a JSON string literal; runs that need no escaping are copied whole.
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// Appends a signed integer.
pub fn integer(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(decimal(v.unsigned_abs(), &mut [0u8; 20]));
}

/// The two-digit pairs `00`…`99`, so that a number is cut into digits two at a time.
const PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// The decimal digits of `n`, written at the end of `buf` two at a time (a millisecond
/// timestamp takes seven divisions instead of thirteen).
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    &buf[i..]
}

/// Starts a response object: `{"id":"…"`.
pub fn begin(out: &mut Vec<u8>, id: &str) {
    out.extend_from_slice(b"{\"id\":");
    string(out, id);
}

/// Appends `,"name":` (after `begin`). Member names are the protocol's own, which need no
/// escaping: copied as they are.
pub fn member(out: &mut Vec<u8>, name: &'static str) {
    debug_assert!(crate::text::first_escape(name.as_bytes()).is_none());
    out.reserve(name.len() + 4);
    out.extend_from_slice(b",\"");
    crate::short_copy::extend(out, name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Closes the response object.
pub fn end(out: &mut Vec<u8>) {
    out.push(b'}');
}

/// Appends a record whose data is given escaped, as the body of its JSON string (the form the
/// store keeps): copied verbatim. Every record writer below goes through
/// [`record_out::append`], which checks the buffer's room once per record.
pub fn escaped_record(out: &mut Vec<u8>, ts: i64, body: &str) {
    record_out::append(out, false, [b"{\"ts\":"], ts, body.as_bytes());
}

/// Appends `,` unless `first`, then a record as [`escaped_record`] does: one item of a `qdoc`
/// answer.
#[inline]
pub fn escaped_record_item(out: &mut Vec<u8>, first: bool, ts: i64, body: &str) {
    record_out::append(out, !first, [b"{\"ts\":"], ts, body.as_bytes());
}

/// Appends a record already rendered as `,{"ts":…,"data":"…"}` (a kept block's form), its
/// comma left out when `first`: one item of a `qdoc` answer, in one copy.
#[inline(always)]
pub fn rendered_record_item(out: &mut Vec<u8>, first: bool, text: &str) {
    let text = text.as_bytes();
    let text = if first { &text[1..] } else { text };
    record_out::append_pieces(out, false, [text]);
}

/// Appends `,` unless `first`, `"name":` and then a record as [`escaped_record`] does, for a
/// name given escaped: one member of a `qry` answer. The name's closing `":` and the record's
/// `{"ts":` are one 8-byte piece.
pub fn escaped_named_record(out: &mut Vec<u8>, first: bool, name: &[u8], ts: i64, body: &str) {
    record_out::append(
        out,
        !first,
        [b"\"", name, b"\":{\"ts\":"],
        ts,
        body.as_bytes(),
    );
}

/// Appends `,` unless `first`, a member head given whole (`"name":{"ts":`, as a remembered
/// selection keeps it), then the rest of a record as [`escaped_named_record`] does: one member
/// of a quiet `qry`, the head in one copy.
#[inline(always)]
pub fn escaped_record_after_head(out: &mut Vec<u8>, first: bool, head: &[u8], ts: i64, body: &str) {
    record_out::append(out, !first, [head], ts, body.as_bytes());
}

/// Appends `,` unless `first`, a member head given whole (`"name":{"ts":`) and a record's end
/// rendered ahead of time by [`record_out::store_tail`]: one member of a quiet `qry`, in two copies.
#[inline(always)]
pub fn rendered_after_head(out: &mut Vec<u8>, first: bool, head: &[u8], tail: &[u8]) {
    record_out::append_pieces(out, !first, [head, tail]);
}

/// A whole error response; without an id for envelopes that had none.
pub fn error(out: &mut Vec<u8>, id: Option<&str>, message: &str) {
    match id {
        Some(id) => {
            begin(out, id);
            member(out, "error");
        }
        None => out.extend_from_slice(b"{\"error\":"),
    }
    string(out, message);
    end(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        let mut out = Vec::new();
        string(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escaping_matches_serde_json_for_every_control_character() {
        for c in (0u8..0x80).map(char::from).chain("é€😀\u{7f}".chars()) {
            let text = format!("a{c}b\"\\");
            assert_eq!(
                s(&text),
                serde_json::to_string(&text).unwrap(),
                "char {:?}",
                c
            );
        }
    }

    #[test]
    fn integers() {
        let mut values = vec![0, 1, -1, 42, i64::MAX, i64::MIN];
        let mut p = 1i64;
        while let Some(next) = p.checked_mul(10) {
            values.extend([p - 1, p, p + 1, -p, next / 10 * 9 + 7]);
            p = next;
        }
        for v in values {
            let mut out = Vec::new();
            integer(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
            let mut out = b"x".to_vec();
            escaped_record(&mut out, v, "a\\\"b");
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("x{{\"ts\":{v},\"data\":\"a\\\"b\"}}")
            );
            let mut out = b"{".to_vec();
            escaped_named_record(&mut out, true, b"d\\\"1", v, "a\\\"b");
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("{{\"d\\\"1\":{{\"ts\":{v},\"data\":\"a\\\"b\"}}")
            );
            let mut out = b"[".to_vec();
            escaped_record_item(&mut out, true, v, "a");
            escaped_record_item(&mut out, false, v, "\\n");
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("[{{\"ts\":{v},\"data\":\"a\"}},{{\"ts\":{v},\"data\":\"\\n\"}}")
            );
        }
    }

    #[test]
    fn an_empty_name_is_still_a_member() {
        let mut out = b"{".to_vec();
        escaped_named_record(&mut out, true, b"", 5, "");
        escaped_record_item(&mut out, false, 1_733_500_000_123, "x");
        assert_eq!(
            out,
            br#"{"":{"ts":5,"data":""},{"ts":1733500000123,"data":"x"}"#
        );
    }

    #[test]
    fn error_shapes() {
        let mut out = Vec::new();
        error(&mut out, Some("x\"1"), "permission denied");
        assert_eq!(out, br#"{"id":"x\"1","error":"permission denied"}"#);
        out.clear();
        error(&mut out, None, "invalid message: expected a JSON object");
        assert_eq!(
            out,
            br#"{"error":"invalid message: expected a JSON object"}"#
        );
    }
}
