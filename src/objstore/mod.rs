//! Object storage: where continuous backups, restore points and the log segments that replicas
//! follow are kept. One trait, [`ObjectStore`], with an implementation per kind of
//! [`Location`]: `file:///folder` (a local or network folder) and `s3://bucket/prefix` (any
//! S3-compatible store). Keys are relative to the location's prefix and never come from a
//! client string.
//!
//! Conditional writes are what make fencing possible: [`Condition::IfAbsent`] creates an object
//! only if no object has that key, [`Condition::IfMatch`] replaces it only if it still has the
//! entity tag the caller read. A store that cannot honour a condition must fail the write with
//! [`Error::PreconditionFailed`] rather than ignore it.

mod file;
mod s3;
mod s3_config;
mod s3_xml;
mod sigv4;

pub use file::FileStore;
pub use s3::S3Store;
pub use s3_config::S3Config;
pub use sigv4::Credentials;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Where the objects live, parsed from a `--backup` / `--replica-of` / `--from` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `s3://BUCKET/PREFIX` (the prefix may be empty; stored without slashes at either end).
    S3 { bucket: String, prefix: String },
    /// `file:///absolute/folder`.
    File { dir: std::path::PathBuf },
}

impl FromStr for Location {
    type Err = Error;
    fn from_str(s: &str) -> Result<Location, Error> {
        let bad = |why: &str| Error::Config(format!("invalid object store location {s:?}: {why}"));
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket"));
            }
            Ok(Location::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            })
        } else if let Some(path) = s.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad(
                    "a file location needs an absolute path (file:///folder)",
                ));
            }
            Ok(Location::File { dir: path.into() })
        } else {
            Err(bad("expected s3://BUCKET/PREFIX or file:///FOLDER"))
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Location::File { dir } => write!(f, "file://{}", dir.display()),
        }
    }
}

/// An object read back, with the entity tag a later [`Condition::IfMatch`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub body: Vec<u8>,
    pub etag: String,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Relative to the location's prefix, like every key of this module.
    pub key: String,
    pub size: u64,
}

/// When a write may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// Only if no object has the key yet (`If-None-Match: *`).
    IfAbsent,
    /// Only if the object still has this entity tag (`If-Match`).
    ///
    /// Sequential writers are fenced by it everywhere, but not every S3-compatible store makes
    /// the check atomic: the SeaweedFS the tests use lets two *overlapping* `If-Match` writes
    /// of one tag both succeed now and then, while `If-None-Match` races always have a single
    /// winner. Fencing that must hold under such races creates a new key with
    /// [`Condition::IfAbsent`], as the backup manifest does (one object per version).
    IfMatch(String),
}

#[derive(Debug)]
pub enum Error {
    /// The location or the credentials are unusable as given; retrying will not help.
    Config(String),
    /// A conditional write found the object not in the state it asked for (HTTP 412).
    PreconditionFailed,
    /// The store refused the request (HTTP 4xx other than 404/412: credentials, a missing bucket).
    Rejected { status: u16, message: String },
    /// The store could not be reached or failed (connection, timeout, 5xx, a local I/O error):
    /// worth retrying later.
    Unavailable(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(why) => f.write_str(why),
            Error::PreconditionFailed => f.write_str("precondition failed"),
            Error::Rejected { status, message } => {
                write!(f, "refused by the object store ({status}): {message}")
            }
            Error::Unavailable(why) => write!(f, "object store unavailable: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// A bucket (or folder) of objects. Every call is synchronous and may block on the network; the
/// callers are background threads, never a request path.
pub trait ObjectStore: Send + Sync {
    /// Writes `body` under `key` if `cond` holds; returns the new entity tag.
    fn put(&self, key: &str, body: &[u8], cond: &Condition) -> Result<String, Error>;
    /// The object under `key`, or `None` if there is none.
    fn get(&self, key: &str) -> Result<Option<Object>, Error>;
    /// Every object whose key starts with `prefix`, sorted by key.
    fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error>;
    /// Removes `key`; removing a missing key is not an error.
    fn delete(&self, key: &str) -> Result<(), Error>;
}

/// Opens the store a location names (an S3 location takes its endpoint and credentials from
/// the environment: see [`S3Config`]).
pub fn open(location: &Location) -> Result<Arc<dyn ObjectStore>, Error> {
    match location {
        Location::File { dir } => Ok(Arc::new(FileStore::open(dir)?)),
        Location::S3 { bucket, prefix } => Ok(Arc::new(S3Store::new(
            S3Config::from_env()?,
            bucket,
            prefix,
        )?)),
    }
}

/// Opens the store a location names for a writer that retries (the primary's backup): when the
/// store is only unavailable for now (a `file://` folder that cannot be created yet: a
/// read-only mount, a path under a file, a network mount not there yet), the store is opened at
/// its first use instead, and every call fails with [`Error::Unavailable`] until it opens, as
/// calls to an unreachable S3 endpoint do. What retrying cannot mend (`Config`, `Rejected`) is
/// returned at once.
pub fn open_retrying(location: &Location) -> Result<Arc<dyn ObjectStore>, Error> {
    match open(location) {
        Err(Error::Unavailable(_)) => Ok(Arc::new(Deferred {
            location: location.clone(),
            opened: parking_lot::Mutex::new(None),
        })),
        other => other,
    }
}

/// A store opened at its first use that succeeds (see [`open_retrying`]).
struct Deferred {
    location: Location,
    opened: parking_lot::Mutex<Option<Arc<dyn ObjectStore>>>,
}

impl Deferred {
    fn store(&self) -> Result<Arc<dyn ObjectStore>, Error> {
        let mut opened = self.opened.lock();
        if let Some(store) = &*opened {
            return Ok(store.clone());
        }
        let store = open(&self.location)?;
        *opened = Some(store.clone());
        Ok(store)
    }
}

impl ObjectStore for Deferred {
    fn put(&self, key: &str, body: &[u8], cond: &Condition) -> Result<String, Error> {
        self.store()?.put(key, body, cond)
    }
    fn get(&self, key: &str) -> Result<Option<Object>, Error> {
        self.store()?.get(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        self.store()?.list(prefix)
    }
    fn delete(&self, key: &str) -> Result<(), Error> {
        self.store()?.delete(key)
    }
}

/// Whether `key` is acceptable to every store: non-empty relative path segments of
/// `[A-Za-z0-9._-]`, no `.` or `..` segment.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            "s3://bkt/a/b/".parse::<Location>().ok(),
            Some(Location::S3 {
                bucket: "bkt".into(),
                prefix: "a/b".into()
            })
        );
        assert_eq!(
            "s3://bkt".parse::<Location>().ok(),
            Some(Location::S3 {
                bucket: "bkt".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            "file:///x/y".parse::<Location>().ok(),
            Some(Location::File { dir: "/x/y".into() })
        );
        assert!("s3:///p".parse::<Location>().is_err());
        assert!("file://rel".parse::<Location>().is_err());
        assert!("http://x".parse::<Location>().is_err());
    }

    #[test]
    fn keys_are_checked() {
        assert!(valid_key("wal/0000000000000001.seg"));
        assert!(!valid_key(""));
        assert!(!valid_key("a//b"));
        assert!(!valid_key("../x"));
        assert!(!valid_key("a b"));
    }
}
