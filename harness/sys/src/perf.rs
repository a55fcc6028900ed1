//! perf_event_open(2): counters on the calling thread or on any thread.
//!
//! Why it exists: the kernel can say itself which thread accepted a
//! connection, by counting the syscalls:sys_exit_accept4 tracepoint per
//! thread ([`task_counter`], with a `ret >= 0` filter, [`set_filter`]).
//! `harness doctor` checks that this machine lets the harness open such a
//! counter. A tracepoint is named by its id: [`tracepoint_id`] reads it in
//! a mounted tracefs, and [`tracepoint_ids_privately`] in a tracefs mounted
//! for a moment in a throw-away mount namespace, so the host's mounts never
//! change.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use crate::{cvt_size, owned};

/// perf_event_attr.type of a software event (task-clock, ...).
pub const PERF_TYPE_SOFTWARE: u32 = 1;
/// perf_event_attr.type of a tracepoint; the config is its id.
pub const PERF_TYPE_TRACEPOINT: u32 = 2;
/// PERF_TYPE_SOFTWARE config: the thread's CPU time, in nanoseconds.
pub const PERF_COUNT_SW_TASK_CLOCK: u64 = 1;

/// PERF_FLAG_FD_CLOEXEC: the counter's descriptor is close-on-exec.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// perf_event_attr.flags bit 0: created stopped.
const ATTR_DISABLED: u64 = 1;
/// perf_event_attr.flags bit 1: children (processes and threads) created
/// after the counter was opened are counted too, into this counter.
const ATTR_INHERIT: u64 = 1 << 1;
/// perf_event_attr.flags bit 5: do not count in kernel mode.
const ATTR_EXCLUDE_KERNEL: u64 = 1 << 5;
/// PERF_EVENT_IOC_SET_FILTER, `_IOW('$', 6, char *)`: an ftrace filter on a
/// tracepoint counter.
const PERF_EVENT_IOC_SET_FILTER: libc::c_ulong = 0x4008_2406;

/// `struct perf_event_attr` as its first version had it
/// (PERF_ATTR_SIZE_VER0, 64 bytes); the kernel takes any version's size.
#[repr(C)]
struct Attr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// PERF_TYPE_SOFTWARE, PERF_TYPE_TRACEPOINT, ...
    pub kind: u32,
    /// The event within its type (a tracepoint's id).
    pub config: u64,
    /// Count in user mode only (what perf_event_paranoid 2 allows without
    /// CAP_PERFMON).
    pub user_only: bool,
}

/// Opens a counter of `event` on the calling thread, on any CPU, running
/// at once unless `disabled` (then PERF_EVENT_IOC_ENABLE starts it).
pub fn thread_counter(event: Event, disabled: bool) -> io::Result<OwnedFd> {
    let mut flags = 0;
    if disabled {
        flags |= ATTR_DISABLED;
    }
    open(event, 0, flags)
}

/// Opens a counter of `event` on thread `tid` (of any process this one may
/// trace: root, or the same user under perf_event_paranoid), on any CPU,
/// running at once. With `inherit`, the processes and threads `tid` creates
/// from now on are counted into it too (a read sums them, live or ended).
pub fn task_counter(event: Event, tid: libc::pid_t, inherit: bool) -> io::Result<OwnedFd> {
    if tid <= 0 {
        return Err(io::Error::other(format!("no thread {tid} to count on")));
    }
    open(event, tid, if inherit { ATTR_INHERIT } else { 0 })
}

fn open(event: Event, pid: libc::pid_t, mut flags: u64) -> io::Result<OwnedFd> {
    if event.user_only {
        flags |= ATTR_EXCLUDE_KERNEL;
    }
    let attr = Attr {
        kind: event.kind,
        size: size_of::<Attr>() as u32,
        config: event.config,
        sample_period: 0,
        sample_type: 0,
        read_format: 0,
        flags,
        wakeup_events: 0,
        bp_type: 0,
        config1: 0,
    };
    // SAFETY: `attr` is a valid perf_event_attr of the size it states,
    // alive across the call, which only reads it; pid 0 is this thread, a
    // positive pid that thread; cpu -1 means any CPU, group -1 none.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const Attr,
            pid,
            -1 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(ret).map_err(|_| io::Error::other("perf_event_open returned an impossible descriptor"))?;
    Ok(owned(fd))
}

/// Sets an ftrace filter (`ret >= 0`) on a tracepoint counter: only the
/// events it passes are counted.
pub fn set_filter(counter: BorrowedFd<'_>, filter: &str) -> io::Result<()> {
    let text = std::ffi::CString::new(filter)
        .map_err(|_| io::Error::other(format!("a filter with a NUL byte: {filter:?}")))?;
    // SAFETY: the ioctl reads the NUL-terminated string, alive across the
    // call, and keeps no pointer to it.
    crate::cvt(unsafe { libc::ioctl(counter.as_raw_fd(), PERF_EVENT_IOC_SET_FILTER as _, text.as_ptr()) })?;
    Ok(())
}

