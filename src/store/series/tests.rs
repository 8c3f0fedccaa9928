//! Unit tests of [`super::Series`] and its blocks.

use super::cache::TAIL_CACHED;
use super::*;
use crate::text;
use std::ops::ControlFlow;

fn all(s: &Series) -> Vec<(i64, String)> {
    s.iter().map(|(t, d)| (t, d.text().into_owned())).collect()
}

fn scanned(s: &Series, r: Range<usize>, reverse: bool) -> Vec<(i64, String)> {
    let mut v = Vec::new();
    s.scan(r, reverse, |t, d| {
        v.push((t, d.text().into_owned()));
        ControlFlow::Continue(())
    });
    v
}

#[test]
fn keeps_order_and_replaces() {
    let mut s = Series::new();
    for (ts, d) in [(100, "a"), (300, "c"), (200, "b"), (50, "z"), (200, "B")] {
        s.insert(ts, d).unwrap();
    }
    assert_eq!(
        all(&s),
        vec![
            (50, "z".into()),
            (100, "a".into()),
            (200, "B".into()),
            (300, "c".into())
        ]
    );
    assert_eq!(s.latest_at(250), Some(2));
    assert_eq!(s.latest_at(49), None);
    assert_eq!(s.latest_at(i64::MAX), Some(3));
    assert_eq!(s.range(100, 200), 1..3);
    assert_eq!(s.range(101, 199), 2..2);
    assert_eq!(s.range(i64::MIN, i64::MAX), 0..4);
}

#[test]
fn find_agrees_with_binary_search() {
    let mut s = Series::new();
    for ts in (0..300).map(|i| i * 3) {
        s.insert(ts, "x").unwrap();
    }
    assert!(s.sealed_stats().1 >= 4, "several blocks sealed");
    let tss: Vec<i64> = s.iter().map(|(t, _)| t).collect();
    for ts in -2..905 {
        assert_eq!(s.find(ts), tss.binary_search(&ts), "ts {ts}");
        assert_eq!(
            s.latest_at(ts),
            tss.partition_point(|&t| t <= ts).checked_sub(1)
        );
    }
    assert_eq!(Series::new().find(5), Err(0));
}

#[test]
fn appends_follow_the_newest_record_after_removals() {
    let mut s = Series::new();
    for ts in [10, 20, 30] {
        s.insert(ts, "x").unwrap();
    }
    assert!(s.remove(30));
    s.insert(25, "y").unwrap();
    assert_eq!(s.remove_range(20, 30), 2);
    s.insert(15, "z").unwrap();
    s.insert(12, "w").unwrap();
    assert_eq!(
        s.iter().map(|(t, _)| t).collect::<Vec<_>>(),
        vec![10, 12, 15]
    );
    let (ts, lens, data) = s.to_parts();
    let mut back = Series::from_parts(ts, lens, data).unwrap();
    back.insert(14, "v").unwrap();
    back.insert(16, "u").unwrap();
    assert_eq!(
        back.iter().map(|(t, _)| t).collect::<Vec<_>>(),
        vec![10, 12, 14, 15, 16]
    );
}

#[test]
fn removals() {
    let mut s = Series::new();
    for ts in 1..=10 {
        s.insert(ts, &ts.to_string()).unwrap();
    }
    assert!(s.remove(5));
    assert!(!s.remove(5));
    assert_eq!(s.remove_range(7, 9), 3);
    assert_eq!(
        s.iter().map(|(t, _)| t).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 6, 10]
    );
    assert_eq!(s.remove_range(i64::MIN, i64::MAX), 6);
    assert!(s.is_empty());
    assert_eq!(s.data_bytes(), 0);
}

#[test]
fn compaction_keeps_data_and_frees_garbage() {
    let mut s = Series::new();
    let big = "x".repeat(1000);
    for round in 0..20 {
        for ts in 0..10 {
            s.insert(ts, &format!("{round}{big}")).unwrap();
        }
    }
    assert!(s.arena_len() <= 2 * s.data_bytes() + 4096 + 1010 + SEAL_BYTES);
    assert!(s.iter().all(|(_, d)| d.wire().starts_with("19x")));
    assert_eq!(s.len(), 10);
}

