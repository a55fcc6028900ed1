//! sock_diag: what the kernel says of every listening TCP socket of the
//! calling thread's network namespace, through NETLINK_SOCK_DIAG and
//! inet_diag (the interface `ss -lnt` uses). For a socket in LISTEN the
//! receive queue is the accept queue: `idiag_rqueue` is its current length
//! and `idiag_wqueue` its limit (min(backlog, net.core.somaxconn)).

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::{cvt, cvt_size, owned};

/// One listening socket, as inet_diag describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// The local port.
    pub port: u16,
    /// The socket's inode (what /proc/PID/fd shows as `socket:[inode]`).
    pub inode: u64,
    /// Connections in its accept queue now.
    pub depth: u32,
    /// The accept queue's limit.
    pub limit: u32,
}

const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const TCP_LISTEN: u32 = 10;

#[repr(C)]
#[derive(Clone, Copy)]
struct NlMsgHdr {
    len: u32,
    kind: u16,
    flags: u16,
    seq: u32,
    pid: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct SockId {
    sport: u16,
    dport: u16,
    src: [u32; 4],
    dst: [u32; 4],
    ifindex: u32,
    cookie: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct ReqV2 {
    family: u8,
    protocol: u8,
    ext: u8,
    pad: u8,
    states: u32,
    id: SockId,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct DiagMsg {
    family: u8,
    state: u8,
    timer: u8,
    retrans: u8,
    id: SockId,
    expires: u32,
    rqueue: u32,
    wqueue: u32,
    uid: u32,
    inode: u32,
}

#[repr(C)]
struct Request {
    hdr: NlMsgHdr,
    req: ReqV2,
}

/// A NETLINK_SOCK_DIAG socket, made once and asked as often as needed.
pub struct Diag {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u64>,
}

impl Diag {
    /// A socket in the calling thread's network namespace (which it keeps,
    /// whichever thread uses it later).
    pub fn new() -> io::Result<Diag> {
        // SAFETY: plain syscall with constant arguments; checked.
        let fd = cvt(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                NETLINK_SOCK_DIAG,
            )
        })?;
        Ok(Diag {
            fd: owned(fd),
            seq: 0,
            // 64 KiB, aligned for the headers.
            buf: vec![0u64; 8192],
        })
    }

    /// Every TCP socket in LISTEN of both families whose local port is `port`.
    pub fn listeners(&mut self, port: u16) -> io::Result<Vec<Listener>> {
        let mut out = Vec::new();
        for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
            self.dump(family, port, &mut out)?;
        }
        Ok(out)
    }

    fn dump(&mut self, family: u8, port: u16, out: &mut Vec<Listener>) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let req = Request {
            hdr: NlMsgHdr {
                len: size_of::<Request>() as u32,
                kind: SOCK_DIAG_BY_FAMILY,
                flags: NLM_F_REQUEST | NLM_F_DUMP,
                seq: self.seq,
                pid: 0,
            },
            req: ReqV2 {
                family,
                protocol: libc::IPPROTO_TCP as u8,
                ext: 0,
                pad: 0,
                states: 1 << TCP_LISTEN,
                id: SockId {
                    sport: 0,
                    dport: 0,
                    src: [0; 4],
                    dst: [0; 4],
                    ifindex: 0,
                    cookie: [u32::MAX; 2],
                },
            },
        };
        // SAFETY: `req` is a plain repr(C) value of the given size, alive
        // across the call; the destination (the kernel) is the default.
        cvt_size(unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                (&req as *const Request).cast(),
                size_of::<Request>(),
                0,
            )
        })?;
        loop {
            let bytes = self.buf.len() * 8;
            // SAFETY: the buffer is valid for writes of `bytes` bytes.
            let n = cvt_size(unsafe { libc::recv(self.fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), bytes, 0) })?;
            // SAFETY: the buffer is 8-byte aligned and `n` of its bytes were
            // written; viewing them as bytes is always valid.
            let data = unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), n) };
            let mut at = 0;
            while at + size_of::<NlMsgHdr>() <= n {
                // SAFETY: at least a header's bytes are there; read unaligned.
                let hdr: NlMsgHdr = unsafe { std::ptr::read_unaligned(data[at..].as_ptr().cast()) };
                let len = hdr.len as usize;
                if len < size_of::<NlMsgHdr>() || at + len > n {
                    return Err(io::Error::other("sock_diag: a truncated message"));
                }
                match hdr.kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let body = at + size_of::<NlMsgHdr>();
                        let code = if body + 4 <= n {
                            i32::from_ne_bytes([data[body], data[body + 1], data[body + 2], data[body + 3]])
                        } else {
                            -libc::EIO
                        };
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    SOCK_DIAG_BY_FAMILY if len >= size_of::<NlMsgHdr>() + size_of::<DiagMsg>() => {
                        // SAFETY: the message holds a whole inet_diag_msg;
                        // read unaligned.
                        let m: DiagMsg =
                            unsafe { std::ptr::read_unaligned(data[at + size_of::<NlMsgHdr>()..].as_ptr().cast()) };
                        let sport = u16::from_be(m.id.sport);
                        if sport == port {
                            out.push(Listener {
                                port: sport,
                                inode: u64::from(m.inode),
                                depth: m.rqueue,
                                limit: m.wqueue,
                            });
                        }
                    }
                    _ => {}
                }
                // Messages are 4-byte aligned.
                at += (len + 3) & !3;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_shows_its_queue_and_its_limit() {
        // One listener with backlog 3 and two connections nobody accepts.
        let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        let l = crate::tcp_listener(
            &addr,
            crate::ListenOpts {
                reuseport: false,
                nonblocking: false,
                backlog: 3,
            },
        )
        .unwrap();
        let local = crate::local_addr(std::os::fd::AsFd::as_fd(&l)).unwrap();
        let mut d = Diag::new().unwrap();
        let before = d.listeners(local.port()).unwrap();
        assert_eq!(before.len(), 1, "{before:?}");
        assert_eq!((before[0].depth, before[0].limit), (0, 3));
        assert!(before[0].inode > 0);
        let _c: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(local).unwrap()).collect();
        // The handshakes complete in the kernel; wait (bounded) for the queue.
        let mut depth = 0;
        for _ in 0..200 {
            depth = d.listeners(local.port()).unwrap()[0].depth;
            if depth == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(depth, 2);
        // Another port: nothing.
        assert!(d.listeners(1).unwrap().is_empty());
    }
}
