//! Panics (bugs) inside code whose callers keep shared state: turned into errors where that
//! state must not be left half changed, and described in one line for the log.

use std::any::Any;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The message a panic carried (`panic!("…")` gives a `&str` or a `String`).
pub fn describe(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Runs `call`; a panic inside it comes back as an I/O error naming it, so that the caller
/// takes its error path (and undoes what it set up) instead of unwinding past it.
pub fn as_io_error<T>(what: &str, call: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(result) => result,
        Err(payload) => Err(io::Error::other(format!(
            "{what} panicked: {}",
            describe(&*payload)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_that_carries_its_message() {
        let got = as_io_error("the test call", || -> io::Result<()> {
            panic!("broken at {}", 7)
        });
        let e = got.expect_err("the panic was not turned into an error");
        assert_eq!(e.kind(), io::ErrorKind::Other);
        assert_eq!(e.to_string(), "the test call panicked: broken at 7");
        assert_eq!(as_io_error("x", || Ok(5)).ok(), Some(5));
        let plain: Box<dyn Any + Send> = Box::new("plain");
        assert_eq!(describe(&*plain), "plain");
        let other: Box<dyn Any + Send> = Box::new(3u8);
        assert_eq!(describe(&*other), "a panic without a message");
    }
}
