//! Thin wrappers over the libc calls the fleet needs.
//!
//! Every `unsafe` block of the harness lives here, each with a `// SAFETY:` note.
//! Callers get `io::Result` (errno turned into `io::Error`) and `OwnedFd`s, so no
//! raw descriptor is ever left without an owner.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

pub use loadgen::sys::read;
use loadgen::sys::sockaddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Turns a libc return value into `io::Result`, reading errno on -1.
fn cvt<T: PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Wraps a descriptor that a successful syscall just returned.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was returned by a successful syscall that creates a new
    // descriptor, so nothing else owns it yet.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn setsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `value` outlives the call and its size is passed alongside it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Options for a listening TCP socket.
#[derive(Debug, Clone, Copy)]
pub struct ListenOpts {
    pub reuseport: bool,
    pub nonblocking: bool,
    pub backlog: i32,
}

/// socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen. CLOEXEC always.
pub fn tcp_listener(addr: &SocketAddr, opts: ListenOpts) -> io::Result<OwnedFd> {
    let fd = tcp_socket(addr, opts.nonblocking)?;
    setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if opts.reuseport {
        setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    }
    bind(fd.as_fd(), addr)?;
    // SAFETY: plain syscall on a descriptor we own.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), opts.backlog) })?;
    Ok(fd)
}

/// A bound but not listening socket: reserves a port without taking connections.
pub fn tcp_bound(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let fd = tcp_socket(addr, false)?;
    setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    bind(fd.as_fd(), addr)?;
    Ok(fd)
}

fn tcp_socket(addr: &SocketAddr, nonblocking: bool) -> io::Result<OwnedFd> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let mut ty = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    if nonblocking {
        ty |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: plain syscall with constant arguments.
    let fd = cvt(unsafe { libc::socket(domain, ty, 0) })?;
    Ok(owned(fd))
}

fn bind(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid address of length `len` for the call.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len) })?;
    Ok(())
}

