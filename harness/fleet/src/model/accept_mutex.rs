//! `accept-mutex`: nginx's `accept_mutex on` (its default before 1.11.3).
//!
//! Why it exists: before EPOLLEXCLUSIVE, nginx avoided the thundering herd of
//! `shared-epoll` in user space. One non-blocking listening socket is made
//! before fork and every worker has its own epoll set, but the listener sits
//! in at most one set at a time: the one of the worker holding a lock in
//! shared memory. So the kernel wakes only that worker for a new connection.
//!
//! What a worker does here, each turn:
//!
//! 1. tries the process-shared lock (`Header.mutex`: compare-and-swap 0 ->
//!    index + 1, Acquire; released with Release), as `ngx_trylock_accept_mutex`
//!    does with `ngx_shmtx_trylock`;
//! 2. holding it, adds the listener to its epoll set, waits up to
//!    [`HOLD_WAIT_MS`] for it to become readable, accepts until EAGAIN (a
//!    batch: nginx's `multi_accept on`), removes the listener from its set and
//!    releases the lock, and only then serves the batch, so that serving never
//!    keeps the others from accepting (nginx likewise runs its posted accept
//!    events, unlocks, then runs the rest);
//! 3. not getting it, sleeps [`RETRY_DELAY`] and tries again (nginx caps its
//!    epoll_wait timeout at `accept_mutex_delay`, 500 ms by default).
//!
//! The holder retries at once after a turn, so under light load the same
//! worker tends to keep the lock, as in nginx.
//!
//! Mutual exclusion is recorded, not assumed: right after taking the lock a
//! worker adds itself to `Header.pollers` and, if someone was already there,
//! bumps `Header.poll_overlaps`; it leaves before releasing. The lock works
//! when `poll_overlaps` stays 0. Each worker counts its `lock_acquisitions`,
//! `wakeups` (epoll_wait returned the listener) and `spurious_wakeups`
//! (wakeups whose accepts found nothing: none expected, since only the
//! holder's set is woken).
//!
//! Limitation: a worker killed while holding the lock leaves it held, and the
//! others wait (sleeping, so SIGTERM still stops them) until the fleet is torn
//! down; the run then fails its conservation check (a worker died, requests
//! timed out). nginx's master force-unlocks the mutex when it reaps a worker
//! that held it (`ngx_shmtx_force_unlock`); the master here could do the same
//! with a compare-and-swap from index + 1 to 0.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::time::Duration;

use super::{shared_listener, transient_accept_error, Listeners, ModelOpts};
use crate::counters::{Header, Slot};
use crate::event_loop::EventLoop;
use crate::worker::WorkerCtx;
use sys::Epoll;

/// How long a worker that did not get the lock sleeps before trying again.
///
/// nginx's `accept_mutex_delay` is 500 ms, long against one turn of its event
/// loop, which serves many connections at once. Here a worker serves one
/// connection at a time in some tens of µs and a whole run may last a second,
/// so 500 ms would leave the waiters idle for the run. 500 µs is nginx's
/// figure scaled by 1/1000: about ten connections' service, short enough that
/// a free lock is picked up quickly while the holder serves its batch, long
/// enough that waiters cost a few thousand wakeups per second, not a busy loop.
pub const RETRY_DELAY: Duration = Duration::from_micros(500);

/// How long the holder waits in epoll_wait (whose unit is ms) for a
/// connection before it gives the lock up and tries again.
pub const HOLD_WAIT_MS: i32 = 1;

/// Most connections one batch takes before the lock is released (a guard
/// against holding too many descriptors; the default closed loop never
/// comes near it). What is left stays queued for the next holder.
pub const MAX_BATCH: usize = 256;

pub fn prepare(addr: SocketAddr, opts: &ModelOpts) -> io::Result<Listeners> {
    let (listener, addr) = shared_listener(addr, true, opts)?;
    Ok(Listeners::Shared { listener, addr })
}

