//! The standard `process_*` metrics, read from `/proc/self` at scrape time.

use std::fmt::Write;

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf only reads a configuration value.
    let v = unsafe { libc::sysconf(name) };
    (v > 0).then_some(v as u64)
}

/// Fields of `/proc/self/stat` after the command name, numbered as in proc(5) (field 3 first).
fn stat_fields() -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    // Field 3 (state) is a letter: keep the numbering by putting a 0 in its place.
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn max_fds() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur)
}

fn put(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

pub(super) fn render(out: &mut String) {
    let ticks = sysconf(libc::_SC_CLK_TCK).unwrap_or(100) as f64;
    let page = sysconf(libc::_SC_PAGESIZE).unwrap_or(4096) as f64;
    if let Some(f) = stat_fields() {
        // Index 0 is field 3: utime is field 14, stime 15, num_threads 20, starttime 22,
        // vsize 23, rss 24.
        let at = |n: usize| f.get(n - 3).copied().unwrap_or(0) as f64;
        put(
            out,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            (at(14) + at(15)) / ticks,
        );
        put(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            at(24) * page,
        );
        put(
            out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            at(23),
        );
        put(
            out,
            "process_threads",
            "gauge",
            "Number of OS threads in the process.",
            at(20),
        );
        if let Some(btime) = boot_time() {
            put(
                out,
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                btime as f64 + at(22) / ticks,
            );
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        // The listing itself holds one descriptor while it runs.
        let n = dir.count().saturating_sub(1);
        put(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            n as f64,
        );
    }
    if let Some(m) = max_fds() {
        put(
            out,
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            m as f64,
        );
    }
}
