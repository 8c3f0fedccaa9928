//! Handing a planned round's pushes to the subscribers' connections: encoded once per group
//! of equal filters, batched per connection, and the subscriptions whose connection refused
//! them (full) ended as too slow.

use super::plan::Round;
use super::{Feed, TOO_SLOW};
use crate::live::{deliver, encode, Sink, SinkError};
use std::sync::Arc;

impl Feed {
    /// Hands over one round's pushes; the subscriptions whose connection refused them end.
    /// Each connection gets its pushes in one batch, built from encodings the round keeps,
    /// unless the round's one write encoded for every group would pass the encoding budget:
    /// then each group's encodings are made, handed to its subscribers one by one, and let go
    /// before the next group's (the frames of one write may reach a connection's
    /// subscriptions in any order).
    pub(super) fn deliver(&self, round: Round) {
        for (conn, id, sink) in &round.lost {
            self.end_slow(*conn, id, &**sink);
        }
        let mut failed: Vec<(u64, Arc<str>)> = Vec::new();
        let mut batch = deliver::Batch::default();
        if round.by_group {
            for subs in &deliver::by_group(&round.work) {
                let mut encoded = deliver::Encoded::new(&self.col, &round.entries, &round.work);
                for &i in subs {
                    deliver::batch(&mut batch, &mut encoded, &round.work, &[i]);
                    let w = &round.work[i];
                    self.hand(&*w.sink, &batch.pieces(&encoded), [w], &mut failed);
                }
            }
        } else {
            let mut encoded = deliver::Encoded::new(&self.col, &round.entries, &round.work);
            let conns = deliver::by_connection(&round.work);
            let mut next = 0;
            while let Some(first) = conns.get(next) {
                deliver::batch(&mut batch, &mut encoded, &round.work, first);
                let pieces = batch.pieces(&encoded);
                // The connections after it that are owed the same bytes take this batch as is.
                let alike = conns[next + 1..]
                    .iter()
                    .take_while(|subs| deliver::same_pushes(&round.work, first, subs));
                for subs in std::iter::once(first).chain(alike) {
                    next += 1;
                    let sink = &*round.work[subs[0]].sink;
                    let served = subs.iter().map(|&i| &round.work[i]);
                    self.hand(sink, &pieces, served, &mut failed);
                }
            }
        }
        if !failed.is_empty() {
            let mut st = self.state.lock();
            st.remove(|s| failed.iter().any(|(c, i)| s.conn == *c && s.id == *i));
            self.note_if_unused(&st);
        }
    }

    /// Hands `pieces` to one connection for the subscriptions `served`; if it refuses them
    /// (full), those end and are listed in `failed`.
    fn hand<'w>(
        &self,
        sink: &dyn Sink,
        pieces: &[&[u8]],
        served: impl IntoIterator<Item = &'w deliver::Work>,
        failed: &mut Vec<(u64, Arc<str>)>,
    ) {
        match sink.push(pieces, self.limit) {
            Ok(()) => {}
            Err(SinkError::Full) => {
                for w in served {
                    self.end_slow(w.conn, &w.id, &*w.sink);
                    failed.push((w.conn, w.id.clone()));
                }
            }
            // A connection closing ends its subscriptions itself, each with its `subend` when
            // its key was revoked; ended here, quietly, they would not get one. Until then its
            // rounds cost an encoding and a refused push.
            Err(SinkError::Closed) => {}
        }
    }

    pub(super) fn end_slow(&self, conn: u64, id: &str, sink: &dyn Sink) {
        log::warn!(
            "connection {conn}: subscription {id} on {:?} ended: {TOO_SLOW}",
            self.col
        );
        sink.push_last(&encode::subend(id, TOO_SLOW));
    }
}