#[test]
fn parts_round_trip_and_validation() {
    let mut s = Series::new();
    for (ts, d) in [(3, "c"), (1, "é"), (2, ""), (1, "a")] {
        s.insert(ts, d).unwrap();
    }
    let (ts, lens, data) = s.to_parts();
    assert_eq!(data, "ac");
    let back = Series::from_parts(ts.clone(), lens.clone(), data.clone()).unwrap();
    assert_eq!(all(&back), all(&s));
    assert!(Series::from_parts(vec![2, 1], vec![0, 0], String::new()).is_err());
    assert!(Series::from_parts(ts.clone(), vec![1, 0, 5], data.clone()).is_err());
    assert!(
        Series::from_parts(vec![1], vec![1], "é".into()).is_err(),
        "not a char boundary"
    );
}

#[test]
fn plain_data_is_tracked() {
    let mut s = Series::new();
    s.insert(1, "abc é").unwrap();
    assert!(s.data_is_plain());
    s.insert(2, "a\"b").unwrap();
    assert!(!s.data_is_plain());
    s.remove_range(i64::MIN, i64::MAX);
    assert!(s.data_is_plain(), "an emptied series starts over");
    s.insert(3, "tab\t").unwrap();
    let (ts, lens, data) = s.to_parts();
    assert!(!Series::from_parts(ts, lens, data).unwrap().data_is_plain());
}

#[test]
fn multibyte_data_round_trips() {
    let mut s = Series::new();
    s.insert(2, "é€😀").unwrap();
    s.insert(1, "\u{0}nul").unwrap();
    assert_eq!(all(&s), vec![(1, "\u{0}nul".into()), (2, "é€😀".into())]);
}

#[test]
fn timestamps_of_any_spacing_round_trip_through_blocks() {
    let mut s = Series::new();
    let tss: Vec<i64> = [
        i64::MIN,
        i64::MIN + 1,
        -5,
        0,
        1,
        1000,
        i64::MAX - 1,
        i64::MAX,
    ]
    .into_iter()
    .chain((0..200).map(|i| i * i * 7919 - 3))
    .collect::<std::collections::BTreeSet<_>>()
    .into_iter()
    .collect();
    for &t in &tss {
        s.insert(t, &format!("r{t}")).unwrap();
    }
    assert!(s.sealed_stats().0 > 100);
    let got = all(&s);
    assert_eq!(got.len(), tss.len());
    assert!(got
        .iter()
        .zip(&tss)
        .all(|((t, d), e)| t == e && *d == format!("r{e}")));
    assert_eq!(s.range(i64::MIN, i64::MAX), 0..tss.len());
}

