//! `fluxiondb healthcheck`: exits 0 when the server on this machine is ready, 1 when it is
//! not. Meant for container health checks (the image's `HEALTHCHECK` runs it in exec form: a
//! `FROM scratch` image has no shell and no curl) and for scripts.
//!
//! It sends `GET /readyz` over plain HTTP on the server's port and reads the status line: 200 is
//! healthy; anything else (503 `recovering`, `storage unavailable: …`, `fenced: …`,
//! `shutting down`) is not, and the one-line reason the server gave is printed. No key is
//! needed and no WebSocket is opened, so a probe every few seconds leaves no connection lines
//! in the server's log.
//! `--secret-key` / `SECRET_KEY` are still accepted (and ignored) so existing health-check
//! command lines keep working.
//!
//! Host names: IP literals, `localhost` and the names of `/etc/hosts` (which Docker writes into
//! every container) are resolved here, without the C library; only other names go to
//! `getaddrinfo`. In the static binary that is glibc's, which loads NSS modules at run time: in
//! the `FROM scratch` image there are none and it falls back to its built-in files and DNS
//! lookups (measured: `localhost`, `/etc/hosts` names and DNS names all resolve there), but on a
//! host whose NSS modules come from another glibc version it would load those, which glibc
//! does not support. The common cases therefore never reach it.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The most of an answer that is read: the readiness answer is a status line, a few headers
/// and one short line.
const MAX_ANSWER: u64 = 16 * 1024;

/// Flags of `fluxiondb healthcheck`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Accepted for older health-check command lines and ignored: the probe needs no key.
    #[arg(
        short = 's',
        long = "secret-key",
        env = "SECRET_KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<String>,

    /// Host of the server: an IP address, `localhost`, a name from /etc/hosts, or another
    /// name (resolved by the system resolver).
    #[arg(long = "host", default_value = "localhost")]
    pub host: String,

    /// Port of the server (the server's own `PORT` variable is read as well).
    #[arg(short = 'p', long = "port", env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Seconds to wait for the whole check.
    #[arg(long = "timeout", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3_600), value_name = "SECONDS")]
    pub timeout: u64,
}

