//! One `qdoc` answer turned into archive lines. The answer
//! `{"id":"…","records":[{"ts":N,"data":"…"},…]}` becomes, per record,
//! `{"ts":N,"doc":"…","data":"…"}` and a newline, exactly as the upstream's Go encoder writes
//! it: the timestamp's digits and the `data` token are copied from the answer as they are (a
//! token with `<`, `>`, `&`, U+2028 or U+2029 gets Go's extra escaping), and the `doc` part is
//! made once per document.
//!
//! The answer as our server writes it is read in one pass with no decoder and no allocation
//! per record; any other shape (white space, another member order, an escape the scan does not
//! know) is decoded with serde_json instead, which also reports what is wrong with it.

use super::avx2::Avx2;
use super::output::go_escape_into;
use super::scan::{leading_digits, token_len_in, Lanes, Sse2};
use super::Error;
use serde::Deserialize;
use serde_json::value::RawValue;

/// What one answer held.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    /// Records in the answer (lines appended).
    pub records: usize,
    /// The largest timestamp among them; `None` for an empty answer.
    pub last_ts: Option<i64>,
}

/// The `,"doc":"…"` part of every line of document `doc`, as Go writes it.
pub fn doc_part(doc: &str) -> Vec<u8> {
    let mut quoted = String::new();
    super::output::push_json_str(&mut quoted, doc);
    let mut part = b",\"doc\":".to_vec();
    go_escape_into(quoted.as_bytes(), &mut part);
    part
}

/// Appends the archive lines of the records in `answer` to `out`; `doc_part` is what
/// [`doc_part`] made for the document. On an error `out` is left as it was.
pub fn append_lines(answer: &[u8], doc_part: &[u8], out: &mut Vec<u8>) -> Result<Page, Error> {
    let start = out.len();
    if let Some(page) = scan_answer(answer, doc_part, out) {
        return Ok(page);
    }
    out.truncate(start);
    let answer = std::str::from_utf8(answer)
        .map_err(|_| Error::Server("an answer that is not UTF-8".into()))?;
    let decoded = decode_answer(answer, doc_part, out);
    if decoded.is_err() {
        out.truncate(start);
    }
    decoded
}

/// The one-pass reader: `None` as soon as the answer is not in the expected shape (what it
/// appended so far is then to be dropped). Two copies per record: the doc part, and the
/// answer's bytes between two timestamps' ends. Timestamps are taken as digits (a negative one
/// sends the answer to the decoder); only the largest is turned into a number.
fn scan_answer(bytes: &[u8], doc_part: &[u8], out: &mut Vec<u8>) -> Option<Page> {
    match Avx2::detect() {
        Some(avx2) => avx2.run(|lanes| scan_answer_in(lanes, bytes, doc_part, out)),
        None => scan_answer_in(Sse2, bytes, doc_part, out),
    }
}

/// [`scan_answer`] with the string tokens scanned in blocks of `B` bytes by `lanes`.
#[inline(always)]
fn scan_answer_in<const B: usize, L: Lanes<B>>(
    lanes: L,
    bytes: &[u8],
    doc_part: &[u8],
    out: &mut Vec<u8>,
) -> Option<Page> {
    let token_len = |b: &[u8]| token_len_in(lanes, b);
    let rest = literal(bytes, b"{\"id\":")?;
    let (id_len, id_special) = token_len(rest)?;
    if id_special {
        return None;
    }
    let mut rest = literal(rest.get(id_len..)?, b",\"records\":[")?;
    if rest == b"]}" {
        return Some(Page {
            records: 0,
            last_ts: None,
        });
    }
    out.reserve(rest.len() + rest.len() / 2);
    // Where a piece of the answer that runs to its end starts in it.
    let at = |piece: &[u8]| bytes.len() - piece.len();
    // The answer is copied in runs from one record's timestamp to the next one's: the run
    // holds `,"data":"…"}`, the comma between the records (made the newline) and `{"ts":N`;
    // the doc part goes between runs. Up to here the answer is copied.
    let mut copied = at(rest);
    let mut records = 0;
    let mut largest: &[u8] = b"";
    loop {
        let record = at(rest);
        let (ts, after_ts) = digits(literal(rest, b"{\"ts\":")?)?;
        let ts_end = at(after_ts);
        let data = literal(after_ts, b",\"data\":")?;
        let (data_len, special) = token_len(data)?;
        let after = literal(data.get(data_len..)?, b"}")?;
        let run = out.len();
        out.extend_from_slice(bytes.get(copied..ts_end)?);
        if records > 0 {
            // The comma before this record is in the run (`copied` is at most there).
            *out.get_mut(run + (record - 1).checked_sub(copied)?)? = b'\n';
        }
        out.extend_from_slice(doc_part);
        copied = ts_end;
        if special {
            // Outside ASCII, or to be rewritten: checked as UTF-8 here (the answer is not
            // checked as a whole; every other byte of it was found to be ASCII).
            let token = data.get(..data_len)?;
            std::str::from_utf8(token).ok()?;
            out.extend_from_slice(bytes.get(ts_end..at(data))?);
            go_escape_into(token, out);
            out.push(b'}');
            copied = at(after);
        }
        records += 1;
        if larger(ts, largest) {
            largest = ts;
        }
        match literal(after, b",") {
            Some(next) => rest = next,
            None if after == b"]}" => {
                out.extend_from_slice(bytes.get(copied..at(after))?);
                out.push(b'\n');
                break;
            }
            None => return None,
        }
    }
    Some(Page {
        records,
        last_ts: Some(std::str::from_utf8(largest).ok()?.parse().ok()?),
    })
}

