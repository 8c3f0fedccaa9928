//! One connection's loop: read frames, hand each text frame to the dispatcher, queue the
//! replies; the queue is flushed only when no further input is already buffered, so pipelined
//! requests cost one write per batch. Pushes from other threads join the queue at every turn
//! (see `registry.rs` for the push seam).

use super::conn::Conn;
use super::dispatch::{self, Caller, Verdict};
use super::frames::{Event, FrameError, FrameReader, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
use super::registry::{Opening, SessionHandle};
use super::Shared;
use crate::clipped::Clipped;
use crate::live;
use crate::protocol::encode;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// How long a client may leave more than the send-buffer limit unread.
const SEND_STALL: Duration = Duration::from_secs(5);
/// How often a connection stalled on a client that does not read checks for close requests.
const CLOSE_CHECK: Duration = Duration::from_millis(100);
/// How long the server waits for its close frame to leave, and for the peer to hang up.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Replies queued past this many bytes are written before the rest of the buffered requests
/// are served. High on purpose: flushing earlier (16, 32 or 64 KiB) was measured to cost more
/// CPU per answer (a `send` every few answers, each running the loopback receive path too) and
/// to lower the rate of 1 connection × 32 `qry` answering 100 records (issue 17).
const FLUSH_AT: usize = 256 * 1024;

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
    caller: Caller,
}

