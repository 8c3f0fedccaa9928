//! Command-line flags (each with an environment fallback), validated once. The rest of the
//! program receives a plain, already-valid [`Config`].

use crate::persist::FsyncPolicy;
use crate::store::Limits;
use clap::{ArgAction, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

const MIB: usize = 1024 * 1024;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "fluxiondb",
    version,
    about = "FluxionDB: an in-memory time-series database served over WebSockets",
    disable_version_flag = true
)]
pub struct Args {
    /// Master API key (full access, never stored on disk). Prefer the environment variable: a
    /// key on the command line is visible in `ps`.
    #[arg(
        short = 's',
        long = "secret-key",
        env = "SECRET_KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<String>,

    /// Data folder: enables persistence (created if missing). Without it the server is purely
    /// in memory.
    #[arg(short = 'd', long = "data", env = "DATA_DIR", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Seconds between background snapshots of changed collections (at least 1).
    #[arg(short = 'f', long = "flush-interval", env = "FLUSH_INTERVAL", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=86_400), value_name = "SECONDS")]
    pub flush_interval: u64,

    /// TCP port to listen on (0 picks a free port; the chosen address is printed on stdout).
    #[arg(short = 'p', long = "port", env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address to bind.
    #[arg(long = "bind", env = "BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,

    /// Log level: error, warn, info, debug or trace.
    #[arg(long = "log-level", env = "LOG_LEVEL", default_value = "info",
          value_parser = ["off", "error", "warn", "info", "debug", "trace"])]
    pub log_level: String,

    /// Most simultaneous connections (handshakes included); more are refused with close 1013.
    #[arg(long = "max-connections", env = "MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Largest incoming message in MiB; a larger one closes the connection with 1009.
    #[arg(long = "max-message-mib", env = "MAX_MESSAGE_MIB", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_message_mib: u32,

    /// Largest response body in MiB (0 = no limit); a larger one is answered `response too large`.
    #[arg(
        long = "max-response-mib",
        env = "MAX_RESPONSE_MIB",
        default_value_t = 256
    )]
    pub max_response_mib: u32,

    /// MiB of encoded read answers (`qry`, `qdoc`) kept to answer the same request on an
    /// unchanged collection again without computing it (0 disables the cache).
    #[arg(long = "answer-cache-mib", env = "ANSWER_CACHE_MIB", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(0..=65_536), value_name = "MIB")]
    pub answer_cache_mib: u32,

    /// MiB of responses a client may leave unread before it is closed with 1008.
    #[arg(long = "send-buffer-mib", env = "SEND_BUFFER_MIB", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub send_buffer_mib: u32,

    /// Seconds a client may send nothing and take none of its output before it is closed (1001
    /// `idle timeout`); a ping is sent after a quarter of it.
    #[arg(long = "idle-timeout", env = "IDLE_TIMEOUT", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=86_400), value_name = "SECONDS")]
    pub idle_timeout: u64,

    /// Seconds a client may take to complete the WebSocket handshake.
    #[arg(long = "handshake-timeout", env = "HANDSHAKE_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3_600), value_name = "SECONDS")]
    pub handshake_timeout: u64,

    /// When the write-ahead log is fsynced: `always` (before every acknowledgement),
    /// `everysec` (at least once a second) or `never` (left to the OS). A killed process loses
    /// nothing under any of them; see the README for power failures.
    #[arg(long = "fsync", env = "FSYNC", default_value = "everysec", value_parser = ["always", "everysec", "never"])]
    pub fsync: String,

    /// Start even if data files are damaged: load everything intact and move damaged files
    /// aside (`*.corrupt`). Without it, damaged data stops start-up.
    #[arg(long = "repair")]
    pub repair: bool,

    /// A seed (Qt) server's data folder to import once into an empty `--data` folder; a
    /// restart with the flag still given imports nothing again.
    #[arg(long = "import-seed", env = "IMPORT_SEED", value_name = "DIR")]
    pub import_seed: Option<PathBuf>,

    /// Serve `GET /metrics` without an API key (by default any valid key is needed).
    /// From the environment: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.
    #[arg(long = "metrics-public", env = "METRICS_PUBLIC", action = ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub metrics_public: bool,

    /// Log every request that takes at least this many milliseconds (0 logs every request).
    #[arg(
        long = "slow-ms",
        env = "SLOW_MS",
        default_value_t = 250,
        value_name = "MS"
    )]
    pub slow_ms: u64,

    /// Log every request whose response is at least this many KiB.
    #[arg(
        long = "large-response-kib",
        env = "LARGE_RESPONSE_KIB",
        default_value_t = 1024,
        value_name = "KIB"
    )]
    pub large_response_kib: u64,
    /// Most memory the store may hold for records and values, e.g. `512MiB`, `4GiB` (`0` = no
    /// limit). At the limit `ins` and `sval` are refused until memory is freed. Default: 80 % of
    /// the memory the process may use (its cgroup's limit, else physical RAM).
    #[arg(long = "max-memory", env = "MAX_MEMORY", value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,

    /// Default retention by age: each document keeps the records at most this much older than
    /// its newest, in the collections' own timestamp units (0 = unlimited). A collection's own
    /// policy (`sret`) overrides it.
    #[arg(long = "max-age", env = "MAX_AGE", default_value_t = 0, value_name = "TS_UNITS",
          value_parser = clap::value_parser!(u64).range(0..=i64::MAX as u64))]
    pub max_age: u64,

    /// Default retention by count: each document keeps at most its newest this many records
    /// (0 = unlimited). A collection's own policy (`sret`) overrides it.
    #[arg(long = "max-records", env = "MAX_RECORDS", default_value_t = 0, value_name = "N",
          value_parser = clap::value_parser!(u64).range(0..=i64::MAX as u64))]
    pub max_records: u64,

    /// Continuous backup to object storage: `s3://BUCKET/PREFIX` or `file:///FOLDER` (needs
    /// --data). Closed log segments, restore points and API keys are uploaded by a background
    /// thread; writes never wait for it.
    #[arg(long = "backup", env = "BACKUP", value_name = "LOCATION")]
    pub backup: Option<String>,

    /// How often the backup closes the log segment and uploads (e.g. `1s`, `500ms`): the most
    /// history a lost machine loses, plus upload time.
    #[arg(long = "backup-interval", env = "BACKUP_INTERVAL", default_value = "1s",
          value_parser = parse_duration, value_name = "DURATION")]
    pub backup_interval: Duration,

    /// How much history the backup keeps (e.g. `7d`, `12h`); older restore points and the
    /// segments only they need are deleted. Default: everything is kept.
    #[arg(long = "backup-keep", env = "BACKUP_KEEP", value_parser = parse_duration,
          value_name = "DURATION")]
    pub backup_keep: Option<Duration>,

    /// Run as a read replica of the backup at LOCATION: load its newest restore point, apply
    /// its log as it grows, serve reads, refuse writes. SIGUSR1 promotes it to primary.
    #[arg(long = "replica-of", env = "REPLICA_OF", value_name = "LOCATION")]
    pub replica_of: Option<String>,

    /// How often a replica looks for new log segments.
    #[arg(long = "poll-interval", env = "POLL_INTERVAL", default_value = "1s",
          value_parser = parse_duration, value_name = "DURATION")]
    pub poll_interval: Duration,

    /// Print version.
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    version: Option<bool>,

    /// A client command instead of the server (`fluxiondb <command> --help`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A command line that starts with a subcommand: parsed without the server's flags, so that
