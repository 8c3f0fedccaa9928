//! Turning runs into rows: one JSON line each, a readable table, and the results files of
//! `standard`.

use crate::load::RunResult;
use crate::procfs::Machine;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const MIB: f64 = 1024.0 * 1024.0;

/// RSS growth of the server over a bulk load.
#[derive(Clone, Debug, Serialize)]
pub struct Memory {
    pub records: u64,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    pub bytes_per_record: f64,
    /// `data` bytes per record, plus 8 for the timestamp.
    pub payload_bytes_per_record: f64,
}

/// One role of one run.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub label: String,
    pub scenario: String,
    pub target: String,
    /// Which round of `standard` the run belongs to (1 outside `standard`).
    pub round: u32,
    /// What the records' data was (`… (best case)` for the constant run of `x`).
    pub payload: String,
    pub role: String,
    pub conns: u32,
    pub depth: u32,
    pub batch: u32,
    pub seconds: f64,
    pub requests: u64,
    pub req_per_s: f64,
    pub rec_per_s: f64,
    pub records_per_response: Option<u64>,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub server_cpu_s: Option<f64>,
    pub server_cpu_pct: Option<f64>,
    pub server_rss_mib: Option<f64>,
    pub server_peak_rss_mib: Option<f64>,
    pub client_cpu_s: f64,
    pub client_cpu_pct: f64,
    /// Context switches per response (all roles of the run), a measure of wake-ups.
    pub server_ctx_switches_per_req: Option<f64>,
    pub client_ctx_switches_per_req: Option<f64>,
    pub mib_out_per_s: f64,
    pub mib_in_per_s: f64,
    pub memory: Option<Memory>,
}

fn us(ns: u64) -> f64 {
    (ns as f64 / 100.0).round() / 10.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Rows of a run; server figures are those of the whole process during the measured window.
pub fn rows(
    label: &str,
    scenario: &str,
    target: &str,
    payload: &str,
    run: &RunResult,
    memory: Option<Memory>,
) -> Vec<Row> {
    let secs = run.seconds.max(1e-9);
    let responses = run
        .roles
        .iter()
        .map(|r| r.counters.responses)
        .sum::<u64>()
        .max(1) as f64;
    // Threads of this process (the echo) have no memory of their own.
    let mem = run.server.filter(|_| !run.server_in_process);
    let per_req = |n: Option<u64>| n.map(|n| (n as f64 / responses * 1000.0).round() / 1000.0);
    run.roles
        .iter()
        .map(|r| {
            let c = &r.counters;
            let server_cpu = run.server.map(|s| s[2].cpu_s - s[1].cpu_s);
            Row {
                label: label.to_string(),
                scenario: scenario.to_string(),
                target: target.to_string(),
                round: 1,
                payload: payload.to_string(),
                role: r.name.clone(),
                conns: r.conns,
                depth: r.depth,
                batch: r.batch,
                seconds: (r.seconds * 1000.0).round() / 1000.0,
                requests: c.responses,
                req_per_s: (c.responses as f64 / secs).round(),
                rec_per_s: (c.records as f64 / secs).round(),
                records_per_response: c.sample_records,
                p50_us: us(c.latency.quantile(0.50)),
                p99_us: us(c.latency.quantile(0.99)),
                p999_us: us(c.latency.quantile(0.999)),
                max_us: us(c.latency.max()),
                mean_us: us(c.latency.mean() as u64),
                errors: c.errors,
                first_error: c.first_error.clone(),
                server_cpu_s: server_cpu.map(|x| (x * 100.0).round() / 100.0),
                server_cpu_pct: server_cpu.map(|x| round1(x / secs * 100.0)),
                server_rss_mib: mem.map(|s| round1(s[2].rss_bytes as f64 / MIB)),
                server_peak_rss_mib: mem.map(|s| round1(s[2].hwm_bytes as f64 / MIB)),
                client_cpu_s: (run.client_cpu_s * 100.0).round() / 100.0,
                client_cpu_pct: round1(run.client_cpu_s / secs * 100.0),
                server_ctx_switches_per_req: per_req(run.server_ctx_switches),
                client_ctx_switches_per_req: per_req(Some(run.client_ctx_switches)),
                mib_out_per_s: round1(c.bytes_out as f64 / MIB / secs),
                mib_in_per_s: round1(c.bytes_in as f64 / MIB / secs),
                memory: memory.clone(),
            }
        })
        .collect()
}

/// Prints each row as one JSON line on stdout, and any errors loudly on stderr.
pub fn print_json(rows: &[Row]) {
    for r in rows {
        match serde_json::to_string(r) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("fluxiondb-bench: cannot encode a result: {e}"),
        }
        if r.errors > 0 {
            eprintln!(
                "\n!!! {} / {}: {} ERROR RESPONSES — these figures are not valid. First: {}\n",
                r.label,
                r.role,
                r.errors,
                r.first_error.as_deref().unwrap_or("?")
            );
        }
    }
}

fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if x >= 1e3 {
        format!("{:.2}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn lat(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.1}ms", x / 1000.0)
    } else {
        format!("{x:.0}µs")
    }
}

fn opt(x: Option<f64>, unit: &str) -> String {
    x.map(|v| format!("{v:.0}{unit}"))
        .unwrap_or_else(|| "-".into())
}

/// The readable table (Markdown, so it can go into the results file unchanged).
pub fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str("| shape | round | target | payload | role | conns×depth | batch | req/s | rec/s | p50 | p99 | max | server CPU | client CPU | server RSS | errors |\n");
    s.push_str("|---|---:|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let batch = if r.batch == 0 {
            r.records_per_response
                .map(|n| format!("→{n}"))
                .unwrap_or_else(|| "-".into())
        } else {
            r.batch.to_string()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {}×{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            r.round,
            r.target,
            r.payload,
            r.role,
            r.conns,
            r.depth,
            batch,
            si(r.req_per_s),
            si(r.rec_per_s),
            lat(r.p50_us),
            lat(r.p99_us),
            lat(r.max_us),
            opt(r.server_cpu_pct, "%"),
            format_args!("{:.0}%", r.client_cpu_pct),
            opt(r.server_rss_mib, " MiB"),
            if r.errors > 0 {
                format!("**{}**", r.errors)
            } else {
                "0".into()
            }
        );
    }
    s
}

/// One line of the summary: our figure, the reference it is compared with (the answer-size
/// ceiling of the same shape, or the same role running alone), their ratio, the goal, and
/// upstream's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub name: String,
    pub unit: String,
    pub ours: Option<f64>,
    /// What `reference` is: `ceiling` (the echo replaying our answer), `alone`, `ack`, …
    pub reference_kind: String,
    pub reference: Option<f64>,
    /// Median of the per-round ratios ours / reference.
    pub ratio: Option<f64>,
    /// The issue's goal for the ratio, e.g. `≥ 90 %` or `≤ 2×`.
    pub goal: Option<String>,
    pub upstream_qt: Option<f64>,
    pub upstream_uws: Option<f64>,
}

pub fn targets_table(targets: &[Target]) -> String {
    let mut s = String::new();
    s.push_str("| target | ours | reference | ours / reference | goal | upstream Qt (seed) | upstream uWS (HEAD) |\n");
    s.push_str("|---|---:|---:|---:|---|---:|---:|\n");
    let f = |x: Option<f64>, unit: &str| match x {
        None => "-".to_string(),
        Some(v) if (unit == "µs" || unit == "B") && v < 100.0 => format!("{v:.1} {unit}"),
        Some(v) if unit == "µs" || unit == "B" => format!("{v:.0} {unit}"),
        Some(v) => format!("{} {unit}", si(v)),
    };
    for t in targets {
        let reference = match t.reference {
            None => "-".to_string(),
            Some(_) => format!("{} ({})", f(t.reference, &t.unit), t.reference_kind),
        };
        // Latencies compare as multiples, rates as shares.
        let ratio = t.ratio.map(|r| {
            if t.unit == "µs" {
                format!("{r:.2}×")
            } else {
                format!("{:.0}%", r * 100.0)
            }
        });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            t.name,
            f(t.ours, &t.unit),
            reference,
            ratio.unwrap_or_else(|| "-".into()),
            t.goal.as_deref().unwrap_or("-"),
            f(t.upstream_qt, &t.unit),
            f(t.upstream_uws, &t.unit),
        );
    }
    s
}

/// `YYYY-MM-DD` and `YYYY-MM-DDTHH:MM:SSZ` for now (UTC).
pub fn now_utc() -> (String, String) {
    let now = time::OffsetDateTime::now_utc();
    let date = now
        .format(time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap_or_default();
    let stamp = now
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default();
    (date, stamp)
}

/// Everything `standard` writes.
#[derive(Serialize)]
pub struct Results<'a> {
    pub started: String,
    /// This program's command line, as run.
    pub command: String,
    pub wall_seconds: f64,
    /// /proc/loadavg when the set ended (others may share the machine).
    pub loadavg_at_end: String,
    pub machine: &'a Machine,
    pub server_binary: String,
    pub settings: serde_json::Value,
    pub targets: &'a [Target],
    pub rows: &'a [Row],
    /// Shapes that could not be measured, with the reason.
    pub failures: &'a [String],
}

