//! One client connection on a blocking `TcpStream`: a hand-written WebSocket handshake, then a
//! pipelined loop that keeps D requests in flight, writes every refill in one `write`, and
//! matches responses in order (the server answers each connection's requests in order).

use crate::requests::{decimal, Generator};
use crate::stats::Counters;
use crate::wire::{self, FrameReader, Rng, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long a request may stay unanswered before the run fails.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed `ws://` URL with the API key added to its query.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub authority: String,
    path: String,
}

/// `application/x-www-form-urlencoded` encoding of one query value.
fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Endpoint {
    pub fn parse(url: &str, key: &str) -> Result<Endpoint, String> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("{url}: only ws:// URLs are supported"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("{url}: no host"));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let mut path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        path.push(if path.contains('?') { '&' } else { '?' });
        path.push_str("api-key=");
        path.push_str(&form_encode(key));
        Ok(Endpoint { authority, path })
    }

    pub fn from_addr(addr: &str, key: &str) -> Result<Endpoint, String> {
        Endpoint::parse(&format!("ws://{addr}/"), key)
    }
}

/// When to send and what to count.
#[derive(Clone, Copy)]
pub struct Plan {
    pub depth: usize,
    /// Responses received from this instant on are measured.
    pub start: Instant,
    /// No request is sent from this instant on (None: until the generator is exhausted).
    pub end: Option<Instant>,
}

pub struct Client {
    sock: TcpStream,
    reader: FrameReader,
    out: Vec<u8>,
    scratch: Vec<u8>,
    rng: Rng,
}

fn io_err(what: &str, e: io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!("{what}: timed out"),
        _ => format!("{what}: {e}"),
    }
}

