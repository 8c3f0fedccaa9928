//! The start of every connection: the request head, read once within a deadline, is either a
//! WebSocket upgrade (run by tungstenite; `api-key` and `name` come from the request URI,
//! form-decoded, first occurrence wins; an `X-Api-Key` header is used when the query has no
//! key) or a plain HTTP request for the router in `http/`.

use super::conn::Conn;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use tungstenite::handshake::server::{Request, Response};
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::WebSocketConfig;

/// What the client asked for in its upgrade request.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Credentials {
    pub api_key: Option<String>,
    pub name: Option<String>,
}

/// Why an upgrade did not complete.
#[derive(Debug)]
pub enum HandshakeFailure {
    TimedOut,
    Failed(String),
}

impl std::fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeFailure::TimedOut => f.write_str("timed out"),
            HandshakeFailure::Failed(e) => f.write_str(e),
        }
    }
}

/// The first value of each wanted parameter; empty values count as absent.
pub fn parse_query(query: Option<&str>) -> Credentials {
    let mut creds = Credentials::default();
    let mut seen_key = false;
    let mut seen_name = false;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "api-key" if !seen_key => {
                seen_key = true;
                creds.api_key = Some(v.into_owned()).filter(|s| !s.is_empty());
            }
            "name" if !seen_name => {
                seen_name = true;
                creds.name = Some(v.into_owned()).filter(|s| !s.is_empty());
            }
            _ => {}
        }
    }
    creds
}

/// The largest request head read; a longer one is cut off like a slow one.
pub const MAX_HEAD: usize = 64 * 1024;
/// Header lines parsed (as many as tungstenite accepts).
const MAX_HEADERS: usize = 124;

/// What a connection opened with.
pub enum Opened {
    /// A completed WebSocket upgrade (the 101 is queued on the connection).
    WebSocket(Conn, Credentials),
    /// A plain HTTP request (or a malformed one), to be answered once.
    Http(Conn, HttpRequest),
    /// An upgrade request that cannot be taken, to be answered with its reason.
    BadUpgrade(Conn, BadUpgrade),
}

/// Why an upgrade request was refused (RFC 6455 §4.2.2): 426 with the version this server
/// speaks for another `Sec-WebSocket-Version`, else 400.
#[derive(Debug, Clone, PartialEq)]
pub struct BadUpgrade {
    pub status: u16,
    pub reason: String,
}

/// A plain HTTP request head. `method` is empty when the head could not be parsed.
#[derive(Debug, Default, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
}

impl HttpRequest {
    pub fn is_malformed(&self) -> bool {
        self.method.is_empty()
    }
}

/// Reads the request head once (within `timeout`, at most [`MAX_HEAD`] bytes), then either
/// runs the WebSocket upgrade on it (any path, as before) or hands it back as a plain HTTP
/// request. The connection's reads never block (`MSG_DONTWAIT`), so the deadline is checked
/// after every read: with a blocking read timeout, a client trickling one byte at a time never
/// timed out (slowloris).
pub fn accept(
    mut conn: Conn,
    config: WebSocketConfig,
    timeout: Duration,
) -> Result<Opened, HandshakeFailure> {
    let deadline = Instant::now() + timeout;
    let head = read_head(&mut conn, deadline)?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let parsed = matches!(req.parse(&head), Ok(httparse::Status::Complete(_)));
    let (Some(method), Some(target), true) = (req.method, req.path, parsed) else {
        return Ok(Opened::Http(conn, HttpRequest::default()));
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let upgrade = header("upgrade").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
    });
    if upgrade {
        return match upgrade_with(head, &mut conn, config) {
            Upgrade::Done(creds) => Ok(Opened::WebSocket(conn, creds)),
            Upgrade::Refused(bad) => Ok(Opened::BadUpgrade(conn, bad)),
            Upgrade::Failed(e) => Err(e),
        };
    }
    if !target.starts_with('/') {
        return Ok(Opened::Http(conn, HttpRequest::default()));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (target, None),
    };
    let request = HttpRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        authorization: header("authorization").map(str::to_owned),
    };
    Ok(Opened::Http(conn, request))
}

