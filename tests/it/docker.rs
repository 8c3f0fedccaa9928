//! The container image end to end (`make test-docker`, part of `make test`): the image that
//! `make docker-build` built is started with a named volume, written and read over WebSocket,
//! stopped with `docker stop` (SIGTERM to the binary running as PID 1: a final snapshot, exit
//! 0), started again as a new container on the same volume and read back; its HEALTHCHECK
//! (`fluxiondb healthcheck`, exec form, `GET /readyz`, resolving `localhost` without NSS)
//! reports healthy.
//!
//! Ignored by a plain `cargo test`: it needs a Docker daemon and the image. `make test-docker`
//! checks for the daemon (skipping with a message when there is none, failing under `CI=true`),
//! builds the image and runs this test with `FLUXIONDB_IMAGE` naming it.

use crate::common::{wait_until, Client, Frame, MASTER};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("docker {args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn must(args: &[&str]) -> String {
    docker(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Containers and the volume of one run, removed at the end whatever happens.
struct Cleanup {
    containers: Vec<String>,
    volume: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", c]);
        }
        let _ = docker(&["volume", "rm", "-f", &self.volume]);
    }
}

/// Starts a container of `image` on `volume` with the image's default arguments; returns the
/// host port published for 8080.
fn start(image: &str, name: &str, volume: &str) -> u16 {
    must(&[
        "run",
        "-d",
        "--name",
        name,
        "-e",
        &format!("SECRET_KEY={MASTER}"),
        "-p",
        "127.0.0.1::8080",
        "-v",
        &format!("{volume}:/data"),
        // The image's HEALTHCHECK command, probed every second instead of every 10 s.
        "--health-interval",
        "1s",
        image,
    ]);
    let published = must(&["port", name, "8080/tcp"]);
    let port = published
        .lines()
        .find_map(|l| l.rsplit(':').next()?.trim().parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no published port in {published:?}"));
    let mut last = String::new();
    let up = wait_until(Duration::from_secs(30), || {
        match Client::connect(port, &format!("/?api-key={MASTER}")) {
            // While it recovers its data volume the server closes upgrades with 1013
            // `recovering`: try again until it serves.
            Ok(mut c) => match c.next_frame() {
                Frame::Close(Some((1013, reason))) if reason == "recovering" => {
                    last = "closed 1013 recovering".into();
                    false
                }
                Frame::Text(t) => {
                    let v: Value = serde_json::from_str(&t)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {t:?}"));
                    assert_eq!(
                        v,
                        json!({"type":"ready","message":"Authentication successful"}),
                        "first frame must be the ready frame"
                    );
                    true
                }
                other => panic!("expected the ready frame, got {}", other.describe()),
            },
            Err(e) => {
                last = e;
                false
            }
        }
    });
    assert!(
        up,
        "the container never answered on port {port}: {last}\nlogs:\n{}",
        logs(name)
    );
    port
}

fn logs(name: &str) -> String {
    let out = Command::new("docker").args(["logs", name]).output();
    out.map(|o| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
    .unwrap_or_default()
}

fn wait_healthy(name: &str) {
    let mut status = String::new();
    let healthy = wait_until(Duration::from_secs(60), || {
        status = must(&["inspect", "-f", "{{.State.Health.Status}}", name]);
        status == "healthy"
    });
    assert!(
        healthy,
        "health status {status}: {}\nlogs:\n{}",
        must(&["inspect", "-f", "{{json .State.Health}}", name]),
        logs(name)
    );
}

fn read_back(port: u16) -> (Value, Value) {
    let mut c = Client::open(port, MASTER, Some("docker-test"));
    let records = c.ok("qry", json!({"col": "sensors", "ts": 1000}))["records"].clone();
    let value = c.ok("gval", json!({"col": "sensors", "key": "unit"}))["value"].clone();
    (records, value)
}

#[test]
#[ignore = "needs a Docker daemon and the image: run `make test-docker`"]
fn image_round_trip() {
    let image = std::env::var("FLUXIONDB_IMAGE")
        .expect("FLUXIONDB_IMAGE must name the image to test (make test-docker sets it)");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tag = format!("fluxiondb-test-{}-{nanos}", std::process::id());
    let (first, second) = (format!("{tag}-a"), format!("{tag}-b"));
    let volume = format!("{tag}-data");
    must(&["volume", "create", &volume]);
    let _cleanup = Cleanup {
        containers: vec![first.clone(), second.clone()],
        volume: volume.clone(),
    };

    let user = must(&["inspect", "-f", "{{.Config.User}}", &image]);
    let uid = user.split(':').next().unwrap_or("");
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "the image must run as a numeric non-root user, not {user:?}"
    );

    // First life: write over WebSocket, read it back, see the HEALTHCHECK pass.
    let port = start(&image, &first, &volume);
    {
        let mut c = Client::open(port, MASTER, Some("docker-test"));
        c.ok(
            "ins",
            json!([
                {"col": "sensors", "doc": "dev-1", "ts": 100, "data": "temp:20"},
                {"col": "sensors", "doc": "dev-2", "ts": 200, "data": "temp:21"}
            ]),
        );
        c.ok(
            "sval",
            json!({"col": "sensors", "key": "unit", "value": "celsius"}),
        );
    }
    let written = read_back(port);
    assert_eq!(
        written,
        (
            json!({"dev-1": {"ts": 100, "data": "temp:20"}, "dev-2": {"ts": 200, "data": "temp:21"}}),
            json!("celsius")
        )
    );
    wait_healthy(&first);
    // A name from the container's /etc/hosts resolves too (no NSS in the image).
    let hostname = must(&["inspect", "-f", "{{.Config.Hostname}}", &first]);
    let by_name = must(&[
        "exec",
        &first,
        "/fluxiondb",
        "healthcheck",
        "--host",
        &hostname,
    ]);
    assert!(by_name.starts_with("healthy"), "{by_name}");

    // docker stop: SIGTERM to PID 1, which must shut down cleanly well before the SIGKILL.
    let stopping = Instant::now();
    must(&["stop", "-t", "30", &first]);
    let took = stopping.elapsed();
    let exit = must(&["inspect", "-f", "{{.State.ExitCode}}", &first]);
    let first_logs = logs(&first);
    assert_eq!(
        exit, "0",
        "exit code after docker stop\nlogs:\n{first_logs}"
    );
    assert!(
        took < Duration::from_secs(20),
        "docker stop took {took:?}\nlogs:\n{first_logs}"
    );
    assert!(
        first_logs.contains("signal 15 received") && first_logs.contains("stopped"),
        "no clean shutdown in the logs:\n{first_logs}"
    );

    // Second life, a new container on the same volume: the final snapshot holds everything,
    // so there is no log left to replay.
    let port = start(&image, &second, &volume);
    assert_eq!(read_back(port), written, "data after the restart");
    let second_logs = logs(&second);
    assert!(
        second_logs.contains("recovered 1 collections, 2 records")
            && second_logs.contains(" 0 log entries"),
        "the restart should load the final snapshot alone:\n{second_logs}"
    );
    wait_healthy(&second);
    must(&["stop", "-t", "30", &second]);
    assert_eq!(
        must(&["inspect", "-f", "{{.State.ExitCode}}", &second]),
        "0"
    );
}