/// The local address a socket is bound to.
pub fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` and `len` are valid for writes and describe each other.
    cvt(unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    })?;
    match storage.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (family AF_INET).
            let sin: libc::sockaddr_in = unsafe { std::ptr::read((&storage as *const libc::sockaddr_storage).cast()) };
            let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 (family AF_INET6).
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((&storage as *const libc::sockaddr_storage).cast()) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        f => Err(io::Error::other(format!("unexpected address family {f}"))),
    }
}

/// accept4 with CLOEXEC; the accepted socket is blocking whatever the listener is.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: null address pointers are allowed: we do not ask for the peer.
    let fd = cvt(unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    })?;
    Ok(owned(fd))
}

/// write(2) from `buf`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    let n = cvt(unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })?;
    Ok(n as usize)
}

/// send(2) with MSG_MORE: the kernel holds the data back, so that the FIN of
/// a close(2) that follows at once leaves in the same segment.
pub fn send_more(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    let n = cvt(unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_MORE) })?;
    Ok(n as usize)
}

/// Makes a socket non-blocking (fcntl F_SETFL O_NONBLOCK, one call: a
/// socket carries no other status flag that F_SETFL would clear).
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor the caller holds; no pointers.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) })?;
    Ok(())
}

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

/// A connected pair of SOCK_SEQPACKET Unix sockets for passing descriptors.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    Ok((owned(fds[0]), owned(fds[1])))
}

const FD_CMSG_SPACE: usize = 64;

/// An iovec over one byte: SCM_RIGHTS needs at least one byte of data.
fn one_byte_iov(byte: &mut [u8; 1]) -> libc::iovec {
    libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    }
}

/// A msghdr over `iov` and the first `controllen` bytes of `control`
/// (u64s, so aligned for cmsghdr). The caller keeps both alive while the
/// header is in use.
fn fd_msghdr(iov: &mut libc::iovec, control: &mut [u64; FD_CMSG_SPACE / 8], controllen: usize) -> libc::msghdr {
    debug_assert!(controllen <= FD_CMSG_SPACE);
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = controllen as _;
    msg
}

/// Sends one descriptor over a Unix socket with SCM_RIGHTS (and one data byte).
pub fn send_fd(chan: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = one_byte_iov(&mut byte);
    let mut cbuf = [0u64; FD_CMSG_SPACE / 8];
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
    let msg = fd_msghdr(&mut iov, &mut cbuf, space);
    // SAFETY: msg_control points at a buffer of at least msg_controllen bytes,
    // aligned for cmsghdr, so the first header and its data fit in it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd.as_raw_fd());
    }
    // SAFETY: `msg` and everything it points at live across the call.
    cvt(unsafe { libc::sendmsg(chan.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })?;
    Ok(())
}

/// Receives one descriptor sent by [`send_fd`]; `Ok(None)` when the peer closed.
///
/// Uses MSG_CMSG_CLOEXEC, rejects truncated control data, and wraps every
/// received descriptor in an `OwnedFd` at once.
pub fn recv_fd(chan: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    recv_fd_flags(chan, 0)
}

/// [`recv_fd`] that does not wait: `WouldBlock` when nothing is queued.
pub fn try_recv_fd(chan: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    recv_fd_flags(chan, libc::MSG_DONTWAIT)
}

fn recv_fd_flags(chan: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = one_byte_iov(&mut byte);
    let mut cbuf = [0u64; FD_CMSG_SPACE / 8];
    let mut msg = fd_msghdr(&mut iov, &mut cbuf, FD_CMSG_SPACE);
    // SAFETY: `msg` points at buffers valid for writes of the given lengths.
    let n = cvt(unsafe { libc::recvmsg(chan.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC | flags) })?;
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of
    // well-formed cmsghdrs; the CMSG macros walk only within them.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / size_of::<RawFd>();
                for i in 0..count {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(owned(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other("descriptor message truncated (MSG_CTRUNC)"));
    }
    if n == 0 && fds.is_empty() {
        return Ok(None);
    }
    let mut it = fds.into_iter();
    match (it.next(), it.next()) {
        (Some(fd), None) => Ok(Some(fd)),
        (None, _) => Err(io::Error::other("message carried no descriptor")),
        (Some(_), Some(_)) => Err(io::Error::other("message carried more than one descriptor")),
    }
}

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

/// Anonymous shared memory that survives fork: written by children, read by
/// the parent.
pub struct SharedMem {
    ptr: *mut u8,
    len: usize,
}

impl SharedMem {
    /// `len` zeroed bytes, page-aligned.
    pub fn new(len: usize) -> io::Result<SharedMem> {
        // SAFETY: anonymous mapping with no address hint; checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedMem { ptr: ptr.cast(), len })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn size(&self) -> usize {
        self.len
    }
}

// SAFETY: the mapping is only ever accessed through atomics (the counters'
// slots), which are sound to use from several threads at once, exactly as
// from several processes; the pointer itself is never reassigned.
unsafe impl Sync for SharedMem {}
// SAFETY: as above; the mapping is not tied to the thread that made it.
unsafe impl Send for SharedMem {}

impl Drop for SharedMem {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap and are unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the fleet.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is valid for writes; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
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

/// SO_ATTACH_REUSEPORT_CBPF (Linux 4.5). The asm-generic value, which x86,
/// arm and riscv use; the libc crate does not export it for glibc targets.
const SO_ATTACH_REUSEPORT_CBPF: i32 = 51;

/// Attaches the classic BPF program `prog` to the SO_REUSEPORT group of `fd`
/// (setsockopt SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF). The program runs on
/// each incoming SYN and returns the index of the group's socket that gets
/// it; an index past the group's end falls back to the 4-tuple hash. The
/// kernel checks the program (and rejects it with EINVAL) and keeps its own
/// copy, so `prog` need not outlive the call.
pub fn attach_reuseport_cbpf(fd: BorrowedFd<'_>, prog: &[libc::sock_filter]) -> io::Result<()> {
    let len =
        u16::try_from(prog.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?;
    let fprog = libc::sock_fprog {
        len,
        // The kernel only reads through this pointer (it copies the program).
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `len` instructions that live across the call,
    // and its own size is passed alongside it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// One completion of an [`AcceptRing`]'s multishot accept.
#[derive(Debug)]
pub struct Accepted {
    /// The new connection (blocking, CLOEXEC), or why the accept failed.
    pub conn: io::Result<OwnedFd>,
    /// IORING_CQE_F_MORE: the accept stays armed. Without it the request has
    /// ended and must be submitted again.
    pub more: bool,
}

/// An io_uring with one multishot accept (IORING_OP_ACCEPT with
/// IORING_ACCEPT_MULTISHOT, Linux 5.19) on a listening socket: one
/// submission, then a completion for every connection it accepts.
///
/// Plain ring set-up (no SQPOLL, no DEFER_TASKRUN): the kernel runs the
/// accept as task work of the process that owns the ring, as liburing's
/// `io_uring_queue_init(entries, &ring, 0)` does.
pub struct AcceptRing {
    ring: io_uring::IoUring,
}

/// user_data of the multishot accept, and of a cancel of it.
const ACCEPT_TAG: u64 = 0;
const CANCEL_TAG: u64 = 1;

impl AcceptRing {
    /// A ring whose completion queue holds `cq_entries` (a multishot accept
    /// posts one completion per connection; if the queue overflows the kernel
    /// keeps them, NODROP, but ends the multishot request).
    /// io_uring_setup fails with EPERM or ENOSYS where the kernel or a
    /// sandbox refuses io_uring (kernel.io_uring_disabled, seccomp).
    pub fn new(cq_entries: u32) -> io::Result<AcceptRing> {
        let ring = io_uring::IoUring::builder().setup_cqsize(cq_entries).build(4)?;
        Ok(AcceptRing { ring })
    }

    /// Submits a multishot accept on `listener` (accepted sockets get
    /// SOCK_CLOEXEC and stay blocking). Completions of a request the kernel
    /// refuses at once (EINVAL for the multishot flag before Linux 5.19) are
    /// already in the queue when this returns.
    pub fn arm(&mut self, listener: BorrowedFd<'_>) -> io::Result<()> {
        let entry = io_uring::opcode::AcceptMulti::new(io_uring::types::Fd(listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(ACCEPT_TAG);
        // SAFETY: an accept without an address buffer carries no pointer into
        // our memory, so nothing the kernel writes can dangle; the descriptor
        // is resolved (and a reference to its file taken) at submission.
        unsafe { self.ring.submission().push(&entry) }
            .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        self.ring.submit()?;
        Ok(())
    }

    /// Waits until at least one completion is there (at once if one already
    /// is), or a signal came (not an error: the caller looks at the queue and
    /// at why it was woken).
    pub fn wait(&self) -> io::Result<()> {
        match self.ring.submit_and_wait(1) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Asks the kernel to end the multishot accept: its last completion
    /// (without IORING_CQE_F_MORE; ECANCELED, unless it ended already) comes
    /// after every connection it took. The cancel's own completion is not
    /// passed on by [`AcceptRing::drain`].
    pub fn cancel(&mut self) -> io::Result<()> {
        let entry = io_uring::opcode::AsyncCancel::new(ACCEPT_TAG)
            .build()
            .user_data(CANCEL_TAG);
        // SAFETY: a cancel carries no pointer into our memory, only the
        // user_data of the request to cancel.
        unsafe { self.ring.submission().push(&entry) }
            .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        self.ring.submit()?;
        Ok(())
    }

    /// Moves every completion now in the queue into `out`, each accepted
    /// descriptor wrapped in an `OwnedFd` at once.
    pub fn drain(&mut self, out: &mut Vec<Accepted>) {
        for cqe in self.ring.completion() {
            if cqe.user_data() == CANCEL_TAG {
                continue;
            }
            let res = cqe.result();
            out.push(Accepted {
                conn: if res >= 0 {
                    // A descriptor the kernel has just installed in this
                    // process's table for the accepted connection.
                    Ok(owned(res))
                } else {
                    Err(io::Error::from_raw_os_error(-res))
                },
                more: io_uring::cqueue::more(cqe.flags()),
            });
        }
    }

    /// The ring's own descriptor.
    pub fn raw(&self) -> RawFd {
        self.ring.as_raw_fd()
    }
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