/// What follows `lit` at the start of `s`. The literals are a few bytes long and known when
/// compiling, so this is a compare or two where `strip_prefix` calls `memcmp` per record.
#[inline(always)]
fn literal<'a, const N: usize>(s: &'a [u8], lit: &[u8; N]) -> Option<&'a [u8]> {
    let head = s.first_chunk::<N>()?;
    if head == lit {
        s.get(N..)
    } else {
        None
    }
}

/// Whether the run of digits `a` spells a larger number than `b` (neither with a leading zero,
/// so a longer run is larger).
#[inline(always)]
fn larger(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return a.len() > b.len();
    }
    // Without a call to `memcmp` per record: runs of up to 7 digits are compared as the
    // numbers they spell; for runs of 8 to 16 (every millisecond timestamp) the first and the
    // last eight bytes, read as big-endian words, order them as comparing byte by byte would.
    let small = |d: &[u8]| d.iter().fold(0u32, |n, &c| n * 10 + u32::from(c - b'0'));
    let words = |d: &[u8]| Some((*d.first_chunk::<8>()?, *d.last_chunk::<8>()?));
    match (a.len(), words(a), words(b)) {
        (..8, _, _) => small(a) > small(b),
        (..=16, Some((ah, at)), Some((bh, bt))) => {
            let word = u64::from_be_bytes;
            (word(ah), word(at)) > (word(bh), word(bt))
        }
        _ => a > b,
    }
}

/// The digits of a non-negative integer in JSON (no leading zero) at the start of `s`, and
/// what follows them.
#[inline(always)]
fn digits(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = leading_digits(b);
    let valid = i == 1 || (i > 1 && b[0] != b'0');
    valid.then(|| b.split_at(i))
}