/// The process-shared accept lock, held; released on drop (also when the
/// holder unwinds).
struct Lock<'a> {
    header: Header<'a>,
    word: u64,
}

impl<'a> Lock<'a> {
    /// Takes the lock for worker `index` if it is free.
    fn try_take(header: Header<'a>, index: usize) -> Option<Lock<'a>> {
        let word = index as u64 + 1;
        header
            .mutex
            .compare_exchange(0, word, Acquire, Relaxed)
            .ok()
            .map(|_| Lock { header, word })
    }
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        // Only ever ours to release; a failed exchange would mean someone
        // forced it open, and then there is nothing to release.
        let _ = self.header.mutex.compare_exchange(self.word, 0, Release, Relaxed);
    }
}

/// One worker counted in `Header.pollers` while it may poll the listener;
/// entering when another is already there is an overlap.
struct Polling<'a>(Header<'a>);

impl<'a> Polling<'a> {
    fn enter(header: Header<'a>) -> Polling<'a> {
        if header.pollers.fetch_add(1, AcqRel) != 0 {
            header.poll_overlaps.fetch_add(1, Relaxed);
        }
        Polling(header)
    }
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.0.pollers.fetch_sub(1, AcqRel);
    }
}

/// One worker's side of the mutex: its epoll set, the shared listener, its
/// counters and the shared header.
pub(crate) struct Acceptor<'a> {
    listener: BorrowedFd<'a>,
    epoll: Epoll,
    index: usize,
    slot: Slot<'a>,
    header: Header<'a>,
}

impl<'a> Acceptor<'a> {
    pub(crate) fn new(listener: BorrowedFd<'a>, index: usize, slot: Slot<'a>, header: Header<'a>) -> io::Result<Self> {
        Ok(Acceptor {
            listener,
            epoll: Epoll::new()?,
            index,
            slot,
            header,
        })
    }

    /// One turn: `Ok(false)` if the lock was busy; `Ok(true)` if this worker
    /// held it, with what it accepted appended to `batch`. The lock is free
    /// again when this returns, whatever happened.
    pub(crate) fn turn(&self, batch: &mut Vec<OwnedFd>) -> io::Result<bool> {
        let Some(_lock) = Lock::try_take(self.header, self.index) else {
            return Ok(false);
        };
        Slot::bump(self.slot.lock_acquisitions);
        // `hold` leaves `pollers` before `_lock` is released, on return.
        self.hold(batch)?;
        Ok(true)
    }

    /// What the holder does: count itself as the poller, register the
    /// listener, wait, accept a batch, deregister.
    fn hold(&self, batch: &mut Vec<OwnedFd>) -> io::Result<()> {
        let _polling = Polling::enter(self.header);
        self.epoll.add(self.listener, libc::EPOLLIN as u32, self.index as u64)?;
        let got = self.wait_and_accept(batch);
        let removed = self.epoll.delete(self.listener);
        got.and(removed)
    }

