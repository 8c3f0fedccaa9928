//! One delivery round's bytes: the frames each connection is owed, built outside every lock.
//!
//! A write is encoded once per group of subscriptions with equal filters, for the subscription
//! id `""`; each subscription's frame is that encoding with its id spliced in behind the frame
//! header. A connection gets one batch per round however many of its subscriptions are served,
//! so it costs one hand-over (and at most one system call) per round, not one per push. A
//! batch is a list of pieces: headers, ids and short frames are copied together, while the body
//! of a long frame (a bulk `ins`) is the round's encoding itself, referenced rather than copied
//! once per subscriber (an idle connection's socket takes the pieces in one vectored write).
//! Batches are built one connection at a time, so a round holds its encodings and one batch;
//! connections owed the same bytes as the one before them (subscriptions with the same ids,
//! filters and starting point: many dashboards on one collection, each numbering its
//! subscriptions `s1`, `s2`, …) are handed that batch again instead of a new one.

use super::encode;
use super::feed::Entry;
use super::filter::Filter;
use super::Sink;
use std::collections::HashMap;
use std::sync::Arc;

/// What one subscriber is handed this round.
pub(super) struct Work {
    pub conn: u64,
    pub id: Arc<str>,
    /// `id` as it appears inside a JSON string.
    pub id_text: Arc<[u8]>,
    pub sink: Arc<dyn Sink>,
    /// Its filter's group: subscribers of one group share each write's encoding.
    pub group: usize,
    pub filter: Arc<Filter>,
    /// The first write it is owed (`u64::MAX`: none this round).
    pub from: u64,
    /// Backlog frames (with its id already) that go first.
    pub pre: Vec<Vec<u8>>,
}

/// The templates of a round: per write, per group, the write's frames for the id `""`
/// (encoded once, when first needed). Every frame of the round is kept in one buffer, so a
/// round allocates a few growing vectors rather than a few per write.
pub(super) struct Encoded<'r> {
    col: &'r str,
    entries: &'r [Arc<Entry>],
    groups: usize,
    /// Per write and group (`at * groups + group`): its frames, as a range of `ends`
    /// (`None` until made).
    made: Vec<Option<(u32, u32)>>,
    /// Where each frame made ends in `bytes` (the first starts at 0).
    ends: Vec<usize>,
    bytes: Vec<u8>,
}

impl<'r> Encoded<'r> {
    pub fn new(col: &'r str, entries: &'r [Arc<Entry>], work: &[Work]) -> Self {
        let groups = work.iter().map(|w| w.group + 1).max().unwrap_or(0);
        Encoded {
            col,
            entries,
            groups,
            made: vec![None; entries.len() * groups],
            ends: Vec::with_capacity(entries.len()),
            bytes: Vec::with_capacity(entries.iter().map(|e| e.bytes + 96).sum()),
        }
    }

    /// Encodes write `at` for `w`'s group, once; the range of `ends` its frames take.
    fn make(&mut self, at: usize, w: &Work) -> (u32, u32) {
        let slot = at * self.groups + w.group;
        if let Some(range) = self.made[slot] {
            return range;
        }
        let entry = &self.entries[at];
        let first = self.ends.len() as u32;
        let ends = &mut self.ends;
        encode::change(
            &mut self.bytes,
            "",
            self.col,
            entry.seq,
            &entry.change,
            &w.filter,
            |end| ends.push(end),
        );
        let range = (first, self.ends.len() as u32);
        self.made[slot] = Some(range);
        range
    }

    /// Frame `frame` (an index into `ends`).
    fn frame(&self, frame: u32) -> &[u8] {
        let i = frame as usize;
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p]);
        &self.bytes[start..self.ends[i]]
    }
}

/// Frame bodies at least this long are referenced by a batch rather than copied into it.
const REFERENCED: usize = 2048;

/// One piece of a batch.
#[derive(Debug, Clone, Copy)]
enum Piece {
    /// `Batch::bytes[from..to]`.
    Own(usize, usize),
    /// Frame `frame` of the round's encodings, from byte `from` on.
    Encoded { frame: u32, from: usize },
}

