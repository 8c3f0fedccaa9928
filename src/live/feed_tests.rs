//! The feed's delivery through a recording [`Sink`]: one hand-over per connection per round,
//! pushes only once durable, a full connection ends its subscriptions, a subscriber left
//! behind by the history ends too.

use super::{Change, Feed, Filter, Rec, Sink, SinkError, Start, Subscriber};
use parking_lot::Mutex;
use std::sync::Arc;

/// Records every hand-over; frames are `<len>:` and the text.
#[derive(Default)]
struct Recorder {
    pushes: Mutex<Vec<Vec<String>>>,
    last: Mutex<Vec<String>>,
    full: bool,
}

fn split(frames: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(frames).unwrap();
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((len, tail)) = rest.split_once(':') {
        let len: usize = len.parse().unwrap();
        out.push(tail[..len].to_owned());
        rest = &tail[len..];
    }
    out
}

impl Sink for Recorder {
    fn header(&self, out: &mut Vec<u8>, len: usize) {
        out.extend_from_slice(format!("{len}:").as_bytes());
    }

    fn push(&self, pieces: &[&[u8]], _limit: usize) -> Result<(), SinkError> {
        if self.full {
            return Err(SinkError::Full);
        }
        self.pushes.lock().push(split(&pieces.concat()));
        Ok(())
    }

    fn push_last(&self, text: &[u8]) {
        self.last
            .lock()
            .push(String::from_utf8(text.to_vec()).unwrap());
    }
}

fn ins(ts: i64) -> Change {
    Change::Insert(vec![Rec {
        doc: "d".into(),
        ts,
        data: "v".into(),
    }])
}

fn rec(sub: &str, seq: u64, ts: i64) -> String {
    format!(
        r#"{{"type":"rec","sub":"{sub}","col":"c","seq":{seq},"records":[{{"doc":"d","ts":{ts},"data":"v"}}]}}"#
    )
}

fn subscribe(feed: &Feed, conn: u64, id: &str, sink: &Arc<Recorder>, doc: Option<&str>) {
    let sub = Subscriber::new(conn, id.into(), sink.clone(), Filter::new(doc, None, None));
    assert!(feed.register(sub, Start::Live, None).is_ok());
}

