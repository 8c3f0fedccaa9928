//! Runs one load: connects every connection, starts one thread each, times the measured
//! window, samples the server's and this process's /proc around it, and merges the counters.

use crate::client::{Client, Endpoint, Plan};
use crate::procfs::{self, Probe, Sample};
use crate::requests::Generator;
use crate::stats::Counters;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Holds the client threads connected after their run until the end readings are taken
/// (a thread that exits takes its context-switch counts out of /proc, and so does the
/// server thread of a closed connection).
#[derive(Default)]
struct Gate {
    state: Mutex<(usize, bool)>,
    cv: Condvar,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, bool)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn arrive_and_wait(&self) {
        let mut st = self.lock();
        st.0 += 1;
        self.cv.notify_all();
        while !st.1 {
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn wait_for(&self, n: usize) {
        let mut st = self.lock();
        while st.0 < n && !st.1 {
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn open(&self) {
        self.lock().1 = true;
        self.cv.notify_all();
    }
}

struct OpenOnDrop<'a>(&'a Gate);

impl Drop for OpenOnDrop<'_> {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// A group of connections sending the same kind of request.
pub struct Role {
    pub name: String,
    pub conns: u32,
    pub depth: u32,
    /// Records per `ins` (0 for queries).
    pub batch: u32,
    pub gens: Vec<Generator>,
}

/// How long to run.
#[derive(Clone, Copy, Debug)]
pub enum Window {
    /// Warm-up then a measured duration, in seconds.
    Timed { warmup: f64, duration: f64 },
    /// Until the generators are exhausted; everything is measured.
    UntilDone,
}

pub struct RoleResult {
    pub name: String,
    pub conns: u32,
    pub depth: u32,
    pub batch: u32,
    pub seconds: f64,
    pub counters: Counters,
}

pub struct RunResult {
    pub roles: Vec<RoleResult>,
    /// Server readings after connecting, at the start and at the end of the measured window.
    pub server: Option<[Sample; 3]>,
    /// The server runs inside this process (no memory figures; its CPU is not the client's).
    pub server_in_process: bool,
    /// Context switches of the server's threads during the window.
    pub server_ctx_switches: Option<u64>,
    pub client_cpu_s: f64,
    /// Context switches of this process's threads during the window.
    pub client_ctx_switches: u64,
    pub seconds: f64,
}

fn sample_server(probe: Option<&Probe>) -> Result<Option<Sample>, String> {
    probe.map(Probe::sample).transpose()
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

pub fn run(
    ep: &Endpoint,
    roles: Vec<Role>,
    window: Window,
    server: Option<&Probe>,
) -> Result<RunResult, String> {
    let mut work: Vec<(usize, Client, Generator, usize)> = Vec::new();
    let mut results: Vec<RoleResult> = Vec::new();
    for (ri, role) in roles.into_iter().enumerate() {
        if role.gens.len() != role.conns as usize {
            return Err(format!("role {}: one generator per connection", role.name));
        }
        for (i, gen) in role.gens.into_iter().enumerate() {
            let name = format!("bench-{}-{i}", role.name);
            let salt = (ri as u64) << 32 | i as u64;
            let client = Client::connect(ep, &name, salt)
                .map_err(|e| format!("{} connection {i}: {e}", role.name))?;
            work.push((ri, client, gen, role.depth as usize));
        }
        results.push(RoleResult {
            name: role.name,
            conns: role.conns,
            depth: role.depth,
            batch: role.batch,
            seconds: 0.0,
            counters: Counters::new(),
        });
    }
    let connected = sample_server(server)?;
    let t0 = Instant::now();
    let (start, end) = match window {
        Window::Timed { warmup, duration } => {
            let start = t0 + Duration::from_secs_f64(warmup);
            (start, Some(start + Duration::from_secs_f64(duration)))
        }
        Window::UntilDone => (t0, None),
    };
    let mut outcomes = Vec::new();
    let mut readings: (Option<Sample>, Option<Sample>, Sample, Sample) = Default::default();
    let gate = Gate::default();
    std::thread::scope(|s| -> Result<(), String> {
        // Opens the gate however this scope is left, so no thread waits forever.
        let _open = OpenOnDrop(&gate);
        let mut handles = Vec::new();
        for (ri, mut client, mut gen, depth) in work {
            let plan = Plan { depth, start, end };
            let gate = &gate;
            let h = std::thread::Builder::new()
                .name(format!("bench-{ri}"))
                .spawn_scoped(s, move || {
                    let r = client.run(&mut gen, plan);
                    // Stay connected (server threads alive) until the end readings are taken.
                    gate.arrive_and_wait();
                    if r.is_ok() {
                        client.close();
                    }
                    (ri, r)
                })
                .map_err(|e| format!("starting a client thread: {e}"))?;
            handles.push(h);
        }
        sleep_until(start);
        readings.0 = sample_server(server)?;
        readings.2 = procfs::sample(None)?;
        match end {
            Some(end) => sleep_until(end),
            None => gate.wait_for(handles.len()),
        }
        readings.1 = sample_server(server)?;
        readings.3 = procfs::sample(None)?;
        gate.open();
        for h in handles {
            outcomes.push(
                h.join()
                    .map_err(|_| "a client thread panicked".to_string())?,
            );
        }
        Ok(())
    })?;
    for (ri, outcome) in outcomes {
        let c = outcome.map_err(|e| format!("{}: {e}", results[ri].name))?;
        results[ri].counters.merge(&c);
    }
    let seconds = match window {
        Window::Timed { duration, .. } => duration,
        Window::UntilDone => results
            .iter()
            .filter_map(|r| r.counters.last_response)
            .max()
            .map(|t| (t - start).as_secs_f64())
            .unwrap_or(0.0),
    };
    for r in &mut results {
        r.seconds = seconds;
    }
    let samples = match (connected, readings.0, readings.1) {
        (Some(a), Some(b), Some(c)) => Some([a, b, c]),
        _ => None,
    };
    let server_ctx_switches = samples.map(|s| s[2].ctx_switches.saturating_sub(s[1].ctx_switches));
    // A server inside this process (the echo) is not the client: its share comes off.
    let (own_cpu, own_ctx) = match (server.is_some_and(Probe::in_process), samples) {
        (true, Some(s)) => (
            s[2].cpu_s - s[1].cpu_s,
            s[2].ctx_switches.saturating_sub(s[1].ctx_switches),
        ),
        _ => (0.0, 0),
    };
    Ok(RunResult {
        roles: results,
        server: samples,
        server_in_process: server.is_some_and(Probe::in_process),
        server_ctx_switches,
        client_cpu_s: (readings.3.cpu_s - readings.2.cpu_s - own_cpu).max(0.0),
        client_ctx_switches: readings
            .3
            .ctx_switches
            .saturating_sub(readings.2.ctx_switches)
            .saturating_sub(own_ctx),
        seconds,
    })
}