/// The counter's value now.
pub fn read_count(counter: BorrowedFd<'_>) -> io::Result<u64> {
    let mut value = 0u64;
    // SAFETY: `value` is valid for writes of 8 bytes, what read_format 0 gives.
    let n = cvt_size(unsafe { libc::read(counter.as_raw_fd(), (&mut value as *mut u64).cast(), size_of::<u64>()) })?;
    if n != size_of::<u64>() {
        return Err(io::Error::other(format!("a perf counter read gave {n} bytes")));
    }
    Ok(value)
}

/// Where a tracefs is mounted, from a mount table (`/proc/self/mounts`):
/// the first tracefs in it (one the kernel mounted under a debugfs at
/// /sys/kernel/debug/tracing is listed once it is there). Only what is
/// mounted: merely looking inside /sys/kernel/debug/tracing would make the
/// kernel mount it.
pub fn tracefs_in(mounts: &str) -> Option<String> {
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, at, kind) = (f.next()?, f.next()?, f.next()?);
        // Mount points escape spaces as \040; such a path is not ours.
        (kind == "tracefs" && !at.contains('\\')).then(|| at.to_string())
    })
}

/// The id of tracepoint `group:name` under the tracefs at `tracefs`.
pub fn tracepoint_id(tracefs: &Path, group: &str, name: &str) -> io::Result<u64> {
    let path = tracefs.join("events").join(group).join(name).join("id");
    let text = std::fs::read_to_string(&path)?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::other(format!("{}: not a number: {:?}", path.display(), text.trim())))
}

/// Where tracefs is mounted in a private mount namespace.
const PRIVATE_TRACEFS: &str = "/sys/kernel/tracing";

