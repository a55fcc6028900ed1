//! perf_event_open(2): counters on the calling thread.
//!
//! Why it exists: the kernel can say itself which thread accepted a
//! connection, by counting the syscalls:sys_exit_accept4 tracepoint per
//! thread. `harness doctor` checks that this machine lets the harness open
//! such a counter; [`tracepoint_id`] finds the tracepoint's id in a mounted
//! tracefs (it never mounts one).

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
/// perf_event_attr.flags bit 5: do not count in kernel mode.
const ATTR_EXCLUDE_KERNEL: u64 = 1 << 5;

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
    // alive across the call, which only reads it; pid 0 and cpu -1 mean
    // this thread on any CPU, group -1 none.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const Attr,
            0 as libc::pid_t,
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