/// The slow path: the answer decoded with serde_json, the lines written from the decoded
/// records (the `data` token still copied as the answer holds it).
fn decode_answer(answer: &str, doc_part: &[u8], out: &mut Vec<u8>) -> Result<Page, Error> {
    #[derive(Deserialize)]
    struct Answer<'a> {
        #[serde(borrow)]
        records: Vec<Record<'a>>,
    }
    #[derive(Deserialize)]
    struct Record<'a> {
        ts: i64,
        #[serde(borrow)]
        data: &'a RawValue,
    }
    let answer: Answer =
        serde_json::from_str(answer).map_err(|e| Error::Server(format!("invalid answer: {e}")))?;
    let mut page = Page {
        records: 0,
        last_ts: None,
    };
    for r in answer.records {
        let data = r.data.get();
        if !data.starts_with('"') {
            return Err(Error::Server("a record's data is not a string".into()));
        }
        out.extend_from_slice(format!("{{\"ts\":{}", r.ts).as_bytes());
        out.extend_from_slice(doc_part);
        out.extend_from_slice(b",\"data\":");
        go_escape_into(data.as_bytes(), out);
        out.extend_from_slice(b"}\n");
        page.records += 1;
        page.last_ts = Some(page.last_ts.map_or(r.ts, |last| last.max(r.ts)));
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(answer: &str, doc: &str) -> Result<(String, Page), Error> {
        let mut out = b"before\n".to_vec();
        let page = append_lines(answer.as_bytes(), &doc_part(doc), &mut out)?;
        let text = String::from_utf8(out).map_err(|_| Error::Internal("not UTF-8"))?;
        Ok((text, page))
    }

    #[test]
    fn lines_of_an_answer_as_the_server_writes_it() {
        let (text, page) = lines(
            r#"{"id":"7","records":[{"ts":1,"data":"plain"},{"ts":22,"data":"a<b & \"c\" \u2028"},{"ts":3000000000000,"data":"ok"}]}"#,
            "d<1>",
        )
        .unwrap();
        assert_eq!(
            text,
            "before\n\
             {\"ts\":1,\"doc\":\"d\\u003c1\\u003e\",\"data\":\"plain\"}\n\
             {\"ts\":22,\"doc\":\"d\\u003c1\\u003e\",\"data\":\"a\\u003cb \\u0026 \\\"c\\\" \\u2028\"}\n\
             {\"ts\":3000000000000,\"doc\":\"d\\u003c1\\u003e\",\"data\":\"ok\"}\n"
        );
        assert_eq!(
            page,
            Page {
                records: 3,
                last_ts: Some(3_000_000_000_000)
            }
        );
        // Raw U+2028 and U+2029 in the answer are escaped; another E2 character is not.
        let (text, _) = lines(
            "{\"id\":\"1\",\"records\":[{\"ts\":5,\"data\":\"\u{2028}\u{2029}\u{2026}\"}]}",
            "d",
        )
        .unwrap();
        assert_eq!(
            text,
            "before\n{\"ts\":5,\"doc\":\"d\",\"data\":\"\\u2028\\u2029\u{2026}\"}\n"
        );
        let (text, page) = lines(r#"{"id":"9","records":[]}"#, "d").unwrap();
        assert_eq!(
            (text.as_str(), page.records, page.last_ts),
            ("before\n", 0, None)
        );
    }

    #[test]
    fn the_one_pass_reader_agrees_with_the_decoder() {
        // Answers of 1 to 5 records, each record's data plain, with Go's specials, with
        // escaped quotes or long, in every mix: the one-pass reader (which copies runs from
        // one timestamp to the next) writes what the decoder writes.
        let datas = [
            r#""p""#,
            r#""a<b&c>""#,
            r#""{\"seq\":1,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxx\"}""#,
            "\"\u{2028}\"",
            r#""""#,
        ];
        let mut checked = 0;
        for n in 1..=5usize {
            for mix in 0..datas.len().pow(n as u32) {
                let mut answer = String::from(r#"{"id":"3","records":["#);
                let mut m = mix;
                for k in 0..n {
                    if k > 0 {
                        answer.push(',');
                    }
                    let data = datas[m % datas.len()];
                    m /= datas.len();
                    answer.push_str(&format!(r#"{{"ts":{},"data":{data}}}"#, 1000 + k * 7));
                }
                answer.push_str("]}");
                let part = doc_part("doc&");
                let mut fast = b"x".to_vec();
                let page = scan_answer(answer.as_bytes(), &part, &mut fast).unwrap();
                // Both block widths read it the same way.
                let mut sse2 = b"x".to_vec();
                let narrow = scan_answer_in(Sse2, answer.as_bytes(), &part, &mut sse2);
                assert_eq!((narrow.as_ref(), &sse2), (Some(&page), &fast), "{answer}");
                let mut slow = b"x".to_vec();
                assert_eq!(decode_answer(&answer, &part, &mut slow).unwrap(), page);
                assert_eq!(
                    String::from_utf8(fast).unwrap(),
                    String::from_utf8(slow).unwrap(),
                    "{answer}"
                );
                assert_eq!(page.records, n);
                checked += 1;
            }
        }
        assert_eq!(checked, 5 + 25 + 125 + 625 + 3125);
    }

    #[test]
    fn other_shapes_are_decoded_to_the_same_lines() {
        let fast = lines(
            r#"{"id":"7","records":[{"ts":1,"data":"x<"},{"ts":-4,"data":"y"}]}"#,
            "d",
        )
        .unwrap();
        for other in [
            r#"{"id":"7", "records":[{"ts":1,"data":"x<"},{"ts":-4,"data":"y"}]}"#,
            r#"{"records":[{"data":"x<","ts":1},{"ts":-4,"data":"y"}],"id":"7"}"#,
            r#"{"id":"7","records":[{"ts":1,"data":"x\u003c"},{"ts":-4,"data":"y"}]}"#,
        ] {
            let slow = lines(other, "d").unwrap();
            assert_eq!(slow.1, fast.1, "{other}");
            if !other.contains("\\u003c") {
                assert_eq!(slow.0, fast.0, "{other}");
            }
        }
        assert_eq!(
            fast.1,
            Page {
                records: 2,
                last_ts: Some(1)
            }
        );
    }

    #[test]
    fn a_bad_answer_is_an_error_and_writes_nothing() {
        for bad in [
            r#"{"id":"7","records":[{"ts":1,"data":"x"},{"ts":2,"data":5}]}"#,
            r#"{"id":"7","records":[{"ts":1,"data":"x"},{"ts":"2","data":"y"}]}"#,
            r#"{"id":"7","records":[{"ts":99999999999999999999,"data":"x"}]}"#,
            r#"{"id":"7","records":[{"ts":1,"data":"x"}"#,
            r#"{"id":"7","records":[{"ts":1,"data":"x"}]} trailing"#,
            "",
        ] {
            let mut out = b"kept".to_vec();
            assert!(
                append_lines(bad.as_bytes(), &doc_part("d"), &mut out).is_err(),
                "{bad}"
            );
            assert_eq!(out, b"kept", "{bad}");
        }
    }

    #[test]
    fn bytes_outside_ascii_are_checked_as_utf8() {
        // Valid text outside ASCII is copied as it is, in any block position.
        for pad in 0..20 {
            let data = format!("{}ñandú 東京 😀", "x".repeat(pad));
            let answer = format!(r#"{{"id":"1","records":[{{"ts":5,"data":"{data}"}}]}}"#);
            let mut out = Vec::new();
            append_lines(answer.as_bytes(), &doc_part("d"), &mut out).unwrap();
            let want = format!("{{\"ts\":5,\"doc\":\"d\",\"data\":\"{data}\"}}\n");
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
        // A byte that is not UTF-8 in a record's data, or in the id, is refused.
        for bad in [
            &b"{\"id\":\"1\",\"records\":[{\"ts\":5,\"data\":\"ab\xff\"}]}"[..],
            b"{\"id\":\"1\",\"records\":[{\"ts\":5,\"data\":\"\xc3\"}]}",
            b"{\"id\":\"1\xe9\",\"records\":[]}",
        ] {
            let mut out = b"kept".to_vec();
            let err = append_lines(bad, &doc_part("d"), &mut out).unwrap_err();
            assert_eq!(err.to_string(), "an answer that is not UTF-8");
            assert_eq!(out, b"kept");
        }
    }

    #[test]
    fn digit_runs_compare_as_numbers() {
        let runs = [
            "0",
            "7",
            "10",
            "99",
            "1234567",
            "9999999",
            "10000000",
            "12345678",
            "12345679",
            "99999999",
            "100000000",
            "1764990000000",
            "1764990000001",
            "1764990000010",
            "1765000000000",
            "9999999999999999",
            "10000000000000000",
            "10000000000000001",
            "9223372036854775807",
        ];
        for a in runs {
            for b in runs {
                let numbers = a.parse::<u64>().unwrap() > b.parse::<u64>().unwrap();
                assert_eq!(larger(a.as_bytes(), b.as_bytes()), numbers, "{a} > {b}");
            }
            assert!(larger(a.as_bytes(), b""), "{a}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(digits(b"12,"), Some((&b"12"[..], &b","[..])));
        assert_eq!(digits(b"0}"), Some((&b"0"[..], &b"}"[..])));
        assert_eq!(digits(b"012"), None);
        assert_eq!(digits(b"-12"), None);
        assert_eq!(digits(b"x"), None);
        // The largest, in whatever order, and the limits of an i64.
        let (_, page) = lines(
            r#"{"id":"1","records":[{"ts":9,"data":"a"},{"ts":100,"data":"b"},{"ts":99,"data":"c"}]}"#,
            "d",
        )
        .unwrap();
        assert_eq!(page.last_ts, Some(100));
        let max = format!(
            r#"{{"id":"1","records":[{{"ts":{},"data":"a"}}]}}"#,
            i64::MAX
        );
        assert_eq!(lines(&max, "d").unwrap().1.last_ts, Some(i64::MAX));
        let (text, page) = lines(
            r#"{"id":"1","records":[{"ts":-3,"data":"a"},{"ts":-2,"data":"b"}]}"#,
            "d",
        )
        .unwrap();
        assert_eq!(page.last_ts, Some(-2));
        assert_eq!(
            text,
            "before\n{\"ts\":-3,\"doc\":\"d\",\"data\":\"a\"}\n{\"ts\":-2,\"doc\":\"d\",\"data\":\"b\"}\n"
        );
    }
}
