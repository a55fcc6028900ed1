//! `dispatch-rr`: a dispatcher process accepts every connection and passes
//! its descriptor to the workers in turn over a Unix SOCK_SEQPACKET socketpair
//! with SCM_RIGHTS, as Node's cluster module does by default on Linux
//! (SCHED_RR). The spread is exact by construction; the cost is the extra hop.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use super::{shared_listener, transient_accept_error, Listeners, ModelOpts};
use crate::counters::{Counters, Slot};
use crate::sys;
use crate::worker::WorkerCtx;

pub fn prepare(addr: SocketAddr, workers: usize, opts: &ModelOpts) -> io::Result<Listeners> {
    let (listener, addr) = shared_listener(addr, false, opts)?;
    let channels = (0..workers)
        .map(|_| sys::seqpacket_pair())
        .collect::<io::Result<Vec<_>>>()?;
    Ok(Listeners::Dispatch {
        listener,
        channels,
        addr,
    })
}

/// The dispatcher: accept, hand to the next worker, close our copy.
/// `counters` has one slot per worker plus the dispatcher's own at the end.
pub fn dispatcher(listener: OwnedFd, channels: Vec<OwnedFd>, counters: &Counters) -> io::Error {
    let me = counters.slot(channels.len());
    Slot::set_fd(&me.listen_fd, listener.as_raw_fd());
    me.ready.store(1, Ordering::Release);
    let mut next = 0;
    loop {
        match sys::accept(listener.as_fd()) {
            Ok(conn) => {
                Slot::bump(&me.wakeups);
                Slot::bump(&me.accepted);
                let slot = counters.slot(next);
                match sys::send_fd(channels[next].as_fd(), conn.as_fd()) {
                    Ok(()) => Slot::bump(&slot.dispatched),
                    Err(_) => Slot::bump(&slot.dispatch_errors),
                }
                next = (next + 1) % channels.len();
            }
            Err(e) if transient_accept_error(&e) => {}
            Err(e) => return e,
        }
    }
}

/// A worker: receive a descriptor, serve it, repeat.
pub fn run(channel: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    let slot = ctx.slot;
    Slot::set_fd(&slot.listen_fd, channel.as_raw_fd());
    slot.ready.store(1, Ordering::Release);
    loop {
        match sys::recv_fd(channel.as_fd()) {
            Ok(Some(conn)) => {
                Slot::bump(&slot.wakeups);
                ctx.take(conn);
            }
            Ok(None) => return io::Error::new(io::ErrorKind::UnexpectedEof, "the dispatcher closed the channel"),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return e,
        }
    }
}
