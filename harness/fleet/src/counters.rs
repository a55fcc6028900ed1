//! Per-worker counters in shared memory.
//!
//! Each worker writes only its own slot; the master reads every slot while the
//! run goes on and after it ends. The region is an array of `AtomicU64` words
//! (`sys::SharedWords`, the only unsafe part, lives in the sys crate); a
//! [`Header`] and each [`Slot`] are views of named words over it. Slots are
//! 128-byte aligned and padded so that workers on different cores do not slow
//! each other down by writing neighbouring counters. Counters are monotonic
//! and written with single-writer relaxed stores: a worker bumps `accepted`
//! before it writes the response, so by the time the load generator has read
//! a response, the count that owns it is visible to the master.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sys::SharedWords;

/// Words per cache-line pair (128 bytes): views start on such a boundary.
const LINE_WORDS: usize = 16;

/// A struct of references to consecutive words, one per field, in the
/// order written.
macro_rules! atomic_view {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $field:ident,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy)]
        pub struct $name<'a> {
            $($(#[$fm])* pub $field: &'a AtomicU64,)*
        }

        impl<'a> $name<'a> {
            /// Words the view takes, padded to whole 128-byte lines.
            pub const WORDS: usize = [$(stringify!($field)),*].len().div_ceil(LINE_WORDS) * LINE_WORDS;

            /// The view over the first words of `words`.
            fn over(words: &'a [AtomicU64]) -> $name<'a> {
                let mut it = words.iter();
                let mut next = || it.next().expect("a view gets at least WORDS words");
                $name { $($field: next(),)* }
            }
        }
    };
}

atomic_view! {
    /// One worker's counters. All zero is the initial state.
    pub struct Slot {
    /// Set to 1 once the worker is ready to take connections.
    pub ready,
    /// Connections the worker took (accept returned one, or one arrived over
    /// its channel from the dispatcher).
    pub accepted,
    /// Times the worker woke up to take a connection (epoll_wait returned, a
    /// blocking accept returned, a descriptor message arrived).
    pub wakeups,
    /// Wakeups that yielded no connection: the herd's wasted wakeups.
    pub spurious_wakeups,
    /// accept calls that found the queue empty (EAGAIN).
    pub empty_accepts,
    /// Connections the worker took but could not answer (client gone, bad request).
    pub errors,
    /// Descriptor numbers the worker takes connections from, for introspection
    /// through /proc: the listening socket (or the channel) and the epoll set.
    /// Stored as fd + 1 so that 0 means "none".
    pub listen_fd,
    pub epoll_fd,
    /// Connections the dispatcher handed to this worker (dispatch models only;
    /// written by the dispatcher, the slot's second and only other writer).
    pub dispatched,
    /// Hand-offs to this worker that failed (written by the dispatcher).
    pub dispatch_errors,
    /// Requests answered (more than `accepted` with keep-alive).
    pub requests,
    /// Connections open in the worker right now (a gauge, for the time series).
    pub active,
    /// Connections the worker has finished (closed): with `dispatched`, how
    /// many are handed to it but not done (dispatch-least's measure).
    pub finished,
    /// accept-mutex: times this worker took the lock.
    pub lock_acquisitions,
    /// The worker's thread id (its pid in a process fleet).
    pub tid,
    /// When the worker's injected stall began and ended, in ns since the
    /// run's epoch, plus one (0: it did not stall).
    pub stall_from,
    pub stall_to,
    /// Set by the master to retire the worker gracefully (a rolling
    /// restart): between connections it closes its listening socket and
    /// exits. Written by the master, read by the worker.
    pub retire,
}
}

atomic_view! {
    /// Run-wide values the master publishes to the workers.
    pub struct Header {
    /// CLOCK_MONOTONIC time, in ns, when the measured load began (0 before):
    /// the origin of the time series and of injected stalls.
    pub epoch_ns,
    /// accept-mutex: the lock (0 free, else the holder's index + 1), how many
    /// workers are polling the listener right now (at most 1 when the lock
    /// works), and how often a worker found another already polling.
    pub mutex,
    pub pollers,
    pub poll_overlaps,
}
}

impl Slot<'_> {
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
    mem: SharedWords,
    n: usize,
}

impl Counters {
    pub fn new(n: usize) -> io::Result<Counters> {
        let mem = SharedWords::new(Header::WORDS + n * Slot::WORDS)?;
        Ok(Counters { mem, n })
    }

    /// Number of slots (workers, plus the dispatcher's where there is one).
    pub fn slots(&self) -> usize {
        self.n
    }

    pub fn header(&self) -> Header<'_> {
        Header::over(self.mem.words())
    }

    pub fn slot(&self, i: usize) -> Slot<'_> {
        assert!(i < self.n, "worker index {i} out of range 0..{}", self.n);
        let start = Header::WORDS + i * Slot::WORDS;
        Slot::over(&self.mem.words()[start..start + Slot::WORDS])
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
        assert_eq!(Slot::WORDS % LINE_WORDS, 0);
        assert_eq!(Header::WORDS % LINE_WORDS, 0);
        let c = Counters::new(3).unwrap();
        let a = c.slot(0).ready as *const AtomicU64 as usize;
        let b = c.slot(1).ready as *const AtomicU64 as usize;
        let h = c.header().epoch_ns as *const AtomicU64 as usize;
        assert_eq!(b - a, Slot::WORDS * 8);
        assert_eq!(a - h, Header::WORDS * 8);
        assert_eq!(a % 128, 0, "a slot starts a line");
        // The last field of a slot stays inside it.
        assert!((c.slot(0).retire as *const AtomicU64 as usize) < b);
    }

    #[test]
    fn bump_and_snapshot() {
        let c = Counters::new(2).unwrap();
        Slot::bump(c.slot(1).accepted);
        Slot::bump(c.slot(1).accepted);
        Slot::bump(c.slot(0).spurious_wakeups);
        let s = c.snapshot();
        assert_eq!(s[1].accepted, 2);
        assert_eq!(s[0].accepted, 0);
        assert_eq!(s[0].spurious_wakeups, 1);
        assert!(!c.all_ready());
    }

    #[test]
    fn fd_cells_distinguish_none_from_zero() {
        let c = Counters::new(1).unwrap();
        assert_eq!(Slot::get_fd(c.slot(0).listen_fd), None);
        Slot::set_fd(c.slot(0).listen_fd, 0);
        assert_eq!(Slot::get_fd(c.slot(0).listen_fd), Some(0));
    }
}
