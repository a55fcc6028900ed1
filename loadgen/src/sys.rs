//! Thin wrappers over the few libc calls the engine needs.
//!
//! This is the only module with `unsafe`. Every call goes through here so that
//! errno becomes an `io::Error` in one place, every new file descriptor is
//! wrapped in an `OwnedFd` the moment it exists (so it is closed exactly once,
//! on every path), and each `unsafe` block carries the argument for why it is
//! sound. It is public so that the harness encodes socket addresses and
//! reads sockets through the same wrappers rather than copies of them.

use std::io;
use std::mem;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Turns a `-1` return into the thread's errno.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Same as [`cvt`] for calls returning `ssize_t`.
fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// A `sockaddr_storage` filled from a Rust socket address, with its length.
pub fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for
            // sockaddr_in (that is what it is for); the write stays in bounds.
            unsafe { (&mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in).write(sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { (&mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in6).write(sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// A new non-blocking, close-on-exec TCP socket of the family of `addr`.
pub fn tcp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) takes no pointers; the result is checked before use.
    let fd = cvt(unsafe { libc::socket(domain, ty, 0) })?;
    // SAFETY: fd was just returned by socket(2), is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds `fd` to `ip` with port 0, deferring the port choice to connect(2)
/// (IP_BIND_ADDRESS_NO_PORT), so that each source address has its own
/// ephemeral port range per destination.
pub fn bind_source(fd: BorrowedFd<'_>, ip: IpAddr) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `one` outlives the call and its exact size is passed.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            &one as *const libc::c_int as *const libc::c_void,
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    let (storage, len) = sockaddr(&SocketAddr::new(ip, 0));
    // SAFETY: storage holds a valid sockaddr of length `len` and outlives the call.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &storage as *const libc::sockaddr_storage as *const libc::sockaddr,
            len,
        )
    })?;
    Ok(())
}

/// Asks the kernel to hold back the last ACK of the handshake and send it
/// with the first data (TCP_DEFER_ACCEPT on a connecting socket; the ACK
/// goes out alone after 200 ms at the latest if no data comes).
pub fn piggyback_handshake_ack(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `one` outlives the call and its exact size is passed.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            &one as *const libc::c_int as *const libc::c_void,
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Starts a connect. `Ok(true)`: connected at once; `Ok(false)`: in progress
/// (EINPROGRESS), completion is reported by epoll.
pub fn connect(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<bool> {
    let (storage, len) = sockaddr(addr);
    // SAFETY: storage holds a valid sockaddr of length `len` and outlives the call.
    let ret = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            &storage as *const libc::sockaddr_storage as *const libc::sockaddr,
            len,
        )
    };
    match cvt(ret) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sends bytes without raising SIGPIPE on a reset connection (EPIPE instead).
pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is a valid readable region of buf.len() bytes for the call.
    cvt_size(unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr() as *const libc::c_void,
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    })
}

/// Reads into `buf`; `Ok(0)` is end of stream.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is a valid writable region of buf.len() bytes for the call.
    cvt_size(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()) })
}

/// The pending socket error (SO_ERROR), which also clears it. 0 means none.
pub fn so_error(fd: BorrowedFd<'_>) -> io::Result<i32> {
    let mut err: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err and len are valid for writes and len holds err's size.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok(err)
}

/// A new close-on-exec epoll instance.
pub fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: no pointers; the result is checked before use.
    let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    // SAFETY: fd was just returned by epoll_create1, is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Registers `fd` with `epfd` for `events`, tagging its events with `data`.
pub fn epoll_add(epfd: BorrowedFd<'_>, fd: BorrowedFd<'_>, events: u32, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: ev is a valid epoll_event for the duration of the call.
    cvt(unsafe { libc::epoll_ctl(epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut ev) })?;
    Ok(())
}

