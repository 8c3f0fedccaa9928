//! One connection's loop: read frame → decode → authorize → execute → encode → queue; the
//! queue is flushed only when no further input is already buffered, so pipelined requests cost
//! one write per batch.

use super::conn::Conn;
use super::frames::{Event, FrameError, FrameReader, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
use super::registry::SessionHandle;
use super::Shared;
use crate::auth::authorize;
use crate::metrics;
use crate::ops::{self, Ctx};
use crate::protocol::{encode, envelope, request, MsgType};
use crate::store::Handles;
use std::cell::{Cell, RefCell};
use std::io;
use std::time::{Duration, Instant};

/// How long a client may leave more than the send-buffer limit unread.
const SEND_STALL: Duration = Duration::from_secs(5);
/// How often a connection stalled on a client that does not read checks for close requests.
const CLOSE_CHECK: Duration = Duration::from_millis(100);
/// How long the server waits for its close frame to leave, and for the peer to hang up.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Consecutive id-less invalid frames tolerated before the connection is closed.
const MAX_BAD_STREAK: u32 = 100;
/// Invalid requests logged at warning level per connection; later ones go to debug.
const LOGGED_BAD_REQUESTS: u32 = 20;

const AUTH_TEXT: &str = "auth messages are not supported; use the api-key query parameter";

/// What the loop does after a frame.
enum Flow {
    Continue,
    Close(u16, &'static str),
    /// The peer is gone or the connection is finished.
    End,
    /// Queued acknowledgements cannot be made durable: hang up without sending them.
    Drop,
}

struct Session<'s> {
    shared: &'s Shared,
    handle: &'s SessionHandle,
    bad_streak: u32,
    bad_total: u32,
    /// Queued acknowledgements may leave only once the log is durable up to here.
    durable_upto: u64,
    handles: RefCell<Handles>,
    /// The type of the request being served, once known (for metrics).
    kind: Option<MsgType>,
    /// Whether the request being served was answered with an error (for metrics).
    refused: bool,
    /// The id of the request being served, once known (for the slow-request log).
    id: String,
}

/// Serves an authenticated connection until it ends.
pub fn run(shared: &Shared, handle: &SessionHandle, mut conn: Conn) {
    // Dropped before `conn` (a parameter), even when unwinding: the registry must stop
    // touching the socket's descriptor before the socket is closed.
    let _closed = MarkClosed(handle);
    let mut s = Session {
        shared,
        handle,
        bad_streak: 0,
        bad_total: 0,
        durable_upto: 0,
        handles: RefCell::default(),
        kind: None,
        refused: false,
        id: String::new(),
    };
    conn.push_frame(OP_TEXT, encode::READY.as_bytes());
    let flow = s.serve(&mut conn);
    // Off the list before anything else goes out: once a client has seen its close handshake
    // complete, `conn` on another connection must not show it.
    shared.registry.unregister(handle);
    let flow = if s.durable().is_err() {
        Flow::Drop
    } else {
        flow
    };
    match flow {
        Flow::Close(code, reason) => {
            conn.push_close(code, reason);
            let _ = conn.flush_within(CLOSE_LINGER);
            handle.mark_closed();
            conn.finish(CLOSE_LINGER);
        }
        Flow::Continue | Flow::End => {
            let _ = conn.flush_within(CLOSE_LINGER);
        }
        Flow::Drop => {
            // Queued acknowledgements must not leave: hang up without them.
            let _ = conn.socket().shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Marks a session closed when dropped.
struct MarkClosed<'h>(&'h SessionHandle);

impl Drop for MarkClosed<'_> {
    fn drop(&mut self) {
        self.0.mark_closed();
    }
}

/// How often a blocked read wakes up to check the idle timers: a quarter of the ping interval.
fn tick(ping_interval: Duration) -> Duration {
    (ping_interval / 4).max(Duration::from_millis(10))
}

impl Session<'_> {
    /// The loop: serve every complete frame buffered, flush the responses in one write, then
    /// block in `recv` (two system calls per batch of pipelined requests). A read that filled
    /// the buffer may have left more input in the socket: that is read before flushing.
    fn serve(&mut self, conn: &mut Conn) -> Flow {
        let cfg = &self.shared.config;
        let tick = tick(cfg.ping_interval);
        if conn.socket().set_read_timeout(Some(tick)).is_err() {
            return Flow::End;
        }
        let mut frames = FrameReader::new(cfg.max_message_bytes);
        let mut last_rx = Instant::now();
        let mut pinged = false;
        let mut more_waiting = false;
        loop {
            if let Some((code, reason)) = self.handle.close_request() {
                return Flow::Close(code, reason);
            }
            if conn.pending() > cfg.send_buffer_bytes {
                if let Err(flow) = self.drain_backlog(conn) {
                    return flow;
                }
            }
            match self.serve_buffered(&mut frames, conn) {
                // Only complete frames count as activity: a client trickling bytes of a frame
                // it never finishes is as idle as a silent one.
                Ok(0) => {}
                Ok(_) => {
                    last_rx = Instant::now();
                    pinged = false;
                }
                Err(flow) => return flow,
            }
            if conn.pending() > cfg.send_buffer_bytes {
                // Requests are left unserved until the client has read enough.
                continue;
            }
            if !more_waiting {
                if let Err(flow) = self.send(conn) {
                    return flow;
                }
                frames.shrink_if_idle();
                if conn.pending() > 0 {
                    // The client is slow to read: wait for either direction.
                    if conn.wait(true, tick).is_err() {
                        return Flow::End;
                    }
                }
            }
            let block = !more_waiting && conn.pending() == 0;
            let spare = frames.spare();
            let room = spare.len();
            match conn.recv(spare, block) {
                Ok(0) => {
                    return match self.handle.close_request() {
                        Some((code, reason)) => Flow::Close(code, reason),
                        None => Flow::End,
                    }
                }
                Ok(n) => {
                    frames.filled(n);
                    more_waiting = n == room;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => more_waiting = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Flow::End,
            }
            if last_rx.elapsed() >= tick {
                if let Err(flow) = self.idle(conn, last_rx, &mut pinged) {
                    return flow;
                }
            }
        }
    }

    /// Serves the complete frames in `frames`, stopping early when more than the send-buffer
    /// limit is queued; returns how many it served.
    fn serve_buffered(&mut self, frames: &mut FrameReader, conn: &mut Conn) -> Result<usize, Flow> {
        let limit = self.shared.config.send_buffer_bytes;
        let mut served = 0;
        // One clock read per request: a request starts when the one before it ended.
        let mut clock = None;
        while conn.pending() <= limit {
            let flow = match frames.next() {
                Ok(None) => return Ok(served),
                Ok(Some(Event::Text(text))) => {
                    let started = *clock.get_or_insert_with(metrics::now);
                    let (flow, ended) = self.handle_text(text, conn, started);
                    clock = Some(ended);
                    flow
                }
                Ok(Some(Event::Ping(payload))) => {
                    conn.push_frame(OP_PONG, payload);
                    Flow::Continue
                }
                Ok(Some(Event::Pong)) => Flow::Continue,
                Ok(Some(Event::Close(echo))) => {
                    // The close handshake: answer with the peer's code and reason.
                    match echo {
                        Some((code, reason)) => conn.push_close(code, reason),
                        None => conn.push_frame(OP_CLOSE, &[]),
                    }
                    Flow::End
                }
                Err(e) => {
                    let (code, reason) = e.close();
                    if e == FrameError::Protocol {
                        log::debug!("connection {}: protocol error", self.handle.id);
                    }
                    Flow::Close(code, reason)
                }
            };
            served += 1;
            match flow {
                Flow::Continue => {}
                other => return Err(other),
            }
        }
        Ok(served)
    }

    /// No complete frame came for a tick or more: ping a quiet client, close one silent for
    /// too long.
    fn idle(&mut self, conn: &mut Conn, last_rx: Instant, pinged: &mut bool) -> Result<(), Flow> {
        let cfg = &self.shared.config;
        let quiet = last_rx.elapsed();
        if quiet >= cfg.idle_timeout {
            return Err(Flow::Close(1001, "idle timeout"));
        }
        if !*pinged && quiet >= cfg.ping_interval {
            conn.push_frame(OP_PING, &[]);
            *pinged = true;
        }
        Ok(())
    }

    /// More than the send-buffer limit is queued: stop reading until the client catches up.
    fn drain_backlog(&mut self, conn: &mut Conn) -> Result<(), Flow> {
        let limit = self.shared.config.send_buffer_bytes;
        let deadline = Instant::now() + SEND_STALL;
        while conn.pending() > limit {
            self.send(conn)?;
            if conn.pending() <= limit {
                break;
            }
            if self.handle.close_request().is_some() {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::warn!(
                    "connection {}: client stopped reading; closing",
                    self.handle.id
                );
                return Err(Flow::Close(1008, "send buffer limit exceeded"));
            }
            // Writable only: the client's unread requests keep the socket readable, which would
            // make this loop spin. Wake up now and then for close requests (they shut the read
            // side, which only a readable wait would notice).
            conn.wait_writable(left.min(CLOSE_CHECK))
                .map_err(|_| Flow::End)?;
        }
        Ok(())
    }

    /// Serves one request that started at `started`; returns when it ended (or, after a
    /// flush, when the flush ended).
    fn handle_text(
        &mut self,
        text: &str,
        conn: &mut Conn,
        started: metrics::Stamp,
    ) -> (Flow, metrics::Stamp) {
        (self.kind, self.refused) = (None, false);
        if self.id.capacity() > 256 {
            self.id = String::new();
        } else {
            self.id.clear();
        }
        let start = conn.begin_text();
        let flow = self.respond(text, conn.queue());
        let resp_bytes = conn.queue().len() - start - 4;
        conn.end_text(start);
        let ended = metrics::now();
        metrics::observe(&metrics::Request {
            kind: self.kind,
            ok: !self.refused,
            elapsed: started.until(ended),
            id: &self.id,
            req_bytes: text.len(),
            resp_bytes,
            conn: self.handle.id,
            ip: &self.handle.ip,
            name: self.handle.name.as_deref(),
        });
        if conn.pending() > 256 * 1024 {
            if let Err(flow) = self.send(conn) {
                return (flow, ended);
            }
            return (flow, metrics::now());
        }
        (flow, ended)
    }

    /// Waits until every queued acknowledgement is durable.
    fn durable(&mut self) -> Result<(), Flow> {
        if self.durable_upto == 0 {
            return Ok(());
        }
        let Some(journal) = self.shared.journal.as_ref() else {
            return Ok(());
        };
        journal.wait(self.durable_upto).map_err(|e| {
            log::error!(
                "connection {}: {}; dropping the connection unacknowledged",
                self.handle.id,
                e
            );
            Flow::Drop
        })?;
        self.durable_upto = 0;
        Ok(())
    }

    /// Makes queued acknowledgements durable, then writes what the socket takes now.
    fn send(&mut self, conn: &mut Conn) -> Result<(), Flow> {
        self.durable()?;
        conn.write_some().map(|_| ()).map_err(|_| Flow::End)
    }

    /// Appends the response to one request to `out`.
    fn respond(&mut self, text: &str, out: &mut Vec<u8>) -> Flow {
        let base = out.len();
        let env = match envelope::parse(text) {
            Ok(env) => env,
            Err(e) => {
                self.refuse(out, e.id.as_deref(), e.message);
                if e.id.is_none() {
                    self.bad_streak += 1;
                    if self.bad_streak > MAX_BAD_STREAK {
                        return Flow::Close(1008, "too many invalid frames");
                    }
                }
                return Flow::Continue;
            }
        };
        self.bad_streak = 0;
        let id = &*env.id;
        self.id.push_str(id);
        let Some(kind) = MsgType::parse(&env.kind) else {
            self.refuse(out, Some(id), "Unknown message type");
            return Flow::Continue;
        };
        self.kind = Some(kind);
        if kind == MsgType::Auth {
            self.refuse(out, Some(id), AUTH_TEXT);
            return Flow::Continue;
        }
        let key = &self.handle.key;
        if key.is_revoked() {
            return Flow::Close(1008, "API key revoked");
        }
        if let Err(text) = authorize(key, kind.permission()) {
            self.refuse(out, Some(id), text);
            return Flow::Continue;
        }
        let req = match request::decode(kind, &env.data) {
            Ok(req) => req,
            Err(e) => {
                self.refuse(out, Some(id), &e.to_string());
                return Flow::Continue;
            }
        };
        let shared = self.shared;
        let ctx = Ctx {
            store: &shared.store,
            handles: &self.handles,
            keys: &shared.keys,
            sessions: &shared.registry,
            session: self.handle.id,
            max_response: shared.config.max_response_bytes,
            journal: shared.journal.as_ref(),
            lsn: Cell::new(0),
        };
        let result = ops::execute(&ctx, id, req, out);
        self.durable_upto = self.durable_upto.max(ctx.lsn.get());
        if let Err(e) = result {
            if let ops::OpError::Storage(detail) = &e {
                log::error!("connection {}: {detail}", self.handle.id);
            }
            out.truncate(base);
            self.refuse(out, Some(id), &e.to_string());
        }
        Flow::Continue
    }

    fn refuse(&mut self, out: &mut Vec<u8>, id: Option<&str>, message: &str) {
        self.refused = true;
        self.bad_total = self.bad_total.saturating_add(1);
        if self.bad_total <= LOGGED_BAD_REQUESTS {
            log::warn!("connection {}: bad request: {message}", self.handle.id);
        } else {
            log::debug!("connection {}: bad request: {message}", self.handle.id);
        }
        encode::error(out, id, message);
    }
}
