//! The `ins` batch's vector kept between requests: the reader of the SDKs' batches
//! (`insert_escaped`) takes it instead of allocating one, and the dispatcher gives it back,
//! emptied, once the request is answered. One per thread (a connection's requests are served
//! on its thread), bounded: a vector grown by a large batch is not kept.

use super::payload::NewRecord;
use std::cell::Cell;

/// Most records a kept vector may have room for: under 2 KiB per connection (a `NewRecord` is
/// under 100 bytes).
pub(crate) const MAX_KEPT: usize = 16;

/// What a first push would give a new vector: a single-record batch fits without growing.
const FRESH: usize = 4;

thread_local! {
    /// The vector, empty; no allocation until a batch has been given back.
    static SPARE: Cell<Vec<NewRecord<'static>>> = const { Cell::new(Vec::new()) };
}

/// An empty vector for a batch, with room for at least a single record: the kept one when
/// there is one.
pub(crate) fn take<'a>() -> Vec<NewRecord<'a>> {
    // A vector of `NewRecord<'static>` is one of `NewRecord<'a>` as it is (covariance).
    let mut v: Vec<NewRecord<'a>> = SPARE.take();
    if v.capacity() == 0 {
        // Allocated at the size a first push would grow it to, without the growth path (its
        // checks cost about 60 instructions per single-record `ins`).
        v.reserve_exact(FRESH);
    }
    v
}

/// Gives a batch's vector back once its records are no longer needed: they are dropped here,
/// and the vector is kept for the next [`take`] unless it has room for more than
/// [`MAX_KEPT`] records.
pub(crate) fn give(mut records: Vec<NewRecord<'_>>) {
    if records.capacity() == 0 || records.capacity() > MAX_KEPT {
        return;
    }
    records.clear();
    SPARE.set(relabel(records));
}

/// The same allocation (empty: nothing to drop), for records that borrow nothing:
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
