//! Network namespaces: a run's own network stack, so the kernel's counters
//! and per-namespace sysctls belong to that run alone.
//!
//! A namespace is a property of a thread (and what it forks or spawns
//! inherits it): [`unshare_netns`] moves the calling thread into a new,
//! empty one, [`loopback_up`] brings its `lo` up, and [`enter_netns`] moves
//! the thread back into the one saved by [`current_netns`] before. The
//! namespace disappears when nothing is in it any more.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::cvt;

/// The calling thread's network namespace, as a descriptor to come back to.
pub fn current_netns() -> io::Result<OwnedFd> {
    let f = std::fs::File::open("/proc/thread-self/ns/net")?;
    Ok(OwnedFd::from(f))
}

/// Moves the calling thread into a new network namespace (CLONE_NEWNET;
/// needs CAP_SYS_ADMIN). Only `lo` is in it, and it is down.
pub fn unshare_netns() -> io::Result<()> {
    // SAFETY: a plain syscall with a constant flag; no pointers.
    cvt(unsafe { libc::unshare(libc::CLONE_NEWNET) })?;
    Ok(())
}

/// Moves the calling thread into the network namespace `ns` refers to.
pub fn enter_netns(ns: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a plain syscall on a descriptor the caller holds; no pointers.
    cvt(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })?;
    Ok(())
}

/// `struct ifreq` as SIOCGIFFLAGS and SIOCSIFFLAGS use it: the name, then
/// the flags in the union (the union is 24 bytes long).
#[repr(C)]
struct IfreqFlags {
    name: [u8; 16],
    flags: libc::c_short,
    pad: [u8; 22],
}

const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
const SIOCSIFFLAGS: libc::c_ulong = 0x8914;

/// Brings the loopback interface of the calling thread's namespace up
/// (IFF_UP | IFF_RUNNING), as `ip link set lo up` does.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: plain syscall with constant arguments; the result is checked.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    let sock = crate::owned(fd);
    let mut req = IfreqFlags {
        name: [0; 16],
        flags: 0,
        pad: [0; 22],
    };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: `req` is an ifreq-shaped buffer (name, then the flags) valid
    // for reads and writes for the call; the kernel writes the flags.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), SIOCGIFFLAGS, &mut req as *mut IfreqFlags) })?;
    req.flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: as above; the kernel reads the name and the flags.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), SIOCSIFFLAGS, &mut req as *mut IfreqFlags) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// Runs `f` on a thread of its own, moved into a new namespace (the
    /// test process's other threads stay where they are).
    fn in_new_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        std::thread::spawn(move || {
            if unshare_netns().is_err() {
                return None; // not root: nothing to test here
            }
            Some(f())
        })
        .join()
        .unwrap()
    }

    #[test]
    fn a_new_namespace_has_its_own_loopback_and_the_thread_comes_back() {
        let host = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        let got = in_new_netns(move || {
            let here = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
            // Down at first: nothing can bind and connect to 127.0.0.1.
            let before = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| std::net::TcpStream::connect(l.local_addr().unwrap()))
                .is_ok();
            loopback_up().unwrap();
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let after = std::net::TcpStream::connect(l.local_addr().unwrap()).is_ok();
            (here, before, after)
        });
        let Some((here, before, after)) = got else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but unshare(CLONE_NEWNET) is refused"
            );
            return;
        };
        assert_ne!(here, host, "the thread moved");
        assert!(!before && after, "lo down at first ({before}), then up ({after})");
        // And back: a thread can return to a saved namespace.
        let saved = current_netns().unwrap();
        let back = std::thread::spawn(move || {
            unshare_netns().unwrap();
            enter_netns(saved.as_fd()).unwrap();
            std::fs::read_link("/proc/thread-self/ns/net").unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(back, host);
    }
}
