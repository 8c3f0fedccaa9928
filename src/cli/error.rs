//! What can go wrong in a client command. Every variant prints as the message the command has
//! always printed after `Error: `; [`super::run`] prints it, once.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Error {
    /// Reaching the server or keeping the connection: resolving, connecting, the WebSocket
    /// handshake, the `ready` message, a lost or closed connection, a timeout.
    Connection(String),
    /// The server answered with an error, or with something the client cannot use.
    Server(String),
    /// A file or folder that could not be read, written, created or opened.
    Io {
        /// What was tried: `cannot read`, `cannot write`, …
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// An archive file (export layout or legacy folder) whose contents do not fit the format.
    Archive(String),
    /// Flags that ask for nothing, or for something that cannot be done.
    Usage(String),
    /// Standard output could not be written.
    Output(String),
    /// An open file could not be written (the context names what it holds).
    Write(io::Error),
    /// A fault of the client itself (a worker thread panicked, an answer read with no request
    /// in flight).
    Internal(&'static str),
    /// The command did all it could but left things out, each named on stderr before; the
    /// message sums them up.
    Incomplete(String),
    /// One of the above, while doing what the first member names (`export collection c`).
    Context(String, Box<Error>),
}

impl Error {
    pub fn io(action: &'static str, path: &Path, source: io::Error) -> Error {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the file system refused a name or path as too long (`ENAMETOOLONG`).
    pub fn name_too_long(&self) -> bool {
        match self {
            Error::Io { source, .. } | Error::Write(source) => {
                source.raw_os_error() == Some(libc::ENAMETOOLONG)
            }
            Error::Context(_, e) => e.name_too_long(),
            _ => false,
        }
    }

    /// This error, as met while doing `what`.
    pub fn context(self, what: impl Into<String>) -> Error {
        Error::Context(what.into(), Box::new(self))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connection(m)
            | Error::Server(m)
            | Error::Archive(m)
            | Error::Usage(m)
            | Error::Output(m)
            | Error::Incomplete(m) => f.write_str(m),
            Error::Write(e) => write!(f, "{e}"),
            Error::Internal(m) => f.write_str(m),
            Error::Io {
                action,
                path,
                source,
            } => write!(f, "{action} {}: {source}", path.display()),
            Error::Context(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_before() {
        let e = Error::io(
            "cannot read",
            Path::new("/x/y"),
            io::Error::new(io::ErrorKind::NotFound, "gone"),
        );
        assert_eq!(e.to_string(), "cannot read /x/y: gone");
        assert_eq!(
            Error::Server("bad".into()).context("key k").to_string(),
            "key k: bad"
        );
    }
}
