//! The `ins` batch's vector, and its records' un-escaped data strings, kept between requests:
//! the reader of the SDKs' batches (`insert_escaped`) takes them instead of allocating, and the
//! dispatcher gives them back, emptied, once the request is answered (the store keeps copies
//! of the data). One set per thread (a connection's requests are served on its thread),
//! bounded: a vector grown by a large batch is not kept, nor more than [`MAX_STRINGS`] strings
//! of at most [`MAX_STRING_BYTES`] each.

use super::payload::NewRecord;
use super::record_data::RecordData;
use std::cell::RefCell;

/// Most records a kept vector may have room for: under 2 KiB per connection (a `NewRecord` is
/// under 100 bytes).
pub(crate) const MAX_KEPT: usize = 16;

/// Most data strings kept.
pub(crate) const MAX_STRINGS: usize = 8;

/// Largest capacity of a data string kept.
pub(crate) const MAX_STRING_BYTES: usize = 256;

/// What a first push would give a new vector: a single-record batch fits without growing.
const FRESH: usize = 4;

/// What a thread keeps.
struct Kept {
    /// The vector, empty; no allocation until a batch has been given back.
    batch: Vec<NewRecord<'static>>,
    /// The data strings, each empty.
    strings: Vec<String>,
}

thread_local! {
    static KEPT: RefCell<Kept> = const {
        RefCell::new(Kept {
            batch: Vec::new(),
            strings: Vec::new(),
        })
    };
}

/// An empty string with room for at least `capacity` bytes: a kept one when there is one.
pub(crate) fn string(capacity: usize) -> String {
    let mut s = KEPT
        .with_borrow_mut(|k| k.strings.pop())
        .unwrap_or_default();
    s.reserve(capacity);
    s
}

/// An empty vector for a batch, with room for at least a single record: the kept one when
/// there is one.
pub(crate) fn take<'a>() -> Vec<NewRecord<'a>> {
    // A vector of `NewRecord<'static>` is one of `NewRecord<'a>` as it is (covariance).
    let mut v: Vec<NewRecord<'a>> = KEPT.with_borrow_mut(|k| std::mem::take(&mut k.batch));
    if v.capacity() == 0 {
        // Allocated at the size a first push would grow it to, without the growth path (its
        // checks cost about 60 instructions per single-record `ins`).
        v.reserve_exact(FRESH);
    }
    v
}

/// Gives a batch's vector back once its records are no longer needed: they are dropped here
/// (their data strings kept for [`string`] within the bounds), and the vector is kept for the
/// next [`take`] unless it has room for more than [`MAX_KEPT`] records.
pub(crate) fn give(mut records: Vec<NewRecord<'_>>) {
    if records.capacity() == 0 || records.capacity() > MAX_KEPT {
        return;
    }
    KEPT.with_borrow_mut(|k| {
        for r in &mut records {
            if let RecordData::EscapedOwned(s) = &mut r.data {
                if k.strings.len() < MAX_STRINGS && s.capacity() <= MAX_STRING_BYTES {
                    s.clear();
                    k.strings.push(std::mem::take(s));
                }
            }
        }
        k.batch = relabel(records);
    });
}

/// The same allocation, emptied (its records dropped), for records that borrow nothing:
/// collecting a vector's `IntoIter` into a vector of an element of the same size and
/// alignment reuses its buffer (checked by `give_then_take_reuses_the_allocation`).
// Not a `filter`: the element's lifetime changes.
#[allow(clippy::unnecessary_filter_map)]
fn relabel(v: Vec<NewRecord<'_>>) -> Vec<NewRecord<'static>> {
    v.into_iter().filter_map(|_| None).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record_data::RecordData;
    use std::borrow::Cow;

    fn record(doc: &str) -> NewRecord<'_> {
        NewRecord {
            col: Cow::Borrowed("c"),
            doc: Cow::Borrowed(doc),
            ts: 1,
            data: RecordData::EscapedOwned("x".repeat(40)),
        }
    }

    #[test]
    fn give_then_take_reuses_the_allocation() {
        let name = String::from("d");
        let mut v = take();
        v.push(record(&name));
        v.push(record(&name));
        let ptr = v.as_ptr();
        give(v);
        let v = take();
        assert!(v.is_empty());
        assert_eq!(v.as_ptr(), ptr);
        assert!(v.capacity() >= FRESH);
        // Taken: nothing is kept until it is given back.
        let fresh = take();
        assert_ne!(fresh.as_ptr(), ptr);
        assert_eq!(fresh.capacity(), FRESH);
        give(fresh);
        give(v);
    }

    #[test]
    fn data_strings_come_back_emptied_and_bounded() {
        let name = String::from("d");
        let mut v = take();
        let mut kept = Vec::new();
        for n in 0..MAX_KEPT {
            let mut s = string(8);
            s.push_str(if n == 0 { "a" } else { "b" });
            if n == 1 {
                s.reserve(MAX_STRING_BYTES + 1);
            } else {
                kept.push(s.as_ptr());
            }
            v.push(NewRecord {
                data: RecordData::EscapedOwned(s),
                ..record(&name)
            });
        }
        give(v);
        // The first `MAX_STRINGS` within the size bound, handed out last in first out.
        let mut expected: Vec<_> = kept.into_iter().take(MAX_STRINGS).collect();
        while let Some(ptr) = expected.pop() {
            let s = string(8);
            assert!(s.is_empty());
            assert_eq!(s.as_ptr(), ptr);
        }
        assert_eq!(string(8).capacity(), 8, "a new string once none is kept");
        // Room as asked for, when a kept string had less.
        give(vec![NewRecord {
            data: RecordData::EscapedOwned(String::with_capacity(4)),
            ..record(&name)
        }]);
        assert!(string(100).capacity() >= 100);
    }

    #[test]
    fn what_a_thread_keeps_is_under_4_kib() {
        let batch = MAX_KEPT * std::mem::size_of::<NewRecord<'_>>();
        let strings = MAX_STRINGS * (MAX_STRING_BYTES + std::mem::size_of::<String>());
        assert!(batch + strings <= 4096, "{batch} + {strings}");
    }

    #[test]
    fn a_vector_grown_by_a_large_batch_is_not_kept() {
        let name = String::from("d");
        let mut v = take();
        v.extend((0..MAX_KEPT + 1).map(|_| record(&name)));
        give(v);
        let v = take();
        assert!(v.is_empty());
        assert_eq!(v.capacity(), FRESH);
    }
}