/// Reads up to the blank line that ends the request head, and not a byte further (the
/// connection's reads stop there), so frames a client sends right behind its upgrade request
/// stay in the socket for the session's frame reader.
fn read_head(conn: &mut Conn, deadline: Instant) -> Result<Vec<u8>, HandshakeFailure> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        match conn.read(&mut chunk) {
            Ok(0) => {
                return Err(HandshakeFailure::Failed(
                    "closed before the end of the request head".into(),
                ))
            }
            Ok(n) => {
                head.extend_from_slice(&chunk[..n]);
                if head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n") {
                    return Ok(head);
                }
                if head.len() > MAX_HEAD {
                    return Err(HandshakeFailure::Failed(format!(
                        "request head longer than {MAX_HEAD} bytes"
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(HandshakeFailure::TimedOut);
                }
                conn.wait(false, left)
                    .map_err(|e| HandshakeFailure::Failed(e.to_string()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HandshakeFailure::Failed(e.to_string())),
        }
    }
}

/// The head already read, replayed to tungstenite; what it writes goes to the connection's
/// queue.
struct Replay<'c> {
    head: Vec<u8>,
    at: usize,
    conn: &'c mut Conn,
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.head[self.at..];
        if rest.is_empty() {
            // The whole head was handed over: tungstenite never needs more.
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Replay<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.conn.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.conn.flush()
    }
}

/// How an upgrade ended.
enum Upgrade {
    Done(Credentials),
    Refused(BadUpgrade),
    Failed(HandshakeFailure),
}

/// Runs tungstenite's upgrade on a complete head.
fn upgrade_with(head: Vec<u8>, conn: &mut Conn, config: WebSocketConfig) -> Upgrade {
    let replay = Replay { head, at: 0, conn };
    let mut creds = Credentials::default();
    #[allow(clippy::result_large_err)] // the error type is tungstenite's
    let callback = |req: &Request, resp: Response| {
        creds = parse_query(req.uri().query());
        if creds.api_key.is_none() {
            creds.api_key = req
                .headers()
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .filter(|s| !s.is_empty());
        }
        Ok(resp)
    };
    let outcome = tungstenite::accept_hdr_with_config(replay, callback, Some(config)).map(drop);
    match outcome {
        // The head held no frame bytes: the socket alone carries on.
        Ok(()) => Upgrade::Done(creds),
        Err(HandshakeError::Interrupted(_)) => Upgrade::Failed(HandshakeFailure::Failed(
            "incomplete upgrade request".into(),
        )),
        Err(HandshakeError::Failure(e)) => match refusal(&e) {
            Some(bad) => Upgrade::Refused(bad),
            None => Upgrade::Failed(HandshakeFailure::Failed(e.to_string())),
        },
    }
}

/// The answer to an upgrade request tungstenite refused; `None` when the connection itself
/// failed (nothing to answer on).
fn refusal(e: &tungstenite::Error) -> Option<BadUpgrade> {
    use tungstenite::error::ProtocolError;
    use tungstenite::Error;
    let reason = match e {
        Error::Protocol(ProtocolError::MissingSecWebSocketVersionHeader) => {
            return Some(BadUpgrade {
                status: 426,
                reason: "unsupported WebSocket version: this server speaks version 13".into(),
            })
        }
        Error::Protocol(ProtocolError::WrongHttpMethod) => "a WebSocket upgrade must be a GET",
        Error::Protocol(ProtocolError::WrongHttpVersion) => {
            "a WebSocket upgrade needs HTTP/1.1 or later"
        }
        Error::Protocol(ProtocolError::MissingConnectionUpgradeHeader) => {
            "a WebSocket upgrade needs a Connection header with the upgrade token"
        }
        Error::Protocol(ProtocolError::MissingUpgradeWebSocketHeader) => {
            "a WebSocket upgrade needs the header Upgrade: websocket"
        }
        Error::Protocol(ProtocolError::MissingSecWebSocketKey) => {
            "a WebSocket upgrade needs a Sec-WebSocket-Key header"
        }
        Error::Protocol(ProtocolError::InvalidSecWebSocketKey) => {
            "Sec-WebSocket-Key must be 16 bytes in base64"
        }
        Error::Io(_) | Error::ConnectionClosed | Error::AlreadyClosed => return None,
        _ => "bad upgrade request",
    };
    Some(BadUpgrade {
        status: 400,
        reason: reason.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let name = |q: &str| {
            parse_query(Some(&format!("name={q}")))
                .name
                .unwrap_or_default()
        };
        assert_eq!(name("my+app"), "my app");
        assert_eq!(name("a%2Bb+c"), "a+b c");
        assert_eq!(name("100%"), "100%");
        assert_eq!(name("%zz%4"), "%zz%4");
        assert_eq!(name("%C3%A9"), "é");
        assert_eq!(name("a%3Db%26c"), "a=b&c");
        let c = parse_query(Some("api%2Dkey=k&&name"));
        assert_eq!(c.api_key.as_deref(), Some("k"));
        assert_eq!(c.name, None);
    }

    #[test]
    fn query_rules() {
        let c = parse_query(Some("api-key=master-key&api-key=nope&name=ops&x=1"));
        assert_eq!(c.api_key.as_deref(), Some("master-key"));
        assert_eq!(c.name.as_deref(), Some("ops"));
        assert_eq!(parse_query(Some("api-key=&name=")), Credentials::default());
        assert_eq!(parse_query(None), Credentials::default());
    }
}