/// The ids of tracepoints `(group, name)`, read in a tracefs mounted only
/// for this: a child (`cat`) unshares its mount namespace, makes every
/// mount in it private (as `mount --make-rprivate /`), mounts tracefs on
/// /sys/kernel/tracing and prints the `id` files; the mount ends with the
/// child's namespace and the host's mounts never see it. Needs root
/// (CAP_SYS_ADMIN); a counter needs only the id.
pub fn tracepoint_ids_privately(tracepoints: &[(&str, &str)]) -> io::Result<Vec<u64>> {
    use std::os::unix::process::CommandExt;
    let paths: Vec<String> = tracepoints
        .iter()
        .map(|(g, n)| format!("{PRIVATE_TRACEFS}/events/{g}/{n}/id"))
        .collect();
    let mut cmd = std::process::Command::new("cat");
    cmd.args(&paths)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let hook = || {
        // SAFETY: unshare takes flags and no pointers.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the strings are NUL-terminated literals; null source,
        // type and data are allowed for a propagation change.
        let private = unsafe {
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        };
        if private != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: NUL-terminated literals, no data.
        let mounted = unsafe {
            libc::mount(
                c"nodev".as_ptr(),
                c"/sys/kernel/tracing".as_ptr(),
                c"tracefs".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if mounted != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook runs in the child between fork and exec, calls only
    // unshare and mount (async-signal-safe system calls) with literals, and
    // allocates nothing (an error is a raw errno).
    unsafe { cmd.pre_exec(hook) };
    let out = cmd
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("mounting tracefs in a private mount namespace: {e}")))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(io::Error::other(format!(
            "reading tracepoint ids in a private tracefs: {}",
            why.trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let ids: Vec<u64> = text
        .split_whitespace()
        .map(|w| {
            w.parse()
                .map_err(|_| io::Error::other(format!("a tracepoint id that is not a number: {w:?}")))
        })
        .collect::<io::Result<_>>()?;
    if ids.len() != tracepoints.len() {
        return Err(io::Error::other(format!(
            "{} tracepoint ids for {} tracepoints",
            ids.len(),
            tracepoints.len()
        )));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn the_attr_is_the_first_versions_size() {
        assert_eq!(size_of::<Attr>(), 64);
    }

    #[test]
    fn a_task_clock_counter_counts_this_threads_time() {
        let event = Event {
            kind: PERF_TYPE_SOFTWARE,
            config: PERF_COUNT_SW_TASK_CLOCK,
            user_only: true,
        };
        let c = match thread_counter(event, false) {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI is set but perf_event_open is refused: {e}"
                );
                eprintln!("skipped: perf_event_open refused here ({e})");
                return;
            }
        };
        assert!(crate::is_cloexec(c.as_fd()).unwrap());
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(5) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(read_count(c.as_fd()).unwrap() > 0);
    }

    #[test]
    fn the_accept4_tracepoint_counts_an_accept_where_tracefs_is_mounted() {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let Some(tracefs) = tracefs_in(&mounts) else {
            eprintln!("skipped: no tracefs mounted (mount -t tracefs nodev /sys/kernel/tracing)");
            return;
        };
        let id = match tracepoint_id(Path::new(&tracefs), "syscalls", "sys_exit_accept4") {
            Ok(id) => id,
            Err(e) => {
                eprintln!("skipped: no syscalls:sys_exit_accept4 under {tracefs} ({e})");
                return;
            }
        };
        let event = Event {
            kind: PERF_TYPE_TRACEPOINT,
            config: id,
            user_only: false,
        };
        let c = thread_counter(event, false).unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let before = read_count(c.as_fd()).unwrap();
        // std's accept is accept4 on Linux.
        let _conn = l.accept().unwrap();
        assert_eq!(read_count(c.as_fd()).unwrap(), before + 1);
    }

    /// The accept tracepoints' ids: where a tracefs is mounted, else in a
    /// private one (root); `None` (the test skips) when neither works.
    fn accept_ids() -> Option<Vec<u64>> {
        let names = [("syscalls", "sys_exit_accept4"), ("syscalls", "sys_exit_accept")];
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let found = match tracefs_in(&mounts) {
            Some(at) => names
                .iter()
                .map(|(g, n)| tracepoint_id(Path::new(&at), g, n))
                .collect::<io::Result<Vec<u64>>>(),
            None => tracepoint_ids_privately(&names),
        };
        match found {
            Ok(ids) => Some(ids),
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none() || crate::geteuid() != 0,
                    "CI as root but no tracepoint ids: {e}"
                );
                eprintln!("skipped: no tracepoint ids ({e})");
                None
            }
        }
    }

    #[test]
    fn a_private_tracefs_leaves_the_hosts_mounts_as_they_were() {
        let before = std::fs::read_to_string("/proc/self/mounts").unwrap();
        if tracefs_in(&before).is_some() || crate::geteuid() != 0 {
            eprintln!("skipped: a tracefs is mounted already, or not root");
            return;
        }
        let ids =
            tracepoint_ids_privately(&[("syscalls", "sys_exit_accept4"), ("syscalls", "sys_exit_accept")]).unwrap();
        assert!(ids[0] > 0 && ids[1] > 0 && ids[0] != ids[1], "{ids:?}");
        let after = std::fs::read_to_string("/proc/self/mounts").unwrap();
        assert_eq!(tracefs_in(&after), None);
        let e = tracepoint_ids_privately(&[("syscalls", "no_such_tracepoint")]).unwrap_err();
        assert!(e.to_string().contains("no_such_tracepoint"), "{e}");
    }

    #[test]
    fn a_filtered_inherited_counter_on_another_thread_counts_its_successful_accepts() {
        let Some(ids) = accept_ids() else { return };
        let event = Event {
            kind: PERF_TYPE_TRACEPOINT,
            config: ids[0],
            user_only: false,
        };
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            tid_tx.send(crate::gettid()).unwrap();
            wait.recv().unwrap();
            // One that fails (EAGAIN), then two that succeed, the second in
            // a thread started after the counter was opened.
            assert!(l.accept().is_err());
            let _c1 = std::net::TcpStream::connect(addr).unwrap();
            let accept = |l: &std::net::TcpListener| loop {
                if let Ok(c) = l.accept() {
                    return c;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            };
            let _a1 = accept(&l);
            let _c2 = std::net::TcpStream::connect(addr).unwrap();
            std::thread::scope(|s| {
                s.spawn(|| accept(&l));
            });
        });
        let tid = tid_rx.recv().unwrap();
        let c = task_counter(event, tid, true).unwrap();
        set_filter(c.as_fd(), "ret >= 0").unwrap();
        assert!(crate::is_cloexec(c.as_fd()).unwrap());
        go.send(()).unwrap();
        worker.join().unwrap();
        assert_eq!(read_count(c.as_fd()).unwrap(), 2);
        assert!(set_filter(c.as_fd(), "no_such_field >= 0").is_err());
        assert!(task_counter(event, 0, true).is_err());
    }

    #[test]
    fn tracefs_is_found_only_where_mounted() {
        let table = "sysfs /sys sysfs rw 0 0\ndebugfs /sys/kernel/debug debugfs rw 0 0\n";
        assert_eq!(tracefs_in(table), None);
        let table = format!("{table}tracefs /sys/kernel/tracing tracefs rw 0 0\n");
        assert_eq!(tracefs_in(&table).as_deref(), Some("/sys/kernel/tracing"));
        let nested = "tracefs /sys/kernel/debug/tracing tracefs rw 0 0\n";
        assert_eq!(tracefs_in(nested).as_deref(), Some("/sys/kernel/debug/tracing"));
        assert_eq!(tracefs_in("tracefs /a\\040b tracefs rw 0 0"), None);
    }
}
