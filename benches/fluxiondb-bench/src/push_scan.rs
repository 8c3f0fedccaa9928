//! The `subscribe` scenario's cheap reading of a push: its kind, subscription id, `seq` and
//! record count found by scanning the frame's bytes rather than parsing its JSON, so that a
//! hundred subscribers sharing the machine with the server measure the server's delivery and
//! not their own parsing.
//!
//! The count rests on what the server's encoding guarantees: every record of a `rec` push is an
//! object whose first member is `"doc"`, so it opens with the bytes `{"doc":`. Those bytes can
//! appear nowhere else in a frame: inside a JSON string every `"` is escaped (`\"`), and a
//! string that ends in `{` is followed by `,` or `}`, never by `doc":`. So counting the `{`
//! bytes followed by `"doc":` counts the records exactly, whatever the records' data holds.
//! [`full`] parses a frame with serde_json for the same facts; the scenario compares the two on
//! a sample of the pushes it reads and the unit tests compare them on frames captured from a
//! real server (`benches/fixtures/pushes.jsonl`).

/// What kind of push a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rec,
    Del,
    Subend,
}

/// The facts the scenario checks about one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push<'a> {
    pub kind: Kind,
    /// The subscription id as it appears between its quotes (ids the server gives, `s1`, `s2`,
    /// …, need no escaping).
    pub sub: &'a [u8],
    /// `None` for a `subend`.
    pub seq: Option<u64>,
    /// The records of a `rec` push (0 for the other kinds).
    pub records: u64,
}

const REC: &[u8] = br#"{"type":"rec","sub":""#;
const DEL: &[u8] = br#"{"type":"del","sub":""#;
const SUBEND: &[u8] = br#"{"type":"subend","sub":""#;
const RECORD: &[u8] = br#"{"doc":"#;
const RECORDS: &[u8] = br#","records":["#;

/// Scans a push of collection `col` (whose name needs no escaping); `None` when the frame is
/// not a push of the expected shape.
pub fn scan<'a>(frame: &'a [u8], col: &[u8]) -> Option<Push<'a>> {
    let (kind, rest) = if let Some(r) = frame.strip_prefix(REC) {
        (Kind::Rec, r)
    } else if let Some(r) = frame.strip_prefix(DEL) {
        (Kind::Del, r)
    } else {
        let r = frame.strip_prefix(SUBEND)?;
        let end = memchr::memchr(b'"', r)?;
        let (sub, tail) = (&r[..end], &r[end..]);
        return (tail.starts_with(br#"","error":""#) && tail.ends_with(b"\"}")).then_some(Push {
            kind: Kind::Subend,
            sub,
            seq: None,
            records: 0,
        });
    };
    // Ids and collection names are a few bytes: found and compared by plain loops, which
    // cost less here than a call to a vectorised search or `memcmp`.
    let end = rest.iter().position(|&b| b == b'"')?;
    let (sub, rest) = (&rest[..end], &rest[end..]);
    let rest = rest.strip_prefix(br#"","col":""#)?;
    let (name, rest) = rest.split_at_checked(col.len())?;
    if !same(name, col) {
        return None;
    }
    let rest = rest.strip_prefix(br#"","seq":"#)?;
    let (seq, digits) = number(rest)?;
    let rest = &rest[digits..];
    let records = if kind == Kind::Rec {
        let body = rest.strip_prefix(RECORDS)?.strip_suffix(b"]}")?;
        count_records(body)
    } else {
        if !rest.ends_with(b"}") {
            return None;
        }
        0
    };
    Some(Push {
        kind,
        sub,
        seq: Some(seq),
        records,
    })
}

/// The decimal number (1 to 19 digits) `bytes` start with, and its length. The sequence
/// numbers pushes carry are 16 digits long: eight are read at a time, as one word.
fn number(bytes: &[u8]) -> Option<(u64, usize)> {
    let (mut n, mut len) = (0u64, 0);
    while len + 8 <= 16 {
        let Some(word) = bytes.get(len..len + 8).and_then(eight_digits) else {
            break;
        };
        n = n * 100_000_000 + word;
        len += 8;
    }
    while let Some(d) = bytes.get(len).filter(|b| b.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        len += 1;
    }
    (1..=19).contains(&len).then_some((n, len))
}

/// The value of eight ASCII digits, or `None` when one of the bytes is not a digit.
fn eight_digits(bytes: &[u8]) -> Option<u64> {
    let word = u64::from_le_bytes(bytes.try_into().ok()?);
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    // Every byte is 0x30..=0x39: its high nibble is 3, and stays 3 once 6 is added.
    if word & HIGH != ZEROS || word.wrapping_add(0x0606_0606_0606_0606) & HIGH != ZEROS {
        return None;
    }
    // The first digit is the lowest byte: pairs, then fours, then the eight combined.
    let v = word - ZEROS;
    let v = (v * 10 + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v * 100 + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((v * 10_000 + (v >> 32)) & 0xFFFF_FFFF)
}

/// Whether two short byte strings are equal, compared in line: eight bytes at a time from eight
/// bytes on (the last eight overlapping the word before them), byte by byte below.
#[inline]
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

/// The records in the body of a `rec` push: the `{` bytes followed by `"doc":` (see the module
/// notes). Every byte of the body is looked at, sixteen at a time with one SSE2 comparison (part
/// of every x86-64 processor): a body holds a record or a few, too short for a call to a
/// vectorised search to pay for itself. A body's last bytes are the sixteen that end it, their
/// marks before `at` (already looked at) cleared.
#[cfg(target_arch = "x86_64")]
fn count_records(body: &[u8]) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    if body.len() < 16 {
        return count_records_by_words(body);
    }
    // The `{` bytes among the sixteen from `from`, as bits.
    let braces = |from: usize| -> u32 {
        let chunk = &body[from..from + 16];
        // SAFETY: SSE2 is part of every x86-64 processor; `chunk` holds sixteen readable
        // bytes, and the load does not need them aligned.
        unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'{' as i8))) as u32
        }
    };
    let mut n = 0;
    let mut count = |from: usize, mut marks: u32| {
        while marks != 0 {
            n += u64::from(body[from + marks.trailing_zeros() as usize..].starts_with(RECORD));
            marks &= marks - 1;
        }
    };
    let mut at = 0;
    while at + 16 <= body.len() {
        count(at, braces(at));
        at += 16;
    }
    if at < body.len() {
        let from = body.len() - 16;
        count(from, braces(from) & (u32::MAX << (at - from)));
    }
    n
}

