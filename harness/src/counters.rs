//! Per-worker counters in shared memory.
//!
//! Each worker writes only its own slot; the master reads every slot while the
//! run goes on and after it ends. Slots are cache-line sized so that workers on
//! different cores do not slow each other down by writing neighbouring counters.
//! Counters are monotonic `AtomicU64`s written with single-writer relaxed
//! stores: a worker bumps `accepted` before it writes the response, so by the
//! time the load generator has read a response, the count that owns it is
//! visible to the master.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::sys::SharedMem;

/// One worker's counters. All-zero bytes are the valid initial state.
#[repr(C, align(128))]
#[derive(Default)]
pub struct Slot {
    /// Set to 1 once the worker is ready to take connections.
    pub ready: AtomicU64,
    /// Connections the worker took (accept returned one, or one arrived over
    /// its channel from the dispatcher).
    pub accepted: AtomicU64,
    /// Times the worker woke up to take a connection (epoll_wait returned, a
    /// blocking accept returned, a descriptor message arrived).
    pub wakeups: AtomicU64,
    /// Wakeups that yielded no connection: the herd's wasted wakeups.
    pub spurious_wakeups: AtomicU64,
    /// accept calls that found the queue empty (EAGAIN).
    pub empty_accepts: AtomicU64,
    /// Connections the worker took but could not answer (client gone, bad request).
    pub errors: AtomicU64,
    /// Descriptor numbers the worker takes connections from, for introspection
    /// through /proc: the listening socket (or the channel) and the epoll set.
    /// Stored as fd + 1 so that 0 means "none".
    pub listen_fd: AtomicU64,
    pub epoll_fd: AtomicU64,
    /// Connections the dispatcher handed to this worker (dispatch models only;
    /// written by the dispatcher, the slot's second and only other writer).
    pub dispatched: AtomicU64,
    /// Hand-offs to this worker that failed (written by the dispatcher).
    pub dispatch_errors: AtomicU64,
    /// Requests answered (more than `accepted` with keep-alive).
    pub requests: AtomicU64,
    /// Connections open in the worker right now (a gauge, for the time series).
    pub active: AtomicU64,
    /// Connections the worker has finished (closed): with `dispatched`, how
    /// many are handed to it but not done (dispatch-least's measure).
    pub finished: AtomicU64,
    /// accept-mutex: times this worker took the lock.
    pub lock_acquisitions: AtomicU64,
    /// The worker's thread id (its pid in a process fleet).
    pub tid: AtomicU64,
    /// When the worker's injected stall began and ended, in ns since the
    /// run's epoch, plus one (0: it did not stall).
    pub stall_from: AtomicU64,
    pub stall_to: AtomicU64,
    /// Set by the master to retire the worker gracefully (a rolling
    /// restart): between connections it closes its listening socket and
    /// exits. Written by the master, read by the worker.
    pub retire: AtomicU64,
}

impl Slot {
    /// Adds one to a counter. Only the slot's owner calls this, so a relaxed
    /// load and store suffice (no locked read-modify-write on the hot path).
    #[inline]
    pub fn bump(counter: &AtomicU64) {
        counter.store(counter.load(Relaxed) + 1, Relaxed);
    }

    /// Subtracts one from a gauge; same single-writer rule as `bump`.
    #[inline]
    pub fn drop_one(counter: &AtomicU64) {
        counter.store(counter.load(Relaxed).saturating_sub(1), Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            accepted: self.accepted.load(Relaxed),
            wakeups: self.wakeups.load(Relaxed),
            spurious_wakeups: self.spurious_wakeups.load(Relaxed),
            empty_accepts: self.empty_accepts.load(Relaxed),
            errors: self.errors.load(Relaxed),
            dispatched: self.dispatched.load(Relaxed),
            dispatch_errors: self.dispatch_errors.load(Relaxed),
            requests: self.requests.load(Relaxed),
            active: self.active.load(Relaxed),
            finished: self.finished.load(Relaxed),
            lock_acquisitions: self.lock_acquisitions.load(Relaxed),
        }
    }

    pub fn set_fd(cell: &AtomicU64, fd: i32) {
        cell.store(fd as u64 + 1, Relaxed);
    }

    pub fn get_fd(cell: &AtomicU64) -> Option<i32> {
        match cell.load(Relaxed) {
            0 => None,
            v => Some((v - 1) as i32),
        }
    }
}

/// A copy of one slot's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub accepted: u64,
    pub wakeups: u64,
    pub spurious_wakeups: u64,
    pub empty_accepts: u64,
    pub errors: u64,
    pub dispatched: u64,
    pub dispatch_errors: u64,
    pub requests: u64,
    pub active: u64,
    pub finished: u64,
    pub lock_acquisitions: u64,
}

