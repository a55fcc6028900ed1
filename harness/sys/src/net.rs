//! Sockets: TCP listeners and clients, reads and writes, socket options,
//! descriptors passed over Unix sockets (SCM_RIGHTS), and the classic BPF
//! program that steers a SO_REUSEPORT group.

use std::io;
use std::mem::{self, size_of, zeroed};
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::{cvt, cvt_size, owned};

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
pub fn client_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) takes no pointers; the result is checked before use.
    let fd = cvt(unsafe { libc::socket(domain, ty, 0) })?;
    Ok(owned(fd))
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

/// Whether `fd` is non-blocking (O_NONBLOCK), as fcntl F_GETFL says: for
/// tests that check every socket's flags.
pub fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: F_GETFL takes no third argument and touches no memory.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// Whether `fd` is closed on exec (FD_CLOEXEC), as fcntl F_GETFD says.
pub fn is_cloexec(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: F_GETFD takes no third argument and touches no memory.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) })?;
    Ok(flags & libc::FD_CLOEXEC != 0)
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

/// SO_ATTACH_REUSEPORT_EBPF (asm-generic/socket.h).
const SO_ATTACH_REUSEPORT_EBPF: libc::c_int = 52;

/// Attaches the loaded eBPF program `prog` (a SOCKET_FILTER, whose return
/// value is the index of the socket, or an SK_REUSEPORT program) to the
/// SO_REUSEPORT group `fd` belongs to, replacing any earlier one. The group
/// keeps its own reference: `prog` may be closed afterwards.
pub fn attach_reuseport_ebpf(fd: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    let prog_fd: libc::c_int = prog.as_raw_fd();
    // SAFETY: the option value is one int that lives across the call, and
    // its size is passed alongside it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_EBPF,
            (&prog_fd as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
            let fd = client_socket(&addr).unwrap();
            assert_ne!(fcntl(fd.as_fd(), libc::F_GETFL) & libc::O_NONBLOCK, 0, "{addr}");
            assert_ne!(fcntl(fd.as_fd(), libc::F_GETFD) & libc::FD_CLOEXEC, 0, "{addr}");
        }
    }

    #[test]
    fn listeners_are_cloexec_and_blocking_unless_asked() {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        for nonblocking in [false, true] {
            let opts = ListenOpts {
                reuseport: true,
                nonblocking,
                backlog: 8,
            };
            let fd = tcp_listener(&addr, opts).unwrap();
            assert_ne!(fcntl(fd.as_fd(), libc::F_GETFD) & libc::FD_CLOEXEC, 0);
            assert_eq!(fcntl(fd.as_fd(), libc::F_GETFL) & libc::O_NONBLOCK != 0, nonblocking);
            assert_ne!(local_addr(fd.as_fd()).unwrap().port(), 0);
        }
    }

    #[test]
    fn connect_to_closed_port_is_refused_or_in_progress() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let fd = client_socket(&addr).unwrap();
        match connect(fd.as_fd(), &addr) {
            Ok(false) => {
                // The RST comes back at once on loopback; wait for it (bounded).
                let mut err = 0;
                for _ in 0..200 {
                    err = so_error(fd.as_fd()).unwrap();
                    if err != 0 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                assert_eq!(err, libc::ECONNREFUSED);
            }
            Ok(true) => panic!("connected to a closed port"),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED)),
        }
    }

    #[test]
    fn a_passed_descriptor_arrives_cloexec_and_the_peer_closing_is_none() {
        let (a, b) = seqpacket_pair().unwrap();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let l = tcp_listener(
            &addr,
            ListenOpts {
                reuseport: false,
                nonblocking: false,
                backlog: 1,
            },
        )
        .unwrap();
        send_fd(a.as_fd(), l.as_fd()).unwrap();
        let got = recv_fd(b.as_fd()).unwrap().expect("a descriptor");
        assert_ne!(fcntl(got.as_fd(), libc::F_GETFD) & libc::FD_CLOEXEC, 0);
        assert_eq!(local_addr(got.as_fd()).unwrap(), local_addr(l.as_fd()).unwrap());
        assert_eq!(try_recv_fd(b.as_fd()).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        drop(a);
        assert!(recv_fd(b.as_fd()).unwrap().is_none());
    }
}
