//! `fluxiondb restore --from LOCATION --data DIR [--at TIME]`: rebuilds a data folder from a
//! backup, then loads it the way the server would (so a folder it reports as restored starts).

use crate::backup::restore::{self, RestoreError};
use crate::backup::staging::{self, Staging};
use crate::objstore::{self, Location};
use crate::persist::{self, FsyncPolicy};
use crate::storage::Backend;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The backup: `s3://BUCKET/PREFIX` or `file:///FOLDER` (what the primary's --backup named).
    #[arg(long = "from", value_name = "LOCATION")]
    pub from: String,
    /// The data folder to create; it must be empty or absent.
    #[arg(long = "data", value_name = "DIR")]
    pub data: PathBuf,
    /// Restore the state as of this time: RFC 3339 (`2026-12-06T01:02:03Z`, offsets allowed) or
    /// unix seconds (fractions allowed). Default: the newest state in the backup.
    #[arg(long = "at", value_name = "TIME")]
    pub at: Option<String>,
}

#[derive(Debug)]
pub enum Error {
    Usage(String),
    NotEmpty(PathBuf),
    /// Another `fluxiondb restore` (this process id) is writing the target.
    InUse(PathBuf, u32),
    Store(objstore::Error),
    Restore(RestoreError),
    Load(persist::Error),
    /// The folder the target is created in could not be made (or made durable).
    Folder(persist::Error),
    Local(PathBuf, std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(why) => f.write_str(why),
            Error::NotEmpty(dir) => write!(
                f,
                "{} is not empty: restore into a new or empty folder",
                dir.display()
            ),
            Error::InUse(dir, pid) => write!(
                f,
                "another fluxiondb restore (process {pid}) is writing {}",
                dir.display()
            ),
            Error::Store(e) => write!(f, "{e}"),
            Error::Restore(e) => write!(f, "{e}"),
            Error::Load(e) => write!(f, "the restored folder does not load: {e}"),
            Error::Folder(e) => write!(f, "{e}"),
            Error::Local(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

/// Milliseconds since the epoch of an RFC 3339 time or unix seconds. A fraction finer than a
/// millisecond is cut off, never rounded up: a restore "as of" a time includes no write made
/// after it.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    parse_unix_seconds(t)
        .or_else(|| parse_rfc3339(t))
        .ok_or_else(|| {
            format!("invalid time {text:?}: use RFC 3339 (2026-12-06T01:02:03Z) or unix seconds")
        })
}

/// Milliseconds of `SECONDS[.FRACTION]`, read as decimal digits (not through a float, which
/// could land a hair below a whole millisecond and lose it).
fn parse_unix_seconds(t: &str) -> Option<i64> {
    let (whole, fraction) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 13 || !digits(whole) || !digits(fraction) {
        return None;
    }
    let millis = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0i64, |n, b| n * 10 + i64::from(b - b'0'));
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(1000)?
        .checked_add(millis)
}

/// Milliseconds since the epoch of an RFC 3339 time (any offset, optional fraction).
fn parse_rfc3339(t: &str) -> Option<i64> {
    let at = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The tag of a restore's staging folders.
const TAG: &str = persist::Build::Restore.tag();

/// Removes what an earlier restore into `dir` left when it was killed (or the power failed):
/// its staging folder beside `dir`, or, filled from inside (a mount point), its staging folder
/// in `dir` and everything it had moved up already — the folder was empty when that restore
/// began, so all of it is that restore's. True when there was such a restore inside `dir`.
/// A restore still running (its process alive) is left alone and refused.
fn clear_unfinished(fs: &dyn Backend, dir: &Path) -> Result<bool, Error> {
    let left = staging::leftovers(fs, dir, TAG)?;
    if let Some(pid) = left
        .beside
        .iter()
        .chain(&left.inside)
        .find_map(|p| staging::running_writer(p))
    {
        return Err(Error::InUse(dir.to_owned(), pid));
    }
    for path in &left.beside {
        fs.remove_dir_all(path)
            .map_err(|e| Error::Local(path.clone(), e))?;
    }
    if left.inside.is_empty() {
        return Ok(false);
    }
    staging::clear_inside(fs, dir, &[])?;
    Ok(true)
}

fn is_empty_or_absent(fs: &dyn Backend, dir: &Path) -> Result<bool, Error> {
    match fs.read_dir(dir) {
        Ok(entries) => Ok(entries.is_empty()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::Local(dir.to_owned(), e)),
    }
}

impl From<staging::Error> for Error {
    fn from(e: staging::Error) -> Self {
        match e {
            staging::Error::Local(path, e) => Error::Local(path, e),
            staging::Error::Folder(e) => Error::Folder(e),
            e @ staging::Error::NotAFolder(_) => Error::Usage(e.to_string()),
        }
    }
}

/// `fluxiondb restore` on the data folder's backend `fs` (the binary's: the operating system):
/// the restored folder appears at `args.data` whole, loaded once in its staging folder, or not
/// at all. The summary it prints.
pub fn restore(fs: Arc<dyn Backend>, args: &Args) -> Result<String, Error> {
    let location: Location = args.from.parse().map_err(Error::Store)?;
    let at = args
        .at
        .as_deref()
        .map(parse_time)
        .transpose()
        .map_err(Error::Usage)?;
    let cleared = clear_unfinished(&*fs, &args.data)?;
    if !is_empty_or_absent(&*fs, &args.data)? {
        return Err(Error::NotEmpty(args.data.clone()));
    }
    let objects = objstore::open(&location).map_err(Error::Store)?;
    let staging = Staging::create(&*fs, &args.data, TAG, "fluxiondb restore")?;
    let started = std::time::Instant::now();
    let restored = restore::materialize(&*objects, &location.to_string(), &*fs, staging.dir(), at)
        .map_err(Error::Restore)?;
    let downloaded = started.elapsed();
    let loaded = persist::open(fs.clone(), staging.dir(), FsyncPolicy::Always, false)
        .map_err(Error::Load)?;
    let rep = loaded.report.clone();
    drop(loaded);
    staging.commit()?;
    let note = if cleared {
        "an unfinished earlier restore was removed first; "
    } else {
        ""
    };
    Ok(format!(
        "{note}restored {} from {location}: restore point of segment {} ({} ms) and {} log segments, {} bytes in {:.2} s; {} collections, {} records, {} API keys{}",
        args.data.display(),
        restored.point.first_segment,
        restored.point.time_ms,
        restored.segments,
        restored.bytes,
        downloaded.as_secs_f64(),
        rep.collections,
        rep.records,
        rep.keys,
        restored
            .last_write_ms
            .map(|t| format!("; last write at {t} ms"))
            .unwrap_or_default()
    ))
}

pub fn run(args: &Args) -> ExitCode {
    match restore(crate::storage::real(), args) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fluxiondb restore: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("1700000000.25"), Ok(1_700_000_000_250));
        // Cut, not rounded: 0.4 ms before a write at …667 ms does not include it.
        assert_eq!(parse_time("1796657821.6666"), Ok(1_796_657_821_666));
        assert_eq!(parse_time("1796657821.667"), Ok(1_796_657_821_667));
        assert_eq!(parse_time("1796657821.9999999"), Ok(1_796_657_821_999));
        assert_eq!(parse_time("0.001"), Ok(1));
        assert_eq!(parse_time("12."), Ok(12_000));
        assert!(parse_time(".5").is_err());
        assert!(parse_time("-1").is_err());
        assert!(parse_time("1e9").is_err());
        assert!(parse_time("99999999999999").is_err());
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T23:13:20.5+01:00"),
            Ok(1_700_000_000_500)
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2023-13-14T22:13:20Z").is_err());
    }
}
