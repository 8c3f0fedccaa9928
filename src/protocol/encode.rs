//! Response encoding written straight into a byte buffer
//! (docs/protocol.md#frames-the-server-sends): compact JSON, `id` first, non-ASCII raw, `"` `\` and
//! control characters escaped.

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

/// The decimal digits of `n`, written at the end of `buf`.
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Starts a response object: `{"id":"…"`.
pub fn begin(out: &mut Vec<u8>, id: &str) {
    out.extend_from_slice(b"{\"id\":");
    string(out, id);
}

/// Appends `,"name":` (after `begin`).
pub fn member(out: &mut Vec<u8>, name: &str) {
    out.push(b',');
    string(out, name);
    out.push(b':');
}

/// Closes the response object.
pub fn end(out: &mut Vec<u8>) {
    out.push(b'}');
}

/// Appends a record whose data is given escaped, as the body of its JSON string (the form the
/// store keeps): copied verbatim.
pub fn escaped_record(out: &mut Vec<u8>, ts: i64, body: &str) {
    out.extend_from_slice(b"{\"ts\":");
    integer(out, ts);
    out.extend_from_slice(b",\"data\":\"");
    out.extend_from_slice(body.as_bytes());
    out.extend_from_slice(b"\"}");
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
        for v in [0, 1, -1, 42, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            integer(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
        }
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
