//! `io-uring`: io_uring multishot accept.
//!
//! (Being implemented.)

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use super::{Listeners, ModelOpts};
use crate::worker::WorkerCtx;

pub fn prepare(addr: SocketAddr, opts: &ModelOpts) -> io::Result<Listeners> {
    let _ = (addr, opts);
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "io-uring is not implemented yet",
    ))
}

pub fn run(end: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    let _ = (end, ctx);
    io::Error::new(io::ErrorKind::Unsupported, "io-uring is not implemented yet")
}