/// Writes `<date>-<host>.json` and `.md` into `dir`; returns their paths.
pub fn write_results(dir: &Path, res: &Results<'_>) -> Result<(PathBuf, PathBuf), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let host: String = res
        .machine
        .host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let date = res.started.get(..10).unwrap_or("undated");
    // A second run on the same day gets `-2`, `-3`, …: committed results are never overwritten.
    let (json_path, md_path) = (1..)
        .map(|n| {
            let stem = match n {
                1 => format!("{date}-{host}"),
                n => format!("{date}-{host}-{n}"),
            };
            (
                dir.join(format!("{stem}.json")),
                dir.join(format!("{stem}.md")),
            )
        })
        .find(|(j, m)| !j.exists() && !m.exists())
        .ok_or("no free results file name")?;
    let mut json =
        serde_json::to_string_pretty(res).map_err(|e| format!("encoding the results: {e}"))?;
    json.push('\n');
    std::fs::write(&json_path, json)
        .map_err(|e| format!("writing {}: {e}", json_path.display()))?;
    let m = res.machine;
    let mut md = format!(
        "# FluxionDB benchmark — {}\n\n\
         Command: `{}`\n\n\
         Machine: {} × {} ({} MiB RAM), kernel {}, {}; commit {}; load average at start {}, \
         at the end {}.\n\
         Client and server share the machine (loopback TCP). Whole set: {:.0} s wall time.\n\n\
         ## Targets\n\n",
        res.started,
        res.command,
        m.nproc,
        m.cpu_model,
        m.mem_total_mib,
        m.kernel,
        m.rustc,
        m.git_commit,
        m.loadavg_at_start,
        res.loadavg_at_end,
        res.wall_seconds
    );
    md.push_str(
        "Payloads are JSON text with quotes (`seq32`: `{\"seq\":N,\"pad\":\"…\"}` of 32 bytes; \
         telemetry) unless a row says **best case** (a constant run of `x`: nothing to escape). \
         Each timed figure is the median of the rounds, and each ratio the median of the \
         per-round ratios. The answer-size ceiling (`ceiling`) is the echo server replaying the \
         answer our server gave to that very request (captured once, sent under each request's \
         id), measured with the same client right before the server in every round; `alone` is \
         the same role on its own in the same round. The bulk loads run once.\n\n",
    );
    md.push_str(&targets_table(res.targets));
    if !res.failures.is_empty() {
        md.push_str("\n**Failed shapes:**\n\n");
        for f in res.failures {
            let _ = writeln!(md, "* {f}");
        }
    }
    md.push_str("\n## All runs\n\n");
    md.push_str(&table(res.rows));
    md.push_str(
        "\nrec/s for queries counts the records in the responses (→N: records per response). \
         CPU is the share of one core during the measured window (200% = both cores). \
         The echo server runs inside the load generator: its \"server CPU\" is that of its \
         connection threads, taken off the client's. It parses nothing but the id, so for bulk frames its ceiling is the transport alone.\n",
    );
    std::fs::write(&md_path, md).map_err(|e| format!("writing {}: {e}", md_path.display()))?;
    Ok((json_path, md_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second run on the same day writes `-2` files and leaves the first run's alone.
    #[test]
    fn results_are_never_overwritten() {
        let dir =
            std::env::temp_dir().join(format!("fluxiondb-bench-results-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let machine = Machine {
            host: "vm".into(),
            nproc: 2,
            cpu_model: "cpu".into(),
            mem_total_mib: 1,
            kernel: "k".into(),
            rustc: "r".into(),
            git_commit: "c".into(),
            loadavg_at_start: "0".into(),
        };
        let res = Results {
            started: "2026-12-06T02:00:00Z".into(),
            command: "fluxiondb-bench standard".into(),
            wall_seconds: 1.0,
            loadavg_at_end: "0".into(),
            machine: &machine,
            server_binary: "s".into(),
            settings: serde_json::json!({}),
            targets: &[],
            rows: &[],
            failures: &[],
        };
        let (j1, m1) = write_results(&dir, &res).unwrap();
        let (j2, m2) = write_results(&dir, &res).unwrap();
        assert_eq!(j1, dir.join("2026-12-06-vm.json"));
        assert_eq!(m1, dir.join("2026-12-06-vm.md"));
        assert_eq!(j2, dir.join("2026-12-06-vm-2.json"));
        assert_eq!(m2, dir.join("2026-12-06-vm-2.md"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dates() {
        let (d, s) = super::now_utc();
        assert_eq!(d.len(), 10);
        assert!(s.starts_with(&d) && s.ends_with('Z'));
    }
}
