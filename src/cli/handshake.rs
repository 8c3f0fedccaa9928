//! The client's WebSocket upgrade (RFC 6455 §4.1): the request, and the server's answer read
//! up to the end of its head. Whatever the server sent after the head (its first frames) is
//! handed to the frame reader, so no byte is lost between the two.

use super::frames::FrameReader;
use super::Error;
use std::io::{Read, Write};
use std::net::TcpStream;

/// The longest answer head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// The most of a refusal's body shown in the error.
const MAX_BODY: usize = 4 * 1024;

/// Upgrades `stream` to a WebSocket for `url` (`ws://authority/path?query`); bytes that came
/// after the server's answer go to `reader`.
pub fn upgrade(stream: &mut TcpStream, url: &str, reader: &mut FrameReader) -> Result<(), Error> {
    let rest = url.strip_prefix("ws://").unwrap_or(url);
    let (authority, target) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let key = tungstenite::handshake::client::generate_key();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| failed(format!("cannot send the request: {e}")))?;
    let mut got = Vec::with_capacity(1024);
    let head_len = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if got.len() > MAX_HEAD {
            return Err(failed(format!(
                "the answer's head is over {MAX_HEAD} bytes"
            )));
        }
        read_some(stream, &mut got)?;
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut answer = httparse::Response::new(&mut headers);
    match answer.parse(&got[..head_len]) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) | Err(_) => {
            return Err(failed("the server's answer is not HTTP".into()))
        }
    }
    let code = answer.code.unwrap_or(0);
    let header = |name: &str| {
        answer
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    if code != 101 {
        let reason = answer.reason.unwrap_or("").to_string();
        let length: usize = header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = got.split_off(head_len);
        while body.len() < length.min(MAX_BODY) {
            if read_some(stream, &mut body).is_err() {
                break;
            }
        }
        body.truncate(length.min(MAX_BODY));
        let body = String::from_utf8_lossy(&body).trim().to_string();
        return Err(Error::Connection(format!(
            "connection refused by the server: HTTP {code} {reason} {body}"
        )));
    }
    let upgraded = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && header("connection").is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
    if !upgraded {
        return Err(failed("the answer does not upgrade to WebSocket".into()));
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if header("sec-websocket-accept").as_deref() != Some(accept.as_str()) {
        return Err(failed("wrong Sec-WebSocket-Accept in the answer".into()));
    }
    if header("sec-websocket-extensions").is_some() {
        return Err(failed(
            "the server chose an extension the client did not offer".into(),
        ));
    }
    reader.preload(&got[head_len..]);
    Ok(())
}

fn failed(what: String) -> Error {
    Error::Connection(format!("WebSocket handshake failed: {what}"))
}

/// One read of `stream`, appended to `got`; the end of the stream is an error here.
fn read_some(stream: &mut TcpStream, got: &mut Vec<u8>) -> Result<(), Error> {
    let mut chunk = [0u8; 2048];
    match stream.read(&mut chunk) {
        Ok(0) => Err(failed("the server closed the connection".into())),
        Ok(n) => {
            got.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e) => Err(failed(format!("cannot read the answer: {e}"))),
    }
}