/// Run-wide values the master publishes to the workers.
#[repr(C, align(128))]
#[derive(Default)]
pub struct Header {
    /// CLOCK_MONOTONIC time, in ns, when the measured load began (0 before):
    /// the origin of the time series and of injected stalls.
    pub epoch_ns: AtomicU64,
    /// accept-mutex: the lock (0 free, else the holder's index + 1), how many
    /// workers are polling the listener right now (at most 1 when the lock
    /// works), and how often a worker found another already polling.
    pub mutex: AtomicU64,
    pub pollers: AtomicU64,
    pub poll_overlaps: AtomicU64,
}

impl Snapshot {
    /// What the counters gained since `earlier`; `active` is a gauge and is
    /// kept as it is now.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            accepted: self.accepted - earlier.accepted,
            wakeups: self.wakeups - earlier.wakeups,
            spurious_wakeups: self.spurious_wakeups - earlier.spurious_wakeups,
            empty_accepts: self.empty_accepts - earlier.empty_accepts,
            errors: self.errors - earlier.errors,
            dispatched: self.dispatched - earlier.dispatched,
            dispatch_errors: self.dispatch_errors - earlier.dispatch_errors,
            requests: self.requests - earlier.requests,
            active: self.active,
            finished: self.finished - earlier.finished,
            lock_acquisitions: self.lock_acquisitions - earlier.lock_acquisitions,
        }
    }
}

/// The shared region: a header, then one `Slot` per worker.
pub struct Counters {
    mem: SharedMem,
    n: usize,
}

impl Counters {
    pub fn new(n: usize) -> io::Result<Counters> {
        let mem = SharedMem::new(std::mem::size_of::<Header>() + n * std::mem::size_of::<Slot>())?;
        Ok(Counters { mem, n })
    }

    /// Number of slots (workers, plus the dispatcher's where there is one).
    pub fn slots(&self) -> usize {
        self.n
    }

    pub fn header(&self) -> &Header {
        // SAFETY: the mapping is zero-initialised, page-aligned (so aligned for
        // Header) and starts with one Header; it lives as long as `self`. A
        // Header holds only atomics, valid as all-zero bytes and sound to
        // share between processes.
        unsafe { &*(self.mem.as_ptr() as *const Header) }
    }

    pub fn slot(&self, i: usize) -> &Slot {
        assert!(i < self.n, "worker index {i} out of range 0..{}", self.n);
        debug_assert!(self.mem.size() >= std::mem::size_of::<Header>() + self.n * std::mem::size_of::<Slot>());
        // SAFETY: the slots follow the Header (whose size is a multiple of
        // Slot's alignment) inside a zero-initialised, page-aligned mapping of
        // at least n slots that lives as long as `self`; a Slot holds only
        // atomics, valid as all-zero bytes and sound to share between processes.
        unsafe {
            let base = self.mem.as_ptr().add(std::mem::size_of::<Header>()) as *const Slot;
            &*base.add(i)
        }
    }

    pub fn all_ready(&self) -> bool {
        self.ready_upto(self.n)
    }

    /// Whether slots 0..n are all ready (a fleet's spares are not, until
    /// they replace a worker).
    pub fn ready_upto(&self, n: usize) -> bool {
        (0..n.min(self.n)).all(|i| self.slot(i).ready.load(Relaxed) == 1)
    }

    pub fn snapshot(&self) -> Vec<Snapshot> {
        (0..self.n).map(|i| self.slot(i).snapshot()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_do_not_share_cache_lines() {
        assert_eq!(std::mem::size_of::<Slot>() % 128, 0);
        assert_eq!(std::mem::size_of::<Header>() % 128, 0);
        let c = Counters::new(3).unwrap();
        let a = c.slot(0) as *const Slot as usize;
        let b = c.slot(1) as *const Slot as usize;
        assert_eq!(b - a, std::mem::size_of::<Slot>());
    }

    #[test]
    fn bump_and_snapshot() {
        let c = Counters::new(2).unwrap();
        Slot::bump(&c.slot(1).accepted);
        Slot::bump(&c.slot(1).accepted);
        Slot::bump(&c.slot(0).spurious_wakeups);
        let s = c.snapshot();
        assert_eq!(s[1].accepted, 2);
        assert_eq!(s[0].accepted, 0);
        assert_eq!(s[0].spurious_wakeups, 1);
        assert!(!c.all_ready());
    }

    #[test]
    fn fd_cells_distinguish_none_from_zero() {
        let c = Counters::new(1).unwrap();
        assert_eq!(Slot::get_fd(&c.slot(0).listen_fd), None);
        Slot::set_fd(&c.slot(0).listen_fd, 0);
        assert_eq!(Slot::get_fd(&c.slot(0).listen_fd), Some(0));
    }
}
