//! One delivery round's bytes: the frames each connection is owed, built outside every lock.
//!
//! A write is encoded once per group of subscriptions with equal filters, for the subscription
//! id `""`; each subscription's frame is that encoding with its id spliced in, written straight
//! into its connection's batch behind the frame header. A connection gets one batch per round
//! however many of its subscriptions are served, so it costs one hand-over (and at most one
//! system call) per round, not one per push; batches are built one connection at a time, so a
//! round holds its encodings and a single batch.

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
/// (encoded once, when first needed).
pub(super) struct Encoded<'r> {
    col: &'r str,
    entries: &'r [Arc<Entry>],
    frames: Vec<Vec<Option<Vec<Vec<u8>>>>>,
}

impl<'r> Encoded<'r> {
    pub fn new(col: &'r str, entries: &'r [Arc<Entry>], work: &[Work]) -> Self {
        let groups = work.iter().map(|w| w.group + 1).max().unwrap_or(0);
        let frames = entries
            .iter()
            .map(|_| std::iter::repeat_with(|| None).take(groups).collect())
            .collect();
        Encoded {
            col,
            entries,
            frames,
        }
    }

    fn get(&mut self, at: usize, w: &Work) -> &[Vec<u8>] {
        let (col, entry) = (self.col, &self.entries[at]);
        self.frames[at][w.group].get_or_insert_with(|| {
            let mut frames = Vec::new();
            encode::change("", col, entry.seq, &entry.change, &w.filter, |f| {
                frames.push(f)
            });
            frames
        })
    }
}

/// The work items of each connection (indices into `work`), in order of first appearance.
pub(super) fn by_connection(work: &[Work]) -> Vec<Vec<usize>> {
    let mut conns: Vec<Vec<usize>> = Vec::new();
    let mut at: HashMap<u64, usize> = HashMap::new();
    for (i, w) in work.iter().enumerate() {
        let c = *at.entry(w.conn).or_insert_with(|| {
            conns.push(Vec::new());
            conns.len() - 1
        });
        conns[c].push(i);
    }
    conns
}

/// Fills `out` with one connection's pushes of the round: each of its subscriptions'
/// backlog frames, then the writes each is owed, write by write.
pub(super) fn batch(out: &mut Vec<u8>, enc: &mut Encoded<'_>, work: &[Work], subs: &[usize]) {
    out.clear();
    for w in subs.iter().map(|&i| &work[i]) {
        for text in &w.pre {
            w.sink.header(out, text.len());
            out.extend_from_slice(text);
        }
    }
    for at in 0..enc.entries.len() {
        let seq = enc.entries[at].seq;
        for w in subs.iter().map(|&i| &work[i]) {
            if w.from > seq {
                continue;
            }
            for template in enc.get(at, w) {
                w.sink
                    .header(out, encode::spliced_len(template, &w.id_text));
                encode::splice(out, template, &w.id_text);
            }
        }
    }
}
