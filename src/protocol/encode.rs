//! Response encoding written straight into a byte buffer
//! (docs/protocol.md#frames-the-server-sends): compact JSON, `id` first, non-ASCII raw, `"` `\` and
//! control characters escaped.

use crate::text::first_escape;

/// The frame sent once, right after the upgrade.
pub const READY: &str = r#"{"type":"ready","message":"Authentication successful"}"#;

/// Appends `s` as a JSON string literal; runs that need no escaping are copied whole.
pub fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(offset) = first_escape(&bytes[start..]) {
        let i = start + offset;
        out.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
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

/// Appends one `{"ts":…,"data":…}` record.
pub fn record(out: &mut Vec<u8>, ts: i64, data: &str) {
    out.extend_from_slice(b"{\"ts\":");
    integer(out, ts);
    out.extend_from_slice(b",\"data\":");
    string(out, data);
    out.push(b'}');
}

/// Appends a record whose data is known to need no escaping (see `Series::data_is_plain`).
pub fn plain_record(out: &mut Vec<u8>, ts: i64, data: &str) {
    debug_assert!(first_escape(data.as_bytes()).is_none());
    out.extend_from_slice(b"{\"ts\":");
    integer(out, ts);
    out.extend_from_slice(b",\"data\":\"");
    out.extend_from_slice(data.as_bytes());
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
