//! `dispatch-rr` (and the dispatcher `dispatch-least` shares): a dispatcher
//! process accepts every connection and passes its descriptor to a worker
//! over a Unix SOCK_SEQPACKET socketpair with SCM_RIGHTS. The kernel only
//! ever wakes the dispatcher; which worker gets a connection is decided in
//! user space by a [`Policy`]:
//!
//! - `RoundRobin`: the workers in turn, as Node's cluster module does by
//!   default on Linux (SCHED_RR). The spread is exact by construction, however
//!   slow a worker is; the cost is the extra hop.
//! - `LeastOutstanding` (`dispatch-least`): the worker with the fewest
//!   connections handed to it but not yet closed, read from the shared-memory
//!   counters (the dispatcher writes `dispatched`, the worker `finished`), as
//!   HAProxy's and actix's acceptors balance on load. Ties go round robin from
//!   the last pick, so idle workers still rotate.
//!
//! A worker whose channel fails (it died: `--kill-worker`) is dropped from
//! the rotation and the connection goes to the next worker. Replacements
//! (`--respawn`, `--rolling-restart`) have channels made up front and join
//! the rotation when they are ready; a retiring worker leaves it: the
//! dispatcher acknowledges (`retire` 1 -> 2) before its next hand-off, and
//! the worker serves what its channel still holds before it exits.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use super::{shared_listener, transient_accept_error, Listeners, Model, ModelOpts};
use crate::counters::{Counters, Slot};
use crate::event_loop::EventLoop;

use crate::worker::WorkerCtx;

/// How the dispatcher picks the worker for each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Each worker in turn.
    RoundRobin,
    /// The worker with the fewest outstanding connections (dispatched -
    /// finished); ties in round-robin order from the last pick.
    LeastOutstanding,
}

impl Policy {
    /// The dispatcher's policy for `model`; `None` for models without one.
    pub fn of(model: Model) -> Option<Policy> {
        match model {
            Model::DispatchRr => Some(Policy::RoundRobin),
            Model::DispatchLeast => Some(Policy::LeastOutstanding),
            _ => None,
        }
    }
}

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

/// The worker after `last` (in round-robin order, wrapping) with the smallest
/// `load`: scanning starts at `last + 1` and keeps the first minimum, so equal
/// loads rotate. A load of 0 ends the scan (nothing is smaller). With a
/// constant load this is plain round robin.
pub(crate) fn pick(n: usize, last: usize, load: impl Fn(usize) -> u64) -> usize {
    debug_assert!(n > 0);
    let mut best = (last + 1) % n;
    let mut best_load = load(best);
    for step in 2..=n {
        if best_load == 0 {
            break;
        }
        let i = (last + step) % n;
        let l = load(i);
        if l < best_load {
            best = i;
            best_load = l;
        }
    }
    best
}

/// Connections handed to worker `slot` and not yet closed by it. Both
/// counters only grow; the dispatcher is the only writer of `dispatched`, and
/// a `finished` read slightly stale only overstates the load for a moment.
fn outstanding(slot: Slot<'_>) -> u64 {
    slot.dispatched
        .load(Ordering::Relaxed)
        .saturating_sub(slot.finished.load(Ordering::Relaxed))
}

/// The dispatcher: accept, pick a worker by `policy`, hand the descriptor
/// over, close our copy. `counters` has one slot per worker plus the
/// dispatcher's own at the end.
pub fn dispatcher(listener: OwnedFd, channels: Vec<OwnedFd>, counters: &Counters, policy: Policy) -> io::Error {
    let n = channels.len();
    if n == 0 {
        return io::Error::other("a dispatcher needs at least one worker");
    }
    let me = counters.slot(n);
    Slot::set_fd(me.listen_fd, listener.as_raw_fd());
    me.ready.store(1, Ordering::Release);
    // So that the first pick is worker 0.
    let mut last = n - 1;
    // Workers whose channel failed (the worker died): skipped from then on,
    // as Node's cluster master drops a worker on its 'exit'.
    let mut dead = vec![false; n];
    let mut live = vec![false; n];
    loop {
        match sys::accept(listener.as_fd()) {
            Ok(conn) => {
                Slot::bump(me.wakeups);
                Slot::bump(me.accepted);
                // Who may get it: started (a replacement is not until it is
                // activated), not retiring, channel intact. Retirements are
                // acknowledged here, before any further hand-off.
                for (i, l) in live.iter_mut().enumerate() {
                    let slot = counters.slot(i);
                    // The master sets 1 once; only this process sets 2.
                    let retire = slot.retire.load(Ordering::Acquire);
                    if retire == 1 {
                        slot.retire.store(2, Ordering::Release);
                    }
                    *l = !dead[i] && retire == 0 && slot.ready.load(Ordering::Acquire) == 1;
                }
                // The same connection goes to the next pick if a hand-off
                // fails; it is dropped only when no worker is left.
                while live.iter().any(|l| *l) {
                    let next = match policy {
                        Policy::RoundRobin => pick(n, last, |i| u64::from(!live[i])),
                        Policy::LeastOutstanding => pick(n, last, |i| {
                            if live[i] {
                                outstanding(counters.slot(i))
                            } else {
                                u64::MAX
                            }
                        }),
                    };
                    let slot = counters.slot(next);
                    last = next;
                    match sys::send_fd(channels[next].as_fd(), conn.as_fd()) {
                        Ok(()) => {
                            Slot::bump(slot.dispatched);
                            break;
                        }
                        Err(_) => {
                            Slot::bump(slot.dispatch_errors);
                            dead[next] = true;
                            live[next] = false;
                        }
                    }
                }
            }
            Err(e) if transient_accept_error(&e) => {}
            Err(e) => return e,
        }
    }
}

