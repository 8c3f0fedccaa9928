//! CPU time and memory of a process from /proc, and a description of the machine.

use std::fs;
use std::process::Command;

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

/// Reads /proc/<pid>/stat and /proc/<pid>/status (`pid` None: this process).
pub fn sample(pid: Option<u32>) -> Result<Sample, String> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_string(),
    };
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
    let cpu_s = (tick(11)? + tick(12)?) / clock_ticks();
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
    let mut n = 0;
    for t in tasks.flatten() {
        let Ok(status) = fs::read_to_string(t.path().join("status")) else {
            continue;
        };
        for l in status.lines() {
            if let Some(v) = l
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                n += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    n
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
}
