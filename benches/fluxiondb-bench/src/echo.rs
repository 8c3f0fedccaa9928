//! A minimal WebSocket server with the same transport shape as FluxionDB (one thread per
//! connection, responses queued and written once per read, i.e. only when no further input is
//! buffered) that answers every text frame with `{"id":"<its id>"}` and does nothing else: the
//! ceiling the real server can approach for the same client and load.

use crate::wire::{self, FrameReader, OP_CLOSE, OP_PING, OP_TEXT};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

const READY: &[u8] = br#"{"type":"ready","message":"Authentication successful"}"#;

/// Serves forever (until killed); prints `echo listening on ADDR` first.
pub fn serve(bind: &str, port: u16) -> Result<(), String> {
    let listener =
        TcpListener::bind((bind, port)).map_err(|e| format!("binding {bind}:{port}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("reading the bound address: {e}"))?;
    println!("echo listening on {addr}");
    io::stdout()
        .flush()
        .map_err(|e| format!("writing to stdout: {e}"))?;
    for sock in listener.incoming() {
        let sock = match sock {
            Ok(s) => s,
            Err(e) => {
                eprintln!("echo: accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("echo-conn".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                if let Err(e) = session(sock) {
                    if e.kind() != io::ErrorKind::UnexpectedEof {
                        eprintln!("echo: connection ended: {e}");
                    }
                }
            });
        if let Err(e) = spawned {
            eprintln!("echo: cannot start a connection thread: {e}");
        }
    }
    Ok(())
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads the upgrade request, answers 101 and returns bytes read beyond the request.
fn handshake(sock: &mut TcpStream) -> io::Result<Vec<u8>> {
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = sock.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > 64 * 1024 {
            return Err(invalid("request headers too long"));
        }
    };
    let text = String::from_utf8_lossy(&head[..end]);
    let key = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("sec-websocket-key")
                .then(|| v.trim().to_string())
        })
        .ok_or_else(|| invalid("no Sec-WebSocket-Key"))?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes();
    wire::push_plain(&mut resp, OP_TEXT, READY);
    sock.write_all(&resp)?;
    sock.set_read_timeout(None)?;
    Ok(head[end..].to_vec())
}

/// The `{"id":"…"}` reply to a request whose text starts with `{"id":"…"`.
fn push_ack(out: &mut Vec<u8>, req: &[u8]) {
    const HEAD: &[u8] = b"{\"id\":\"";
    let id = req
        .strip_prefix(HEAD)
        .and_then(|r| r.iter().position(|&b| b == b'"').map(|i| &r[..i]));
    match id {
        Some(id) => {
            let len = HEAD.len() + id.len() + 2;
            // Header, then the payload written straight into the queue.
            out.push(0x80 | OP_TEXT);
            if len < 126 {
                out.push(len as u8);
            } else {
                out.push(126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            out.extend_from_slice(HEAD);
            out.extend_from_slice(id);
            out.extend_from_slice(b"\"}");
        }
        None => wire::push_plain(
            out,
            OP_TEXT,
            br#"{"error":"echo: request does not start with an id"}"#,
        ),
    }
}

fn session(mut sock: TcpStream) -> io::Result<()> {
    sock.set_nodelay(true)?;
    let rest = handshake(&mut sock)?;
    let mut reader = FrameReader::new(256 * 1024);
    reader.preload(&rest);
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        while let Some(f) = reader.next_frame()? {
            let p = reader.payload(&f);
            match f.opcode {
                OP_TEXT => push_ack(&mut out, p),
                OP_PING => wire::push_plain(&mut out, wire::OP_PONG, p),
                OP_CLOSE => {
                    wire::push_plain(&mut out, OP_CLOSE, &p[..p.len().min(125)]);
                    sock.write_all(&out)?;
                    return Ok(());
                }
                _ => {}
            }
        }
        // Nothing complete is left in the buffer: write everything queued in one call.
        if !out.is_empty() {
            sock.write_all(&out)?;
            out.clear();
        }
        if reader.fill_from(&mut sock)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_carry_the_id() {
        let mut out = Vec::new();
        push_ack(&mut out, br#"{"id":"77","type":"ins","data":"[]"}"#);
        let mut r = FrameReader::new(64);
        r.preload(&out);
        let f = r.next_frame().unwrap().unwrap();
        assert_eq!(r.payload(&f), br#"{"id":"77"}"#);
    }
}