/// Random inserts, replacements and deletions against a BTreeMap.
#[test]
fn sealed_history_matches_a_model() {
    use std::collections::BTreeMap;
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..9 {
        let mut s = Series::new();
        let mut m: BTreeMap<i64, String> = BTreeMap::new();
        let span = [50u64, 400, 5000][round % 3];
        for step in 0..3000 {
            let r = next();
            let ts = (next() % span) as i64;
            match r % 10 {
                0..=5 => {
                    let d = format!("{{\"v\":{},\"s\":\"{step}\\\n\"}}", next() % 1000);
                    s.insert(ts, &d).unwrap();
                    m.insert(ts, d);
                }
                6 => {
                    let d = format!("append {step}");
                    let t = m.keys().next_back().map_or(0, |t| t + 1);
                    s.insert(t, &d).unwrap();
                    m.insert(t, d);
                }
                7 => {
                    assert_eq!(s.remove(ts), m.remove(&ts).is_some());
                }
                8 if r % 3 == 0 => {
                    // Retention: the oldest records go (lazily, from the first block).
                    let keep = (next() % (m.len() as u64 + 1)) as usize;
                    let n = m.len() - keep;
                    assert_eq!(s.remove_oldest(keep), n);
                    for _ in 0..n {
                        m.pop_first();
                    }
                }
                8 if r % 3 == 1 => {
                    let n = m.range(..ts).count();
                    assert_eq!(s.remove_before(ts), n);
                    m.retain(|t, _| *t >= ts);
                }
                8 => {
                    let to = ts + (next() % 20) as i64;
                    let n = m.range(ts..=to).count();
                    assert_eq!(s.remove_range(ts, to), n);
                    m.retain(|t, _| !(ts..=to).contains(t));
                }
                _ => {
                    let to = ts + (next() % 100) as i64;
                    let want: Vec<_> = m.range(ts..=to).map(|(t, d)| (*t, d.clone())).collect();
                    let r = s.range(ts, to);
                    assert_eq!(scanned(&s, r.clone(), false), want);
                    let mut rev = want.clone();
                    rev.reverse();
                    assert_eq!(scanned(&s, r.clone(), true), rev);
                    let at = m.range(..=to).next_back().map(|(t, _)| *t);
                    assert_eq!(s.latest_at(to).map(|i| s.get(i).0), at);
                    assert_eq!(s.latest_at(to).map(|i| s.ts_at(i)), at);
                    let first = m.keys().next().copied();
                    assert_eq!((!s.is_empty()).then(|| s.ts_at(0)), first);
                    assert_eq!(s.find(ts).is_ok(), m.contains_key(&ts));
                }
            }
            assert_eq!(s.len(), m.len());
            assert_eq!(
                s.data_bytes(),
                m.values().map(|d| text::escaped_len(d)).sum::<usize>()
            );
        }
        let want: Vec<_> = m.iter().map(|(t, d)| (*t, d.clone())).collect();
        assert_eq!(all(&s), want);
        assert_eq!(scanned(&s, 0..s.len(), false), want);
        let (ts, lens, data) = s.to_parts();
        assert_eq!(all(&Series::from_parts(ts, lens, data).unwrap()), want);
    }
}

#[test]
fn a_thousand_records_are_mostly_sealed_in_exact_buffers() {
    let mut s = Series::new();
    for ts in 1..=1000 {
        s.insert(ts, "{\"lat\":52.389837,\"lon\":4.884869,\"alt\":107.9}")
            .unwrap();
    }
    let (sealed, blocks) = s.sealed_stats();
    assert!(sealed >= 900, "{sealed} sealed");
    assert_eq!(blocks, sealed / SEAL_RECORDS);
    assert!(s.entries.capacity() <= SEAL_RECORDS + 1);
    assert!(s.heap_bytes() < 1000 * 20, "{} bytes held", s.heap_bytes());
    // A read of sealed history through `get` is cached, and a change drops the cache.
    assert_eq!(s.cache_bytes(), 0);
    assert_eq!(s.get(0).0, 1);
    assert!(s.cache_bytes() > 0);
    s.insert(1001, "x").unwrap();
    assert_eq!(s.cache_bytes(), 0);
}

#[test]
fn retention_drops_whole_blocks() {
    let mut s = Series::new();
    for ts in 1..=1000 {
        s.insert(ts, &format!("d{ts}")).unwrap();
    }
    assert_eq!(s.remove_before(501), 500);
    assert_eq!(all(&s)[0], (501, "d501".into()));
    assert_eq!(s.remove_oldest(100), 400);
    assert_eq!(s.len(), 100);
    assert_eq!(all(&s)[0], (901, "d901".into()));
    assert_eq!(
        s.data_bytes(),
        (901..=1000).map(|t| format!("d{t}").len()).sum::<usize>()
    );
    s.insert(1001, "new").unwrap();
    assert_eq!(s.remove_oldest(0), 101);
    assert!(s.is_empty());
}

#[test]
fn data_is_stored_escaped_and_read_back_as_sent() {
    let mut s = Series::new();
    for ts in 1..=200 {
        s.insert(ts, &format!("{{\"n\":{ts},\"s\":\"a\\b\tc\"}}"))
            .unwrap();
    }
    assert!(s.sealed_stats().0 > 100);
    for i in [0, 150, 199] {
        let (ts, d) = s.get(i);
        assert_eq!(
            d.wire(),
            format!("{{\\\"n\\\":{ts},\\\"s\\\":\\\"a\\\\b\\tc\\\"}}")
        );
        assert_eq!(d.text(), format!("{{\"n\":{ts},\"s\":\"a\\b\tc\"}}"));
    }
    let (_, lens, data) = s.to_parts();
    assert_eq!(lens[0] as usize, "{\"n\":1,\"s\":\"a\\b\tc\"}".len());
    assert!(data.starts_with("{\"n\":1,\"s\":\"a\\b\tc\"}{\"n\":2,"));
}

