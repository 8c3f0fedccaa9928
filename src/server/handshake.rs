//! The WebSocket upgrade: reads `api-key` and `name` from the request URI (form-decoded, first
//! occurrence wins; an `X-Api-Key` header is used when the query has no key), within a deadline.

use super::conn::Conn;
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

/// Runs the upgrade, giving up after `timeout` in total. The connection's reads never block
/// (`MSG_DONTWAIT`), so the deadline is checked after every read: with a blocking read
/// timeout, a client trickling one byte at a time never timed out (slowloris).
pub fn accept(
    conn: Conn,
    config: WebSocketConfig,
    timeout: Duration,
) -> Result<(Conn, Credentials), HandshakeFailure> {
    let deadline = Instant::now() + timeout;
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
    let mut attempt = tungstenite::accept_hdr_with_config(conn, callback, Some(config));
    loop {
        match attempt {
            // The connection's reads stop at the end of the request head, so tungstenite
            // holds no frame bytes: the socket alone carries on.
            Ok(ws) => return Ok((ws.into_inner(), creds)),
            Err(HandshakeError::Interrupted(mid)) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(HandshakeFailure::TimedOut);
                }
                mid.get_ref()
                    .get_ref()
                    .wait(false, left)
                    .map_err(|e| HandshakeFailure::Failed(e.to_string()))?;
                attempt = mid.handshake();
            }
            Err(HandshakeError::Failure(e)) => return Err(HandshakeFailure::Failed(e.to_string())),
        }
    }
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
