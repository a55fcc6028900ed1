//! `shared-blocking`: one listening socket made before fork; every worker
//! blocks in accept(2) on it. The kernel queues the sleepers exclusively and
//! wakes one per connection in FIFO order, so a serial client sees strict
//! rotation. This is the classic prefork server.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use super::{blocking_accept_loop, shared_listener, Listeners, ModelOpts};
use crate::worker::WorkerCtx;

pub fn prepare(addr: SocketAddr, opts: &ModelOpts) -> io::Result<Listeners> {
    let (listener, addr) = shared_listener(addr, false, opts)?;
    Ok(Listeners::Shared { listener, addr })
}

pub fn run(listener: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    blocking_accept_loop(listener, ctx)
}