/// A worker: receive a descriptor, serve it, repeat.
pub fn run(channel: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    if ctx.concurrency() > 1 {
        return event_loop(channel, ctx);
    }
    let slot = ctx.slot;
    Slot::set_fd(slot.listen_fd, channel.as_raw_fd());
    slot.ready.store(1, Ordering::Release);
    loop {
        if slot.retire.load(Ordering::Acquire) != 0 {
            retire(&channel, ctx);
        }
        match sys::recv_fd(channel.as_fd()) {
            Ok(Some(conn)) => {
                Slot::bump(slot.wakeups);
                ctx.take(conn);
            }
            Ok(None) => return io::Error::new(io::ErrorKind::UnexpectedEof, "the dispatcher closed the channel"),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return e,
        }
    }
}

/// Retires a worker gracefully: once the dispatcher has acknowledged (it
/// hands this worker nothing more), serves what the channel still holds and
/// exits. If no connection comes to make the dispatcher acknowledge within
/// [`RETIRE_WAIT`], nothing is being handed over either: drain and exit.
fn retire(channel: &OwnedFd, ctx: &WorkerCtx<'_>) -> ! {
    let deadline = std::time::Instant::now() + RETIRE_WAIT;
    loop {
        let acked = ctx.slot.retire.load(Ordering::Acquire) == 2;
        loop {
            match sys::try_recv_fd(channel.as_fd()) {
                Ok(Some(conn)) => {
                    Slot::bump(ctx.slot.wakeups);
                    ctx.take(conn);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => break,
            }
        }
        if acked || std::time::Instant::now() >= deadline {
            sys::exit_now(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// How long a retiring worker waits for the dispatcher's acknowledgement.
const RETIRE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The worker with `--worker-concurrency K > 1`: the channel sits in the
/// worker's [`EventLoop`] while it has room; each time it is readable one
/// descriptor is received and joins the loop. A full worker leaves its
/// channel unread, so what the dispatcher sends meanwhile waits there (and
/// counts as outstanding for `dispatch-least`).
fn event_loop(channel: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    let slot = ctx.slot;
    let mut lp = match EventLoop::new(ctx) {
        Ok(l) => l,
        Err(e) => return e,
    };
    if let Err(e) = lp.watch(channel.as_fd(), libc::EPOLLIN as u32, ctx.index as u64) {
        return e;
    }
    Slot::set_fd(slot.listen_fd, channel.as_raw_fd());
    Slot::set_fd(slot.epoll_fd, lp.epoll_raw());
    slot.ready.store(1, Ordering::Release);
    loop {
        match lp.next_ready(None) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => return e,
        }
        match sys::recv_fd(channel.as_fd()) {
            Ok(Some(conn)) => {
                Slot::bump(slot.wakeups);
                if let Err(e) = lp.take(conn) {
                    return e;
                }
            }
            Ok(None) => return io::Error::new(io::ErrorKind::UnexpectedEof, "the dispatcher closed the channel"),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_load_is_round_robin() {
        let mut last = 3;
        let picks: Vec<usize> = (0..9)
            .map(|_| {
                last = pick(4, last, |_| 5);
                last
            })
            .collect();
        assert_eq!(picks, [0, 1, 2, 3, 0, 1, 2, 3, 0]);
        assert_eq!(pick(1, 0, |_| 7), 0);
    }

    #[test]
    fn picks_the_least_loaded_and_breaks_ties_after_the_last_pick() {
        let loads = [3u64, 1, 4, 1];
        // Workers 1 and 3 tie at 1: the first after `last` wins.
        assert_eq!(pick(4, 0, |i| loads[i]), 1);
        assert_eq!(pick(4, 1, |i| loads[i]), 3);
        assert_eq!(pick(4, 3, |i| loads[i]), 1);
        assert_eq!(pick(4, 2, |i| [2, 2, 0, 2][i]), 2);
    }

    #[test]
    fn a_slow_worker_gets_fewer_as_its_backlog_grows() {
        // Simulate ticks: a connection arrives every other tick; each worker
        // finishes one every `period` ticks when it has one; worker 0 is 10x
        // slower. Least-outstanding sends it little.
        let n = 4;
        let period = [40usize, 4, 4, 4];
        let mut handed = [0u64; 4];
        let mut finished = [0u64; 4];
        let mut last = n - 1;
        for t in 1..=8000usize {
            for w in 0..n {
                if t % period[w] == 0 && finished[w] < handed[w] {
                    finished[w] += 1;
                }
            }
            if t % 2 == 0 {
                last = pick(n, last, |i| handed[i] - finished[i]);
                handed[last] += 1;
            }
        }
        let share = handed[0] as f64 / handed.iter().sum::<u64>() as f64;
        assert!(share < 0.125, "slow worker's share {share}: {handed:?}");
    }

    #[test]
    fn outstanding_is_dispatched_minus_finished() {
        let c = Counters::new(1).unwrap();
        let s = c.slot(0);
        for _ in 0..5 {
            Slot::bump(s.dispatched);
        }
        Slot::bump(s.finished);
        assert_eq!(outstanding(s), 4);
        assert_eq!(Policy::of(Model::DispatchLeast), Some(Policy::LeastOutstanding));
        assert_eq!(Policy::of(Model::DispatchRr), Some(Policy::RoundRobin));
        assert_eq!(Policy::of(Model::Reuseport), None);
    }
}
