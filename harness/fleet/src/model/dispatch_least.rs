//! `dispatch-least`: as `dispatch-rr`, a dispatcher process accepts every
//! connection and passes its descriptor to a worker over a Unix
//! SOCK_SEQPACKET socketpair (SCM_RIGHTS), but each one goes to the worker
//! with the fewest outstanding connections (handed to it and not yet closed:
//! `dispatched - finished` in the shared-memory counters), ties broken round
//! robin from the last pick. This is how HAProxy and actix balance their
//! acceptors: a worker that is slow (or stalled) holds its connections longer,
//! so it is offered fewer, where round robin keeps queueing them behind it.
//!
//! The set-up, the worker loop and the dispatcher are `dispatch-rr`'s; only
//! the dispatcher's [`Policy`](super::dispatch_rr::Policy) differs (the fleet
//! picks it with `Policy::of`).

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use super::{dispatch_rr, Listeners, ModelOpts};
use crate::worker::WorkerCtx;

pub fn prepare(addr: SocketAddr, workers: usize, opts: &ModelOpts) -> io::Result<Listeners> {
    dispatch_rr::prepare(addr, workers, opts)
}

/// A worker: receive a descriptor, serve it, repeat (`dispatch-rr`'s loop;
/// `WorkerCtx::take` bumps `finished` when the connection is closed, which is
/// what the dispatcher balances on).
pub fn run(channel: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    dispatch_rr::run(channel, ctx)
}