/// the server's environment variables (`LOG_LEVEL`, `BIND`, `FSYNC`, …), which a client
/// command never reads, cannot make it fail.
#[derive(Parser, Debug, Clone)]
#[command(name = "fluxiondb", version, disable_version_flag = true)]
pub struct CommandLine {
    #[command(subcommand)]
    pub command: Command,
}

impl CommandLine {
    /// Whether `first` (the first argument) names a subcommand.
    pub fn starts_with_command(first: &std::ffi::OsStr) -> bool {
        first
            .to_str()
            .is_some_and(<Command as Subcommand>::has_subcommand)
    }
}

/// The subcommands; without one, the binary is the server.
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    #[command(flatten)]
    Client(crate::cli::ClientCommand),
    /// Rebuild a data folder from a backup (`--backup`), as of its newest state or of a time.
    Restore(crate::cli::restore::Args),
    /// Exit 0 if the server on this machine is ready (`GET /readyz` answers 200), 1 if not, with
    /// the server's reason (for container health checks; reads PORT like the server; no key).
    Healthcheck(crate::healthcheck::Args),
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub secret_key: String,
    pub data_dir: Option<PathBuf>,
    pub fsync: FsyncPolicy,
    /// How often `everysec` fsyncs the log (1 s; tests may shorten it).
    pub fsync_interval: Duration,
    pub repair: bool,
    pub import_seed: Option<PathBuf>,
    pub flush_interval: Duration,
    pub bind: IpAddr,
    pub port: u16,
    pub log_level: log::LevelFilter,
    pub max_connections: usize,
    pub max_message_bytes: usize,
    pub max_response_bytes: usize,
    /// The answer cache's budget in bytes (0: no cache).
    pub answer_cache_bytes: usize,
    pub send_buffer_bytes: usize,
    pub idle_timeout: Duration,
    pub ping_interval: Duration,
    pub handshake_timeout: Duration,
    pub metrics_public: bool,
    pub slow_request: Duration,
    pub large_response_bytes: u64,
    /// The store's memory limit in bytes (0 = none).
    pub max_memory: usize,
    /// Retention for collections without a policy of their own.
    pub retention: Limits,
    /// `--backup`.
    pub backup: Option<crate::backup::BackupOptions>,
    /// `--replica-of`.
    pub replica: Option<crate::backup::ReplicaOptions>,
}

