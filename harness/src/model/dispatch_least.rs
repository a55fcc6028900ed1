//! `dispatch-least`: the dispatcher hands each connection to the worker with the fewest outstanding.
//!
//! (Being implemented.)

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use super::{Listeners, ModelOpts};
use crate::worker::WorkerCtx;

pub fn prepare(addr: SocketAddr, workers: usize, opts: &ModelOpts) -> io::Result<Listeners> {
    let _ = (addr, workers, opts);
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "dispatch-least is not implemented yet",
    ))
}

pub fn run(end: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    let _ = (end, ctx);
    io::Error::new(io::ErrorKind::Unsupported, "dispatch-least is not implemented yet")
}
