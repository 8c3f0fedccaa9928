//! SIGTERM / SIGINT: blocked in every thread and received by one dedicated thread with
//! `sigwait`, so the handler is ordinary code rather than an async-signal context.
//!
//! The wake signal: a pusher sends it to a session thread blocked in `recv` when that
//! session's socket took only part of a push, so that the session wakes and writes the rest
//! itself (waiting for the socket to drain) instead of at its next read timeout, and when the
//! session went idle just as a push was queued for it awake (see `push.rs`). A signal that
//! lands while the thread is in `recv` makes it return EINTR (the handler is installed without
//! `SA_RESTART`). One that lands in the instant between the session's decision to block and its
//! entry into `recv` would be lost (the handler runs, then `recv` blocks): so the handler also
//! shortens the receive timeout of the session's socket ([`WakeTarget`]) to the shortest the
//! kernel keeps (one clock tick), and a `recv` entered after it returns `EAGAIN` within that tick.
//! The session restores its own timeout when [`take_woken`] says a wake came. The request path
//! pays no system call for this: one thread-local load after each `recv`.

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a plain sigset_t we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, PROMOTE);
        set
    }
}

/// SIGUSR1: promote a read replica to primary (ignored by a primary).
pub const PROMOTE: libc::c_int = libc::SIGUSR1;

/// Blocks SIGTERM, SIGINT and SIGUSR1 in the calling thread and every thread it starts afterwards.
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

/// Waits for SIGTERM, SIGINT or SIGUSR1 (which must be blocked) and returns its number.
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

thread_local! {
    /// The socket of the session this thread serves (-1: none), for the wake handler. Atomic
    /// (and without destructor, so reading it allocates nothing) for use in a signal handler.
    static WAKE_FD: AtomicI32 = const { AtomicI32::new(-1) };
    /// Set by the wake handler once it has shortened `WAKE_FD`'s receive timeout.
    static WOKEN: AtomicBool = const { AtomicBool::new(false) };
    /// Whether a [`WakeTarget`] is alive on this thread (only one may be).
    static TARGETED: Cell<bool> = const { Cell::new(false) };
}

/// Async-signal-safe: atomics, `setsockopt` and `errno` only.
extern "C" fn on_wake(_: libc::c_int) {
    let fd = WAKE_FD.with(|f| f.load(Ordering::Relaxed));
    if fd < 0 {
        return;
    }
    // One microsecond: rounded up to one clock tick (zero would mean "no timeout").
    let tick = libc::timeval {
        tv_sec: 0,
        tv_usec: 1,
    };
    // SAFETY: errno is this thread's; it is saved and restored so that the interrupted code
    // reads its own. `tick` is a valid timeval for the duration of the call; `fd` is the
    // session's socket, open while `WAKE_FD` names it (see `WakeTarget`).
    unsafe {
        let errno = libc::__errno_location();
        let saved = *errno;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tick as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        *errno = saved;
    }
    WOKEN.with(|w| w.store(true, Ordering::Relaxed));
}

/// Names the socket whose receive timeout a wake shortens on the calling thread, until dropped.
/// Drop it before the socket is closed.
pub struct WakeTarget {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl WakeTarget {
    /// Targets `fd` on this thread. Panics if a target is alive on this thread already (a
    /// programming error: one session per thread).
    pub fn new(fd: RawFd) -> WakeTarget {
        assert!(
            !TARGETED.with(|t| t.replace(true)),
            "one wake target per thread"
        );
        WOKEN.with(|w| w.store(false, Ordering::Relaxed));
        WAKE_FD.with(|f| f.store(fd, Ordering::Relaxed));
        WakeTarget {
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for WakeTarget {
    fn drop(&mut self) {
        WAKE_FD.with(|f| f.store(-1, Ordering::Relaxed));
        TARGETED.with(|t| t.set(false));
    }
}

/// Whether a wake shortened this thread's socket timeout since the last call; the caller then
/// sets its own timeout again. A plain load when no wake came.
pub fn take_woken() -> bool {
    WOKEN.with(|w| w.load(Ordering::Relaxed) && w.swap(false, Ordering::Relaxed))
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    /// The lost-wake case: the wake lands after the session decided to block and before it
    /// entered `recv`. The blocking read must then end by itself (`WouldBlock`) rather than
    /// wait for input. Should it wait, a helper thread sends a byte after a long while, and the
    /// read returns that byte instead, which fails the test (no timing is asserted).
    #[test]
    fn a_wake_before_the_blocking_read_still_ends_it() {
        install_wake().unwrap();
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_read_timeout(None).unwrap();
        let target = WakeTarget::new(ours.as_raw_fd());
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let rescue = std::thread::spawn(move || {
            if stopped.recv_timeout(Duration::from_secs(30)).is_err() {
                let _ = theirs.write_all(b"x");
            }
            theirs
        });
        // The wake, delivered to this thread before `pthread_kill` returns: before the read.
        wake(current_thread());
        let mut buf = [0u8; 1];
        let read = ours.read(&mut buf);
        let _ = stop.send(());
        let _theirs = rescue.join().unwrap();
        let kind = read.map_err(|e| e.kind());
        assert!(
            matches!(kind, Err(io::ErrorKind::WouldBlock)),
            "the read waited for input: {kind:?}"
        );
        assert!(take_woken());
        assert!(!take_woken());
        drop(target);
        // Without a target the handler leaves sockets alone.
        ours.set_read_timeout(None).unwrap();
        wake(current_thread());
        assert!(!take_woken());
        assert_eq!(ours.read_timeout().unwrap(), None);
    }
}