    fn wait_and_accept(&self, batch: &mut Vec<OwnedFd>) -> io::Result<()> {
        match self.epoll.wait_one_for(HOLD_WAIT_MS) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        Slot::bump(self.slot.wakeups);
        let before = batch.len();
        while batch.len() - before < MAX_BATCH {
            match sys::accept(self.listener) {
                Ok(conn) => batch.push(conn),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    Slot::bump(self.slot.empty_accepts);
                    break;
                }
                Err(e) if transient_accept_error(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        if batch.len() == before {
            Slot::bump(self.slot.spurious_wakeups);
        }
        Ok(())
    }
}

pub fn run(listener: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    if ctx.concurrency() > 1 {
        return event_loop(listener, ctx);
    }
    let slot = ctx.slot;
    let acceptor = match Acceptor::new(listener.as_fd(), ctx.index, slot, ctx.header) {
        Ok(a) => a,
        Err(e) => return e,
    };
    Slot::set_fd(slot.listen_fd, listener.as_raw_fd());
    Slot::set_fd(slot.epoll_fd, acceptor.epoll.raw());
    slot.ready.store(1, Release);
    let mut batch = Vec::new();
    loop {
        // Between turns: the lock is free and the batch served.
        ctx.retire_if_asked();
        let turn = acceptor.turn(&mut batch);
        // Served with the lock released, even when the turn ended in an error.
        for conn in batch.drain(..) {
            ctx.take(conn);
        }
        match turn {
            Ok(true) => {}
            Ok(false) => std::thread::sleep(RETRY_DELAY),
            Err(e) => return e,
        }
    }
}

/// The worker with `--worker-concurrency K > 1`, as nginx runs it: the
/// worker's [`EventLoop`] serves its open connections all along. With room
/// for another connection it tries the lock; holding it, it adds the listener
/// to its loop, waits up to [`HOLD_WAIT_MS`] (serving meanwhile), accepts a
/// batch (until EAGAIN, [`MAX_BATCH`] or full), takes the listener out and
/// releases the lock, and only then hands the batch to the loop. Without the
/// lock (or without room) it serves for [`RETRY_DELAY`] instead of sleeping.
fn event_loop(listener: OwnedFd, ctx: &WorkerCtx<'_>) -> io::Error {
    let slot = ctx.slot;
    let mut lp = match EventLoop::new(ctx) {
        Ok(l) => l,
        Err(e) => return e,
    };
    Slot::set_fd(slot.listen_fd, listener.as_raw_fd());
    Slot::set_fd(slot.epoll_fd, lp.epoll_raw());
    slot.ready.store(1, Release);
    let mut batch = Vec::new();
    loop {
        let lock = if lp.has_room() {
            Lock::try_take(ctx.header, ctx.index)
        } else {
            None
        };
        let Some(lock) = lock else {
            if let Err(e) = lp.next_ready(Some(RETRY_DELAY)) {
                return e;
            }
            continue;
        };
        Slot::bump(slot.lock_acquisitions);
        let polling = Polling::enter(ctx.header);
        let room = lp.limit_left();
        let turn = lp
            .watch(listener.as_fd(), libc::EPOLLIN as u32, ctx.index as u64)
            .and_then(|()| lp.next_ready(Some(Duration::from_millis(HOLD_WAIT_MS as u64))))
            .and_then(|ready| {
                if ready {
                    Slot::bump(slot.wakeups);
                    accept_batch(listener.as_fd(), slot, room.min(MAX_BATCH), &mut batch)
                } else {
                    Ok(())
                }
            });
        let removed = lp.unwatch();
        drop(polling);
        drop(lock);
        for conn in batch.drain(..) {
            if let Err(e) = lp.take(conn) {
                return e;
            }
        }
        if let Err(e) = turn.and(removed) {
            return e;
        }
    }
}

/// Accepts up to `max` connections from the non-blocking `listener` into
/// `batch`, counting an empty accept and a spurious wakeup as `wait_and_accept` does.
fn accept_batch(listener: BorrowedFd<'_>, slot: Slot<'_>, max: usize, batch: &mut Vec<OwnedFd>) -> io::Result<()> {
    let before = batch.len();
    while batch.len() - before < max {
        match sys::accept(listener) {
            Ok(conn) => batch.push(conn),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Slot::bump(slot.empty_accepts);
                break;
            }
            Err(e) if transient_accept_error(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    if batch.len() == before {
        Slot::bump(slot.spurious_wakeups);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    #[test]
    fn the_lock_excludes_and_is_released_on_drop() {
        let c = Counters::new(2).unwrap();
        let h = c.header();
        let a = Lock::try_take(h, 0).expect("free");
        assert_eq!(h.mutex.load(Relaxed), 1);
        assert!(Lock::try_take(h, 1).is_none());
        drop(a);
        assert_eq!(h.mutex.load(Relaxed), 0);
        let b = Lock::try_take(h, 1).expect("free again");
        assert_eq!(h.mutex.load(Relaxed), 2);
        drop(b);
        let p = Polling::enter(h);
        let q = Polling::enter(h);
        assert_eq!((h.pollers.load(Relaxed), h.poll_overlaps.load(Relaxed)), (2, 1));
        drop((p, q));
        assert_eq!(h.pollers.load(Relaxed), 0);
    }

    /// `threads` acceptors on one listener while `clients` connections
    /// arrive; `locked` says whether they take the lock (`turn`) or poll
    /// regardless (`hold`). Returns the counters once every connection was
    /// accepted.
    fn contend(threads: usize, clients: usize, locked: bool) -> Counters {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let counters = Counters::new(threads).unwrap();
        let header = counters.header();
        let slots: Vec<Slot<'_>> = (0..threads).map(|i| counters.slot(i)).collect();
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            for (i, &slot) in slots.iter().enumerate() {
                let (listener, stop) = (&listener, &stop);
                s.spawn(move || {
                    let a = Acceptor::new(listener.as_fd(), i, slot, header).unwrap();
                    let mut batch = Vec::new();
                    while !stop.load(Relaxed) {
                        let held = if locked {
                            a.turn(&mut batch).unwrap()
                        } else {
                            a.hold(&mut batch).map(|()| true).unwrap()
                        };
                        if !batch.is_empty() {
                            for _ in batch.drain(..) {
                                Slot::bump(slot.accepted);
                            }
                            // "Serve" a little with the lock free, so the
                            // others get their chance at it.
                            std::thread::sleep(Duration::from_micros(100));
                        } else if !held {
                            // No delay: contend for the lock as hard as possible.
                            std::thread::yield_now();
                        }
                    }
                });
            }
            for _ in 0..clients {
                drop(TcpStream::connect(addr).unwrap());
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            let accepted = || slots.iter().map(|s| s.accepted.load(Relaxed)).sum::<u64>();
            while accepted() < clients as u64 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            stop.store(true, Relaxed);
            assert_eq!(accepted(), clients as u64);
        });
        counters
    }

    #[test]
    fn only_the_lock_holder_polls_while_threads_contend() {
        let c = contend(4, 1000, true);
        let h = c.header();
        let snaps = c.snapshot();
        let takes: Vec<u64> = snaps.iter().map(|s| s.lock_acquisitions).collect();
        eprintln!(
            "lock acquisitions {takes:?}, accepted {:?}, wakeups {:?}, overlaps {}",
            snaps.iter().map(|s| s.accepted).collect::<Vec<_>>(),
            snaps.iter().map(|s| s.wakeups).collect::<Vec<_>>(),
            h.poll_overlaps.load(Relaxed)
        );
        assert_eq!(h.poll_overlaps.load(Relaxed), 0, "two threads polled at once");
        assert_eq!((h.pollers.load(Relaxed), h.mutex.load(Relaxed)), (0, 0));
        // needs a quiet machine: the lock changes hands only when another
        // thread runs while it is free.
        assert!(
            takes.iter().filter(|&&t| t > 0).count() >= 2,
            "the lock never changed hands: {takes:?}"
        );
        // Only the holder's set holds the listener, so no wakeup is wasted.
        assert_eq!(snaps.iter().map(|s| s.spurious_wakeups).sum::<u64>(), 0);
        // Every connection came through a wakeup of a lock holder.
        assert!(snaps.iter().all(|s| s.wakeups <= s.lock_acquisitions));
    }

    #[test]
    fn the_overlap_counter_sees_pollers_without_the_lock() {
        // needs a quiet machine: two threads must be polling at the same
        // moment at least once in 200 connections.
        let c = contend(4, 200, false);
        assert!(
            c.header().poll_overlaps.load(Relaxed) > 0,
            "polling without the lock went unnoticed"
        );
        assert_eq!(c.header().pollers.load(Relaxed), 0);
    }
}
