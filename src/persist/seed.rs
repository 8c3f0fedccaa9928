//! One-time import of a seed (Qt) server's data folder
//! (README.md#migrating-from-the-upstream-servers) into an empty data folder. The whole folder is
//! read and checked in memory first; only then is anything written (snapshots, the key file, and
//! last a marker naming the source), so a damaged seed folder leaves the data folder untouched, and
//! a restart with the same flag finds the marker and imports nothing twice.
//!
//! Seed layout: `<seed>/<collection>/<document>/<flush-time-ms>.json` (a JSON array of
//! `{"ts", "data"}` records, or one such object), `<seed>/<collection>/key_value.json` (an
//! object of string values), `<seed>/config/api_keys.json` (key → `{"scope", "deletable"}`).
//! A document's files are applied in the order of the flush time in their names, so a later
//! file replaces records with the same timestamp (the seed used modification times, which a
//! copy of the folder loses). Other files are ignored, as the seed did.

use super::error::Error;
use super::fsutil;
use super::journal::Journal;
use crate::auth::{KeyRing, Scope};
use crate::protocol::fields::MAX_NAME_BYTES;
use crate::storage::{Backend, EntryKind, Op};
use crate::store::{Handles, Store};
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// Written into the data folder once an import is durable.
pub const MARKER: &str = "imported-seed";
/// Written (durably) before an import writes anything, removed once [`MARKER`] is durable: a
/// restart that finds it knows the folder holds part of this import and nothing else (no
/// client is served before the import ends), and imports again over it.
pub const STARTED: &str = "importing-seed";

const KEY_VALUE_FILE: &str = "key_value.json";
const KEYS_FOLDER: &str = "config";
const KEYS_FILE: &str = "api_keys.json";

#[derive(Debug)]
pub enum ImportError {
    /// Reading the seed folder or writing the data folder failed.
    Storage(Error),
    Bad(PathBuf, String),
    NotEmpty(PathBuf),
    /// The checkpoint that makes the import durable could not write every snapshot (the
    /// import is not marked done, so the next start with `--import-seed` runs it again).
    Unsaved(usize),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Storage(e) => write!(f, "importing: {e}"),
            ImportError::Bad(p, why) => write!(
                f,
                "cannot import {}: {why}; nothing was imported",
                p.display()
            ),
            ImportError::NotEmpty(dir) => write!(
                f,
                "--import-seed imports only into an empty data folder, and {} already holds \
                 data; start without --import-seed, or with an empty --data folder",
                dir.display()
            ),
            ImportError::Unsaved(n) => write!(
                f,
                "importing: {n} collection snapshot(s) could not be written (see the errors \
                 above); the import is not complete and runs again at the next start with \
                 --import-seed"
            ),
        }
    }
}

impl std::error::Error for ImportError {}

/// What an import brought in.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub collections: usize,
    pub documents: usize,
    pub records: usize,
    pub values: usize,
    pub keys: usize,
    /// Records skipped because their timestamp was not positive (the seed stored a missing
    /// `ts` as 0; this server's records have positive timestamps).
    pub skipped: usize,
}

impl From<Error> for ImportError {
    fn from(e: Error) -> ImportError {
        ImportError::Storage(e)
    }
}

fn io_err(op: Op, path: &Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
    move |e| ImportError::Storage(Error::io(op, path)(e))
}

fn bad(path: &Path, why: impl Into<String>) -> ImportError {
    ImportError::Bad(path.to_owned(), why.into())
}