/// Serves an authenticated connection until it ends.
pub(crate) fn run(shared: &Shared, mut conn: Conn, who: Opening) {
    let (id, key) = (who.id, who.key.clone());
    let scope = key.scope();
    // The session's one lifecycle object. Dropped before `conn` (a parameter), even when
    // unwinding: other threads must stop touching the socket before it is closed.
    let life = shared
        .registry
        .register(who, Some(conn.socket().as_raw_fd()));
    let handle = life.handle();
    // Dropped before `conn` (a parameter) too: the wake handler stops touching the socket.
    let _wake = super::signals::WakeTarget::new(conn.socket().as_raw_fd());
    log::info!(
        "connection {id} opened: ip={} name={} scope={}",
        handle.ip,
        Clipped(handle.name.as_deref().unwrap_or("")),
        scope.name()
    );
    let mut s = Session {
        shared,
        handle,
        caller: Caller::new(id, key, handle.ip.clone(), handle.name.clone()),
    };
    conn.push_frame(OP_TEXT, encode::READY.as_bytes());
    let flow = s.serve(&mut conn);
    // Off the list before anything else goes out: once a client has seen its close handshake
    // complete, `conn` on another connection must not show it.
    life.unlist();
    let flow = if s.durable().is_err() {
        Flow::Drop
    } else {
        flow
    };
    match flow {
        Flow::Close(code, reason) => {
            if reason == live::KEY_REVOKED {
                // Pushes already taken leave first, then each subscription's end.
                handle.take_pushes(conn.queue());
                s.caller
                    .subs
                    .end_all(reason, |frame| conn.push_frame(OP_TEXT, &frame));
            }
            conn.push_close(code, reason);
            let _ = conn.flush_within(CLOSE_LINGER);
            handle.mark_closed();
            conn.finish(CLOSE_LINGER);
        }
        Flow::Continue | Flow::End => {
            handle.take_pushes(conn.queue());
            let _ = conn.flush_within(CLOSE_LINGER);
        }
        Flow::Drop => {
            // Queued acknowledgements must not leave: hang up without them.
            let _ = conn.socket().shutdown(std::net::Shutdown::Both);
        }
    }
    let (ip, name) = (handle.ip.clone(), handle.name.clone());
    drop(life);
    log::info!(
        "connection {id} closed: ip={ip} name={}",
        Clipped(name.as_deref().unwrap_or(""))
    );
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
        // The last sign of life from the client: bytes from it (a frame, or part of a large
        // one still arriving), or output it took (a large answer read over a slow link).
        let mut last_rx = Instant::now();
        let mut pinged = false;
        let mut unread = 0;
        let mut more_waiting = false;
        loop {
            if let Some((code, reason)) = self.handle.close_request() {
                return Flow::Close(code, reason);
            }
            let queued = conn.pending();
            self.handle
                .take_pushes_within(conn.queue(), queued, cfg.send_buffer_bytes);
            if conn.pending() > cfg.send_buffer_bytes {
                if let Err(flow) = self.drain_backlog(conn) {
                    return flow;
                }
            }
            if let Err(flow) = self.serve_buffered(&mut frames, conn) {
                return flow;
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
            // Idle: pushes now go straight to the socket. Some arrived meanwhile: send them.
            if block && !self.handle.enter_idle(conn.queue()) {
                continue;
            }
            let spare = frames.spare();
            let room = spare.len();
            let received = conn.recv(spare, block);
            if block {
                self.handle.leave_idle(conn.queue());
            }
            // A wake shortened the read timeout (see `signals`): set it again.
            if super::signals::take_woken() && conn.socket().set_read_timeout(Some(tick)).is_err() {
                return Flow::End;
            }
            match received {
                Ok(0) => {
                    return match self.handle.close_request() {
                        Some((code, reason)) => Flow::Close(code, reason),
                        None => Flow::End,
                    }
                }
                Ok(n) => {
                    frames.filled(n);
                    more_waiting = n == room;
                    last_rx = Instant::now();
                    pinged = false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => more_waiting = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Flow::End,
            }
            if last_rx.elapsed() >= tick {
                // Output waiting for the client, here and in the socket (sent, not yet
                // acknowledged by its machine): less of it than at the last look means the
                // client is reading. A client that is gone acknowledges nothing.
                let waiting = conn.pending() + conn.unacknowledged();
                if waiting < unread {
                    last_rx = Instant::now();
                    pinged = false;
                }
                unread = waiting;
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
        while conn.pending() <= limit {
            let flow = match frames.next() {
                Ok(None) => return Ok(served),
                Ok(Some(Event::Text(text))) => self.handle_text(text, conn),
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

    /// No sign of life from the client for a tick or more: ping a quiet client, close one
    /// silent for too long.
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

    fn handle_text(&mut self, text: &str, conn: &mut Conn) -> Flow {
        let start = conn.begin_text();
        let (verdict, tail) =
            dispatch::dispatch_shared(self.shared, &mut self.caller, text, conn.queue());
        conn.end_text_with(start, tail);
        if conn.pending() > FLUSH_AT {
            if let Err(flow) = self.send(conn) {
                return flow;
            }
        }
        match verdict {
            Verdict::Continue => Flow::Continue,
            Verdict::Close(code, reason) => Flow::Close(code, reason),
        }
    }

    /// Waits until every queued acknowledgement is durable; then the pushes of the writes
    /// they acknowledge may leave too (to their subscribers).
    fn durable(&mut self) -> Result<(), Flow> {
        let upto = self.made_durable()?;
        self.caller.subs.flush(upto);
        Ok(())
    }

    /// Waits until every queued acknowledgement is durable; returns the log position waited
    /// for (the pushes up to there may leave).
    fn made_durable(&mut self) -> Result<u64, Flow> {
        let upto = self.caller.durable_upto;
        if upto > 0 {
            if let Some(journal) = self.shared.journal.as_ref() {
                journal.wait(upto).map_err(|e| {
                    log::error!(
                        "connection {}: {}; dropping the connection unacknowledged",
                        self.handle.id,
                        e
                    );
                    Flow::Drop
                })?;
            }
            self.caller.durable_upto = 0;
        }
        Ok(upto)
    }

    /// Makes queued acknowledgements durable, writes what the socket takes now, and hands the
    /// subscribers their pushes: small deliveries before the acknowledgements, large ones after
    /// (the acknowledgements do not wait for them).
    fn send(&mut self, conn: &mut Conn) -> Result<(), Flow> {
        let upto = self.made_durable()?;
        self.caller.subs.flush_small(upto);
        let sent = conn.write_some();
        self.caller.subs.flush(upto);
        sent.map(|_| ()).map_err(|_| Flow::End)
    }
}