#[cfg(not(target_arch = "x86_64"))]
fn count_records(body: &[u8]) -> u64 {
    count_records_by_words(body)
}

/// [`count_records`] eight bytes at a time, in plain integer arithmetic.
fn count_records_by_words(body: &[u8]) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let opens = |i: usize| u64::from(body[i..].starts_with(RECORD));
    let mut n = 0;
    let mut words = body.chunks_exact(8);
    let mut at = 0;
    for w in &mut words {
        let x =
            u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) ^ (ONES * 0x7B);
        // A high bit for each zero byte of `x`, that is each `{` (a byte after one may be
        // marked too: `opens` checks each mark).
        let mut marks = x.wrapping_sub(ONES) & !x & HIGHS;
        while marks != 0 {
            n += opens(at + marks.trailing_zeros() as usize / 8);
            marks &= marks - 1;
        }
        at += 8;
    }
    for i in at..body.len() {
        n += opens(i);
    }
    n
}

/// A push as serde reads it: every member is parsed and checked (strings unescaped, numbers
/// read), the records only counted.
#[derive(serde::Deserialize)]
struct Parsed<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    sub: std::borrow::Cow<'a, str>,
    seq: Option<u64>,
    records: Option<Vec<serde::de::IgnoredAny>>,
}

/// The same facts from a full JSON parse, for checking [`scan`]: kind, subscription id, `seq`
/// and record count.
pub fn full(frame: &[u8]) -> Option<(Kind, String, Option<u64>, u64)> {
    let p: Parsed = serde_json::from_slice(frame).ok()?;
    let kind = match p.kind {
        "rec" => Kind::Rec,
        "del" => Kind::Del,
        "subend" => Kind::Subend,
        _ => return None,
    };
    let records = match (kind, p.records) {
        (Kind::Rec, Some(r)) => r.len() as u64,
        (Kind::Rec, None) => return None,
        _ => 0,
    };
    Some((kind, p.sub.into_owned(), p.seq, records))
}

