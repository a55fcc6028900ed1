//! `epoll-exclusive`: as `shared-epoll`, but the listener is registered with
//! EPOLLEXCLUSIVE (Linux 4.5), so a connection wakes one waiting epoll set
//! instead of all. nginx does this since 1.11.3 with `accept_mutex off`. Under
//! light load the same worker keeps winning, since it is back in epoll_wait
//! first: the signature is a very uneven spread with few wasted wakeups.

use std::io;
use std::os::fd::OwnedFd;

use super::shared_epoll::epoll_loop;
use crate::worker::WorkerCtx;

pub fn run(listener: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    epoll_loop(listener, ctx, true)
}
