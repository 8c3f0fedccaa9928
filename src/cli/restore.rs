//! `fluxiondb restore --from LOCATION --data DIR [--at TIME]`: rebuilds a data folder from a
//! backup, then loads it the way the server would (so a folder it reports as restored starts).

use crate::backup::restore::{self, RestoreError};
use crate::objstore::{self, Location};
use crate::persist::{self, FsyncPolicy};
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
            Error::Store(e) => write!(f, "{e}"),
            Error::Restore(e) => write!(f, "{e}"),
            Error::Load(e) => write!(f, "the restored folder does not load: {e}"),
            Error::Folder(e) => write!(f, "{e}"),
            Error::Local(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

/// Milliseconds since the epoch of an RFC 3339 time or unix seconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        if (0.0..1e13).contains(&secs) {
            return Ok((secs * 1000.0).round() as i64);
        }
    }
    parse_rfc3339(t).ok_or_else(|| {
        format!("invalid time {text:?}: use RFC 3339 (2026-12-06T01:02:03Z) or unix seconds")
    })
}

/// Milliseconds since the epoch of an RFC 3339 time (any offset, optional fraction).
fn parse_rfc3339(t: &str) -> Option<i64> {
    let at = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

fn is_empty_or_absent(dir: &Path) -> Result<bool, Error> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::Local(dir.to_owned(), e)),
    }
}

/// The folder a path is in (`.` for a bare relative name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsyncs a folder, so the names created, renamed or removed in it are durable.
fn sync_dir(dir: &Path) -> Result<(), Error> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::Local(dir.to_owned(), e))
}

/// The staging folder of a target named `name` in `parent`: `parent/.NAME.restore-PID`.
fn beside(parent: &Path, name: &std::ffi::OsStr) -> PathBuf {
    let mut staged = std::ffi::OsString::from(".");
    staged.push(name);
    staged.push(format!(".restore-{}", std::process::id()));
    parent.join(staged)
}

/// Where a restore is written before it is complete, and how it then takes the target's place.
/// The target's name only ever shows a whole, loadable restore: a failed one leaves the target
/// as it was (absent or empty) and removes what it wrote.
struct Staging {
    /// The folder being written.
    dir: PathBuf,
    /// The data folder it becomes.
    target: PathBuf,
    /// `dir` is beside the target (same parent, so one rename moves it into place); otherwise
    /// it is inside the target, which cannot be renamed over (a mount point, `/`) or should not
    /// be (the working directory), and its entries are moved up one by one.
    beside: bool,
    committed: bool,
}

impl Staging {
    /// A new, empty staging folder for `target` (checked empty or absent).
    fn create(target: &Path) -> Result<Staging, Error> {
        let exists = match std::fs::symlink_metadata(target) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::Local(target.to_owned(), e)),
        };
        let staging = if exists {
            // An empty folder: renamed over when it is an ordinary folder (its permissions
            // carried over); filled from inside when it is a mount point, `/` or the working
            // directory. A symbolic link is followed: the folder it names is restored into.
            let real =
                std::fs::canonicalize(target).map_err(|e| Error::Local(target.to_owned(), e))?;
            let meta = std::fs::metadata(&real).map_err(|e| Error::Local(real.clone(), e))?;
            // The working directory stays the folder the caller is in (not replaced by another).
            let cwd = std::env::current_dir().and_then(std::fs::canonicalize).ok();
            let beside = match (real.parent(), real.file_name()) {
                (Some(parent), Some(name)) if cwd.as_deref() != Some(real.as_path()) => {
                    let parent_meta = std::fs::metadata(parent)
                        .map_err(|e| Error::Local(parent.to_owned(), e))?;
                    (parent_meta.dev() == meta.dev()).then(|| beside(parent, name))
                }
                _ => None,
            };
            match beside {
                Some(dir) => {
                    let s = Staging {
                        dir,
                        target: real,
                        beside: true,
                        committed: false,
                    };
                    s.make()?;
                    std::fs::set_permissions(&s.dir, meta.permissions())
                        .map_err(|e| Error::Local(s.dir.clone(), e))?;
                    s
                }
                None => {
                    let s = Staging {
                        dir: real.join(format!(".restore-{}", std::process::id())),
                        target: real,
                        beside: false,
                        committed: false,
                    };
                    s.make()?;
                    s
                }
            }
        } else {
            let parent = parent_of(target);
            persist::create_dir_durable(&crate::storage::RealFs, parent).map_err(Error::Folder)?;
            let Some(name) = target.file_name() else {
                return Err(Error::Usage(format!(
                    "{} does not name a folder to create",
                    target.display()
                )));
            };
            let s = Staging {
                dir: beside(parent, name),
                target: target.to_owned(),
                beside: true,
                committed: false,
            };
            s.make()?;
            s
        };
        Ok(staging)
    }

    fn make(&self) -> Result<(), Error> {
        std::fs::create_dir(&self.dir).map_err(|e| Error::Local(self.dir.clone(), e))
    }

    /// Moves the complete restore into place (its files and folder already synced): one
    /// rename, then the parent's fsync; or, inside a mount point, a rename per entry, then the
    /// target's fsync.
    fn commit(mut self) -> Result<(), Error> {
        sync_dir(&self.dir)?;
        if self.beside {
            // Over an empty folder (a directory can only replace an empty one): a folder that
            // something wrote into since the check is not replaced (`ENOTEMPTY`).
            std::fs::rename(&self.dir, &self.target)
                .map_err(|e| Error::Local(self.target.clone(), e))?;
            self.committed = true;
            sync_dir(parent_of(&self.target))?;
        } else {
            let entries =
                std::fs::read_dir(&self.dir).map_err(|e| Error::Local(self.dir.clone(), e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::Local(self.dir.clone(), e))?;
                let to = self.target.join(entry.file_name());
                std::fs::rename(entry.path(), &to).map_err(|e| Error::Local(to, e))?;
            }
            std::fs::remove_dir(&self.dir).map_err(|e| Error::Local(self.dir.clone(), e))?;
            self.committed = true;
            sync_dir(&self.target)?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    /// A restore that did not complete leaves nothing behind.
    fn drop(&mut self) {
        if !self.committed {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!(
                        "fluxiondb restore: cannot remove the unfinished restore {}: {e}",
                        self.dir.display()
                    );
                }
            }
        }
    }
}

pub fn restore(args: &Args) -> Result<String, Error> {
    let location: Location = args.from.parse().map_err(Error::Store)?;
    let at = args
        .at
        .as_deref()
        .map(parse_time)
        .transpose()
        .map_err(Error::Usage)?;
    if !is_empty_or_absent(&args.data)? {
        return Err(Error::NotEmpty(args.data.clone()));
    }
    let objects = objstore::open(&location).map_err(Error::Store)?;
    let staging = Staging::create(&args.data)?;
    let started = std::time::Instant::now();
    let restored = restore::materialize(&*objects, &location.to_string(), &staging.dir, at)
        .map_err(Error::Restore)?;
    let downloaded = started.elapsed();
    let loaded = persist::open(
        crate::storage::real(),
        &staging.dir,
        FsyncPolicy::Always,
        false,
    )
    .map_err(Error::Load)?;
    let rep = loaded.report.clone();
    drop(loaded);
    staging.commit()?;
    Ok(format!(
        "restored {} from {location}: restore point of segment {} ({} ms) and {} log segments, {} bytes in {:.2} s; {} collections, {} records, {} API keys{}",
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
    match restore(args) {
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