impl Client {
    /// Connects, upgrades and waits for the server's `ready` frame.
    pub fn connect(ep: &Endpoint, name: &str, salt: u64) -> Result<Client, String> {
        let addr = ep
            .authority
            .to_socket_addrs()
            .map_err(|e| format!("resolving {}: {e}", ep.authority))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", ep.authority))?;
        let mut sock = TcpStream::connect_timeout(&addr, HANDSHAKE_TIMEOUT)
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        sock.set_nodelay(true)
            .map_err(|e| format!("setting TCP_NODELAY: {e}"))?;
        sock.set_read_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(|e| format!("setting a read timeout: {e}"))?;
        let mut rng = Rng::seeded(salt);
        let mut nonce = [0u8; 16];
        rng.fill(&mut nonce);
        let key = wire::base64(&nonce);
        let req = format!(
            "GET {}&name={} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            ep.path,
            form_encode(name),
            ep.authority
        );
        sock.write_all(req.as_bytes())
            .map_err(|e| io_err("sending the upgrade request", e))?;
        let mut head = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        let end = loop {
            let n = sock
                .read(&mut chunk)
                .map_err(|e| io_err("reading the upgrade response", e))?;
            if n == 0 {
                return Err("the server closed the connection during the upgrade".into());
            }
            head.extend_from_slice(&chunk[..n]);
            if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if head.len() > 64 * 1024 {
                return Err("upgrade response headers are too long".into());
            }
        };
        let text = String::from_utf8_lossy(&head[..end]);
        let status = text.lines().next().unwrap_or("");
        if !status.starts_with("HTTP/1.1 101") {
            return Err(format!("upgrade refused: {status}"));
        }
        let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let accept = text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("sec-websocket-accept")
                .then(|| v.trim().to_string())
        });
        if accept.as_deref() != Some(expected.as_str()) {
            return Err(format!(
                "upgrade response has a wrong Sec-WebSocket-Accept: {accept:?}"
            ));
        }
        let mut reader = FrameReader::new(256 * 1024);
        reader.preload(&head[end..]);
        let mut c = Client {
            sock,
            reader,
            out: Vec::with_capacity(64 * 1024),
            scratch: Vec::with_capacity(4096),
            rng,
        };
        c.await_ready()?;
        c.sock
            .set_read_timeout(Some(RESPONSE_TIMEOUT))
            .map_err(|e| format!("setting a read timeout: {e}"))?;
        Ok(c)
    }

    fn await_ready(&mut self) -> Result<(), String> {
        loop {
            while let Some(f) = self.reader.next_frame().map_err(|e| e.to_string())? {
                let p = self.reader.payload(&f);
                match f.opcode {
                    OP_TEXT => {
                        let t = String::from_utf8_lossy(p);
                        if t.contains("\"ready\"") {
                            return Ok(());
                        }
                        return Err(format!("expected the ready frame, got {t}"));
                    }
                    OP_CLOSE => {
                        return Err(format!(
                            "server closed the connection: {}",
                            wire::describe_close(p)
                        ))
                    }
                    _ => {}
                }
            }
            match self.reader.fill_from(&mut self.sock) {
                Ok(0) => return Err("server closed the connection before ready".into()),
                Ok(_) => {}
                Err(e) => return Err(io_err("waiting for ready", e)),
            }
        }
    }

    /// Sends request `seq` of `gen` alone and returns its answer (an error answer is an
    /// error): how the answer-size ceiling captures our server's answer to a shape.
    pub fn ask(&mut self, gen: &mut Generator, seq: u64) -> Result<Vec<u8>, String> {
        self.scratch.clear();
        if gen.write(seq, &mut self.scratch).is_none() {
            return Err("the request generator is exhausted".into());
        }
        wire::push_masked(&mut self.out, OP_TEXT, &self.scratch, self.rng.mask());
        self.sock
            .write_all(&self.out)
            .map_err(|e| io_err("sending a request", e))?;
        self.out.clear();
        loop {
            while let Some(f) = self.reader.next_frame().map_err(|e| e.to_string())? {
                let p = self.reader.payload(&f);
                match f.opcode {
                    OP_TEXT => {
                        return match check_response(p, seq)? {
                            Outcome::Ok => Ok(p.to_vec()),
                            Outcome::Error => Err(format!(
                                "error answer: {}",
                                String::from_utf8_lossy(&p[..p.len().min(300)])
                            )),
                        }
                    }
                    OP_CLOSE => {
                        return Err(format!(
                            "the server closed the connection: {}",
                            wire::describe_close(p)
                        ))
                    }
                    _ => {}
                }
            }
            match self.reader.fill_from(&mut self.sock) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("waiting for an answer", e)),
            }
        }
    }

    /// Sends requests from `gen` following `plan` until the window ends (or the generator is
    /// exhausted) and every request in flight is answered. The connection stays open.
    pub fn run(&mut self, gen: &mut Generator, plan: Plan) -> Result<Counters, String> {
        let mut c = Counters::new();
        let mut inflight: VecDeque<(u64, Instant, u64)> = VecDeque::with_capacity(plan.depth);
        let mut seq: u64 = 1;
        let mut exhausted = false;
        let mut now = Instant::now();
        loop {
            let sending = !exhausted && plan.end.is_none_or(|e| now < e);
            let mut added = 0;
            while sending && inflight.len() < plan.depth {
                self.scratch.clear();
                let Some(recs) = gen.write(seq, &mut self.scratch) else {
                    exhausted = true;
                    break;
                };
                wire::push_masked(&mut self.out, OP_TEXT, &self.scratch, self.rng.mask());
                inflight.push_back((seq, now, recs));
                seq += 1;
                added += 1;
            }
            if !self.out.is_empty() {
                let t = Instant::now();
                for e in inflight.iter_mut().rev().take(added) {
                    e.1 = t;
                }
                self.sock
                    .write_all(&self.out)
                    .map_err(|e| io_err("sending requests", e))?;
                c.bytes_out += self.out.len() as u64;
                self.out.clear();
            }
            if inflight.is_empty() {
                break;
            }
            let n = match self.reader.fill_from(&mut self.sock) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(io_err(
                        &format!("waiting for {} responses", inflight.len()),
                        e,
                    ))
                }
            };
            now = Instant::now();
            c.bytes_in += n as u64;
            let measured = now >= plan.start && plan.end.is_none_or(|e| now < e);
            while let Some(f) = self.reader.next_frame().map_err(|e| e.to_string())? {
                if !f.fin {
                    return Err("fragmented frames are not expected from the server".into());
                }
                let p = self.reader.payload(&f);
                match f.opcode {
                    OP_TEXT => {
                        let (seq_sent, sent, recs) = inflight.pop_front().ok_or_else(|| {
                            format!("unexpected frame: {}", String::from_utf8_lossy(p))
                        })?;
                        match check_response(p, seq_sent)? {
                            Outcome::Ok => {
                                if !measured {
                                    continue;
                                }
                                c.responses += 1;
                                c.last_response = Some(now);
                                c.latency.record(now - sent);
                                c.records += if recs > 0 {
                                    recs
                                } else {
                                    *c.sample_records.get_or_insert_with(|| count_records(p))
                                };
                            }
                            Outcome::Error => {
                                c.errors += 1;
                                if c.first_error.is_none() {
                                    c.first_error = Some(String::from_utf8_lossy(p).into_owned());
                                }
                            }
                        }
                    }
                    OP_PING => {
                        self.scratch.clear();
                        self.scratch.extend_from_slice(p);
                        wire::push_masked(&mut self.out, OP_PONG, &self.scratch, self.rng.mask());
                    }
                    OP_PONG => {}
                    OP_CLOSE => {
                        return Err(format!(
                            "the server closed the connection: {}",
                            wire::describe_close(p)
                        ))
                    }
                    op => return Err(format!("unexpected frame opcode {op}")),
                }
            }
        }
        Ok(c)
    }

    /// The upgraded socket, its read buffer (which may already hold frames) and the masking
    /// generator, for a caller that speaks its own protocol over the connection.
    pub fn into_parts(self) -> (TcpStream, FrameReader, Rng) {
        (self.sock, self.reader, self.rng)
    }

    /// Sends a close frame and waits briefly for the server's.
    pub fn close(mut self) {
        let payload = wire::close_payload(1000, "done");
        wire::push_masked(&mut self.out, OP_CLOSE, &payload, self.rng.mask());
        if self.sock.write_all(&self.out).is_err() {
            return;
        }
        let _ = self.sock.set_read_timeout(Some(Duration::from_secs(1)));
        loop {
            match self.reader.next_frame() {
                Ok(Some(f)) if f.opcode == OP_CLOSE => return,
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(_) => return,
            }
            match self.reader.fill_from(&mut self.sock) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

enum Outcome {
    Ok,
    Error,
}

/// Checks that a response starts with `{"id":"<expected>"` and tells success from error.
fn check_response(p: &[u8], expected: u64) -> Result<Outcome, String> {
    const HEAD: &[u8] = b"{\"id\":\"";
    let bad = || {
        let shown = &p[..p.len().min(300)];
        format!(
            "response out of order or malformed (expected id {expected}): {}",
            String::from_utf8_lossy(shown)
        )
    };
    let rest = p.strip_prefix(HEAD).ok_or_else(bad)?;
    let mut buf = [0u8; 20];
    let rest = rest
        .strip_prefix(decimal(expected, &mut buf))
        .ok_or_else(bad)?;
    let rest = rest.strip_prefix(b"\"").ok_or_else(bad)?;
    if rest.starts_with(b",\"error\"") {
        Ok(Outcome::Error)
    } else {
        Ok(Outcome::Ok)
    }
}

/// Records in a `qry` (object) or `qdoc` (array) response, parsed once per connection.
fn count_records(p: &[u8]) -> u64 {
    match serde_json::from_slice::<serde_json::Value>(p) {
        Ok(v) => match &v["records"] {
            serde_json::Value::Object(m) => m.len() as u64,
            serde_json::Value::Array(a) => a.len() as u64,
            _ => 0,
        },
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = Endpoint::parse("ws://127.0.0.1:9000", "k y").unwrap();
        assert_eq!(e.authority, "127.0.0.1:9000");
        assert_eq!(e.path, "/?api-key=k+y");
        let e = Endpoint::parse("ws://h/ws?x=1", "k").unwrap();
        assert_eq!(e.authority, "h:80");
        assert_eq!(e.path, "/ws?x=1&api-key=k");
        assert!(Endpoint::parse("wss://h", "k").is_err());
    }

    #[test]
    fn responses() {
        assert!(matches!(
            check_response(b"{\"id\":\"12\"}", 12),
            Ok(Outcome::Ok)
        ));
        assert!(matches!(
            check_response(b"{\"id\":\"12\",\"error\":\"x\"}", 12),
            Ok(Outcome::Error)
        ));
        assert!(check_response(b"{\"id\":\"13\"}", 12).is_err());
        assert!(check_response(b"{\"id\":\"123\"}", 12).is_err());
        assert_eq!(
            count_records(b"{\"id\":\"1\",\"records\":{\"a\":{\"ts\":1,\"data\":\"\"}}}"),
            1
        );
    }
}
