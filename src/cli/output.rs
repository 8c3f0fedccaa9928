//! Output: JSON printed as the upstream Go CLI prints it (two-space indentation, a final
//! newline, map keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped as Go's encoder does),
//! or a plain table for people (`--output table`).

use super::Error;
use clap::ValueEnum;
use serde::Serialize;
use std::io::Write;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON, exactly as the upstream CLI prints it.
    Json,
    /// An aligned table for people.
    Table,
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        // Serialising a &str into memory has no failure path in serde_json.
        Err(_) => out.push_str("\"\""),
    }
}

/// Rewrites `<`, `>`, `&`, U+2028 and U+2029 as `\u003c`, … as Go's `encoding/json` does. In
/// serialised JSON these characters only occur inside strings, so a plain rewrite is exact.
pub fn go_escape(buf: &mut Vec<u8>) {
    let special = |b: &u8| matches!(*b, b'<' | b'>' | b'&' | 0xE2);
    if !buf.iter().any(special) {
        return;
    }
    let mut out = Vec::with_capacity(buf.len() + 32);
    let mut i = 0;
    while i < buf.len() {
        let b = buf[i];
        match b {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            0xE2 if buf.get(i + 1) == Some(&0x80)
                && matches!(buf.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                out.extend_from_slice(if buf[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    *buf = out;
}

/// `value` as Go's `json.Encoder` with `SetIndent("", "  ")` writes it (final newline included).
pub fn pretty(value: &impl Serialize) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"  ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    value
        .serialize(&mut ser)
        .map_err(|e| Error::Output(format!("cannot write JSON: {e}")))?;
    go_escape(&mut buf);
    buf.push(b'\n');
    Ok(buf)
}

pub fn print_json(value: &impl Serialize) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(&pretty(value)?)
        .and_then(|_| out.flush())
        .map_err(|e| Error::Output(format!("cannot write to stdout: {e}")))
}

/// Prints an aligned table: a header line, then one line per row.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) -> Result<(), Error> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::Output(format!("cannot write to stdout: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_json() {
        let v = serde_json::json!({"b": "<a&b>\u{2028}", "a": [1, 2], "c": {}});
        assert_eq!(
            String::from_utf8(pretty(&v).unwrap()).unwrap(),
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": \"\\u003ca\\u0026b\\u003e\\u2028\",\n  \"c\": {}\n}\n"
        );
        let mut s = String::from("x");
        push_json_str(&mut s, "a\"b");
        assert_eq!(s, "x\"a\\\"b\"");
    }
}
