//! An `https://` S3 endpoint: the client speaks TLS (rustls, compiled into the binary) and
//! verifies the endpoint's certificate against the web PKI roots compiled in with it, so a
//! replica started against an endpoint with a self-signed certificate refuses it and says why.
//!
//! What is not tested here, and why: a successful exchange over https. It needs an endpoint
//! whose certificate chains to one of the compiled-in public roots, which no local server can
//! present (that takes a certificate a public CA issued for a name that resolves to the test
//! machine), and the client has no way to trust another CA on purpose — a scratch image has no
//! CA bundle, so the roots are the compiled-in ones only. SeaweedFS can serve TLS, but only
//! with a certificate this client would refuse exactly as below. Everything after the TLS layer
//! (requests, signing, status codes) is the same code the plain-http SeaweedFS tests prove.

use crate::common::{bare_command, TempDir, MASTER};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};
use std::io::Read;
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A self-signed certificate for 127.0.0.1 and localhost (ECDSA P-256, server use, valid
/// until 2126), made for this test with `openssl req -x509`; its key follows.
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIByjCCAXCgAwIBAgIUUgiJMFKXFxtwEMkJGf0eEazxLLMwCgYIKoZIzj0EAwIw
IjEgMB4GA1UEAwwXZmx1eGlvbmRiIHRlc3QgZW5kcG9pbnQwIBcNMjYxMjA2MDQ1
MjI5WhgPMjEyNjExMTIwNDUyMjlaMCIxIDAeBgNVBAMMF2ZsdXhpb25kYiB0ZXN0
IGVuZHBvaW50MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEM4zgggmulodFfsce
pIczp0xWGGsaE0mPIeZ6hBIqUhliIxxJS9gxERjOF/nKTnlL69oOOuhkZGVW4/pk
jC8LvKOBgTB/MB0GA1UdDgQWBBTmcfGixTlJ6EKlJvTIC2Hw4P7F5zAfBgNVHSME
GDAWgBTmcfGixTlJ6EKlJvTIC2Hw4P7F5zAaBgNVHREEEzARhwR/AAABgglsb2Nh
bGhvc3QwDAYDVR0TAQH/BAIwADATBgNVHSUEDDAKBggrBgEFBQcDATAKBggqhkjO
PQQDAgNIADBFAiAtBeno4ukCrVHqWs3RqpzrrSgxY3v4qLvKBm/1zULQDAIhAPaN
7RzaZNbbUxWM3W8N1jjLMayCSczNVgCwMaJwhFos
-----END CERTIFICATE-----
";

const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgu06d2wApTCqR3o/V
M/KKbIHAd9/RH/sGmNftQ/4KeS6hRANCAAQzjOCCCa6Wh0V+xx6khzOnTFYYaxoT
SY8h5nqEEipSGWIjHElL2DERGM4X+cpOeUvr2g466GRkZVbj+mSMLwu8
-----END PRIVATE KEY-----
";

/// How a connection to the endpoint went.
#[derive(Debug, PartialEq)]
enum Handshake {
    Completed,
    /// The client went away during the handshake, after the endpoint had sent `sent` bytes
    /// (its hello and certificate, when the client's hello was a valid TLS one).
    Ended {
        sent: usize,
    },
}

/// A TLS endpoint on an ephemeral port presenting [`CERT`]; each connection's handshake
/// outcome is sent on the channel (the thread ends at the first connection after the receiver
/// is gone).
fn tls_endpoint() -> (u16, mpsc::Receiver<Handshake>) {
    let cert = CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).unwrap();
    // The one provider compiled in (ring) is the default.
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut tcp) = stream else { continue };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
            let mut conn = ServerConnection::new(config.clone()).unwrap();
            let mut sent = 0;
            let outcome = loop {
                while conn.wants_write() {
                    match conn.write_tls(&mut tcp) {
                        Ok(n) if n > 0 => sent += n,
                        _ => break,
                    }
                }
                if !conn.is_handshaking() {
                    break Handshake::Completed;
                }
                match conn.read_tls(&mut tcp) {
                    Ok(n) if n > 0 && conn.process_new_packets().is_ok() => {}
                    _ => break Handshake::Ended { sent },
                }
            };
            if tx.send(outcome).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

#[test]
fn a_replica_refuses_an_https_endpoint_whose_certificate_no_compiled_in_root_vouches_for() {
    let (port, handshakes) = tls_endpoint();
    let dir = TempDir::new();
    let d = dir.data().display().to_string();
    let mut child = bare_command()
        .args([
            "--secret-key",
            MASTER,
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--replica-of",
            "s3://bucket/prefix",
            "--data",
            &d,
        ])
        .envs([
            ("AWS_ENDPOINT_URL", format!("https://127.0.0.1:{port}")),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test-secret".into()),
            ("AWS_S3_FORCE_PATH_STYLE", "true".into()),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The endpoint answered a TLS hello with its certificate, and the client broke off.
    let first = handshakes.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(
        matches!(first, Handshake::Ended { sent } if sent > 0),
        "{first:?}"
    );

    // And the replica does not start, naming the reason.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the replica did not give up");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains("invalid peer certificate: UnknownIssuer"),
        "{stderr}"
    );
}
