//! The client's connection: a blocking WebSocket over a std `TcpStream` (framing in
//! `frames.rs`, the upgrade in `handshake.rs`) that authenticates with the `api-key` query
//! parameter, waits for `ready`, and then carries requests that may be pipelined — several sent
//! before the first answer is read. The server answers one connection's requests in order, so
//! answers are matched against a FIFO of ids. An answer is handed out in place in the read
//! buffer, never copied.

use super::frames::{self, FrameError, FrameReader, Kind, Masks};
use super::handshake;
use super::Error;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long connecting, the handshake and the `ready` frame may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for one answer once connected (a guard against a server that went silent).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest answer accepted (the server's own default limit is 256 MiB).
const MAX_ANSWER: usize = 1024 * 1024 * 1024;
/// Queued request bytes that are sent at once rather than held for the next flush.
const SEND_BUFFER: usize = 128 * 1024;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub apikey: String,
    pub name: Option<String>,
}

pub struct Client {
    stream: TcpStream,
    reader: FrameReader,
    /// Frames queued to be sent.
    out: Vec<u8>,
    masks: Masks,
    next_id: u64,
    pending: VecDeque<u64>,
}

impl Client {
    pub fn connect(t: &Target) -> Result<Client, Error> {
        let (url, host, port) = request_url(&t.url, &t.apikey, t.name.as_deref())?;
        let addrs: Vec<_> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| Error::Connection(format!("cannot resolve {host}: {e}")))?
            .collect();
        let mut last = format!("cannot resolve {host}");
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = format!("cannot connect to {a}: {e}"),
            }
        }
        let mut stream = stream.ok_or(Error::Connection(last))?;
        let setup = |e: std::io::Error| Error::Connection(e.to_string());
        stream.set_nodelay(true).map_err(setup)?;
        stream
            .set_read_timeout(Some(CONNECT_TIMEOUT))
            .map_err(setup)?;
        stream
            .set_write_timeout(Some(ANSWER_TIMEOUT))
            .map_err(setup)?;
        let mut reader = FrameReader::new(MAX_ANSWER);
        handshake::upgrade(&mut stream, &url, &mut reader)?;
        let mut client = Client {
            stream,
            reader,
            out: Vec::new(),
            masks: Masks::new(),
            next_id: 1,
            pending: VecDeque::new(),
        };
        client.wait_ready()?;
        client
            .stream
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .map_err(setup)?;
        Ok(client)
    }

    /// Requests sent whose answer has not been read yet.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Queues one request (`data` is the payload's JSON text); it leaves with the next
    /// [`Client::flush`] or [`Client::recv`].
    pub fn send(&mut self, kind: &str, data: &str) -> Result<(), Error> {
        let mut frame = String::with_capacity(data.len() + data.len() / 8 + 48);
        frame.push_str("{\"id\":\"");
        frame.push_str(&self.next_id.to_string());
        frame.push_str("\",\"type\":\"");
        frame.push_str(kind);
        frame.push_str("\",\"data\":");
        super::output::push_json_str(&mut frame, data);
        frame.push('}');
        self.send_frame(&frame)
    }

    /// Like [`Client::send`] with the payload already escaped as the inside of a JSON string
    /// (see [`escape_token`]), which spares bulk senders a second pass over their payload.
    pub fn send_escaped(&mut self, kind: &str, escaped: &str) -> Result<(), Error> {
        let mut frame = String::with_capacity(escaped.len() + 48);
        frame.push_str("{\"id\":\"");
        frame.push_str(&self.next_id.to_string());
        frame.push_str("\",\"type\":\"");
        frame.push_str(kind);
        frame.push_str("\",\"data\":\"");
        frame.push_str(escaped);
        frame.push_str("\"}");
        self.send_frame(&frame)
    }

    fn send_frame(&mut self, text: &str) -> Result<(), Error> {
        let key = self.masks.next_key();
        frames::push_masked(&mut self.out, frames::OP_TEXT_OUT, text.as_bytes(), key);
        self.pending.push_back(self.next_id);
        self.next_id += 1;
        if self.out.len() >= SEND_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), Error> {
        if !self.out.is_empty() {
            self.stream
                .write_all(&self.out)
                .map_err(|e| Error::Connection(format!("send failed: {e}")))?;
            self.out.clear();
        }
        Ok(())
    }

    /// The next text message, pings answered on the way, or the server's close (what to say
    /// about a close depends on when it comes). `waiting_for` names the wait in a timeout.
    fn next_text(&mut self, waiting_for: &str) -> Result<Next, Error> {
        loop {
            match self.reader.next() {
                Ok(Some(f)) => match f.kind {
                    Kind::Text => return Ok(Next::Text(f)),
                    Kind::Ping => {
                        let key = self.masks.next_key();
                        let payload = self.reader.payload(&f).to_vec();
                        frames::push_masked(&mut self.out, frames::OP_PONG, &payload, key);
                        self.flush()?;
                    }
                    Kind::Pong => {}
                    Kind::Close => {
                        let close = frames::close_parts(self.reader.payload(&f))
                            .map_err(frame_error)?
                            .map(|(code, reason)| {
                                (code, String::from_utf8_lossy(reason).into_owned())
                            });
                        return Ok(Next::Closed(close));
                    }
                },
                Ok(None) => match self.reader.fill_from(&mut self.stream) {
                    Ok(0) => return Ok(Next::Closed(None)),
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        return Err(Error::Connection(format!(
                            "timed out waiting for the server's {waiting_for}"
                        )))
                    }
                    Err(e) => return Err(Error::Connection(format!("connection lost: {e}"))),
                },
                Err(e) => return Err(frame_error(e)),
            }
        }
    }

    /// Reads the answer to the oldest request in flight and returns its text (in place in the
    /// read buffer). An answer with an `error` member is returned as that error.
    pub fn recv(&mut self) -> Result<&str, Error> {
        let bytes = self.recv_bytes()?;
        std::str::from_utf8(bytes).map_err(|_| Error::Server("an answer that is not UTF-8".into()))
    }

    /// [`Client::recv`] without checking the whole answer as UTF-8, for a reader that checks
    /// what it uses (the export's `page`).
    pub fn recv_bytes(&mut self) -> Result<&[u8], Error> {
        self.flush()?;
        let want = self
            .pending
            .pop_front()
            .ok_or(Error::Internal("no request in flight"))?;
        let f = match self.next_text("answer")? {
            Next::Text(f) => f,
            Next::Closed(close) => {
                return Err(Error::Connection(match close {
                    Some((code, reason)) => {
                        format!("the server closed the connection: {code} {reason}")
                    }
                    None => "the server closed the connection".into(),
                }))
            }
        };
        let answer = self.reader.payload(&f);
        check_answer(answer, want)?;
        Ok(answer)
    }

    /// One request, its answer parsed.
    pub fn call(&mut self, kind: &str, payload: &Value) -> Result<Value, Error> {
        self.send(kind, &payload.to_string())?;
        let text = self.recv()?;
        serde_json::from_str(text)
            .map_err(|e| Error::Server(format!("invalid answer from the server: {e}")))
    }

    /// Sends a close frame (normal closure); the server's answer is not waited for.
    pub fn close(mut self) {
        let key = self.masks.next_key();
        frames::push_masked(
            &mut self.out,
            frames::OP_CLOSE_OUT,
            &1000u16.to_be_bytes(),
            key,
        );
        let _ = self.flush();
    }

    /// Closes the main connection of a transfer and all its workers.
    pub fn close_all(main: Client, workers: Vec<Client>) {
        main.close();
        for w in workers {
            w.close();
        }
    }

    fn wait_ready(&mut self) -> Result<(), Error> {
        let f = match self.next_text("ready message")? {
            Next::Text(f) => f,
            Next::Closed(Some((_, reason))) => {
                return Err(Error::Connection(format!(
                    "authentication failed: {reason}"
                )))
            }
            Next::Closed(None) => {
                return Err(Error::Connection("the server closed the connection".into()))
            }
        };
        let v: Value = serde_json::from_slice(self.reader.payload(&f))
            .map_err(|_| Error::Server("the server's first message is not JSON".into()))?;
        if v["type"] == "ready" {
            return Ok(());
        }
        Err(Error::Server(format!(
            "expected a ready message, got {}",
            String::from_utf8_lossy(self.reader.payload(&f))
        )))
    }
}

