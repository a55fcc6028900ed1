//! Processes, threads and signals: fork while single-threaded, die with the
//! parent, reap, signal, resource usage and limits, CPU affinity, and the
//! harness's own SIGINT/SIGTERM handler.

use std::io;
use std::mem::{size_of, zeroed};
use std::time::Duration;

use crate::cvt;

/// Outcome of [`fork`] as seen by the calling process.
pub enum Fork {
    Parent(libc::pid_t),
    Child,
}

/// Number of threads in this process, from /proc/self/status.
pub fn thread_count() -> io::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no Threads: line in /proc/self/status"))
}

/// fork(2), refused unless this process has exactly one thread.
///
/// A child forked from a multi-threaded process may inherit a lock that another
/// thread held (the allocator's, stdout's) and deadlock; checking first turns
/// that into an error instead of a rare hang.
pub fn fork() -> io::Result<Fork> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(io::Error::other(format!(
            "refusing to fork: the process has {threads} threads (fleets are forked before any thread starts)"
        )));
    }
    // SAFETY: the process is single-threaded (checked above), so the child
    // gets a consistent copy of every lock and allocator state.
    let pid = cvt(unsafe { libc::fork() })?;
    Ok(if pid == 0 { Fork::Child } else { Fork::Parent(pid) })
}

/// In a freshly forked child: die with SIGKILL when the parent dies, and exit
/// at once if the parent is already gone (the race between fork and prctl).
pub fn die_with_parent(parent: libc::pid_t) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and no pointers.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    // SAFETY: getppid has no preconditions.
    if rc != 0 || unsafe { libc::getppid() } != parent {
        exit_now(1);
    }
}

/// Restores the default action of the signals a harness might handle, so a
/// worker dies on SIGTERM/SIGINT whatever syscall it is blocked in.
pub fn default_signals() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGPIPE] {
        // SAFETY: installing SIG_DFL is always valid.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// Ignores SIGPIPE so a write to a closed socket returns EPIPE instead.
pub fn ignore_sigpipe() {
    // SAFETY: installing SIG_IGN for SIGPIPE is always valid.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Makes `sig` interrupt blocking syscalls (EINTR) instead of killing the
/// process or being ignored: a handler that does nothing, without
/// SA_RESTART.
pub fn interrupt_on(sig: i32) -> io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags).
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `act` is a valid sigaction whose handler is async-signal-safe
    // (it does nothing); the old action is not asked for.
    cvt(unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) })?;
    Ok(())
}

/// _exit(2): leaves at once, running no destructors or atexit handlers (a
/// forked child must not flush buffers it shares with its parent).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

pub fn getpid() -> libc::pid_t {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Sends `sig` to `pid`; a process already gone is not an error.
pub fn kill(pid: libc::pid_t, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall; pid is one of our children.
    match cvt(unsafe { libc::kill(pid, sig) }) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// How a reaped child ended.
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    pub status: i32,
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
}

/// wait4(2) on one child; `Ok(None)` with `nohang` if it has not exited yet.
pub fn wait4(pid: libc::pid_t, nohang: bool) -> io::Result<Option<Reaped>> {
    let mut status = 0;
    let flags = if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: `status` is valid for writes; no rusage is asked for (CPU
        // time and switches come from /proc while the worker is alive).
        let r = unsafe { libc::wait4(pid, &mut status, flags, std::ptr::null_mut()) };
        match cvt(r) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(Reaped { status })),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// CPU time (user + system) this process has used so far, all threads.
pub fn self_cpu() -> Duration {
    // SAFETY: all-zero is a valid rusage.
    let mut ru: libc::rusage = unsafe { zeroed() };
    // SAFETY: `ru` is valid for writes.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    timeval(ru.ru_utime) + timeval(ru.ru_stime)
}

/// Peak resident set size of this process so far, in KiB.
pub fn self_peak_rss_kib() -> u64 {
    // SAFETY: all-zero is a valid rusage.
    let mut ru: libc::rusage = unsafe { zeroed() };
    // SAFETY: `ru` is valid for writes.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as u64
}

/// Raises the soft RLIMIT_NOFILE towards `want`, up to the hard limit.
/// Returns the soft limit in force afterwards.
pub fn raise_nofile(want: u64) -> io::Result<u64> {
    // SAFETY: all-zero is a valid rlimit.
    let mut rl: libc::rlimit = unsafe { zeroed() };
    // SAFETY: `rl` is valid for writes.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) })?;
    if rl.rlim_cur as u64 >= want {
        return Ok(rl.rlim_cur as u64);
    }
    rl.rlim_cur = (want as libc::rlim_t).min(rl.rlim_max);
    // SAFETY: `rl` is a valid rlimit no larger than the hard limit.
    cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) })?;
    Ok(rl.rlim_cur as u64)
}

