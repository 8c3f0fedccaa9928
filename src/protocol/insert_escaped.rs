//! The one-pass reader of an `ins` batch straight out of the envelope's `data` string, still
//! escaped: the batches the SDKs send (see [`super::insert_scan`]) without first un-escaping the
//! whole of `data` into a copy and reading that copy again.
//!
//! Inside the envelope's string a batch's structural quotes arrive as `\"` and each record's
//! data, which the SDKs write as the store escapes it, arrives escaped once more: `\\\"` for its
//! `\"`, `\\n` for its `\n`. Un-escaping those once gives the record's data in the stored form,
//! borrowed from the request when it holds no escape at all.

use super::batch_spare;
use super::insert_scan;
use super::payload::NewRecord;
use super::record_data::RecordData;
use super::scan::{canonical_escape, integer};
use super::spelling::{in_envelope, object, plain_string, InEnvelope, Spelling};
use crate::{short_copy, text};
use std::borrow::Cow;

/// The JSON string starting at `i` (its opening quote) read as an `ins` batch: its records, its
/// body (still escaped) and the position after it; `None` for anything but the shape below, and
/// then the caller un-escapes the string and hands the text to the readers that decide.
///
/// The shape: an array of objects whose members are exactly `col`, `doc`, `ts` and `data`, in
/// any order, each once, with nothing but spaces between tokens; the names plain (no escape, 1
/// to 4,096 bytes), `ts` a positive JSON integer, and `data` spelled as the store escapes it.
/// What it reads is exactly what [`super::insert_scan::fast_insert`] reads from the un-escaped
/// text (same records, the data in the same form).
pub(crate) fn read(frame: &str, i: usize) -> Option<(Vec<NewRecord<'_>>, &str, usize)> {
    in_envelope(frame, i, batch)
}

/// The batch's array starting at `i` (its `[`), and the position after its `]`.
fn batch(frame: &str, mut i: usize) -> Option<(Vec<NewRecord<'_>>, usize)> {
    let b = frame.as_bytes();
    if b.get(i) != Some(&b'[') {
        return None;
    }
    i = spaces(b, i + 1);
    // The thread's kept vector (see `batch_spare`); `[]` allocates nothing.
    let mut out = Vec::new();
    if b.get(i) != Some(&b']') {
        out = batch_spare::take();
        loop {
            let (record, next) = record(frame, i)?;
            out.push(record);
            i = spaces(b, next);
            match b.get(i) {
                Some(b',') => i = spaces(b, i + 1),
                Some(b']') => break,
                _ => return None,
            }
        }
    }
    Some((out, i + 1))
}

/// The position of the first byte at or after `i` that is not a space (the one white-space
/// character that may stand in a JSON string as it is).
fn spaces(b: &[u8], i: usize) -> usize {
    InEnvelope::skip_ws(b, i)
}

/// A string without escapes inside the envelope's string (`\"…\"`) starting at `i`: its text
/// and the position after it.
fn name(frame: &str, i: usize) -> Option<(&str, usize)> {
    plain_string::<InEnvelope>(frame, i)
}

/// One record's object starting at `i` (its `{`), and the position after its `}`.
fn record(frame: &str, i: usize) -> Option<(NewRecord<'_>, usize)> {
    let (mut col, mut doc, mut ts, mut data) = (None, None, None, None);
    let end = object::<InEnvelope>(frame, i, |key, at| match key {
        "ts" if ts.is_none() => {
            let (v, next) = integer(frame.as_bytes(), at)?;
            ts = Some(v);
            Some(next)
        }
        "data" if data.is_none() => {
            let (v, next) = record_data(frame, at)?;
            data = Some(v);
            Some(next)
        }
        "col" | "doc" => {
            let (v, next) = name(frame, at)?;
            let slot = if key == "col" { &mut col } else { &mut doc };
            slot.replace(Cow::Borrowed(v)).is_none().then_some(next)
        }
        _ => None,
    })?;
    Some((insert_scan::record(col, doc, ts, data)?, end))
}