/// A duration: a number with a unit `ms`, `s`, `m`, `h` or `d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        other => return Err(format!("unknown unit {other:?}: use ms, s, m, h or d")),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 1s, 500ms or 7d"))?;
    let secs = n * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 100.0 * 365.0 * 86_400.0 {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A size: a number with an optional unit `B`, `KiB`, `MiB`, `GiB`, `TiB` (also `K`, `M`, `G`,
/// `T`, `KB`, `MB`, `GB`, `TB`, all powers of 1024, any case).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let shift = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "unknown unit {unit:?}: use B, KiB, MiB, GiB or TiB"
            ))
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 512MiB or 4GiB"))?;
    let bytes = n * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 / 2.0 {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// The memory this process may use: its cgroup's limit (v2 `memory.max`, v1
/// `memory.limit_in_bytes`) when there is one, else physical RAM.
pub fn usable_memory() -> u64 {
    let ram = {
        // SAFETY: sysconf has no preconditions.
        let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
        // SAFETY: likewise.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        (pages.max(0) as u64).saturating_mul(size.max(0) as u64)
    };
    let cgroup = cgroup_limit().filter(|&l| l > 0 && l < ram);
    cgroup.unwrap_or(ram)
}

fn cgroup_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let candidates = if controllers.is_empty() {
            vec![
                format!("/sys/fs/cgroup{path}/memory.max"),
                "/sys/fs/cgroup/memory.max".to_string(),
            ]
        } else if controllers.split(',').any(|c| c == "memory") {
            vec![
                format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"),
                "/sys/fs/cgroup/memory/memory.limit_in_bytes".to_string(),
            ]
        } else {
            continue;
        };
        for file in candidates {
            if let Ok(text) = std::fs::read_to_string(&file) {
                if let Ok(n) = text.trim().parse::<u64>() {
                    return Some(n);
                }
            }
        }
    }
    None
}