#[test]
fn each_connection_gets_every_owed_push_in_one_hand_over() {
    let feed = Feed::new("c", 0, 1 << 20);
    let (a, b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    subscribe(&feed, 1, "s1", &a, None);
    subscribe(&feed, 1, "s2", &a, Some("d"));
    subscribe(&feed, 2, "s1", &b, None);
    subscribe(&feed, 2, "s9", &b, Some("other"));
    feed.publish(0, ins(10));
    feed.publish(0, ins(11));
    feed.flush(0);
    assert_eq!(
        *a.pushes.lock(),
        [vec![
            rec("s1", 1, 10),
            rec("s2", 1, 10),
            rec("s1", 2, 11),
            rec("s2", 2, 11)
        ]]
    );
    assert_eq!(*b.pushes.lock(), [vec![rec("s1", 1, 10), rec("s1", 2, 11)]]);
    feed.flush(0);
    assert_eq!(a.pushes.lock().len(), 1, "nothing is pushed twice");
}

#[test]
fn a_write_leaves_once_its_log_position_is_durable() {
    let feed = Feed::new("c", 0, 1 << 20);
    let a = Arc::new(Recorder::default());
    subscribe(&feed, 1, "s1", &a, None);
    feed.publish(5, ins(1));
    feed.publish(8, ins(2));
    feed.flush(4);
    assert!(a.pushes.lock().is_empty());
    feed.flush(6);
    assert_eq!(*a.pushes.lock(), [vec![rec("s1", 1, 1)]]);
    feed.flush(8);
    assert_eq!(a.pushes.lock()[1], [rec("s1", 2, 2)]);
}

#[test]
fn a_connection_past_its_limit_loses_its_subscriptions_here_only() {
    let feed = Feed::new("c", 0, 1 << 20);
    let full = Arc::new(Recorder {
        full: true,
        ..Recorder::default()
    });
    let ok = Arc::new(Recorder::default());
    subscribe(&feed, 1, "s1", &full, None);
    subscribe(&feed, 1, "s2", &full, None);
    subscribe(&feed, 2, "s1", &ok, None);
    feed.publish(0, ins(1));
    feed.flush(0);
    let end = |s: &str| format!(r#"{{"type":"subend","sub":"{s}","error":"subscriber too slow"}}"#);
    assert_eq!(*full.last.lock(), [end("s1"), end("s2")]);
    assert!(!feed.has(1, "s1") && !feed.has(1, "s2") && feed.has(2, "s1"));
    assert_eq!(*ok.pushes.lock(), [vec![rec("s1", 1, 1)]]);
}

#[test]
fn a_subscriber_the_history_left_behind_ends_too_slow() {
    let feed = Feed::new("c", 0, 1 << 20);
    let a = Arc::new(Recorder::default());
    subscribe(&feed, 1, "s1", &a, None);
    // Never durable: the writes pile up for the subscriber until the hard bound drops them.
    for ts in 0..(super::feed::LAG_FACTOR * super::feed::HISTORY_WRITES) as i64 + 1 {
        feed.publish(1, ins(ts));
    }
    feed.flush(1);
    assert!(a.pushes.lock().is_empty());
    assert_eq!(
        *a.last.lock(),
        [r#"{"type":"subend","sub":"s1","error":"subscriber too slow"}"#]
    );
    assert!(!feed.has(1, "s1"));
}

#[test]
fn small_deliveries_go_at_once_and_large_ones_are_left_for_later() {
    let feed = Feed::new("c", 0, 1 << 20);
    let a = Arc::new(Recorder::default());
    subscribe(&feed, 1, "s1", &a, None);
    feed.publish(3, ins(1));
    assert!(feed.flush_if_small(3, super::feed::EAGER_BYTES));
    assert_eq!(*a.pushes.lock(), [vec![rec("s1", 1, 1)]]);
    let big = "v".repeat(super::feed::EAGER_BYTES as usize);
    feed.publish(
        4,
        Change::Insert(vec![Rec {
            doc: "d".into(),
            ts: 2,
            data: big.clone(),
        }]),
    );
    assert!(!feed.flush_if_small(4, super::feed::EAGER_BYTES));
    assert_eq!(a.pushes.lock().len(), 1, "the large write waits for flush");
    feed.flush(4);
    let pushes = a.pushes.lock();
    assert_eq!(pushes.len(), 2);
    assert_eq!(
        pushes[1],
        [format!(
            r#"{{"type":"rec","sub":"s1","col":"c","seq":2,"records":[{{"doc":"d","ts":2,"data":"{big}"}}]}}"#
        )]
    );
}

#[test]
fn connections_owed_alike_share_a_batch_and_the_others_get_their_own() {
    let feed = Feed::new("c", 0, 1 << 20);
    let sinks: Vec<Arc<Recorder>> = (0..7).map(|_| Arc::new(Recorder::default())).collect();
    subscribe(&feed, 1, "s1", &sinks[1], None);
    subscribe(&feed, 2, "s1", &sinks[2], None);
    subscribe(&feed, 3, "s2", &sinks[3], None);
    subscribe(&feed, 4, "s1", &sinks[4], None);
    // Not durable until the last flush: every connection's pushes leave in one round.
    feed.publish(5, ins(10));
    // Registered after the first write: owed the second only.
    subscribe(&feed, 5, "s1", &sinks[5], None);
    // A backlog frame goes first.
    let sub = Subscriber::new(6, "s1".into(), sinks[6].clone(), Filter::default());
    let backlog = Start::Backlog(vec![b"early".to_vec()], 6);
    assert!(feed.register(sub, backlog, None).is_ok());
    feed.publish(6, ins(11));
    feed.flush(6);
    let both = |s: &str| vec![rec(s, 1, 10), rec(s, 2, 11)];
    assert_eq!(*sinks[1].pushes.lock(), [both("s1")]);
    assert_eq!(*sinks[2].pushes.lock(), [both("s1")]);
    assert_eq!(*sinks[3].pushes.lock(), [both("s2")]);
    assert_eq!(*sinks[4].pushes.lock(), [both("s1")]);
    assert_eq!(*sinks[5].pushes.lock(), [vec![rec("s1", 2, 11)]]);
    assert_eq!(
        *sinks[6].pushes.lock(),
        [vec!["early".to_owned(), rec("s1", 2, 11)]]
    );
}

/// One round holding a write of one frame, one of several (a `dmrec` over two documents) and
/// one long enough to be referenced rather than copied, for two filter groups: each group's
/// frames come out whole and in order from the round's one buffer of encodings.
#[test]
fn a_round_of_mixed_writes_gives_each_group_its_own_frames_in_order() {
    let feed = Feed::new("c", 0, 1 << 20);
    let (a, b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    subscribe(&feed, 1, "s1", &a, None);
    subscribe(&feed, 2, "s2", &b, Some("e"));
    let long = "w".repeat(4096);
    feed.publish(
        0,
        Change::Insert(vec![
            Rec {
                doc: "d".into(),
                ts: 1,
                data: "v".into(),
            },
            Rec {
                doc: "e".into(),
                ts: 2,
                data: "x".into(),
            },
        ]),
    );
    feed.publish(
        0,
        Change::DeleteRecords(vec![("d".into(), vec![1]), ("e".into(), vec![5, 6])]),
    );
    feed.publish(
        0,
        Change::Insert(vec![Rec {
            doc: "e".into(),
            ts: 3,
            data: long.clone(),
        }]),
    );
    feed.flush(0);
    let head = |sub: &str, kind: &str, seq: u64| {
        format!(r#"{{"type":"{kind}","sub":"{sub}","col":"c","seq":{seq}"#)
    };
    let long_rec = |sub: &str| {
        format!(
            r#"{},"records":[{{"doc":"e","ts":3,"data":"{long}"}}]}}"#,
            head(sub, "rec", 3)
        )
    };
    assert_eq!(
        *a.pushes.lock(),
        [vec![
            format!(
                r#"{},"records":[{{"doc":"d","ts":1,"data":"v"}},{{"doc":"e","ts":2,"data":"x"}}]}}"#,
                head("s1", "rec", 1)
            ),
            format!(
                r#"{},"doc":"d","ts":[1],"more":true}}"#,
                head("s1", "del", 2)
            ),
            format!(r#"{},"doc":"e","ts":[5,6]}}"#, head("s1", "del", 2)),
            long_rec("s1"),
        ]]
    );
    assert_eq!(
        *b.pushes.lock(),
        [vec![
            format!(
                r#"{},"records":[{{"doc":"e","ts":2,"data":"x"}}]}}"#,
                head("s2", "rec", 1)
            ),
            format!(r#"{},"doc":"e","ts":[5,6]}}"#, head("s2", "del", 2)),
            long_rec("s2"),
        ]]
    );
}

/// A sink whose every hand-over waits for the test to let it through, noting which thread
/// made it.
#[derive(Default)]
struct Gated {
    entered: Mutex<Vec<String>>,
    open: Mutex<usize>,
    cv: parking_lot::Condvar,
}

impl Gated {
    /// Lets one more hand-over through.
    fn release(&self) {
        *self.open.lock() += 1;
        self.cv.notify_all();
    }

    /// Waits (bounded) until `n` hand-overs have begun.
    fn await_entered(&self, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut entered = self.entered.lock();
        while entered.len() < n {
            assert!(
                !self.cv.wait_until(&mut entered, deadline).timed_out(),
                "hand-over {n} never began"
            );
        }
    }
}

impl Sink for Gated {
    fn header(&self, out: &mut Vec<u8>, len: usize) {
        out.extend_from_slice(format!("{len}:").as_bytes());
    }

    fn push(&self, _pieces: &[&[u8]], _limit: usize) -> Result<(), SinkError> {
        let me = std::thread::current().name().unwrap_or("?").to_owned();
        let n = {
            let mut entered = self.entered.lock();
            entered.push(me);
            entered.len()
        };
        self.cv.notify_all();
        // Bounded: a hand-over the test never lets through fails its checks instead of
        // hanging it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut open = self.open.lock();
        while *open < n && !self.cv.wait_until(&mut open, deadline).timed_out() {}
        Ok(())
    }

    fn push_last(&self, _text: &[u8]) {}
}

/// A writer that comes by once the deliverer's turn is over waits and takes over; the
/// deliverer stops after its round although writes are still owed (its own connection is
/// served again), and nothing is left undelivered.
#[test]
fn a_writer_takes_over_from_a_deliverer_whose_turn_is_over() {
    let feed = Arc::new(Feed::new("c", 0, 1 << 20).with_turn(std::time::Duration::ZERO));
    let sink = Arc::new(Gated::default());
    let sub = Subscriber::new(1, "s1".into(), sink.clone(), Filter::new(None, None, None));
    assert!(feed.register(sub, Start::Live, None).is_ok());
    let flusher = |name: &str| {
        let feed = feed.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || feed.flush(0))
            .unwrap()
    };
    feed.publish(0, ins(1));
    let a = flusher("a");
    sink.await_entered(1);
    // Owed while `a` delivers write 1: `b` comes by, finds the turn over, and waits.
    feed.publish(0, ins(2));
    let b = flusher("b");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !feed.turn_state().1 {
        assert!(
            std::time::Instant::now() < deadline,
            "b never asked to take over"
        );
        std::thread::yield_now();
    }
    sink.release();
    a.join().unwrap();
    sink.await_entered(2);
    sink.release();
    b.join().unwrap();
    assert_eq!(*sink.entered.lock(), ["a", "b"]);
    assert_eq!(feed.turn_state(), (false, false));
}

/// Panics at its first hand-over, then records like [`Recorder`].
#[derive(Default)]
struct PanicsOnce {
    panicked: std::sync::atomic::AtomicBool,
    inner: Recorder,
}

impl Sink for PanicsOnce {
    fn header(&self, out: &mut Vec<u8>, len: usize) {
        self.inner.header(out, len);
    }

    fn push(&self, pieces: &[&[u8]], limit: usize) -> Result<(), SinkError> {
        if !self
            .panicked
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            panic!("a bug while handing a round over");
        }
        self.inner.push(pieces, limit)
    }

    fn push_last(&self, text: &[u8]) {
        self.inner.push_last(text);
    }
}

/// A panic while a round is handed over ends that delivery, not the feed's: the next write
/// is delivered by the next writer.
#[test]
fn a_panic_while_delivering_leaves_no_deliverer_behind() {
    let feed = Feed::new("c", 0, 1 << 20);
    let sink = Arc::new(PanicsOnce::default());
    let sub = Subscriber::new(1, "s1".into(), sink.clone(), Filter::new(None, None, None));
    assert!(feed.register(sub, Start::Live, None).is_ok());
    feed.publish(0, ins(1));
    let flushed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| feed.flush(0)));
    assert!(flushed.is_err());
    assert_eq!(feed.turn_state(), (false, false));
    feed.publish(0, ins(2));
    feed.flush(0);
    assert_eq!(*sink.inner.pushes.lock(), [vec![rec("s1", 2, 2)]]);
}

/// Past the encoding budget, a round takes fewer writes, and a round of one write is encoded
/// one group at a time and handed to each subscriber on its own: every subscriber still gets
/// every write, in order.
#[test]
fn past_the_encoding_budget_each_group_is_encoded_and_handed_over_on_its_own() {
    let feed = Feed::new("c", 0, 1 << 20).with_encode_budget(1);
    let (a, b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    // Three groups that all select document `d`.
    subscribe(&feed, 1, "s1", &a, None);
    subscribe(&feed, 1, "s2", &a, Some("d"));
    subscribe(&feed, 2, "s1", &b, None);
    subscribe(&feed, 2, "s3", &b, Some("/^d$/"));
    for ts in [10, 11] {
        feed.publish(0, ins(ts));
    }
    feed.flush(0);
    // One hand-over per subscription and write, group by group within a write.
    assert_eq!(
        *a.pushes.lock(),
        [
            vec![rec("s1", 1, 10)],
            vec![rec("s2", 1, 10)],
            vec![rec("s1", 2, 11)],
            vec![rec("s2", 2, 11)]
        ]
    );
    assert_eq!(
        *b.pushes.lock(),
        [
            vec![rec("s1", 1, 10)],
            vec![rec("s3", 1, 10)],
            vec![rec("s1", 2, 11)],
            vec![rec("s3", 2, 11)]
        ]
    );
    // Within the budget, one batch per connection and round, as before.
    let feed = Feed::new("c", 0, 1 << 20);
    let c = Arc::new(Recorder::default());
    subscribe(&feed, 3, "s1", &c, None);
    subscribe(&feed, 3, "s2", &c, Some("d"));
    feed.publish(0, ins(12));
    feed.flush(0);
    assert_eq!(*c.pushes.lock(), [vec![rec("s1", 1, 12), rec("s2", 1, 12)]]);
}
