//! `io-uring`: one listening socket shared by every worker, each of which
//! accepts with a multishot accept on an io_uring of its own.
//!
//! Why it exists: io_uring is how new servers (and runtimes such as
//! tokio-uring, glommio, monoio) accept, and a multishot accept (Linux 5.19)
//! is one request that keeps accepting, so its spread over workers is the
//! kernel's wakeup policy for io_uring, not anything the server does.
//!
//! What the kernel does: the accept first tries at once; when the queue is
//! empty it arms an internal poll on the listener's wait queue and stays
//! there, as an *exclusive* waiter (IORING_OP_ACCEPT polls with
//! EPOLLEXCLUSIVE), queued behind the others in the order the workers armed.
//! A new connection wakes the first exclusive waiter only, and io_uring's
//! wake callback claims it even while that worker is busy (its accept then
//! runs as task work of the worker, interrupting whatever it blocks in, and
//! takes every connection queued by then, a completion each). A multishot
//! request is never requeued, so the same worker stays first: expect one
//! worker to take (nearly) everything, serial client or not, until its
//! request ends (a completion without IORING_CQE_F_MORE, e.g. when its
//! completion queue overflowed) and it re-arms behind the others.
//!
//! Each worker sets its ring up after the fork (a ring must not be shared
//! across fork). `prepare`, in the master, first makes and drops a ring and
//! a multishot accept on a throw-away loopback listener, so that a kernel or
//! sandbox that refuses io_uring (kernel.io_uring_disabled, seccomp: EPERM or
//! ENOSYS) or the multishot flag (before 5.19: EINVAL) stops the run before
//! anything starts, with one line saying why.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use super::{shared_listener, transient_accept_error, Listeners, ModelOpts};
use crate::counters::Slot;
use crate::worker::WorkerCtx;
use sys::{AcceptRing, Accepted};

/// Completion queue size of each worker's ring: room for every connection a
/// busy worker may be handed before it next looks (one completion each),
/// well above the load generator's usual concurrency and the listen backlog.
const CQ_ENTRIES: u32 = 4096;

pub fn prepare(addr: SocketAddr, opts: &ModelOpts) -> io::Result<Listeners> {
    check_available()?;
    // Non-blocking, so no accept on it can ever put a worker to sleep outside
    // its ring; io_uring's own accept waits by polling either way.
    let (listener, addr) = shared_listener(addr, true, opts)?;
    Ok(Listeners::Shared { listener, addr })
}

/// Whether this kernel and sandbox let us make a ring and a multishot accept;
/// `Unsupported` with a one-line reason if not.
pub fn check_available() -> io::Result<()> {
    let mut ring = AcceptRing::new(CQ_ENTRIES).map_err(unavailable)?;
    let probe = sys::tcp_listener(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        sys::ListenOpts {
            reuseport: false,
            nonblocking: true,
            backlog: 1,
        },
    )?;
    ring.arm(probe.as_fd()).map_err(unavailable)?;
    refused_at_once(&mut ring)?;
    Ok(())
    // Dropping the ring cancels the accept; the probe socket never had a
    // connection to lose.
}

fn unavailable(e: io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("io_uring is not available here: {e}"),
    )
}

/// Right after `arm`: a failed completion already in the queue is the kernel
/// refusing the request. Connections it took at once (a replacement armed
/// while the load runs) are returned, to be served.
fn refused_at_once(ring: &mut AcceptRing) -> io::Result<Vec<OwnedFd>> {
    let mut early = Vec::new();
    ring.drain(&mut early);
    let mut taken = Vec::new();
    for a in early {
        match a {
            Accepted { conn: Ok(conn), .. } => taken.push(conn),
            Accepted { conn: Err(e), .. } => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("io_uring multishot accept is not available here (it needs Linux 5.19): {e}"),
                ))
            }
        }
    }
    Ok(taken)
}