impl Config {
    /// Validates parsed flags.
    pub fn from_args(args: Args) -> Result<Config, String> {
        let secret_key = args.secret_key.filter(|k| !k.is_empty()).ok_or_else(|| {
            "secret-key is not set: pass --secret-key KEY or set SECRET_KEY".to_string()
        })?;
        let log_level = args
            .log_level
            .parse()
            .map_err(|_| format!("invalid log level {}", args.log_level))?;
        let idle_timeout = Duration::from_secs(args.idle_timeout);
        if args.import_seed.is_some() && args.data.is_none() {
            return Err("--import-seed needs --data: the folder to import into".into());
        }
        let location = |flag: &str, v: &str| {
            v.parse::<crate::objstore::Location>()
                .map_err(|e| format!("--{flag}: {e}"))
        };
        let backup = match &args.backup {
            None => None,
            Some(_) if args.data.is_none() => {
                return Err("--backup needs --data: the data folder it backs up".into())
            }
            Some(v) => Some(crate::backup::BackupOptions {
                location: location("backup", v)?,
                interval: args.backup_interval,
                keep: args.backup_keep,
            }),
        };
        let replica = match &args.replica_of {
            None => None,
            Some(_) if backup.is_some() || args.import_seed.is_some() => {
                return Err("--replica-of cannot be combined with --backup or --import-seed".into())
            }
            Some(v) => Some(crate::backup::ReplicaOptions {
                location: location("replica-of", v)?,
                poll: args.poll_interval,
                interval: args.backup_interval,
                keep: args.backup_keep,
            }),
        };
        Ok(Config {
            backup,
            replica,
            secret_key,
            data_dir: args.data,
            fsync: args.fsync.parse()?,
            fsync_interval: Duration::from_secs(1),
            repair: args.repair,
            import_seed: args.import_seed,
            flush_interval: Duration::from_secs(args.flush_interval),
            bind: args.bind,
            port: args.port,
            log_level,
            max_connections: args.max_connections as usize,
            max_message_bytes: args.max_message_mib as usize * MIB,
            max_response_bytes: args.max_response_mib as usize * MIB,
            answer_cache_bytes: args.answer_cache_mib as usize * MIB,
            send_buffer_bytes: args.send_buffer_mib as usize * MIB,
            idle_timeout,
            ping_interval: idle_timeout / 4,
            handshake_timeout: Duration::from_secs(args.handshake_timeout),
            metrics_public: args.metrics_public,
            slow_request: Duration::from_millis(args.slow_ms),
            large_response_bytes: args.large_response_kib.saturating_mul(1024),
            max_memory: match args.max_memory {
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
                None => (usable_memory() / 5 * 4) as usize,
            },
            retention: Limits::from_numbers(args.max_age, args.max_records),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let args = Args::try_parse_from(std::iter::once("fluxiondb").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        Config::from_args(args)
    }

    #[test]
    fn defaults_and_forms() {
        let c = parse(&["--secret-key=k", "-p", "9000", "--flush-interval", "3"]).unwrap();
        assert_eq!(
            (c.port, c.flush_interval.as_secs(), c.max_message_bytes),
            (9000, 3, 16 * MIB)
        );
        assert_eq!(c.ping_interval.as_secs(), 30);
        // A quarter at every timeout: a 1 s floor pinged a client of `--idle-timeout 1` at the
        // moment it was closed for silence.
        let c = parse(&["--secret-key=k", "--idle-timeout", "1"]).unwrap();
        assert_eq!(c.ping_interval, Duration::from_millis(250));
        assert!(
            parse(&["-s", "k", "--date=/x"]).is_err(),
            "unknown flags are errors"
        );
        assert!(parse(&["-s", "k", "-p", "70000"]).is_err());
        assert!(parse(&["-s", "k", "-f", "0"]).is_err());
        assert!(parse(&["-s", "k", "-f", "20s"]).is_err());
        assert_eq!(c.retention, Limits::default());
        let c = parse(&["-s", "k", "--max-age", "3600", "--max-records=0"]).unwrap();
        assert_eq!(c.retention, Limits::from_numbers(3600, 0));
        assert!(parse(&["-s", "k", "--max-records", "-1"]).is_err());
        assert!(c.max_memory > 0, "a default limit from the machine");
    }

    #[test]
    fn backup_flags() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("0s").is_err() && parse_duration("1 fortnight").is_err());
        assert!(
            parse(&["-s", "k", "--backup", "file:///b"]).is_err(),
            "needs --data"
        );
        let c = parse(&["-s", "k", "-d", "/d", "--backup", "file:///b"]).unwrap();
        let b = c.backup.unwrap();
        assert_eq!((b.interval, b.keep), (Duration::from_secs(1), None));
        assert!(parse(&["-s", "k", "-d", "/d", "--backup", "ftp://x"]).is_err());
        let c = parse(&[
            "-s",
            "k",
            "--replica-of",
            "file:///b",
            "--poll-interval",
            "200ms",
        ])
        .unwrap();
        assert_eq!(c.replica.unwrap().poll, Duration::from_millis(200));
        assert!(parse(&[
            "-s",
            "k",
            "-d",
            "/d",
            "--replica-of",
            "file:///b",
            "--backup",
            "file:///c"
        ])
        .is_err());
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("12 parsecs").is_err() && parse_size("MiB").is_err());
        let c = parse(&["-s", "k", "--max-memory", "0"]).unwrap();
        assert_eq!(c.max_memory, 0);
        assert!(parse(&["-s", "k", "--max-memory", "lots"]).is_err());
        assert!(usable_memory() > 0);
    }
}