/// This thread's timer slack in nanoseconds (default 50 us).
pub fn timer_slack_ns() -> io::Result<u64> {
    // SAFETY: PR_GET_TIMERSLACK takes no arguments and returns the value.
    let ret = unsafe {
        libc::prctl(
            libc::PR_GET_TIMERSLACK,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Ok(cvt(ret)? as u64)
}

/// Sets this thread's timer slack, so that short think times (`--gap
/// 200us`) are slept precisely rather than rounded up by the kernel.
pub fn set_timer_slack_ns(ns: u64) -> io::Result<()> {
    let ns = libc::c_ulong::try_from(ns.max(1)).unwrap_or(libc::c_ulong::MAX);
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and no pointers.
    cvt(unsafe {
        libc::prctl(
            libc::PR_SET_TIMERSLACK,
            ns,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })?;
    Ok(())
}

/// An all-zero event array entry, for sizing the buffer passed to [`epoll_wait`].
pub const EMPTY_EVENT: libc::epoll_event = libc::epoll_event { events: 0, u64: 0 };

/// Waits up to `timeout` for events. Uses epoll_pwait2 for sub-millisecond
/// timeouts (think times of a few hundred microseconds), falling back to
/// epoll_wait (rounded up to whole ms) on kernels without it. EINTR is `Ok(0)`.
pub fn epoll_wait(epfd: BorrowedFd<'_>, events: &mut [libc::epoll_event], timeout: Duration) -> io::Result<usize> {
    let max = events.len().min(libc::c_int::MAX as usize) as libc::c_int;
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: events is valid for writes of `max` entries, ts is a valid
    // timespec, and a null sigmask means "leave the mask alone".
    let ret = unsafe {
        libc::syscall(
            libc::SYS_epoll_pwait2,
            epfd.as_raw_fd(),
            events.as_mut_ptr(),
            max,
            &ts as *const libc::timespec,
            std::ptr::null::<libc::sigset_t>(),
            0usize,
        )
    };
    let ret = if ret == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
        let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: events is valid for writes of `max` entries.
        unsafe { libc::epoll_wait(epfd.as_raw_fd(), events.as_mut_ptr(), max, ms) as libc::c_long }
    } else {
        ret
    };
    if ret == -1 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(ret as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn fcntl(fd: BorrowedFd<'_>, cmd: libc::c_int) -> libc::c_int {
        // SAFETY: F_GETFL / F_GETFD take no third argument and touch no memory.
        let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd) };
        assert!(r >= 0, "fcntl: {}", io::Error::last_os_error());
        r
    }

    #[test]
    fn client_sockets_are_nonblocking_and_cloexec() {
        for addr in ["127.0.0.1:80", "[::1]:80"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let fd = tcp_socket(&addr).unwrap();
            assert_ne!(fcntl(fd.as_fd(), libc::F_GETFL) & libc::O_NONBLOCK, 0, "{addr}");
            assert_ne!(fcntl(fd.as_fd(), libc::F_GETFD) & libc::FD_CLOEXEC, 0, "{addr}");
        }
        let ep = epoll_create().unwrap();
        assert_ne!(fcntl(ep.as_fd(), libc::F_GETFD) & libc::FD_CLOEXEC, 0);
    }

    #[test]
    fn connect_to_closed_port_is_refused_or_in_progress() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let fd = tcp_socket(&addr).unwrap();
        match connect(fd.as_fd(), &addr) {
            Ok(false) => {
                // The RST has been processed by now on loopback.
                std::thread::sleep(Duration::from_millis(20));
                assert_eq!(so_error(fd.as_fd()).unwrap(), libc::ECONNREFUSED);
            }
            Ok(true) => panic!("connected to a closed port"),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED)),
        }
    }

    #[test]
    fn timer_slack_round_trips() {
        let old = timer_slack_ns().unwrap();
        set_timer_slack_ns(1000).unwrap();
        assert_eq!(timer_slack_ns().unwrap(), 1000);
        set_timer_slack_ns(old).unwrap();
        assert_eq!(timer_slack_ns().unwrap(), old);
    }

    #[test]
    fn epoll_wait_times_out_with_sub_ms_precision() {
        let ep = epoll_create().unwrap();
        let mut evs = [EMPTY_EVENT; 4];
        let t = std::time::Instant::now();
        assert_eq!(epoll_wait(ep.as_fd(), &mut evs, Duration::from_micros(300)).unwrap(), 0);
        assert!(t.elapsed() >= Duration::from_micros(300));
    }
}
