//! SIGTERM / SIGINT: blocked in every thread and received by one dedicated thread with
//! `sigwait`, so the handler is ordinary code rather than an async-signal context.
//!
//! The wake signal: a pusher sends it to a session thread blocked in `recv` when that
//! session's socket took only part of a push. Its handler does nothing; the point is that the
//! `recv` returns EINTR, so the session wakes and writes the rest itself (waiting for the
//! socket to drain) instead of at its next read timeout.

use std::io;

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a plain sigset_t we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// Blocks SIGTERM and SIGINT in the calling thread and every thread it starts afterwards.
/// Call before any other thread exists.
pub fn block() -> io::Result<()> {
    let set = signal_set();
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Waits for SIGTERM or SIGINT (which must be blocked) and returns its number.
pub fn wait() -> io::Result<i32> {
    let set = signal_set();
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is initialised and `sig` is a valid out pointer.
    let rc = unsafe { libc::sigwait(&set, &mut sig) };
    if rc == 0 {
        Ok(sig)
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// The signal that wakes a session thread blocked in `recv` (see the module documentation).
/// SIGURG is only ever raised by the kernel for sockets whose owner was set (`F_SETOWN`),
/// which the server never does, so it carries no other meaning here.
const WAKE: libc::c_int = libc::SIGURG;

extern "C" fn on_wake(_: libc::c_int) {}

/// Installs the do-nothing handler of the wake signal, without `SA_RESTART` (a blocked `recv`
/// returns EINTR). Idempotent: every server in the process installs the same handler.
pub fn install_wake() -> io::Result<()> {
    // SAFETY: the sigaction struct is zeroed then filled; the handler is async-signal-safe
    // (it does nothing); a null old-action pointer is allowed.
    let rc = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_wake as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        libc::sigaction(WAKE, &sa, std::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The calling thread, for [`wake`].
pub fn current_thread() -> libc::pthread_t {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() }
}

/// Interrupts `thread`'s blocking system call. The caller guarantees the thread is alive.
pub fn wake(thread: libc::pthread_t) {
    // SAFETY: `thread` is a live thread of this process (the caller's guarantee); the signal
    // has a handler installed by `install_wake`.
    unsafe {
        libc::pthread_kill(thread, WAKE);
    }
}