/// Imports `seed` unless this data folder already did. `store` and `keys` are what recovery
/// found; they must be empty. Returns `None` when the marker says the import already happened.
pub fn import(
    journal: &Journal,
    store: &Store,
    keys: &mut Vec<(String, Scope)>,
    master: &str,
    seed: &Path,
) -> Result<Option<SeedReport>, ImportError> {
    let fs = journal.backend();
    let dir = journal.dir();
    let marker = dir.join(MARKER);
    let started = dir.join(STARTED);
    if fs.exists(&marker).map_err(io_err(Op::Stat, &marker))? {
        if fs.exists(&started).map_err(io_err(Op::Stat, &started))? {
            fs.remove_file(&started)
                .map_err(io_err(Op::Remove, &started))?;
            fsutil::sync_dir(fs, dir)?;
        }
        return Ok(None);
    }
    let resumed = fs.exists(&started).map_err(io_err(Op::Stat, &started))?;
    if resumed {
        log::warn!(
            "an earlier import of a seed folder into {} was interrupted; importing {} again",
            dir.display(),
            seed.display()
        );
    } else if !store.names().is_empty() || !keys.is_empty() {
        return Err(ImportError::NotEmpty(dir.to_owned()));
    }
    let mut report = SeedReport::default();
    let mut found_keys = Vec::new();
    read_folder(fs, seed, store, &mut found_keys, &mut report)?;
    let source = format!("seed folder {}\n", seed.display());
    if !resumed {
        fsutil::write_atomic(fs, dir, STARTED, |f| f.write_all(source.as_bytes()))?;
    }
    if !found_keys.is_empty() {
        let ring = KeyRing::new(master);
        for (key, scope) in &found_keys {
            ring.add(key, *scope);
        }
        journal.save_keys(&ring)?;
        *keys = ring.scoped();
    }
    // The imported data is in no log: until its snapshots are written, it is only in memory.
    let saved = journal.checkpoint(store)?;
    if saved.failed > 0 {
        return Err(ImportError::Unsaved(saved.failed));
    }
    let note = format!(
        "seed folder {} imported: {} collections, {} records, {} values, {} keys\n",
        seed.display(),
        report.collections,
        report.records,
        report.values,
        report.keys
    );
    fsutil::write_atomic(fs, dir, MARKER, |f| f.write_all(note.as_bytes()))?;
    fs.remove_file(&started)
        .map_err(io_err(Op::Remove, &started))?;
    fsutil::sync_dir(fs, dir)?;
    Ok(Some(report))
}

/// The entries of a folder, sorted by name, with their names as text.
fn entries(fs: &dyn Backend, dir: &Path) -> Result<Vec<(String, PathBuf, EntryKind)>, ImportError> {
    let mut out = Vec::new();
    for entry in fs.read_dir(dir).map_err(io_err(Op::ReadDir, dir))? {
        let path = dir.join(&entry.name);
        let Ok(name) = entry.name.into_string() else {
            return Err(bad(&path, "the name is not UTF-8"));
        };
        out.push((name, path, entry.kind));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn check_name(path: &Path, name: &str) -> Result<(), ImportError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(bad(path, "the name is longer than 4096 bytes"));
    }
    Ok(())
}

fn read_json(fs: &dyn Backend, path: &Path) -> Result<Value, ImportError> {
    let text = fs.read(path).map_err(io_err(Op::Read, path))?;
    serde_json::from_slice(&text).map_err(|e| bad(path, format!("not valid JSON ({e})")))
}

fn read_folder(
    fs: &dyn Backend,
    seed: &Path,
    store: &Store,
    keys: &mut Vec<(String, Scope)>,
    report: &mut SeedReport,
) -> Result<(), ImportError> {
    let handles = &mut Handles::default();
    for (col, path, kind) in entries(fs, seed)? {
        if kind != EntryKind::Dir {
            continue;
        }
        check_name(&path, &col)?;
        let mut has_content = false;
        for (name, item, kind) in entries(fs, &path)? {
            if kind == EntryKind::Dir {
                check_name(&item, &name)?;
                let records = read_document(fs, &item, report)?;
                if !records.is_empty() {
                    has_content = true;
                    report.documents += 1;
                    report.records += records.len();
                    store.write_or_create(handles, &col, |c| {
                        for (ts, data) in &records {
                            c.insert(&name, *ts, data)
                                .map_err(|_| bad(&item, "a document holds more than 4 GiB"))?;
                        }
                        Ok::<(), ImportError>(())
                    })?;
                }
            } else if name == KEY_VALUE_FILE {
                let values = string_map(&item, read_json(fs, &item)?)?;
                report.values += values.len();
                has_content |= !values.is_empty();
                store.write_or_create(handles, &col, |c| {
                    for (k, v) in &values {
                        c.set_value(k, v);
                    }
                });
            } else if col == KEYS_FOLDER && name == KEYS_FILE {
                let found = read_keys(fs, &item)?;
                report.keys += found.len();
                keys.extend(found);
            }
        }
        report.collections += usize::from(has_content);
    }
    Ok(())
}

