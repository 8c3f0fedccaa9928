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
    if !buf.iter().any(go_special) {
        return;
    }
    let mut out = Vec::with_capacity(buf.len() + 32);
    go_escape_into(buf, &mut out);
    *buf = out;
}

fn go_special(b: &u8) -> bool {
    matches!(*b, b'<' | b'>' | b'&' | 0xE2)
}

/// Appends `src` to `out` rewritten as [`go_escape`] does.
pub fn go_escape_into(src: &[u8], out: &mut Vec<u8>) {
    let mut rest = src;
    while let Some(i) = rest.iter().position(go_special) {
        out.extend_from_slice(&rest[..i]);
        let tail = &rest[i..];
        let (escaped, len): (&[u8], usize) = match tail {
            [b'<', ..] => (b"\\u003c", 1),
            [b'>', ..] => (b"\\u003e", 1),
            [b'&', ..] => (b"\\u0026", 1),
            [0xE2, 0x80, 0xA8, ..] => (b"\\u2028", 3),
            [0xE2, 0x80, 0xA9, ..] => (b"\\u2029", 3),
            _ => (&tail[..1], 1),
        };
        out.extend_from_slice(escaped);
        rest = &tail[len..];
    }
    out.extend_from_slice(rest);
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
