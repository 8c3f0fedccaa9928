//! CPU time and memory of a process from /proc, and a description of the machine.

use std::fs;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// One reading of /proc/PID.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// User + system CPU seconds since the process started.
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub hwm_bytes: u64,
    /// Voluntary + involuntary context switches of the threads alive now (threads that have
    /// exited are not counted, so compare readings taken while the same threads run).
    pub ctx_switches: u64,
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Where a server's CPU and memory are read: another process, or threads of this one (the
/// in-process echo server, whose threads register their ids).
#[derive(Clone, Debug)]
pub enum Probe {
    Process(u32),
    Threads(Arc<Mutex<Vec<u32>>>),
}

impl Probe {
    /// A reading; for threads, their CPU and context switches (no memory figures).
    pub fn sample(&self) -> Result<Sample, String> {
        match self {
            Probe::Process(pid) => sample(Some(*pid)),
            Probe::Threads(tids) => {
                let tids = tids.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let mut total = Sample::default();
                for tid in tids {
                    let dir = format!("/proc/self/task/{tid}");
                    // A thread that has ended takes its figures with it.
                    if let Ok(cpu) = thread_cpu_seconds(&dir) {
                        total.cpu_s += cpu;
                        total.ctx_switches += task_ctx_switches(&format!("{dir}/status"));
                    }
                }
                Ok(total)
            }
        }
    }

    pub fn in_process(&self) -> bool {
        matches!(self, Probe::Threads(_))
    }
}

/// The id of the calling thread (from /proc/thread-self, which links to `PID/task/TID`).
pub fn thread_id() -> Option<u32> {
    let link = fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// A thread's CPU seconds: the scheduler's run time in nanoseconds (`<dir>/schedstat`), exact
/// where the tick-sampled `stat` figures lose a thread that runs a few milliseconds a second;
/// `stat` where schedstat is missing.
fn thread_cpu_seconds(dir: &str) -> Result<f64, String> {
    let exact = fs::read_to_string(format!("{dir}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
    match exact {
        Some(ns) => Ok(ns as f64 / 1e9),
        None => cpu_seconds(dir),
    }
}

/// User + system CPU seconds from `<dir>/stat`.
fn cpu_seconds(dir: &str) -> Result<f64, String> {
    let stat = fs::read_to_string(format!("{dir}/stat"))
        .map_err(|e| format!("reading {dir}/stat: {e}"))?;
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| format!("{dir}/stat: unexpected format"))?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| -> Result<f64, String> {
        f.get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .map(|v| v as f64)
            .ok_or_else(|| format!("{dir}/stat: field {} missing", i + 3))
    };
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the name.
    Ok((tick(11)? + tick(12)?) / clock_ticks())
}

/// Reads /proc/<pid>/stat and /proc/<pid>/status (`pid` None: this process).
pub fn sample(pid: Option<u32>) -> Result<Sample, String> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_string(),
    };
    let cpu_s = cpu_seconds(&dir)?;
    let status = fs::read_to_string(format!("{dir}/status"))
        .map_err(|e| format!("reading {dir}/status: {e}"))?;
    let kb = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    Ok(Sample {
        cpu_s,
        rss_bytes: kb("VmRSS:"),
        hwm_bytes: kb("VmHWM:"),
        ctx_switches: ctx_switches(&dir),
    })
}

/// Sum over /proc/<pid>/task/*/status; 0 when unreadable.
fn ctx_switches(dir: &str) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("{dir}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .map(|t| task_ctx_switches(&t.path().join("status").to_string_lossy()))
        .sum()
}

/// Voluntary + involuntary context switches from one task's status file; 0 when unreadable.
fn task_ctx_switches(status_path: &str) -> u64 {
    let Ok(status) = fs::read_to_string(status_path) else {
        return 0;
    };
    status
        .lines()
        .filter_map(|l| {
            l.strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
        })
        .map(|v| v.trim().parse::<u64>().unwrap_or(0))
        .sum()
}

fn read_trim(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// What the figures were measured on.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Machine {
    pub host: String,
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_mib: u64,
    pub kernel: String,
    pub rustc: String,
    pub git_commit: String,
    /// 1-minute load average when the run started (others share the machine).
    pub loadavg_at_start: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_total_mib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            / 1024;
        Machine {
            host: read_trim("/proc/sys/kernel/hostname"),
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            cpu_model,
            mem_total_mib,
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            rustc: command_line("rustc", &["--version"]),
            git_commit: command_line("git", &["rev-parse", "--short", "HEAD"]),
            loadavg_at_start: read_trim("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_this_process() {
        let s = super::sample(None).unwrap();
        assert!(s.rss_bytes > 0);
        assert!(s.cpu_s >= 0.0);
    }

    /// A thread that registers its id is sampled: it burns CPU and the probe sees it.
    #[test]
    fn samples_registered_threads() {
        use super::*;
        let tids = Arc::new(Mutex::new(Vec::new()));
        let probe = Probe::Threads(tids.clone());
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tids.lock().unwrap().push(thread_id().unwrap());
            let started = std::time::Instant::now();
            let mut x = 0u64;
            while started.elapsed() < std::time::Duration::from_millis(100) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            ready_tx.send(()).unwrap();
            rx.recv().unwrap();
        });
        ready_rx.recv().unwrap();
        let s = probe.sample().unwrap();
        assert!(s.cpu_s > 0.0, "{s:?}");
        assert!(probe.in_process());
        tx.send(()).unwrap();
        t.join().unwrap();
    }
}