#[test]
fn retention_leaves_the_first_block_in_place_until_it_is_all_dead() {
    let mut s = Series::new();
    for ts in 1..=1000 {
        s.insert(ts, &format!("d{ts}")).unwrap();
    }
    let first = s.blocks[0].bytes.as_ptr();
    let blocks = s.blocks.len();
    for ts in 1001..=1030 {
        s.insert(ts, &format!("d{ts}")).unwrap();
        assert_eq!(s.remove_oldest(1000), 1);
    }
    assert_eq!(
        s.blocks[0].bytes.as_ptr(),
        first,
        "the first block was not re-sealed"
    );
    assert_eq!((s.dead, s.len(), s.ts_at(0)), (30, 1000, 31));
    assert_eq!(all(&s)[0], (31, "d31".into()));
    assert_eq!(s.range(i64::MIN, 40), 0..10);
    assert_eq!(
        (s.find(5), s.find(31), s.latest_at(30)),
        (Err(0), Ok(0), None)
    );
    let want: usize = (31..=1030).map(|t| format!("d{t}").len()).sum();
    assert_eq!(s.data_bytes(), want);
    // Steady state: the dead records of at most one block are held.
    for ts in 1031..=3000 {
        s.insert(ts, &format!("d{ts}")).unwrap();
        s.remove_before(ts - 999);
        assert!(s.dead < s.blocks[0].count as usize);
        assert!(s.blocks.len() <= blocks + 1);
    }
    assert_eq!((s.len(), s.ts_at(0)), (1000, 2001));
    // A late record among the dead ones re-seals the first block without them.
    s.insert(5, "late").unwrap();
    assert_eq!(
        (s.dead, s.len(), s.ts_at(0), s.ts_at(1)),
        (0, 1001, 5, 2001)
    );
    let (ts, lens, data) = s.to_parts();
    assert_eq!(all(&Series::from_parts(ts, lens, data).unwrap()), all(&s));
}

#[test]
fn quoted_data_is_folded_and_a_steady_rate_costs_one_timestamp_varint() {
    let mut s = Series::new();
    let record = |ts: i64| format!("{{\"n\":{ts},\"state\":\"flying\"}}");
    for ts in 1..=200 {
        s.insert(ts * 10, &record(ts)).unwrap();
    }
    let b = &s.blocks[0];
    assert_eq!(
        b.ts_len, 1,
        "one varint: the delta; the zero delta-of-deltas left out"
    );
    assert_eq!(b.folded(), 6 * SEAL_RECORDS as u32);
    let mut plain = Series::new();
    for ts in 1..=200 {
        plain
            .insert(ts * 10, &format!("n={ts},state=flying!"))
            .unwrap();
    }
    assert_eq!(plain.blocks[0].folded(), 0);
    for (i, (ts, d)) in s.iter().enumerate() {
        assert_eq!(ts, (i as i64 + 1) * 10);
        assert_eq!(d.text(), record(i as i64 + 1));
        assert_eq!(d.wire(), record(i as i64 + 1).replace('"', "\\\""));
    }
    assert_eq!(s.range(15, 1000), 1..100);
    assert_eq!(s.find(640), Ok(63));
    assert_eq!(s.find(645), Err(64));
}

/// The bytes of every decoded block a series keeps, counted block by block.
fn decoded_bytes(s: &Series) -> usize {
    s.blocks
        .iter()
        .filter_map(|b| b.cache.get())
        .map(|d| d.bytes())
        .sum()
}

/// Blocks holding a decoded cache.
fn cached_blocks(s: &Series) -> Vec<usize> {
    (0..s.blocks.len())
        .filter(|&bi| s.blocks[bi].cache.get().is_some())
        .collect()
}