pub fn run(listener: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    let slot = ctx.slot;
    let mut ring = match AcceptRing::new(CQ_ENTRIES) {
        Ok(r) => r,
        Err(e) => return unavailable(e),
    };
    let early = match ring.arm(listener.as_fd()).and_then(|()| refused_at_once(&mut ring)) {
        Ok(early) => early,
        Err(e) => return e,
    };
    Slot::set_fd(slot.listen_fd, listener.as_raw_fd());
    slot.ready.store(1, Ordering::Release);
    for conn in early {
        Slot::bump(slot.wakeups);
        ctx.take(conn);
    }
    let mut batch = Vec::new();
    loop {
        if let Err(e) = ring.wait() {
            return e;
        }
        if slot.retire.load(Ordering::Acquire) != 0 {
            retire(&mut ring, ctx);
        }
        // One wakeup per batch of completions the worker finds.
        Slot::bump(slot.wakeups);
        ring.drain(&mut batch);
        // Re-arm before serving, so the kernel can go on accepting meanwhile.
        if batch.iter().any(|c| !c.more) {
            if let Err(e) = ring.arm(listener.as_fd()) {
                return e;
            }
        }
        let mut got = 0u64;
        for c in batch.drain(..) {
            match c.conn {
                Ok(conn) => {
                    got += 1;
                    ctx.take(conn);
                }
                // A connection reset while it waited in the queue: the same
                // errors the blocking models retry on.
                Err(e) if transient_accept_error(&e) => {}
                Err(e) => return io::Error::new(e.kind(), format!("io_uring multishot accept: {e}")),
            }
        }
        if got == 0 {
            Slot::bump(slot.spurious_wakeups);
        }
    }
}

/// Retires the worker gracefully (a rolling restart): ends its multishot
/// accept, serves every connection the ring took before the end, and exits.
/// A worker that just exited instead would leave the connections its ring
/// accepted meanwhile neither answered nor reset (they time out).
fn retire(ring: &mut AcceptRing, ctx: &WorkerCtx<'_>) -> ! {
    let mut batch = Vec::new();
    let ended = ring.cancel().is_err();
    let mut ended = ended;
    while !ended {
        if ring.wait().is_err() {
            break;
        }
        ring.drain(&mut batch);
        for c in batch.drain(..) {
            ended |= !c.more;
            if let Ok(conn) = c.conn {
                ctx.take(conn);
            }
        }
    }
    sys::exit_now(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// Skips (true) where io_uring is refused, saying why; on CI (`CI`
    /// set, a machine kind that has io_uring) that fails the test instead.
    fn unavailable_here() -> bool {
        match check_available() {
            Ok(()) => false,
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI is set but io_uring is refused: {e}"
                );
                eprintln!("skipped: {e}");
                true
            }
        }
    }

    #[test]
    fn a_multishot_accept_gives_a_completion_per_connection() {
        if unavailable_here() {
            return;
        }
        let Listeners::Shared { listener, addr } =
            prepare(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), &ModelOpts::default()).unwrap()
        else {
            panic!("io-uring shares one listener");
        };
        // The shared listener itself is non-blocking.
        assert!(sys::is_nonblocking(listener.as_fd()).unwrap());
        let mut ring = AcceptRing::new(64).unwrap();
        ring.arm(listener.as_fd()).unwrap();
        assert!(refused_at_once(&mut ring).unwrap().is_empty());
        let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut got = Vec::new();
        while got.len() < 3 {
            ring.wait().unwrap();
            ring.drain(&mut got);
        }
        assert_eq!(got.len(), 3);
        for c in got {
            assert!(c.more, "the multishot accept ended");
            let conn = c.conn.unwrap();
            // Blocking (the worker serves it with plain read/write) and CLOEXEC.
            assert!(!sys::is_nonblocking(conn.as_fd()).unwrap());
            assert!(sys::is_cloexec(conn.as_fd()).unwrap());
            TcpStream::from(conn).write_all(b"x").unwrap();
        }
        // Each is a real connection: every client reads what its server end wrote.
        for mut client in clients {
            let mut buf = Vec::new();
            client.read_to_end(&mut buf).unwrap();
            assert_eq!(buf, b"x");
        }
    }

    #[test]
    fn refusal_reads_as_one_line() {
        let e = unavailable(io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        assert_eq!(
            e.to_string(),
            "io_uring is not available here: Operation not permitted (os error 1)"
        );
    }
}
