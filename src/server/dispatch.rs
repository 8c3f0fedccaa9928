//! The request pipeline without a socket: request text in, reply bytes out, given the shared state
//! and the caller. Envelope → type lookup → permission → payload → operation → reply, each stage
//! with its own error (docs/protocol.md#how-errors-are-chosen). The WebSocket session
//! (`session.rs`) feeds it frames; an in-process session ([`super::LocalSession`]) feeds it
//! strings, so tests and the fuzzer drive exactly the code clients reach.

use super::Shared;
use crate::auth::{authorize, KeyEntry};
use crate::live::Subscriptions;
use crate::metrics;
use crate::ops::answer_cache::{Candidate, Served};
use crate::ops::{self, Ctx, Log, MsgType, OpError, Request};
use crate::persist::Lsn;
use crate::protocol::envelope::{self, Data, Envelope, EnvelopeError, Read};
use crate::protocol::reply::Reply;
use crate::protocol::{batch_spare, encode};
use crate::store::Handles;
use std::borrow::Cow;
use std::sync::Arc;

/// Consecutive id-less invalid frames tolerated before the connection is closed.
const MAX_BAD_STREAK: u32 = 100;
/// Invalid requests logged at warning level per connection; later ones go to debug.
const LOGGED_BAD_REQUESTS: u32 = 20;

/// `auth` is a name the server knows but not a request: it is answered with this.
pub(crate) const AUTH_TYPE: &str = "auth";
pub(crate) const AUTH_TEXT: &str =
    "auth messages are not supported; use the api-key query parameter";
pub(crate) const UNKNOWN_TYPE: &str = "Unknown message type";

/// One caller's state across its requests.
pub(crate) struct Caller {
    /// The session's number (`conn` marks the caller's own entry with it).
    pub id: u64,
    pub key: Arc<KeyEntry>,
    /// The caller's recently used collections.
    handles: Handles,
    bad_streak: u32,
    bad_total: u32,
    /// Replies written so far may leave only once the log is durable up to here (0: no wait).
    pub durable_upto: Lsn,
    /// Where the caller is, for the slow-request log.
    ip: String,
    name: Option<String>,
    /// The caller's live subscriptions, and the feeds whose pushes wait for `durable_upto`.
    pub subs: Subscriptions,
}

impl Caller {
    pub fn new(id: u64, key: Arc<KeyEntry>, ip: String, name: Option<String>) -> Self {
        Caller {
            id,
            key,
            handles: Handles::default(),
            bad_streak: 0,
            bad_total: 0,
            durable_upto: 0,
            ip,
            name,
            subs: Subscriptions::new(id),
        }
    }
}

/// What the connection does after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Continue,
    /// Close the connection with this code and reason (after what was written).
    Close(u16, &'static str),
}

/// How a request ended, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Served: a success reply.
    Served,
    /// Answered with an error reply.
    Refused,
    /// No reply: the connection is closed instead.
    Closed,
}

/// Serves one request: appends its reply (success or error) to `out`. Writes nothing when the
/// verdict closes the connection without a reply.
pub(crate) fn dispatch(
    shared: &Shared,
    caller: &mut Caller,
    text: &str,
    out: &mut Vec<u8>,
) -> Verdict {
    let (verdict, tail) = dispatch_shared(shared, caller, text, out);
    if let Some(tail) = tail {
        out.extend_from_slice(&tail);
    }
    verdict
}

/// [`dispatch`], except that the reply may go on after `out` with bytes the answer cache keeps
/// (returned, to be sent from there without a copy).
pub(crate) fn dispatch_shared(
    shared: &Shared,
    caller: &mut Caller,
    text: &str,
    out: &mut Vec<u8>,
) -> (Verdict, Option<Arc<[u8]>>) {
    let started = metrics::now();
    let base = out.len();
    // With the cache off nothing is asked before the payload is read: it is read at once.
    let mut env = if shared.answers.is_on() {
        envelope::read_pending(text)
    } else {
        envelope::read(text)
    };
    let mut tail = None;
    let (kind, outcome, verdict) = respond(shared, caller, text, &mut env, out, &mut tail);
    let id = match &env {
        Ok(env) => &*env.id,
        Err(e) => e.id.as_deref().unwrap_or(""),
    };
    // The one place a request is counted (by type and outcome, with its latency and sizes).
    metrics::observe(&metrics::Request {
        kind,
        ok: outcome == Outcome::Served,
        elapsed: started.until(metrics::now()),
        id,
        req_bytes: text.len(),
        resp_bytes: out.len() - base + tail.as_ref().map_or(0, |t| t.len()),
        conn: caller.id,
        ip: &caller.ip,
        name: caller.name.as_deref(),
    });
    (verdict, tail)
}

