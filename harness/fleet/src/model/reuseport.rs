//! `reuseport`: one SO_REUSEPORT listening socket per worker, all bound to the
//! same port. The kernel picks the socket by a hash of the connection's
//! 4-tuple, so the spread is hash noise and does not react to a busy worker.
//! As nginx does, the master opens the sockets (one per worker) and each worker
//! keeps only its own after the fork; each blocks in accept(2) on it.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use super::{blocking_accept_loop, Listeners, ModelOpts};
use crate::worker::WorkerCtx;
use sys::ListenOpts;

pub fn prepare(addr: SocketAddr, workers: usize, opts: &ModelOpts) -> io::Result<Listeners> {
    let (listeners, addr) = group(addr, workers, opts)?;
    Ok(Listeners::PerWorker { listeners, addr })
}

/// `workers` listening sockets with SO_REUSEPORT on one port, each listening
/// when this returns, and the address they share. Socket i is index i of the
/// kernel's reuseport group: a TCP socket joins the group when it starts
/// listening, and these do so in order (what `reuseport-cbpf`'s program
/// relies on).
pub(super) fn group(addr: SocketAddr, workers: usize, opts: &ModelOpts) -> io::Result<(Vec<OwnedFd>, SocketAddr)> {
    // A plain socket first: it fails with EADDRINUSE if anything listens on
    // the port, including another reuseport group we must not join, and it
    // picks the port when asked for port 0.
    let probe = sys::tcp_listener(
        &addr,
        ListenOpts {
            reuseport: false,
            nonblocking: false,
            backlog: 1,
        },
    )?;
    let addr = sys::local_addr(probe.as_fd())?;
    drop(probe);
    let listeners = (0..workers)
        .map(|_| {
            sys::tcp_listener(
                &addr,
                ListenOpts {
                    reuseport: true,
                    nonblocking: false,
                    backlog: opts.backlog,
                },
            )
        })
        .collect::<io::Result<Vec<_>>>()?;
    Ok((listeners, addr))
}

/// A throw-away group of two loopback listeners that never has a
/// connection: what the steering models try their programs on before a run.
pub(super) fn probe_group() -> io::Result<Vec<OwnedFd>> {
    let any = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
    let (listeners, _) = group(any, 2, &ModelOpts::default())?;
    if listeners.is_empty() {
        return Err(io::Error::other("a reuseport group of two came back empty"));
    }
    Ok(listeners)
}

pub fn run(listener: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    blocking_accept_loop(listener, ctx)
}
