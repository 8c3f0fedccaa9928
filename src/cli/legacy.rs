//! `import --legacy`: the old per-record folders `<in-dir>/<collection>/<document>/*.json`, each
//! file one `{…}` object or an array of them. The time comes from `ts`, `timestamp` or `time`
//! (a number, truncated if fractional, or a numeric string), else from the file name; the data
//! is the `data` member (a string as is, anything else as compact JSON), or the whole object as
//! compact JSON with sorted keys when there is no `data` — as the upstream CLI reads them.

use super::output::go_escape;
use super::Error;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

type Item = BTreeMap<String, Box<RawValue>>;

/// Every `*.json` file (any case) under a document folder, sorted by path.
pub fn json_files(doc_dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    let mut dirs = vec![doc_dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let rd = std::fs::read_dir(&dir).map_err(|e| Error::io("cannot read", &dir, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| Error::io("cannot read", &dir, e))?;
            let path = entry.path();
            let ft = entry
                .file_type()
                .map_err(|e| Error::io("cannot read", &path, e))?;
            if ft.is_dir() {
                dirs.push(path);
            } else if is_json(&entry.file_name().to_string_lossy()) {
                files.push(path);
            }
        }
    }
    files.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    Ok(files)
}

/// Go's `strings.EqualFold(filepath.Ext(name), ".json")`.
pub fn is_json(name: &str) -> bool {
    match name.rfind('.') {
        Some(i) => name[i..].eq_ignore_ascii_case(".json"),
        None => false,
    }
}

/// The records of one legacy file: (timestamp, data).
pub fn parse_file(path: &Path) -> Result<Vec<(i64, String)>, Error> {
    let p = path.display();
    let content = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
    let trimmed = content.trim_ascii();
    match trimmed.first() {
        None => Ok(Vec::new()),
        Some(b'[') => {
            let items: Vec<Item> = serde_json::from_slice(trimmed)
                .map_err(|e| Error::Archive(format!("decode {p}: {e}")))?;
            items
                .iter()
                .enumerate()
                .map(|(i, item)| record(item, path).map_err(|e| e.context(format!("{p}[{i}]"))))
                .collect()
        }
        Some(b'{') => {
            let item: Item = serde_json::from_slice(trimmed)
                .map_err(|e| Error::Archive(format!("decode {p}: {e}")))?;
            Ok(vec![
                record(&item, path).map_err(|e| e.context(p.to_string()))?
            ])
        }
        Some(_) => Err(Error::Archive(format!(
            "decode {p}: expected JSON object or array"
        ))),
    }
}

fn record(item: &Item, path: &Path) -> Result<(i64, String), Error> {
    Ok((timestamp(item, path)?, data(item)))
}

fn timestamp(item: &Item, path: &Path) -> Result<i64, Error> {
    for key in ["ts", "timestamp", "time"] {
        if let Some(raw) = item.get(key) {
            return parse_i64(raw.get()).map_err(|e| e.context(format!("invalid {key}")));
        }
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem.parse::<i64>().map_err(|_| {
        Error::Archive("missing ts/timestamp/time and filename is not unix timestamp".into())
    })
}

/// A number (truncated toward zero if fractional) or a string of digits; `null` is 0.
fn parse_i64(raw: &str) -> Result<i64, Error> {
    if raw == "null" {
        return Ok(0);
    }
    if let Ok(i) = serde_json::from_str::<i64>(raw) {
        return Ok(i);
    }
    if let Ok(f) = serde_json::from_str::<f64>(raw) {
        return Ok(f as i64);
    }
    if let Ok(s) = serde_json::from_str::<String>(raw) {
        return s
            .parse::<i64>()
            .map_err(|e| Error::Archive(format!("{s:?}: {e}")));
    }
    Err(Error::Archive("expected number or numeric string".into()))
}

fn data(item: &Item) -> String {
    match item.get("data") {
        Some(raw) => match serde_json::from_str::<String>(raw.get()) {
            Ok(s) => s,
            Err(_) => compact(raw.get()),
        },
        None => {
            let mut out = String::from("{");
            for (i, (k, v)) in item.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                super::output::push_json_str(&mut out, k);
                out.push(':');
                out.push_str(&compact(v.get()));
            }
            out.push('}');
            let mut bytes = out.into_bytes();
            go_escape(&mut bytes);
            // go_escape only swaps ASCII and whole U+2028/U+2029 sequences for ASCII: still UTF-8.
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }
}

/// Valid JSON text without the white space between tokens.
fn compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let (mut in_str, mut escaped) = (false, false);
    for c in raw.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(s: &str) -> Item {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn legacy_records() {
        let p = Path::new("/x/1700000000.json");
        assert_eq!(
            record(&item(r#"{"data":"a b"}"#), p).unwrap(),
            (1_700_000_000, "a b".into())
        );
        assert_eq!(
            record(&item(r#"{"ts":"12","data":{"k": [1, 2.50]}}"#), p).unwrap(),
            (12, r#"{"k":[1,2.50]}"#.into())
        );
        assert_eq!(
            record(&item(r#"{"timestamp":9.9,"v":"<x y>"}"#), p)
                .unwrap()
                .1,
            r#"{"timestamp":9.9,"v":"\u003cx y\u003e"}"#
        );
        assert_eq!(record(&item(r#"{"time":5}"#), p).unwrap().0, 5);
        assert!(record(&item(r#"{"data":"x"}"#), Path::new("/x/abc.json")).is_err());
        assert!(record(&item(r#"{"ts":true}"#), p).is_err());
        assert!(is_json("a.JSON") && !is_json("a.jsonl") && !is_json("json"));
    }
}