fn respond<'t>(
    shared: &Shared,
    caller: &mut Caller,
    text: &'t str,
    env: &mut Result<Envelope<'t, Data<'t>>, EnvelopeError<'t>>,
    out: &mut Vec<u8>,
    tail: &mut Option<Arc<[u8]>>,
) -> (Option<MsgType>, Outcome, Verdict) {
    let env = match env {
        Ok(env) => env,
        Err(e) => {
            refuse(caller, out, e.id.as_deref(), e.message);
            if e.id.is_none() {
                caller.bad_streak += 1;
                if caller.bad_streak > MAX_BAD_STREAK {
                    return (
                        None,
                        Outcome::Refused,
                        Verdict::Close(1008, "too many invalid frames"),
                    );
                }
            }
            return (None, Outcome::Refused, Verdict::Continue);
        }
    };
    caller.bad_streak = 0;
    let id = &*env.id;
    let Some(kind) = MsgType::parse(&env.kind) else {
        let text = if env.kind == AUTH_TYPE {
            AUTH_TEXT
        } else {
            UNKNOWN_TYPE
        };
        refuse(caller, out, Some(id), text);
        return (None, Outcome::Refused, Verdict::Continue);
    };
    if caller.key.is_revoked() {
        return (
            Some(kind),
            Outcome::Closed,
            Verdict::Close(1008, "API key revoked"),
        );
    }
    if let Err(text) = authorize(&caller.key, kind.permission()) {
        refuse(caller, out, Some(id), text);
        return (Some(kind), Outcome::Refused, Verdict::Continue);
    }
    // A `qry`'s or `qdoc`'s payload in the SDKs' shape is left unread by the envelope's reader
    // (`Data::Pending`): the answer cache is asked first, with `data` as sent, still escaped;
    // the key it is remembered under once read (see `Data::Read`), so a hit reads nothing more.
    let max = shared.config.max_response_bytes;
    let data = std::mem::replace(&mut env.data, Data::Text(Cow::Borrowed("")));
    let mut missed = None;
    if let Data::Pending { escaped, .. } = data {
        if let Some(c) = shared.answers.candidate(kind, escaped, true) {
            if serve_cached(shared, &c, id, max, out, tail) {
                return (Some(kind), Outcome::Served, Verdict::Continue);
            }
            missed = Some(c);
        }
    }
    // A payload read with the envelope comes decoded: its text is not needed, and the answer
    // cache takes a `qry`'s or `qdoc`'s `data` as sent, still escaped.
    let (data, read) = data.settle(text);
    // Never an `ins`: not remembered. A pending payload read now is remembered under the key
    // already asked; one that was not (an escape `read_scan` declines) under its text.
    let cacheable = match missed {
        Some(c) if read.is_some() => Some(c),
        _ => {
            let c = shared.answers.candidate(kind, &data, read.is_some());
            if let Some(c) = &c {
                if serve_cached(shared, c, id, max, out, tail) {
                    return (Some(kind), Outcome::Served, Verdict::Continue);
                }
            }
            c
        }
    };
    // One miss per request computed, however many keys it was asked under.
    if cacheable.is_some() {
        metrics::answer_cache::miss();
    }
    // `kind` is the type the payload was read for: the request its decoder makes of the text.
    let decoded = match read {
        Some(Read::Ins(records)) => Ok(Request::Ins(records)),
        Some(Read::Qry(q)) => Ok(Request::Qry(*q)),
        Some(Read::Qdoc(q)) => Ok(Request::Qdoc(*q)),
        None => ops::decode(kind, &data),
    };
    let req = match decoded {
        Ok(req) => req,
        Err(e) => {
            refuse(caller, out, Some(id), &e.to_string());
            return (Some(kind), Outcome::Refused, Verdict::Continue);
        }
    };
    let before = cacheable.as_ref().and_then(|_| {
        shared
            .answers
            .before(&shared.store, &mut caller.handles, &req)
    });
    let mut ctx = Ctx {
        store: &shared.store,
        handles: &mut caller.handles,
        keys: &shared.keys,
        sessions: &*shared.registry,
        session: caller.id,
        subs: &mut caller.subs,
        log: Log::new(shared.journal.as_ref(), &shared.live, Some(&caller.key)),
    };
    let base = out.len();
    // Where the answer's members start, after its id (what the answer cache remembers).
    let mut body = base;
    let result = (|| {
        let mut reply = Reply::begin(out, id, shared.config.max_response_bytes);
        body = reply.mark();
        ops::execute(&mut ctx, &req, &mut reply)?;
        Ok::<_, OpError>(reply.finish()?)
    })();
    let lsn = ctx.log.lsn();
    let touched = ctx.log.take_touched();
    caller.durable_upto = caller.durable_upto.max(lsn);
    if let Some(touched) = touched {
        caller.subs.touch(touched);
        shared.live.after_writes();
    }
    if let Request::Ins(records) = req {
        // Its records dropped, the vector is kept for the thread's next batch.
        batch_spare::give(records);
    }
    match result {
        Ok(()) => {
            if let (Some(c), Some(before)) = (&cacheable, before) {
                shared.answers.remember(c, before, &out[body..]);
            }
            (Some(kind), Outcome::Served, Verdict::Continue)
        }
        Err(e) => {
            if let OpError::Storage(detail) = &e {
                log::error!("connection {}: {detail}", caller.id);
            }
            out.truncate(base);
            refuse(caller, out, Some(id), &e.to_string());
            (Some(kind), Outcome::Refused, Verdict::Continue)
        }
    }
}

/// Answers `c` from the answer cache, counting a hit: whether it was answered.
fn serve_cached(
    shared: &Shared,
    c: &Candidate<'_>,
    id: &str,
    max: usize,
    out: &mut Vec<u8>,
    tail: &mut Option<Arc<[u8]>>,
) -> bool {
    match shared.answers.serve(c, id, max, out) {
        Served::Miss => false,
        Served::Copied => {
            metrics::answer_cache::hit();
            true
        }
        Served::Shared(rest) => {
            *tail = Some(rest);
            metrics::answer_cache::hit();
            true
        }
    }
}

fn refuse(caller: &mut Caller, out: &mut Vec<u8>, id: Option<&str>, message: &str) {
    caller.bad_total = caller.bad_total.saturating_add(1);
    if caller.bad_total <= LOGGED_BAD_REQUESTS {
        log::warn!("connection {}: bad request: {message}", caller.id);
    } else {
        log::debug!("connection {}: bad request: {message}", caller.id);
    }
    encode::error(out, id, message);
}