/// A record's data inside the envelope's string (`\"…\"`) starting at `i`, when un-escaping
/// it once gives the data exactly as the store escapes it: that form, and the position after
/// it.
fn record_data(frame: &str, i: usize) -> Option<(RecordData<'_>, usize)> {
    let b = frame.as_bytes();
    if b.get(i..i + 2) != Some(b"\\\"") {
        return None;
    }
    let start = i + 2;
    // Where the part not yet copied into `owned` starts (only once there is an escape).
    let mut run = start;
    let mut owned: Option<String> = None;
    let mut j = start;
    loop {
        // Byte by byte: the runs between a JSON text's escapes are a few bytes.
        while !text::needs_escape(*b.get(j)?) {
            j += 1;
        }
        // The sequence the data holds at this point, once un-escaped: a quote (`\"`), its end,
        // or a backslash (`\\`) and the rest of one of its escapes. The data's own quotes and
        // backslashes (`\\\"`, `\\\\`: JSON text's common escapes) are matched whole first.
        let (seq, used) = match b.get(j..j + 4) {
            Some(b"\\\\\\\"") => ("\\\"", 4),
            Some(b"\\\\\\\\") => ("\\\\", 4),
            _ => match (b.get(j)?, b.get(j + 1)?, b.get(j + 2)) {
                (b'\\', b'"', _) => break,
                // A backslash and then the quote that ends the envelope's string, or a
                // backslash and a broken escape.
                (b'\\', b'\\', Some(b'"' | b'\\')) => return None,
                // `\` (the first backslash un-escaped) and what follows as it is: a letter,
                // or `u` and four digits, which the envelope's string holds unchanged.
                (b'\\', b'\\', Some(_)) => {
                    let n = canonical_escape(&b[j + 1..])?;
                    (&frame[j + 1..j + 1 + n], 1 + n)
                }
                // A quote ends the envelope's string; a control character is not JSON.
                _ => return None,
            },
        };
        let s = owned.get_or_insert_with(|| batch_spare::string(j - start + 64));
        short_copy::push_str(s, &frame[run..j]);
        short_copy::push_str(s, seq);
        j += used;
        run = j;
    }
    let data = match owned {
        None => RecordData::Escaped(&frame[start..j]),
        Some(mut s) => {
            short_copy::push_str(&mut s, &frame[run..j]);
            RecordData::EscapedOwned(s)
        }
    };
    Some((data, j + 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::fields::MAX_NAME_BYTES;
    use crate::protocol::insert_scan::fast_insert;
    use crate::protocol::scan::string;

    /// `batch` as the envelope's `data` string (what JSON encoders write for it), read both
    /// ways: straight, and un-escaped then read by `fast_insert`.
    fn both(
        batch: &str,
    ) -> (
        Option<Vec<NewRecord<'static>>>,
        Option<Vec<NewRecord<'static>>>,
    ) {
        let quoted = serde_json::to_string(batch).unwrap();
        let framed = format!("{quoted} ");
        let straight = read(&framed, 0).map(|(records, body, next)| {
            assert_eq!(next, quoted.len(), "{quoted}");
            assert_eq!(body, &quoted[1..quoted.len() - 1]);
            owned(records)
        });
        let (text, _) = string(&framed, 0).unwrap();
        (straight, fast_insert(&text).map(owned))
    }

    fn owned(records: Vec<NewRecord<'_>>) -> Vec<NewRecord<'static>> {
        use crate::protocol::into_static::IntoStatic;
        records.into_iter().map(IntoStatic::into_static).collect()
    }

    /// The records' data in the form the store takes, to tell escaped from text.
    fn forms(batch: &str) -> (Vec<String>, Vec<String>) {
        let quoted = serde_json::to_string(batch).unwrap();
        let (straight, _, _) = read(&quoted, 0).unwrap();
        let (text, _) = string(&quoted, 0).unwrap();
        let slow = fast_insert(&text).unwrap();
        let show = |r: &NewRecord<'_>| format!("{:?}", r.data.incoming());
        (
            straight.iter().map(show).collect(),
            slow.iter().map(show).collect(),
        )
    }

    #[test]
    fn reads_what_the_sdks_send_as_fast_insert_reads_it() {
        let long = "x".repeat(100);
        let mut datas: Vec<String> = (0u32..0x80)
            .chain([0xe9, 0x2028, 0x1f600])
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}{c}b"))
            .collect();
        datas.extend([
            String::new(),
            long.clone(),
            format!(r#"{{"seq":1,"pad":"{long}"}}"#),
            "\"\\\n\u{1f}\t\r\u{8}\u{c}é😀".into(),
            r#"{"a":"{\"b\":\"\\\"\"}"}"#.into(),
        ]);
        for d in &datas {
            let batch = serde_json::json!([
                {"ts": 1, "doc": "dév", "data": d, "col": "c"},
                {"col": "c", "doc": "d2", "ts": i64::MAX, "data": d},
            ])
            .to_string();
            let (straight, slow) = both(&batch);
            assert!(straight.is_some(), "declined {batch}");
            assert_eq!(straight, slow, "{batch}");
            let (a, b) = forms(&batch);
            assert_eq!(a, b, "{batch}");
        }
        for batch in [
            "[]",
            " [ ] ",
            r#" [ { "col" : "c" , "doc" : "d" , "ts" : 5 , "data" : "x" } , {"col":"c","doc":"d","ts":6,"data":""} ] "#,
            r#"[{"col":"c","doc":"d","ts":5,"data":"a\u0001\u001fb"}]"#,
        ] {
            let (straight, slow) = both(batch);
            assert!(straight.is_some(), "declined {batch}");
            assert_eq!(straight, slow, "{batch}");
        }
    }

    #[test]
    fn declines_every_other_spelling() {
        let long_name = "n".repeat(MAX_NAME_BYTES + 1);
        let batches = [
            // Other spellings of valid batches: `fast_insert` or the general reader decides.
            r#"[{"col":"c","doc":"d","ts":1,"data":"a\/b"}]"#.to_string(),
            r#"[{"col":"c","doc":"d","ts":1,"data":"\u00e9"}]"#.into(),
            r#"[{"col":"c","doc":"d","ts":1,"data":"\u000a"}]"#.into(),
            r#"[{"col":"c","doc":"d","ts":1,"data":"\u001F"}]"#.into(),
            r#"[{"col":"c","doc":"d\"q","ts":1,"data":"x"}]"#.into(),
            r#"[{"col":"c","doc":"d","ts":1,"data":"x","ts":2}]"#.into(),
            r#"[{"col":"c","doc":"d","ts":1,"data":"x","data":"y"}]"#.into(),
            r#"[{"col":"c","doc":"d","doc":"e","ts":1,"data":"x"}]"#.into(),
            "[{\"col\":\"c\",\"doc\":\"d\",\"ts\":1,\n\"data\":\"x\"}]".into(),
            "[{\"col\":\"c\",\"doc\":\"d\",\"ts\":1,\t\"data\":\"x\"}]".into(),
            // Refused by the rules: the general reader words the error.
            r#"[{"col":"","doc":"d","ts":1,"data":"x"}]"#.into(),
            format!(r#"[{{"col":"c","doc":"{long_name}","ts":1,"data":"x"}}]"#),
            r#"[{"col":"c","doc":"d","ts":0,"data":"x"}]"#.into(),
            r#"[{"col":"c","doc":"d","ts":-1,"data":"x"}]"#.into(),
            r#"[{"col":"c","doc":"d","ts":1.5,"data":"x"}]"#.into(),
            r#"[{"col":"c","doc":"d","ts":"1","data":"x"}]"#.into(),
            r#"[{"col":"c","doc":"d","ts":1,"data":{"v":1}}]"#.into(),
            r#"[{"col":"c","doc":"d","ts":1,"data":5}]"#.into(),
            r#"[{"col":"c","doc":"d","ts":1}]"#.into(),
            r#"[{"col":"c","doc":"d","ts":1,"data":"x","x":1}]"#.into(),
            r#"[{"col":"c","doc":"d","ts":1,"data":"x"},]"#.into(),
            r#"[{"col":"c","doc":"d","ts":1,"data":"x"}] x"#.into(),
            r#"[{"col":"c","doc":"d","ts":1,"data":"x"}"#.into(),
            r#"[1]"#.into(),
            r#"{}"#.into(),
            // Not JSON once un-escaped.
            r#"[{"col":"c","doc":"d","ts":1,"data":"x\q"}]"#.into(),
            r#"[{"col":"c","doc":"d","ts":1,"data":"x\u00"}]"#.into(),
            "[{\"col\":\"c\",\"doc\":\"d\",\"ts\":1,\"data\":\"a\nb\"}]".into(),
        ];
        for batch in &batches {
            let quoted = serde_json::to_string(batch).unwrap();
            assert!(read(&quoted, 0).is_none(), "read {batch}");
        }
    }

    #[test]
    fn never_reads_past_its_string_or_a_broken_one() {
        let batch = r#"[{"ts":1,"doc":"d","data":"{\"a\":\"\\\u0001\"}","col":"c"}]"#;
        let quoted = serde_json::to_string(batch).unwrap();
        assert!(read(&quoted, 0).is_some());
        for cut in 0..quoted.len() {
            assert!(read(&quoted[..cut], 0).is_none(), "{}", &quoted[..cut]);
        }
        // Escaped twice over: the envelope's string would hold a quote where it ends.
        let raw = r#""[{\"ts\":1,\"doc\":\"d\",\"data\":\"x"y\",\"col\":\"c\"}]""#;
        assert!(read(raw, 0).is_none());
        // Only `\"` and `\\` outside a record's escapes: `\/` and `\u0022` are other spellings.
        for raw in [
            r#""[{\"ts\":1,\"doc\":\"d\/e\",\"data\":\"x\",\"col\":\"c\"}]""#,
            r#""[{\"ts\":1,\"doc\":\"d\",\"data\":\"x\u0022,\"col\":\"c\"}]""#,
            r#""[{\u0022ts\":1,\"doc\":\"d\",\"data\":\"x\",\"col\":\"c\"}]""#,
            // A backslash of the data and then a broken escape of the envelope's string.
            r#""[{\"ts\":1,\"doc\":\"d\",\"data\":\"x\\\q\",\"col\":\"c\"}]""#,
            r#""[{\"ts\":1,\"doc\":\"d\",\"data\":\"x\\\"#,
        ] {
            assert!(read(raw, 0).is_none(), "{raw}");
        }
    }
}