/// Runs the check, prints one line (stdout when healthy, stderr when not) and returns the exit
/// status: success, or 1.
pub fn run(args: &Args) -> ExitCode {
    let started = Instant::now();
    match check(args) {
        Ok(addr) => {
            println!(
                "healthy: {addr} answered in {} ms",
                started.elapsed().as_millis()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fluxiondb healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(args: &Args) -> Result<SocketAddr, String> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let addrs = resolve(&args.host, args.port)?;
    let mut failures = Vec::new();
    for addr in addrs {
        match probe(addr, deadline) {
            Ok(()) => return Ok(addr),
            // The server answered and is not ready: that is the answer, whatever other
            // addresses of the name might say.
            Err(Failure::NotReady(reason)) => return Err(format!("{addr}: {reason}")),
            Err(Failure::Unreachable(e)) => failures.push(format!("{addr}: {e}")),
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Err(failures.join("; "))
}

/// Why one address did not pass.
#[derive(Debug, PartialEq)]
enum Failure {
    /// An HTTP answer other than 200: its status and the first line of its body.
    NotReady(String),
    /// No answer, or not an HTTP one.
    Unreachable(String),
}

fn left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
    } else {
        Ok(left)
    }
}

/// One connection: `GET /readyz`, then the answer up to the server's close.
fn probe(addr: SocketAddr, deadline: Instant) -> Result<(), Failure> {
    let io_err = |e: io::Error| {
        Failure::Unreachable(match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "no answer in time".into(),
            _ => e.to_string(),
        })
    };
    let mut stream = TcpStream::connect_timeout(&addr, left(deadline).map_err(io_err)?)
        .map_err(|e| Failure::Unreachable(format!("cannot connect: {e}")))?;
    stream
        .set_write_timeout(Some(left(deadline).map_err(io_err)?))
        .map_err(io_err)?;
    let request = format!(
        "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: fluxiondb-healthcheck\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io_err)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        stream
            .set_read_timeout(Some(left(deadline).map_err(io_err)?))
            .map_err(io_err)?;
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.len() as u64 >= MAX_ANSWER || head_and_body_read(&answer) {
            break;
        }
    }
    verdict(&answer)
}

/// Whether `answer` holds its whole head and as much body as its `Content-Length` says.
fn head_and_body_read(answer: &[u8]) -> bool {
    let Some(end) = find(answer, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..end]);
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    length.is_some_and(|n| answer.len() >= end + 4 + n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Healthy on status 200; otherwise the status and the first line of the body.
fn verdict(answer: &[u8]) -> Result<(), Failure> {
    let text = String::from_utf8_lossy(answer);
    let status_line = text.lines().next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok());
    let Some(status) = status else {
        return Err(Failure::Unreachable(if text.is_empty() {
            "closed without an answer".into()
        } else {
            format!("not an HTTP answer: {}", first_chars(status_line))
        }));
    };
    if status == 200 {
        return Ok(());
    }
    let reason = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| body.lines().next())
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .unwrap_or("no reason given");
    Err(Failure::NotReady(format!(
        "not ready: {status} {}",
        first_chars(reason)
    )))
}

/// At most 200 characters of `s`, so a stray answer cannot flood the output.
fn first_chars(s: &str) -> String {
    s.chars().take(200).collect()
}

/// The addresses of `host`, IPv4 first, resolved without NSS where possible (see the module
/// documentation).
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let mut ips: Vec<IpAddr> = if let Ok(ip) = bare.parse::<IpAddr>() {
        vec![ip]
    } else if is_localhost(bare) {
        vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
    } else {
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let found = hosts_lookup(&hosts, bare);
        if found.is_empty() {
            (bare, port)
                .to_socket_addrs()
                .map_err(|e| {
                    format!(
                        "cannot resolve {bare}: {e} (an IP address, localhost or a name from \
                         /etc/hosts needs no resolver)"
                    )
                })?
                .map(|a| a.ip())
                .collect()
        } else {
            found
        }
    };
    ips.sort_by_key(|ip| ip.is_ipv6());
    ips.dedup();
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

fn is_localhost(host: &str) -> bool {
    let h = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// The addresses `/etc/hosts` (given as text) lists for `name`, in file order.
fn hosts_lookup(hosts: &str, name: &str) -> Vec<IpAddr> {
    hosts
        .lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            // An address with a zone (fe80::1%eth0) does not parse and is skipped.
            let ip = words.next()?.parse::<IpAddr>().ok()?;
            words.any(|w| w.eq_ignore_ascii_case(name)).then_some(ip)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_without_nss() {
        let v4 = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(resolve("10.1.2.3", 80).unwrap(), [v4("10.1.2.3:80")]);
        assert_eq!(resolve("[::1]", 80).unwrap(), [v4("[::1]:80")]);
        assert_eq!(
            resolve("LocalHost.", 8080).unwrap(),
            [v4("127.0.0.1:8080"), v4("[::1]:8080")]
        );
    }

    #[test]
    fn reads_hosts_files() {
        let hosts = "# comment\n127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n\
                     172.17.0.2 abc123 db.internal # the container\nfe80::1%eth0 zoned\n";
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(hosts_lookup(hosts, "DB.internal"), [ip("172.17.0.2")]);
        assert_eq!(hosts_lookup(hosts, "ip6-localhost"), [ip("::1")]);
        assert!(hosts_lookup(hosts, "the").is_empty());
        assert!(hosts_lookup(hosts, "zoned").is_empty());
    }

    #[test]
    fn reads_answers() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nready\n";
        assert!(head_and_body_read(ok));
        assert!(!head_and_body_read(&ok[..ok.len() - 1]));
        assert_eq!(verdict(ok), Ok(()));
        let busy = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 11\r\n\r\nrecovering\n";
        assert_eq!(
            verdict(busy),
            Err(Failure::NotReady("not ready: 503 recovering".into()))
        );
        assert_eq!(
            verdict(b"HTTP/1.0 503\r\n\r\n"),
            Err(Failure::NotReady("not ready: 503 no reason given".into()))
        );
        assert_eq!(
            verdict(b"SSH-2.0-x\r\n"),
            Err(Failure::Unreachable("not an HTTP answer: SSH-2.0-x".into()))
        );
        assert_eq!(
            verdict(b""),
            Err(Failure::Unreachable("closed without an answer".into()))
        );
    }
}