/// The hard RLIMIT_NOFILE: the most open files the soft limit may be
/// raised to without privilege.
pub fn nofile_hard_limit() -> io::Result<u64> {
    // SAFETY: all-zero is a valid rlimit.
    let mut rl: libc::rlimit = unsafe { zeroed() };
    // SAFETY: `rl` is valid for writes.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) })?;
    Ok(rl.rlim_max as u64)
}

/// Opens (creating it) `path` and takes an exclusive flock(2) on it,
/// waiting for whoever holds it; the lock is held until the descriptor is
/// closed (or the process dies). A signal (EINTR) ends the wait with an error.
pub fn lock_file(path: &std::path::Path) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, OwnedFd};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let fd = OwnedFd::from(file);
    // SAFETY: plain syscall on a descriptor we own; no pointers.
    cvt(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) })?;
    Ok(fd)
}

/// CPUs this process may run on.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Pins the calling thread (and the threads it starts later) to `cpus`.
/// Best effort: an error (a CPU outside the allowed set) is returned.
pub fn pin_to(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { zeroed() };
    for &c in cpus {
        // SAFETY: CPU_SET writes one bit inside `set` for c < CPU_SETSIZE.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 = this thread.
    cvt(unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) })?;
    Ok(())
}

/// The calling thread's id (the pid, in a single-threaded process).
pub fn gettid() -> libc::pid_t {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Makes a command's process get `sig` when the harness dies, and fail to
/// start if the harness is already gone, so a server the harness started
/// cannot outlive it. The signal follows the thread that spawns the command
/// (PR_SET_PDEATHSIG), so spawn from a thread that lives as long as the
/// server should.
pub fn die_with_harness(cmd: &mut std::process::Command, sig: i32) {
    use std::os::unix::process::CommandExt;
    let parent = getpid();
    let hook = move || {
        // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and no pointers.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != parent {
            // The harness is gone: ESRCH, without allocating after fork.
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    };
    // SAFETY: the hook runs in the child between fork and exec and calls only
    // prctl and getppid, which are async-signal-safe, and allocates nothing.
    unsafe { cmd.pre_exec(hook) };
}

/// Sends `sig` to every process of the group `pgid`; a group already gone is
/// not an error.
pub fn kill_group(pgid: libc::pid_t, sig: i32) -> io::Result<()> {
    if pgid <= 1 {
        return Err(io::Error::other(format!("refusing to signal process group {pgid}")));
    }
    kill(-pgid, sig)
}

pub fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

// ---- SIGINT/SIGTERM in the harness itself (see interrupt.rs) ----

/// The first signal [`catch_signals`] caught; 0 while none has come.
static CAUGHT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The handler [`catch_signals`] installs: it records the signal number (the
/// first one only) and does nothing else. A compare-and-swap on a lock-free
/// atomic is async-signal-safe; nothing here allocates, locks or does I/O.
extern "C" fn record_signal(sig: libc::c_int) {
    use std::sync::atomic::Ordering;
    let _ = CAUGHT.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// Catches each of `signals` with a handler that only records it (read it
/// with [`caught_signal`]). sigaction without SA_RESTART, so a blocking
/// syscall returns EINTR rather than hiding the signal; with SA_RESETHAND,
/// so the same signal a second time takes its default action and ends the
/// process at once (its workers die with it: PR_SET_PDEATHSIG). Forked
/// workers restore the defaults ([`default_signals`]), and exec resets a
/// caught signal to its default in any command the harness starts.
pub fn catch_signals(signals: &[i32]) -> io::Result<()> {
    for &sig in signals {
        // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags).
        let mut act: libc::sigaction = unsafe { zeroed() };
        act.sa_sigaction = record_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        act.sa_flags = libc::SA_RESETHAND;
        // SAFETY: `act` is a valid sigaction whose handler is async-signal-safe
        // (one atomic compare-and-swap on a static); the old action is not
        // asked for.
        cvt(unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) })?;
    }
    Ok(())
}

/// The first signal [`catch_signals`] caught in this process, if any.
pub fn caught_signal() -> Option<i32> {
    match CAUGHT.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// In a forked worker: ignores SIGINT. A Ctrl-C at a terminal is sent to
/// the whole foreground process group, workers included; ignoring it leaves
/// the harness to end the load and stop the fleet itself (SIGTERM, then
/// SIGKILL), so connections in flight are answered instead of reset. The
/// workers still die with the harness (PR_SET_PDEATHSIG).
pub fn ignore_sigint() {
    // SAFETY: installing SIG_IGN for SIGINT is always valid.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
}