/// Whether [`scan`] and [`full`] agree on `frame` (both refusing it counts as agreeing).
pub fn agrees(frame: &[u8], col: &[u8]) -> bool {
    let fast = scan(frame, col).map(|p| {
        (
            p.kind,
            String::from_utf8_lossy(p.sub).into_owned(),
            p.seq,
            p.records,
        )
    });
    fast == full(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes captured from a real server (see the fixture's first line).
    const CAPTURED: &str = include_str!("../../fixtures/pushes.jsonl");
    const COL: &[u8] = b"bench.live";

    fn frames() -> impl Iterator<Item = &'static [u8]> {
        CAPTURED
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(str::as_bytes)
    }

    #[test]
    fn the_scan_agrees_with_a_full_parse_on_captured_pushes() {
        let mut kinds = [0; 3];
        let mut records = 0;
        for f in frames() {
            let p = scan(f, COL).unwrap_or_else(|| panic!("not scanned: {}", lossy(f)));
            assert!(agrees(f, COL), "disagree on {}", lossy(f));
            kinds[p.kind as usize] += 1;
            records += p.records;
        }
        // The capture holds every kind, and records whose data would fool a count of braces.
        assert!(kinds.iter().all(|&k| k > 0), "{kinds:?}");
        assert!(CAPTURED.contains(r#"{\"doc\":"#));
        assert!(records > 1000);
    }

    #[test]
    fn damaged_pushes_are_refused_or_miscounted_visibly() {
        let f = frames()
            .find(|f| f.starts_with(REC) && count_records(f) > 1)
            .unwrap_or_else(|| panic!("no rec push with several records"));
        let n = scan(f, COL).map(|p| p.records);
        // A cut frame is not a push; a frame of another collection neither.
        assert_eq!(scan(&f[..f.len() - 1], COL), None);
        assert_eq!(scan(f, b"other"), None);
        // One record fewer: the count changes with it.
        let cut = memchr::memmem::rfind(f, b",{\"doc\":").unwrap_or(0);
        let shorter = [&f[..cut], &b"]}"[..]].concat();
        assert_eq!(scan(&shorter, COL).map(|p| p.records), n.map(|n| n - 1));
        assert!(agrees(&shorter, COL));
    }

    /// The sixteen- and eight-at-a-time counts against a byte-by-byte one, on bodies of every
    /// length around the chunk sizes, with braces and `"doc":` where they do not open a record.
    #[test]
    fn records_are_counted_alike_sixteen_and_eight_bytes_at_a_time() {
        let naive = |b: &[u8]| (0..b.len()).filter(|&i| b[i..].starts_with(RECORD)).count() as u64;
        let pieces: [&[u8]; 7] = [
            br#"{"doc":"a","ts":1,"data":"{x}"}"#,
            br#","#,
            br#"{"doc":"{"doc":1}","ts":2,"data":"{{"}"#,
            br#"{"#,
            br#"{{"doc":"#,
            b"\x01{\x01",
            // 'z' is '{' ^ 1: a byte the word test may also mark after a '{'.
            br#"{zz{"doc":z"#,
        ];
        let mut body = Vec::new();
        for round in 0..40 {
            body.extend_from_slice(pieces[round % pieces.len()]);
            for cut in 0..body.len().min(24) {
                let b = &body[cut..];
                assert_eq!(count_records(b), naive(b), "{}", lossy(b));
                assert_eq!(count_records_by_words(b), naive(b), "{}", lossy(b));
            }
        }
    }

    /// Equal strings of every length around the word size compare equal, and a difference at
    /// any byte (or in length) is seen.
    #[test]
    fn short_strings_are_compared_word_by_word() {
        let text: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..text.len() {
            let a = &text[..n];
            let mut b = a.to_vec();
            assert!(same(a, &b), "{n} bytes");
            for i in 0..n {
                b[i] ^= 1;
                assert!(!same(a, &b), "{n} bytes, byte {i} differs");
                b[i] ^= 1;
            }
            assert!(!same(a, &text[..n + 1]));
        }
    }

    #[test]
    fn numbers_are_read_eight_digits_at_a_time_and_one_by_one() {
        assert_eq!(
            number(b"1765000000000001,"),
            Some((1_765_000_000_000_001, 16))
        );
        assert_eq!(number(b"12345678"), Some((12_345_678, 8)));
        assert_eq!(number(b"7}"), Some((7, 1)));
        assert_eq!(number(b"1234567x9"), Some((1_234_567, 7)));
        assert_eq!(
            number(b"9999999999999999999]"),
            Some((9_999_999_999_999_999_999, 19))
        );
        assert_eq!(number(b"12345678901234567890"), None);
        assert_eq!(number(b"x1"), None);
        assert_eq!(number(b""), None);
        for n in [
            0u64,
            9,
            10,
            99_999_999,
            100_000_000,
            123_456_789_012,
            u64::MAX / 10,
        ] {
            let text = format!("{n},");
            assert_eq!(number(text.as_bytes()), Some((n, text.len() - 1)));
        }
        // Bytes next to the digits in the table: '/', ':', and with the high bit set.
        for bad in [b'/', b':', 0xB0, 0x3A + 0x80] {
            let mut word = *b"12345678";
            word[3] = bad;
            assert_eq!(eight_digits(&word), None, "{bad:#x}");
        }
    }

    fn lossy(f: &[u8]) -> String {
        String::from_utf8_lossy(f).into_owned()
    }
}
