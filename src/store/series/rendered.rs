//! A kept sealed block in the form a read answer writes its records: each record as
//! `,{"ts":<ts>,"data":"<body>"}` (its body as stored, escaped), newest first, so that `qdoc`
//! copies a record in one short run instead of writing its timestamp's digits and its data
//! piece by piece, and a page of records newest first (the usual "latest N") in one copy per
//! block (callgrind, `qdoc` newest 100: about 180 instructions a record before).
//!
//! Only blocks kept decoded (see `cache.rs`: the newest ones of a document that is read, and a
//! block read by `Series::get`) take this form; a block decoded for one scan stays columns.
//! The record's data is a slice of its rendered text, so nothing is held twice: per record the
//! form costs a bound (8 bytes: a block's text can pass 4 GiB, its records being up to the
//! message limit each), the length of its lead (1 byte) and the 19–36 bytes of
//! `,{"ts":…,"data":"` and `"}` beside the data, against the 4-byte data end of the columns.

use super::block::Decoded;
use super::ALLOC_OVERHEAD;
use crate::protocol::{encode, record_out};

/// A block's records, rendered.
#[derive(Debug, Default)]
pub struct Rendered {
    pub(super) ts: Vec<i64>,
    /// Record `i` is `text[bounds[i + 1]..bounds[i]]` (the newest record starts at 0).
    bounds: Vec<usize>,
    /// Bytes from each record's start to its data.
    leads: Vec<u8>,
    text: String,
}

impl Rendered {
    /// The records of `d`, rendered.
    pub(super) fn new(d: &Decoded) -> Rendered {
        let n = d.len();
        // Per record: the comma, `{"ts":` and at most `TAIL_EXTRA` around the data.
        let mut text = Vec::with_capacity(d.data.len() + n * (7 + record_out::TAIL_EXTRA));
        let mut bounds = vec![0usize; n + 1];
        let mut leads = vec![0u8; n];
        for i in (0..n).rev() {
            let (ts, body) = d.get(i);
            let start = text.len();
            // Written by the answer's own writer (a `qdoc` item after the first).
            encode::escaped_record_item(&mut text, false, ts, body);
            bounds[i] = text.len();
            // The comma, `{"ts":`, at most 20 bytes of digits and `,"data":"`: at most 36.
            leads[i] = (text.len() - start - body.len() - 2) as u8;
        }
        text.shrink_to_fit();
        // The text is made of `&str` bodies and ASCII pieces (digits, punctuation).
        debug_assert!(std::str::from_utf8(&text).is_ok());
        // SAFETY: every byte comes from a `&str` copied whole or from the ASCII pieces
        // `record_out` writes, so the bytes are valid UTF-8 and each record starts and ends
        // on a character boundary.
        let text = unsafe { String::from_utf8_unchecked(text) };
        Rendered {
            ts: d.ts.clone(),
            bounds,
            leads,
            text,
        }
    }

    /// Record `i`: its time and its data as stored.
    pub(super) fn get(&self, i: usize) -> (i64, &str) {
        let (ts, data, _) = self.record(i);
        (ts, data)
    }

    /// Record `i`: its time, its data as stored and its rendered text, comma first.
    #[inline(always)]
    pub(super) fn record(&self, i: usize) -> (i64, &str, &str) {
        let (ts, end, lead) = (self.ts[i], self.bounds[i], self.leads[i]);
        let start = self.bounds[i + 1];
        // SAFETY: `new` wrote the records newest first, one after another: `bounds` falls
        // from the text's length to 0, and record `i` is `bounds[i + 1]..bounds[i]`, its data
        // starting `leads[i]` bytes in and ending 2 bytes (`"}`) before its end. Every one of
        // these offsets sits beside an ASCII byte (`,`, `"`), so each slice is in bounds and
        // on character boundaries; the text is never changed after `new`.
        unsafe {
            let text = self.text.get_unchecked(start..end);
            let data = self.text.get_unchecked(start + lead as usize..end - 2);
            (ts, data, text)
        }
    }

    /// Records `hi - 1` down to `hi - k`, newest first, as one text (each comma first).
    #[inline(always)]
    pub(super) fn run(&self, hi: usize, k: usize) -> &str {
        let (start, end) = (self.bounds[hi], self.bounds[hi - k]);
        // SAFETY: as in `record`: records `hi - k..hi` lie one after another, newest first,
        // between these bounds, each beside an ASCII byte.
        unsafe { self.text.get_unchecked(start..end) }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.ts.capacity() * 8
            + self.bounds.capacity() * std::mem::size_of::<usize>()
            + self.leads.capacity()
            + self.text.capacity()
            + 4 * ALLOC_OVERHEAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(records: &[(i64, &str)]) -> Decoded {
        let mut d = Decoded::default();
        for &(ts, body) in records {
            d.push(ts, body);
        }
        d
    }

    #[test]
    fn each_record_reads_back_and_renders_as_an_answer_writes_it() {
        let records = [
            (0, ""),
            (-1, "x"),
            (1_700_000_000_000, "{\\\"seq\\\":1,\\\"pad\\\":\\\"ab\\\"}"),
            (i64::MIN, "é ü \\n"),
            (i64::MAX, &"y".repeat(300)),
            (42, "\\u0000"),
        ];
        let r = Rendered::new(&decoded(&records));
        assert_eq!(r.ts.len(), records.len());
        for (i, &(ts, body)) in records.iter().enumerate() {
            assert_eq!(r.get(i), (ts, body));
            let (t, b, text) = r.record(i);
            assert_eq!((t, b), (ts, body));
            assert_eq!(text, format!(",{{\"ts\":{ts},\"data\":\"{body}\"}}"));
        }
        // Every run newest first is its records' texts one after another.
        let n = records.len();
        for hi in 0..=n {
            for k in 0..=hi {
                let want: String = (hi - k..hi).rev().map(|i| r.record(i).2).collect();
                assert_eq!(r.run(hi, k), want, "run {hi} {k}");
            }
        }
    }

    #[test]
    fn an_empty_block_renders_to_nothing() {
        let r = Rendered::new(&Decoded::default());
        assert!(r.ts.is_empty());
        assert_eq!(r.bounds, vec![0]);
    }
}
