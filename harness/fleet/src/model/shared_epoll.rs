//! `shared-epoll`: one non-blocking listening socket made before fork; each
//! worker makes its own level-triggered epoll set after the fork and, when
//! woken, accepts until EAGAIN. That is what libuv does, so it is Node.js with
//! SCHED_NONE, the seed's demo. Every worker's epoll set is woken by every
//! connection: the thundering herd, visible as spurious wakeups.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use super::{shared_listener, transient_accept_error, Listeners, ModelOpts};
use crate::counters::Slot;
use crate::event_loop::EventLoop;
use crate::worker::WorkerCtx;
use sys::Epoll;

pub fn prepare(addr: SocketAddr, opts: &ModelOpts) -> io::Result<Listeners> {
    let (listener, addr) = shared_listener(addr, true, opts)?;
    Ok(Listeners::Shared { listener, addr })
}

pub fn run(listener: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    epoll_loop(listener, ctx, false)
}

/// The epoll worker loop, shared with `epoll-exclusive`, which differs only in
/// the registration flag. The listener is registered with the worker's index
/// as its tag, which /proc/PID/fdinfo shows: that is how a run proves the
/// epoll sets are the workers' own.
pub(super) fn epoll_loop(listener: OwnedFd, ctx: &WorkerCtx<'_>, exclusive: bool) -> io::Error {
    let slot = ctx.slot;
    let mut events = libc::EPOLLIN as u32;
    if exclusive {
        events |= libc::EPOLLEXCLUSIVE as u32;
    }
    if ctx.concurrency() > 1 {
        return event_loop(listener, ctx, events);
    }
    // A thread fleet may share one epoll set, registered once by the fleet
    // process; otherwise each worker makes its own after the fork.
    let own;
    let epoll = match ctx.shared_epoll {
        Some(shared) => shared,
        None => {
            own = match Epoll::new() {
                Ok(e) => e,
                Err(e) => return e,
            };
            if let Err(e) = own.add(listener.as_fd(), events, ctx.index as u64) {
                return e;
            }
            &own
        }
    };
    Slot::set_fd(slot.listen_fd, listener.as_raw_fd());
    Slot::set_fd(slot.epoll_fd, epoll.raw());
    slot.ready.store(1, Ordering::Release);
    loop {
        ctx.retire_if_asked();
        match epoll.wait_one() {
            Ok(0) => continue,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return e,
        }
        Slot::bump(slot.wakeups);
        let mut got = 0u64;
        loop {
            match sys::accept(listener.as_fd()) {
                Ok(conn) => {
                    got += 1;
                    ctx.take(conn);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    Slot::bump(slot.empty_accepts);
                    break;
                }
                Err(e) if transient_accept_error(&e) => continue,
                Err(e) => return e,
            }
        }
        if got == 0 {
            Slot::bump(slot.spurious_wakeups);
        }
    }
}

/// The same loop with `--worker-concurrency K > 1`: the listener sits in the
/// worker's [`EventLoop`] (only while it has room), which serves the open
/// connections and returns when the listener is readable; the worker then
/// accepts until EAGAIN or until it is full.
fn event_loop(listener: OwnedFd, ctx: &WorkerCtx<'_>, events: u32) -> io::Error {
    let slot = ctx.slot;
    let mut lp = match EventLoop::new(ctx) {
        Ok(l) => l,
        Err(e) => return e,
    };
    if let Err(e) = lp.watch(listener.as_fd(), events, ctx.index as u64) {
        return e;
    }
    Slot::set_fd(slot.listen_fd, listener.as_raw_fd());
    Slot::set_fd(slot.epoll_fd, lp.epoll_raw());
    slot.ready.store(1, Ordering::Release);
    loop {
        match lp.next_ready(None) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => return e,
        }
        Slot::bump(slot.wakeups);
        match lp.accept_from(listener.as_fd(), usize::MAX) {
            Ok(0) => Slot::bump(slot.spurious_wakeups),
            Ok(_) => {}
            Err(e) => return e,
        }
    }
}
