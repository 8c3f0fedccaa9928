//! The one-pass reader of the `ins` batches the SDKs send (see [`super::scan`]).

use super::fields::is_name;
use super::payload::NewRecord;
use super::record_data::RecordData;
use super::scan::{canonical_string, integer, skip_ws, string};
use std::borrow::Cow;

/// The `ins` batches the SDKs send — an array of objects with exactly `col`, `doc`, `ts` (a JSON
/// integer) and `data` as strings, every rule satisfied — read in one pass. `None` for anything
/// else: the general reader then decides, with its exact errors.
pub(crate) fn fast_insert(data: &str) -> Option<Vec<NewRecord<'_>>> {
    let b = data.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut out = Vec::new();
    i = skip_ws(b, i + 1);
    if b.get(i) != Some(&b']') {
        loop {
            if b.get(i) != Some(&b'{') {
                return None;
            }
            let (mut col, mut doc, mut ts, mut value) = (None, None, None, None);
            i += 1;
            loop {
                let (key, next) = string(data, skip_ws(b, i))?;
                i = skip_ws(b, next);
                if b.get(i) != Some(&b':') {
                    return None;
                }
                i = skip_ws(b, i + 1);
                if &*key == "ts" {
                    let (v, next) = integer(b, i)?;
                    ts = Some(v);
                    i = next;
                } else if &*key == "data" {
                    // Kept escaped when it is spelled as the store escapes it (as every JSON
                    // encoder of the SDKs spells it): stored without un-escaping it first.
                    let (v, next) = match canonical_string(data, i) {
                        Some((body, next)) => (RecordData::Escaped(body), next),
                        None => {
                            let (text, next) = string(data, i)?;
                            (RecordData::Text(text), next)
                        }
                    };
                    value = Some(v);
                    i = next;
                } else {
                    let (v, next) = string(data, i)?;
                    match &*key {
                        "col" => col = Some(v),
                        "doc" => doc = Some(v),
                        _ => return None,
                    }
                    i = next;
                }
                i = skip_ws(b, i);
                match b.get(i) {
                    Some(b',') => i += 1,
                    Some(b'}') => break,
                    _ => return None,
                }
            }
            out.push(record(col, doc, ts, value)?);
            i = skip_ws(b, i + 1);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b']') => break,
                _ => return None,
            }
        }
    }
    (skip_ws(b, i + 1) == b.len()).then_some(out)
}

/// A record of an `ins` batch from its members as a one-pass reader found them: `None` when one
/// is missing or breaks its rule (names non-empty and at most 4096 bytes, `ts` above 0).
pub(crate) fn record<'a>(
    col: Option<Cow<'a, str>>,
    doc: Option<Cow<'a, str>>,
    ts: Option<i64>,
    data: Option<RecordData<'a>>,
) -> Option<NewRecord<'a>> {
    let (col, doc, ts, data) = (col?, doc?, ts?, data?);
    (is_name(&col) && is_name(&doc) && ts > 0).then_some(NewRecord { col, doc, ts, data })
}