/// What [`Client::next_text`] met.
enum Next {
    Text(frames::Frame),
    /// The server's close frame (its code and reason, if any), or the end of the stream.
    Closed(Option<(u16, String)>),
}

fn frame_error(e: FrameError) -> Error {
    match e {
        FrameError::Binary => Error::Server(e.to_string()),
        other => Error::Connection(format!("connection lost: {other}")),
    }
}

/// Appends valid JSON text `json` escaped as the inside of a JSON string: valid JSON has no raw
/// control characters, so only `"` and `\\` need escaping.
pub fn escape_token(out: &mut String, json: &str) {
    let mut rest = json;
    while let Some(i) = rest.find(['"', '\\']) {
        out.push_str(&rest[..i]);
        out.push('\\');
        out.push_str(&rest[i..i + 1]);
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Checks the id of an answer and turns an `error` member into an error. Only the start of the
/// answer is looked at for the id (the server writes it first); an answer that goes on with its
/// `records` is not looked at further, others get a substring test for `"error"` first so that
/// large answers are not parsed twice.
fn check_answer(answer: &[u8], want: u64) -> Result<(), Error> {
    let expect = format!("{{\"id\":\"{want}\"");
    if let Some(rest) = answer.strip_prefix(expect.as_bytes()) {
        if rest.starts_with(b",\"records\":") {
            return Ok(());
        }
    }
    let text = std::str::from_utf8(answer)
        .map_err(|_| Error::Server("an answer that is not UTF-8".into()))?;
    if text.starts_with(&expect) {
        let has_error = text.len() < 64 * 1024 && text.contains("\"error\"");
        if !has_error {
            return Ok(());
        }
    }
    // The slow path: parse the envelope (small answers, errors, or another member order).
    #[derive(serde::Deserialize)]
    struct Env {
        id: Option<String>,
        error: Option<String>,
    }
    let env: Env = serde_json::from_str(text)
        .map_err(|e| Error::Server(format!("invalid answer from the server: {e}")))?;
    if let Some(err) = env.error {
        return Err(Error::Server(err));
    }
    match env.id {
        Some(id) if id == want.to_string() => Ok(()),
        Some(id) => Err(Error::Server(format!(
            "answer for request {id} arrived while waiting for {want}"
        ))),
        None => Err(Error::Server("answer without an id".into())),
    }
}

/// A usage error, its message formatted as by `format!`.
macro_rules! usage {
    ($($arg:tt)*) => {
        Error::Usage(format!($($arg)*))
    };
}

/// The URL to request (`api-key` and `name` set in the query, form-encoded) and the host and
/// port to connect to. `http://` is taken as `ws://`.
pub fn request_url(
    raw: &str,
    apikey: &str,
    name: Option<&str>,
) -> Result<(String, String, u16), Error> {
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or_else(|| usage!("invalid URL {raw:?}: expected ws://host:port"))?;
    match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => {}
        "wss" | "https" => {
            return Err(usage!(
                "invalid URL {raw:?}: this client speaks plain ws:// only (no TLS); connect to the server directly or through a tunnel"
            ))
        }
        _ => return Err(usage!("invalid URL {raw:?}: scheme must be ws")),
    }
    let (before_frag, _) = rest.split_once('#').unwrap_or((rest, ""));
    let (hostpath, query) = before_frag.split_once('?').unwrap_or((before_frag, ""));
    let (authority, path) = match hostpath.find('/') {
        Some(i) => (&hostpath[..i], &hostpath[i..]),
        None => (hostpath, "/"),
    };
    let authority = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    if authority.is_empty() {
        return Err(usage!("invalid URL {raw:?}: no host"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| usage!("invalid URL {raw:?}"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| usage!("invalid port in {raw:?}"))?,
            None => 80,
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| usage!("invalid port in {raw:?}"))?,
            ),
            None => (authority.to_string(), 80),
        }
    };
    let mut q: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let k = p.split('=').next().unwrap_or("");
            k != "api-key" && !(name.is_some() && k == "name")
        })
        .map(str::to_string)
        .collect();
    q.push(format!("api-key={}", form_encode(apikey)));
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        q.push(format!("name={}", form_encode(n)));
    }
    Ok((
        format!("ws://{authority}{path}?{}", q.join("&")),
        host,
        port,
    ))
}

/// `application/x-www-form-urlencoded` for one value: a space becomes `+`.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (u, h, p) = request_url("ws://127.0.0.1:9000", "k y+", Some("ops team")).unwrap();
        assert_eq!(u, "ws://127.0.0.1:9000/?api-key=k+y%2B&name=ops+team");
        assert_eq!((h.as_str(), p), ("127.0.0.1", 9000));
        let (u, h, p) = request_url("http://[::1]/ws?x=1&api-key=old", "k", None).unwrap();
        assert_eq!(u, "ws://[::1]/ws?x=1&api-key=k");
        assert_eq!((h.as_str(), p), ("::1", 80));
        assert!(request_url("wss://h", "k", None).is_err());
        assert!(request_url("h:1", "k", None).is_err());
        let mut s = String::new();
        escape_token(&mut s, r#"{"a":"x\"y\\z"}"#);
        assert_eq!(s, r#"{\"a\":\"x\\\"y\\\\z\"}"#);
    }
}