/// One connection's pushes of a round (see the module notes), reused from one connection to
/// the next.
#[derive(Default)]
pub(super) struct Batch {
    bytes: Vec<u8>,
    pieces: Vec<Piece>,
    /// Where the copied bytes not yet in `pieces` start.
    own_from: usize,
}

impl Batch {
    fn clear(&mut self) {
        self.bytes.clear();
        self.pieces.clear();
        self.own_from = 0;
    }

    /// Closes the run of copied bytes, if any.
    fn seal(&mut self) {
        if self.own_from < self.bytes.len() {
            self.pieces
                .push(Piece::Own(self.own_from, self.bytes.len()));
            self.own_from = self.bytes.len();
        }
    }

    /// The batch's bytes, in order, as slices of itself and of the round's encodings.
    pub fn pieces<'a>(&'a self, enc: &'a Encoded<'_>) -> Vec<&'a [u8]> {
        self.pieces
            .iter()
            .map(|p| match *p {
                Piece::Own(from, to) => &self.bytes[from..to],
                Piece::Encoded { frame, from } => &enc.frame(frame)[from..],
            })
            .collect()
    }
}

/// The work items of each connection (indices into `work`), in order of first appearance.
pub(super) fn by_connection(work: &[Work]) -> Vec<Vec<usize>> {
    split_by(work, |w| w.conn)
}

/// The work items of each filter group (indices into `work`), in order of first appearance.
pub(super) fn by_group(work: &[Work]) -> Vec<Vec<usize>> {
    split_by(work, |w| w.group as u64)
}

/// The work items (indices into `work`) of each value of `key`, in order of first appearance.
fn split_by(work: &[Work], key: impl Fn(&Work) -> u64) -> Vec<Vec<usize>> {
    let mut parts: Vec<Vec<usize>> = Vec::new();
    let mut at: HashMap<u64, usize> = HashMap::new();
    for (i, w) in work.iter().enumerate() {
        let p = *at.entry(key(w)).or_insert_with(|| {
            parts.push(Vec::new());
            parts.len() - 1
        });
        parts[p].push(i);
    }
    parts
}

/// Whether the connections with work items `a` and `b` are owed byte-identical pushes this
/// round: their subscriptions, in order, have the same id text, filter group and first write
/// owed, and no backlog frames. (A feed's sinks are all sessions', which frame alike.)
pub(super) fn same_pushes(work: &[Work], a: &[usize], b: &[usize]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(&i, &j)| {
            let (x, y) = (&work[i], &work[j]);
            x.pre.is_empty()
                && y.pre.is_empty()
                && x.group == y.group
                && x.from == y.from
                && x.id_text == y.id_text
        })
}

/// Fills `out` with one connection's pushes of the round: each of its subscriptions'
/// backlog frames, then the writes each is owed, write by write.
pub(super) fn batch(out: &mut Batch, enc: &mut Encoded<'_>, work: &[Work], subs: &[usize]) {
    out.clear();
    for w in subs.iter().map(|&i| &work[i]) {
        for text in &w.pre {
            w.sink.header(&mut out.bytes, text.len());
            out.bytes.extend_from_slice(text);
        }
    }
    for at in 0..enc.entries.len() {
        let seq = enc.entries[at].seq;
        for w in subs.iter().map(|&i| &work[i]) {
            if w.from > seq {
                continue;
            }
            let (first, end) = enc.make(at, w);
            for frame in first..end {
                let template = enc.frame(frame);
                w.sink
                    .header(&mut out.bytes, encode::spliced_len(template, &w.id_text));
                let (head, body) = encode::split(template);
                out.bytes.extend_from_slice(head);
                out.bytes.extend_from_slice(&w.id_text);
                if body.len() < REFERENCED {
                    out.bytes.extend_from_slice(body);
                } else {
                    out.seal();
                    out.pieces.push(Piece::Encoded {
                        frame,
                        from: template.len() - body.len(),
                    });
                }
            }
        }
    }
    out.seal();
}
