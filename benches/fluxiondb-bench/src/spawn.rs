//! Starting and stopping the server under test as a child process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A child process that printed `<something> listening on ADDR`; killed when dropped.
pub struct Process {
    child: Child,
    pub addr: String,
    pub pid: u32,
    name: String,
}

impl Process {
    /// Starts `program args…` and waits for its `listening on ADDR` line on stdout.
    pub fn start(program: &Path, args: &[&str]) -> Result<Process, String> {
        let name = program.display().to_string();
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| format!("{name}: no stdout pipe"))?;
        let (tx, rx) = mpsc::channel();
        // Reads the address, then keeps draining stdout so the child never blocks on it.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some((_, addr)) = line.split_once("listening on ") {
                        let _ = tx.send(addr.trim().to_string());
                        sent = true;
                    }
                }
            }
        });
        let pid = child.id();
        let mut p = Process {
            child,
            addr: String::new(),
            pid,
            name,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => {
                p.addr = addr;
                Ok(p)
            }
            Err(_) => {
                let status = p.child.try_wait().ok().flatten();
                Err(match status {
                    Some(s) => format!("{} exited ({s}) before listening", p.name),
                    None => format!(
                        "{} printed no `listening on` line within {START_TIMEOUT:?}",
                        p.name
                    ),
                })
            }
        }
    }

    /// The FluxionDB server on a free loopback port, with `extra` flags.
    pub fn fluxiondb_with(bin: &Path, key: &str, extra: &[&str]) -> Result<Process, String> {
        let mut args = vec![
            "--secret-key",
            key,
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--log-level",
            "warn",
        ];
        args.extend_from_slice(extra);
        Process::start(bin, &args)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
