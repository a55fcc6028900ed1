//! `reuseport-ebpf-migrate`: `reuseport-ebpf-least` with its program loaded
//! for BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, so that a closing listener's
//! queued connections go to a live socket instead of being reset, whatever
//! net.ipv4.tcp_migrate_req says.
//!
//! Why it exists: under `reuseport` each worker's socket is its own queue.
//! When a worker closes it (a reload, a rolling restart) the kernel resets
//! every connection waiting there, unless tcp_migrate_req (Linux 5.14, a
//! per-namespace sysctl, off by default) moves them to another socket of the
//! group chosen by the hash. A program attached with the SELECT_OR_MIGRATE
//! type takes that decision over for its group alone: the kernel runs it
//! for each request and each queued connection of the closing socket (the
//! context's `migrating_sk` is then set) and migrates to the socket it
//! picks, or, when it picks none, to one chosen by the hash. It returns
//! SK_DROP to refuse; this one never does.
//!
//! The program is `reuseport-ebpf-least`'s, unchanged: by the time the
//! kernel migrates, the closing socket has left the REUSEPORT_SOCKARRAY, so
//! a pick of its slot fails and the kernel hashes among the live sockets;
//! any other pick is the least-loaded live worker. The kernel counts each
//! move in TcpExt.TCPMigrateReqSuccess (`kernel_migrate_req_success`).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use super::reuseport_ebpf_least::Steering;
use super::{Listeners, ModelOpts};

use crate::worker::WorkerCtx;

pub fn prepare(addr: SocketAddr, workers: usize, opts: &ModelOpts) -> io::Result<Listeners> {
    let (listeners, addr) = super::reuseport::group(addr, workers, opts)?;
    let first = listeners.first().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "reuseport-ebpf-migrate needs at least one worker",
        )
    })?;
    let steering = Steering::load(&listeners, sys::BPF_SK_REUSEPORT_SELECT_OR_MIGRATE)?;
    steering.attach(first.as_fd())?;
    Ok(Listeners::PerWorker { listeners, addr })
}

pub fn run(listener: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    super::reuseport_ebpf_least::run(listener, ctx)
}