/// A document's records, later files replacing earlier ones at equal timestamps.
fn read_document(
    fs: &dyn Backend,
    dir: &Path,
    report: &mut SeedReport,
) -> Result<Vec<(i64, String)>, ImportError> {
    let mut files: Vec<(u64, String, PathBuf)> = entries(fs, dir)?
        .into_iter()
        .filter(|(name, _, kind)| *kind == EntryKind::File && name.ends_with(".json"))
        .map(|(name, path, _)| {
            let flushed = name
                .strip_suffix(".json")
                .and_then(|stem| stem.parse().ok())
                .unwrap_or(u64::MAX);
            (flushed, name, path)
        })
        .collect();
    files.sort();
    let mut by_ts = std::collections::BTreeMap::new();
    for (_, _, path) in files {
        let records = match read_json(fs, &path)? {
            Value::Array(items) => items,
            one @ Value::Object(_) => vec![one],
            _ => return Err(bad(&path, "expected an array of records")),
        };
        for r in records {
            let ts = r.get("ts").and_then(timestamp);
            let data = r.get("data").and_then(Value::as_str);
            let (Some(ts), Some(data)) = (ts, data) else {
                return Err(bad(
                    &path,
                    "a record lacks an integer `ts` or a string `data`",
                ));
            };
            if ts <= 0 {
                report.skipped += 1;
                continue;
            }
            by_ts.insert(ts, data.to_owned());
        }
    }
    Ok(by_ts.into_iter().collect())
}

/// A timestamp as the seed wrote it: a JSON integer, or an integral number in exponent form.
fn timestamp(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let f = v.as_f64()?;
    // ±2^63 are exact as f64; 2^63 itself does not fit.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
}

fn string_map(path: &Path, v: Value) -> Result<Vec<(String, String)>, ImportError> {
    let Value::Object(map) = v else {
        return Err(bad(path, "expected an object of string values"));
    };
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) if !k.is_empty() && k.len() <= MAX_NAME_BYTES => Ok((k, s)),
            _ => Err(bad(path, "expected an object of string values")),
        })
        .collect()
}

fn read_keys(fs: &dyn Backend, path: &Path) -> Result<Vec<(String, Scope)>, ImportError> {
    let Value::Object(map) = read_json(fs, path)? else {
        return Err(bad(path, "expected an object of keys"));
    };
    map.into_iter()
        .map(|(key, entry)| {
            let scope = entry
                .get("scope")
                .and_then(Value::as_str)
                .and_then(Scope::parse);
            match scope {
                Some(scope) if !key.is_empty() && key.len() <= MAX_NAME_BYTES => Ok((key, scope)),
                _ => Err(bad(path, "a key lacks a valid `scope`")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_as_the_seed_wrote_them() {
        assert_eq!(
            timestamp(&json!(1_700_000_000_000i64)),
            Some(1_700_000_000_000)
        );
        assert_eq!(timestamp(&json!(1.7e12)), Some(1_700_000_000_000));
        assert_eq!(timestamp(&json!(-5)), Some(-5));
        assert_eq!(timestamp(&json!(1.5)), None);
        assert_eq!(timestamp(&json!(1e19)), None);
        assert_eq!(timestamp(&json!("12")), None);
    }
}
