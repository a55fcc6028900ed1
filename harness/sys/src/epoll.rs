//! epoll: the one readiness mechanism of the load generator, the workers'
//! event loops and the dispatchers.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::{cvt, owned};

/// An all-zero event array entry, for sizing the buffer passed to [`Epoll::wait`].
pub const EMPTY_EVENT: libc::epoll_event = libc::epoll_event { events: 0, u64: 0 };

/// An epoll instance owned by one process.
pub struct Epoll(OwnedFd);

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall with a constant flag.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll(owned(fd)))
    }

    /// Registers `fd` for `events` with `data` as its tag.
    pub fn add(&self, fd: BorrowedFd<'_>, events: u32, data: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: data };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut ev) })?;
        Ok(())
    }

    /// Removes `fd` from the set.
    pub fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        // SAFETY: EPOLL_CTL_DEL ignores the event pointer (null is allowed
        // since Linux 2.6.9).
        cvt(unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd.as_raw_fd(),
                std::ptr::null_mut(),
            )
        })?;
        Ok(())
    }

    /// Waits for at most one event, forever; returns how many came (0 or 1).
    pub fn wait_one(&self) -> io::Result<usize> {
        self.wait_one_for(-1)
    }

    /// Waits for at most one event for up to `timeout_ms` milliseconds (-1:
    /// forever); returns how many came (0 on timeout, or 1).
    pub fn wait_one_for(&self, timeout_ms: i32) -> io::Result<usize> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: `ev` has room for the one event we ask for.
        let n = cvt(unsafe { libc::epoll_wait(self.0.as_raw_fd(), &mut ev, 1, timeout_ms) })?;
        Ok(n as usize)
    }

    /// Waits for up to `events.len()` events for at most `timeout` (`None`:
    /// forever); returns how many came (0 on timeout). The timeout has
    /// nanosecond resolution (epoll_pwait2, Linux 5.11); where that call is
    /// missing, epoll_wait with the timeout rounded up to a millisecond.
    pub fn wait(&self, events: &mut [libc::epoll_event], timeout: Option<Duration>) -> io::Result<usize> {
        let max = events.len().min(i32::MAX as usize) as i32;
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `events` has room for `max` events; `tsp` is null or points
        // at `ts`, alive across the call; a null sigmask leaves it unchanged.
        let r = unsafe {
            libc::syscall(
                libc::SYS_epoll_pwait2,
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                max,
                tsp,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            )
        };
        match cvt(r) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                let ms = timeout.map_or(-1, |t| t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32);
                // SAFETY: `events` has room for `max` events.
                let n = cvt(unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), max, ms) })?;
                Ok(n as usize)
            }
            Err(e) => Err(e),
        }
    }

    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoll_set_is_cloexec_and_a_wait_times_out_no_earlier_than_asked() {
        let ep = Epoll::new().unwrap();
        // SAFETY: F_GETFD takes no third argument and touches no memory.
        let flags = unsafe { libc::fcntl(ep.raw(), libc::F_GETFD) };
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
        let mut evs = [EMPTY_EVENT; 4];
        let t = std::time::Instant::now();
        assert_eq!(ep.wait(&mut evs, Some(Duration::from_micros(300))).unwrap(), 0);
        // A timeout never fires early, however the scheduler behaves.
        assert!(t.elapsed() >= Duration::from_micros(300));
    }
}