#[test]
fn the_newest_sealed_blocks_stay_decoded_across_appends_only() {
    let mut s = Series::new();
    let mut model = Vec::new();
    for ts in 1..=1000 {
        let d = format!("{{\"seq\":{ts},\"pad\":\"xx\"}}");
        s.insert(ts, &d).unwrap();
        model.push((ts, d));
    }
    let newest = |s: &Series, model: &[(i64, String)]| {
        let n = s.len();
        let mut want: Vec<_> = model[n - 100..].to_vec();
        want.reverse();
        assert_eq!(scanned(s, n - 100..n, true), want);
    };
    assert!(cached_blocks(&s).is_empty());
    newest(&s, &model);
    let last = s.blocks.len() - 1;
    // 1000 = 15 sealed blocks of 64 and 40 plain: the page reaches into one block, or two.
    assert!(!cached_blocks(&s).is_empty());
    assert!(cached_blocks(&s).iter().all(|&bi| bi + TAIL_CACHED > last));
    let held = s.cache_bytes();
    assert_eq!(held, decoded_bytes(&s));
    // An append leaves sealed blocks alone: their caches stay, and answers are the same.
    s.insert(1001, "{\"seq\":1001}").unwrap();
    model.push((1001, "{\"seq\":1001}".into()));
    assert_eq!(s.cache_bytes(), held);
    newest(&s, &model);
    // A sealed position read through `get` is cached too, and goes at the next append.
    assert_eq!(s.get(0).0, 1);
    assert!(cached_blocks(&s).contains(&0));
    s.insert(1002, "{\"seq\":1002}").unwrap();
    model.push((1002, "{\"seq\":1002}".into()));
    assert!(!cached_blocks(&s).contains(&0));
    assert_eq!(s.cache_bytes(), held);
    // Appends until the plain block seals twice: a block that leaves the newest few drops
    // its cache, so a document keeps at most TAIL_CACHED.
    for ts in 1003..=1200 {
        let d = format!("{{\"seq\":{ts}}}");
        s.insert(ts, &d).unwrap();
        model.push((ts, d));
        newest(&s, &model);
        let cached = cached_blocks(&s);
        assert!(cached.len() <= TAIL_CACHED, "{cached:?} at {ts}");
        assert!(cached.iter().all(|&bi| bi + TAIL_CACHED >= s.blocks.len()));
        assert_eq!(s.cache_bytes(), decoded_bytes(&s));
    }
    assert!(s.blocks.len() > last + 2);
    // A change of sealed history drops every cache.
    s.insert(500, "late").unwrap();
    assert_eq!((s.cache_bytes(), cached_blocks(&s).len()), (0, 0));
    assert_eq!(s.get(499).1.text(), "late");
    newest(&s, &{
        let mut m = model.clone();
        m.insert(499, (500, "late".into()));
        m.remove(500);
        m
    });
}

#[test]
fn latest_is_the_record_at_latest_at() {
    let mut s = Series::new();
    for ts in (10..=2000).step_by(10) {
        s.insert(ts, &format!("\"r{ts}\"")).unwrap();
    }
    for at in [
        i64::MIN,
        0,
        9,
        10,
        15,
        640,
        645,
        650,
        1990,
        1999,
        2000,
        2001,
        i64::MAX,
    ] {
        let want = s.latest_at(at).map(|i| s.get(i));
        assert_eq!(s.latest(at), want, "at {at}");
    }
    assert_eq!(
        s.latest(i64::MAX).map(|(t, d)| (t, d.wire())),
        Some((2000, "\\\"r2000\\\""))
    );
    assert_eq!(Series::new().latest(i64::MAX), None);
}

/// Sealed history is held compressed: the bytes the 4 GiB bounds apply to are then the data's,
/// not the arena's (a check by the arena let a nearly full document take a batch that could
/// not fit, found by an audit).
#[test]
fn the_limits_go_by_the_data_when_sealed_history_compresses() {
    let mut s = Series::new();
    let data = "a".repeat(1000);
    for ts in 0..2000 {
        s.insert(ts, &data).unwrap();
    }
    assert!(
        s.arena_len() * 4 < s.data_bytes(),
        "the history did not compress"
    );
    assert_eq!(s.limit_bytes(), s.data_bytes());
}
