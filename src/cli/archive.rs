//! The archive layout shared with the upstream CLI:
//!
//! ```text
//! DIR/apikeys.json                    (--api-keys / --all)
//! DIR/<collection>/key_value.json     the collection's key/value map
//! DIR/<collection>/<document>.jsonl   one {"ts","doc","data"} per line
//! ```
//!
//! A document's file name is Go's `url.PathEscape(doc)` + `.jsonl` (`_` for the empty name),
//! so every name stays inside its folder; a collection name with `/` becomes nested folders.

use super::Error;
use std::path::{Path, PathBuf};

pub const DOC_EXT: &str = ".jsonl";
pub const KV_FILE: &str = "key_value.json";
pub const KEYS_FILE: &str = "apikeys.json";

/// Go's `url.PathEscape`: everything but `A-Z a-z 0-9 - _ . ~ $ & + : = @` becomes `%XX`
/// (upper-case hex, byte by byte).
pub fn path_escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => out.push(b as char),
            b'-' | b'_' | b'.' | b'~' | b'$' | b'&' | b'+' | b':' | b'=' | b'@' => {
                out.push(b as char)
            }
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
    out
}

/// Go's `url.PathUnescape`: `%XX` decoded (either case); a `%` not followed by two hex digits
/// is an error; the result must be UTF-8 here (names are strings on the wire).
pub fn path_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            let hi = hex(*b.get(i + 1)?)?;
            let lo = hex(*b.get(i + 2)?)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The file name of a document: `PathEscape(doc).jsonl`, `_.jsonl` for the empty name.
pub fn doc_file_name(doc: &str) -> String {
    let escaped = path_escape(doc);
    if escaped.is_empty() {
        format!("_{DOC_EXT}")
    } else {
        format!("{escaped}{DOC_EXT}")
    }
}

/// The document a file holds, as the upstream import decides it: the name without `.jsonl`,
/// unescaped; `None` (the file is skipped) for other files, `.jsonl` alone, or a bad escape.
pub fn doc_from_file_name(file: &str) -> Option<String> {
    let base = file.strip_suffix(DOC_EXT)?;
    if base.is_empty() {
        return None;
    }
    path_unescape(base)
}

/// The folder of a collection: `DIR/<collection>` with `/` separating nested folders. Names
/// that a folder path cannot give back unchanged (an empty, `.` or `..` component, which the
/// upstream's `filepath.Join` would fold, sending `..` outside DIR) are refused.
pub fn collection_dir(root: &Path, col: &str) -> Result<PathBuf, Error> {
    let mut dir = root.to_path_buf();
    for part in col.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\0') {
            return Err(Error::Usage(format!(
                "collection {col:?} cannot be stored as a folder: a name with an empty, '.' or '..' part between slashes would not come back unchanged"
            )));
        }
        dir.push(part);
    }
    Ok(dir)
}

/// Why a name was left out of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unstorable {
    /// A collection whose name a folder cannot give back ([`collection_dir`]).
    NotAFolder,
    /// A file name longer than the file system takes (`NAME_MAX`, from `pathconf`).
    NameOver { bytes: usize, max: usize },
    /// A name or path the file system refused as too long (`ENAMETOOLONG`).
    Refused,
}

impl Unstorable {
    /// Whether this is a name too long for the file system (the other reason is the folder).
    pub fn too_long(self) -> bool {
        !matches!(self, Unstorable::NotAFolder)
    }
}

impl std::fmt::Display for Unstorable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unstorable::NotAFolder => f.write_str(
                "it cannot be stored as a folder (an empty, '.' or '..' part between slashes would not come back unchanged)",
            ),
            Unstorable::NameOver { bytes, max } => write!(
                f,
                "its file name would be {bytes} bytes, over the file system's limit of {max}"
            ),
            Unstorable::Refused => f.write_str(
                "the file system refused its file name or path as too long (ENAMETOOLONG)",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_go_makes_them() {
        assert_eq!(path_escape("a b/c%d"), "a%20b%2Fc%25d");
        assert_eq!(path_escape("$&+:=@-_.~;,?#"), "$&+:=@-_.~%3B%2C%3F%23");
        assert_eq!(path_escape("é"), "%C3%A9");
        assert_eq!(doc_file_name(""), "_.jsonl");
        assert_eq!(doc_file_name(".."), "...jsonl");
        assert_eq!(doc_from_file_name("...jsonl").as_deref(), Some(".."));
        assert_eq!(doc_from_file_name("a%2fb.jsonl").as_deref(), Some("a/b"));
        assert_eq!(doc_from_file_name("_.jsonl").as_deref(), Some("_"));
        assert_eq!(doc_from_file_name(".jsonl"), None);
        assert_eq!(doc_from_file_name("a%zz.jsonl"), None);
        assert_eq!(doc_from_file_name("key_value.json"), None);
        for name in ["a b", "x/y/../z", "100%", "ñandú 東京", "+&=", ""] {
            if !name.is_empty() {
                assert_eq!(path_unescape(&path_escape(name)).as_deref(), Some(name));
            }
        }
        assert!(collection_dir(Path::new("d"), "a/b")
            .unwrap()
            .ends_with("a/b"));
        assert!(collection_dir(Path::new("d"), "a/../b").is_err());
        assert!(collection_dir(Path::new("d"), "/a").is_err());
        assert!(collection_dir(Path::new("d"), "..").is_err());
    }
}
